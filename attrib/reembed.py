"""Re-embedding stored samples with another extractor (or a new version of one)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from sqlalchemy import delete, select

from . import db
from .extractor import BoundExtractor
from .gallery import Gallery
from .images import BATCH, LoadedImage, load_images


@dataclass
class ReembedReport:
    extractor: str
    embedded: int = 0
    present: int = 0
    problems: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)


def reembed(gallery: Gallery, extractor: BoundExtractor, progress: Callable[[int], None] | None = None,
            target_far: float | None = None) -> ReembedReport:
    """Embed every sample that lacks a vector for ``extractor``, reading it again from its path,
    then calibrate it (at ``target_far``, by default the FAR it was last calibrated at, else 0.01).

    Files that are missing or whose sha256 changed since enrollment are
    reported and left alone. When every sample is covered, vectors of other
    versions (or options) of the same extractor are dropped.
    """
    key = extractor.identity.key
    report = ReembedReport(key)
    with gallery.Session.begin() as session:
        extractor_id = gallery.extractor_row(session, extractor, create=True, allow_other_versions=True).id
        done = set(session.scalars(select(db.Vector.sample_id).where(db.Vector.extractor_id == extractor_id)))
        samples = session.execute(
            select(db.Sample.id, db.Sample.path, db.Sample.sha256, db.Generator.name).join(db.Generator)
        ).all()
    todo = []
    for sample_id, path, sha256, generator in samples:
        if sample_id in done:
            report.present += 1
            if progress:
                progress(1)
            continue
        todo.append((sample_id, Path(path), sha256, generator))
    new_vectors: list[tuple[int, np.ndarray]] = []
    loaded = load_images(path for _, path, _, _ in todo)
    for start in range(0, len(todo), BATCH):
        batch_ids, pixels = [], []
        for (sample_id, path, sha256, generator), (_, image) in zip(todo[start : start + BATCH], loaded):
            if not isinstance(image, LoadedImage):
                report.problems.append(f"sample of {generator!r} ({sha256[:12]}): {image}")
            else:
                if image.sha256 != sha256:
                    report.problems.append(
                        f"sample of {generator!r}: {path} changed since enrollment (sha256 {image.sha256[:12]} "
                        f"!= {sha256[:12]}); remove and re-enroll it"
                    )
                else:
                    batch_ids.append(sample_id)
                    pixels.append(image.pixels)
            if progress:
                progress(1)
        if pixels:
            new_vectors.extend(zip(batch_ids, extractor.embed(pixels)))
    with gallery.Session.begin() as session:
        for sample_id, vector in new_vectors:
            session.add(db.Vector(sample_id=sample_id, extractor_id=extractor_id, data=vector.tobytes()))
        if not report.problems:
            stale = session.scalars(
                select(db.ExtractorRow).where(db.ExtractorRow.name == extractor.name, db.ExtractorRow.id != extractor_id)
            ).all()
            for old in stale:
                report.replaced.append(old.key)
                session.execute(delete(db.Vector).where(db.Vector.extractor_id == old.id))
                session.delete(old)
        session.add(db.Audit(action="reembed", detail=json.dumps({"extractor": key, "embedded": len(new_vectors)})))
    report.embedded = len(new_vectors)
    for old_key in report.replaced:
        gallery.notify(f"dropped vectors of {old_key}: every sample now has a {key} vector")
    gallery.calibrate_extractor(extractor_id, target_far)
    return report
