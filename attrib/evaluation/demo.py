"""The zoo demo: the main job end to end on the synthetic generator zoo.

Generates the zoo, enrolls 5 simulated generators x 10 images, identifies held-out images from
them and from 3 generators it never enrolled, and measures the outcome. :func:`run_demo` reports
each step through ``say`` (a line of rich markup) so that the caller decides where it goes.
"""

from __future__ import annotations

import shutil
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ..errors import AttribError
from . import ProgressBar

if TYPE_CHECKING:
    from ..extractors.contract import BoundExtractor
    from ..gallery import Gallery
    from ..scoring.decision import IdentificationResult
    from .metrics import OpenSetQueries

ENROLLED = ("nearest-1", "bilinear-1", "tconv-1", "shuffle-1", "upconv-1")
UNKNOWN = ("bicubic-1", "multistage-1", "tconv-2")
SHOTS = 10
QUERIES = 10
SIZE = 256


@dataclass
class DemoOutcome:
    """Per-generator rows and the summary metrics of one demo run."""

    per_generator: dict[str, dict[str, Any]]
    closed_set_accuracy: float
    open_set_auroc: float
    oscr: float
    known_accepted: float
    unknown_rejected: float
    errors: list[str]
    example: Path
    seconds: float
    # the same queries as posted online (JPEG at POSTED_QUALITY): closed-set accuracy, known accepted,
    # unknown rejected, and the gallery versions they were scored against
    posted: tuple[float, float, float, list[str]] | None = None


POSTED_QUALITY = 80


MARKER = "attrib-demo.marker"  # written into every gallery folder the demo makes; nothing else carries it


def prepare_demo_gallery(folder: Path, fresh: bool = False) -> None:
    """Make ``folder`` ready for the demo, touching nothing the demo did not make.

    A missing or empty folder becomes a demo gallery (with the :data:`MARKER` file). A folder with
    the marker is reused, or emptied first when ``fresh``. Any other folder is refused: the demo
    never enrolls into, nor deletes, a gallery a person built.
    """
    marked = (folder / MARKER).is_file()
    if folder.exists() and not folder.is_dir():
        raise AttribError(f"{folder} is a file, not a folder; give the demo a folder with --gallery")
    if folder.exists() and any(folder.iterdir()) and not marked:
        what = "an attrib gallery the demo did not make" if (folder / "gallery.db").exists() else "not an attrib gallery"
        raise AttribError(
            f"{folder} is {what} (no {MARKER} file); the demo only writes into its own gallery: "
            f"run it with --gallery pointing to a new folder, e.g. `attrib --gallery /tmp/attrib-demo demo`")
    if marked and fresh:
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).write_text("made by `attrib demo`; `attrib demo --fresh` may delete this folder\n")


def run_demo(gallery: Gallery, data: Path, extractor: BoundExtractor, say: Callable[[str], None],
             progress_bar: ProgressBar = lambda total, label: nullcontext(lambda n: None)) -> DemoOutcome:
    """Write the zoo to ``data``, enroll into ``gallery`` with ``extractor``, identify, measure."""
    from .metrics import closed_set_accuracy, open_set_auroc, operating_point, oscr, per_generator
    from ..synthetic.zoo import write_zoo

    started = time.perf_counter()
    say(f"[bold]1. synthetic zoo[/bold] -> {data} ({len(ENROLLED) + len(UNKNOWN)} generators, {SIZE}px PNG)")
    paths = write_zoo(data, list(ENROLLED), n_per=SHOTS + QUERIES, size=SIZE)
    paths.update(write_zoo(data, list(UNKNOWN), n_per=QUERIES, size=SIZE, start=SHOTS))
    say(f"[bold]2. enroll[/bold] {len(ENROLLED)} generators x {SHOTS} images into {gallery.root} "
        f"(extractor {extractor.identity.key})")
    for name in ENROLLED:
        with progress_bar(SHOTS, f"enrolling {name}") as advance:
            report = gallery.enroll(name, paths[name][:SHOTS], extractor, family=name.split("-")[0],
                                    note="attrib demo zoo", progress=advance)
        say(f"   attrib enroll --generator {name} ...: added {len(report.added)}, "
            f"already enrolled {len(report.skipped)}, failed {len(report.failed)}")
    say(f"   calibration: {report.calibration}")
    queries = [(name, p) for name in ENROLLED for p in paths[name][SHOTS:]]
    queries += [(name, p) for name in UNKNOWN for p in paths[name][-QUERIES:]]
    say(f"[bold]3. identify[/bold] {len(queries)} held-out images "
        f"({len(UNKNOWN)} generators never enrolled: {', '.join(UNKNOWN)})")
    results = list(gallery.identify([p for _, p in queries], extractor, top_k=3))
    q = _queries(queries, results)
    accepted, rejected = operating_point(q)
    posted_dir = data / f"posted-jpeg{POSTED_QUALITY}"
    say(f"[bold]4. identify the same images as posted online[/bold] (JPEG at {POSTED_QUALITY}, in {posted_dir})")
    posted = [(truth, _posted_copy(path, posted_dir)) for truth, path in queries]
    posted_results = list(gallery.identify([p for _, p in posted], extractor, top_k=3))
    pq = _queries(posted, posted_results)
    versions = sorted({r.delivery["version"] for r in posted_results if r.delivery})
    return DemoOutcome(per_generator(q), closed_set_accuracy(q), open_set_auroc(q), oscr(q), accepted, rejected,
                       [r.error for r in results + posted_results if r.error], paths[UNKNOWN[0]][-1],
                       time.perf_counter() - started, (closed_set_accuracy(pq), *operating_point(pq), versions))


def _queries(queries: list[tuple[str, Path]], results: list[IdentificationResult]) -> OpenSetQueries:
    from .metrics import OpenSetQueries

    ok = [(truth, r) for (truth, _), r in zip(queries, results) if not r.error]
    return OpenSetQueries(
        truth=[t for t, _ in ok],
        predicted=[r.require_nearest().generator for _, r in ok],
        score=np.array([r.score for _, r in ok]),
        accepted=np.array([r.accepted for _, r in ok]),
        known=np.array([t in ENROLLED for t, _ in ok]),
    )


def _posted_copy(path: Path, folder: Path) -> Path:
    """``path`` saved as a JPEG at :data:`POSTED_QUALITY` in ``folder`` (kept when present)."""
    from PIL import Image

    out = folder / path.parent.name / f"{path.stem}.jpg"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(path) as image:
            image.convert("RGB").save(out.with_suffix(".tmp"), format="JPEG", quality=POSTED_QUALITY)
        out.with_suffix(".tmp").replace(out)
    return out
