"""Speed benchmark: what reading provenance evidence costs per image, beside decoding it.

    python benchmarks/bench_evidence.py [--folder DIR] [--limit 40] [--repeats 5]

Without --folder it times 1024 px images it makes in memory: PNG, JPEG and WebP without
metadata (the common case: most published images are stripped), then the same PNG with
AUTOMATIC1111 parameters and a JPEG with XMP. It also times the first `read_evidence` in a
fresh process that has decoded the image, as a cold `attrib identify` has (module imports
included; c2pa-python is imported only by files with a manifest store). Target: reading
evidence adds at most 10 % per image when no manifest is present.

Then hostile metadata, the time one file takes (claims are matched on their first
characters, so it grows with the file's bytes only): a WebP whose EXIF Software holds 4,000,000
and 48,000,000 characters, a PNG whose eXIf UserComment holds 4,000,000, a PNG whose XMP
description holds 1,900,000. Target: each under 1 s (no longer quadratic in the field's length).
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


def hostile_samples() -> dict[str, bytes]:
    """Small images whose EXIF or XMP text fields hold millions of characters."""
    from PIL import Image, PngImagePlugin

    image = Image.new("RGB", (64, 64), (90, 120, 150))

    def encode(fmt, **params):
        buffer = io.BytesIO()
        image.save(buffer, fmt, **params)
        return buffer.getvalue()

    def exif(tag, value):
        table = Image.Exif()
        table[tag] = value
        return table.tobytes()

    description = b"a cat " * 320_000
    packet = XMP.replace(b"/></rdf:RDF>", b"><dc:description xmlns:dc=\"http://purl.org/dc/elements/1.1/\">"
                         + description + b"</dc:description></rdf:Description></rdf:RDF>")
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", packet.decode())
    return {"WebP, EXIF Software of 4,000,000 chars": encode("WEBP", lossless=True, exif=exif(0x0131, "x" * 4_000_000)),
            "WebP, EXIF Software of 48,000,000 chars": encode("WEBP", lossless=True,
                                                              exif=exif(0x0131, "x" * 48_000_000)),
            "PNG, eXIf UserComment of 4,000,000 chars": encode("PNG", exif=exif(0x9286, b"ASCII\0\0\0" + b"y" * 4_000_000)),
            f"PNG, XMP description of {len(description):,} chars": encode("PNG", pnginfo=info)}


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
    if not args.folder:
        from attrib.evidence import evidence_readers, read_evidence

        readers = evidence_readers()
        print(f"\n{'hostile metadata':48} {'MB':>6} {'evidence ms':>12}  (target < 1000 ms each)")
        for label, blob in hostile_samples().items():
            ms = median_ms(lambda: read_evidence(data=blob, readers=readers), args.repeats)
            print(f"{label:48} {len(blob) / 1e6:6.1f} {ms:12.1f}")


if __name__ == "__main__":
    main()
