"""How a query image travelled, measured from its file: its *delivery*.

Queries were often re-coded on their way (JPEG'd, re-saved, resized). :func:`measure_delivery` reads,
from the bytes and pixels the loader has already, what coding the file shows and what came before:

* JPEG: the IJG quality of its quantisation tables (exact for libjpeg's; the nearest for custom ones)
  and its chroma subsampling;
* WebP: lossy (VP8) or lossless (VP8L), alpha, animation, from its RIFF chunks (bounded, trusting no
  size field); for lossy coding the frame header's quantiser indices and the libwebp quality they imply;
* lossless files (PNG, lossless WebP, BMP, TIFF, GIF): whether the pixels were JPEG-coded before. Their
  8x8 block DCT on the JPEG grid sits on multiples of the quantisation steps; the IJG quality whose
  steps fit best is the estimate, and the fit must beat the fit half a block off the grid;
* the size, and (:func:`resize_factor`) its scale against the nearest enrolled size.

:func:`nearest_version` maps a delivery to a rung of a ladder of enrolled versions ("original",
"jpeg:90", "webp:80", ...): the version of the gallery the query is scored against.
"""

from __future__ import annotations

import functools
import io
import os
from dataclasses import asdict, dataclass, replace
from typing import Iterable, Sequence

import numpy as np
from PIL import Image, JpegImagePlugin

from ..errors import AttribError, ImageError
from ..images import (IJG_QUALITIES, IJG_TABLES, ZIGZAG, decode_bytes, display_path, jpeg_table_quality, read_file,
                     to_rgb)

LOSSLESS, JPEG, LOSSY_WEBP = "lossless", "jpeg", "lossy-webp"
SAMPLING = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}  # JpegImagePlugin.get_sampling's codes
RESIZE_TOLERANCE = 0.02  # a scale within this of 1 is no resize



@dataclass(frozen=True)
class Delivery:
    """What a file shows of its way from the generator; ``coding`` is "jpeg", "lossy-webp" or "lossless"."""

    format: str  # the container: "JPEG", "WEBP", "PNG", "BMP", "TIFF", "GIF", ...
    coding: str
    width: int
    height: int
    jpeg_quality: int | None = None  # JPEG files: the IJG quality of the tables (nearest, for custom ones)
    standard_tables: bool | None = None  # JPEG files: the tables are libjpeg's scaled standard ones
    chroma_subsampling: str | None = None  # JPEG files: "4:4:4", "4:2:2", "4:2:0" (None: grey or unknown)
    webp_quantizer: int | None = None  # lossy WebP: the VP8 quantiser index 0-127 (mean over segments)
    webp_quality: int | None = None  # lossy WebP: the libwebp quality that index implies (approximate)
    alpha: bool = False  # WebP: an alpha channel is stored
    animated: bool = False  # WebP: more than a still frame
    jpeg_before: bool = False  # lossless files: the pixels were JPEG-coded before
    estimated_quality: int | None = None  # ... and the IJG quality whose steps fit them best
    confidence: float = 0.0  # 0-1, how clearly the pixels show (or lack) the JPEG grid
    scale: float | None = None  # long side over the nearest enrolled long side, when asked

    @property
    def quality(self) -> int | None:
        """The JPEG quality this delivery amounts to: from the tables, or estimated from the pixels."""
        return self.jpeg_quality if self.coding == JPEG else self.estimated_quality if self.jpeg_before else None

    def describe(self) -> str:
        """A short phrase: "JPEG q≈80", "lossy WebP", "lossless PNG, JPEG-coded before (q≈75)", ..."""
        if self.coding == JPEG:
            words = f"JPEG q≈{self.jpeg_quality}" if self.jpeg_quality is not None else "JPEG"
            words += "" if self.standard_tables in (True, None) else ", custom tables"
        elif self.coding == LOSSY_WEBP:
            words = "lossy WebP" + (f" q≈{self.webp_quality}" if self.webp_quality is not None else "")
        else:
            words = f"lossless {self.format if self.format != 'WEBP' else 'WebP'}"
            if self.jpeg_before:
                words += ", JPEG-coded before" + (f" (q≈{self.estimated_quality})" if self.estimated_quality else "")
        if self.scale is not None and abs(self.scale - 1) > RESIZE_TOLERANCE:
            words += f", resized ×{self.scale:.2g}"
        return words

    def to_json(self) -> dict:
        return {**asdict(self), "describe": self.describe()}

    @property
    def label(self) -> str:
        """The coding it shows, as a ladder rung names it: ``jpeg:75`` (a JPEG file, or a lossless one
        JPEG-coded before), ``webp:80`` (lossy WebP), ``jpeg`` / ``webp`` (quality unknown) or ``lossless``."""
        if self.coding == LOSSY_WEBP:
            return "webp" if self.webp_quality is None else f"webp:{self.webp_quality}"
        if self.coding == JPEG or self.jpeg_before:
            return "jpeg" if self.quality is None else f"jpeg:{self.quality}"
        return LOSSLESS


def measured(data: bytes, pixels: np.ndarray) -> Delivery | None:
    """The delivery of a decoded file, as the loader's ``measure`` (:func:`attrib.images.load_images`) takes it:
    from its bytes and pixels; None when it cannot be told."""
    try:
        return measure_delivery(data, pixels)
    except AttribError:
        return None


def measure_delivery(source: bytes | str | os.PathLike, image: Image.Image | np.ndarray | None = None,
                     enrolled_sizes: Iterable[tuple[int, int]] = ()) -> Delivery:
    """The delivery of an image file, from its bytes (or its path, then read once here) and, when the
    caller decoded it already, its image (PIL, or the loader's HxWx3 uint8 array, EXIF orientation applied)
    so that nothing is decoded twice. ImageError for a file that is not a usable image."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, label = bytes(source), "image bytes"
    else:
        data, label = read_file(source), display_path(source)
    if not data:
        raise ImageError(f"{label}: file is empty (0 bytes)")
    if data[:3] == b"\xff\xd8\xff":
        delivery = _jpeg_delivery(data, image, label)
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        delivery = _webp_delivery(data, image, label)
    else:
        pixels, fmt = _pixels(data, image, label)
        delivery = _lossless_delivery(fmt, pixels)
    sizes = list(enrolled_sizes)
    return replace(delivery, scale=resize_factor((delivery.width, delivery.height), sizes)) if sizes else delivery


def resize_factor(size: tuple[int, int], enrolled_sizes: Iterable[tuple[int, int]]) -> float:
    """The query's long side over the long side of the enrolled size nearest to it (by ratio)."""
    query = max(size)
    sides = np.array([max(s) for s in enrolled_sizes], dtype=np.float64)
    if not len(sides) or query <= 0 or sides.min() <= 0:
        raise AttribError("resize_factor needs a positive size and at least one positive enrolled size")
    return float(query / sides[np.argmin(np.abs(np.log(query / sides)))])


def nearest_version(delivery: Delivery, ladder: Sequence[str]) -> str:
    """The rung of ``ladder`` ("original", "jpeg:<q>", "webp:<q>" or "webp") nearest to ``delivery``.

    A never-compressed file -> "original"; a JPEG file, or a lossless one JPEG-coded before -> the
    nearest of the JPEG rungs and "original" (counted as quality 100) by quality; a lossy WebP -> the
    WebP rung nearest its quality; without such a rung, a lossy WebP is treated as JPEG of its
    quality (75 when unknown). A kind with no rung falls back to "original", else the first rung.
    """
    rungs = [_parse_rung(rung) for rung in ladder]
    if not rungs:
        raise AttribError("the ladder of enrolled versions is empty")
    quality = delivery.quality
    if delivery.coding == LOSSY_WEBP:
        webp = [(abs((q or 0) - (delivery.webp_quality or 0)), i) for i, (kind, q) in enumerate(rungs) if kind == "webp"]
        if webp:
            return ladder[min(webp)[1]]
        quality = delivery.webp_quality or 75
    target = 100 if quality is None else quality
    near = [(abs(target - (q or 100)), -(q or 100), i) for i, (kind, q) in enumerate(rungs) if kind in ("original", "jpeg")]
    return ladder[min(near)[2]] if near else ladder[0]


def _parse_rung(rung: str) -> tuple[str, int | None]:
    kind, _, number = str(rung).strip().lower().partition(":")
    if kind == "original" and not number or kind == "webp" and not number:
        return kind, None
    if kind in ("jpeg", "webp") and number.isdigit() and 1 <= int(number) <= 100:
        return kind, int(number)
    raise AttribError(f"unknown delivery version {rung!r}: use 'original', 'jpeg:<1-100>', 'webp:<1-100>' or 'webp'")


# -- JPEG files ----------------------------------------------------------------


def _jpeg_delivery(data: bytes, image, label: str) -> Delivery:
    try:
        with Image.open(io.BytesIO(data), formats=("JPEG",)) as header:
            tables = getattr(header, "quantization", None) or {}
            sampling = SAMPLING.get(JpegImagePlugin.get_sampling(header))
            width, height = header.size
            if header.getexif().get(0x0112) in (5, 6, 7, 8):  # the loader turns such images on their side
                width, height = height, width
    except Exception as exc:  # noqa: BLE001 -- Pillow raises anything on a crafted header
        raise ImageError(f"{label}: cannot read the JPEG header ({type(exc).__name__})") from None
    width, height = _size(image, (width, height))
    quality, standard = jpeg_table_quality(tables) or (None, None)
    return Delivery("JPEG", JPEG, width, height, jpeg_quality=quality, standard_tables=standard,
                    chroma_subsampling=sampling)


# -- WebP files ----------------------------------------------------------------

_MAX_CHUNKS = 256


def webp_chunks(data: bytes, start: int = 12, end: int | None = None, depth: int = 0) -> list[tuple[bytes, int, int]]:
    """(fourcc, payload offset, payload length) of the RIFF chunks in data[start:end], frames' sub-chunks
    included; lengths are clipped to the bytes present and at most :data:`_MAX_CHUNKS` are read."""
    end = len(data) if end is None else min(end, len(data))
    chunks: list[tuple[bytes, int, int]] = []
    while start + 8 <= end and len(chunks) < _MAX_CHUNKS:
        fourcc, size = data[start: start + 4], int.from_bytes(data[start + 4: start + 8], "little")
        length = min(size, end - start - 8)
        chunks.append((fourcc, start + 8, length))
        if fourcc == b"ANMF" and depth == 0 and length > 16:
            chunks += webp_chunks(data, start + 24, start + 8 + length, depth + 1)[: _MAX_CHUNKS - len(chunks)]
        start += 8 + size + (size & 1)
    return chunks


def _webp_delivery(data: bytes, image, label: str) -> Delivery:
    chunks = webp_chunks(data)
    kinds = {fourcc for fourcc, _, _ in chunks}
    flags = next((data[at] for fourcc, at, length in chunks if fourcc == b"VP8X" and length >= 1), 0)
    lossless_alpha = any(fourcc == b"VP8L" and length >= 5 and data[at + 4] & 0x10 for fourcc, at, length in chunks)
    alpha = b"ALPH" in kinds or bool(flags & 0x10) or lossless_alpha  # VP8L: its header's alpha_is_used bit
    animated = b"ANMF" in kinds or bool(flags & 0x02)
    lossy = next(((at, length) for fourcc, at, length in chunks if fourcc == b"VP8 "), None)
    if lossy is None and b"VP8L" not in kinds:
        raise ImageError(f"{label}: WebP file holds no VP8 or VP8L image data")
    if lossy is None:
        pixels, _ = _pixels(data, image, label)
        return replace(_lossless_delivery("WEBP", pixels), alpha=alpha, animated=animated)
    levels = vp8_quantizers(data[lossy[0]: lossy[0] + lossy[1]])
    return Delivery("WEBP", LOSSY_WEBP, *_size(image, None, data, label), alpha=alpha, animated=animated,
                    webp_quantizer=round(float(np.mean(levels))) if levels else None,
                    webp_quality=webp_quality(levels) if levels else None)


class _BoolDecoder:
    """VP8's boolean entropy decoder (RFC 6386, section 7.3); reads zeros past the end of its bytes."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos, self.range, self.bits = data, 2, 255, 0
        self.value = int.from_bytes(data[:2].ljust(2, b"\0"), "big")

    def bit(self, probability: int = 128) -> int:
        split = 1 + (((self.range - 1) * probability) >> 8)
        if self.value >= split << 8:
            bit, self.range, self.value = 1, self.range - split, self.value - (split << 8)
        else:
            bit, self.range = 0, split
        while self.range < 128:
            self.value, self.range, self.bits = self.value << 1, self.range << 1, self.bits + 1
            if self.bits == 8:
                self.bits, self.value = 0, self.value | (self.data[self.pos] if self.pos < len(self.data) else 0)
                self.pos += 1
        return bit

    def number(self, bits: int) -> int:
        value = 0
        for _ in range(bits):
            value = value << 1 | self.bit()
        return value

    def optional(self, bits: int, signed: bool = True) -> int | None:
        """A flagged field: None when its flag is off, else the value (and sign)."""
        if not self.bit():
            return None
        value = self.number(bits)
        return -value if signed and self.bit() else value

    def skip(self, count: int, bits: int, signed: bool = True) -> None:
        for _ in range(count):
            self.optional(bits, signed)


def vp8_quantizers(frame: bytes) -> list[int] | None:
    """The luma AC quantiser indices (0-127) of a VP8 key frame's segments (one without segments: its
    base index); None when the bytes are not a key frame's header."""
    if len(frame) < 10 or frame[0] & 1 or frame[3:6] != b"\x9d\x01\x2a":
        return None
    first = int.from_bytes(frame[:3], "little") >> 5
    bits = _BoolDecoder(frame[10: 10 + first])
    bits.number(2)  # colour space, clamping
    segment_q: list[int | None] = []
    absolute = False
    if bits.bit():  # segmentation
        update_map = bits.bit()
        if bits.bit():  # segment feature data
            absolute = bool(bits.bit())
            segment_q = [bits.optional(7) for _ in range(4)]
            bits.skip(4, 6)  # loop filter levels
        if update_map:
            bits.skip(3, 8, signed=False)  # segment map probabilities
    bits.number(10)  # filter type, loop filter level, sharpness
    if bits.bit() and bits.bit():  # loop filter deltas, updated
        bits.skip(8, 6)
    bits.number(2)  # partitions
    base = bits.number(7)
    levels = [(q or 0) if absolute else base + (q or 0) for q in segment_q] or [base]
    return [int(level) for level in np.clip(levels, 0, 127)]


def webp_quality(quantizers: Sequence[int]) -> int:
    """The libwebp quality (0-100) that a frame's segment quantiser indices imply. libwebp sets each to
    127 * (1 - c ** e), c from the quality by its QualityToCompression and e = 1 - amp * alpha, with
    alpha clipped to -127 on the coarsest segment and amp = 0.9 * 50 / 100 / 128 at the default
    spatial noise shaping (50); a frame without segments has e = 1. An estimate for other settings."""
    coarsest = min(max(max(quantizers), 0), 126.5)
    exponent = 1 + 0.9 * 0.5 / 128 * 127 if len(set(quantizers)) > 1 else 1.0
    linear = (1 - coarsest / 127) ** (3 / exponent)
    return int(round(100 * (1.5 * linear if linear < 0.5 else (linear + 1) / 2)))


# -- pixels of lossless files: JPEG-coded before? ------------------------------

CROP = 256  # the detector reads at most a CROP x CROP centre of the image, on the image's 8-pixel grid
MIN_BLOCKS = 64  # fewer 8x8 blocks than this: nothing is concluded
DETECT_SCORE, DETECT_MARGIN = 0.1, 0.08  # fit on the grid, and its excess over the fit off the grid
CONFIDENT = 0.1  # evidence this far from the thresholds (either way) is confidence 1
_BINS_PER_UNIT, _REACH, _MAX_STEP, _SAMPLES_HALF_WEIGHT = 4, 256, 128, 40
_POSITIONS = ZIGZAG[:15]  # the low frequencies read: DC and 14 AC coefficients
_FIT_QUALITIES = IJG_QUALITIES[IJG_TABLES[:, 0, _POSITIONS].max(axis=1) <= _MAX_STEP]
_DCT = (np.cos(np.pi * np.outer(np.arange(8), 2 * np.arange(8) + 1) / 16) * np.sqrt(2 / 8)).astype(np.float32)
_DCT[0] /= np.sqrt(2)  # the orthonormal DCT-II: JPEG's forward transform


@dataclass(frozen=True)
class GridFit:
    """How well the luminance's 8x8 block DCT fits libjpeg's steps at its best quality."""

    score: float  # mean over the coefficients read of how tightly they sit on that quality's steps (<= 1)
    quality: int
    off_grid: float | None  # the same half a block off the grid (about as high for an image never
    # JPEG-coded); None when the score is below DETECT_SCORE, which decides already

    @property
    def evidence(self) -> float:
        """Above 0: JPEG-coded before (score and margin over the off-grid score both over their thresholds)."""
        if self.off_grid is None:
            return self.score - DETECT_SCORE
        return min(self.score - DETECT_SCORE, self.score - self.off_grid - DETECT_MARGIN)


def jpeg_grid_fit(pixels: np.ndarray) -> GridFit | None:
    """The best IJG quality fit of an RGB (HxWx3) or grey (HxW) uint8 image's 8x8 luminance DCT, on the
    image's own grid or else where the pixel steps peak, and half a block off it; None for an image of
    fewer than :data:`MIN_BLOCKS` blocks."""
    top, left = ((np.array(pixels.shape[:2]) - CROP) // 2).clip(0) // 8 * 8
    crop = np.asarray(pixels[top: top + CROP, left: left + CROP], dtype=np.float32)
    luma = crop[..., 0] * 0.299 + crop[..., 1] * 0.587 + crop[..., 2] * 0.114 if crop.ndim == 3 else crop
    if (luma.shape[0] // 8 - 1) * (luma.shape[1] // 8 - 1) < MIN_BLOCKS:
        return None
    phase = (0, 0)
    score, quality = _fit(luma, phase)
    if score < DETECT_SCORE and (peak := _grid_phase(luma)) != phase:
        (score, quality), phase = max((score, quality), _fit(luma, peak)), peak
    if score < DETECT_SCORE:
        return GridFit(score, quality, None)
    return GridFit(score, quality, _fit(luma, ((phase[0] + 4) % 8, (phase[1] + 4) % 8))[0])


def _grid_phase(luma: np.ndarray) -> tuple[int, int]:
    """(row, column) where 8x8 blocks start: after the row and column steps that are largest on average."""
    rows, cols = (np.abs(np.diff(luma, axis=axis)).mean(axis=1 - axis) for axis in (0, 1))
    return _after_peak(rows), _after_peak(cols)


def _after_peak(steps: np.ndarray) -> int:
    return int((np.argmax([steps[k::8].mean() for k in range(8)]) + 1) % 8)


@functools.cache
def _periodicity() -> np.ndarray:
    """For each histogram bin of coefficient values (rows) and each step 1.._MAX_STEP: cos(2 pi value /
    step) where |value| >= step / 2 (a coefficient that step would not quantise to zero), else 0; then
    that mask (columns _MAX_STEP onwards)."""
    values = (np.arange(2 * _REACH * _BINS_PER_UNIT) - _REACH * _BINS_PER_UNIT) / _BINS_PER_UNIT
    steps = np.arange(1, _MAX_STEP + 1)[:, None]
    counted = np.abs(values) >= steps / 2
    return np.ascontiguousarray(np.concatenate([np.cos(2 * np.pi * values / steps) * counted, counted]).T, np.float32)


def _fit(luma: np.ndarray, phase: tuple[int, int]) -> tuple[float, int]:
    """(score, quality) of the best IJG quality for the block DCT of ``luma`` on the grid at ``phase``.

    No BLAS call here is large enough to start threads: this runs on the loader's decoding threads."""
    dy, dx = phase
    h, w = (luma.shape[0] - dy) // 8 * 8, (luma.shape[1] - dx) // 8 * 8
    blocks = (luma[dy: dy + h, dx: dx + w] - 128).reshape(h // 8, 8, w // 8, 8).transpose(0, 2, 1, 3)
    coefficients = (_DCT @ blocks @ _DCT.T).reshape(-1, 64)[:, _POSITIONS]
    width = 2 * _REACH * _BINS_PER_UNIT
    bins = np.rint(coefficients * _BINS_PER_UNIT).astype(np.int64) + width // 2
    inside = (bins >= 0) & (bins < width)
    flat = (bins + np.arange(len(_POSITIONS)) * width)[inside]
    histogram = np.bincount(flat, minlength=len(_POSITIONS) * width).reshape(len(_POSITIONS), width)
    used = np.flatnonzero(histogram.any(axis=0))
    sums = np.einsum("pb,bs->ps", histogram[:, used].astype(np.float32), _periodicity()[used])
    samples = sums[:, _MAX_STEP:]
    tightness = sums[:, :_MAX_STEP] / np.maximum(samples, 1)
    weighted = tightness * samples / (samples + _SAMPLES_HALF_WEIGHT)  # (positions, steps)
    steps = IJG_TABLES[_FIT_QUALITIES - 1, 0][:, _POSITIONS]  # (qualities, positions)
    per_quality = weighted[np.arange(len(_POSITIONS)), steps - 1].mean(axis=1)
    tied = np.flatnonzero(per_quality >= per_quality.max() - 1e-6)
    return float(per_quality.max()), int(_FIT_QUALITIES[tied[len(tied) // 2]])


def _lossless_delivery(fmt: str, pixels: np.ndarray) -> Delivery:
    height, width = (int(n) for n in pixels.shape[:2])
    fit = jpeg_grid_fit(pixels)
    if fit is None:
        return Delivery(fmt, LOSSLESS, width, height)
    found = fit.evidence > 0
    return Delivery(fmt, LOSSLESS, width, height, jpeg_before=found, estimated_quality=fit.quality if found else None,
                    confidence=round(min(1.0, abs(fit.evidence) / CONFIDENT), 3))


_MAGIC = ((b"\x89PNG", "PNG"), (b"GIF8", "GIF"), (b"BM", "BMP"), (b"II*\0", "TIFF"), (b"MM\0*", "TIFF"),
          (b"RIFF", "WEBP"))


def _pixels(data: bytes, image, label: str) -> tuple[np.ndarray, str]:
    """The decoded pixels (from ``image`` when given) and the format name."""
    if image is None:
        return decode_bytes(data, label, min_side=1)
    fmt = next((name for magic, name in _MAGIC if data.startswith(magic)), getattr(image, "format", None))
    return (to_rgb(image) if isinstance(image, Image.Image) else np.asarray(image)), fmt or "unknown"


def _size(image, header: tuple[int, int] | None, data: bytes = b"", label: str = "") -> tuple[int, int]:
    """(width, height) of ``image`` when given, else ``header``, else read from the file's header."""
    if isinstance(image, Image.Image):
        return image.size
    if image is not None:
        return int(np.shape(image)[1]), int(np.shape(image)[0])
    if header is not None:
        return header
    try:
        with Image.open(io.BytesIO(data), formats=("WEBP",)) as opened:
            return opened.size
    except Exception as exc:  # noqa: BLE001 -- Pillow raises anything on a crafted header
        raise ImageError(f"{label}: cannot read the WebP header ({type(exc).__name__})") from None
