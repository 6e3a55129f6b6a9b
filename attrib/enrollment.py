"""What one enroll reports, the images of an enroll decoded, checked and embedded chunk by chunk, and the
thumbnails stored with them: small previews (WebP, at most :data:`SIDE` px on the long side) made from the
decoded pixels, so reports can show what was enrolled after the original files moved (stored through
:mod:`attrib.storage.thumbnails`; :func:`fill_in` makes those an older gallery lacks from the files)."""

from __future__ import annotations

import io
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from .errors import AttribError, EnrollmentConflict
from .extractors.contract import BoundExtractor
from .images import ImageRecord, LoadedImage, display_path, load_batches, load_images
from .sample_paths import StoredAs, stored_path


@dataclass
class EnrollReport:
    """What one enroll did: files added, skipped (already enrolled) and failed, and the calibration."""

    generator: str
    added: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    calibration: str = ""

    def to_json(self, extractor_key: str, rename: Callable[[str], str] = str) -> dict:
        """What `attrib enroll --json` prints; ``rename`` maps each shown path (also inside messages) to
        the name to print (the HTTP API prints uploaded file names)."""

        def text(message: str) -> str:
            return next((message.replace(p, rename(p)) for p in (*self.added, *(p for p, _ in self.skipped),
                                                                  *(p for p, _ in self.failed))
                         if p in message and rename(p) != p), message)

        return {
            "generator": self.generator,
            "extractor": extractor_key,
            "added": [rename(p) for p in self.added],
            "skipped": [{"path": rename(p), "reason": text(r)} for p, r in self.skipped],
            "failed": [{"path": rename(p), "error": text(r)} for p, r in self.failed],
            "calibration": self.calibration,
        }


def embedded_chunks(report: EnrollReport, paths: Iterable[Path], extractor: BoundExtractor,
                    owners_of: Callable[[list[str]], dict[str, str]], progress: Callable[[int], None] | None = None,
                    stored_as: StoredAs | None = None,
                    relink: Callable[[list[LoadedImage]], dict[str, str]] | None = None
                    ) -> Iterator[tuple[list[ImageRecord], list[str], np.ndarray]]:
    """Per decoded batch: the records (each with its thumbnail, and the path ``stored_as`` gives, by default
    the file's), shown paths and vectors of the images not enrolled yet (who owns a sha256 is asked of
    ``owners_of`` per batch); what is enrolled already (under this generator, or earlier in this run) or
    under another, or unreadable, goes into ``report``. The images already enrolled under this generator
    go to ``relink`` (see :func:`attrib.sample_paths.relink`: {sha256: the placeholder path it replaced})."""
    seen: set[str] = set()
    for chunk in load_batches(paths):
        loaded = []
        for item in chunk:
            if progress:
                progress(1)
            if isinstance(item, LoadedImage):
                loaded.append(item)
            else:
                report.failed.append((display_path(item[0]), item[1]))
        owners = owners_of([item.sha256 for item in loaded]) if loaded else {}
        mine = [item for item in loaded if owners.get(item.sha256) == report.generator]
        replaced = relink(mine) if relink and mine else {}
        new = []
        for item in loaded:
            shown, owner = display_path(item.path), owners.get(item.sha256)
            if owner == report.generator or item.sha256 in seen:
                report.skipped.append((shown, skip_reason(report.generator, replaced.pop(item.sha256, None))))
            elif owner is not None:
                report.failed.append((shown, conflict_message(shown, owner, report.generator)))
            else:
                seen.add(item.sha256)
                new.append(item)
        if new:
            yield ([replace(item.record(), path=Path(stored_path(item, stored_as)),
                            thumbnail=make_thumbnail(item.pixels)) for item in new],
                   [display_path(item.path) for item in new], extractor.embed([item.pixels for item in new]))


def skip_reason(generator: str, replaced: str | None = None) -> str:
    """Why an image already enrolled under ``generator`` is skipped (and the placeholder path it replaced)."""
    reason = f"already enrolled under {generator!r}"
    return f"{reason}; its stored path {replaced} replaced, so it can be read again" if replaced else reason


def conflict_message(path: str, owner: str, generator: str) -> str:
    return str(EnrollmentConflict(
        f"{path}: already enrolled under generator {owner!r}, refused for {generator!r}; "
        f"remove it from {owner!r} first if it was mislabelled"))


def validate_name(name: str) -> str:
    cleaned = name.strip()
    if not cleaned or len(cleaned) > 200 or any(ch in cleaned for ch in "\n\r\t+"):
        raise AttribError(
            f"generator name {name!r} is not usable: use 1-200 characters without '+', tabs or newlines"
        )
    return cleaned


# -- thumbnails ---------------------------------------------------------

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
    image.thumbnail((side, side), Image.Resampling.LANCZOS, reducing_gap=2.0)
    buffer = io.BytesIO()
    image.save(buffer, format="WEBP", quality=QUALITY, method=2)
    return Thumbnail(buffer.getvalue(), image.width, image.height)


def fill_in(store, skip: set[int] = frozenset(), ready: dict[int, Thumbnail] | None = None,
            problems: list[str] | None = None, chunk: int = 256,
            notify: Callable[[str], None] | None = None) -> int:
    """Store a thumbnail for every sample of ``store`` that lacks one, from ``ready`` (sample id ->
    thumbnail already made) or else read again from its path and checked against its sha256; samples in
    ``skip`` are left alone. Files missing, unreadable or changed are appended to ``problems``. Each
    ``chunk`` is one transaction under the writer lock. Returns how many were stored."""
    from .storage import thumbnails as stored

    ready = ready or {}
    failed: list[str] = []
    todo = [row for row in stored.samples_without(store) if row[0] not in skip]
    added = 0
    for start in range(0, len(todo), chunk):
        part = todo[start: start + chunk]
        made = {sample_id: ready[sample_id] for sample_id, *_ in part if sample_id in ready}
        reread = [row for row in part if row[0] not in made]
        for (sample_id, path, sha256, generator), (_, image) in zip(reread, load_images(Path(r[1]) for r in reread)):
            if not isinstance(image, LoadedImage):
                failed.append(f"thumbnail of a sample of {generator!r} ({sha256[:12]}): {image}")
            elif image.sha256 != sha256:
                failed.append(f"thumbnail of a sample of {generator!r}: {path} changed since enrollment "
                              f"(sha256 {image.sha256[:12]} != {sha256[:12]})")
            else:
                made[sample_id] = make_thumbnail(image.pixels)
        with store.lock.held():
            added += stored.add(store, made)
    if notify and failed:
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        notify(f"added {added} thumbnails; left without one: {failed[0]}{more}")
    elif notify and added:
        notify(f"added {added} thumbnails")
    if problems is not None:
        problems.extend(failed)
    return added

