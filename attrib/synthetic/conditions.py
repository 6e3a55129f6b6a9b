"""Image conditions for robustness evaluation: crops, lossy round trips, resizing.

A condition is one step or several joined with ``+``, applied left to right::

    center-crop:256            the central SxS window
    crop:256                   a random SxS window (the position comes from the ``rng`` given to apply)
    jpeg:80                    a JPEG round trip in memory at quality Q (1-100, Pillow defaults otherwise)
    webp:80                    a WebP round trip in memory at quality Q (0-100, lossy)
    resize:0.5                 scale both sides by F (Pillow bicubic; at least 1 px per side)
    png                        a lossless re-save (the pixels unchanged; the file travels as PNG)
    none                       the pixels as decoded
    center-crop:256+jpeg:80    crop first, then compress
    jpeg:80+png                a JPEG re-saved losslessly (a screenshot, a re-upload as PNG)

An image smaller than a crop is not padded: the crop is clipped to the image, so
``center-crop:256`` of a 200x300 image gives 200x256 (the central 256 columns).
Every step takes and returns an HxWx3 uint8 RGB array. :func:`write_conditioned` applies
conditions to labelled files and saves the results losslessly, as ``attrib evaluate`` uses them;
a condition written *as delivered* ends in the file its last step makes: a ``.jpg`` for a
trailing ``jpeg:Q``, a ``.webp`` for ``webp:Q``, else a PNG (:attr:`Condition.delivered_as`).
"""

from __future__ import annotations

import io
import re
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..errors import AttribError

VALID_FORMS = (
    "center-crop:S, crop:S (S pixels, e.g. 256), jpeg:Q (quality 1-100), webp:Q (quality 0-100), "
    "resize:F (factor, e.g. 0.5), png (a lossless re-save) or none, joined with '+' and applied left to right "
    "(e.g. center-crop:256+jpeg:80)"
)
_INT = re.compile(r"^\d+$")
_FLOAT = re.compile(r"^(\d+(\.\d*)?|\.\d+)$")
MAX_RESIZE = 8.0
_CODECS = {"jpeg": "JPEG", "webp": "WEBP"}  # a lossy step -> the Pillow format of its file
_SUFFIX = {"JPEG": ".jpg", "WEBP": ".webp", "PNG": ".png"}


@dataclass(frozen=True)
class Step:
    """One transformation: ``kind`` is center-crop, crop, jpeg, webp, resize, png or none."""

    kind: str
    value: float | int | None = None

    def __str__(self) -> str:
        return self.kind if self.value is None else f"{self.kind}:{self.value:g}"

    def apply(self, pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.kind in ("none", "png"):
            return pixels
        value = self.value
        assert value is not None, f"a {self.kind} step has a value"
        if self.kind in ("center-crop", "crop"):
            return _crop(pixels, int(value), rng if self.kind == "crop" else None)
        if self.kind in ("jpeg", "webp"):
            return _round_trip(pixels, "JPEG" if self.kind == "jpeg" else "WEBP", int(value))
        if self.kind == "resize":
            return _resize(pixels, float(value))
        raise AssertionError(self.kind)


@dataclass(frozen=True)
class Condition:
    """A parsed condition; ``str(condition)`` is its canonical text."""

    steps: tuple[Step, ...] = field(default_factory=tuple)

    def __str__(self) -> str:
        return "+".join(str(s) for s in self.steps) or "none"

    @property
    def slug(self) -> str:
        """A file-name-safe form, e.g. ``center-crop-256+jpeg-80``."""
        return re.sub(r"[^A-Za-z0-9.+-]+", "-", str(self)).strip("-") or "none"

    @property
    def random(self) -> bool:
        """True when the outcome depends on the rng (a random crop)."""
        return any(s.kind == "crop" for s in self.steps)

    @property
    def delivered_as(self) -> tuple[str, int | None]:
        """(Pillow format, quality) of the file the condition ends in: ``("JPEG", 80)`` for a trailing
        ``jpeg:80``, ``("WEBP", 80)`` for ``webp:80``, ``("PNG", None)`` otherwise (lossless)."""
        last = self.steps[-1] if self.steps else Step("none")
        if last.kind in _CODECS:
            return _CODECS[last.kind], int(last.value or 0)
        return "PNG", None

    def apply(self, pixels: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """Apply the steps left to right to an HxWx3 uint8 RGB array; return a new uint8 RGB array."""
        if rng is None:
            rng = np.random.default_rng(0)
        out = np.asarray(pixels)
        if out.ndim != 3 or out.shape[2] != 3 or out.dtype != np.uint8:
            raise AttribError(f"condition {self}: expected an HxWx3 uint8 RGB array, got {out.dtype} {out.shape}")
        for step in self.steps:
            out = step.apply(out, rng)
        return np.ascontiguousarray(out, dtype=np.uint8)


def parse_condition(text: str) -> Condition:
    """Parse ``center-crop:256+jpeg:80`` and the like; raise AttribError naming the bad part."""
    raw = str(text).strip()
    if not raw:
        raise AttribError(f"condition is empty; valid forms: {VALID_FORMS}")
    steps = []
    for part in raw.split("+"):
        steps.append(_parse_step(raw, part.strip()))
    steps = [s for s in steps if s.kind != "none"]
    return Condition(tuple(steps))


def _parse_step(whole: str, part: str) -> Step:
    def bad(why: str) -> AttribError:
        where = f"condition {whole!r}" + (f", part {part!r}" if part != whole else "")
        return AttribError(f"{where}: {why}; valid forms: {VALID_FORMS}")

    if not part:
        raise bad("empty part (two '+' in a row or a '+' at an end)")
    kind, sep, value = (s.strip() for s in part.lower().partition(":"))
    if kind in ("none", "identity", "original", "png"):
        if sep:
            raise bad(f"{kind} takes no value")
        return Step("png" if kind == "png" else "none")
    if kind not in ("center-crop", "crop", "jpeg", "webp", "resize"):
        raise bad(f"unknown transformation {kind!r}")
    if not sep or not value:
        raise bad(f"{kind} needs a value, e.g. {kind}:{'0.5' if kind == 'resize' else '256' if 'crop' in kind else '80'}")
    if kind == "resize":
        if not _FLOAT.match(value) or not 0 < float(value) <= MAX_RESIZE:
            raise bad(f"resize factor must be a number above 0 and at most {MAX_RESIZE:g}, got {value!r}")
        return Step(kind, float(value))
    if not _INT.match(value):
        raise bad(f"{kind} needs a whole number, got {value!r}")
    number = int(value)
    if kind in ("center-crop", "crop") and number < 1:
        raise bad(f"crop size must be at least 1 pixel, got {number}")
    if kind == "jpeg" and not 1 <= number <= 100:
        raise bad(f"JPEG quality must be 1-100, got {number}")
    if kind == "webp" and not 0 <= number <= 100:
        raise bad(f"WebP quality must be 0-100, got {number}")
    return Step(kind, number)


def _crop(pixels: np.ndarray, size: int, rng: np.random.Generator | None) -> np.ndarray:
    """An SxS window (clipped to the image): central when rng is None, else at a random position."""
    h, w = pixels.shape[:2]
    ch, cw = min(size, h), min(size, w)
    if rng is None:
        top, left = (h - ch) // 2, (w - cw) // 2
    else:
        top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    return pixels[top : top + ch, left : left + cw]


def _round_trip(pixels: np.ndarray, fmt: str, quality: int) -> np.ndarray:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, format=fmt, quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as image:
        return np.asarray(image.convert("RGB"), dtype=np.uint8)


def _resize(pixels: np.ndarray, factor: float) -> np.ndarray:
    from PIL import Image

    h, w = pixels.shape[:2]
    size = (max(1, int(round(w * factor))), max(1, int(round(h * factor))))
    if size == (w, h):
        return pixels
    resized = Image.fromarray(pixels, "RGB").resize(size, Image.Resampling.BICUBIC)
    return np.asarray(resized, dtype=np.uint8)


def write_conditioned(files: dict[str, list[Path]], conditions: list[Condition], seed: int, workdir: Path,
                      advance: Callable[[int], None] = lambda n: None, notes: Counter[str] | None = None,
                      delivered: Sequence[bool] = ()) -> list[dict[str, dict[int, Path]]]:
    """Decode every file once, apply each condition, save the result losslessly (PNG) under ``workdir``.

    A condition whose ``delivered`` flag is set (by position; unset when missing) is written as it
    travels instead: its trailing ``jpeg:Q`` or ``webp:Q`` step is the file's own coding (a ``.jpg``
    or ``.webp`` whose decoded pixels are the in-memory round trip's), any other ending a PNG.
    ``files`` maps a label to its image files. Returns, per condition, ``{label: {file index: path}}``.
    A file that cannot be decoded, or is under the loader's minimum size after a condition, is left out
    and counted in ``notes`` (message -> count). A random crop is drawn from (seed, label, file name, index).
    """
    from PIL import Image

    from ..images import MIN_SIDE, LoadedImage, load_images

    notes = Counter() if notes is None else notes
    workdir = Path(workdir)
    prepared: list[dict[str, dict[int, Path]]] = [{label: {} for label in files} for _ in conditions]
    for label, paths in files.items():
        for c in range(len(conditions)):
            (workdir / f"c{c}" / label).mkdir(parents=True, exist_ok=True)
        for i, (path, image) in enumerate(load_images(paths)):
            advance(1)
            if not isinstance(image, LoadedImage):
                notes[f"left out: {image}"] += 1
                continue
            for c, condition in enumerate(conditions):
                rng = np.random.default_rng([seed, zlib.crc32(f"{label}/{path.name}/{i}".encode())])
                as_file = c < len(delivered) and delivered[c]
                fmt, quality = condition.delivered_as if as_file else ("PNG", None)
                steps = condition.steps[:-1] if quality is not None else condition.steps
                pixels = Condition(steps).apply(image.require_pixels(), rng)
                if min(pixels.shape[:2]) < MIN_SIDE:
                    notes[f"left out of {condition}: {path} is {pixels.shape[1]}x{pixels.shape[0]} px after it, "
                          f"below the {MIN_SIDE}-px minimum"] += 1
                    continue
                target = workdir / f"c{c}" / label / f"{i:05d}{_SUFFIX[fmt]}"
                options = {"compress_level": 1} if quality is None else {"quality": quality}
                Image.fromarray(pixels, "RGB").save(target, format=fmt, **options)
                prepared[c][label][i] = target
    return prepared
