"""Opening a gallery's SQL store from where it lives: a folder (SQLite) or a ``postgresql://`` URL."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from .location import database_url, is_database_url
from .sql import SQLStore


def open_store(location: str | Path, notify: Callable[[str], None] | None = None,
               lock_timeout: float | None = None) -> SQLStore:
    """The SQL store of the gallery at ``location``: :class:`~.postgres.PostgresStore` for a PostgreSQL
    URL, else :class:`~.sqlite.SQLiteStore` on the folder (created if needed). Writers wait up to
    ``lock_timeout`` seconds for each other (default: $ATTRIB_LOCK_TIMEOUT, else 300)."""
    if is_database_url(location):
        from .postgres import PostgresStore

        return PostgresStore(database_url(location), notify=notify, lock_timeout=lock_timeout)
    from .sqlite import SQLiteStore

    return SQLiteStore(location, notify=notify, lock_timeout=lock_timeout)
