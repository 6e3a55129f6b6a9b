"""The writer lock: one process at a time changes a gallery.

Held around every change: storing samples or vectors, removing, calibrating, writing index
files. Writers wait for it (saying so once through ``notify``) up to a timeout, then give up with
:class:`attrib.errors.GalleryBusy`. The lock is re-entrant within one process. For a gallery
folder it is a lock file (``gallery.lock``) held with ``fcntl.flock``, which the kernel releases
when its holder dies; for a PostgreSQL gallery, an advisory lock held on a connection of its own
(:class:`attrib.storage.postgres.AdvisoryLock`), which the server releases when that connection
ends. Either way a killed writer never leaves the gallery locked.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Generic, Iterator, TypeVar

from ..errors import GalleryBusy
from .faults import faults

LOCK_NAME = "gallery.lock"
DEFAULT_TIMEOUT = 300.0  # seconds; ATTRIB_LOCK_TIMEOUT overrides
POLL = 0.05

Handle = TypeVar("Handle")  # what a lock is taken on: a file descriptor, a database connection


def lock_timeout(timeout: float | None = None) -> float:
    """``timeout``, else $ATTRIB_LOCK_TIMEOUT, else the default."""
    if timeout is not None:
        return float(timeout)
    value = os.environ.get("ATTRIB_LOCK_TIMEOUT", "")
    try:
        return float(value) if value else DEFAULT_TIMEOUT
    except ValueError:
        return DEFAULT_TIMEOUT


class WriterLock(Generic[Handle]):
    """A re-entrant writer lock that waits up to ``timeout`` seconds (saying so once through ``notify``),
    then raises GalleryBusy naming the gallery ``name``. Subclasses say how to try and release it."""

    poll = POLL

    def __init__(self, name: str, notify: Callable[[str], None] | None = None, timeout: float | None = None):
        self.name = name
        self.notify = notify or (lambda message: None)
        self.timeout = lock_timeout(timeout)
        self._guard = threading.RLock()
        self._depth = 0
        self._handle: Handle | None = None

    @contextmanager
    def held(self) -> Iterator[None]:
        """Hold the lock for the block (waiting for another writer if needed)."""
        with self._guard:
            if self._depth == 0:
                self._handle = self._acquire()
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    handle, self._handle = self._handle, None
                    if handle is not None:
                        self._release(handle)

    def _acquire(self) -> Handle:
        handle = self._open()
        deadline = time.monotonic() + self.timeout
        waiting = False
        while True:
            try:
                if self._try(handle):
                    return handle
            except BaseException:
                self._release(handle)
                raise
            if time.monotonic() >= deadline:
                self._release(handle)
                raise GalleryBusy(
                    f"gallery {self.name} is busy: another attrib process has been writing to it for over "
                    f"{self.timeout:g} s; retry when it finishes (ATTRIB_LOCK_TIMEOUT=SECONDS waits longer)"
                )
            if not waiting:
                waiting = True
                self.notify(f"gallery {self.name} is busy: another attrib process is writing to it; "
                            f"waiting up to {self.timeout:g} s")
            time.sleep(self.poll)

    def _open(self) -> Handle:
        """What the lock is taken on (a file descriptor, a database connection)."""
        raise NotImplementedError

    def _try(self, handle: Handle) -> bool:
        """Take the lock without waiting; False when another process holds it."""
        raise NotImplementedError

    def _release(self, handle: Handle) -> None:
        """Release the lock (if taken) and close ``handle``."""
        raise NotImplementedError


class GalleryLock(WriterLock[int]):
    """The writer lock of the gallery folder ``root``: ``flock`` on ``gallery.lock`` (see the module
    docstring)."""

    def __init__(self, root: Path, notify: Callable[[str], None] | None = None, timeout: float | None = None):
        self.root = Path(root)
        self.path = self.root / LOCK_NAME
        super().__init__(str(self.root), notify, timeout)

    def _open(self) -> int:
        with faults(self.root, "taking the gallery's write lock"):
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)

    def _try(self, fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def _release(self, fd: int) -> None:
        os.close(fd)  # closing the file releases the flock
