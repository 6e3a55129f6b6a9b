"""The GPU search path. Where FAISS sees a GPU (the ``gpu`` extra on a CUDA machine) the real copy
(``faiss.index_cpu_to_gpu``) is searched and finds what the CPU index finds; where it sees none,
searches stay on the CPU index with identical results. The branch that ran is in the test id
(``[gpu]`` or ``[cpu-fallback]``). With a fake GPU (a fake device count and a fake copier) the copy
is made once, reused, and refused when it can't be, on any machine. An index with appended vectors
(files.LayeredIndex) has its base searched on the copy and the appended vectors on the CPU."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from attrib.index import files, gpu
from attrib.index.tuning import new_index, search_parameter, set_search_parameter
from attrib.index.whitening import Whitening
from attrib.upkeep.freshness import LoadedIndex

from comparisons import assert_same_neighbours


def unit(n, d, seed=0):
    x = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


VECTORS, IDS = unit(3000, 16), np.arange(3000, dtype=np.int64) * 2 + 100
QUERIES = unit(40, 16, seed=1)


BASE = 2500  # vectors in the base of a layered index; the rest appended beside it


def index_of(key, layered=False):
    """An index of ``key`` over VECTORS, at efSearch / nprobe 8; ``layered``: a LayeredIndex whose base holds
    the first BASE vectors, the rest appended."""
    held = BASE if layered else len(IDS)
    index = new_index(IDS[:held], VECTORS[:held], 16, key)
    if search_parameter(index)[0] is not None:
        set_search_parameter(index, 8)
    return files.LayeredIndex(index, IDS[held:], VECTORS[held:]) if layered else index


def base_of(index):
    return index.base if isinstance(index, files.LayeredIndex) else index


BRANCH = "gpu" if faiss.get_num_gpus() > 0 else "cpu-fallback"  # what this machine's FAISS can exercise
GPU_ATOL = 1e-5  # cuBLAS sums the 16 products of two unit vectors in another order than the CPU (~1e-7)


@pytest.mark.parametrize("branch", [BRANCH])
@pytest.mark.parametrize("layered", [False, True], ids=["base", "layered"])
@pytest.mark.parametrize("key", ["IDMap2,Flat", "IDMap2,HNSW16", "IVF32,Flat"])
def test_searches_find_what_the_cpu_index_finds(key, layered, branch, capsys, monkeypatch):
    monkeypatch.delenv(gpu.ENV, raising=False)
    index = index_of(key, layered)
    want = files.search(index, QUERIES, 5)
    got = gpu.search(index, QUERIES, 5)
    copy = gpu.gpu_copy(base_of(index))
    err = capsys.readouterr().err
    if branch == "cpu-fallback":
        assert gpu.num_gpus() == 0 and not gpu.enabled() and copy is None
        assert np.array_equal(got[1], want[1]) and np.array_equal(got[0], want[0])  # the same CPU index searched
        assert err == ""  # no GPU, nothing to say
    elif "HNSW" in key:
        assert gpu.enabled() and copy is None
        assert err.count("searching on the CPU") == 1 and "HNSW" in err
        assert np.array_equal(got[1], want[1]) and np.array_equal(got[0], want[0])
    else:  # the real index_cpu_to_gpu copy (of a layered index's base), made once and searched
        assert gpu.enabled() and copy is not None and copy is not base_of(index) and err == ""
        assert gpu.gpu_copy(base_of(index)) is copy and copy.ntotal == base_of(index).ntotal
        assert_same_neighbours(got, want, atol=GPU_ATOL)


class FakeGpu:
    """Stands in for faiss's copier: a CPU clone, counting copies."""

    def __init__(self, fail=False):
        self.copies, self.fail = [], fail

    def __call__(self, index):
        if self.fail:
            raise RuntimeError("CUDA error: out of memory")
        copy = faiss.clone_index(index)
        self.copies.append(copy)
        return copy


@pytest.fixture
def fake_gpu(monkeypatch):
    fake = FakeGpu()
    monkeypatch.setattr(gpu, "num_gpus", lambda: 1)
    monkeypatch.setattr(gpu, "copy_to_gpu", fake)
    monkeypatch.delenv(gpu.ENV, raising=False)
    return fake


def test_a_gpu_copy_is_made_once_and_searched(fake_gpu):
    index = index_of("IVF32,Flat")
    want = files.search(index, QUERIES, 5)
    for _ in range(3):
        got = gpu.search(index, QUERIES, 5)
        assert np.array_equal(got[1], want[1])
    assert len(fake_gpu.copies) == 1 and search_parameter(fake_gpu.copies[0]) == ("nprobe", 8)
    assert gpu.gpu_copy(index) is fake_gpu.copies[0]
    index.add_with_ids(unit(5, 16, seed=7), np.arange(5, dtype=np.int64) + 10**6)  # the copy is stale now
    got = gpu.search(index, unit(5, 16, seed=7), 1)
    assert len(fake_gpu.copies) == 2 and list(got[1][:, 0]) == list(range(10**6, 10**6 + 5))


@pytest.mark.parametrize("key", ["IDMap2,Flat", "IVF32,Flat"])
def test_a_layered_index_searches_its_base_on_the_gpu_copy_and_its_appended_vectors_beside_it(key, fake_gpu,
                                                                                             capsys):
    index = index_of(key, layered=True)
    queries = np.concatenate([QUERIES, VECTORS[BASE:BASE + 10]])  # the last ten find an appended vector first
    want = files.search(index, queries, 5)
    got = gpu.search(index, queries, 5)
    assert len(fake_gpu.copies) == 1 and fake_gpu.copies[0].ntotal == BASE  # the base went to the "GPU"
    copy_searched = []
    search_copy = fake_gpu.copies[0].search
    fake_gpu.copies[0].search = lambda *a, **kw: copy_searched.append(a) or search_copy(*a, **kw)
    again = gpu.search(index, queries, 5)
    assert len(copy_searched) == 1 and len(fake_gpu.copies) == 1  # the copy is reused and searched
    for answer in (got, again):
        assert np.array_equal(answer[1], want[1]) and np.array_equal(answer[0], want[0])  # a clone: the same sums
    assert list(got[1][len(QUERIES):, 0]) == list(IDS[BASE:BASE + 10])
    assert capsys.readouterr().err == ""  # nothing refused


def test_more_neighbours_than_a_gpu_returns_are_searched_on_the_cpu(fake_gpu):
    index = index_of("IDMap2,Flat")
    gpu.search(index, QUERIES, 5)
    searched = []
    fake_gpu.copies[0].search = lambda *a, **kw: searched.append(a)  # the copy must not be asked
    got = gpu.search(index, QUERIES, gpu.GPU_MAX_K + 1)
    assert searched == [] and got[1].shape == (len(QUERIES), gpu.GPU_MAX_K + 1)


def test_switched_off_by_the_environment(fake_gpu, monkeypatch):
    monkeypatch.setenv(gpu.ENV, "0")
    index = index_of("IDMap2,Flat")
    gpu.search(index, QUERIES, 3)
    assert fake_gpu.copies == [] and not gpu.enabled()


def test_hnsw_stays_on_the_cpu_with_one_notice(fake_gpu, capsys):
    index = index_of("IDMap2,HNSW16")
    for _ in range(2):
        got = gpu.search(index, QUERIES, 4)
    assert np.array_equal(got[1], files.search(index, QUERIES, 4)[1])
    assert fake_gpu.copies == []
    err = capsys.readouterr().err
    assert err.count("searching on the CPU") == 1 and "HNSW" in err


def test_a_failed_copy_falls_back_with_one_notice(monkeypatch, capsys):
    monkeypatch.setattr(gpu, "num_gpus", lambda: 1)
    monkeypatch.setattr(gpu, "copy_to_gpu", FakeGpu(fail=True))
    index = index_of("IDMap2,Flat")
    for _ in range(3):
        got = gpu.search(index, QUERIES, 4)
    assert np.array_equal(got[1], files.search(index, QUERIES, 4)[1])
    err = capsys.readouterr().err
    assert err.count("searching on the CPU") == 1 and "out of memory" in err


def test_index_view_searches_through_the_gpu_path(fake_gpu):
    index = index_of("IDMap2,Flat")
    view = LoadedIndex(1, "x", index, IDS, IDS % 5, {g: str(g) for g in range(5)}, {None: 0.5}, Whitening("identity"))
    sims, ids = view.search(QUERIES, 3)
    assert len(fake_gpu.copies) == 1
    assert np.array_equal(ids, files.search(index, QUERIES, 3)[1])
