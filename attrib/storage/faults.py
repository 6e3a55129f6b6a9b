"""Storage faults as one-line errors: disk full, read-only, damaged database, busy, unreachable server.

Both storage implementations and the writer lock route what the disk and SQLite raise through
:func:`storage_error`, and the PostgreSQL store what psycopg raises through
:func:`postgresql_error`, so a fault anywhere in a write ends in one
:class:`attrib.errors.GalleryError` that names the gallery and what to do, never in a traceback.
Imports neither SQLAlchemy, psycopg nor faiss (the fast read-only path uses it too).
"""

from __future__ import annotations

import errno
import os
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

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


UNREACHABLE = ("connection refused", "no such file or directory", "could not translate host name",
               "timeout expired", "could not connect", "network is unreachable", "no route to host")
LOST = ("server closed the connection", "terminating connection", "connection is closed",
        "consuming input failed", "connection already closed", "the connection is lost")


def postgresql_error(exc: BaseException, where: str, cache: Path, doing: str = "writing",
                     secret: str | None = None) -> AttribError | None:
    """The one-line error for what opening or using the PostgreSQL gallery ``where`` (its URL, password
    masked) raised while ``doing`` something, else None. OSErrors concern this machine's index cache
    folder ``cache``; ``secret`` (the password) is never repeated from a server message."""
    if isinstance(exc, AttribError):
        return exc
    if isinstance(exc, ImportError) and "psycopg" in str(exc):
        return GalleryError(f"gallery {where} needs the PostgreSQL driver psycopg 3, which is not installed: "
                            "pip install 'attrib[postgres]' (or 'psycopg[binary]')")
    cause = getattr(exc, "orig", None) or exc
    if isinstance(cause, OSError) and not type(cause).__module__.startswith("psycopg"):
        return _os_error(cause, cache, doing)
    if not type(cause).__module__.startswith("psycopg"):
        return None
    message = " ".join(str(cause).split())
    if secret:
        message = message.replace(secret, "***")
    text = message.lower()
    state = getattr(cause, "sqlstate", None) or ""
    if "password authentication failed" in text or "no password supplied" in text or state == "28P01":
        return GalleryError(f"the PostgreSQL server of gallery {where} refused the login ({message}); check the "
                            "user and password (in the URL, $PGPASSWORD or ~/.pgpass)")
    if state == "3D000" or ("database" in text and "does not exist" in text):
        return GalleryError(f"the database of gallery {where} does not exist ({message}); create it, e.g. "
                            "`createdb -O USER DATABASE` (or CREATE DATABASE ... OWNER ... in psql), then run "
                            "the command again")
    if "role" in text and "does not exist" in text:
        return GalleryError(f"the PostgreSQL user of gallery {where} does not exist ({message}); create it, e.g. "
                            "`createuser --pwprompt USER`, or fix the user in the URL")
    if state.startswith("28"):
        return GalleryError(f"the PostgreSQL server of gallery {where} refused the login ({message}); ask its "
                            "administrator to allow this user and host (pg_hba.conf)")
    if any(phrase in text for phrase in LOST):
        return GalleryError(f"lost the connection to the PostgreSQL server of gallery {where} while {doing} "
                            f"({message}); run the command again once the server is back")
    if any(phrase in text for phrase in UNREACHABLE):
        return GalleryError(f"cannot reach the PostgreSQL server of gallery {where} ({message}); check the host "
                            "and port in the URL and that the server is running (`pg_isready -h HOST -p PORT`)")
    if state == "53100":
        return DiskFull(f"the PostgreSQL server of gallery {where} ran out of disk space while {doing}; free "
                        "space on the server, then run the command again")
    if state in ("25006", "42501"):
        return ReadOnlyGallery(f"gallery {where} cannot be written ({message}); grant the user write access to "
                               "the database, or point --gallery at one it may write")
    if state in ("40001", "40P01", "55P03") or state.startswith("23"):
        return GalleryError(f"gallery {where} was changed by another process while {doing} ({message}); "
                            "run the command again")
    if type(cause).__name__ == "OperationalError":
        return GalleryError(f"PostgreSQL error on gallery {where} while {doing}: {message}")
    return None


@contextmanager
def faults(root: Path, doing: str = "writing",
           translate: Callable[[Exception], AttribError | None] | None = None) -> Iterator[None]:
    """Re-raise storage faults in the block as one-line gallery errors (anything else passes through);
    ``translate`` words them (default: :func:`storage_error` for the gallery folder ``root``)."""
    try:
        yield
    except AttribError:
        raise
    except Exception as exc:
        error = translate(exc) if translate is not None else storage_error(exc, root, doing)
        if error is None:
            raise
        raise error from None
