"""Image discovery and loading: the one place attrib reads image files.

Every decoded image comes out as an HxWx3 uint8 RGB array, whatever the
file's mode (L, LA, P, RGBA, CMYK, I;16, ...), with EXIF orientation applied
and only the first frame of an animation. :func:`load_images` decodes a stream of
files on a few threads (Pillow and hashlib release the GIL), in input order; decoding
touches no process-wide state, so it is safe on any thread.

Any file may be hostile, so every failure comes out as an :class:`ImageError` naming the file:
only regular files are opened (FIFOs, devices and sockets are refused from ``os.stat``), at most
:data:`MAX_FILE_BYTES` are read, the pixel count is checked from the header before decoding
(:data:`MAX_PIXELS`), whatever Pillow raises on a crafted file becomes one line, and the decoded
pixels alive at once from one :func:`load_images` are bounded (:data:`PIXELS_AHEAD`).
"""

from __future__ import annotations

import errno
import functools
import hashlib
import io
import os
import stat
import sys
import threading
import weakref
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import AttribError, ImageError

if TYPE_CHECKING:
    from concurrent.futures import Future

    from numpy.typing import DTypeLike

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
PILLOW_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")  # the only decoders attrib lets Pillow use
MIN_SIDE = 64
BATCH = 16  # images decoded and embedded together
BATCH_PIXELS = 32_000_000  # ... or fewer, so that a batch holds at most about this many pixels
MAX_PIXELS = 64_000_000  # decompression-bomb limit: ~8000 x 8000 (below Pillow's own, which stays as it is)
MAX_FILE_BYTES = 256 * 1024 * 1024  # larger files are refused before they are read
PIXELS_AHEAD = 64_000_000  # decoded pixels alive at once from one load_images (one image over it at a time)
BAND_PIXELS = 1 << 22  # pixels copied out of Pillow at a time
LARGE_PIXELS = 4_000_000  # after decoding an image this large, freed memory is given back at once
WORKERS_ENV = "ATTRIB_WORKERS"
_OPEN_FLAGS = os.O_RDONLY | sum(getattr(os, name, 0) for name in ("O_NONBLOCK", "O_NOCTTY", "O_CLOEXEC", "O_BINARY"))
_READ_CHUNK = 1 << 20

Reserve = Callable[[int], None]
Inspect = Callable[[Path, bytes], list[Any]]  # evidence items (attrib.evidence.item.Evidence)
Measure = Callable[[bytes, np.ndarray], Any]  # a file's delivery from its bytes and pixels (attrib.delivery)


@dataclass(frozen=True)
class ImageRecord:
    """What the gallery stores about an image file, without its pixels."""

    path: Path  # resolved; bytes of the name that are not UTF-8 are written as \\xNN (see display_path)
    sha256: str
    format: str
    size_bytes: int
    width: int
    height: int
    thumbnail: object | None = field(default=None, compare=False, repr=False)  # attrib.enrollment.Thumbnail
    delivery: str | None = None  # the coding the file shows (attrib.delivery.Delivery.label), when measured


@dataclass
class LoadedImage:
    """A decoded image and the facts about its file that the gallery records."""

    path: Path
    pixels: np.ndarray | None  # HxWx3 uint8; None once dropped (see load_batches)
    sha256: str
    format: str
    size_bytes: int
    compression: str | None = None  # lossy coding the file itself shows ("JPEG quality ~80", "lossy WebP")
    evidence: list[Any] = field(default_factory=list)  # what ``inspect(path, bytes)`` found (see load_image)
    delivery: Any = None  # what ``measure(bytes, pixels)`` found: attrib.delivery.Delivery (see load_image)
    width: int = field(init=False)
    height: int = field(init=False)

    def __post_init__(self) -> None:
        self.height, self.width = (int(n) for n in self.require_pixels().shape[:2])

    def require_pixels(self) -> np.ndarray:
        """The decoded pixels, which must not have been dropped yet."""
        if self.pixels is None:
            raise RuntimeError(f"the pixels of {display_path(self.path)} were dropped already")
        return self.pixels

    def record(self) -> ImageRecord:
        """The facts without the pixels, with a path that can be printed and stored."""
        return ImageRecord(path=Path(display_path(self.path.resolve())), sha256=self.sha256, format=self.format,
                           size_bytes=self.size_bytes, width=self.width, height=self.height,
                           delivery=getattr(self.delivery, "label", None))

    def drop_pixels(self) -> None:
        self.pixels = None


def display_path(path: str | os.PathLike[str]) -> str:
    """``path`` as text that can always be printed, put in JSON or stored: bytes of the file name that
    are not UTF-8 (kept by Python as surrogates) are written as ``\\xNN``; every other path is unchanged."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def iter_image_files(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
    """Yield image files from files and folders (recursive, sorted, by extension, any case).

    A path given explicitly that is not a folder is yielded as it is, whatever it is (missing, a
    broken link, not an image), so that the loader says why it is not usable, for that path only.
    """
    for raw in paths:
        path = Path(raw)
        if not _is_dir(path):
            yield path
            continue
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(files):
                if Path(name).suffix.lower() in IMAGE_EXTENSIONS and not name.startswith("."):
                    yield Path(root) / name


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # e.g. a parent that cannot be searched: the loader reports it
        return False


# -- reading ----------------------------------------------------------------

_NOT_REGULAR = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
                (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def read_file(path: str | os.PathLike[str]) -> bytes:
    """The bytes of a regular file of at most :data:`MAX_FILE_BYTES`; ImageError (one line) for anything else.

    The file is checked with ``os.stat`` before it is opened (non-blocking, so a FIFO swapped in
    meanwhile cannot hang the read) and again on the open descriptor, and reading stops past the cap.
    """
    label = display_path(path)
    try:
        _require_regular(os.stat(path), label)
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        raise ImageError(f"{label}: {_os_problem(path, exc)}") from None
    try:
        info = os.fstat(fd)
        _require_regular(info, label)
        return _read_capped(fd, info.st_size, label)
    except OSError as exc:
        raise ImageError(f"{label}: {_os_problem(path, exc)}") from None
    finally:
        os.close(fd)


def _require_regular(info: os.stat_result, label: str) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise ImageError(f"{label}: is a folder, not an image file")
    if not stat.S_ISREG(info.st_mode):
        kind = next((name for test, name in _NOT_REGULAR if test(info.st_mode)), "a special file")
        raise ImageError(f"{label}: is {kind}, not a regular file; only regular files are read")
    if info.st_size > MAX_FILE_BYTES:
        raise ImageError(f"{label}: file is {info.st_size:,} bytes, over the {MAX_FILE_BYTES:,}-byte limit "
                         f"for an image file")


def _read_capped(fd: int, expected: int, label: str) -> bytes:
    """Read to the end, but never more than MAX_FILE_BYTES + 1 bytes (files can grow or lie about their size)."""
    parts, total = [], 0
    while total <= MAX_FILE_BYTES:
        part = os.read(fd, min(max(expected + 1 - total, _READ_CHUNK), MAX_FILE_BYTES + 1 - total))
        if not part:
            break
        parts.append(part)
        total += len(part)
    if total > MAX_FILE_BYTES:
        raise ImageError(f"{label}: file grew past the {MAX_FILE_BYTES:,}-byte limit for an image file while "
                         f"being read")
    return b"".join(parts)


def _os_problem(path: str | os.PathLike[str], exc: OSError) -> str:
    """Why a path cannot be read, in words."""
    if exc.errno == errno.ENOENT:
        return "broken symbolic link (its target does not exist)" if os.path.islink(path) else "no such file"
    if exc.errno == errno.ELOOP:
        return "symbolic link loop (too many levels of symbolic links)"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied; check the file's read permissions"
    if exc.errno == errno.EISDIR:
        return "is a folder, not an image file"
    if exc.errno == errno.ENOTDIR:
        return "no such file (a part of the path is not a folder)"
    return f"cannot be read ({exc.strerror or exc})"


# -- decoding ---------------------------------------------------------------


def load_image(path: str | os.PathLike[str], min_side: int = MIN_SIDE, *, reserve: Reserve | None = None,
               inspect: Inspect | None = None, measure: Measure | None = None) -> LoadedImage:
    """Read, hash and decode one image file; raise ImageError with a one-line reason.

    ``reserve(pixels)`` is called once the header is read and before any pixel is decoded (see
    :func:`load_images`). ``inspect(path, data)`` sees the file's bytes once decoding succeeded
    (on the same thread) and its answer is kept as ``evidence``: provenance readers use it so
    that the file is read once. ``measure(data, pixels)`` likewise gives ``delivery``.
    """
    path = Path(path)
    return image_from_bytes(path, read_file(path), min_side, reserve=reserve, inspect=inspect, measure=measure)


def image_from_bytes(path: Path, data: bytes, min_side: int = MIN_SIDE, *, reserve: Reserve | None = None,
                     inspect: Inspect | None = None, measure: Measure | None = None) -> LoadedImage:
    """Hash and decode the bytes of the file ``path`` (named so in errors), as :func:`load_image` does
    once it has read them; for bytes that came from elsewhere, e.g. an upload."""
    if not data:
        raise ImageError(f"{display_path(path)}: file is empty (0 bytes)")
    digest = hashlib.sha256(data).hexdigest()
    pixels, fmt = decode_bytes(data, display_path(path), min_side, reserve=reserve)
    return LoadedImage(path=path, pixels=pixels, sha256=digest, format=fmt, size_bytes=len(data),
                       compression=lossy_coding(data), evidence=inspect(path, data) if inspect else [],
                       delivery=measure(data, pixels) if measure else None)


def decode_bytes(data: bytes, label: str, min_side: int = MIN_SIDE, *, reserve: Reserve | None = None
                 ) -> tuple[np.ndarray, str]:
    """Decode image bytes to (RGB array, format name); ``label`` names the source in errors.

    This is the one place decoding errors are turned into ImageError: Pillow raises arbitrary
    exception types on crafted files (IndexError, struct.error, TypeError, ...), so any Exception
    from it becomes one line; KeyboardInterrupt and SystemExit pass through.
    """
    try:
        pixels, fmt = _decode(data, label, reserve)
    except AttribError:
        raise
    except Image.DecompressionBombError:
        raise ImageError(f"{label}: image is too large to decode safely (decompression-bomb limit)") from None
    except UnidentifiedImageError:
        raise ImageError(f"{label}: not a recognised image file (expected PNG, JPEG, WEBP, GIF, BMP or TIFF)") from None
    except MemoryError:
        raise ImageError(f"{label}: not enough memory to decode this image") from None
    except Exception as exc:  # noqa: BLE001 -- see the docstring
        raise ImageError(f"{label}: cannot decode image: {_decode_problem(exc)}") from None
    if pixels.shape[0] < min_side or pixels.shape[1] < min_side:
        raise ImageError(
            f"{label}: image is {pixels.shape[1]}x{pixels.shape[0]} px; at least {min_side} px on each side is needed"
        )
    return pixels, fmt


def _decode(data: bytes, label: str, reserve: Reserve | None) -> tuple[np.ndarray, str]:
    with Image.open(io.BytesIO(data), formats=PILLOW_FORMATS) as image:
        fmt = image.format or "unknown"
        width, height = image.size
        if width * height > MAX_PIXELS:  # checked from the header, before any pixel is decoded
            raise ImageError(f"{label}: {width}x{height} pixels exceeds the {MAX_PIXELS:,}-pixel safety limit")
        if reserve is not None:
            reserve(width * height)
        try:
            image.load()  # the first frame: Image.open stays on it
            ImageOps.exif_transpose(image, in_place=True)
            return to_rgb(image), fmt
        finally:
            if width * height >= LARGE_PIXELS:
                image.close()
                _return_freed_memory()


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where there is none."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None


def _return_freed_memory() -> None:
    """Give the memory a large decode freed back to the system. glibc keeps freed memory in the arena
    of the thread that freed it, so without this every decoding thread would keep an image's worth."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def _decode_problem(exc: Exception) -> str:
    """One line saying why Pillow gave up."""
    reason = " ".join(str(exc).split())[:200]
    if isinstance(exc, EOFError) or "truncated" in reason.lower():
        return "file is truncated or damaged"
    if isinstance(exc, (OSError, SyntaxError, ValueError)) and reason:
        return reason
    return f"damaged or malformed file ({type(exc).__name__}{': ' + reason if reason else ''})"


def to_rgb(image: Image.Image) -> np.ndarray:
    """Convert any Pillow image mode to an HxWx3 uint8 RGB array."""
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return _gray_to_rgb(image)
    if mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    if image.mode != "RGB":
        image = image.convert("RGB")
    if image.width * image.height <= BAND_PIXELS:
        return np.asarray(image)
    out = np.empty((image.height, image.width, 3), np.uint8)  # Pillow's tobytes would hold two whole copies
    for top, band in _bands(image, np.uint8):
        out[top: top + len(band)] = band
    return out


def _gray_to_rgb(image: Image.Image) -> np.ndarray:
    """16-bit, 32-bit integer and float images: 16-bit (or any with values over 255) scaled from 0-65535,
    NaN as 0, then clipped to 0-255 and repeated over three channels."""
    high = 0.0
    if not image.mode.startswith("I;16"):
        high = max((float(np.nan_to_num(band).max()) for _, band in _bands(image, np.float32)), default=0.0)
    scale = 255.0 / 65535.0 if high > 255 or image.mode.startswith("I;16") else 1.0
    out = np.empty((image.height, image.width, 3), np.uint8)
    for top, band in _bands(image, np.float32):
        out[top: top + len(band)] = np.clip(np.rint(np.nan_to_num(band) * scale), 0, 255).astype(np.uint8)[..., None]
    return out


def _bands(image: Image.Image, dtype: DTypeLike) -> Iterator[tuple[int, np.ndarray]]:
    """(top row, rows as an array) in bands of about BAND_PIXELS, so that no whole-image copy is made twice."""
    rows = max(1, BAND_PIXELS // max(1, image.width))
    for top in range(0, image.height, rows):
        band = image.crop((0, top, image.width, min(image.height, top + rows)))
        yield top, np.asarray(band, dtype=dtype)


# libjpeg's (IJG) standard quantisation tables at quality 50, in natural order, and what a JPEG's own tables
# say of its quality (the loader's `compression`, and attrib.delivery)
IJG_LUMA = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], dtype=np.float64)
IJG_CHROMA = np.array([
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99] + [99] * 32)
ZIGZAG = np.array(sorted(range(64), key=lambda n: (n // 8 + n % 8, n // 8 if (n // 8 + n % 8) % 2 else n % 8)))
# ^ the natural (row-major) index of each zigzag position
IJG_QUALITIES = np.arange(1, 101)


def ijg_tables(quality: int) -> np.ndarray:
    """libjpeg's luminance and chrominance tables for ``quality`` (1-100), baseline: (2, 64) natural order."""
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    base = np.stack([IJG_LUMA.astype(np.int64), IJG_CHROMA])
    return np.clip((base * scale + 50) // 100, 1, 255)


IJG_TABLES = np.stack([ijg_tables(int(q)) for q in IJG_QUALITIES])  # (100, 2, 64)


def jpeg_table_quality(tables: Mapping[int, Any]) -> tuple[int, bool] | None:
    """(IJG quality, whether the tables are exactly libjpeg's) for a JPEG's quantisation tables
    ({index: 64 values}, natural or zigzag order), or None without a usable luminance table."""
    found = [np.asarray(tables[k], dtype=np.float64) for k in (0, 1) if len(tables.get(k) or ()) == 64]
    if len(tables.get(0) or ()) != 64 or any(np.any(t < 1) for t in found):
        return None
    observed = np.stack(found)
    errors = []
    for order in (observed, observed[:, np.argsort(ZIGZAG)]):  # natural order, or zigzag read back
        exact = np.flatnonzero(np.all(IJG_TABLES[:, : len(order)] == order, axis=(1, 2)))
        if len(exact):
            return int(IJG_QUALITIES[exact[0]]), True
        errors.append(((np.log(IJG_TABLES[:, : len(order)]) - np.log(order)) ** 2).sum(axis=(1, 2)))
    return int(IJG_QUALITIES[np.argmin(np.minimum(*errors))]), False


def lossy_coding(data: bytes) -> str | None:
    """What lossy coding the file's own headers show: "JPEG quality ~Q", "lossy WebP", or None."""
    if data[:3] == b"\xff\xd8\xff":
        try:
            with Image.open(io.BytesIO(data), formats=("JPEG",)) as image:
                tables = getattr(image, "quantization", None) or {}
                found = jpeg_table_quality(tables)
                return f"JPEG quality ~{found[0]}" if found else "JPEG"
        except Exception:  # noqa: BLE001 -- a damaged table only loses the description
            return "JPEG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        head = data[12:4096]
        return "lossy WebP" if b"VP8 " in head and b"VP8L" not in head else None
    return None


# -- many files on threads ---------------------------------------------------


def decode_workers() -> int:
    """Threads that decode images: $ATTRIB_WORKERS, else the number of CPUs."""
    return positive_setting(WORKERS_ENV, os.cpu_count() or 1,
                            "must be a positive integer (1 decodes on the calling thread)")


def positive_setting(name: str, default: int, requirement: str,
                     environ: Mapping[str, str] | None = None) -> int:
    """The whole number above 0 in environment variable ``name`` (of ``environ``, default os.environ), or
    ``default`` when it is unset or blank; AttribError ``NAME='value' <requirement>`` for anything else."""
    raw = (os.environ if environ is None else environ).get(name, "").strip()
    if not raw:
        return default
    try:
        number = int(raw)
    except ValueError:
        number = 0
    if number < 1:
        raise AttribError(f"{name}={raw!r} {requirement}")
    return number


class PixelBudget:
    """The decoded pixels alive at once from one :func:`load_images`, handed out in input order.

    Each file (a numbered turn) takes its pixel count once its header is read, before decoding;
    the pixels come back when its pixel array is freed. A turn waits while the pixels alive plus
    its own would exceed ``limit``, unless nothing is alive or the consumer is waiting for that
    very file, so a large image decodes alone and the consumer never waits on a decode that waits
    on the consumer. Turns are taken in order (a file that fails before decoding passes its turn),
    so later files cannot starve the one the consumer needs next.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.alive = 0
        self._next_turn = 0
        self._passed: set[int] = set()
        self._wanted = -1
        self._closed = False
        self._changed = threading.Condition(threading.RLock())  # re-entrant: a pixel array may be freed anywhere

    def take(self, turn: int, pixels: int) -> None:
        with self._changed:
            while not self._may_take(turn, pixels):
                self._changed.wait()
            if self._closed:
                raise ImageError("decoding cancelled")
            self.alive += pixels
            self._advance()

    def _may_take(self, turn: int, pixels: int) -> bool:
        return self._closed or turn == self._next_turn and (
            self.alive + pixels <= self.limit or self.alive == 0 or turn == self._wanted)

    def pass_turn(self, turn: int) -> None:
        with self._changed:
            if turn == self._next_turn:
                self._advance()
            else:
                self._passed.add(turn)

    def _advance(self) -> None:
        self._next_turn += 1
        while self._next_turn in self._passed:
            self._passed.remove(self._next_turn)
            self._next_turn += 1
        self._changed.notify_all()

    def give_back(self, pixels: int) -> None:
        with self._changed:
            self.alive -= pixels
            self._changed.notify_all()

    def want(self, turn: int) -> None:
        """The consumer waits for ``turn`` now."""
        with self._changed:
            self._wanted = turn
            self._changed.notify_all()

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()


Loaded = tuple[Path, "LoadedImage | AttribError"]  # what load_images yields for one path
ImageInput = Union[str, os.PathLike[str], Loaded]  # what it takes: a path, or an image decoded already


def _load_or_error(path: ImageInput, inspect: Inspect | None = None, measure: Measure | None = None) -> Loaded:
    if isinstance(path, tuple):  # a load result already (see load_images), not a path
        return path
    try:
        return Path(path), load_image(path, inspect=inspect, measure=measure)
    except AttribError as exc:
        return Path(path), exc


def _load_in_turn(path: ImageInput, budget: PixelBudget, turn: int,
                  inspect: Inspect | None = None, measure: Measure | None = None) -> Loaded:
    """Load one file on a worker thread, taking its pixels from ``budget`` in its turn."""
    if isinstance(path, tuple):  # a load result already
        budget.pass_turn(turn)
        return path
    taken = 0

    def reserve(pixels: int) -> None:
        nonlocal taken
        budget.take(turn, pixels)
        taken = pixels

    loaded = None
    try:
        loaded = load_image(path, reserve=reserve, inspect=inspect, measure=measure)
        return Path(path), loaded
    except AttribError as exc:
        return Path(path), exc
    finally:
        if not taken:
            budget.pass_turn(turn)
        elif loaded is None:
            budget.give_back(taken)
        else:
            weakref.finalize(loaded.require_pixels(), budget.give_back, taken)


def load_images(
    paths: Iterable[ImageInput], workers: int | None = None, inspect: Inspect | None = None,
    measure: Measure | None = None) -> Iterator[tuple[Path, LoadedImage | AttribError]]:
    """(path, decoded image or the error that path raised) for each path, in input order. An item that
    is such a pair already (decoded elsewhere, e.g. by :func:`image_from_bytes`) is passed on as it is.

    ``workers`` threads (default :func:`decode_workers`) decode ahead of the consumer, at most
    ``2 * BATCH`` files at a time and, of decoded pixels still alive (held ahead or by the consumer),
    at most :data:`PIXELS_AHEAD` or one image (:class:`PixelBudget`), so memory stays bounded
    however many paths there are and whatever their headers say (undecoded bytes: at most
    ``workers`` files of :data:`MAX_FILE_BYTES`).
    """
    workers = decode_workers() if workers is None else max(1, int(workers))
    if workers == 1:
        yield from (_load_or_error(path, inspect, measure) for path in paths)
        return
    from concurrent.futures import ThreadPoolExecutor

    budget = PixelBudget(PIXELS_AHEAD)
    pool = ThreadPoolExecutor(workers, thread_name_prefix="attrib-decode")
    ahead: deque[tuple[int, Future[Loaded]]] = deque()
    try:
        for turn, path in enumerate(paths):
            ahead.append((turn, pool.submit(_load_in_turn, path, budget, turn, inspect, measure)))
            if len(ahead) >= 2 * BATCH:
                yield _wait_for(budget, *ahead.popleft())
        while ahead:
            yield _wait_for(budget, *ahead.popleft())
    finally:
        budget.close()
        pool.shutdown(wait=True, cancel_futures=True)


def _wait_for(budget: PixelBudget, turn: int, future: Future[Loaded]) -> Loaded:
    budget.want(turn)
    return future.result()


def load_batches(paths: Iterable[ImageInput], batch: int = BATCH, inspect: Inspect | None = None,
                 measure: Measure | None = None) -> Iterator[list[LoadedImage | tuple[Path, str]]]:
    """Decoded images (or (path, error message) pairs) in groups of ``batch`` or of about
    :data:`BATCH_PIXELS` pixels, whichever is fewer, keeping input order.

    A group's pixels are dropped when the next group is asked for (everything else about its
    images stays), so take what needs pixels from a group before moving on.
    """
    chunk: list[LoadedImage | tuple[Path, str]] = []
    pixels = 0
    for path, loaded in load_images(paths, inspect=inspect, measure=measure):
        if isinstance(loaded, LoadedImage):
            chunk.append(loaded)
            pixels += loaded.width * loaded.height
        else:
            chunk.append((path, str(loaded)))
        if len(chunk) >= batch or pixels >= BATCH_PIXELS:
            yield chunk
            _drop_pixels(chunk)
            chunk, pixels = [], 0
    if chunk:
        yield chunk
        _drop_pixels(chunk)


def _drop_pixels(chunk: list[LoadedImage | tuple[Path, str]]) -> None:
    for item in chunk:
        if isinstance(item, LoadedImage):
            item.drop_pixels()
