"""Where records go: a file that is appended to (one record per write, nothing buffered), or a
stream such as standard output.

An output file is locked while a run writes to it, so two runs never interleave their records.
Before appending, the records already there are read: a last record that an interrupted run left
cut off (kill -9, power loss) is dropped and reported, so that the file stays a sequence of whole
records and that image is answered again; with ``resume`` the paths already answered are skipped, except
those answered only with an error record, which are tried again (the file may have been fixed since) and
get a new record after the old one: a path's last record is its answer.
A file that holds something other than records of this command is refused, never overwritten.
"""

from __future__ import annotations

import csv
import io
import json
import os
import stat
from dataclasses import dataclass, field
from typing import BinaryIO, Callable, Iterator

from ..errors import AttribError
from .records import Record, RecordFormat
from .sources import path_key


class BatchOutputError(AttribError):
    """An output file cannot be written or holds something other than this command's records."""


def format_for(location: str | None, requested: str | None) -> str:
    """The record format: ``requested``, else CSV for a ``.csv`` file, else JSON lines."""
    if requested:
        return requested
    return "csv" if location and str(location).lower().endswith(".csv") else "jsonl"


class StreamWriter:
    """Records to a text stream through ``emit`` (e.g. standard output), a CSV header first."""

    def __init__(self, fmt: RecordFormat, emit: Callable[[str], None]) -> None:
        self.fmt, self._emit, self._started = fmt, emit, False

    def write(self, record: Record) -> None:
        if not self._started:
            self._started = True
            if self.fmt.header:
                self._emit(self.fmt.header)
        self._emit(self.fmt.encode(record))

    def close(self) -> None:
        pass


@dataclass
class Existing:
    """What an output file held before this run."""

    records: int = 0
    done: set[str] = field(default_factory=set)  # path keys, when read for resume
    retried: set[str] = field(default_factory=set)  # path keys answered only with an error: tried again
    header: list[str] | None = None
    torn_bytes: int = 0  # of a last record cut off, dropped before appending


class OutputFile:
    """Append records to ``location``, each flushed as it is written; see the module docstring."""

    def __init__(self, location: str | os.PathLike[str], fmt: RecordFormat, resume: bool = False,
                 notify: Callable[[str], None] = lambda message: None) -> None:
        from ..images import display_path

        self.fmt, self.label = fmt, display_path(location)
        try:
            self._fd = os.open(location, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
        except OSError as exc:
            raise BatchOutputError(f"--output {self.label}: cannot be written ({exc.strerror}); "
                                   "give a file in a folder you can write to") from None
        try:
            self.existing = self._read_back(location, resume)
            if self.existing.torn_bytes:
                os.ftruncate(self._fd, os.fstat(self._fd).st_size - self.existing.torn_bytes)
                notify(f"{self.label}: dropped a last record cut off by an interrupted run "
                       f"({self.existing.torn_bytes} bytes); its image is answered again")
            if self.existing.retried:
                count = len(self.existing.retried)
                notify(f"{self.label}: {count} path{'' if count == 1 else 's'} answered with an error before "
                       f"{'is' if count == 1 else 'are'} tried again")
            if fmt.header and self.existing.header is None:
                self._write(fmt.header)
        except BaseException:
            os.close(self._fd)
            raise

    def _read_back(self, location: str | os.PathLike[str], resume: bool) -> Existing:
        if not stat.S_ISREG(os.fstat(self._fd).st_mode):  # e.g. /dev/stdout: nothing to read back or lock
            if resume:
                raise BatchOutputError(f"--output {self.label}: --resume needs a regular file to read back")
            return Existing()
        self._lock()
        with open(location, "rb") as f:
            return read_existing(f, self.fmt, self.label, resume)

    @property
    def done(self) -> set[str]:
        return self.existing.done

    def _lock(self) -> None:
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock
            return
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BatchOutputError(f"--output {self.label}: another attrib run is writing to it; wait for it to "
                                   "finish or give another file") from None

    def write(self, record: Record) -> None:
        self._write(self.fmt.encode(record))

    def _write(self, text: str) -> None:
        data = memoryview(text.encode("utf-8", "backslashreplace"))
        while data:
            data = data[os.write(self._fd, data):]

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def read_existing(f: BinaryIO, fmt: RecordFormat, label: str, resume: bool) -> Existing:
    """The records in an output file opened for reading; raises BatchOutputError when it holds
    something else. Paths are parsed only for ``resume``."""
    existing = Existing()
    records = _split_records(f, quoted=fmt.name == "csv")
    line = 1
    for raw in records:
        if fmt.name == "csv" and existing.header is None:
            existing.header = _csv_cells(raw)
            if raw.startswith(b"{"):
                raise BatchOutputError(f"--output {label}: holds JSON lines, not CSV; drop --format csv or give "
                                       "another file")
            if tuple(existing.header) != fmt.columns:
                raise BatchOutputError(
                    f"--output {label}: its CSV header ({','.join(existing.header)[:200]}) is not this command's "
                    f"({','.join(fmt.columns)}); give another file")
        elif resume or existing.records == 0:
            key, failed = _record_path(raw, fmt, label, line)
            (existing.retried if failed else existing.done).add(key)
            existing.records += 1
        else:
            existing.records += 1
        line += raw.count(b"\n")
    existing.torn_bytes = records.torn
    existing.retried -= existing.done
    if not resume:
        existing.done.clear()
        existing.retried.clear()
    return existing


class _split_records:
    """Whole records of a file, as bytes; ``torn`` is the length of a cut-off last one (a CSV
    record ends at a newline outside quotes; a JSON line at its newline)."""

    def __init__(self, f: BinaryIO, quoted: bool) -> None:
        self._f, self._quoted, self.torn = f, quoted, 0

    def __iter__(self) -> Iterator[bytes]:
        pending, odd = b"", False
        for line in self._f:
            pending += line
            if self._quoted:
                odd ^= bool(line.count(b'"') & 1)
            if line.endswith(b"\n") and not odd:
                yield pending
                pending = b""
        self.torn = len(pending)


def _csv_cells(raw: bytes) -> list[str]:
    return next(csv.reader(io.StringIO(raw.decode("utf-8", "replace"), newline="")), [])


def _record_path(raw: bytes, fmt: RecordFormat, label: str, line: int) -> tuple[str, bool]:
    """The path a record answered and whether it is an error record; BatchOutputError naming the line when it is
    not a record."""
    if fmt.name == "csv":
        cells = _csv_cells(raw)
        if len(cells) == len(fmt.columns) and cells[0]:
            error = fmt.columns.index("error") if "error" in fmt.columns else None
            return path_key(cells[0]), error is not None and bool(cells[error])
        problem = f"has {len(cells)} cells, not {len(fmt.columns)}"
    else:
        try:
            record = json.loads(raw)
        except ValueError:
            record = None
        if isinstance(record, dict) and isinstance(record.get("path"), str):
            return path_key(record["path"]), record.get("error") is not None
        problem = "is not a JSON record with a path (if the file is CSV, give --format csv)"
    raise BatchOutputError(f"--output {label}: line {line} {problem}; fix or remove that line, or give another "
                           "file")
