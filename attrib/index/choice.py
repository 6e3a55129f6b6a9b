"""Which FAISS index a gallery of a given size gets, and building one.

:func:`choose_index_key` is a pure function of the number of vectors, their dimension and the memory
they may take; :func:`build_tuned_index` builds an index of that key and tunes its search parameter to
a measured recall (:mod:`.tuning`).
"""

from __future__ import annotations

import math

import faiss
import numpy as np

from .tuning import TARGET_RECALL, Tuning, new_index, tune_index

FLAT_LIMIT = 50_000  # exact search below this many vectors
HNSW_LIMIT = 200_000  # HNSW below this many (its build grows to minutes beyond), IVF from here on
HNSW_LINKS = 32
LISTS_PER_SQRT = 2  # IVF lists: about LISTS_PER_SQRT * sqrt(n), a power of two
MIN_POINTS_PER_LIST = 39  # FAISS's k-means wants at least this many training vectors per list
ID_BYTES = 8 + 48  # per vector: its 64-bit id and its entry in the id map / direct map (a hash table)


def choose_index_key(n: int, dim: int, memory: int | None = None) -> str:
    """Pick a FAISS factory string for ``n`` vectors of ``dim`` floats within ``memory`` bytes.

    Exact search (``IDMap2,Flat``) below FLAT_LIMIT vectors; HNSW below HNSW_LIMIT, when raw
    vectors plus the graph fit; IVF beyond (its build takes seconds where HNSW's takes minutes
    at a million vectors): ``IVF<lists>,Flat`` while raw vectors fit in ``memory``, else product
    quantisation (``IVF<lists>,PQ<m>``, ``m`` bytes a vector). The search parameter of an
    approximate index is set afterwards from a measured recall (:mod:`.tuning`).
    """
    if n < 0 or dim <= 0:
        raise ValueError(f"need n >= 0 and dim > 0, got n={n}, dim={dim}")
    raw = n * (4 * dim + ID_BYTES)
    graph = n * HNSW_LINKS * 2 * 4
    fits_raw = memory is None or raw <= memory
    if n < FLAT_LIMIT and fits_raw:
        return "IDMap2,Flat"
    if n < HNSW_LIMIT and (memory is None or raw + graph <= memory):
        return f"IDMap2,HNSW{HNSW_LINKS}"
    lists = 2 ** round(math.log2(max(1.0, LISTS_PER_SQRT * math.sqrt(n))))
    lists = int(max(1, min(65536, lists, 2 ** int(math.log2(max(1, n // MIN_POINTS_PER_LIST))))))
    if fits_raw:
        return f"IVF{lists},Flat"
    return f"IVF{lists},PQ{_pq_bytes(n, dim, memory)}"


def _pq_bytes(n: int, dim: int, memory: int | None) -> int:
    """Sub-quantisers of a PQ code: the largest divisor of ``dim`` up to 64 (at least two dimensions
    each) whose codes fit in ``memory``, else the smallest."""
    divisors = [m for m in range(max(1, min(64, dim // 2)), 0, -1) if dim % m == 0]
    for m in divisors:
        if memory is None or n * (m + ID_BYTES) <= memory:
            return m
    return divisors[-1]


def build_index(ids: np.ndarray, vectors: np.ndarray, dim: int, key: str | None = None) -> faiss.Index:
    """Build an inner-product index over L2-normalised vectors, keyed by ``ids``, with its search
    parameter tuned to recall@1 >= :data:`.tuning.TARGET_RECALL` (see
    :func:`build_tuned_index`, which also returns the measured recall)."""
    return build_tuned_index(ids, vectors, dim, key)[0]


def build_tuned_index(ids: np.ndarray, vectors: np.ndarray, dim: int, key: str | None = None,
                      target: float = TARGET_RECALL) -> tuple[faiss.Index, Tuning]:
    """Build an index over ``vectors`` keyed by ``ids`` (``key`` from
    :func:`choose_index_key` when None) and tune it to ``target`` recall@1.
    Returns the index and how it was tuned (record ``tuning.recall`` with the index)."""
    key = key or choose_index_key(len(ids), dim)
    index = new_index(ids, vectors, dim, key)
    return index, tune_index(index, ids, vectors, target)
