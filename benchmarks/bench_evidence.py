"""Speed benchmark: what reading provenance evidence costs per image, beside decoding it.

    python benchmarks/bench_evidence.py [--folder DIR] [--limit 40] [--repeats 5]

Without --folder it times 1024 px images it makes in memory: PNG, JPEG and WebP without
metadata (the common case: most published images are stripped), then the same PNG with
AUTOMATIC1111 parameters and a JPEG with XMP. It also times the first `read_evidence` in a
fresh process that has decoded the image, as a cold `attrib identify` has (module imports
included; c2pa-python is imported only by files with a manifest store). Target: reading
evidence adds at most 10 % per image when no manifest is present.
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

A1111 = ("a castle\nNegative prompt: blurry\nSteps: 30, Sampler: DPM++ 2M, CFG scale: 7, Seed: 1, "
         "Size: 1024x1024, Model hash: 31e35c80fc, Model: sd_xl_base_1.0, Version: v1.10.1")
XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
       b'<rdf:Description rdf:about="" xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
       b'Iptc4xmpExt:DigitalSourceType="http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"/>'
       b'</rdf:RDF></x:xmpmeta>')


def image_1024() -> "Image.Image":
    from PIL import Image

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:1024, 0:1024]
    base = np.stack([xx / 8, yy / 8, (xx + yy) / 16], -1) % 256 + rng.normal(0, 12, (1024, 1024, 3))
    return Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))


def samples() -> dict[str, bytes]:
    from PIL import PngImagePlugin

    image = image_1024()

    def encode(fmt, **params):
        buffer = io.BytesIO()
        image.save(buffer, fmt, **params)
        return buffer.getvalue()

    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", A1111)
    return {"PNG 1024, no metadata": encode("PNG"), "JPEG 1024 q90, no metadata": encode("JPEG", quality=90),
            "WebP 1024 q90, no metadata": encode("WEBP", quality=90),
            "PNG 1024, A1111 parameters": encode("PNG", pnginfo=info),
            "JPEG 1024 q90, XMP": encode("JPEG", quality=90, xmp=XMP)}


def median_ms(func, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def time_blob(blob: bytes, label: str, repeats: int) -> tuple[float, float]:
    """(decode ms, read_evidence ms): decode as attrib's loader does, evidence from the bytes."""
    from attrib.evidence import evidence_readers, read_evidence
    from attrib.images import decode_bytes

    readers = evidence_readers()
    read_evidence(data=blob, readers=readers)  # warm: modules, name rules
    decode = median_ms(lambda: decode_bytes(blob, label), repeats)
    evidence = median_ms(lambda: read_evidence(data=blob, readers=readers), repeats * 4)
    return decode, evidence


FIRST_CALL = """
import sys, time
from pathlib import Path
blob = Path(sys.argv[1]).read_bytes()
from attrib.host.manager import load_plugins
from attrib.images import decode_bytes
load_plugins()
decode_bytes(blob, "first")  # what `attrib identify` has done before it would read evidence
t0 = time.perf_counter()
from attrib.evidence import read_evidence
items = read_evidence(data=blob)
print(f"{1000 * (time.perf_counter() - t0):.1f} {len(items)} {'c2pa' in sys.modules}")
"""


def first_call_ms(blob: bytes) -> tuple[float, int, bool]:
    """read_evidence's first call in a fresh process that has loaded plugins and decoded the
    image (as a cold `attrib identify` has): what evidence adds to it, imports included."""
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".img") as handle:
        handle.write(blob)
        handle.flush()
        out = subprocess.run([sys.executable, "-c", FIRST_CALL, handle.name], capture_output=True, text=True,
                             check=True).stdout.split()
    return float(out[0]), int(out[1]), out[2] == "True"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, help="Folder of images to time instead of the made ones.")
    parser.add_argument("--limit", type=int, default=40, help="Images of the folder to time.")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if args.folder:
        from attrib.images import iter_image_files

        paths = list(iter_image_files([args.folder]))[: args.limit]
        blobs = {str(p.relative_to(args.folder)): p.read_bytes() for p in paths}
    else:
        blobs = samples()
    print(f"{'image':40} {'decode ms':>10} {'evidence ms':>12} {'evidence/decode':>16}")
    ratios = []
    for label, blob in blobs.items():
        decode, evidence = time_blob(blob, label, args.repeats)
        ratios.append(evidence / decode)
        print(f"{label[:40]:40} {decode:10.2f} {evidence:12.3f} {100 * evidence / decode:15.2f}%")
    print(f"median evidence/decode: {100 * statistics.median(ratios):.2f}% (target <= 10 % without a manifest)")
    first = sorted(first_call_ms(next(iter(blobs.values()))) for _ in range(3))[1]
    print(f"first read_evidence in a fresh process after a decode (imports included, median of 3): "
          f"{first[0]:.1f} ms, {first[1]} items, c2pa imported: {first[2]}")


if __name__ == "__main__":
    main()
