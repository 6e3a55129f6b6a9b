"""The storage interface on PostgreSQL: one gallery shared by every machine that opens its URL.

:class:`PostgresStore` is the SQL store (:class:`attrib.storage.sql.SQLStore`) with the database, the
writer lock and the index files elsewhere than a gallery folder's: the tables live in the PostgreSQL database
(created and migrated by Alembic, :mod:`.database`); the writer lock is a PostgreSQL advisory lock
(:class:`AdvisoryLock`); each machine keeps its FAISS index files in a local cache folder
(:func:`attrib.storage.location.cache_folder`), rebuilt whenever they disagree with the database
(another machine enrolled), as for a gallery folder. Reads of one snapshot run in one REPEATABLE
READ transaction. Needs psycopg 3 (``pip install 'attrib[postgres]'``); faults become one line
naming the URL with its password masked (:func:`attrib.storage.faults.postgresql_error`).
"""

from __future__ import annotations

import hashlib
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Callable

from sqlalchemy import text
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.orm import sessionmaker

from . import database
from .faults import faults, postgresql_error
from .location import cache_folder, masked
from .locking import WriterLock
from .sql import SQLStore


class AdvisoryLock(WriterLock[Connection]):
    """The writer lock of a PostgreSQL gallery: a session-level advisory lock on ``key``, held on a
    connection of its own (so it outlives transactions, and the server releases it when a killed
    holder's connection ends)."""

    poll = 0.1

    def __init__(self, engine: Engine, key: int, name: str, notify: Callable[[str], None] | None = None,
                 timeout: float | None = None,
                 guard: Callable[[str], AbstractContextManager[object]] = lambda doing: nullcontext()):
        super().__init__(name, notify, timeout)
        self.engine = engine
        self.key = key
        self.guard = guard  # words the faults met while ``doing`` something

    def _open(self) -> Connection:
        with self.guard("taking the gallery's write lock"):
            return self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")

    def _try(self, connection: Connection) -> bool:
        with self.guard("taking the gallery's write lock"):
            return bool(connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}).scalar())

    def _release(self, connection: Connection) -> None:
        try:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
        except Exception:  # the connection is gone, and the lock with it: never reuse it
            connection.invalidate()
        finally:
            connection.close()


def lock_key(url: URL) -> int:
    """The advisory lock key of the gallery in database ``url`` (a signed 64-bit integer)."""
    digest = hashlib.sha256(f"attrib gallery writer lock: {url.database}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class PostgresStore(SQLStore):
    """Open (creating the tables if needed) the gallery in the PostgreSQL database ``url`` (an SQLAlchemy
    URL, :func:`attrib.storage.location.database_url`); index files go to ``cache`` (default: this
    machine's cache folder for the URL). Writers wait up to ``lock_timeout`` seconds for each other."""

    dialect = "postgresql"

    def __init__(self, url: URL, notify: Callable[[str], None] | None = None, lock_timeout: float | None = None,
                 cache: str | Path | None = None):
        self.url = url
        self.name = masked(url)
        self.root = Path(cache).expanduser() if cache is not None else cache_folder(url)
        self.notify = notify or (lambda message: None)
        self._session = None
        self._read_only = False
        with self.storage_faults("opening the gallery"):
            self.root.mkdir(parents=True, exist_ok=True)
            self.engine = database.postgresql_engine(url)
        try:
            self.lock = AdvisoryLock(self.engine, lock_key(url), self.name, lambda message: self.notify(message),
                                     lock_timeout, self.storage_faults)
            with self.storage_faults("opening the gallery"):
                database.open_postgresql(self.engine, self.name, self.lock)
        except BaseException:
            self.engine.dispose()
            raise
        self.Session = sessionmaker(self.engine, expire_on_commit=False)

    def storage_faults(self, doing: str) -> AbstractContextManager[None]:
        return faults(self.root, doing, lambda exc: postgresql_error(exc, self.name, self.root, doing,
                                                                     self.url.password))
