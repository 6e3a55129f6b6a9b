"""The batch loop: each answer is written, counted and shown as progress; Ctrl-C stops it between
two records, so that everything written is whole, and the summary still says what was done."""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Callable, Iterable, Iterator, TypeVar

from .records import Record, record_outcome
from .sources import path_key

Item = TypeVar("Item")
Advance = Callable[[int], None]
INTERRUPTED_EXIT = 130  # 128 + SIGINT, as shells report a command stopped by Ctrl-C
SHOWN_OUTCOMES = 8  # the most frequent outcomes named in the summary; the rest are counted together


@dataclass
class Summary:
    """What one batch did."""

    outcomes: Counter[str] = field(default_factory=Counter)  # decision (or match / no match) -> images
    failed: int = 0  # images answered with an error record
    skipped: int = 0  # paths already answered in the output (--resume)
    elapsed: float = 0.0
    interrupted: bool = False

    @property
    def images(self) -> int:
        """Images answered in this run, failures included."""
        return sum(self.outcomes.values()) + self.failed

    @property
    def rate(self) -> float:
        return self.images / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def exit_status(self) -> int:
        return INTERRUPTED_EXIT if self.interrupted else int(self.failed > 0)

    def line(self, label: str) -> str:
        """``identify: 1,200 images in 60.1 s (20.0 images/s): sdxl 700, unknown 480, ...; 20 failed``."""
        ranked = self.outcomes.most_common()
        named = [f"{name} {count:,}" for name, count in ranked[:SHOWN_OUTCOMES]]
        if len(ranked) > SHOWN_OUTCOMES:
            named.append(f"{len(ranked) - SHOWN_OUTCOMES} others {sum(c for _, c in ranked[SHOWN_OUTCOMES:]):,}")
        parts = [", ".join(named)] if named else []
        parts.append(f"{self.failed:,} failed")
        if self.skipped:
            parts.append(f"{self.skipped:,} skipped (already in the output)")
        head = (f"{label}: {'interrupted after ' if self.interrupted else ''}{self.images:,} "
                f"image{'' if self.images == 1 else 's'} in {self.elapsed:.1f} s ({self.rate:.1f} images/s)")
        return f"{head}: {'; '.join(parts)}"


class DeferredInterrupt:
    """While entered (on the main thread), SIGINT raises KeyboardInterrupt as usual, except inside
    :meth:`held`: there it is kept until the block ends, so a record is never cut in half."""

    def __init__(self) -> None:
        self._depth, self._pending = 0, False
        self._previous: Callable[[int, FrameType | None], Any] | int | None = None

    def __enter__(self) -> "DeferredInterrupt":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._depth:
            self._pending = True
        else:
            raise KeyboardInterrupt

    @contextmanager
    def held(self) -> Iterator[None]:
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        if self._pending and not self._depth:
            self._pending = False
            raise KeyboardInterrupt


def skip_done(paths: Iterable[Path], done: set[str], summary: Summary, advance: Advance = lambda n: None
              ) -> Iterator[Path]:
    """``paths`` without those whose key (:func:`.sources.path_key`) is in ``done``, counted as skipped."""
    for path in paths:
        if done and path_key(path) in done:
            summary.skipped += 1
            advance(1)
            continue
        yield path


def run_batch(items: Iterable[Item], to_record: Callable[[Item], Record], write: Callable[[Item, Record], None],
              summary: Summary | None = None, advance: Advance = lambda n: None) -> Summary:
    """For each of ``items`` (results or records): ``write(item, to_record(item))`` and count what
    the record decided, until the items end or Ctrl-C. The items' iterator is closed either way,
    so that its worker threads stop."""
    summary = summary if summary is not None else Summary()
    start = time.perf_counter()
    try:
        with DeferredInterrupt() as interrupts, _closed(iter(items)) as stream:
            for item in stream:
                record = to_record(item)
                outcome = record_outcome(record)
                with interrupts.held():  # a record written is a record counted
                    write(item, record)
                    if outcome is None:
                        summary.failed += 1
                    else:
                        summary.outcomes[outcome] += 1
                advance(1)
    except KeyboardInterrupt:
        summary.interrupted = True
    summary.elapsed = time.perf_counter() - start
    return summary


@contextmanager
def _closed(iterator: Iterator[Item]) -> Iterator[Iterator[Item]]:
    try:
        yield iterator
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()
