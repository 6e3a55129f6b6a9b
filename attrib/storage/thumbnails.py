"""The thumbnails table (schema 6) through the SQL store (:class:`attrib.storage.sql.SQLStore`, a gallery
folder's or a PostgreSQL one): the reads reports need and the writes of :func:`attrib.enrollment.fill_in`.
Enrollment stores thumbnails with their samples (:func:`attrib.storage.bulk.store_chunk`)."""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Protocol, Sequence

from sqlalchemy import insert, select

from . import models as db
from .interface import SQLSessions


class Thumbnail(Protocol):
    """A thumbnail as stored (:class:`attrib.enrollment.Thumbnail`): its encoded bytes, format and size."""

    @property
    def format(self) -> str: ...
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def data(self) -> bytes: ...


def rows_for(sample_ids: Sequence[int], thumbnails: Sequence[Thumbnail | None]) -> list[dict[str, Any]]:
    """Rows of the thumbnails table for ``thumbnails`` (:class:`attrib.enrollment.Thumbnail` or None, None
    skipped), one per sample id."""
    return [{"sample_id": int(sample_id), "format": t.format, "width": int(t.width), "height": int(t.height),
             "data": t.data} for sample_id, t in zip(sample_ids, thumbnails) if t is not None]


def by_sha256(store: SQLSessions, sha256s: Iterable[str]) -> dict[str, bytes]:
    """The stored thumbnails (encoded bytes) of the samples with these sha256s; those without one are absent."""
    wanted = list(dict.fromkeys(sha256s))
    out: dict[str, bytes] = {}
    with store.reading() as session:
        for start in range(0, len(wanted), db.IN_CHUNK):
            out.update((sha256, data) for sha256, data in session.execute(
                select(db.Sample.sha256, db.ThumbnailRow.data).join(db.ThumbnailRow)
                .where(db.Sample.sha256.in_(wanted[start: start + db.IN_CHUNK]))))
    return out


def of_generator(store: SQLSessions, name: str) -> list[dict[str, Any]]:
    """The samples of generator ``name`` in enrollment order: sha256, path and thumbnail (bytes, or None);
    raises UnknownGenerator for a name not enrolled."""
    with store.reading() as session:
        generator = db.named_generator(session, name)
        rows = session.execute(
            select(db.Sample.sha256, db.Sample.path, db.ThumbnailRow.data)
            .outerjoin(db.ThumbnailRow).where(db.Sample.generator_id == generator.id).order_by(db.Sample.id)).all()
    return [{"sha256": sha256, "path": path, "thumbnail": data} for sha256, path, data in rows]


def samples_without(store: SQLSessions) -> list[tuple[int, str, str, str]]:
    """(sample id, path, sha256, generator name) of every sample without a thumbnail, by id."""
    with store.reading() as session:
        return [(row.id, row.path, row.sha256, row.name) for row in session.execute(
            select(db.Sample.id, db.Sample.path, db.Sample.sha256, db.Generator.name).join(db.Generator)
            .outerjoin(db.ThumbnailRow).where(db.ThumbnailRow.sample_id.is_(None)).order_by(db.Sample.id))]


def add(store: SQLSessions, thumbnails: Mapping[int, Thumbnail]) -> int:
    """Store ``thumbnails`` (sample id -> :class:`attrib.enrollment.Thumbnail`) in one transaction, skipping
    samples that gained one or were removed meanwhile; the caller holds the writer lock. Returns how many."""
    if not thumbnails:
        return 0
    with store.writing() as session:
        ids = list(thumbnails)
        present = set(session.scalars(select(db.Sample.id).where(db.Sample.id.in_(ids))))
        present -= set(session.scalars(select(db.ThumbnailRow.sample_id).where(db.ThumbnailRow.sample_id.in_(ids))))
        rows = rows_for([i for i in ids if i in present], [thumbnails[i] for i in ids if i in present])
        if rows:
            session.execute(insert(db.ThumbnailRow), rows)
    return len(rows)
