"""A gallery folder: the SQL store (:class:`attrib.storage.sql.SQLStore`) on SQLite.

The folder holds ``gallery.db`` (the durable truth: generators, samples, vectors, fitted whitening,
thresholds, audit), ``index/`` (FAISS files, a cache rebuilt from the database whenever they
disagree, :mod:`attrib.index.files`) and ``gallery.lock`` (the writer lock, a lock file,
:class:`attrib.storage.locking.GalleryLock`). See gallery/README.md for the format.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Callable

from sqlalchemy.orm import Session, sessionmaker

from ..errors import GalleryError
from . import database
from .faults import faults
from .locking import GalleryLock
from .sql import SQLStore


class SQLiteStore(SQLStore):
    """Open (creating if needed) the gallery folder ``root``; writers wait up to ``lock_timeout`` seconds
    for each other (default: $ATTRIB_LOCK_TIMEOUT, else 300)."""

    def __init__(self, root: str | Path, notify: Callable[[str], None] | None = None,
                 lock_timeout: float | None = None):
        self.root = Path(root).expanduser()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise GalleryError(f"gallery path {self.root} is not a folder") from None
        except OSError as exc:
            raise GalleryError(f"cannot create gallery folder {self.root}: {exc.strerror or exc}") from None
        if not self.root.is_dir():
            raise GalleryError(f"gallery path {self.root} is not a folder")
        self.name = str(self.root)  # how messages name the gallery
        self.notify = notify or (lambda message: None)
        self.lock = GalleryLock(self.root, lambda message: self.notify(message), lock_timeout)
        self._session: Session | None = None  # the open transaction (or snapshot) every method then uses
        self._read_only = False
        self.engine = database.open_database(self.root / "gallery.db", self.lock)
        self.Session = sessionmaker(self.engine, expire_on_commit=False)

    dialect = "sqlite"

    def storage_faults(self, doing: str) -> AbstractContextManager[None]:
        """A context that turns storage faults met while ``doing`` something into one-line errors."""
        return faults(self.root, doing)
