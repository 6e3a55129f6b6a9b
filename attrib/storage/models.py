"""The gallery's tables (SQLAlchemy 2.x models) and their migrations.

Tables: generators, samples (one per file, keyed by sha256), extractors (name,
version and the options that change embeddings), vectors (one float32 blob per
sample and extractor: the durable copy that FAISS indexes are rebuilt from),
calibrations, audit, and meta (the schema version). Migrations are applied
on open, in one transaction, under the gallery's writer lock.

Schema 5 adds revisions: ``extractors.revision`` is bumped by triggers in the same transaction
as every insert, change or delete of one of its vectors (and when a sample changes generator);
``backends.revision`` and ``calibrations.revision`` record the revision the whitening and the
thresholds were fitted at (:func:`attrib.storage.base.fit_problems`).
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import nullcontext
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from sqlalchemy import (
    ForeignKey,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from ..errors import DamagedGallery, GalleryError, ReadOnlyGallery
from .fast_reader import cannot_open_here, database_uri
from .faults import storage_error
from .schema import SCHEMA_VERSION


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class Meta(Base):
    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Generator(Base):
    __tablename__ = "generators"
    __table_args__ = {"sqlite_autoincrement": True}
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    family: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    samples: Mapped[list[Sample]] = relationship(back_populates="generator", cascade="all, delete-orphan")


class Sample(Base):
    __tablename__ = "samples"
    __table_args__ = {"sqlite_autoincrement": True}
    id: Mapped[int] = mapped_column(primary_key=True)
    generator_id: Mapped[int] = mapped_column(ForeignKey("generators.id", ondelete="CASCADE"), index=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    path: Mapped[str] = mapped_column(Text)
    size_bytes: Mapped[int]
    format: Mapped[str] = mapped_column(String(32))
    width: Mapped[int]
    height: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    generator: Mapped[Generator] = relationship(back_populates="samples")
    vectors: Mapped[list[Vector]] = relationship(back_populates="sample", cascade="all, delete-orphan")


class ExtractorRow(Base):
    __tablename__ = "extractors"
    __table_args__ = {"sqlite_autoincrement": True}
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    version: Mapped[str] = mapped_column(String(64))
    options_json: Mapped[str] = mapped_column(Text, default="{}")
    dim: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # schema 5: bumped by triggers with every change to this extractor's vectors (REVISION_TRIGGERS)
    revision: Mapped[int] = mapped_column(default=0, server_default="0")

    @property
    def options(self) -> dict:
        return json.loads(self.options_json or "{}")


class Vector(Base):
    __tablename__ = "vectors"
    __table_args__ = (UniqueConstraint("sample_id", "extractor_id"), {"sqlite_autoincrement": True})
    id: Mapped[int] = mapped_column(primary_key=True)
    sample_id: Mapped[int] = mapped_column(ForeignKey("samples.id", ondelete="CASCADE"), index=True)
    extractor_id: Mapped[int] = mapped_column(ForeignKey("extractors.id", ondelete="CASCADE"), index=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    sample: Mapped[Sample] = relationship(back_populates="vectors")

    def array(self) -> np.ndarray:
        return np.frombuffer(self.data, dtype=np.float32)


class Calibration(Base):
    __tablename__ = "calibrations"
    __table_args__ = {"sqlite_autoincrement": True}
    id: Mapped[int] = mapped_column(primary_key=True)
    extractor_id: Mapped[int] = mapped_column(ForeignKey("extractors.id", ondelete="CASCADE"), index=True)
    # NULL generator = the global (open-set) threshold
    generator_id: Mapped[int | None] = mapped_column(ForeignKey("generators.id", ondelete="CASCADE"))
    threshold: Mapped[float]
    method: Mapped[str] = mapped_column(String(64))
    target_far: Mapped[float]
    n_genuine: Mapped[int] = mapped_column(default=0)
    n_impostor: Mapped[int] = mapped_column(default=0)
    tar: Mapped[float | None]
    # schema 3: how far held-out genuine scores sit from impostor ones (d'), on the global row; fusion weight
    separation: Mapped[float | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # schema 5: the extractor revision the thresholds were fitted at (NULL: unknown, refitted)
    revision: Mapped[int | None] = mapped_column(default=None)


class WhiteningRow(Base):
    """The whitening fitted on an extractor's vectors (schema 2+, table ``backends``); attrib/scoring/whitening.py."""

    __tablename__ = "backends"
    extractor_id: Mapped[int] = mapped_column(ForeignKey("extractors.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    params: Mapped[bytes] = mapped_column(LargeBinary)
    n_fitted: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # schema 5: the extractor revision the whitening was fitted at (NULL: unknown, refitted)
    revision: Mapped[int | None] = mapped_column(default=None)


class CohortRow(Base):
    """The impostor cohort embedded by one extractor (schema 4); see attrib/synthetic/cohort.py."""

    __tablename__ = "cohorts"
    extractor_id: Mapped[int] = mapped_column(ForeignKey("extractors.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[str] = mapped_column(String(32))
    count: Mapped[int]
    data: Mapped[bytes] = mapped_column(LargeBinary)  # float32 [count, dim]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DecisionModelRow(Base):
    """The open-set decision model of one extractor's calibration (schema 4); see attrib/scoring/open_set.py."""

    __tablename__ = "decision_models"
    extractor_id: Mapped[int] = mapped_column(ForeignKey("extractors.id", ondelete="CASCADE"), primary_key=True)
    params: Mapped[str] = mapped_column(Text)  # JSON
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Audit(Base):
    __tablename__ = "audit"
    __table_args__ = {"sqlite_autoincrement": True}
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    action: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text, default="{}")


SCHEMA_1_TABLES = ("meta", "generators", "samples", "extractors", "vectors", "calibrations", "audit")


def _migrate_to_1(connection) -> None:
    Base.metadata.create_all(connection, tables=[Base.metadata.tables[name] for name in SCHEMA_1_TABLES])


def _migrate_to_2(connection) -> None:
    """Add the fitted whitening per extractor (refitted on the next calibration)."""
    WhiteningRow.__table__.create(connection, checkfirst=True)


def _migrate_to_3(connection) -> None:
    """Add calibrations.separation (set by the next calibration; while NULL, fusion weighs extractors equally)."""
    columns = {c["name"] for c in inspect(connection).get_columns("calibrations")}
    if "separation" not in columns:
        connection.exec_driver_sql("ALTER TABLE calibrations ADD COLUMN separation FLOAT")


def _migrate_to_4(connection) -> None:
    """Add the impostor cohort and the decision model per extractor (filled by the next enroll or re-embed)."""
    CohortRow.__table__.create(connection, checkfirst=True)
    DecisionModelRow.__table__.create(connection, checkfirst=True)


REVISION_TRIGGERS = (
    """CREATE TRIGGER IF NOT EXISTS vectors_added AFTER INSERT ON vectors BEGIN
         UPDATE extractors SET revision = revision + 1 WHERE id = NEW.extractor_id; END""",
    """CREATE TRIGGER IF NOT EXISTS vectors_removed AFTER DELETE ON vectors BEGIN
         UPDATE extractors SET revision = revision + 1 WHERE id = OLD.extractor_id; END""",
    """CREATE TRIGGER IF NOT EXISTS vectors_changed AFTER UPDATE OF data, sample_id, extractor_id ON vectors BEGIN
         UPDATE extractors SET revision = revision + 1 WHERE id IN (OLD.extractor_id, NEW.extractor_id); END""",
    """CREATE TRIGGER IF NOT EXISTS samples_relabelled AFTER UPDATE OF generator_id ON samples BEGIN
         UPDATE extractors SET revision = revision + 1
         WHERE id IN (SELECT extractor_id FROM vectors WHERE sample_id = NEW.id); END""",
)


def _add_column(connection, table: str, column: str, ddl: str) -> None:
    if column not in {c["name"] for c in inspect(connection).get_columns(table)}:
        connection.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column} {ddl}")


def _migrate_to_5(connection) -> None:
    """Add revisions (see the module docstring). A whitening fitted on as many vectors as the extractor
    holds, with thresholds beside it for every generator that has vectors, is taken as current; anything
    else stays unrecorded (NULL), so the next writer, or reader that can write, refits it."""
    _add_column(connection, "extractors", "revision", "INTEGER NOT NULL DEFAULT 0")
    _add_column(connection, "backends", "revision", "INTEGER")
    _add_column(connection, "calibrations", "revision", "INTEGER")
    for trigger in REVISION_TRIGGERS:
        connection.exec_driver_sql(trigger)
    connection.execute(text(
        "UPDATE backends SET revision = 0 WHERE revision IS NULL AND n_fitted = "
        "(SELECT count(*) FROM vectors v WHERE v.extractor_id = backends.extractor_id)"))
    connection.execute(text(
        "UPDATE calibrations SET revision = 0 WHERE revision IS NULL AND extractor_id IN "
        "(SELECT extractor_id FROM backends WHERE revision = 0) AND NOT EXISTS ("
        "SELECT 1 FROM vectors v JOIN samples s ON s.id = v.sample_id "
        "WHERE v.extractor_id = calibrations.extractor_id AND s.generator_id NOT IN ("
        "SELECT c.generator_id FROM calibrations c "
        "WHERE c.extractor_id = v.extractor_id AND c.generator_id IS NOT NULL))"))


# version reached -> function applied to a connection at the previous version
MIGRATIONS = {1: _migrate_to_1, 2: _migrate_to_2, 3: _migrate_to_3, 4: _migrate_to_4, 5: _migrate_to_5}


def _configure_connection(dbapi_connection, _record) -> None:
    """Foreign keys on, the WAL journal, and transactions begun by SQLAlchemy's own BEGIN (``_begin``), so
    reads see one snapshot and migrations (DDL) are transactional (SQLAlchemy's pysqlite recipe)."""
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
    except sqlite3.OperationalError as exc:  # a database that cannot be written is still read
        if "readonly" not in str(exc):
            raise
    finally:
        cursor.close()


def _begin(connection) -> None:
    connection.exec_driver_sql("BEGIN")


def connect(path: Path, immutable: bool = False):
    """An engine on the SQLite file ``path`` (any characters in the path), not yet connected;
    ``immutable``: read-only, for a database in a folder that cannot be written (see fast_reader)."""
    url = URL.create(drivername="sqlite", database=str(path))
    if immutable:
        url = URL.create(drivername="sqlite", database=database_uri(path.parent),
                         query={"mode": "ro", "immutable": "1", "uri": "true"})
    engine = create_engine(url, connect_args={"timeout": 30})
    event.listen(engine, "connect", _configure_connection)
    event.listen(engine, "begin", _begin)
    return engine


def open_database(path: Path, lock=None):
    """Create or open the SQLite file, apply pending migrations (holding ``lock``, the gallery's writer
    lock, while migrating), return the engine. Refuses to start a new gallery where index files of an
    existing one lie beside a missing, empty or table-less database."""
    if not path.exists():
        refuse_new_over_old(path, "missing")
    elif path.stat().st_size == 0:
        refuse_new_over_old(path, "empty (0 bytes)")
    engine = connect(path)
    try:
        try:
            with engine.connect() as connection:
                current = _version(connection, path)
        except OperationalError as exc:
            if not cannot_open_here(exc, path.parent):
                raise
            engine.dispose()
            engine = connect(path, immutable=True)
            with engine.connect() as connection:
                current = _version(connection, path)
        if current != SCHEMA_VERSION:
            try:
                with lock.held() if lock is not None else nullcontext():
                    _migrate(engine, path)
            except ReadOnlyGallery as exc:
                if not current:
                    raise
                raise ReadOnlyGallery(f"gallery {path.parent} was written by an earlier attrib (schema {current}) "
                                      f"and is migrated to schema {SCHEMA_VERSION} once, which needs write access: "
                                      f"{exc}") from None
    except GalleryError:
        engine.dispose()
        raise
    except Exception as exc:
        engine.dispose()
        error = storage_error(exc, path.parent, "opening the gallery")
        if error is not None:
            raise error from None
        raise GalleryError(f"cannot open gallery database {path}: {exc}") from exc
    return engine


def refuse_new_over_old(path: Path, state: str) -> None:
    """Raise when the database is in ``state`` (missing, empty) and the folder holds index files, which
    only an existing gallery writes."""
    index = path.parent / "index"
    leftovers = list(index.iterdir()) if index.is_dir() else []
    if leftovers:
        raise DamagedGallery(
            f"gallery database {path} is {state} but {index} holds {len(leftovers)} files of an existing "
            "gallery; refusing to start a new gallery over them: restore gallery.db from a backup, or move "
            "the folder away to start afresh"
        )


def _version(connection, path: Path) -> int:
    """The schema version (0 for a new database); raises for a newer or a foreign database."""
    tables = set(inspect(connection).get_table_names())
    if "meta" in tables:
        row = connection.execute(select(Meta.value).where(Meta.key == "schema_version")).first()
        current = int(row[0]) if row else 0
    elif tables:
        raise GalleryError(f"{path} is an SQLite file but not an attrib gallery; point --gallery at another folder")
    else:
        current = 0
    if current > SCHEMA_VERSION:
        raise GalleryError(
            f"gallery {path} has schema version {current}, newer than this attrib supports "
            f"({SCHEMA_VERSION}); upgrade attrib"
        )
    return current


def _migrate(engine, path: Path) -> None:
    """Apply every pending migration in one transaction (the version is read again inside it)."""
    with engine.begin() as connection:
        current = _version(connection, path)
        if current == 0:
            refuse_new_over_old(path, "without gallery tables")
        for version in range(current + 1, SCHEMA_VERSION + 1):
            MIGRATIONS[version](connection)
            with Session(bind=connection) as session:
                session.merge(Meta(key="schema_version", value=str(version)))
                session.flush()


def schema_version(session: Session) -> int:
    value = session.scalar(select(Meta.value).where(Meta.key == "schema_version"))
    return int(value) if value else 0
