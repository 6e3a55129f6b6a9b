"""What measuring a query's delivery costs next to decoding it (prints figures, asserts nothing).

    python benchmarks/bench_delivery.py [--sizes 512 1024] [--repeats 30]

For zoo images of each size, written as PNG, as PNG of a JPEG (q 80), as JPEG (q 80) and as lossy and
lossless WebP, prints the best and median time of :func:`attrib.delivery.measure_delivery` given the
bytes and the pixels the loader decoded already (its use in the loader), and of decoding the same bytes
(:func:`attrib.images.decode_bytes`), per image, in milliseconds.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time

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
    args = parser.parse_args(argv)

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


if __name__ == "__main__":
    raise SystemExit(main())
