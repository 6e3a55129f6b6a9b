"""FAISS index choice, atomic writes and round trips."""

from __future__ import annotations

import numpy as np
import pytest

from attrib.index.choice import build_index, choose_index_key
from attrib.index.files import (IndexState, append_delta, generation_files, labels_digest, read_cache, reconstruct,
                                search, stray_files, write_index)
from attrib.index.reuse import rewhitened
from attrib.index.tuning import search_parameter


# choose_index_key's choices by size, dimension and memory: tests/test_index_tuning.py


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
    path = tmp_path / "idx" / "1.json"
    write_index(index, path, state, ids, ids % 7)
    # a sidecar naming one index file and one labels file; no temp files left
    names = sorted(p.name for p in path.parent.iterdir())
    assert len(names) == 3 and names[-1] == "1.json" and names[0].endswith(".faiss") and names[1].endswith(".labels.npy")
    assert generation_files(path) == set(path.parent.iterdir()) and stray_files(path.parent, [path]) == []
    cached = read_cache(path)
    assert cached.index.ntotal == 200 and cached.state.matches(state)
    assert cached.state.labels == labels_digest(ids, ids % 7)
    assert np.array_equal(cached.labels, np.stack([ids, ids % 7]))


def test_a_new_generation_replaces_the_previous_one(tmp_path):
    vectors = unit(20, 4)
    path = tmp_path / "3.json"
    write_index(build_index(np.arange(20), vectors, 4), path, IndexState(20, 19, 190, 4), np.arange(20), np.zeros(20, np.int64))
    first = generation_files(path)
    (tmp_path / "3.faiss").write_bytes(b"index of an earlier format")
    (tmp_path / "3-0123.faiss.x1.tmp").write_bytes(b"left by a killed writer")
    assert len(stray_files(tmp_path, [path])) == 2
    labels = np.ones(20, np.int64)
    write_index(build_index(np.arange(20), vectors, 4), path, IndexState(20, 19, 190, 4), np.arange(20), labels)
    assert generation_files(path) != first and set(tmp_path.iterdir()) == generation_files(path)
    assert np.array_equal(read_cache(path).labels[1], labels)


def test_a_reader_follows_a_generation_written_again_but_not_one_whose_files_are_gone(tmp_path, monkeypatch):
    import attrib.index.files as files

    ids = np.arange(6)
    path = tmp_path / "4.json"
    write_index(build_index(ids, unit(6, 4), 4), path, IndexState(6, 5, 15, 4), ids, ids % 2)
    real, calls = files._read_generation, []

    def removed_then_back(*args, **kwargs):  # a writer replaced it, then wrote the same generation again
        calls.append(1)
        if len(calls) == 1:
            raise FileNotFoundError("4-token.faiss")
        return real(*args, **kwargs)

    monkeypatch.setattr(files, "_read_generation", removed_then_back)
    assert read_cache(path) is not None and len(calls) == 2
    monkeypatch.setattr(files, "_read_generation", real)
    (generation_files(path) - {path}).pop().unlink()  # a generation missing a file for good: no endless retries
    assert read_cache(path) is None


def test_a_reader_keeps_following_a_sidecar_written_anew_with_the_same_text(tmp_path, monkeypatch):
    import attrib.index.files as files

    ids = np.arange(6)
    path = tmp_path / "4.json"
    write_index(build_index(ids, unit(6, 4), 4), path, IndexState(6, 5, 15, 4), ids, ids % 2)
    real, calls = files._read_generation, []

    def churned(*args, **kwargs):  # a fast writer: replaced, then the same generation again, three times over
        calls.append(1)
        if len(calls) <= 3:
            files._write_synced(path, path.read_bytes())  # the same text, a new sidecar file
            raise FileNotFoundError("4-token.faiss")
        return real(*args, **kwargs)

    monkeypatch.setattr(files, "_read_generation", churned)
    assert read_cache(path) is not None and len(calls) == 4


def test_a_mapped_read_that_faiss_found_gone_is_a_missing_file_even_when_written_again(tmp_path, monkeypatch):
    import attrib.index.files as files

    ids = np.arange(6)
    path = tmp_path / "4.json"
    write_index(build_index(ids, unit(6, 4), 4), path, IndexState(6, 5, 15, 4), ids, ids % 2)
    base = next(f for f in generation_files(path) if f.suffix == ".faiss")

    def gone_then(name, flags):  # removed before FAISS opened it; the writer wrote it again before the check
        raise RuntimeError(f"Error: 'f' failed: could not open {name} for reading: No such file or directory")

    monkeypatch.setattr(files.faiss, "read_index", gone_then)
    with pytest.raises(FileNotFoundError):
        files._read_mapped(base)


def test_ivf_is_trained_and_small_sets_fall_back_to_flat():
    vectors = unit(500, 8)
    index = build_index(np.arange(500), vectors, 8, "IVF16,Flat")
    assert index.is_trained and index.ntotal == 500
    tiny = build_index(np.arange(10), vectors[:10], 8, "IVF16,Flat")
    assert tiny.ntotal == 10


def test_damaged_or_inconsistent_files_read_as_none(tmp_path):
    path = tmp_path / "2.json"
    assert read_cache(path) is None
    ids = np.arange(5)

    def write(state=None):
        write_index(build_index(ids, unit(5, 4), 4), path, state or IndexState(5, 4, 10, 4), ids, ids % 3)
        return generation_files(path) - {path}

    index_file, labels_file = sorted(write(), key=lambda p: p.suffix == ".npy")
    assert read_cache(path) is not None
    index_file.write_bytes(b"garbage")
    assert read_cache(path) is None
    index_file, labels_file = sorted(write(), key=lambda p: p.suffix == ".npy")
    for damage in (b"", b"random bytes \x00\x01"):
        labels_file.write_bytes(damage)
        assert read_cache(path) is None
    index_file, labels_file = sorted(write(), key=lambda p: p.suffix == ".npy")
    np.save(labels_file, np.stack([ids, np.roll(ids % 3, 1)]))  # generators permuted: the digest differs
    assert read_cache(path) is None
    write(IndexState(6, 5, 15, 4))  # sidecar disagrees with the files
    assert read_cache(path) is None
    path.write_text("{not json")
    assert read_cache(path) is None


def nudged(vectors, scale, seed=1):
    """``vectors`` each moved a little (as a refit's small change of the whitening moves them), renormalised."""
    moved = vectors + scale * np.random.default_rng(seed).normal(size=vectors.shape).astype(np.float32)
    return moved / np.linalg.norm(moved, axis=1, keepdims=True)


def old_generation(path, key, ids, vectors, appended=100):
    """A generation of ``vectors`` under an earlier whitening, the last ``appended`` of them in a delta."""
    base = len(ids) - appended
    state = IndexState(base, int(ids[base - 1]), int(ids[:base].sum()), vectors.shape[1], key, whitening="earlier")
    index = build_index(ids[:base], vectors[:base], vectors.shape[1], key)
    write_index(index, path, state, ids[:base], ids[:base] % 5)
    assert append_delta(path, ids[base:], ids[base:] % 5, vectors[base:], revision=len(ids))
    return index


@pytest.mark.parametrize("key", ["IDMap2,HNSW32", "IVF16,Flat"])
def test_a_refitted_index_keeps_its_structure_and_holds_only_the_new_vectors(tmp_path, key):
    vectors, ids = unit(3000, 16), np.arange(1, 3001, dtype=np.int64) * 3
    path = tmp_path / "1.json"
    before = search_parameter(old_generation(path, key, ids[:2900], vectors[:2900]))
    refitted = nudged(vectors, 0.01)  # every vector moved, 100 of them stored since
    index = rewhitened(path, ids, refitted, key)
    parameter, value = search_parameter(index)
    assert index is not None and index.ntotal == 3000 and parameter == before[0]
    assert before[1] // 2 <= value <= 2 * before[1]  # tuned again within a doubling of before
    assert np.allclose(reconstruct(index, ids), refitted, atol=1e-6)  # none left as the earlier whitening made it
    scores, found = search(index, refitted[::30], 1)
    assert np.array_equal(found[:, 0], ids[::30]) and np.allclose(scores[:, 0], 1.0, atol=1e-5)


def test_a_graph_is_not_reused_when_it_would_search_worse_or_holds_a_removed_vector(tmp_path):
    vectors, ids = unit(3000, 16), np.arange(1, 3001, dtype=np.int64)
    path = tmp_path / "1.json"
    old_generation(path, "IDMap2,HNSW32", ids, vectors)
    other = unit(3000, 16, seed=5)
    assert rewhitened(path, ids, other, "IDMap2,HNSW32") is None  # its graph links other neighbours
    assert rewhitened(path, ids[1:], vectors[1:], "IDMap2,HNSW32") is None  # vector 1 removed since
    assert rewhitened(path, ids, vectors, "IVF16,Flat") is None  # another index type
    assert rewhitened(tmp_path / "2.json", ids, vectors, "IDMap2,HNSW32") is None  # no generation
    assert rewhitened(path, ids, vectors, "IDMap2,HNSW32") is not None


def test_an_exact_index_is_built_not_reused(tmp_path):
    vectors, ids = unit(300, 8), np.arange(300, dtype=np.int64)
    old_generation(tmp_path / "1.json", "IDMap2,Flat", ids, vectors)
    assert rewhitened(tmp_path / "1.json", ids, vectors, "IDMap2,Flat") is None
