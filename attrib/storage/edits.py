"""Edits of what is enrolled, as functions taking the SQL store (:class:`attrib.storage.sql.SQLStore`, SQLite or
PostgreSQL): renaming a generator, finding samples by sha256 or stored path, removing one sample. Each write is
one transaction under the writer lock with its audit entry; removing a sample's vectors bumps the revisions of
their extractors (:mod:`.revisions`), so the fits and the index are brought up to date after it as after any
removal."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Sequence

from sqlalchemy import func, select

from ..errors import GalleryError
from . import models as db
from .interface import SQLSessions


@dataclass(frozen=True)
class StoredSample:
    """One enrolled sample: its id, generator, sha256 and stored path."""

    id: int
    generator: str
    sha256: str
    path: str


def rename_generator(store: SQLSessions, old: str, new: str) -> int:
    """Rename generator ``old`` to ``new`` (its samples, vectors and thresholds stay); the samples it holds.
    UnknownGenerator when ``old`` is not enrolled, GalleryError when ``new`` is."""
    with store.writing() as session:
        generator = db.named_generator(session, old)
        if session.scalar(select(db.Generator.id).where(db.Generator.name == new)) is not None:
            raise GalleryError(f"cannot rename {old!r} to {new!r}: a generator named {new!r} is enrolled already; "
                               "remove it first (`attrib gallery remove NAME`) or pick another name")
        samples = int(session.scalar(select(func.count(db.Sample.id)).where(db.Sample.generator_id == generator.id))
                      or 0)
        generator.name = new
        session.add(db.Audit(action="rename", detail=json.dumps({"from": old, "to": new, "samples": samples})))
    return samples


def samples_by_sha256(store: SQLSessions, prefix: str, limit: int = 5) -> list[StoredSample]:
    """The samples whose sha256 starts with ``prefix`` (lower-case hex), at most ``limit``."""
    query = (select(db.Sample.id, db.Generator.name, db.Sample.sha256, db.Sample.path).join(db.Generator)
             .where(db.Sample.sha256.startswith(prefix, autoescape=True)).order_by(db.Sample.id).limit(limit))
    with store.reading() as session:
        return [StoredSample(*row) for row in session.execute(query).all()]


def samples_by_path(store: SQLSessions, paths: Sequence[str]) -> list[StoredSample]:
    """The samples stored with one of ``paths`` (as stored: the resolved path of the enrolled file)."""
    query = (select(db.Sample.id, db.Generator.name, db.Sample.sha256, db.Sample.path).join(db.Generator)
             .where(db.Sample.path.in_(list(paths))).order_by(db.Sample.id))
    with store.reading() as session:
        return [StoredSample(*row) for row in session.execute(query).all()]


def remove_sample(store: SQLSessions, sample: StoredSample) -> int:
    """Remove one sample with its vectors (of every extractor and delivery version) and its thumbnail; the
    samples its generator has left. GalleryError when it is gone, or when it is its generator's last sample
    (a generator keeps at least one: remove the generator instead)."""
    with store.writing() as session:
        row = session.get(db.Sample, sample.id)
        if row is None or row.sha256 != sample.sha256:
            raise GalleryError(f"sample {sample.sha256[:12]} of {sample.generator!r} is no longer enrolled "
                               "(another process removed it); see `attrib gallery show NAME`")
        left = int(session.scalar(select(func.count(db.Sample.id))
                                  .where(db.Sample.generator_id == row.generator_id)) or 0) - 1
        if left == 0:
            raise GalleryError(f"sample {sample.sha256[:12]} is the only sample of {sample.generator!r}; remove the "
                               f"generator with `attrib gallery remove {sample.generator}` instead")
        session.delete(row)  # its vectors go with it (ORM cascade, so the revision triggers fire); thumbnail by FK
        session.add(db.Audit(action="remove-sample", detail=json.dumps(
            {"generator": sample.generator, "sha256": sample.sha256, "path": sample.path, "samples_left": left})))
    return left
