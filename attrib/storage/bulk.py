"""Bulk storage for chunked enrollment and bounded refits: functions taking the SQL store.

Everything here goes through SQLAlchemy Core on the store's session (:meth:`SQLStore.writing`
or :meth:`~SQLStore.reading`), so it runs on any database SQLAlchemy speaks. Reads are
bounded by what changed (vectors after an id) or by a cap (a sample of a few generators), never
a scan of the whole gallery.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, Sequence, cast

import numpy as np
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from . import models as db
from .interface import SQLSessions, ThresholdRecord, stack_rows
from .thumbnails import rows_for

if TYPE_CHECKING:
    from sqlalchemy.engine import CursorResult

    from ..extractors.contract import BoundExtractor
    from ..images import ImageRecord


class ChunkStore(SQLSessions, Protocol):
    """What :func:`store_chunk` needs of the SQL store (:class:`attrib.storage.sql.SQLStore`)."""

    def owners(self, sha256s: Sequence[str] | None = None) -> dict[str, str]:
        """The generator name every enrolled sha256 (of ``sha256s`` when given) belongs to."""

    def extractor_row(self, session: Session, extractor: BoundExtractor, create: bool,
                      allow_other_versions: bool = False) -> db.ExtractorRow | None:
        """The row for ``extractor``'s identity (created if asked)."""


@dataclass
class StoredSamples:
    """What :func:`store_chunk` stored, by position in its ``records``: added, already enrolled under the
    same generator, enrolled under another (position, owner)."""

    extractor_id: int | None
    added: list[int] = field(default_factory=list)
    duplicates: list[int] = field(default_factory=list)
    conflicts: list[tuple[int, str]] = field(default_factory=list)


def store_chunk(store: ChunkStore, generator: str, records: Sequence[ImageRecord], matrix: np.ndarray,
                extractor: BoundExtractor, family: str | None = None, note: str | None = None,
                versions: Sequence[tuple[BoundExtractor, np.ndarray]] = ()) -> StoredSamples:
    """Store one chunk of embedded images (``records``: path, sha256, format, size_bytes, width, height,
    e.g. :class:`attrib.images.ImageRecord`; paths are stored as given) with their vectors, and their
    thumbnails where the records carry one (``thumbnail``), under ``generator``, in one transaction under
    the writer lock (the caller's, when it holds one).

    ``versions`` pairs another extractor the gallery holds, or a delivery version of one
    (:mod:`attrib.delivery.versions`), with its vectors of the same records, stored in the same transaction;
    the audit entry lists the other extractors under ``extractors`` and the rungs under ``versions``.

    Who owns each sha256 is checked inside the transaction, so files stored meanwhile by another process
    (or by an earlier, interrupted run) are reported, never stored twice. Returns
    :class:`StoredSamples` (positions in ``records``).
    """
    matrix = np.asarray(matrix, dtype=np.float32)
    if len(records) != len(matrix):
        raise ValueError(f"{len(records)} records but {len(matrix)} vectors")
    with store.writing() as session:
        owners = store.owners([record.sha256 for record in records])
        stored = StoredSamples(None)
        seen: set[str] = set()
        for position, record in enumerate(records):
            owner = owners.get(record.sha256)
            if owner is None and record.sha256 not in seen:
                seen.add(record.sha256)
                stored.added.append(position)
            elif owner is None or owner == generator:
                stored.duplicates.append(position)
            else:
                stored.conflicts.append((position, owner))
        row = store.extractor_row(session, extractor, create=bool(stored.added))
        stored.extractor_id = row.id if row is not None else None
        if row is None or not stored.added:  # row is None only when there is nothing to add
            return stored
        generator_id = _generator_id(session, generator, family, note)
        sample_rows = [{"generator_id": generator_id, "sha256": records[i].sha256, "path": str(records[i].path),
                        "size_bytes": int(records[i].size_bytes), "format": records[i].format,
                        "width": int(records[i].width), "height": int(records[i].height),
                        "delivery": getattr(records[i], "delivery", None), "created_at": db.utcnow()}
                       for i in stored.added]
        returned = session.execute(insert(db.Sample).returning(db.Sample.id, sort_by_parameter_order=True),
                                   sample_rows).all()
        for version, vectors in [(extractor, matrix), *versions]:
            version_row = row if version is extractor else store.extractor_row(session, version, create=True)
            assert version_row is not None, "created when missing"
            vectors = np.asarray(vectors, dtype=np.float32)
            session.execute(insert(db.Vector), [
                {"sample_id": sample_id, "extractor_id": version_row.id, "data": vectors[position].tobytes()}
                for (sample_id,), position in zip(returned, stored.added)])
        thumbnails = rows_for([sample_id for (sample_id,) in returned],
                              [getattr(records[i], "thumbnail", None) for i in stored.added])
        if thumbnails:
            session.execute(insert(db.ThumbnailRow), thumbnails)
        others = [version.identity for version, _ in versions]
        rungs = list(dict.fromkeys(identity.delivery for identity in others if identity.delivery is not None))
        alongside = [identity.key for identity in others if identity.delivery is None]
        session.add(db.Audit(action="enroll", detail=json.dumps(
            {"generator": generator, "added": len(stored.added), "extractor": extractor.identity.key,
             **({"extractors": alongside} if alongside else {}), **({"versions": rungs} if rungs else {})})))
        return stored


def _generator_id(session: Session, name: str, family: str | None, note: str | None) -> int:
    generator = session.scalar(select(db.Generator).where(db.Generator.name == name))
    if generator is None:
        generator = db.Generator(name=name, family=family, note=note)
        session.add(generator)
    else:
        generator.family = family or generator.family
        generator.note = note or generator.note
    session.flush()
    return generator.id


def vectors_after(store: SQLSessions, extractor_id: int, after_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(vector ids, generator ids, float32 matrix) of one extractor's vectors with ids above ``after_id``,
    by id: what was stored since an index generation whose largest id is ``after_id``."""
    with store.reading() as session:
        dim = db.stored_extractor(session, extractor_id).dim
        rows = session.execute(
            select(db.Vector.id, db.Sample.generator_id, db.Vector.data)
            .join(db.Sample, db.Sample.id == db.Vector.sample_id)
            .where(db.Vector.extractor_id == extractor_id, db.Vector.id > int(after_id))
            .order_by(db.Vector.id)).all()
    return stack_rows(rows, dim)


def generator_samples(store: SQLSessions, extractor_id: int, generator_ids: Sequence[int], cap: int
                      ) -> dict[int, np.ndarray]:
    """Per generator: at most ``cap`` of its vectors for one extractor (a random choice when it has more)."""
    out = {}
    with store.reading() as session:
        dim = db.stored_extractor(session, extractor_id).dim
        for generator_id in generator_ids:
            query = (select(db.Vector.data).join(db.Sample, db.Sample.id == db.Vector.sample_id)
                     .where(db.Vector.extractor_id == extractor_id, db.Sample.generator_id == int(generator_id)))
            count = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
            if count > cap:
                query = query.order_by(func.random()).limit(cap)
            blobs = session.scalars(query).all()
            out[int(generator_id)] = (np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), dim)
                                      if blobs else np.zeros((0, dim), np.float32))
    return out


def save_generator_thresholds(store: SQLSessions, extractor_id: int, thresholds: Sequence[ThresholdRecord],
                              model: dict[str, Any] | None, target_far: float, revision: int, message: str) -> None:
    """Replace the thresholds of the generators in ``thresholds`` (:class:`attrib.scoring.calibration.Threshold`),
    keep the others, store ``model``, and record that the calibration is current at ``revision``; audited."""
    with store.writing() as session:
        touched = [t.generator_id for t in thresholds]
        session.execute(delete(db.Calibration).where(db.Calibration.extractor_id == extractor_id,
                                                     db.Calibration.generator_id.in_(touched)))
        session.execute(insert(db.Calibration), [
            {"extractor_id": extractor_id, "generator_id": t.generator_id, "threshold": t.threshold,
             "method": t.method, "target_far": target_far, "n_genuine": t.n_genuine, "n_impostor": t.n_impostor,
             "tar": t.tar, "separation": None, "revision": revision, "created_at": db.utcnow()}
            for t in thresholds])
        session.execute(update(db.Calibration).where(db.Calibration.extractor_id == extractor_id)
                        .values(revision=revision))
        if model is not None:
            session.merge(db.DecisionModelRow(extractor_id=extractor_id, params=json.dumps(model)))
        key = db.stored_extractor(session, extractor_id).key
        session.add(db.Audit(action="calibrate", detail=json.dumps(
            {"extractor": key, "extractor_id": extractor_id, "target_far": target_far, "message": message})))


def paths_starting(store: SQLSessions, generator: str, sha256s: Sequence[str], prefix: str) -> dict[str, str]:
    """{sha256: stored path} of the samples of ``generator`` among ``sha256s`` (a batch: at most a few
    hundred) whose stored path starts with ``prefix``."""
    if not sha256s:
        return {}
    with store.reading() as session:
        return dict(session.execute(
            select(db.Sample.sha256, db.Sample.path).join(db.Generator)
            .where(db.Generator.name == generator, db.Sample.sha256.in_(list(sha256s)),
                   db.Sample.path.startswith(prefix, autoescape=True))).all())


def replace_paths(store: SQLSessions, generator: str, paths: dict[str, str], prefix: str) -> list[str]:
    """Store ``paths`` ({sha256: path}) for the samples (of ``generator``) whose stored path still starts
    with ``prefix``, in one transaction (the caller holds the writer lock), audited; returns the sha256s
    changed."""
    changed = []
    with store.writing() as session:
        for sha256, path in paths.items():
            # an UPDATE gives a CursorResult (with rowcount); Session.execute is typed with the base Result
            done = cast("CursorResult[Any]", session.execute(
                update(db.Sample).where(db.Sample.sha256 == sha256, db.Sample.path.startswith(prefix, autoescape=True))
                .values(path=path)))
            if done.rowcount:
                changed.append(sha256)
        if changed:
            session.add(db.Audit(action="enroll", detail=json.dumps({"generator": generator,
                                                                     "paths_replaced": len(changed)})))
    return changed
