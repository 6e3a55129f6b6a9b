"""Index choice by size and memory, and search parameters tuned to a measured recall."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from attrib.index.choice import build_index, build_tuned_index, choose_index_key
from attrib.index.files import IndexState, read_cache, reconstruct, write_index
from attrib.index.tuning import (held_out_queries, new_index, recall_at_1, search_parameter, set_search_parameter,
                                 tune_index)

MB = 1024**2


@pytest.mark.parametrize(
    "n,dim,memory,expected",
    [
        (0, 64, None, "IDMap2,Flat"),
        (1_000, 256, None, "IDMap2,Flat"),
        (49_999, 848, None, "IDMap2,Flat"),
        (50_000, 65, None, "IDMap2,HNSW32"),
        (199_999, 65, None, "IDMap2,HNSW32"),
        (200_000, 65, None, "IVF1024,Flat"),  # IVF from HNSW_LIMIT on: a build of seconds, not minutes
        (1_000_000, 65, None, "IVF2048,Flat"),
        (1_000_000, 65, 1024 * MB, "IVF2048,Flat"),
        (5_000_000, 848, None, "IVF4096,Flat"),
        (100_000, 65, 50 * MB, "IVF512,Flat"),  # raw vectors fit, the HNSW graph does not
        (1_000_000, 65, 200 * MB, "IVF2048,PQ13"),  # 65 = 5 x 13: 13 bytes a vector
        (1_000_000, 256, 100 * MB, "IVF2048,PQ32"),  # PQ64 codes would not fit
        (1_000_000, 30, 64 * MB, "IVF2048,PQ10"),
        (10_000, 256, MB, "IVF256,PQ32"),  # at least 39 training vectors per list
        (1_000_000, 7, None, "IVF2048,Flat"),
    ],
)
def test_choose_index_key(n, dim, memory, expected):
    assert choose_index_key(n, dim, memory) == expected


@pytest.mark.parametrize("n,dim", [(10, 4), (60_000, 65), (300_000, 65), (2_000_000, 848)])
@pytest.mark.parametrize("memory", [None, 10**12, 50 * MB])
def test_chosen_keys_build_and_fit(n, dim, memory):
    key = choose_index_key(n, dim, memory)
    index = faiss.index_factory(dim, key, faiss.METRIC_INNER_PRODUCT)  # a valid factory string
    assert index.d == dim
    if memory is not None and key.startswith("IVF") and ",PQ" not in key:
        assert n * 4 * dim <= memory  # raw vectors are kept only when they fit
    if ",PQ" in key:
        m = int(key.rsplit("PQ", 1)[1])
        assert dim % m == 0 and dim // m >= 2 or m == 1


def unit(n, d, seed=0):
    x = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def fresh_recall(index, ids, vectors, seed):
    queries = held_out_queries(vectors, 1000, seed=seed)
    exact, _ = faiss.knn(queries, vectors, 1, metric=faiss.METRIC_INNER_PRODUCT)
    return recall_at_1(index, queries, exact[:, 0], vectors, ids)


@pytest.mark.parametrize("key,dim", [("IDMap2,HNSW8", 32), ("IVF64,Flat", 16)])
def test_tuning_reaches_the_recall_an_untuned_index_misses(key, dim):
    vectors, ids = unit(4000, dim, seed=3), np.arange(4000, dtype=np.int64) * 7 + 11
    index = new_index(ids, vectors, dim, key)
    parameter, default = search_parameter(index)
    untuned = fresh_recall(index, ids, vectors, seed=9)
    assert untuned < 0.97
    tuning = tune_index(index, ids, vectors, target=0.99)
    assert tuning.parameter == parameter and tuning.met and tuning.recall >= 0.99
    assert tuning.value > default and search_parameter(index) == (parameter, tuning.value)
    assert tuning.queries == 1000
    assert fresh_recall(index, ids, vectors, seed=9) >= 0.98  # queries the tuning never saw
    # the smallest doubling that met the target: half of it misses on the tuning's own queries
    set_search_parameter(index, default)
    queries = held_out_queries(vectors, 1000, seed=0, index=index)
    set_search_parameter(index, tuning.value // 2)
    exact = faiss.knn(queries, vectors, 1, metric=faiss.METRIC_INNER_PRODUCT)[0][:, 0]
    assert recall_at_1(index, queries, exact, vectors, ids) < 0.99


def test_the_tuned_parameter_survives_write_and_read(tmp_path):
    vectors, ids = unit(3000, 16, seed=4), np.arange(3000, dtype=np.int64) + 5
    for key in ("IVF32,Flat", "IDMap2,HNSW8"):
        index, tuning = build_tuned_index(ids, vectors, 16, key, target=0.999)
        assert tuning.value > 1
        path = tmp_path / f"{key[-4:]}.json"
        write_index(index, path, IndexState(len(ids), int(ids.max()), int(ids.sum()), 16, key), ids, ids % 3)
        back = read_cache(path).index
        assert search_parameter(back) == (tuning.parameter, tuning.value)
        assert np.array_equal(back.search(vectors[:50], 3)[1], index.search(vectors[:50], 3)[1])


def test_exact_indexes_need_no_tuning():
    vectors, ids = unit(500, 8), np.arange(500, dtype=np.int64)
    index, tuning = build_tuned_index(ids, vectors, 8)
    assert tuning.parameter is None and tuning.recall == 1.0 and tuning.met
    assert search_parameter(index) == (None, None)


def test_build_index_is_tuned_and_ivf_vectors_read_back_by_database_id():
    vectors, ids = unit(5000, 16, seed=5), np.arange(5000, dtype=np.int64) * 3 + 1000
    index = build_index(ids, vectors, 16, "IVF64,Flat")
    assert search_parameter(index)[1] > 1  # not FAISS's default nprobe of 1
    assert np.allclose(reconstruct(index, ids[[0, 17, 4999]]), vectors[[0, 17, 4999]])
    again = faiss.deserialize_index(faiss.serialize_index(index))
    assert np.allclose(reconstruct(again, ids[[3]]), vectors[[3]])


def test_too_few_vectors_to_train_give_an_exact_index():
    vectors = unit(30, 8)
    index, tuning = build_tuned_index(np.arange(30), vectors, 8, "IVF16,Flat")
    assert index.ntotal == 30 and tuning.parameter is None
    assert isinstance(new_index(np.arange(100), unit(100, 16), 16, "IVF2,PQ8"), faiss.IndexIDMap2)


def test_held_out_queries_sit_among_their_neighbours():
    vectors = unit(2000, 16, seed=6)
    queries = held_out_queries(vectors, 200, seed=1)
    assert queries.shape == (200, 16) and np.allclose(np.linalg.norm(queries, axis=1), 1.0, atol=1e-5)
    best = (queries @ vectors.T).max(axis=1)
    assert (best < 0.9999).all()  # never a stored vector itself
    assert held_out_queries(vectors, 200, seed=1).tobytes() == queries.tobytes()  # seeded


class FindsOnlyItself:
    """An index answering each query with the query's own vector only, as an IVF list of one vector does at
    nprobe 1: the second answer is id -1 with FAISS's lowest similarity."""

    def __init__(self, vectors):
        self.vectors = vectors

    def search(self, queries, k):
        sims = np.full((len(queries), k), -np.finfo(np.float32).max, np.float32)
        ids = np.full((len(queries), k), -1, np.int64)
        sims[:, 0], ids[:, 0] = 1.0, np.argmax(queries @ self.vectors.T, axis=1)
        return sims, ids


def test_held_out_queries_of_an_index_that_finds_no_neighbour_sit_among_them_too():
    vectors = unit(400, 8, seed=3)
    queries = held_out_queries(vectors, 100, index=FindsOnlyItself(vectors))
    assert np.isfinite(queries).all() and np.allclose(queries, held_out_queries(vectors, 100), atol=1e-6)
