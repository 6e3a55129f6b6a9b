"""Speed and memory benchmark: decode vs extract per image, the wall time of one `attrib identify`,
and the peak memory of `attrib identify` and `attrib enroll` on many files.

    python benchmarks/bench.py [--folder DIR] [--extractor residual] [--gallery-size 1000] [--no-memory]

Without --folder it measures zoo images at 256, 512 and 1024 px (written once to
benchmarks/.cache), then how many images a second the loader reads, hashes and decodes on
one thread and on its default threads ($ATTRIB_WORKERS, else one per CPU). Targets on a
2-core machine: extract <= 2x decode, and a single `attrib identify one.png` against a
1,000-image gallery under 1 s wall. Memory: the peak RSS of each command in its own process
(``os.wait4``), for `identify --json` over 25 and 100 JPEGs of 4 KB whose headers say 8000x7999
(under the 64-Mpx cap, so each is decoded in full) and for `enroll` of 100 and 400 images of
1024x768; target <= 600 MB, flat in the number of files.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"


def per_image_ms(paths, extractor, repeats=3):
    from attrib.images import decode_bytes

    blobs = [p.read_bytes() for p in paths]
    decode, extract = [], []
    for _ in range(repeats):
        for blob, path in zip(blobs, paths):
            t0 = time.perf_counter()
            pixels, _ = decode_bytes(blob, str(path))
            t1 = time.perf_counter()
            extractor.embed([pixels])
            t2 = time.perf_counter()
            decode.append(t1 - t0)
            extract.append(t2 - t1)
    return 1000 * statistics.median(decode), 1000 * statistics.median(extract)


def load_rate(paths, repeats=3) -> tuple[float, float, int]:
    """Images/s through attrib's loader (read, hash, decode) on one thread and on its default threads."""
    from attrib.images import decode_workers, load_images

    def rate(workers):
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            for _path, loaded in load_images(paths, workers=workers):
                pass
            best = min(best, time.perf_counter() - t0)
        return len(paths) / best

    return rate(1), rate(None), decode_workers()


def identify_wall(gallery_size: int, extractor_name: str) -> tuple[float, int]:
    import attrib
    from attrib.synthetic.zoo import write_zoo, zoo_generator_names

    names = zoo_generator_names()[:10]
    per = max(1, gallery_size // len(names))
    data = CACHE / "gallery-images"
    paths = write_zoo(data, names, n_per=per + 1, size=256)
    bound = attrib.load_extractor(extractor_name)
    from attrib.synthetic.cohort import COHORT_VERSION

    gallery_dir = CACHE / f"gallery-{gallery_size}-{bound.name}-v{bound.version}-cohort{COHORT_VERSION}"
    with attrib.open_gallery(gallery_dir) as gallery:
        have = sum(g.samples for g in gallery.generators())
        if have < per * len(names):
            for name in names:
                gallery.enroll(name, paths[name][:per], bound)
        have = sum(g.samples for g in gallery.generators())
    query = paths[names[0]][per]
    attrib = Path(sys.executable).parent / "attrib"
    cmd = [str(attrib), "--gallery", str(gallery_dir), "identify", "-e", extractor_name, str(query)]
    subprocess.run(cmd, check=True, capture_output=True)  # warm the file cache
    walls = []
    for _ in range(5):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        walls.append(time.perf_counter() - t0)
    return statistics.median(walls), have


def decision_costs(gallery_size: int, extractor_name: str) -> tuple[float, float, int]:
    """(calibration s, decision ms per query, generators) on the cached bench gallery: thresholds are set
    on the impostor cohort at calibration, so a query pays only ranking and the decision."""
    import attrib
    from attrib.scoring.decision import decide, rank
    from attrib.scoring.open_set import DecisionModel
    from attrib.synthetic.cohort import COHORT_VERSION

    bound = attrib.load_extractor(extractor_name)
    gallery_dir = CACHE / f"gallery-{gallery_size}-{bound.name}-v{bound.version}-cohort{COHORT_VERSION}"
    with attrib.open_gallery(gallery_dir) as gallery:
        t0 = time.perf_counter()
        gallery.calibrate()
        calibration_s = time.perf_counter() - t0
        view = gallery.open_index(bound)
    model = DecisionModel.from_dict(view.model)
    rng = np.random.default_rng(0)
    gids = list(view.generator_names)
    queries = [dict(zip(gids, rng.random(len(gids)))) for _ in range(2000)]
    t0 = time.perf_counter()
    for scores in queries:
        decide([c for _, c in rank(scores, view.threshold, model, view.generator_names, view.families)], model)
    return calibration_s, (time.perf_counter() - t0) / len(queries) * 1000, len(gids)


def large_header_jpegs(n: int, width: int = 8000, height: int = 7999) -> Path:
    """A folder of ``n`` tiny JPEGs (a 64x64 image) whose frame header says ``width`` x ``height``."""
    from PIL import Image

    folder = CACHE / f"large-header-{n}"
    if len(list(folder.glob("*.jpg"))) == n:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        buffer = io.BytesIO()
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buffer, "JPEG")
        data = bytearray(buffer.getvalue())
        sof = data.index(b"\xff\xc0")  # baseline frame header: length (2), precision (1), height, width
        struct.pack_into(">HH", data, sof + 5, height, width)
        (folder / f"{i:04d}.jpg").write_bytes(data)
    return folder


def enroll_images(n: int, width: int = 1024, height: int = 768) -> Path:
    """A folder of ``n`` different smooth JPEGs of ``width`` x ``height`` (cheap to write, full size to decode)."""
    from PIL import Image

    folder = CACHE / f"enroll-{n}"
    if len(list(folder.glob("*.jpg"))) == n:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    ramp = np.add.outer(np.arange(height), np.arange(width)) % 256
    for i in range(n):
        rng = np.random.default_rng(i)
        pixels = np.stack([ramp, ramp[::-1], (ramp + 40 * i) % 256], axis=2) + rng.integers(0, 8, (height, width, 3))
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(folder / f"{i:04d}.jpg", quality=90)
    return folder


def peak_rss_mb(args: list[str]) -> float:
    """Peak resident memory of ``attrib ARGS`` run in its own process, in MB (output discarded)."""
    exe = str(Path(sys.executable).parent / "attrib")
    quiet = [(os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_WRONLY, 0) for fd in (1, 2)]
    pid = os.posix_spawn(exe, [exe, *args], dict(os.environ), file_actions=quiet)
    _, _status, usage = os.wait4(pid, 0)
    return usage.ru_maxrss / 1024  # kB on Linux


def memory_figures(extractor_name: str) -> list[str]:
    """Peak RSS of enroll (100 and 400 images) and identify (25 and 100 large-header files), each in a fresh gallery."""
    import tempfile

    lines = []
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        small = enroll_images(100)
        peaks = {n: peak_rss_mb(["--gallery", f"{tmp}/g{n}", "enroll", "-e", extractor_name, "-g", "bench",
                                 str(enroll_images(n))]) for n in (100, 400)}
        lines.append(f"peak RSS of `attrib enroll` of 100 / 400 images of 1024x768: "
                     f"{peaks[100]:.0f} / {peaks[400]:.0f} MB")
        one = peak_rss_mb(["--gallery", f"{tmp}/g100", "identify", "--json", "-e", extractor_name,
                           str(next(small.glob("*.jpg")))])
        peaks = {n: peak_rss_mb(["--gallery", f"{tmp}/g100", "identify", "--json", "-e", extractor_name,
                                 str(large_header_jpegs(n))]) for n in (25, 100)}
        lines.append(f"peak RSS of `attrib identify --json` over 25 / 100 JPEGs of 4 KB whose headers say "
                     f"8000x7999: {peaks[25]:.0f} / {peaks[100]:.0f} MB (one small image: {one:.0f} MB)")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, help="Folder of images to time (default: zoo images).")
    parser.add_argument("--extractor", default="residual")
    parser.add_argument("--gallery-size", type=int, default=1000)
    parser.add_argument("--limit", type=int, default=40, help="Images per folder to time.")
    parser.add_argument("--no-memory", action="store_true", help="Skip the peak-memory figures (a few minutes).")
    args = parser.parse_args()

    import attrib
    from attrib.images import iter_image_files

    extractor = attrib.load_extractor(args.extractor)
    if args.folder:
        sets = {str(args.folder): sorted(iter_image_files([args.folder]))[: args.limit]}
    else:
        from attrib.synthetic.zoo import write_zoo

        sets = {}
        for size in (256, 512, 1024):
            written = write_zoo(CACHE / f"zoo-{size}", ["tconv-1", "nearest-1"], n_per=args.limit // 2, size=size)
            sets[f"zoo PNG {size}px"] = [p for ps in written.values() for p in ps]
    print(f"extractor {extractor.identity.key}, one thread per image")
    print(f"{'images':24s} {'n':>4s} {'decode ms':>10s} {'extract ms':>11s} {'extract/decode':>15s}")
    for label, paths in sets.items():
        decode, extract = per_image_ms(paths, extractor)
        print(f"{label:24s} {len(paths):4d} {decode:10.2f} {extract:11.2f} {extract / decode:15.2f}x")
    print(f"{'loading (read+hash+decode)':28s} {'n':>4s} {'1 thread img/s':>15s} {'threads':>8s} {'img/s':>7s} {'ratio':>6s}")
    for label, paths in sets.items():
        one, many, workers = load_rate(paths)
        print(f"{label:28s} {len(paths):4d} {one:15.1f} {workers:8d} {many:7.1f} {many / one:5.2f}x")
    wall, size = identify_wall(args.gallery_size, args.extractor)
    print(f"`attrib identify one.png` against a {size}-image gallery: {wall:.3f} s wall (median of 5)")
    calibration_s, decision_ms, generators = decision_costs(args.gallery_size, args.extractor)
    print(f"open-set decision per query ({generators} generators; the cohort is scored at calibration, never per "
          f"query): {decision_ms:.3f} ms; calibration against the cohort: {calibration_s:.2f} s")
    if not args.no_memory:
        for line in memory_figures(args.extractor):
            print(line)


if __name__ == "__main__":
    main()
