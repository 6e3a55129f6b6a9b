"""Small previews of enrolled images (WebP, at most :data:`SIDE` px on the long side), made from the
decoded pixels at enrollment and stored with the gallery (:mod:`attrib.storage.thumbnails`), so reports
can show what was enrolled after the original files moved. :func:`fill_in` makes the ones an older
gallery lacks from the files, where they still are."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

SIDE = 128  # pixels on the long side, at most
FORMAT = "webp"
QUALITY = 75


@dataclass(frozen=True)
class Thumbnail:
    """An encoded preview and its size in pixels."""

    data: bytes
    width: int
    height: int
    format: str = FORMAT


def make_thumbnail(pixels: np.ndarray, side: int = SIDE) -> Thumbnail:
    """A WebP preview of ``pixels`` (HxWx3 uint8), its long side at most ``side`` px, the aspect kept
    (never enlarged; a side is never below 1 px)."""
    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(pixels[..., :3]))
    image.thumbnail((side, side), Image.Resampling.LANCZOS, reducing_gap=3.0)
    buffer = io.BytesIO()
    image.save(buffer, format="WEBP", quality=QUALITY, method=4)
    return Thumbnail(buffer.getvalue(), image.width, image.height)


def fill_in(store, skip: set[int] = frozenset(), ready: dict[int, Thumbnail] | None = None,
            problems: list[str] | None = None, chunk: int = 256,
            notify: Callable[[str], None] | None = None) -> int:
    """Store a thumbnail for every sample of ``store`` that lacks one, from ``ready`` (sample id ->
    thumbnail already made) or else read again from its path and checked against its sha256; samples in
    ``skip`` are left alone. Files missing, unreadable or changed are appended to ``problems``. Each
    ``chunk`` is one transaction under the writer lock. Returns how many were stored."""
    from .images import LoadedImage, load_images
    from .storage import thumbnails as stored

    ready = ready or {}
    todo = [row for row in stored.samples_without(store) if row[0] not in skip]
    added = 0
    for start in range(0, len(todo), chunk):
        part = todo[start: start + chunk]
        made = {sample_id: ready[sample_id] for sample_id, *_ in part if sample_id in ready}
        reread = [row for row in part if row[0] not in made]
        for (sample_id, path, sha256, generator), (_, image) in zip(reread, load_images(Path(r[1]) for r in reread)):
            if not isinstance(image, LoadedImage):
                _note(problems, f"thumbnail of a sample of {generator!r} ({sha256[:12]}): {image}")
            elif image.sha256 != sha256:
                _note(problems, f"thumbnail of a sample of {generator!r}: {path} changed since enrollment "
                                f"(sha256 {image.sha256[:12]} != {sha256[:12]})")
            else:
                made[sample_id] = make_thumbnail(image.pixels)
        with store.lock.held():
            added += stored.add(store, made)
    if added and notify:
        notify(f"added {added} thumbnails")
    return added


def _note(problems: list[str] | None, message: str) -> None:
    if problems is not None:
        problems.append(message)
