"""Batch throughput: `attrib identify --output out.jsonl DIR` against decode-only on the same files.

    python benchmarks/bench_batch.py [--images 200] [--size 512] [--extractor residual] [--repeats 3]

Writes --images images of --size px (half PNG, half JPEG q90, noise over gradients) and a small
gallery (3 generators x 10 images, the default `residual` extractor) to a temporary folder, then
prints images/s of: the loader alone (read, hash, decode: attrib.images.load_images), the library's
identification loop writing records (Gallery.identify into an output file, no process start), and
the whole command in its own process (start-up included), all on the same decode threads
($ATTRIB_WORKERS, else one per CPU). Target: the command >= 0.8x decode-only. Best of --repeats.

These run with attrib's built-in plugins only (ATTRIB_LOAD_PLUGINS=""); the command is then run once
more with the installed plugins, whose evidence readers see every file (--installed-plugins 0 skips it).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ATTRIB = [sys.executable, "-c", "from attrib.cli import main; main()"]


def write_images(folder: Path, n: int, size: int, seed: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 160, size, dtype=np.float32)
    paths = []
    for i in range(n):
        tint = rng.uniform(0, 90, 3).astype(np.float32)
        base = ramp[:, None, None] * 0.5 + ramp[None, :, None] * 0.5 + tint
        pixels = np.clip(base + rng.normal(0, 12, (size, size, 3)), 0, 255).astype(np.uint8)
        path = folder / f"img{i:05d}.{'png' if i % 2 else 'jpg'}"
        Image.fromarray(pixels).save(path, **({} if i % 2 else {"quality": 90}))
        paths.append(path)
    return paths


def three_generator_gallery(root: Path, extractor: str, size: int) -> Path:
    """``root/gallery``: three generators of 10 images of ``size`` px each, enrolled with ``extractor``."""
    from attrib.gallery import Gallery

    gallery_dir = root / "gallery"
    with Gallery(gallery_dir) as gallery:
        bound = gallery.load_extractor(extractor)
        for g in range(3):
            gallery.enroll(f"gen{g}", write_images(root / f"gen{g}", 10, size, seed=10 + g), bound)
    return gallery_dir


def best_rate(n: int, run, repeats: int) -> float:
    best = float("inf")
    for attempt in range(repeats):
        start = time.perf_counter()
        run(attempt)
        best = min(best, time.perf_counter() - start)
    return n / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--extractor", default="residual")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--installed-plugins", type=int, default=1, metavar="RUNS",
                        help="runs of the command with the installed plugins (0: none)")
    args = parser.parse_args()
    installed_plugins = os.environ.pop("ATTRIB_LOAD_PLUGINS", None)
    os.environ["ATTRIB_LOAD_PLUGINS"] = ""

    from attrib.gallery import Gallery
    from attrib.images import decode_workers, load_images

    with tempfile.TemporaryDirectory(prefix="attrib-bench-batch-") as tmp:
        root = Path(tmp)
        queries = write_images(root / "queries", args.images, args.size, seed=1)
        start = time.perf_counter()
        gallery_dir = three_generator_gallery(root, args.extractor, args.size)
        print(f"setup: {args.images} queries of {args.size} px, gallery of 3 x 10 ({args.extractor}) in "
              f"{time.perf_counter() - start:.1f} s; decode threads: {decode_workers()}")

        def decode_only(_):
            for _path, _loaded in load_images(queries):
                pass

        def library(attempt):
            from attrib.batch.output import OutputFile
            from attrib.batch.records import IDENTIFY_COLUMNS, RecordFormat, result_record
            from attrib.batch.run import run_batch

            out = OutputFile(root / f"lib{attempt}.jsonl", RecordFormat("jsonl", IDENTIFY_COLUMNS))
            try:
                with Gallery(gallery_dir, read_only=True) as gallery:
                    results = gallery.identify(queries, gallery.load_extractor(args.extractor))
                    summary = run_batch(results, result_record, lambda _item, record: out.write(record))
            finally:
                out.close()
            assert summary.images == args.images and not summary.failed, summary.line("identify")

        def command(attempt, plugins=""):
            out = root / f"cli{plugins is None}{attempt}.jsonl"
            env = {k: v for k, v in os.environ.items() if k != "ATTRIB_LOAD_PLUGINS"}
            if plugins is not None:
                env["ATTRIB_LOAD_PLUGINS"] = plugins
            subprocess.run([*ATTRIB, "--gallery", str(gallery_dir), "identify", "-e", args.extractor, "--output",
                            str(out), str(root / "queries")], check=True, stderr=subprocess.DEVNULL, env=env)
            assert sum(1 for _ in open(out)) == args.images

        decode = best_rate(args.images, decode_only, args.repeats)
        lib = best_rate(args.images, library, args.repeats)
        cli = best_rate(args.images, command, args.repeats)
        print(f"decode only (read, hash, decode):          {decode:8.1f} images/s")
        print(f"Gallery.identify -> out.jsonl (in process): {lib:8.1f} images/s  {lib / decode:.2f}x decode")
        print(f"attrib identify --output out.jsonl DIR:     {cli:8.1f} images/s  {cli / decode:.2f}x decode "
              f"(target >= 0.8x)")
        if args.installed_plugins > 0:
            rate = best_rate(args.images, lambda attempt: command(attempt, installed_plugins), args.installed_plugins)
            print(f"  the same with the installed plugins:      {rate:8.1f} images/s  {rate / decode:.2f}x decode")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
