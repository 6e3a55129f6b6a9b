"""Concurrent requests of one worker answered together: one gallery open per batch, and each request
answered exactly as it would be alone.

Each identify or verify request hands its images to the worker's :class:`Batcher` and waits for its
own results. One thread takes everything waiting whenever it is free, so a request never waits for
others to arrive (a lone request on an idle server runs at once), while requests that arrive during
a batch are answered together by the next one. A batch is grouped by what its requests ask (``key``:
the operation and its options), each group runs as one call that gets each request's images apart
(so that the call can answer each as it would alone: the same images in the same chunks give the same
floats, where a chunk of another shape would sum them in another order), and each request gets its own
results, in its own order. An error that stops a call (an empty gallery, an unknown generator) goes to
every request of that group, and the batcher goes on with the next.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

DEFAULT_MAX_IMAGES = 32
Key = TypeVar("Key", bound=Hashable)
Item = TypeVar("Item")  # an image as the run takes it: a path, or one decoded already


@dataclass
class Job(Generic[Key, Item]):
    """One request's images and what it asks for; ``answer`` gets its results (or the error)."""

    key: Key
    paths: list[Item]
    answer: Future[list[Any]] = field(default_factory=Future)


Run = Callable[[Key, list[list[Item]]], Sequence[Sequence[Any]]]


class Batcher(Generic[Key, Item]):
    """Runs ``run(key, requests) -> results`` for the requests waiting that ask the same ``key``:
    ``requests`` holds each request's images, in order, and ``results`` each request's results (one per
    image, in order); at most ``max_images`` images a batch (a request is never split, so a larger one
    runs alone)."""

    def __init__(self, run: Run[Key, Item], max_images: int = DEFAULT_MAX_IMAGES):
        if max_images < 1:
            raise ValueError(f"max_images must be at least 1, got {max_images}")
        self._run = run
        self.max_images = max_images
        self._waiting: deque[Job[Key, Item]] = deque()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.batches = 0  # how many calls have run

    def submit(self, key: Key, paths: Sequence[Item]) -> list[Any]:
        """The results for ``paths`` (blocks until they are ready); raises what the call raised."""
        job = Job(key, list(paths))
        with self._changed:
            if self._closed:
                raise RuntimeError("the server is shutting down")
            self._waiting.append(job)
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name="attrib-batcher", daemon=True)
                self._thread.start()
            self._changed.notify()
        return job.answer.result()

    def close(self) -> None:
        """Answer what is waiting, then stop the thread."""
        with self._changed:
            self._closed = True
            self._changed.notify()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _take(self) -> list[Job[Key, Item]]:
        """The jobs of the next batch, waiting for one when none is; [] once closed and drained."""
        with self._changed:
            while not self._waiting and not self._closed:
                self._changed.wait()
            jobs: list[Job[Key, Item]] = []
            images = 0
            while self._waiting and (not jobs or images + len(self._waiting[0].paths) <= self.max_images):
                job = self._waiting.popleft()
                jobs.append(job)
                images += len(job.paths)
            return jobs

    def _serve(self) -> None:
        while jobs := self._take():
            groups: dict[Key, list[Job[Key, Item]]] = {}
            for job in jobs:
                groups.setdefault(job.key, []).append(job)
            for key, group in groups.items():
                self._answer(key, group)

    def _answer(self, key: Key, group: list[Job[Key, Item]]) -> None:
        self.batches += 1
        try:
            results = [list(answers) for answers in self._run(key, [job.paths for job in group])]
            if [len(answers) for answers in results] != [len(job.paths) for job in group]:
                raise RuntimeError(f"the batch answered {[len(a) for a in results]} results for requests of "
                                   f"{[len(job.paths) for job in group]} images")
        except Exception as exc:  # noqa: BLE001 - handed to each waiting request, which raises it
            for job in group:
                job.answer.set_exception(exc)
            return
        for job, answers in zip(group, results):
            job.answer.set_result(answers)
