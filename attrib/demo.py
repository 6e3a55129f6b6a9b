"""``attrib demo``: the main job end to end on the synthetic generator zoo.

Generates the zoo, enrolls 5 simulated generators x 10 images, identifies
held-out images from them and from 3 generators it never enrolled, and prints
a per-generator table with closed-set accuracy and open-set AUROC.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import click
import numpy as np

ENROLLED = ("nearest-1", "bilinear-1", "tconv-1", "shuffle-1", "upconv-1")
UNKNOWN = ("bicubic-1", "multistage-1", "tconv-2")
SHOTS = 10
QUERIES = 10
SIZE = 256


@click.command()
@click.option("--data", type=click.Path(file_okay=False, path_type=Path), default=Path("demo-data"),
              show_default=True, help="Where the zoo images are written (reused when present).")
@click.option("--fresh", is_flag=True, help="Empty the gallery folder first (only a gallery made by the demo).")
@click.option("--extractor", "-e", default="residual", show_default=True)
@click.pass_context
def demo(ctx: click.Context, data: Path, fresh: bool, extractor: str) -> None:
    """Run the whole job on the synthetic generator zoo and print the results."""
    from rich.table import Table

    from .cli import bind_extractor, open_gallery, progress_bar, stdout_console
    from .identify import identify
    from .metrics import OpenSetQueries, closed_set_accuracy, open_set_auroc, operating_point, oscr, per_generator
    from .zoo import write_zoo

    console = stdout_console()
    gallery_dir = Path(ctx.obj["gallery"])
    if fresh and gallery_dir.exists():
        if any(gallery_dir.iterdir()) and not (gallery_dir / "gallery.db").exists():
            raise click.ClickException(f"{gallery_dir} is not an attrib gallery; refusing to empty it")
        shutil.rmtree(gallery_dir)
    started = time.perf_counter()
    console.print(f"[bold]1. synthetic zoo[/bold] -> {data} ({len(ENROLLED) + len(UNKNOWN)} generators, {SIZE}px PNG)")
    paths = write_zoo(data, list(ENROLLED), n_per=SHOTS + QUERIES, size=SIZE)
    paths.update(write_zoo(data, list(UNKNOWN), n_per=QUERIES, size=SIZE, start=SHOTS))
    bound = bind_extractor(extractor, ())
    console.print(f"[bold]2. enroll[/bold] {len(ENROLLED)} generators x {SHOTS} images into {gallery_dir} "
                  f"(extractor {bound.identity.key})")
    with open_gallery(ctx) as gallery:
        for name in ENROLLED:
            with progress_bar(SHOTS, f"enrolling {name}") as advance:
                report = gallery.enroll(name, paths[name][:SHOTS], bound, family=name.split("-")[0],
                                        note="attrib demo zoo", progress=advance)
            console.print(f"   attrib enroll --generator {name} ...: added {len(report.added)}, "
                          f"already enrolled {len(report.skipped)}, failed {len(report.failed)}")
        console.print(f"   calibration: {report.calibration}")
        queries = [(name, p) for name in ENROLLED for p in paths[name][SHOTS:]]
        queries += [(name, p) for name in UNKNOWN for p in paths[name][-QUERIES:]]
        console.print(f"[bold]3. identify[/bold] {len(queries)} held-out images "
                      f"({len(UNKNOWN)} generators never enrolled: {', '.join(UNKNOWN)})")
        results = list(identify(gallery, bound, [p for _, p in queries], top_k=3))
    failed = [r for r in results if r.error]
    for r in failed:
        console.print(f"   error: {r.error}")
    ok = [(truth, r) for (truth, _), r in zip(queries, results) if not r.error]
    q = OpenSetQueries(
        truth=[t for t, _ in ok],
        predicted=[r.generator for _, r in ok],
        score=np.array([r.score for _, r in ok]),
        accepted=np.array([r.decision != "unknown" for _, r in ok]),
        known=np.array([t in ENROLLED for t, _ in ok]),
    )
    table = Table(title="attrib demo: per generator")
    for column in ("generator", "enrolled", "queries", "top-1 correct", "right decision"):
        table.add_column(column, justify="right" if column != "generator" else "left")
    for name, row in per_generator(q).items():
        top1 = f"{row['top1']:.0%}" if row["known"] else "-"
        what = "named" if row["known"] else "rejected"
        table.add_row(name, "yes" if row["known"] else "no", str(row["queries"]), top1,
                      f"{row['correct_decision']:.0%} {what}")
    console.print(table)
    accepted, rejected = operating_point(q)
    console.print(
        f"closed-set accuracy {closed_set_accuracy(q):.3f} | open-set AUROC {open_set_auroc(q):.3f} | "
        f"OSCR {oscr(q):.3f} | known accepted {accepted:.0%}, unknown rejected {rejected:.0%}"
    )
    console.print(f"done in {time.perf_counter() - started:.1f} s. Try: attrib --gallery {gallery_dir} identify "
                  f"{paths[UNKNOWN[0]][-1]}")
    if failed:
        ctx.exit(1)
