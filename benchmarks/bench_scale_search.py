"""Search at scale: index choice, build and tuning, batched search speed and recall, memory, and
the per-image cost of scoring generators (figures and ratios, no asserts).

    python benchmarks/bench_scale_search.py [--sizes 10k,100k,1m] [--dim 65] [--generators 500]
                                            [--queries 2000] [--no-scoring]

For each size: synthetic unit vectors in clustered "generators", the index key
``choose_index_key`` picks, build and tuning time, the tuned efSearch / nprobe and the recall
the tuning measured, then in a fresh process (so its memory is the index's alone): load time,
batched search ms/query for k=1 and k=FIRST_K (what identify asks for), recall@1 against exact
search (``IndexFlatIP``) on held-out queries the tuning never saw, peak RSS, and the index file
size. Then ``score_queries`` per image on 10,000 samples in 10 and in 500 generators.

Targets on a 2-core machine: batched search <= 2 ms/query at recall@1 >= 0.99; a 1M x 65-d
index in <= 1 GB RAM; scoring at 500 generators within 1.5x of at 10.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from attrib.index.choice import choose_index_key  # noqa: E402
from attrib.index.tuning import held_out_queries, new_index, tune_index  # noqa: E402
from attrib.index.whitening import Whitening  # noqa: E402
from attrib.scoring import calibration  # noqa: E402
from attrib.scoring.candidates import FIRST_K  # noqa: E402
from attrib.scoring.decision import score_queries  # noqa: E402
from attrib.upkeep.freshness import LoadedIndex  # noqa: E402

CHILD = r"""
import json, sys, time
import faiss, numpy as np

def memory_mb(field):  # this process's own memory (ru_maxrss would include the parent's peak from before exec)
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":")) / 1024

path, queries_path, k_big = sys.argv[1], sys.argv[2], int(sys.argv[3])
before = memory_mb("VmRSS")
t0 = time.perf_counter(); index = faiss.read_index(path); load = time.perf_counter() - t0
loaded = memory_mb("VmRSS")
queries = np.load(queries_path)
index.search(queries[:50], 1)
t0 = time.perf_counter(); sims, ids = index.search(queries, 1); k1 = time.perf_counter() - t0
t0 = time.perf_counter(); index.search(queries, k_big); kbig = time.perf_counter() - t0
np.save(queries_path + ".ids.npy", ids[:, 0])
print(json.dumps({"load_s": load, "k1_ms": 1000 * k1 / len(queries), "kbig_ms": 1000 * kbig / len(queries),
                  "index_mb": loaded - before, "rss_loaded_mb": loaded, "peak_rss_mb": memory_mb("VmHWM")}))
"""


def clustered(n: int, dim: int, generators: int, seed: int = 0, spread: float = 0.6):
    """``n`` unit vectors around ``generators`` random centres, and each one's generator."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(generators, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = rng.integers(0, generators, n)
    vectors = np.empty((n, dim), np.float32)
    for lo in range(0, n, 200_000):  # in chunks: bounded temporaries at 1M
        hi = min(n, lo + 200_000)
        part = centres[labels[lo:hi]] + spread * rng.normal(size=(hi - lo, dim)).astype(np.float32) / np.sqrt(dim)
        vectors[lo:hi] = part / np.linalg.norm(part, axis=1, keepdims=True)
    return vectors, labels


def parse_size(text: str) -> int:
    text = text.strip().lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1], 1)
    return int(float(text[:-1] if text[-1] in "km" else text) * scale)


def search_at(n: int, dim: int, generators: int, n_queries: int) -> None:
    vectors, _ = clustered(n, dim, generators)
    ids = np.arange(n, dtype=np.int64) * 2 + 1
    key = choose_index_key(n, dim)
    t0 = time.perf_counter()
    index = new_index(ids, vectors, dim, key)
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    tuning = tune_index(index, ids, vectors)
    tune = time.perf_counter() - t0
    queries = held_out_queries(vectors, n_queries, seed=12345)
    exact = faiss.IndexFlatIP(dim)
    exact.add(vectors)
    truth, _ = exact.search(queries, 1)
    del exact
    with tempfile.TemporaryDirectory() as folder:
        path, qpath = os.path.join(folder, "index.faiss"), os.path.join(folder, "queries.npy")
        faiss.write_index(index, path)
        size = os.path.getsize(path)
        np.save(qpath, queries)
        del index
        child = json.loads(subprocess.run([sys.executable, "-c", CHILD, path, qpath, str(FIRST_K)], check=True,
                                          capture_output=True, text=True).stdout)
        found = np.load(qpath + ".ids.npy")
    rows = (found - 1) // 2
    ok = (found >= 0) & (np.einsum("ij,ij->i", vectors[np.clip(rows, 0, n - 1)], queries) >= truth[:, 0] - 1e-5)
    recall = float(ok.mean())
    print(f"\n{n:,} x {dim}-d in {generators} generators: {key}")
    tuned = (f"{tuning.parameter} = {tuning.value}, tuning recall@1 {tuning.recall:.3f} on {tuning.queries} queries"
             if tuning.parameter else "exact search, nothing to tune")
    print(f"  build {build:.1f} s + tune {tune:.1f} s; {tuned}")
    print(f"  fresh process: load {child['load_s']:.2f} s; batched search {child['k1_ms']:.3f} ms/query (k=1), "
          f"{child['kbig_ms']:.3f} ms/query (k={FIRST_K}); recall@1 vs IndexFlatIP {recall:.4f} "
          f"on {len(queries)} new queries")
    print(f"  memory: the index takes {child['index_mb']:.0f} MB; the process {child['rss_loaded_mb']:.0f} MB "
          f"after load, peak {child['peak_rss_mb']:.0f} MB; index file {size / 2**20:.0f} MB")
    print(f"  targets: <= 2 ms/query: {child['kbig_ms']:.3f} ms (k={FIRST_K}); recall >= 0.99: {recall:.4f}"
          + ("; <= 1024 MB at 1M: " + f"{child['peak_rss_mb']:.0f} MB" if n >= 1_000_000 else ""))


def scoring_view(n: int, generators: int, dim: int) -> tuple[LoadedIndex, np.ndarray]:
    """A calibrated view of ``n`` synthetic samples in ``generators``, and held-out queries."""
    vectors, labels = clustered(n, dim, generators, seed=generators)
    ids = np.arange(n, dtype=np.int64)
    result = calibration.calibrate(vectors, labels)
    thresholds = {t.generator_id: t.threshold for t in result.thresholds}
    index = new_index(ids, vectors, dim, choose_index_key(n, dim))
    tune_index(index, ids, vectors)
    view = LoadedIndex(1, "bench", index, ids, labels.astype(np.int64), {g: f"g{g}" for g in range(generators)},
                     thresholds, Whitening("identity"))
    return view, held_out_queries(vectors, 1024, seed=7)


def scoring_ms(views: dict[int, tuple[LoadedIndex, np.ndarray]], batch: int = 256, repeats: int = 5) -> dict:
    """ms per image of score_queries over batches of ``batch``: (best, median) per view, the views
    timed in turn so that a busy machine slows them alike."""
    times = {g: [] for g in views}
    for view, queries in views.values():
        score_queries(view, queries[:batch])  # warm: the generator table is built once per view
    for _ in range(repeats):
        for g, (view, queries) in views.items():
            for lo in range(0, len(queries), batch):
                t0 = time.perf_counter()
                score_queries(view, queries[lo:lo + batch])
                times[g].append(1000 * (time.perf_counter() - t0) / batch)
    return {g: (min(t), float(np.median(t))) for g, t in times.items()}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10k,100k", help="comma-separated gallery sizes (10k, 100k, 1m)")
    parser.add_argument("--dim", type=int, default=65)
    parser.add_argument("--generators", type=int, default=500)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--no-scoring", action="store_true", help="skip the per-image scoring cost")
    args = parser.parse_args(argv)
    print(f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads, {os.cpu_count()} CPUs")
    for n in (parse_size(s) for s in args.sizes.split(",")):
        search_at(n, args.dim, args.generators, args.queries)
    if not args.no_scoring:
        ms = scoring_ms({g: scoring_view(10_000, g, args.dim) for g in (10, 500)})
        (few, few_median), (many, many_median) = ms[10], ms[500]
        print(f"\nscore_queries on 10,000 samples, ms/image (best / median of batches of 256): "
              f"{few:.3f} / {few_median:.3f} at 10 generators, {many:.3f} / {many_median:.3f} at 500; "
              f"ratio {many / few:.2f} / {many_median / few_median:.2f} (target <= 1.5)")


if __name__ == "__main__":
    main()
