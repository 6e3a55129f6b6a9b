"""What delivery versions cost (prints figures and ratios, asserts nothing).

    python benchmarks/bench_versions.py [--generators 10] [--per 20] [--queries 100] [--ladder default] [--size 512]

Enrolls ``--generators`` zoo generators of ``--per`` images (``--size`` px PNG, default 512) into two galleries, one without
versions and one with the ladder ``--ladder``, and prints for each: enroll wall time, vectors stored,
index files and database bytes; then identify through the library on ``--queries`` PNG queries and on the
same queries as JPEG at 80 (per image, warm, median of 3 runs); then a cold `attrib identify one.png` /
`one.jpg` (its own process, median of 5). The ratios compare the versioned gallery with the plain one.

Run it with an older attrib on PYTHONPATH (``--plain-only``) to compare identify with the code before
versions: that code has no ``versions`` argument, so only the plain gallery is built.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"


def folder_bytes(folder: Path, suffixes: tuple[str, ...]) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and p.name.endswith(suffixes))


def enroll(gallery_dir: Path, images: dict[str, list[Path]], versions: str | None) -> float:
    import attrib

    bound = attrib.load_extractor("residual")
    started = time.perf_counter()
    with attrib.open_gallery(gallery_dir) as gallery:
        for name, paths in images.items():
            if versions is None:
                gallery.enroll(name, paths, bound)
            else:
                gallery.enroll(name, paths, bound, versions=versions)
    return time.perf_counter() - started


def identify_ms(gallery_dir: Path, queries: list[Path], repeats: int = 3) -> tuple[float, float]:
    """(wall, CPU of every thread) ms per query, medians over ``repeats`` runs; CPU time holds steady on a
    busy machine where wall time does not."""
    import attrib

    bound = attrib.load_extractor("residual")
    walls, cpus = [], []
    with attrib.open_gallery(gallery_dir, read_only=True) as gallery:
        list(gallery.identify(queries[:4], bound))  # load the views once
        for _ in range(repeats):
            started, cpu = time.perf_counter(), time.process_time()
            list(gallery.identify(queries, bound))
            walls.append((time.perf_counter() - started) / len(queries) * 1000)
            cpus.append((time.process_time() - cpu) / len(queries) * 1000)
    return statistics.median(walls), statistics.median(cpus)


def cold_identify_s(gallery_dir: Path, query: Path) -> float:
    command = [str(Path(sys.executable).parent / "attrib"), "--gallery", str(gallery_dir), "identify", str(query)]
    subprocess.run(command, check=True, capture_output=True)
    walls = []
    for _ in range(5):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        walls.append(time.perf_counter() - started)
    return statistics.median(walls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generators", type=int, default=10)
    parser.add_argument("--per", type=int, default=20)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--ladder", default="default")
    parser.add_argument("--size", type=int, default=512, help="pixels per side of the zoo images")
    parser.add_argument("--plain-only", action="store_true", help="only the gallery without versions")
    args = parser.parse_args()
    from attrib.synthetic.zoo import write_zoo, zoo_generator_names

    names = zoo_generator_names()[:args.generators]
    extra = -(-args.queries // len(names))
    zoo = write_zoo(CACHE / f"versions-zoo-{args.size}", names, n_per=args.per + extra, size=args.size)
    images = {name: zoo[name][:args.per] for name in names}
    with tempfile.TemporaryDirectory(prefix="attrib-bench-versions-") as tmp:
        work = Path(tmp)
        pngs = [p for name in names for p in zoo[name][args.per:]][:args.queries]
        jpegs = []
        for path in pngs:
            out = work / "jpeg" / f"{path.parent.name}-{path.stem}.jpg"
            out.parent.mkdir(exist_ok=True)
            with Image.open(path) as image:
                image.convert("RGB").save(out, quality=80)
            jpegs.append(out)
        setups = [("no versions", "none")] + ([] if args.plain_only else [(f"versions {args.ladder}", args.ladder)])
        rows = {}
        for label, ladder in setups:
            gallery_dir = work / label.replace(" ", "-")
            os.environ["ATTRIB_DELIVERY_LADDER"] = ladder  # read by attrib when enroll is given no versions
            wall = enroll(gallery_dir, images, None)
            rows[label] = {
                "enroll_s": wall, "index_bytes": folder_bytes(gallery_dir, (".faiss", ".npy")),
                "db_bytes": folder_bytes(gallery_dir, (".db",)),
                **dict(zip(("png_ms", "png_cpu_ms"), identify_ms(gallery_dir, pngs))),
                **dict(zip(("jpeg_ms", "jpeg_cpu_ms"), identify_ms(gallery_dir, jpegs))),
                "cold_png_s": cold_identify_s(gallery_dir, pngs[0]), "cold_jpeg_s": cold_identify_s(gallery_dir, jpegs[0]),
            }
        os.environ.pop("ATTRIB_DELIVERY_LADDER", None)
    n = args.generators * args.per
    print(f"{n} enrolled images ({args.size} px), {len(pngs)} queries; residual")
    print(f"{'gallery':28s} {'enroll s':>9s} {'index MB':>9s} {'db MB':>7s} {'PNG ms/q (cpu)':>15s} "
          f"{'JPEG ms/q (cpu)':>16s} {'cold PNG s':>11s} {'cold JPEG s':>12s}")
    for label, row in rows.items():
        print(f"{label:28s} {row['enroll_s']:9.2f} {row['index_bytes'] / 1e6:9.2f} {row['db_bytes'] / 1e6:7.2f} "
              f"{row['png_ms']:7.2f} ({row['png_cpu_ms']:5.2f}) {row['jpeg_ms']:8.2f} ({row['jpeg_cpu_ms']:5.2f}) "
              f"{row['cold_png_s']:11.3f} {row['cold_jpeg_s']:12.3f}")
    if len(rows) == 2:
        plain, versioned = rows.values()
        print("ratios (versions / none): " + ", ".join(
            f"{key} {versioned[key] / plain[key]:.2f}x" for key in plain))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
