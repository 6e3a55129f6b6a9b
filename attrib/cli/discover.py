"""``attrib discover``: group unknown images into candidate generators, enroll one, or evaluate discovery."""

from __future__ import annotations

from pathlib import Path

import click

from ..evaluation import DEFAULT_CONDITION
from .common import (collect_paths, echo_err, emit_json, extractor_options, gallery_option, open_gallery,
                     progress_bar, report_page)


def _labels(text: str | None) -> list[str]:
    from ..evaluation.protocol import split_labels

    return split_labels(text)


@click.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--records", "records", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              metavar="FILE.jsonl", help="Records of `attrib identify --json --output FILE`: their unknown answers "
                                         "are grouped (repeatable; with or without PATHS).")
@click.option("--photos", "photos", multiple=True, type=click.Path(), metavar="DIR",
              help="Reference camera photographs (files or folders, repeatable): a candidate nearer them than "
                   "any enrolled generator is labelled photographs. They are never grouped themselves.")
@click.option("--min-cluster-size", default=5, show_default=True, type=int,
              help="Images a candidate needs at least (a one-off is never a candidate).")
@click.option("--min-samples", default=None, type=int, help="HDBSCAN's min_samples (default: --min-cluster-size).")
@click.option("--min-tightness", default=0.0, show_default=True, type=float,
              help="Median held-out score of a candidate's members against the others, minus the gallery's threshold, "
                   "at least (0: enrolled, it would accept half of its own images).")
@extractor_options
@click.option("--json", "as_json", is_flag=True, help="Print the candidates (or the evaluation) as one JSON object.")
@click.option("--output", "output", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="FILE",
              help="Write the candidates JSON to FILE (what --enroll reads back with --from).")
@click.option("--report", "report_path", type=click.Path(), default=None, metavar="FILE.html|DIR",
              help="Write an HTML page with an exemplar grid per candidate.")
@click.option("--enroll", "enroll_id", default=None, metavar="CANDIDATE",
              help="Enroll this candidate (its id, e.g. c1, or a digest prefix) of --from FILE under --generator.")
@click.option("--from", "from_file", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="FILE",
              help="The candidates file (--output of an earlier run) that --enroll reads.")
@click.option("--generator", "-g", default=None, help="With --enroll: the name to enroll the candidate under.")
@click.option("--family", default=None, help="With --enroll: the model family.")
@click.option("--force", is_flag=True, help="With --enroll: enroll a candidate labelled photographs too.")
@click.option("--evaluate", "evaluate_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              metavar="DATA_DIR", help="Evaluate discovery on DATA_DIR/<label>/ folders instead (see docs/discovery.md).")
@click.option("--known", default=None, help="With --evaluate: labels to enroll, comma-separated.")
@click.option("--hidden", default=None, help="With --evaluate: labels never enrolled, to be discovered.")
@click.option("--distractors", default=None, help="With --evaluate: labels of camera photographs mixed in.")
@click.option("--shots", default=10, show_default=True, type=int, help="With --evaluate: images enrolled per known label.")
@click.option("--repeats", default=3, show_default=True, type=int, help="With --evaluate: random draws.")
@click.option("--seed", default=0, show_default=True, type=int, help="With --evaluate: seed of the draws.")
@click.option("--max-per", default=60, show_default=True, type=int, help="With --evaluate: images per label at most.")
@click.option("--condition", default=DEFAULT_CONDITION, show_default=True,
              help="With --evaluate: what every image goes through first.")
@click.option("--pool", "pool", type=click.Choice(["unknown", "all"]), default="unknown", show_default=True,
              help="With --evaluate: group the queries answered unknown, or every query.")
@click.option("--photo-shots", default=0, show_default=True, type=int,
              help="With --evaluate: images of each distractor label used as reference photographs.")
@click.option("--query-condition", "-q", "query_condition", default=None, metavar="CONDITION",
              help="With --evaluate: launder the queries only (e.g. jpeg:80), against a gallery of originals with "
                   "its delivery versions.")
@click.option("--zoo-images", default=0, type=int, metavar="N",
              help="With --evaluate: first render the synthetic zoo (N images per generator) into DATA_DIR.")
@gallery_option
@click.pass_context
def discover(ctx, paths, records, photos, min_cluster_size, min_samples, min_tightness, extractor, options, as_json,
             output, report_path, enroll_id, from_file, generator, family, force, evaluate_dir, known, hidden,
             distractors, shots, repeats, seed, max_per, condition, pool, photo_shots, query_condition, zoo_images):
    """Group the unknown images in PATHS (files, folders) or --records into candidate generators, ranked by how
    tight they are and how far from every enrolled generator; or enroll one (--enroll c1 --generator NAME --from
    FILE); or evaluate discovery (--evaluate DATA_DIR --known a,b --hidden c --distractors real)."""
    from ..discovery.candidates import Settings
    from ..errors import AttribError

    settings = Settings(min_cluster_size, min_samples, min_tightness)
    if enroll_id is not None:
        if generator is None or from_file is None:
            raise AttribError("--enroll needs --generator NAME and --from FILE (the --output of `attrib discover`)")
        return _enroll(ctx, enroll_id, from_file, generator, family, force, extractor, options, as_json)
    if evaluate_dir is not None:
        return _evaluate(evaluate_dir, known, hidden, distractors, shots, repeats, seed, max_per, condition, pool,
                         photo_shots, query_condition, zoo_images, settings, extractor, options, as_json, output)
    if not paths and not records:
        raise AttribError("give images (files or folders) or --records FILE.jsonl of `attrib identify --json --output`")
    _discover(ctx, paths, records, photos, settings, extractor, options, as_json, output, report_path)


def _discover(ctx, paths, records, photos, settings, extractor, options, as_json, output, report_path):
    from ..discovery.candidates import candidates_text, discover as group
    from ..discovery.inputs import unknown_answers
    from ..discovery.space import embed_pool
    from ..errors import AttribError
    from ..extractors.contract import extractor_list

    page = report_page(report_path) if report_path else None
    found = unknown_answers(records) if records else None
    files = (collect_paths(paths) if paths else []) + (found.paths if found else [])
    references = collect_paths(photos) if photos else []
    context = {"gallery": str(ctx.obj["gallery"]), "records": found.to_json() if found else None}
    if not files:
        raise AttribError("no unknown answer in the records given; nothing to group")
    with open_gallery(ctx, read_only=True) as gallery, progress_bar(len(files), "embedding") as advance:
        bound = extractor_list(gallery.load_extractor(extractor, options))
        pool = embed_pool(gallery, bound, files, advance, photos=references)
    discovery = group(pool, settings, context)
    if output is not None:
        from ..report.html import write_page

        write_page(output, candidates_text(discovery))
    if page is not None:
        from ..report.discovery import write_discovery_page

        write_discovery_page(discovery, page)
    if as_json:
        emit_json(discovery.to_json())
        return
    counts = discovery.to_json()["counts"]
    click.echo(f"{len(pool.images)} images: {counts['candidates']} candidate generator(s), {counts['photographs']} "
               f"group(s) of photographs, {counts['near_enrolled']} beside an enrolled generator, {counts['let_go']} "
               f"let go, {counts['one_offs']} one-offs" + (f", {len(pool.errors)} unusable" if pool.errors else ""))
    for c in discovery.candidates:
        what = "candidate generator" if c.kind == "generator" else "photographs"
        click.echo(f"  {c.id}: {what}, {len(c.members)} images, tightness {c.tightness:+.3f}, novelty "
                   f"{'-' if c.novelty is None else f'{c.novelty:+.3f}'}, nearest {c.nearest or '-'} "
                   f"[digest {c.digest}]")
    for path, why in pool.errors:
        echo_err(f"{path}: {why}")
    if output is not None:
        click.echo(f"candidates written to {output}; enroll one with `attrib discover --enroll ID --generator NAME "
                   f"--from {output}`")
    if page is not None:
        click.echo(f"report written to {page}")


def _enroll(ctx, enroll_id, from_file, generator, family, force, extractor, options, as_json):
    from ..discovery.enroll import candidate_files, enroll_candidate
    from ..extractors.contract import extractor_list

    _, files = candidate_files(from_file, enroll_id, force)  # checked before the gallery is opened
    with open_gallery(ctx) as gallery, progress_bar(len(files), f"enrolling {generator}") as advance:
        bound = extractor_list(gallery.load_extractor(extractor, options))
        report = enroll_candidate(gallery, bound, from_file, enroll_id, generator, family, force, advance)
    if as_json:
        emit_json({**report.to_json(bound[0].identity.key), "candidate": enroll_id, "from": str(from_file)})
    else:
        click.echo(f"{report.generator}: added {len(report.added)} images of candidate {enroll_id}, already enrolled "
                   f"{len(report.skipped)}, failed {len(report.failed)}")
        for path, reason in report.failed:
            click.echo(f"  failed {reason if reason.startswith(path) else f'{path}: {reason}'}")
    if report.failed:
        ctx.exit(1)


def _evaluate(data_dir, known, hidden, distractors, shots, repeats, seed, max_per, condition, pool, photo_shots,
              query_condition, zoo_images, settings, extractor, options, as_json, output):
    from ..evaluation.discovery import evaluate_discovery
    from ..extractors.resolve import load_extractor

    if zoo_images:
        from ..synthetic.zoo import write_zoo

        write_zoo(data_dir, n_per=zoo_images)
    bound = load_extractor(extractor, options, set())
    with progress_bar(repeats, "evaluating discovery") as advance:
        result = evaluate_discovery(data_dir, _labels(known), _labels(hidden), _labels(distractors), extractor=bound,
                                    shots=shots, repeats=repeats, seed=seed, max_per=max_per, condition=condition,
                                    settings=settings, pool=pool, photo_shots=photo_shots,
                                    query_condition=query_condition, advance=advance)
    if output is not None:
        import json

        from ..report.html import write_page

        write_page(output, json.dumps(result, indent=1) + "\n")
    if as_json:
        emit_json(result)
        return
    summary = result["summary"]
    click.echo(f"discovery on {data_dir} ({result['config']['extractor']}, pool {pool}, {repeats} repeats): "
               f"{summary['candidates_per_repeat']} candidates per repeat; purity of candidates of 3+ images: min "
               f"{summary['min_purity_3plus']}, mean {summary['mean_purity_3plus']}; offered as generators but mostly "
               f"distractors: {summary['offered_mostly_distractors']}")
    for label, row in summary["hidden"].items():
        click.echo(f"  hidden {label}: in its best candidate {row['recovered_mean']:.0%} (at purity >= 0.8: mean "
                   f"{row['recovered_at_purity_mean']:.0%}, worst {row['recovered_at_purity_min']:.0%}); reached the "
                   f"pool {row['in_pool_share_mean']:.0%}")
    for label, row in summary["distractors"].items():
        click.echo(f"  distractor {label}: photographs {row['photographs']}, offered {row['offered']}, mixed "
                   f"{row['mixed']}, none {row['none']} (images over all repeats)")


COMMANDS = [discover]
