"""Re-embedding (``Gallery.reembed``): what it reports, and the stored samples read again from their paths
and embedded, batch by batch. Samples uploaded to ``attrib serve`` without a kept copy (stored path
``upload:NAME``, see :mod:`attrib.sample_paths`) have nothing to read: they are counted apart from
files that are missing or changed."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .enrollment import Thumbnail, make_thumbnail
from .extractors.contract import BoundExtractor
from .images import BATCH, LoadedImage, load_images
from .sample_paths import is_placeholder


@dataclass
class ReembedReport:
    """What one re-embed did. ``problems``: samples whose file is missing, unreadable or changed;
    ``uploaded``: samples uploaded without a kept copy, which cannot be read again."""

    extractor: str
    embedded: int = 0
    present: int = 0
    problems: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    thumbnails_added: int = 0
    thumbnail_problems: list[str] = field(default_factory=list)  # samples left without one (file moved, changed)
    uploaded: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Whether every sample now has a vector of this extractor."""
        return not (self.problems or self.uploaded)


def embed_again(todo: Sequence[tuple[int, str, str, str]], extractor: BoundExtractor, report: ReembedReport,
                progress: Callable[[int], None] | None = None
                ) -> tuple[list[tuple[int, np.ndarray]], dict[int, Thumbnail], set[int]]:
    """Read again and embed the samples of ``todo`` ((sample id, path, sha256, generator)): (sample id,
    vector) pairs, the thumbnails made on the way, and the ids of the samples left out, each of them
    reported in ``report`` (``problems`` or ``uploaded``)."""
    new_vectors: list[tuple[int, np.ndarray]] = []
    made: dict[int, Thumbnail] = {}
    unread: set[int] = set()
    for sample_id, path, sha256, generator in todo:
        if is_placeholder(path):
            report.uploaded.append(f"sample of {generator!r} ({sha256[:12]}): {path}")
            unread.add(sample_id)
    readable = [row for row in todo if row[0] not in unread]
    if progress and unread:
        progress(len(unread))
    loaded = load_images(Path(path) for _, path, _, _ in readable)
    for start in range(0, len(readable), BATCH):
        batch_ids, pixels = [], []
        for (sample_id, path, sha256, generator), (_, image) in zip(readable[start: start + BATCH], loaded):
            if not isinstance(image, LoadedImage):
                report.problems.append(f"sample of {generator!r} ({sha256[:12]}): {image}")
                unread.add(sample_id)
            elif image.sha256 != sha256:
                report.problems.append(
                    f"sample of {generator!r}: {path} changed since enrollment (sha256 {image.sha256[:12]} "
                    f"!= {sha256[:12]}); remove and re-enroll it"
                )
                unread.add(sample_id)
            else:
                batch_ids.append(sample_id)
                pixels.append(image.pixels)
                made[sample_id] = make_thumbnail(image.pixels)
            if progress:
                progress(1)
        if pixels:
            new_vectors.extend(zip(batch_ids, extractor.embed(pixels)))
    return new_vectors, made, unread
