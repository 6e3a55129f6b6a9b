"""Concurrent identify and verify requests answered together (attrib.serve.batching): each request
gets its own results, in order, whatever it was batched with."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from attrib.gallery import Gallery
from attrib.serve.batching import Batcher
from attrib.serve.limits import PixelAllowance

from comparisons import assert_same_answers
from gallery_helpers import bound
from test_serve import as_uploaded, client, served, upload  # noqa: F401 - served is the gallery fixture


class GatedRun:
    """A run function whose first call waits for ``release``, so that later requests pile up; it
    records the (key, requests) of every call and answers each path of each request with (key, path)."""

    def __init__(self, fail_on: str | None = None):
        self.calls: list[tuple] = []
        self.started = threading.Event()
        self.release = threading.Event()
        self.fail_on = fail_on

    def __call__(self, key, requests):
        self.calls.append((key, [list(paths) for paths in requests]))
        if len(self.calls) == 1:
            self.started.set()
            assert self.release.wait(10)
        if key == self.fail_on:
            raise LookupError(f"no such thing as {key}")
        return [[(key, path) for path in paths] for paths in requests]


def paths(prefix: str, count: int) -> list[Path]:
    return [Path(f"{prefix}-{i}.png") for i in range(count)]


def submit_while_blocked(batcher: Batcher, run: GatedRun, requests: list[tuple]) -> list:
    """Start one request that blocks the batcher, queue ``requests`` behind it, release, and return
    every request's outcome (results, or the exception), the blocking one first."""
    with ThreadPoolExecutor(len(requests) + 1) as pool:
        first = pool.submit(batcher.submit, "first", paths("first", 1))
        assert run.started.wait(10)
        queued = [pool.submit(batcher.submit, key, items) for key, items in requests]
        while len(batcher._waiting) < len(requests):  # every request is queued behind the blocked call
            threading.Event().wait(0.01)
        run.release.set()
        outcomes = []
        for future in [first, *queued]:
            try:
                outcomes.append(future.result(10))
            except Exception as exc:  # noqa: BLE001 - the outcome under test
                outcomes.append(exc)
    return outcomes


def test_requests_that_wait_together_run_as_one_call_and_each_gets_its_own_results():
    run = GatedRun()
    batcher = Batcher(run, max_images=100)
    requests = [("identify", paths(f"r{n}", n + 1)) for n in range(5)]
    outcomes = submit_while_blocked(batcher, run, requests)
    assert outcomes[0] == [("first", Path("first-0.png"))]
    for (key, items), outcome in zip(requests, outcomes[1:]):
        assert outcome == [(key, path) for path in items]
    assert len(run.calls) == 2  # the blocked call, then one call for the five requests behind it
    assert run.calls[1] == ("identify", [items for _, items in requests])  # each request's images apart
    assert batcher.batches == 2
    batcher.close()


def test_a_batch_holds_at_most_max_images_and_never_splits_a_request():
    run = GatedRun()
    batcher = Batcher(run, max_images=4)
    requests = [("identify", paths(f"r{n}", size)) for n, size in enumerate([3, 2, 6, 1])]
    outcomes = submit_while_blocked(batcher, run, requests)
    for (key, items), outcome in zip(requests, outcomes[1:]):
        assert outcome == [(key, path) for path in items]
    sizes = [[len(paths) for paths in call] for _, call in run.calls[1:]]
    assert sizes == [[3], [2], [6], [1]]  # 3+2 > 4; the 6-image request runs alone; nothing is split
    batcher.close()


def test_requests_asking_different_things_run_in_separate_calls():
    run = GatedRun()
    batcher = Batcher(run, max_images=100)
    requests = [(("identify", 3), paths("a", 2)), (("verify", "red"), paths("b", 1)),
                (("identify", 3), paths("c", 1)), (("identify", 5), paths("d", 1))]
    outcomes = submit_while_blocked(batcher, run, requests)
    for (key, items), outcome in zip(requests, outcomes[1:]):
        assert outcome == [(key, path) for path in items]
    assert sorted(run.calls[1:], key=repr) == sorted([
        (("identify", 3), [paths("a", 2), paths("c", 1)]),
        (("verify", "red"), [paths("b", 1)]),
        (("identify", 5), [paths("d", 1)])], key=repr)


def test_an_error_goes_to_every_request_of_its_call_and_no_other():
    run = GatedRun(fail_on="missing")
    batcher = Batcher(run, max_images=100)
    requests = [("missing", paths("a", 1)), ("present", paths("b", 2)), ("missing", paths("c", 1))]
    outcomes = submit_while_blocked(batcher, run, requests)
    assert [type(o) for o in outcomes[1:]] == [LookupError, list, LookupError]
    assert "no such thing as missing" in str(outcomes[1])
    assert outcomes[2] == [("present", path) for path in paths("b", 2)]
    assert batcher.submit("present", paths("later", 1)) == [("present", Path("later-0.png"))]  # it goes on
    batcher.close()


def test_close_answers_what_waits_then_refuses_new_requests():
    run = GatedRun()
    batcher = Batcher(run)
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(batcher.submit, "k", paths("a", 1))
        assert run.started.wait(10)
        second = pool.submit(batcher.submit, "k", paths("b", 1))
        while not batcher._waiting:
            threading.Event().wait(0.01)
        closing = pool.submit(batcher.close)
        run.release.set()
        closing.result(10)
        assert first.result(10) == [("k", Path("a-0.png"))]
        assert second.result(10) == [("k", Path("b-0.png"))]
    with pytest.raises(RuntimeError, match="shutting down"):
        batcher.submit("k", paths("c", 1))
    with pytest.raises(ValueError, match="at least 1"):
        Batcher(run, max_images=0)


def test_concurrent_http_requests_batched_together_get_exactly_their_lone_answers(served, tmp_path, monkeypatch):
    """Identify and verify requests held behind one running batch are answered by the next ones, each
    with exactly the JSON it gets when sent alone (every float to the last digit), which is the library's
    answer for its own images, a bad image spoiling only its own record."""
    gallery, queries = served
    monkeypatch.chdir(tmp_path)  # the library names the broken file as the server names the upload
    broken = Path("broken.png")
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    asks = [("identify", [queries[0]]), ("identify", [queries[1], queries[3]]), ("verify", [queries[2]]),
            ("identify", [broken, queries[2]]), ("verify", [queries[0], queries[3]])]
    with Gallery(gallery, read_only=True) as g:
        expected = [[as_uploaded(r.to_json()) for r in (g.identify(items, bound()) if kind == "identify"
                                                         else g.verify("red", items, bound()))]
                    for kind, items in asks]
    with client(gallery) as http:
        def ask(kind, items):
            return http.post(f"/v1/{kind}", files=upload(*items), data={"generator": "red"} if kind == "verify" else {})

        alone = [ask(kind, items).json() for kind, items in asks]
        batcher = http.app.state.service.batcher
        run = GatedRun()
        real, batcher._run = batcher._run, lambda key, requests: (run(key, requests), real(key, requests))[1]
        with ThreadPoolExecutor(len(asks) + 1) as pool:
            first = pool.submit(ask, "identify", [queries[0]])
            assert run.started.wait(30)
            answers = [pool.submit(ask, kind, items) for kind, items in asks]
            while len(batcher._waiting) < len(asks):
                threading.Event().wait(0.01)
            run.release.set()
            assert first.result(30).json() == alone[0]
            for (kind, items), future, lone, records in zip(asks, answers, alone, expected):
                answer = future.result(30)
                assert answer.status_code == (422 if broken in items else 200), answer.text
                assert answer.json() == lone
                # the library alone: equal decisions, floats to the last bits (its own chunks; comparisons.py)
                assert_same_answers(answer.json()["results"], records)
    assert sorted(key[0] for key, _ in run.calls[1:]) == ["identify", "verify"]  # two calls for five requests
    assert sorted(len(requests) for _, requests in run.calls[1:]) == [2, 3]  # each request apart in its call
    assert http.app.state.service.pixels.used == 0  # every request gave its pixels back


def test_a_request_waits_for_pixels_only_while_others_hold_them():
    """The worker's pixel allowance: requests take all their pixels at once; one that would go over the
    limit waits until the others give theirs back, and one larger than the limit runs alone."""
    allowance = PixelAllowance(100)
    order = []

    def second():
        with allowance.held(50):
            order.append(("second", allowance.used))

    with ThreadPoolExecutor(1) as pool:
        with allowance.held(60):
            waiting = pool.submit(second)
            threading.Event().wait(0.2)
            assert not waiting.done() and allowance.used == 60  # 60 + 50 > 100: it waits
            order.append(("first done", allowance.used))
        waiting.result(10)  # it runs once the first gave its pixels back
    assert order == [("first done", 60), ("second", 50)]
    with allowance.held(30), allowance.held(70):
        assert allowance.used == 100  # up to the limit, no waiting
    with allowance.held(500):
        assert allowance.used == 500  # larger than the limit, alone
    assert allowance.used == 0
