"""``attrib serve --workers 2``: a real server on 127.0.0.1 whose two worker processes both answer
concurrent identify requests as the CLI does, and that leaves no process behind when terminated."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="attrib serve needs the serve extra: pip install 'attrib[serve]'")
httpx = pytest.importorskip("httpx")

from comparisons import assert_same_answers  # noqa: E402
from gallery_helpers import HERE  # noqa: E402
from test_serve import as_uploaded, cli_json, free_port, served, upload  # noqa: E402,F401

PID_LOG_ENV = "ATTRIB_TEST_PID_LOG"  # read by serve_script.py (not imported here: it registers a plugin)
WORKERS = 2
CLIENTS = 8


def logged_pids(log: Path) -> list[int]:
    return [int(line) for line in log.read_text().split()] if log.exists() else []


def children(pid: int) -> set[int]:
    """The child processes of ``pid`` (Linux /proc)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.update(int(child) for child in (task / "children").read_text().split())
    return found


def running(pid: int) -> bool:
    """Whether process ``pid`` exists and has not exited (a zombie has)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_for(condition, server: subprocess.Popen, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert server.poll() is None, server.communicate()[1]
        assert time.monotonic() < deadline, f"attrib serve: {what} within {seconds:.0f} s"
        time.sleep(0.2)


def healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/v1/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads the process tree from Linux's /proc")
def test_two_workers_answer_concurrent_requests_as_the_cli_and_leave_nothing_behind(served, tmp_path):
    gallery, queries = served
    expected = {q.name: as_uploaded(cli_json(gallery, "identify", "--json", q)[0]) for q in queries}
    log, port = tmp_path / "pids", free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, str(HERE / "serve_script.py"), "--gallery", str(gallery), "serve", "--port", str(port),
         "--workers", str(WORKERS)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, PID_LOG_ENV: str(log)})
    try:
        wait_for(lambda: len(set(logged_pids(log))) == WORKERS, server, f"{WORKERS} workers warmed up")
        wait_for(lambda: healthy(base), server, "/v1/health answered")
        workers = set(logged_pids(log))
        assert workers <= children(server.pid)
        warmed, answered = len(logged_pids(log)), set()

        def identify(query: Path) -> dict:
            return httpx.post(f"{base}/v1/identify", files=upload(query), timeout=60).json()

        with ThreadPoolExecutor(CLIENTS) as pool:
            for _ in range(5):  # rounds of concurrent requests, until both workers have answered some
                batch = [queries[i % len(queries)] for i in range(CLIENTS)]
                for query, answer in zip(batch, pool.map(identify, batch)):
                    assert_same_answers(answer["results"], [expected[query.name]])  # batched with others
                answered = set(logged_pids(log)[warmed:])
                if answered == workers:
                    break
        assert answered == workers
        left = children(server.pid)
    finally:
        server.terminate()
        _, err = server.communicate(timeout=30)
    assert "Traceback" not in err, err
    assert not any(running(pid) for pid in workers)  # the server waited for its workers
    deadline = time.monotonic() + 10  # a helper (multiprocessing's resource tracker) ends once its parent has
    while any(running(pid) for pid in left) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [pid for pid in left if running(pid)] == []
