"""Image discovery and loading: the one place attrib reads image files.

Every decoded image comes out as an HxWx3 uint8 RGB array, whatever the
file's mode (L, LA, P, RGBA, CMYK, I;16, ...), with EXIF orientation applied
and only the first frame of an animation. :func:`load_images` decodes a stream of
files on a few threads (Pillow and hashlib release the GIL), in input order; decoding
touches no process-wide state, so it is safe on any thread.
"""

from __future__ import annotations

import hashlib
import os
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import AttribError, ImageError

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
MIN_SIDE = 64
BATCH = 16  # images decoded and embedded together
MAX_PIXELS = 64_000_000  # decompression-bomb limit: ~8000 x 8000 (below Pillow's own, which stays as it is)
WORKERS_ENV = "ATTRIB_WORKERS"


@dataclass
class LoadedImage:
    """A decoded image and the facts about its file that the gallery records."""

    path: Path
    pixels: np.ndarray  # HxWx3 uint8
    sha256: str
    format: str
    size_bytes: int
    compression: str | None = None  # lossy coding the file itself shows ("JPEG quality ~80", "lossy WebP")

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])


def iter_image_files(paths: Iterable[str | os.PathLike]) -> Iterator[Path]:
    """Yield image files from files and folders (recursive, sorted, by extension, any case).

    A path given explicitly is yielded even without an image extension, so that
    the loader can say why it is not usable; a missing path raises ImageError.
    """
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for name in sorted(files):
                    if Path(name).suffix.lower() in IMAGE_EXTENSIONS and not name.startswith("."):
                        yield Path(root) / name
        elif path.exists():
            yield path
        else:
            raise ImageError(f"{path}: no such file or folder")


def to_rgb(image: Image.Image) -> np.ndarray:
    """Convert any Pillow image mode to an HxWx3 uint8 RGB array."""
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(image, dtype=np.float64)
        hi = arr.max() if arr.size else 0.0
        scale = 255.0 / 65535.0 if hi > 255 or mode.startswith("I;16") else 1.0
        gray = np.clip(np.rint(arr * scale), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image, dtype=np.uint8)


def load_image(path: str | os.PathLike, min_side: int = MIN_SIDE) -> LoadedImage:
    """Read, hash and decode one image file; raise ImageError with a one-line reason."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise ImageError(f"{path}: is a folder, not an image file") from None
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except PermissionError:
        raise ImageError(f"{path}: permission denied; check the file's read permissions") from None
    except OSError as exc:
        raise ImageError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if not data:
        raise ImageError(f"{path}: file is empty (0 bytes)")
    digest = hashlib.sha256(data).hexdigest()
    pixels, fmt = decode_bytes(data, str(path), min_side)
    return LoadedImage(path=path, pixels=pixels, sha256=digest, format=fmt, size_bytes=len(data),
                       compression=lossy_coding(data))


def decode_bytes(data: bytes, label: str, min_side: int = MIN_SIDE) -> tuple[np.ndarray, str]:
    """Decode image bytes to (RGB array, format name); ``label`` names the source in errors."""
    import io

    try:
        with Image.open(io.BytesIO(data)) as image:
            fmt = image.format or "unknown"
            width, height = image.size
            if width * height > MAX_PIXELS:  # checked from the header, before any pixel is decoded
                raise ImageError(f"{label}: {width}x{height} pixels exceeds the {MAX_PIXELS:,}-pixel safety limit")
            if getattr(image, "n_frames", 1) > 1:
                image.seek(0)
            image.load()
            image = ImageOps.exif_transpose(image) or image
            pixels = to_rgb(image)
    except ImageError:
        raise
    except Image.DecompressionBombError:
        raise ImageError(f"{label}: image is too large to decode safely (decompression-bomb limit)") from None
    except UnidentifiedImageError:
        raise ImageError(f"{label}: not a recognised image file (expected PNG, JPEG, WEBP, GIF, BMP or TIFF)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        reason = str(exc) or type(exc).__name__
        if "truncated" in reason.lower() or isinstance(exc, EOFError):
            reason = "file is truncated or damaged"
        raise ImageError(f"{label}: cannot decode image: {reason}") from None
    if pixels.shape[0] < min_side or pixels.shape[1] < min_side:
        raise ImageError(
            f"{label}: image is {pixels.shape[1]}x{pixels.shape[0]} px; at least {min_side} px on each side is needed"
        )
    return np.ascontiguousarray(pixels), fmt


# The IJG standard luminance quantisation table (quality 50), in natural order.
_JPEG_LUMA = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], dtype=np.float64)


def jpeg_quality(table) -> int:
    """The IJG quality (1-100) whose scaled standard luminance table is closest to ``table``."""
    ratio = float(np.mean(np.asarray(list(table)[:64], dtype=np.float64) / _JPEG_LUMA)) * 100
    quality = (200 - ratio) / 2 if ratio <= 100 else 5000 / ratio
    return int(round(min(100.0, max(1.0, quality))))


def lossy_coding(data: bytes) -> str | None:
    """What lossy coding the file's own headers show: "JPEG quality ~Q", "lossy WebP", or None."""
    import io

    if data[:3] == b"\xff\xd8\xff":
        try:
            with Image.open(io.BytesIO(data)) as image:
                tables = getattr(image, "quantization", None) or {}
        except Exception:  # the decoder reports a damaged file; this is only a description
            tables = {}
        return f"JPEG quality ~{jpeg_quality(tables[0])}" if 0 in tables else "JPEG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        head = data[12:4096]
        return "lossy WebP" if b"VP8 " in head and b"VP8L" not in head else None
    return None


def decode_workers() -> int:
    """Threads that decode images: $ATTRIB_WORKERS, else the number of CPUs."""
    raw = os.environ.get(WORKERS_ENV, "").strip()
    if not raw:
        return os.cpu_count() or 1
    try:
        workers = int(raw)
    except ValueError:
        workers = 0
    if workers < 1:
        raise AttribError(f"{WORKERS_ENV}={raw!r} must be a positive integer (1 decodes on the calling thread)")
    return workers


def _load_or_error(path: str | os.PathLike) -> tuple[Path, LoadedImage | AttribError]:
    try:
        return Path(path), load_image(path)
    except AttribError as exc:
        return Path(path), exc


def load_images(
    paths: Iterable[str | os.PathLike], workers: int | None = None
) -> Iterator[tuple[Path, LoadedImage | AttribError]]:
    """(path, decoded image or the error that path raised) for each path, in input order.

    ``workers`` threads (default :func:`decode_workers`) decode ahead of the consumer, at most
    ``2 * BATCH`` images at a time, so memory stays bounded however many paths there are.
    """
    workers = decode_workers() if workers is None else max(1, int(workers))
    if workers == 1:
        yield from map(_load_or_error, paths)
        return
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(workers, thread_name_prefix="attrib-decode")
    ahead: deque = deque()
    try:
        for path in paths:
            ahead.append(pool.submit(_load_or_error, path))
            if len(ahead) >= 2 * BATCH:
                yield ahead.popleft().result()
        while ahead:
            yield ahead.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def load_batches(paths: Iterable[str | os.PathLike], batch: int = BATCH
                 ) -> Iterator[list[LoadedImage | tuple[Path, str]]]:
    """Decoded images (or (path, error message) pairs) in groups of ``batch``, keeping input order."""
    chunk: list[LoadedImage | tuple[Path, str]] = []
    for path, loaded in load_images(paths):
        chunk.append(loaded if isinstance(loaded, LoadedImage) else (path, str(loaded)))
        if len(chunk) >= batch:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
