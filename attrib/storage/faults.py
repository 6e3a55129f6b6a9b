"""Storage faults as one-line errors: disk full, read-only, damaged database, busy.

Both storage implementations and the writer lock route what the disk and SQLite raise through
:func:`storage_error`, so a fault anywhere in a write ends in one :class:`attrib.errors.GalleryError`
that names the folder and what to do, never in a traceback. Imports neither SQLAlchemy nor
faiss (the fast read-only path uses it too).
"""

from __future__ import annotations

import errno
import os
import sqlite3
from contextlib import contextmanager
from pathlib import Path

from ..errors import (AttribError, DamagedGallery, DiskFull, GalleryBusy, GalleryError,
                      ReadOnlyGallery)

REPAIR = "attrib gallery check --repair"
NO_SPACE = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
NOT_WRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS}
LOW_SPACE = 1 << 20  # below this many free bytes, SQLite's "disk I/O error" is taken for a full disk


def database_path(root: Path) -> Path:
    return Path(root) / "gallery.db"


def damaged(root: Path, why: str) -> DamagedGallery:
    """The error for a damaged or truncated gallery database, with how to recover."""
    database = database_path(root)
    return DamagedGallery(
        f"gallery database {database} is damaged ({why}); restore it from a backup, or salvage what "
        f"SQLite can read with `sqlite3 {database} .recover`; `attrib gallery check` lists what is wrong"
    )


def storage_error(exc: BaseException, root: Path, doing: str = "writing") -> AttribError | None:
    """The one-line error for a storage fault met while ``doing`` something, else None.

    ``exc`` may be an OSError, a sqlite3 error, or an SQLAlchemy error wrapping one (``orig``).
    """
    if isinstance(exc, AttribError):
        return exc
    root = Path(root)
    cause = getattr(exc, "orig", None)
    if isinstance(exc, sqlite3.Error) or isinstance(cause, BaseException):
        integrity = isinstance(exc, sqlite3.IntegrityError) or isinstance(cause, sqlite3.IntegrityError) \
            or type(exc).__name__ == "IntegrityError"
        return _sqlite_error(str(cause if cause is not None else exc), integrity, root, doing)
    if isinstance(exc, OSError):
        return _os_error(exc, root, doing)
    return None


def _sqlite_error(message: str, integrity: bool, root: Path, doing: str) -> AttribError | None:
    text = message.lower()
    if "database is locked" in text or "database is busy" in text:
        return GalleryBusy(f"gallery {root} is busy: another attrib process is writing to it; retry when it finishes")
    if "disk is full" in text:
        return disk_full(root, doing)
    if "readonly database" in text:
        return read_only(root, "attempt to write a readonly database")
    if "file is not a database" in text or "malformed" in text:
        return damaged(root, message)
    if "disk i/o error" in text and free_bytes(root) < LOW_SPACE:
        return disk_full(root, doing)  # SQLite says no more than this when it cannot create its -shm or -wal
    if integrity:
        return GalleryError(f"gallery {root} was changed by another process while {doing} ({message}); "
                            "run the command again")
    if "unable to open database file" in text:
        return GalleryError(f"cannot open gallery database {database_path(root)}: check that the folder "
                            "exists and can be read (and written, to change it)")
    return None


def free_bytes(root: Path) -> int:
    """Bytes available to this user on the disk of ``root`` (a large number when that cannot be told)."""
    try:
        stat = os.statvfs(root)
    except OSError:
        return 1 << 62
    return stat.f_bavail * stat.f_frsize


def _os_error(exc: OSError, root: Path, doing: str) -> AttribError | None:
    if exc.errno in NO_SPACE:
        return disk_full(root, doing)
    if exc.errno in NOT_WRITABLE:
        where = f": {exc.filename}" if exc.filename else ""
        return read_only(root, f"{exc.strerror or exc}{where}")
    return None


def disk_full(root: Path, doing: str) -> DiskFull:
    return DiskFull(f"no space left on the disk of gallery {root} while {doing}; free space, then run `{REPAIR}`")


def read_only(root: Path, why: str) -> ReadOnlyGallery:
    return ReadOnlyGallery(f"gallery {root} cannot be written ({why}); check its permissions, or point "
                           "--gallery at a copy you can write")


@contextmanager
def faults(root: Path, doing: str = "writing"):
    """Re-raise storage faults in the block as one-line gallery errors (anything else passes through)."""
    try:
        yield
    except AttribError:
        raise
    except Exception as exc:
        error = storage_error(exc, root, doing)
        if error is None:
            raise
        raise error from None
