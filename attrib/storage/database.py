"""Opening a gallery's database, SQLite or PostgreSQL: engines, the schema check and migrations.

Every database records its schema version in ``meta`` and its Alembic revision in
``alembic_version``. Opening one at the current version and head revision reads those two
values and nothing else (Alembic is not even imported). Otherwise the gallery's writer lock is
taken and, in one transaction: a new database gets the Alembic baseline (schema 5); an SQLite
gallery written before Alembic (schema 1-4) is brought to schema 5 by :data:`models.MIGRATIONS`
and stamped at the baseline; then Alembic applies every later revision (schema 6: thumbnails). A database of a newer
attrib is refused in one line.
"""

from __future__ import annotations

import sqlite3
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, inspect, select, text
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from ..errors import DamagedGallery, GalleryError, ReadOnlyGallery
from . import models as db
from .fast_reader import cannot_open_here, database_uri
from .faults import storage_error
from .locking import WriterLock
from .schema import HEAD_REVISION, SCHEMA_VERSION


def _configure_sqlite(dbapi_connection: sqlite3.Connection, _record: object) -> None:
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


def _begin(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN")


def sqlite_engine(path: Path, immutable: bool = False) -> Engine:
    """An engine on the SQLite file ``path`` (any characters in the path), not yet connected;
    ``immutable``: read-only, for a database in a folder that cannot be written (see fast_reader)."""
    url = URL.create(drivername="sqlite", database=str(path))
    if immutable:
        url = URL.create(drivername="sqlite", database=database_uri(path.parent),
                         query={"mode": "ro", "immutable": "1", "uri": "true"})
    engine = create_engine(url, connect_args={"timeout": 30})
    event.listen(engine, "connect", _configure_sqlite)
    event.listen(engine, "begin", _begin)
    return engine


def postgresql_engine(url: URL) -> Engine:
    """An engine on the PostgreSQL database ``url`` (psycopg 3), not yet connected. Every transaction is
    REPEATABLE READ, so the reads of one snapshot see one state of the database; writers never conflict,
    since they hold the gallery's writer lock before their transaction begins."""
    return create_engine(url, isolation_level="REPEATABLE READ", pool_pre_ping=True,
                         connect_args={"connect_timeout": 10, "application_name": "attrib"})


def open_database(path: Path, lock: WriterLock[Any] | None = None) -> Engine:
    """Create or open the SQLite file, apply pending migrations (holding ``lock``, the gallery's writer
    lock, while migrating), return the engine. Refuses to start a new gallery where index files of an
    existing one lie beside a missing, empty or table-less database."""
    if not path.exists():
        refuse_new_over_old(path, "missing")
    elif path.stat().st_size == 0:
        refuse_new_over_old(path, "empty (0 bytes)")
    engine = sqlite_engine(path)
    try:
        try:
            with engine.connect() as connection:
                state = _state(connection, str(path))
        except OperationalError as exc:
            if not cannot_open_here(exc, path.parent):
                raise
            engine.dispose()
            engine = sqlite_engine(path, immutable=True)
            with engine.connect() as connection:
                state = _state(connection, str(path))
        bring_forward(engine, state, lock, str(path.parent), path)
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


def open_postgresql(engine: Engine, where: str, lock: WriterLock[Any]) -> None:
    """Check the schema of the PostgreSQL gallery ``where`` (its URL, password masked) and migrate it
    under ``lock`` when needed (raises what the driver raises; the caller words it)."""
    with engine.connect() as connection:
        state = _state(connection, where)
    bring_forward(engine, state, lock, where)


def bring_forward(engine: Engine, state: tuple[int, str | None], lock: WriterLock[Any] | None, where: str,
                  path: Path | None = None) -> None:
    """Migrate the database ``where`` found at ``state`` (schema version, Alembic revision) under ``lock``
    unless it is current. A gallery at the current schema that only lacks the Alembic stamp stays usable
    where it cannot be written (the next writer stamps it)."""
    current, revision = state
    if current == SCHEMA_VERSION and revision == HEAD_REVISION:
        return
    try:
        with lock.held() if lock is not None else nullcontext():
            _migrate(engine, where, path)
    except ReadOnlyGallery as exc:
        if current == SCHEMA_VERSION and revision is None:
            return
        if not current:
            raise
        raise ReadOnlyGallery(f"gallery {where} was written by an earlier attrib (schema {current}) "
                              f"and is migrated to schema {SCHEMA_VERSION} once, which needs write access: "
                              f"{exc}") from None


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


def _state(connection: Connection, where: str) -> tuple[int, str | None]:
    """(schema version, Alembic revision) of the database ``where``: (0, None) for a new one; raises for
    a newer or a foreign database."""
    tables = set(inspect(connection).get_table_names())
    revision = None
    if "alembic_version" in tables:
        revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    if "meta" in tables:
        row = connection.execute(select(db.Meta.value).where(db.Meta.key == "schema_version")).first()
        current = int(row[0]) if row else 0
    elif tables:
        if connection.dialect.name == "sqlite":
            raise GalleryError(f"{where} is an SQLite file but not an attrib gallery; point --gallery at another "
                               "folder")
        raise GalleryError(f"database {where} holds tables but not an attrib gallery; point --gallery at an empty "
                           "database (attrib creates its tables there) or at an attrib gallery")
    else:
        current = 0
    if current > SCHEMA_VERSION:
        raise GalleryError(
            f"gallery {where} has schema version {current}, newer than this attrib supports "
            f"({SCHEMA_VERSION}); upgrade attrib"
        )
    return current, revision


def _migrate(engine: Engine, where: str, path: Path | None) -> None:
    """Bring the database to the head revision in one transaction (the state is read again inside it)."""
    with engine.begin() as connection:
        current, revision = _state(connection, where)
        if current == SCHEMA_VERSION and revision == HEAD_REVISION:
            return
        if current == 0 and path is not None:
            refuse_new_over_old(path, "without gallery tables")
        for version in range(current + 1, max(db.MIGRATIONS) + 1) if current else ():
            db.MIGRATIONS[version](connection)
            _set_version(connection, version)
        from .migrations import upgrade

        upgrade(connection, where, stamp=current if current and revision is None else None)
        _set_version(connection, SCHEMA_VERSION)


def _set_version(connection: Connection, version: int) -> None:
    """Record schema ``version`` in ``meta`` (the revisions do it too; this keeps a database whose row
    lagged its Alembic revision in step)."""
    with Session(bind=connection) as session:
        session.merge(db.Meta(key="schema_version", value=str(version)))
        session.flush()
