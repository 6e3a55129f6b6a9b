"""``attrib evaluate`` and ``attrib demo``: the evaluation protocol and the zoo demo, printed."""

from __future__ import annotations

import os
from pathlib import Path

import click

from ..evaluation import DEFAULT_CONDITION
from ..scoring import DEFAULT_TARGET_FAR
from .common import (REPORT_SUFFIXES, default_gallery, echo_err, emit_json, gallery_option, open_gallery, progress_bar,
                     stdout_console)


def _pm(s: dict, pct: bool = False) -> str:
    if s["mean"] is None:
        return "-"
    fmt = "{:.0%}" if pct else "{:.3f}"
    return fmt.format(s["mean"]) + ("" if s["std"] is None else " ± " + fmt.format(s["std"]))


def parse_families(texts) -> dict[str, str]:
    """``("sd=sd15,sdxl",)`` -> ``{"sd15": "sd", "sdxl": "sd"}``; AttribError naming a bad one."""
    from ..errors import AttribError

    out: dict[str, str] = {}
    for text in texts:
        name, sep, members = text.partition("=")
        labels = [m.strip() for m in members.split(",") if m.strip()]
        if not sep or not name.strip() or not labels:
            raise AttribError(f"--family {text!r}: write NAME=GENERATOR,GENERATOR, e.g. --family sd=sd15,sdxl")
        for label in labels:
            if label in out and out[label] != name.strip():
                raise AttribError(f"--family: {label!r} is given in two families ({out[label]!r}, {name.strip()!r})")
            out[label] = name.strip()
    return out


def print_tables(evaluation) -> None:
    """The per-generator table, the metrics and the confusion matrix of every condition."""
    from rich.table import Table

    from ..evaluation.protocol import FAMILY_METRICS, METRICS

    console, cfg = stdout_console(), evaluation.data["config"]
    for block in evaluation.data["conditions"]:
        if block.get("sweep"):
            continue
        table = Table(title=f"attrib evaluate: {block['condition']} | {cfg['extractor']} | K={cfg['shots']}, "
                            f"{cfg['repeats']} repeats, seed {cfg['seed']}")
        for col in ("generator", "enrolled", "queries/repeat", "accepted", "right decision",
                    "closed-set top-1 / rejected"):
            table.add_column(col, justify="left" if col == "generator" else "right")
        for label, row in block["per_generator"].items():
            table.add_row(label, str(row["enrolled_per_repeat"]) if row["known"] else "no",
                          f"{row['queries'] / cfg['repeats']:.1f}", _pm(row["accepted"], True),
                          _pm(row["correct_decision"], True), _pm(row["recall"], True))
        console.print(table)
        for name, text in METRICS + (FAMILY_METRICS if cfg.get("families") else ()):
            stat = block["metrics"][name]
            sem = "" if stat.get("sem") is None else f"  (s.e. of the mean {stat['sem']:.3f})"
            console.print(f"  {text:56s} {_pm(stat)}{sem}")
        conf = block["confusion"]
        matrix = Table(title=f"confusion (rows: truth, columns: decision; summed over {cfg['repeats']} repeats)")
        matrix.add_column("")
        for col in conf["columns"]:
            matrix.add_column(col, justify="right")
        for label, counts in zip(conf["rows"], conf["matrix"]):
            matrix.add_row(label, *map(str, counts))
        console.print(matrix)
        console.print(f"  {block['wall_s']:.1f} s; embedded {block['cache']['embedded']} images, "
                      f"reused {block['cache']['reused']} cached embeddings")
    if evaluation.data.get("sweep"):
        print_sweep(evaluation.data)


SWEEP_SIDES = (  # (row key, column header, caption)
    ("originals_gallery", "originals only", "the gallery of originals only (no delivery versions)"),
    ("clean_gallery", "with versions", "the gallery with delivery versions"),
    ("same_gallery", "at that quality", "every image at that quality (enrolled under the condition then the "
                                        "delivery, as the queries)"),
)


def print_sweep(data: dict) -> None:
    """One row per query delivery: the operating point and closed-set accuracy against the gallery of
    originals only, the gallery with delivery versions, and a gallery enrolled at that quality."""
    from rich.table import Table

    from ..delivery import default_ladder, parse_ladder
    from ..evaluation.protocol import SWEEP_METRICS

    cfg, short = data["config"], {"known_accepted": "known acc.", "unknown_rejected": "unknown rej.",
                                  "closed_set_accuracy": "closed-set top-1"}
    ladder = ",".join(parse_ladder(cfg["versions"]) if cfg.get("versions") is not None else default_ladder()) or "none"
    table = Table(title=f"attrib evaluate --sweep | {cfg['extractor']} | K={cfg['shots']}, {cfg['repeats']} repeats, "
                        f"seed {cfg['seed']} (mean ± std over repeats)",
                  caption="; ".join(f"{header}: {text}" + (f" ({ladder})" if key == "clean_gallery" else "")
                                    for key, header, text in SWEEP_SIDES))
    table.add_column("gallery", no_wrap=True)
    table.add_column("query delivery", no_wrap=True)
    for _, header, _ in SWEEP_SIDES:
        for key in SWEEP_METRICS:
            table.add_column(f"{header}: {short[key]}", justify="right")
    for row in data["sweep"]:
        table.add_row(row["condition"], row["delivery"],
                      *[_pm(row[side][key], True) for side, _, _ in SWEEP_SIDES for key in SWEEP_METRICS])
    stdout_console().print(table)


@click.command()
@click.argument("data_dir", type=click.Path(path_type=Path))
@click.option("--known", required=True, help="Comma-separated generator folders to enroll, e.g. --known a,b,c.")
@click.option("--unknown", default="", help="Comma-separated generator folders never enrolled (must be rejected).")
@click.option("--shots", "-s", default=10, show_default=True, type=click.IntRange(min=1),
              help="Images enrolled per known generator.")
@click.option("-k", "shots_k", default=None, type=click.IntRange(min=1), hidden=True)  # --shots, as scripts wrote it
@click.option("--repeats", "-r", default=5, show_default=True, type=click.IntRange(min=1), help="Random draws.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0))
@click.option("--max-per", default=60, show_default=True, type=click.IntRange(min=2),
              help="At most this many images per label in a repeat (a random subset).")
@click.option("--condition", "-c", "conditions", multiple=True, metavar="C",
              help=f"Transform every image first (repeatable; each evaluated separately; default {DEFAULT_CONDITION}): "
                   "center-crop:S, crop:S, jpeg:Q, webp:Q, resize:F, png, none, joined with '+'.")
@click.option("--extractor", "-e", envvar="ATTRIB_EXTRACTOR", default=None,
              help="Feature extractor (default residual); a+b fuses several.")
@click.option("--option", "-o", "options", multiple=True, metavar="KEY=VALUE", help="Extractor option (repeatable).")
@click.option("--query-condition", "-q", "query_conditions", multiple=True, metavar="Q",
              help="Also evaluate each --condition with Q applied to the queries only (repeatable): a gallery "
                   "enrolled from originals, queries laundered and written as they travel (a .jpg for a trailing "
                   "jpeg:Q), e.g. jpeg:80, resize:0.5+jpeg:75 or jpeg:80+png (re-saved losslessly).")
@click.option("--sweep", is_flag=False, flag_value="default", default=None, metavar="[default|Q,Q,...]",
              help="Sweep the queries' delivery: each Q (default: JPEG 95-50, WebP 80, resize 0.9-0.5 and three "
                   "chains) against the gallery with delivery versions, the gallery of originals only, and a "
                   "gallery enrolled at that quality; "
                   "prints a table, and --report adds the curve.")
@click.option("--family", "families", multiple=True, metavar="NAME=A,B",
              help="Enroll known generators A and B under family NAME (repeatable); adds family metrics.")
@click.option("--target-far", default=DEFAULT_TARGET_FAR, show_default=True,
              type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="False-accept rate the per-repeat galleries are calibrated at (the operating point).")
@click.option("--versions", default=None, metavar="RUNGS",
              help="Delivery versions of the galleries enrolled from lossless images: jpeg:Q and webp:Q rungs, "
                   "`default` or `none` (default: $ATTRIB_DELIVERY_LADDER, else the default ladder). Galleries "
                   "enrolled under a lossy --condition get none.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with everything.")
@click.option("--report", type=click.Path(path_type=Path), default=None, metavar="DIR|FILE.html",
              help="Write the report: DIR/index.html beside metrics.json and the ROC / confusion-matrix PNGs; for "
                   "a name ending in .html, that page, with metrics.json and the PNGs in the folder of the same name "
                   "without .html.")
def evaluate(data_dir, known, unknown, shots, shots_k, repeats, seed, max_per, conditions, query_conditions, sweep,
             families, extractor, options, target_far, versions, as_json, report):
    """Few-shot open-set evaluation on DATA_DIR/<generator>/ folders of images.

    --extractor a+b fuses extractors as `attrib identify` does (options as NAME.key=value)."""
    if shots_k is not None:
        if click.get_current_context().get_parameter_source("shots") == click.core.ParameterSource.COMMANDLINE:
            raise click.UsageError("give the shots once, as --shots (or -s)")
        shots = shots_k
    page = None
    if report is not None and report.suffix.lower() in REPORT_SUFFIXES:
        page, report = report, report.with_suffix("")
    from ..synthetic.conditions import parse_condition
    from ..evaluation.protocol import run_evaluation, split_labels, sweep_deliveries
    from ..evaluation.report import make_report_dir, write_report
    from ..extractors.resolve import load_extractor

    from ..errors import AttribError

    deliveries = sweep_deliveries(sweep)
    [parse_condition(text) for text in conditions + query_conditions + deliveries]  # fail on a bad one before any work
    family_of = parse_families(families)
    if versions is not None:
        from ..delivery import parse_ladder

        parse_ladder(versions)  # fail on a bad rung before any work
    if report is not None:
        make_report_dir(report)
    bound = load_extractor(extractor, options)
    evaluation = run_evaluation(
        data_dir, split_labels(known), split_labels(unknown), extractor=bound, shots=shots, repeats=repeats,
        seed=seed, max_per=max_per, conditions=conditions or (DEFAULT_CONDITION,), query_conditions=query_conditions,
        families=family_of, progress_bar=progress_bar, target_far=target_far, sweep=deliveries, versions=versions)
    notes = evaluation.data["notes"]
    for note in notes[:10]:
        echo_err(f"note: {note}")
    if len(notes) > 10:
        echo_err(f"note: ... and {len(notes) - 10} more (all in --json / --report)")
    if report is not None:
        written = write_report(evaluation, report)
        if page is not None:  # the page beside its folder of metrics.json and PNGs
            try:
                os.replace(written[-1], page)
            except OSError as exc:
                raise AttribError(f"--report {page}: cannot write the page ({exc.strerror or exc})") from None
            written[-1] = page
        echo_err(f"report: {', '.join(str(p) for p in written)}")
    if as_json:
        emit_json(evaluation.data)
    else:
        print_tables(evaluation)
        click.echo(f"total {evaluation.data['wall_s']:.1f} s")


@click.command()
@click.option("--data", type=click.Path(file_okay=False, path_type=Path), default=Path("demo-data"),
              show_default=True, help="Where the zoo images are written (reused when present).")
@click.option("--fresh", is_flag=True, help="Start from an empty gallery (deletes only a gallery the demo made).")
@click.option("--extractor", "-e", default="residual", show_default=True)
@gallery_option
@click.pass_context
def demo(ctx: click.Context, data: Path, fresh: bool, extractor: str) -> None:
    """Run the whole job on the synthetic generator zoo and print the results.

    The demo writes into its own gallery folder: the one given with ``attrib --gallery DIR demo``,
    else a demo folder in the per-user data folder (never $ATTRIB_GALLERY or the default gallery).
    It refuses any folder it did not make.
    """
    from rich.table import Table

    from ..errors import AttribError
    from ..evaluation.demo import prepare_demo_gallery, run_demo
    from ..extractors.resolve import bind_extractor
    from ..storage.location import is_database_url

    console = stdout_console()
    given = bool(ctx.obj.get("gallery_given"))
    if given and is_database_url(ctx.obj["gallery"]):
        raise AttribError("attrib demo writes only into a gallery folder it makes, not into a database; "
                          "give a folder (`attrib --gallery DIR demo`) or none")
    gallery_dir = Path(ctx.obj["gallery"]) if given else default_gallery().with_name("demo-gallery")
    ctx.obj["gallery"] = gallery_dir
    prepare_demo_gallery(gallery_dir, fresh)
    bound = bind_extractor(extractor, ())
    with open_gallery(ctx, must_exist=False) as gallery:
        outcome = run_demo(gallery, data, bound, console.print, progress_bar)
    for error in outcome.errors:
        console.print(f"   error: {error}")
    table = Table(title="attrib demo: per generator")
    for column in ("generator", "enrolled", "queries", "top-1 correct", "right decision"):
        table.add_column(column, justify="right" if column != "generator" else "left")
    for name, row in outcome.per_generator.items():
        top1 = f"{row['top1']:.0%}" if row["known"] else "-"
        what = "named" if row["known"] else "rejected"
        table.add_row(name, "yes" if row["known"] else "no", str(row["queries"]), top1,
                      f"{row['correct_decision']:.0%} {what}")
    console.print(table)
    console.print(
        f"closed-set accuracy {outcome.closed_set_accuracy:.3f} | open-set AUROC {outcome.open_set_auroc:.3f} | "
        f"OSCR {outcome.oscr:.3f} | known accepted {outcome.known_accepted:.0%}, "
        f"unknown rejected {outcome.unknown_rejected:.0%}"
    )
    if outcome.posted is not None:
        closed, known, unknown, versions = outcome.posted
        console.print(f"as posted (JPEG): closed-set accuracy {closed:.3f} | known accepted {known:.0%}, unknown "
                      f"rejected {unknown:.0%} | scored against the gallery's {', '.join(versions) or 'originals'}")
    console.print(f"done in {outcome.seconds:.1f} s. Try: attrib --gallery {gallery_dir} identify {outcome.example}")
    if outcome.errors:
        ctx.exit(1)


COMMANDS = (evaluate, demo)
