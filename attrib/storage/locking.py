"""The writer lock: one process at a time changes a gallery.

A lock file (``gallery.lock`` in the gallery folder) held with ``fcntl.flock`` around every
change: storing samples or vectors, removing, calibrating, writing index files. Writers wait
for it (saying so once through ``notify``) up to a timeout, then give up with
:class:`attrib.errors.GalleryBusy`. The lock is re-entrant within one process, and the kernel
releases it when its holder dies, so a killed writer never leaves the gallery locked.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from ..errors import GalleryBusy
from .faults import faults

LOCK_NAME = "gallery.lock"
DEFAULT_TIMEOUT = 300.0  # seconds; ATTRIB_LOCK_TIMEOUT overrides
POLL = 0.05


def lock_timeout(timeout: float | None = None) -> float:
    """``timeout``, else $ATTRIB_LOCK_TIMEOUT, else the default."""
    if timeout is not None:
        return float(timeout)
    value = os.environ.get("ATTRIB_LOCK_TIMEOUT", "")
    try:
        return float(value) if value else DEFAULT_TIMEOUT
    except ValueError:
        return DEFAULT_TIMEOUT


class GalleryLock:
    """The writer lock of the gallery folder ``root`` (re-entrant; see the module docstring)."""

    def __init__(self, root: Path, notify: Callable[[str], None] | None = None, timeout: float | None = None):
        self.root = Path(root)
        self.path = self.root / LOCK_NAME
        self.notify = notify or (lambda message: None)
        self.timeout = lock_timeout(timeout)
        self._guard = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    @property
    def held_here(self) -> bool:
        return self._depth > 0

    @contextmanager
    def held(self):
        """Hold the lock for the block (waiting for another writer if needed)."""
        with self._guard:
            if self._depth == 0:
                self._fd = self._acquire()
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    fd, self._fd = self._fd, None
                    os.close(fd)  # closing the file releases the flock

    def _acquire(self) -> int:
        with faults(self.root, "taking the gallery's write lock"):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        deadline = time.monotonic() + self.timeout
        waiting = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                pass
            if time.monotonic() >= deadline:
                os.close(fd)
                raise GalleryBusy(
                    f"gallery {self.root} is busy: another attrib process has been writing to it for over "
                    f"{self.timeout:g} s; retry when it finishes (ATTRIB_LOCK_TIMEOUT=SECONDS waits longer)"
                )
            if not waiting:
                waiting = True
                self.notify(f"gallery {self.root} is busy: another attrib process is writing to it; "
                            f"waiting up to {self.timeout:g} s")
            time.sleep(POLL)
