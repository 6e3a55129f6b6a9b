"""``attrib enroll``, ``identify``, ``verify`` and ``calibrate``."""

from __future__ import annotations

import click

from ..batch.records import IDENTIFY_COLUMNS, VERIFY_COLUMNS, result_record
from ..scoring import DEFAULT_TARGET_FAR
from .batch import BatchRun, batch_options, refuse_output_as_option
from .common import (c2pa_trust_option, collect_paths, echo_err, emit_json, extractor_options, gallery_option,
                     open_gallery, progress_bar, report_page, require_gallery, versions_option)


@click.command()
@click.option("--generator", "-g", required=True, help="Name to enroll the images under.")
@click.option("--family", help="Model family, e.g. 'stable-diffusion'.")
@click.option("--note", help="Free text kept with the generator.")
@extractor_options
@versions_option
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@gallery_option
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.pass_context
def enroll(ctx, generator, family, note, extractor, options, versions, as_json, paths):
    """Enroll the images in PATHS (files or folders) as samples of GENERATOR.

    Each image is embedded by every extractor the gallery holds (`-e a+b` names several for a new gallery).
    GENERATOR and --family: letters, digits and . _ - @ : or spaces (see `attrib gallery rename`)."""
    from ..extractors.contract import extractor_list
    from ..extractors.resolve import load_extractor
    from ..names import check_name

    check_name(generator)  # refused before any file is read or any gallery made
    if family is not None:
        check_name(family, "family")
    files = collect_paths(paths)
    with open_gallery(ctx, must_exist=False) as gallery, progress_bar(len(files), f"enrolling {generator}") as advance:
        held = gallery.extractor_names()
        # without -e, the gallery's own extractors, as it stores them
        bound = ([] if extractor is None and held and not options
                 else extractor_list(load_extractor(extractor, options, held)))
        report = gallery.enroll(generator, files, bound, family=family, note=note, progress=advance, versions=versions)
    if as_json:
        emit_json({**report.to_json(report.extractors[0]), "extractors": report.extractors})
    else:
        click.echo(
            f"{report.generator}: added {len(report.added)}, already enrolled {len(report.skipped)}, "
            f"failed {len(report.failed)}" + (f" (embedded with {', '.join(report.extractors)})"
                                              if len(report.extractors) > 1 and report.added else "")
        )
        for path, reason in report.skipped:
            click.echo(f"  skipped {path}: {reason}")
        for path, reason in report.failed:
            click.echo(f"  failed {reason if reason.startswith(path) else f'{path}: {reason}'}")
        if report.calibration:
            click.echo(f"calibration: {report.calibration}")
        if report.versions and report.added:
            click.echo(f"delivery versions: {', '.join(report.versions)} (each image embedded after each coding too)")
    if report.failed:
        ctx.exit(1)


@click.command()
@extractor_options
@click.option("--top-k", "-k", default=3, show_default=True, type=int, help="Candidates to list per image.")
@click.option("--explain", is_flag=True,
              help="Also list each candidate's nearest enrolled samples and the query's flags (always in --json).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line per input file.")
@c2pa_trust_option
@click.option("--trust-metadata", is_flag=True,
              help="Let evidence with a signature from a trusted signer (see --c2pa-trust) decide; the JSON "
                   "says so in decided_by and keeps the forensic answer in provenance.")
@batch_options
@click.option("--ray", "ray_address", is_flag=False, flag_value="local", default=None, metavar="[ADDRESS]",
              help="Run on Ray (pip install 'attrib[ray]'): alone, a Ray started here; `auto` or HOST:PORT, a "
                   "cluster. Records (JSON lines unless --format csv) in input order; paths and --gallery must "
                   "be reachable from every node.")
@click.option("--report", "report_path", type=click.Path(), default=None, metavar="FILE.html|DIR",
              help="Also write a self-contained HTML report of the images answered (see `attrib report`): to "
                   "FILE.html, or to DIR/index.html for any other name.")
@gallery_option
@click.pass_context
def identify(ctx, extractor, options, top_k, explain, as_json, c2pa_trust, trust_metadata, paths, lists, null,
             output, fmt, resume, ray_address, report_path):
    """Name the generator (or family) of each image in PATHS, or say `unknown` or `ambiguous`, and why.

    PATHS are files and folders; `-` (or --files-from FILE) reads more paths, one a line."""
    refuse_output_as_option(options)
    report = None
    if report_path is not None:
        from ..report.identify import IdentifyReport

        if ray_address is not None:
            raise click.UsageError("--report is not available with --ray; write the report with `attrib report`")
        report_path, report = report_page(report_path), IdentifyReport()
    if ray_address is not None:
        from ..batch.ray_runner import check_address, import_ray

        check_address(ray_address)
        import_ray()
    batch = BatchRun("identify", IDENTIFY_COLUMNS, paths=paths, lists=lists, null=null, output=output, fmt=fmt,
                     resume=resume, as_json=as_json, records_only=ray_address is not None)
    if ray_address is not None:
        from ..batch.ray_runner import IdentifyJob, identify_on_ray

        require_gallery(ctx)
        job = IdentifyJob.on_driver(ctx.obj["gallery"], extractor=extractor, options=tuple(options), top_k=top_k,
                                    c2pa_trust=c2pa_trust, trust_metadata=trust_metadata)
        with batch:
            batch.run(identify_on_ray(batch.pending(), job, ray_address), lambda record: record)
        ctx.exit(batch.exit_status)

    def human(result) -> None:
        click.echo(identification_line(result))
        for line in explanation_lines(result) if explain else ():
            click.echo(f"    {line}")

    with batch, open_gallery(ctx, read_only=True) as gallery:
        bound = gallery.load_extractor(extractor, options)
        results = gallery.identify(batch.pending(), bound, top_k=top_k, c2pa_trust=c2pa_trust,
                                   trust_metadata=trust_metadata)
        batch.run(results if report is None else report.collect(results), result_record, human)
        if report is not None:
            report.write(report_path, gallery)
            echo_err(f"report: {report_path} ({len(report.results)} images)")
    ctx.exit(batch.exit_status)


def identification_line(result) -> str:
    """``path: <decision and why> [confidence c] (top: a 0.912 / 0.880, ...)``."""
    cands = ", ".join(f"{c.generator} {c.score:.3f}/{c.threshold:.3f}" for c in result.candidates)
    confidence = "" if result.confidence is None else f" [confidence {result.confidence:.2f}]"
    return (f"{result.path}: {result.reason}{confidence} (score/threshold: {cands})"
            + delivery_suffix(result) + evidence_suffix(result))


def delivery_suffix(result) -> str:
    """`` [JPEG q≈80 -> jpeg:80 version]``: how the file travelled and the version it was scored against."""
    delivery = result.delivery
    if not delivery:
        return ""
    version = delivery["version"]
    return f" [{delivery['describe']} -> {'originals' if version == 'original' else f'{version} version'}]"


def evidence_suffix(result) -> str:
    """`` | file says: DALL·E 3 (C2PA, ...); agrees`` when the file says something about its origin."""
    summary = result.provenance.get("summary")
    if not summary:
        return ""
    agrees = (result.provenance.get("agreement") or {}).get("agrees")
    verdict = "" if agrees is None else ("; agrees with the forensic answer" if agrees
                                         else "; differs from the forensic answer")
    return f" | {summary}{verdict}"


def explanation_lines(result) -> list[str]:
    """The --explain lines: per candidate its confidence and nearest enrolled samples, then the flags."""
    lines = []
    for c in result.candidates:
        lines.append(f"{c.generator}{f' ({c.family})' if c.family else ''}: score {c.score:.3f}, threshold "
                     f"{c.threshold:.3f}, margin {c.margin:+.3f}, confidence {c.confidence:.2f}")
        for name, value in c.per_extractor.items():
            lines.append(f"  {name}: {value:.3f}")
        for e in c.exemplars:
            lines.append(f"  nearest enrolled {e['similarity']:.3f} {e['sha256'][:12]} {e['path']}")
    lines += [f"flag: {flag}" for flag in result.flags]
    return lines


@click.command()
@click.option("--generator", "-g", required=True, help="The enrolled generator to verify against.")
@extractor_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line per input file.")
@c2pa_trust_option
@batch_options
@gallery_option
@click.pass_context
def verify(ctx, generator, extractor, options, as_json, c2pa_trust, paths, lists, null, output, fmt, resume):
    """Say whether each image in PATHS was made by GENERATOR.

    PATHS are files and folders; `-` (or --files-from FILE) reads more paths, one a line."""
    from ..extractors.resolve import bind_extractor

    refuse_output_as_option(options)
    batch = BatchRun("verify", VERIFY_COLUMNS, paths=paths, lists=lists, null=null, output=output, fmt=fmt,
                     resume=resume, as_json=as_json)

    def human(result) -> None:
        verdict = "match" if result.match else "no match"
        click.echo(f"{result.path}: {verdict} for {generator} (score {result.score:.3f}, "
                   f"threshold {result.threshold:.3f}, confidence {result.confidence:.2f})" + delivery_suffix(result)
                   + evidence_suffix(result))

    with batch, open_gallery(ctx, read_only=True) as gallery:
        bound = bind_extractor(extractor, options, gallery.extractor_names())
        batch.run(gallery.verify(generator, batch.pending(), bound, c2pa_trust=c2pa_trust), result_record, human)
    ctx.exit(batch.exit_status)


@click.command()
@click.option("--target-far", default=None, type=float, metavar="FAR",
              help="Target false-accept rate (the share of the impostor cohort a generator may accept); default: the "
                   f"one the gallery was last calibrated at, else {DEFAULT_TARGET_FAR:g}.")
@click.option("--json", "as_json", is_flag=True)
@gallery_option
@click.pass_context
def calibrate(ctx, target_far, as_json):
    """Refit the whitening and recompute open-set thresholds from held-out gallery scores.

    A generator's threshold is the higher of the one its target FAR gives and its genuine floor (the 5th
    percentile of its own held-out scores); where the floor is higher the output says so, and changing
    --target-far does not move that threshold."""
    with open_gallery(ctx) as gallery:
        results = gallery.calibrate(target_far)
        ids = gallery.generator_names()
    if as_json:
        emit_json(
            {
                key: {
                    "message": r.message,
                    "separation": r.separation,
                    "thresholds": [
                        {
                            "generator": ids.get(t.generator_id) if t.generator_id else None,
                            "threshold": t.threshold,
                            "method": t.method,
                            "n_genuine": t.n_genuine,
                            "n_impostor": t.n_impostor,
                            "tar": t.tar,
                            "set_by": threshold_setter(t),
                        }
                        for t in r.thresholds
                    ],
                }
                for key, r in results.items()
            }
        )
        return
    floored = False
    for key, r in results.items():
        separation = "" if r.separation is None else f"; separation d' {r.separation:.2f} (fusion weight)"
        click.echo(f"{key}: {r.message}{separation}")
        for t in r.thresholds:
            who = ids.get(t.generator_id, "(open-set)") if t.generator_id else "(open-set)"
            tar = f", genuine accepted {t.tar:.0%}" if t.tar is not None else ""
            floor = threshold_setter(t) == GENUINE_FLOOR
            floored |= floor
            click.echo(f"  {who:24s} threshold {t.threshold:.4f} [{t.method}]{tar}"
                       + (f"; set by its genuine floor, not the FAR {r.target_far:g}" if floor else ""))
    if floored:
        click.echo("note: a threshold set by its genuine floor (the 5th percentile of the generator's own held-out "
                   "scores) is above where the target FAR would put it, so --target-far moves it only once the FAR "
                   "threshold rises past that floor")


GENUINE_FLOOR, TARGET_FAR = "genuine floor", "target FAR"


def threshold_setter(t) -> str | None:
    """What set a generator's threshold (:data:`GENUINE_FLOOR` or :data:`TARGET_FAR`), or None for the open-set
    threshold and thresholds not fitted on held-out scores. The threshold is max(FAR threshold, genuine floor), the
    floor being the genuine score at rank floor(MAX_FRR * (n - 1)) from the bottom; so the floor set it exactly
    when at least n minus that rank of the n held-out genuine scores clear it (above the floor, at most one fewer
    do)."""
    from math import floor

    from ..scoring.calibration import COHORT_FAR, MAX_FRR

    if t.generator_id is None or t.method not in (COHORT_FAR, "loo-far") or not t.n_genuine or t.tar is None:
        return None
    n = t.n_genuine
    return GENUINE_FLOOR if round(t.tar * n) >= n - floor(MAX_FRR * (n - 1)) else TARGET_FAR


COMMANDS = (enroll, identify, verify, calibrate)
