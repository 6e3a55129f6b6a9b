"""Load on `attrib serve`: concurrent identify requests of one 512 px image against the CLI's batch rate.

    python benchmarks/bench_serve.py [--clients 8] [--requests 200] [--size 512] [--extractor residual] [--workers 1]

Builds a small gallery (3 generators x 10 images of --size px, the default `residual` extractor) in a
temporary folder, starts `attrib serve` on 127.0.0.1 (--workers, default 1), and from a second process sends
--requests identify requests of one --size px PNG, from --clients threads at once (each waits for its
answer before sending the next). Prints requests/s and p50/p99 latency, the ratio p99/p50 (target
<= 3), and the server's images/s against `attrib identify --output out.jsonl DIR` on the same image
repeated --requests times (start-up included; target: the server within 1.5x of it), and, where /proc
is, the CPU time each spends per image (which a busy machine changes far less than the rates). Built-in
plugins only (ATTRIB_LOAD_PLUGINS="").
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_batch import ATTRIB, three_generator_gallery, write_images  # noqa: E402

CLIENT = r"""
import http.client, json, sys, threading, time
from urllib.parse import urlsplit
url, image, clients, total = urlsplit(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
boundary = "attrib-bench-boundary"
body = (f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="query.png"\r\n'
        f'Content-Type: image/png\r\n\r\n').encode() + open(image, "rb").read() + f"\r\n--{boundary}--\r\n".encode()
headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
latencies, errors, lock = [], [], threading.Lock()
left = iter(range(total))
def client():
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=120)  # one kept-alive connection
    while True:
        with lock:
            if next(left, None) is None:
                return
        start = time.perf_counter()
        connection.request("POST", url.path, body=body, headers=headers)
        answer = connection.getresponse()
        answer.read()
        elapsed = time.perf_counter() - start
        with lock:
            (latencies if answer.status == 200 else errors).append(elapsed if answer.status == 200 else answer.status)
start = time.perf_counter()
threads = [threading.Thread(target=client) for _ in range(clients)]
[t.start() for t in threads]
[t.join() for t in threads]
print(json.dumps({"wall": time.perf_counter() - start, "latencies": latencies, "errors": errors}))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_health(base: str, server: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"attrib serve exited with status {server.returncode}")
        try:
            with urllib.request.urlopen(f"{base}/v1/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("attrib serve did not answer /v1/health")


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) of process ``pid`` and its children so far (uvicorn's workers), from /proc;
    None where there is no /proc."""
    try:
        pids = [pid, *map(int, Path(f"/proc/{pid}/task/{pid}/children").read_text().split())]
        fields = [Path(f"/proc/{p}/stat").read_text().rpartition(")")[2].split() for p in pids]
    except OSError:
        return None
    return sum(int(f[11]) + int(f[12]) for f in fields) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--extractor", default="residual")
    parser.add_argument("--workers", type=int, default=1, help="attrib serve --workers")
    args = parser.parse_args()
    os.environ["ATTRIB_LOAD_PLUGINS"] = ""

    with tempfile.TemporaryDirectory(prefix="attrib-bench-serve-") as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        gallery_dir = three_generator_gallery(root, args.extractor, args.size)
        image = write_images(root / "query", 2, args.size, seed=1)[1]  # the PNG one
        print(f"setup: gallery of 3 x 10 ({args.extractor}), query {args.size} px PNG, in "
              f"{time.perf_counter() - start:.1f} s")

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        log = open(root / "server.log", "w+")
        server = subprocess.Popen([*ATTRIB, "--gallery", str(gallery_dir), "serve", "--port", str(port),
                                   "--workers", str(args.workers), "-e", args.extractor, "--no-access-log"],
                                  stderr=log, text=True)
        try:
            wait_for_health(base, server)
            cpu_before = cpu_seconds(server.pid)
            load = subprocess.run([sys.executable, "-c", CLIENT, f"{base}/v1/identify", str(image),
                                   str(args.clients), str(args.requests)], capture_output=True, text=True, check=True)
            cpu_after = cpu_seconds(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=60)
            log.seek(0)
            said = log.read()
            log.close()
        figures = json.loads(load.stdout)
        latencies = figures["latencies"]
        if figures["errors"] or not latencies:
            raise SystemExit(f"requests failed: {figures['errors'][:5]}; the server said:\n{said[-3000:]}")
        rate = len(latencies) / figures["wall"]
        p50, p99 = percentile(latencies, 50), percentile(latencies, 99)

        repeated = root / "repeated"
        repeated.mkdir()
        for i in range(args.requests):
            shutil.copyfile(image, repeated / f"q{i:05d}.png")
        out = root / "cli.jsonl"
        used = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run([*ATTRIB, "--gallery", str(gallery_dir), "identify", "-e", args.extractor, "--output", str(out),
                        str(repeated)], check=True, stderr=subprocess.DEVNULL)
        cli = args.requests / (time.perf_counter() - start)
        now = resource.getrusage(resource.RUSAGE_CHILDREN)
        cli_cpu = (now.ru_utime + now.ru_stime - used.ru_utime - used.ru_stime) / args.requests

        print(f"attrib serve --workers {args.workers}, {args.clients} clients, {len(latencies)} identify requests "
              f"of one {args.size} px image:")
        print(f"  {rate:8.1f} requests/s   p50 {p50 * 1000:7.1f} ms   p99 {p99 * 1000:7.1f} ms   "
              f"p99/p50 {p99 / p50:.2f} (target <= 3)")
        print(f"attrib identify --output out.jsonl DIR ({args.requests} copies, start-up included): "
              f"{cli:8.1f} images/s")
        print(f"  CLI / server: {cli / rate:.2f}x (target: the server within 1.5x, i.e. <= 1.50)")
        if cpu_before is not None and cpu_after is not None:
            server_cpu = (cpu_after - cpu_before) / len(latencies)
            print(f"CPU per image: server {server_cpu * 1000:.1f} ms, CLI {cli_cpu * 1000:.1f} ms (start-up "
                  f"included); server / CLI {server_cpu / cli_cpu:.2f}x")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
