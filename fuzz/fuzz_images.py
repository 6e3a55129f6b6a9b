"""Fuzz attrib's image loader: whatever the bytes, only ImageError (or an image) may come out.

    python fuzz/fuzz_images.py --runs 100000           # atheris (coverage-guided) when installed
    python fuzz/fuzz_images.py --runs 100000 --plain   # the seeded mutation loop, no atheris needed

Seeds are small PNG, JPEG, WebP, GIF, TIFF and BMP files made here with Pillow, in the modes and
options that reach different decoder paths. The plain loop mutates them (bit flips, interesting
values, inserted, deleted and repeated runs, splices of two seeds, truncation) with a fixed seed,
so a run is reproducible; tests/test_fuzz.py runs a short one in `make test`. Inputs that raise
anything else are written to --crashes (default fuzz/crashes/) and counted; the exit status is 1
when there is any.
"""

from __future__ import annotations

import argparse
import io
import random
import sys
import time
import traceback
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
INTERESTING = (b"\x00", b"\xff", b"\x7f", b"\x80", b"\x00\x00", b"\xff\xff", b"\x7f\xff", b"\x80\x00",
               b"\xff\xff\xff\xff", b"\x7f\xff\xff\xff", b"\x00\x00\x00\x00", b"\x00\x00\x01\x00", b"\x40\x1f")


def seed_files() -> dict[str, bytes]:
    """Small valid images, one per format and decoder path worth reaching."""
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (72, 80, 3), dtype=np.uint8))
    gray16 = Image.fromarray((rng.integers(0, 65536, (72, 80))).astype(np.uint16))
    floats = Image.fromarray(rng.normal(0, 300, (72, 80)).astype(np.float32))
    rotated = rgb.copy()
    exif = rotated.getexif()
    exif[0x0112] = 6
    frames = [Image.new("P", (80, 72), i) for i in range(3)]
    cases = {
        "rgb.png": (rgb, "PNG", {}),
        "palette-alpha.png": (rgb.convert("P"), "PNG", {"transparency": 0}),
        "gray16.png": (gray16, "PNG", {}),
        "interlaced-rgba.png": (rgb.convert("RGBA"), "PNG", {"optimize": False}),
        "rgb.jpg": (rgb, "JPEG", {"quality": 80}),
        "progressive.jpg": (rgb, "JPEG", {"progressive": True, "exif": exif}),
        "cmyk.jpg": (rgb.convert("CMYK"), "JPEG", {}),
        "lossy.webp": (rgb, "WEBP", {"quality": 70}),
        "lossless.webp": (rgb.convert("RGBA"), "WEBP", {"lossless": True}),
        "anim.gif": (frames[0], "GIF", {"save_all": True, "append_images": frames[1:], "duration": 10}),
        "rgb.gif": (rgb, "GIF", {}),
        "rgb.tif": (rgb, "TIFF", {}),
        "lzw.tif": (rgb, "TIFF", {"compression": "tiff_lzw"}),
        "tiled.tif": (rgb, "TIFF", {"tile": (16, 16)} if _tiled_tiff_supported() else {}),
        "float.tif": (floats, "TIFF", {}),
        "gray16.tif": (gray16, "TIFF", {}),
        "rgb.bmp": (rgb, "BMP", {}),
        "palette.bmp": (rgb.convert("P"), "BMP", {}),
    }
    seeds = {}
    for name, (image, fmt, options) in cases.items():
        buffer = io.BytesIO()
        image.save(buffer, fmt, **options)
        seeds[name] = buffer.getvalue()
    return seeds


def _tiled_tiff_supported() -> bool:
    try:
        Image.new("RGB", (16, 16)).save(io.BytesIO(), "TIFF", tile=(16, 16))
    except (TypeError, ValueError, OSError):
        return False
    return True


def mutate(data: bytes, rng: random.Random, seeds: list[bytes]) -> bytes:
    """One to eight random edits of ``data``."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        if not out:
            out += rng.choice(seeds)[: rng.randint(1, 64)]
        pos = rng.randrange(len(out))
        edit = rng.randrange(8)
        if edit == 0:  # flip a bit
            out[pos] ^= 1 << rng.randrange(8)
        elif edit == 1:  # a random byte
            out[pos] = rng.randrange(256)
        elif edit == 2:  # an interesting value, as it is or reversed (either byte order)
            value = rng.choice(INTERESTING)
            value = value[::-1] if rng.random() < 0.5 else value
            out[pos: pos + len(value)] = value
        elif edit == 3:  # delete a run
            del out[pos: pos + rng.randint(1, 64)]
        elif edit == 4:  # repeat a run
            out[pos:pos] = out[pos: pos + rng.randint(1, 32)] * rng.randint(1, 8)
        elif edit == 5:  # insert random bytes
            out[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif edit == 6:  # splice in a piece of another seed
            other = rng.choice(seeds)
            start = rng.randrange(len(other))
            out[pos: pos + rng.randint(0, 64)] = other[start: start + rng.randint(1, 256)]
        else:  # truncate
            del out[max(1, pos):]
    return bytes(out)


def check(data: bytes) -> bool:
    """Decode ``data`` as attrib does: True when it gave an image, False for an ImageError; anything
    else propagates (that is a finding)."""
    from attrib.errors import ImageError
    from attrib.images import decode_bytes, lossy_coding

    lossy_coding(data)
    try:
        pixels, _ = decode_bytes(data, "fuzz")
    except ImageError:
        return False
    assert pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[2] == 3, "not an RGB uint8 image"
    return True


def run_plain(runs: int, seed: int, crashes: Path | None, seconds: float | None = None) -> dict:
    """The seeded mutation loop: {runs, seconds, decoded, refused, crashes, kinds}."""
    seeds = list(seed_files().values())
    rng = random.Random(seed)
    stats = {"runs": 0, "decoded": 0, "refused": 0, "crashes": 0, "kinds": {}}
    start = time.perf_counter()
    for i in range(runs):
        if seconds is not None and time.perf_counter() - start > seconds:
            break
        data = mutate(rng.choice(seeds), rng, seeds)
        stats["runs"] += 1
        try:
            stats["decoded" if check(data) else "refused"] += 1
        except Exception as exc:  # noqa: BLE001 -- this is what the fuzzer looks for
            record_crash(stats, exc, data, crashes and crashes / f"crash-{seed}-{i}.bin")
    stats["seconds"] = round(time.perf_counter() - start, 1)
    return stats


def record_crash(stats: dict, exc: Exception, data: bytes, path: Path | None) -> None:
    """Count a finding by kind in ``stats``; write its input to ``path`` (when given) and print the
    traceback of the first of each kind."""
    stats["crashes"] += 1
    kind = f"{type(exc).__name__}: {exc}"[:160]
    stats["kinds"][kind] = stats["kinds"].get(kind, 0) + 1
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        if stats["kinds"][kind] == 1:
            traceback.print_exc()


def run_atheris(argv: list[str], runs: int) -> None:
    import atheris  # noqa: F401 -- only here: the plain loop needs nothing else

    with atheris.instrument_imports():
        import PIL.BmpImagePlugin  # noqa: F401
        import PIL.GifImagePlugin  # noqa: F401
        import PIL.Image  # noqa: F401
        import PIL.JpegImagePlugin  # noqa: F401
        import PIL.PngImagePlugin  # noqa: F401
        import PIL.TiffImagePlugin  # noqa: F401
        import PIL.WebPImagePlugin  # noqa: F401

        import attrib.images  # noqa: F401
    corpus = HERE / "corpus"
    corpus.mkdir(exist_ok=True)
    for name, data in seed_files().items():
        (corpus / name).write_bytes(data)
    atheris.Setup([argv[0], f"-runs={runs}", "-rss_limit_mb=4096", "-timeout=30", *argv[1:], str(corpus)], check)
    atheris.Fuzz()


def command_line(description: str, plain, atheris_run, default_runs: int) -> None:
    """A fuzzer's command line: ``atheris_run(argv, runs)`` when atheris is installed (and not
    --plain), else ``plain(runs, seed, crashes, seconds)`` with its stats printed; exit status 1 when
    any input broke the property."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--runs", type=int, default=default_runs)
    parser.add_argument("--seed", type=int, default=0, help="The plain loop's random seed.")
    parser.add_argument("--seconds", type=float, help="Stop the plain loop after this long.")
    parser.add_argument("--plain", action="store_true", help="The seeded mutation loop even if atheris is installed.")
    parser.add_argument("--crashes", type=Path, default=HERE / "crashes")
    args, libfuzzer_args = parser.parse_known_args()
    if not args.plain:
        try:
            import atheris  # noqa: F401
        except ImportError:
            print("atheris is not installed: running the seeded mutation loop", file=sys.stderr)
        else:
            atheris_run([sys.argv[0], *libfuzzer_args], args.runs)
            return
    stats = plain(args.runs, args.seed, args.crashes, args.seconds)
    kinds = stats.pop("kinds")
    print(" ".join(f"{k}={v}" for k, v in stats.items()))
    for kind, count in sorted(kinds.items(), key=lambda kv: -kv[1]):
        print(f"  {count:6d}  {kind}")
    sys.exit(1 if stats["crashes"] else 0)


def main() -> None:
    command_line(__doc__.splitlines()[0], run_plain, run_atheris, 100_000)


if __name__ == "__main__":
    main()
