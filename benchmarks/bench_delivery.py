"""What measuring a query's delivery costs next to decoding it (prints figures, asserts nothing).

    python benchmarks/bench_delivery.py [--sizes 512 1024] [--repeats 30]
    python benchmarks/bench_delivery.py --real-dev ../shared/data/real-dev [--qualities 80] [--crop 256]

For zoo images of each size, written as PNG, as PNG of a JPEG (q 80), as JPEG (q 80) and as lossy and
lossless WebP, prints the best and median time of :func:`attrib.delivery.measure_delivery` given the
bytes and the pixels the loader decoded already (its use in the loader), and of decoding the same bytes
(:func:`attrib.images.decode_bytes`), per image, in milliseconds.

With ``--real-dev FOLDER``, measures the detector of JPEG-coded-before pixels on real files instead: how
each PNG/WebP file there is described, then each one not JPEG-coded already, JPEG'd at each of
``--qualities`` (after a centre crop of ``--crop`` px, as the dev protocol's queries) and saved as PNG in a
temporary folder: the share found, and found within 10 of the quality.
"""

from __future__ import annotations

import argparse
import collections
import io
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def timed(call, repeats: int) -> tuple[float, float]:
    """(best, median) wall time of ``call()`` in milliseconds, after one warm-up call."""
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return min(times), statistics.median(times)


def encode(pixels: np.ndarray, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt, **options)
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--real-dev", type=Path, help="measure detection on the PNG/WebP files of this folder")
    parser.add_argument("--qualities", type=int, nargs="+", default=[80])
    parser.add_argument("--crop", type=int, help="centre-crop the real files to this side before JPEG")
    args = parser.parse_args(argv)
    if args.real_dev:
        return real_files(args.real_dev, args.qualities, args.crop)

    from attrib.delivery import measure_delivery
    from attrib.images import decode_bytes
    from attrib.synthetic.zoo import render

    print(f"{'file':<28} {'measure best/median ms':>24} {'decode best/median ms':>24}  delivery")
    for size in args.sizes:
        pixels = render("tconv-1", 3, size)
        jpeg = encode(pixels, "JPEG", quality=80)
        files = {"PNG": encode(pixels, "PNG"), "PNG of a JPEG q80": encode(decode_bytes(jpeg, "jpeg")[0], "PNG"),
                 "JPEG q80": jpeg, "lossy WebP q80": encode(pixels, "WEBP", quality=80),
                 "lossless WebP": encode(pixels, "WEBP", lossless=True)}
        for name, data in files.items():
            decoded = decode_bytes(data, name)[0]
            measure = timed(lambda: measure_delivery(data, decoded), args.repeats)
            decode = timed(lambda: decode_bytes(data, name), args.repeats)
            print(f"{f'{name} {size}px':<28} {measure[0]:>11.2f} /{measure[1]:>9.2f}   {decode[0]:>11.2f} /{decode[1]:>9.2f}"
                  f"   {measure_delivery(data, decoded).describe()}")
    return 0


def real_files(folder: Path, qualities: list[int], crop: int | None) -> int:
    from attrib.delivery import measure_delivery
    from attrib.images import load_image

    described: collections.Counter = collections.Counter()
    found: collections.Counter = collections.Counter()
    within: collections.Counter = collections.Counter()
    cases: collections.Counter = collections.Counter()
    with tempfile.TemporaryDirectory(prefix="attrib-bench-delivery-") as work:
        for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".png", ".webp")):
            loaded = load_image(path)
            delivery = measure_delivery(path.read_bytes(), loaded.pixels)
            described[f"{path.parent.name}: {delivery.describe()}"] += 1
            if delivery.jpeg_before:
                continue
            pixels = np.asarray(loaded.pixels)
            if crop:
                top, left = (max(0, (side - crop) // 2) for side in pixels.shape[:2])
                pixels = pixels[top: top + crop, left: left + crop]
            for quality in qualities:
                png = Path(work) / "query.png"
                Image.open(io.BytesIO(encode(pixels, "JPEG", quality=quality))).save(png)
                again = measure_delivery(png)
                cases[quality] += 1
                found[quality] += again.jpeg_before
                within[quality] += again.jpeg_before and abs((again.estimated_quality or 0) - quality) <= 10
    for name, count in sorted(described.items()):
        print(f"{count:5d}  {name}")
    for quality in qualities:
        print(f"JPEG q{quality} then PNG: found {found[quality]}/{cases[quality]}, "
              f"within 10 of the quality {within[quality]}/{cases[quality]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
