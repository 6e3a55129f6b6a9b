"""What storing thumbnails costs at enrollment (prints figures, asserts nothing).

    python benchmarks/bench_thumbnails.py [--images 200] [--size 512] [--repeats 2] [--workdir DIR]

Writes ``--images`` zoo images (``--size`` px, PNG, over 4 generators), then enrolls them with the default
``residual`` extractor into fresh galleries, alternately with thumbnails and with the thumbnail step
replaced by one that makes none, ``--repeats`` times each; prints the best wall time of each, the added
time per image, the time of :func:`attrib.enrollment.make_thumbnail` alone, and the bytes per stored
thumbnail (mean, median, max) and the gallery database size with and without them.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

GENERATORS = ["upconv-1", "tconv-2", "bicubic-3", "shuffle-4"]


def enroll_all(root: Path, paths: dict[str, list[Path]], extractor) -> float:
    from attrib.gallery import Gallery

    start = time.perf_counter()
    with Gallery(root) as gallery:
        for name, files in paths.items():
            gallery.enroll(name, files, extractor)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args(argv)

    import attrib
    from attrib import enrollment
    from attrib.images import load_image
    from attrib.synthetic.zoo import write_zoo

    work = args.workdir or Path(tempfile.mkdtemp(prefix="attrib-bench-thumbs-"))
    per = max(1, args.images // len(GENERATORS))
    paths = write_zoo(work / "images", GENERATORS, n_per=per, size=args.size)
    count = sum(len(v) for v in paths.values())
    extractor = attrib.load_extractor("residual")
    made = enrollment.make_thumbnail

    def no_thumbnail(pixels):
        return None

    times = {"with": [], "without": []}
    for repeat in range(args.repeats):
        for label in ("without", "with"):
            root = work / f"g-{label}-{repeat}"
            shutil.rmtree(root, ignore_errors=True)
            enrollment.make_thumbnail = made if label == "with" else no_thumbnail
            try:
                times[label].append(enroll_all(root, paths, extractor))
            finally:
                enrollment.make_thumbnail = made
    pixels = [load_image(p).pixels for p in paths[GENERATORS[0]][:20]]
    start = time.perf_counter()
    for array in pixels:
        made(array)
    alone = (time.perf_counter() - start) / len(pixels)

    con = sqlite3.connect(work / "g-with-0" / "gallery.db")
    sizes = [n for (n,) in con.execute("SELECT length(data) FROM thumbnails")]
    con.close()
    best_with, best_without = min(times["with"]), min(times["without"])
    db_with = (work / "g-with-0" / "gallery.db").stat().st_size
    db_without = (work / "g-without-0" / "gallery.db").stat().st_size
    print(f"{count} images of {args.size} px, {args.repeats} repeats, best of each")
    print(f"enroll without thumbnails: {best_without:.2f} s ({1000 * best_without / count:.1f} ms/image)")
    print(f"enroll with thumbnails:    {best_with:.2f} s ({1000 * best_with / count:.1f} ms/image)")
    print(f"added: {1000 * (best_with - best_without) / count:+.2f} ms/image "
          f"({100 * (best_with / best_without - 1):+.1f} %); make_thumbnail alone {1000 * alone:.2f} ms/image")
    print(f"thumbnails stored: {len(sizes)}; bytes each: mean {statistics.mean(sizes):.0f}, "
          f"median {statistics.median(sizes):.0f}, max {max(sizes)}")
    print(f"gallery.db: {db_with / 1e6:.2f} MB with, {db_without / 1e6:.2f} MB without")
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
