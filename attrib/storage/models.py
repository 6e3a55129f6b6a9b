"""The gallery's tables (SQLAlchemy 2.x models) and the migrations of SQLite galleries written
before Alembic (schemas 1 to 5).

Tables: generators, samples (one per file, keyed by sha256), extractors (name,
version and the options that change embeddings), vectors (one float32 blob per
sample and extractor: the durable copy that FAISS indexes are rebuilt from),
calibrations, thumbnails (schema 6), audit, ``extractors.delivery`` (schema 7: a delivery version's rung), and meta (the schema version). A new gallery is created by the Alembic
baseline (:mod:`attrib.storage.migrations`); an SQLite gallery at schema 1-4 is brought to
schema 5 by :data:`MIGRATIONS`, then stamped at that baseline (:mod:`attrib.storage.database`).

Schema 5 adds revisions: ``extractors.revision`` is bumped by triggers in the same transaction
as every insert, change or delete of one of its vectors (and when a sample changes generator,
:mod:`attrib.storage.revisions`); ``backends.revision`` and ``calibrations.revision`` record the
revision the whitening and the thresholds were fitted at (:func:`attrib.upkeep.freshness.fit_problems`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import numpy as np
from sqlalchemy import ForeignKey, LargeBinary, String, Text, UniqueConstraint, inspect, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from ..errors import UnknownGenerator
from .revisions import sqlite_triggers
from .schema import SCHEMA_VERSION  # noqa: F401 - part of this module's interface

IN_CHUNK = 500  # values per SQL IN (...) list


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
    # schema 7: the coding the file showed at enrollment ("jpeg:75", "webp:80", "lossless"; NULL: not measured)
    delivery: Mapped[str | None] = mapped_column(String(32), default=None)
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
    # schema 5: bumped by triggers with every change to this extractor's vectors (.revisions)
    revision: Mapped[int] = mapped_column(default=0, server_default="0")
    # schema 7: the delivery version ("jpeg:80") these vectors were embedded after; NULL: the files as they are
    delivery: Mapped[str | None] = mapped_column(String(32), default=None)

    @property
    def options(self) -> dict[str, Any]:
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


class ThumbnailRow(Base):
    """A small preview of one sample (schema 6, table ``thumbnails``; attrib/enrollment.py), so what was
    enrolled can be shown after the original file moved."""

    __tablename__ = "thumbnails"
    sample_id: Mapped[int] = mapped_column(ForeignKey("samples.id", ondelete="CASCADE"), primary_key=True)
    format: Mapped[str] = mapped_column(String(16))
    width: Mapped[int]
    height: Mapped[int]
    data: Mapped[bytes] = mapped_column(LargeBinary)


class Audit(Base):
    __tablename__ = "audit"
    __table_args__ = {"sqlite_autoincrement": True}
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    action: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text, default="{}")


SCHEMA_1_TABLES = ("meta", "generators", "samples", "extractors", "vectors", "calibrations", "audit")


def _create_tables(connection: Connection, *names: str) -> None:
    for name in names:
        Base.metadata.tables[name].create(connection, checkfirst=True)


def _migrate_to_1(connection: Connection) -> None:
    Base.metadata.create_all(connection, tables=[Base.metadata.tables[name] for name in SCHEMA_1_TABLES])


def _migrate_to_2(connection: Connection) -> None:
    """Add the fitted whitening per extractor (refitted on the next calibration)."""
    _create_tables(connection, WhiteningRow.__tablename__)


def _migrate_to_3(connection: Connection) -> None:
    """Add calibrations.separation (set by the next calibration; while NULL, fusion weighs extractors equally)."""
    columns = {c["name"] for c in inspect(connection).get_columns("calibrations")}
    if "separation" not in columns:
        connection.exec_driver_sql("ALTER TABLE calibrations ADD COLUMN separation FLOAT")


def _migrate_to_4(connection: Connection) -> None:
    """Add the impostor cohort and the decision model per extractor (filled by the next enroll or re-embed)."""
    _create_tables(connection, CohortRow.__tablename__, DecisionModelRow.__tablename__)


def _add_column(connection: Connection, table: str, column: str, ddl: str) -> None:
    if column not in {c["name"] for c in inspect(connection).get_columns(table)}:
        connection.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column} {ddl}")


def _migrate_to_5(connection: Connection) -> None:
    """Add revisions (see the module docstring). A whitening fitted on as many vectors as the extractor
    holds, with thresholds beside it for every generator that has vectors, is taken as current; anything
    else stays unrecorded (NULL), so the next writer, or reader that can write, refits it."""
    _add_column(connection, "extractors", "revision", "INTEGER NOT NULL DEFAULT 0")
    _add_column(connection, "backends", "revision", "INTEGER")
    _add_column(connection, "calibrations", "revision", "INTEGER")
    for trigger in sqlite_triggers():
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
MIGRATIONS: dict[int, Callable[[Connection], None]] = {
    1: _migrate_to_1, 2: _migrate_to_2, 3: _migrate_to_3, 4: _migrate_to_4, 5: _migrate_to_5}


def named_generator(session: Session, name: str) -> Generator:
    """The row of generator ``name``; raises UnknownGenerator, naming the enrolled ones, when there is none."""
    generator = session.scalar(select(Generator).where(Generator.name == name))
    if generator is None:
        known = ", ".join(session.scalars(select(Generator.name).order_by(Generator.name))) or "none"
        raise UnknownGenerator(f"generator {name!r} is not enrolled (enrolled: {known}); see `attrib gallery list`")
    return generator


def stored_extractor(session: Session, extractor_id: int) -> ExtractorRow:
    """The row of extractor ``extractor_id``; raises KeyError for an id the gallery does not hold."""
    row = session.get(ExtractorRow, extractor_id)
    if row is None:
        raise KeyError(f"no extractor with id {extractor_id}")
    return row


def schema_version(session: Session) -> int:
    value = session.scalar(select(Meta.value).where(Meta.key == "schema_version"))
    return int(value) if value else 0
