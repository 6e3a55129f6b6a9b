"""What one enroll reports, and the images of an enroll decoded, checked and embedded chunk by chunk."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from .errors import AttribError, EnrollmentConflict
from .extractors.contract import BoundExtractor
from .images import ImageRecord, LoadedImage, display_path, load_batches
from .thumbnails import make_thumbnail


@dataclass
class EnrollReport:
    """What one enroll did: files added, skipped (already enrolled) and failed, and the calibration."""

    generator: str
    added: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    calibration: str = ""


def embedded_chunks(report: EnrollReport, paths: Iterable[Path], extractor: BoundExtractor,
                    owners_of: Callable[[list[str]], dict[str, str]], progress: Callable[[int], None] | None = None
                    ) -> Iterator[tuple[list[ImageRecord], list[str], np.ndarray]]:
    """Per decoded batch: the records (each with its thumbnail), shown paths and vectors of the images not
    enrolled yet (who owns a
    sha256 is asked of ``owners_of`` per batch); what is enrolled already (under this generator, or
    earlier in this run) or under another, or unreadable, goes into ``report``."""
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
        new = []
        for item in loaded:
            shown, owner = display_path(item.path), owners.get(item.sha256)
            if owner == report.generator or item.sha256 in seen:
                report.skipped.append((shown, f"already enrolled under {report.generator!r}"))
            elif owner is not None:
                report.failed.append((shown, conflict_message(shown, owner, report.generator)))
            else:
                seen.add(item.sha256)
                new.append(item)
        if new:
            yield ([replace(item.record(), thumbnail=make_thumbnail(item.pixels)) for item in new],
                   [display_path(item.path) for item in new], extractor.embed([item.pixels for item in new]))


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
