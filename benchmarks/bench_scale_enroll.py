"""Enrollment and cold identification against galleries of growing size (prints figures, asserts nothing).

    python benchmarks/bench_scale_enroll.py [--sizes 1k,10k,100k] [--generators 500] [--images 10]
                                            [--few-large 6x10k] [--repeats 3] [--workdir DIR] [--json]

For each size a gallery of that many synthetic samples (unit vectors of the default ``residual``
extractor's dimension, clustered in ``--generators`` generators) is built through the library's
bulk API (:meth:`attrib.gallery.Gallery.enroll_embedded`, then one ``calibrate``); then, each in a
fresh process: ``attrib enroll`` of ``--images`` real images (zoo images of a new generator) and
``attrib identify`` of one image. Prints for each size the build time, the wall time and peak RSS
of both commands, the gallery's file sizes, and the ratio of the enroll time at the largest size
to that at the smallest. 1M (``--sizes 1m``) takes several minutes to build (the HNSW index).

Then the few large generators case (``--few-large``, ``GxN``: G generators of N samples each): a
gallery of 1,000 samples and one of G x N, both of G generators, each receiving ``--images``
images of a new generator (the median of ``--repeats`` enrolls, each into a fresh copy), then a
forced ``attrib calibrate`` of the large one (a full refit, which keeps the index's graph when it
can). Prints both enroll times and their ratio; enrolling a few images of a new generator should
cost about the same whatever the size of the generators already there.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

NEW_GENERATOR = "upconv-2"


def parse_size(text: str) -> int:
    text = text.strip().lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text[:-1] if scale > 1 else text) * scale)


def synthetic(n: int, generators: int, dim: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` unit vectors of ``dim`` in ``generators`` clusters, and each vector's generator (sorted)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(generators, dim)).astype(np.float32)
    labels = np.sort(rng.integers(0, generators, n))
    vectors = centres[labels] + rng.normal(scale=0.6, size=(n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors, labels


def build(root: Path, n: int, generators: int, extractor) -> float:
    """Fill a gallery at ``root`` with ``n`` synthetic samples through the bulk API; seconds taken."""
    from attrib.gallery import Gallery
    from attrib.images import ImageRecord

    vectors, labels = synthetic(n, generators, extractor.dim)
    start = time.perf_counter()
    with Gallery(root) as gallery:
        bounds = np.searchsorted(labels, np.arange(generators + 1))
        for g in range(generators):
            rows = range(bounds[g], bounds[g + 1])
            records = [ImageRecord(Path(f"/synthetic/{n}/gen-{g}/{i}.png"),
                                   hashlib.sha256(f"{n}/{i}".encode()).hexdigest(), "PNG", 1000, 64, 64)
                       for i in rows]
            if records:
                gallery.enroll_embedded(f"gen-{g}", records, vectors[rows.start: rows.stop], extractor,
                                        bring_up_to_date=False)
        gallery.ensure_cohort(extractor)
        gallery.calibrate()
    return time.perf_counter() - start


RUN_MEASURED = ("import json, resource, subprocess, sys, time\n"
                "start = time.perf_counter()\n"
                "status = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
                "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
                "print(json.dumps([time.perf_counter() - start, peak, status]))")


def timed(command: list[str]) -> tuple[float, float, int]:
    """Run ``command``: (wall seconds, peak RSS in MB, exit status). A small Python process starts it and
    reads its peak RSS (a child forked from this process would count this process's memory too)."""
    result = subprocess.run([sys.executable, "-c", RUN_MEASURED, *command], capture_output=True, text=True,
                            check=True)
    wall, peak_kb, status = json.loads(result.stdout)
    return wall, peak_kb / 1024, status


def attrib(gallery: Path, *args: str) -> list[str]:
    return [sys.executable, "-c", "from attrib.cli import main; main()", "--gallery", str(gallery), *args]


def median_enroll(root: Path, images: Path, repeats: int) -> float:
    """Median wall seconds of ``attrib enroll`` of ``images`` (a new generator) into fresh copies of ``root``."""
    times = []
    for run in range(repeats):
        copy = root.with_name(f"{root.name}-run{run}")
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(root, copy)
        wall, _, status = timed(attrib(copy, "enroll", "-g", NEW_GENERATOR, str(images)))
        if status:
            raise RuntimeError(f"attrib enroll into {copy} exited with {status}")
        times.append(wall)
        shutil.rmtree(copy, ignore_errors=True)
    return float(np.median(times))


def few_large(work: Path, generators: int, per_generator: int, images: Path, extractor, repeats: int) -> dict:
    """Enrolling a new generator's images into a gallery of 1,000 samples and into one of ``generators`` x
    ``per_generator`` (both of ``generators`` generators), and a forced refit of the large one."""
    row = {"generators": generators, "per_generator": per_generator}
    for name, n in (("small", 1_000), ("large", generators * per_generator)):
        root = work / f"few-{generators}x{n}"
        shutil.rmtree(root, ignore_errors=True)
        row[f"{name}_samples"] = n
        row[f"{name}_build_s"] = round(build(root, n, generators, extractor), 2)
        row[f"{name}_enroll_s"] = round(median_enroll(root, images, repeats), 3)
    calibrate_s, _, status = timed(attrib(root, "calibrate"))
    row["large_calibrate_s"], row["calibrate_status"] = round(calibrate_s, 3), status
    row["ratio"] = round(row["large_enroll_s"] / row["small_enroll_s"], 2)
    return row


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def measure(root: Path, n: int, generators: int, images: Path, extractor) -> dict:
    build_s = build(root, n, generators, extractor)
    enroll_s, enroll_mb, enroll_rc = timed(attrib(root, "enroll", "-g", NEW_GENERATOR, str(images)))
    query = sorted(images.iterdir())[0]
    identify_s, identify_mb, identify_rc = timed(attrib(root, "identify", str(query)))
    return {"samples": n, "build_s": round(build_s, 2), "enroll_s": round(enroll_s, 3),
            "enroll_peak_mb": round(enroll_mb), "enroll_status": enroll_rc, "identify_s": round(identify_s, 3),
            "identify_peak_mb": round(identify_mb), "identify_status": identify_rc,
            "database_mb": round((root / "gallery.db").stat().st_size / 2**20, 1),
            "index_mb": round(folder_size(root / "index") / 2**20, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1k,10k,100k", help="gallery sizes, e.g. 1k,10k,100k,1m")
    parser.add_argument("--generators", type=int, default=500)
    parser.add_argument("--images", type=int, default=10, help="real images enrolled into each gallery")
    parser.add_argument("--few-large", default="6x10k",
                        help="few large generators, GxN[,GxN...] (G generators of N samples; empty: skip)")
    parser.add_argument("--repeats", type=int, default=3, help="enrolls timed per few-large gallery (median)")
    parser.add_argument("--workdir", type=Path, help="keep the galleries here (default: a temporary folder)")
    parser.add_argument("--json", action="store_true", help="print the rows and ratios as one JSON object")
    args = parser.parse_args(argv)
    import attrib
    from attrib.synthetic.zoo import write_zoo

    work = args.workdir or Path(tempfile.mkdtemp(prefix="attrib-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    images = work / "images"
    write_zoo(images, [NEW_GENERATOR], n_per=args.images, size=128)
    extractor = attrib.load_extractor("residual")
    rows = []
    for n in (parse_size(s) for s in args.sizes.split(",") if s.strip()):
        root = work / f"gallery-{n}"
        shutil.rmtree(root, ignore_errors=True)
        row = measure(root, n, args.generators, images / NEW_GENERATOR, extractor)
        rows.append(row)
        if not args.json:
            print(f"{n:>9} samples: built in {row['build_s']:.1f} s; enroll {args.images} images "
                  f"{row['enroll_s']:.2f} s (peak {row['enroll_peak_mb']} MB); cold identify "
                  f"{row['identify_s']:.2f} s (peak {row['identify_peak_mb']} MB); gallery.db "
                  f"{row['database_mb']} MB, index {row['index_mb']} MB", flush=True)
        if args.workdir is None:
            shutil.rmtree(root, ignore_errors=True)
    ratios = {}
    if len(rows) > 1:
        ratios = {f"enroll({rows[-1]['samples']})/enroll({rows[0]['samples']})":
                  round(rows[-1]["enroll_s"] / rows[0]["enroll_s"], 2)}
        by_size = {r["samples"]: r for r in rows}
        if 1_000 in by_size and 100_000 in by_size:
            ratios["enroll(100000)/enroll(1000)"] = round(by_size[100_000]["enroll_s"] / by_size[1_000]["enroll_s"], 2)
    if not args.json:
        for name, value in ratios.items():
            print(f"{name} = {value}")
    few = []
    for spec in (s.strip().lower() for s in args.few_large.split(",") if s.strip()):
        generators, per_generator = spec.split("x")
        row = few_large(work, int(generators), parse_size(per_generator), images / NEW_GENERATOR, extractor,
                        args.repeats)
        few.append(row)
        ratios[f"enroll({row['generators']}x{row['per_generator']})/enroll(1000)"] = row["ratio"]
        if not args.json:
            print(f"few large generators, {args.images} images of a new generator (median of {args.repeats}): "
                  f"into {row['generators']} x {row['per_generator']} samples {row['large_enroll_s']:.2f} s, "
                  f"into {row['small_samples']} samples of {row['generators']} generators "
                  f"{row['small_enroll_s']:.2f} s, ratio {row['ratio']}; forced refit (attrib calibrate) of "
                  f"the large one {row['large_calibrate_s']:.2f} s", flush=True)
    if args.json:
        print(json.dumps({"rows": rows, "few_large": few, "ratios": ratios}))
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if all(r["enroll_status"] == 0 and r["identify_status"] == 0 for r in rows) and \
        all(r["calibrate_status"] == 0 for r in few) else 1


if __name__ == "__main__":
    sys.exit(main())
