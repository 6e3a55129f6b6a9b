"""FAISS index choice, atomic writes and round trips."""

from __future__ import annotations

import numpy as np
import pytest

from attrib.storage.faiss_cache import (IndexState, build_index, choose_index_key, read_index, read_labels, search,
                                        write_index)


@pytest.mark.parametrize(
    "n,dim,memory,expected",
    [
        (0, 64, None, "IDMap2,Flat"),
        (1_000, 256, None, "IDMap2,Flat"),
        (49_999, 256, None, "IDMap2,Flat"),
        (50_000, 256, None, "IDMap2,HNSW32"),
        (1_000_000, 256, None, "IDMap2,HNSW32"),
        (1_000_000, 256, 2 * 1024**3, "IDMap2,HNSW32"),
        (5_000_000, 256, None, "IVF8192,Flat"),
        (1_000_000, 256, 512 * 1024**2, "IVF4096,PQ64"),
        (10_000, 256, 1024**2, "IVF512,PQ64"),
        (1_000_000, 30, 64 * 1024**2, "IVF4096,PQ2"),
    ],
)
def test_choose_index_key(n, dim, memory, expected):
    assert choose_index_key(n, dim, memory) == expected


def test_choose_index_key_rejects_nonsense():
    with pytest.raises(ValueError):
        choose_index_key(-1, 8)
    with pytest.raises(ValueError):
        choose_index_key(10, 0)


def unit(n, d, seed=0):
    x = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("key", ["IDMap2,Flat", "IDMap2,HNSW32"])
def test_build_search_with_database_ids(tmp_path, key):
    vectors = unit(200, 16)
    ids = np.arange(1000, 1200, dtype=np.int64)
    index = build_index(ids, vectors, 16, key)
    scores, found = search(index, vectors[:5], 3)
    assert list(found[:, 0]) == list(ids[:5])
    assert np.allclose(scores[:, 0], 1.0, atol=1e-5)
    state = IndexState(200, 1199, int(ids.sum()), 16, key)
    path = tmp_path / "idx" / "1.faiss"
    write_index(index, path, state, ids, ids % 7)
    # no temp files left
    assert sorted(p.name for p in path.parent.iterdir()) == ["1.faiss", "1.json", "1.labels.npy"]
    loaded, loaded_state = read_index(path)
    assert loaded.ntotal == 200 and loaded_state.matches(state)
    labels = read_labels(path, 200)
    assert np.array_equal(labels, np.stack([ids, ids % 7])) and read_labels(path, 199) is None


def test_ivf_is_trained_and_small_sets_fall_back_to_flat():
    vectors = unit(500, 8)
    index = build_index(np.arange(500), vectors, 8, "IVF16,Flat")
    assert index.is_trained and index.ntotal == 500
    tiny = build_index(np.arange(10), vectors[:10], 8, "IVF16,Flat")
    assert tiny.ntotal == 10


def test_damaged_or_inconsistent_files_read_as_none(tmp_path):
    path = tmp_path / "2.faiss"
    assert read_index(path) is None
    index = build_index(np.arange(5), unit(5, 4), 4)
    write_index(index, path, IndexState(5, 4, 10, 4), np.arange(5), np.zeros(5, np.int64))
    path.write_bytes(b"garbage")
    assert read_index(path) is None
    write_index(index, path, IndexState(6, 5, 15, 4), np.arange(5), np.zeros(5, np.int64))  # sidecar disagrees with the file
    assert read_index(path) is None
