"""Building approximate indexes that still find the right neighbours.

An approximate index (HNSW, IVF) trades recall for speed through one search parameter:
``efSearch`` for HNSW (candidates kept while walking the graph), ``nprobe`` for IVF (lists
scanned). FAISS's defaults are not enough (HNSW32 at efSearch 16 finds the true nearest
neighbour of 90 % of queries on 1M x 65-d vectors), so after building, :func:`tune_index`
measures recall@1 against exact search on held-out queries and doubles the parameter until
the target is met (:data:`TARGET_RECALL`, 0.99 by default).

The queries are drawn from the indexed vectors and perturbed: each is moved in a random
direction by its distance to its nearest other indexed vector (times :data:`QUERY_NOISE`),
then renormalised, so it lies among its neighbours like a new sample of the same source rather
than on top of a stored vector. A query counts as found when the index's first answer is
as similar to it as the exact nearest neighbour (ties count as found).

FAISS serialises ``efSearch`` (HNSW) and ``nprobe`` (IVF) with the index, so a tuned index
written with ``faiss.serialize_index`` / ``write_index`` and read back searches the same way.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol

import faiss
import numpy as np

TARGET_RECALL = 0.99
TUNING_QUERIES = 1000
QUERY_NOISE = 1.0  # perturbation, in units of the query's distance to its nearest other vector
MAX_EF_SEARCH = 4096
TRAIN_POINTS_PER_LIST = 64  # IVF k-means is trained on at most this many vectors per list
PLATEAU = 2  # doublings without any recall gain before giving up on the target


@dataclass
class Tuning:
    """How an index was tuned: the search parameter set, and the recall@1 it measured."""

    parameter: str | None  # "efSearch", "nprobe", or None for exact search
    value: int | None
    recall: float  # measured recall@1 against exact search (1.0 for an exact index)
    target: float
    queries: int  # how many held-out queries measured it

    @property
    def met(self) -> bool:
        return self.recall >= self.target

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def search_parameter(index: faiss.Index) -> tuple[str | None, int | None]:
    """The index's recall/speed parameter and its value: ("efSearch", n), ("nprobe", n) or (None, None)."""
    hnsw = _hnsw(index)
    if hnsw is not None:
        return "efSearch", int(hnsw.efSearch)
    ivf = _ivf(index)
    if ivf is not None:
        return "nprobe", int(ivf.nprobe)
    return None, None


def set_search_parameter(index: faiss.Index, value: int) -> None:
    """Set ``efSearch`` (HNSW) or ``nprobe`` (IVF, at most the number of lists); exact indexes ignore it."""
    hnsw = _hnsw(index)
    if hnsw is not None:
        hnsw.efSearch = int(value)
        return
    ivf = _ivf(index)
    if ivf is not None:
        ivf.nprobe = int(min(value, ivf.nlist))


class SearchesAmong(Protocol):
    """An index that searches among given vector ids itself (:class:`attrib.index.files.LayeredIndex`: a base
    with vectors appended beside it)."""

    def search_among(self, queries: np.ndarray, k: int, ids: np.ndarray, everywhere: bool = False
                     ) -> tuple[np.ndarray, np.ndarray]: ...


def search_among(index: faiss.Index | SearchesAmong, queries: np.ndarray, k: int, ids: np.ndarray,
                 everywhere: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Top-k similarities and ids of ``queries`` among the vectors ``ids`` only (a FAISS ``IDSelector``),
    at the index's own efSearch / nprobe; ``everywhere``: every IVF list, efSearch at least MAX_EF_SEARCH."""
    if not isinstance(index, faiss.Index):
        return index.search_among(queries, k, ids, everywhere)
    params = _among(index, faiss.IDSelectorBatch(np.ascontiguousarray(ids, dtype=np.int64)), everywhere)
    return index.search(np.ascontiguousarray(queries, dtype=np.float32), k, params=params)


def _among(index: faiss.Index, selector: faiss.IDSelector, everywhere: bool) -> faiss.SearchParameters:
    """Search parameters of ``index`` that search only the vectors ``selector`` selects (see :func:`search_among`).

    The ignores: faiss's stubs lack SearchParametersHNSW and the keyword arguments faiss's Python wrapper
    gives every SearchParameters class (each sets the attribute it names)."""
    hnsw, ivf = _hnsw(index), _ivf(index)
    if hnsw is not None:
        ef = max(hnsw.efSearch, MAX_EF_SEARCH) if everywhere else hnsw.efSearch
        return faiss.SearchParametersHNSW(sel=selector, efSearch=ef)  # type: ignore[attr-defined]  # not stubbed
    if ivf is not None:
        nprobe = ivf.nlist if everywhere else ivf.nprobe
        return faiss.SearchParametersIVF(sel=selector, nprobe=nprobe)  # type: ignore[call-arg]  # wrapper's keywords
    return faiss.SearchParameters(sel=selector)  # type: ignore[call-arg]  # the wrapper's keywords


def _hnsw(index: faiss.Index) -> faiss.HNSW | None:
    inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap) else index
    return inner.hnsw if isinstance(inner, faiss.IndexHNSW) else None


def _ivf(index: faiss.Index) -> faiss.IndexIVF | None:
    try:
        return faiss.extract_index_ivf(index)
    except RuntimeError:  # not an IVF index
        return None


def new_index(ids: np.ndarray, vectors: np.ndarray, dim: int, key: str, seed: int = 0) -> faiss.Index:
    """An inner-product index of factory ``key`` holding ``vectors`` under ``ids`` (untuned).

    IVF k-means is trained on a fixed random subset of at most TRAIN_POINTS_PER_LIST vectors per
    list (the build of 1M vectors takes seconds instead of minutes, for the same recall once
    nprobe is tuned), and keeps a hash-table direct map so stored vectors can be read back by id.
    Too few vectors to train on give an exact index.
    """
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    index = faiss.index_factory(dim, key, faiss.METRIC_INNER_PRODUCT)
    if not index.is_trained:
        index = _trained(index, vectors, dim, seed)
    ivf = _ivf(index)
    if ivf is not None and not isinstance(index, faiss.IndexIDMap):
        keep_direct_map(ivf)
    if len(ids):
        index.add_with_ids(vectors, np.asarray(ids, dtype=np.int64))
    return index


# faiss's stubs lack DirectMap (the kinds of map from a vector id to its place in an IVF list)
_DIRECT_MAP: Any = faiss.DirectMap  # type: ignore[attr-defined]


def keep_direct_map(ivf: faiss.IndexIVF) -> None:
    """Give ``ivf`` (added to with database ids) a hash-table direct map, so that its stored vectors are read
    back by id, unless it keeps a map already."""
    if ivf.direct_map.type == _DIRECT_MAP.NoMap:
        ivf.set_direct_map_type(_DIRECT_MAP.Hashtable)


def _trained(index: faiss.Index, vectors: np.ndarray, dim: int, seed: int) -> faiss.Index:
    ivf = _ivf(index)
    if len(vectors) >= max(40, ivf.nlist if ivf is not None else 0):
        limit = TRAIN_POINTS_PER_LIST * ivf.nlist if ivf is not None else len(vectors)
        rows = np.arange(len(vectors))
        if len(rows) > limit:
            rows = np.sort(np.random.default_rng(seed).choice(len(rows), limit, replace=False))
        try:
            index.train(vectors[rows])
            return index
        except RuntimeError:  # too few vectors for its quantisers (a PQ needs 256 per sub-quantiser)
            pass
    return faiss.index_factory(dim, "IDMap2,Flat", faiss.METRIC_INNER_PRODUCT)


def held_out_queries(vectors: np.ndarray, n: int = TUNING_QUERIES, seed: int = 0,
                     noise: float = QUERY_NOISE, index: faiss.Index | None = None) -> np.ndarray:
    """``n`` unit queries: indexed vectors moved by ``noise`` times their nearest-neighbour distance
    (found by ``index`` when given, which is close enough for a noise scale and cheaper than exact; exactly
    for a vector it finds no neighbour of, as an IVF list holding one vector at nprobe 1)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(vectors), min(n, len(vectors)), replace=False)
    origin = vectors[rows]
    if index is not None:
        sims, found = index.search(origin, min(2, len(vectors)))
        missing = (found < 0).any(axis=1)
        if missing.any():
            sims[missing], _ = faiss.knn(origin[missing], vectors, sims.shape[1], metric=faiss.METRIC_INNER_PRODUCT)
    else:
        sims, _ = faiss.knn(origin, vectors, min(2, len(vectors)), metric=faiss.METRIC_INNER_PRODUCT)
    nearest = sims[:, -1] if sims.shape[1] > 1 else np.zeros(len(rows), np.float32)
    distance = np.sqrt(np.maximum(0.0, 2.0 - 2.0 * nearest))  # between unit vectors
    direction = rng.normal(size=origin.shape).astype(np.float32)
    direction /= np.maximum(np.linalg.norm(direction, axis=1, keepdims=True), 1e-12)
    queries = origin + (noise * distance)[:, None] * direction
    return (queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def recall_at_1(index: faiss.Index, queries: np.ndarray, exact_best: np.ndarray, vectors: np.ndarray,
                ids: np.ndarray) -> float:
    """Share of ``queries`` whose first answer from ``index`` is as similar as the exact nearest
    (``exact_best``: the exact top-1 similarity of each query)."""
    _, found = index.search(queries, 1)
    found = found[:, 0]
    order = np.argsort(ids, kind="stable")
    pos = np.clip(np.searchsorted(ids, found, sorter=order), 0, len(ids) - 1)
    rows = order[pos]
    valid = (found >= 0) & (ids[rows] == found)
    true_sims = np.einsum("ij,ij->i", vectors[rows], queries)
    return float(np.mean(valid & (true_sims >= exact_best - 1e-5)))


def tune_index(index: faiss.Index, ids: np.ndarray, vectors: np.ndarray, target: float = TARGET_RECALL,
               n_queries: int = TUNING_QUERIES, seed: int = 0) -> Tuning:
    """Double ``efSearch`` / ``nprobe`` from its current value until recall@1 on held-out queries
    reaches ``target``; the index keeps the smallest value that met it (or, when no value can,
    the smallest that gave the best recall: a product-quantised index may never reach it)."""
    parameter, value = search_parameter(index)
    if parameter is None or value is None or len(ids) == 0:
        return Tuning(None, None, 1.0, target, 0)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    ids = np.asarray(ids, dtype=np.int64)
    queries = held_out_queries(vectors, n_queries, seed, index=index)
    exact, _ = faiss.knn(queries, vectors, 1, metric=faiss.METRIC_INNER_PRODUCT)
    ivf = _ivf(index)
    limit = ivf.nlist if parameter == "nprobe" and ivf is not None else max(value, min(MAX_EF_SEARCH, len(ids)))
    value = max(1, min(value, limit))
    best, best_value, stale = -1.0, value, 0
    while True:
        set_search_parameter(index, value)
        recall = recall_at_1(index, queries, exact[:, 0], vectors, ids)
        if recall > best:
            best, best_value, stale = recall, value, 0
        else:
            stale += 1
        if recall >= target or value >= limit or stale >= PLATEAU:
            break
        value = min(2 * value, limit)
    set_search_parameter(index, best_value)
    return Tuning(parameter, best_value, best, target, len(queries))
