"""Enrollment whose cost follows the change: chunked commits that a re-run completes, the bulk API,
index deltas appended and folded, bounded and staleness-aware refits, memory-mapped reads."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from attrib.errors import EmptyGallery
from attrib.gallery import Gallery, cohort_version
from attrib.images import BATCH, ImageRecord
from attrib.scoring import whitening as whitening_module
from attrib.scoring.calibration import stratified
from attrib.index import choice, files, tuning
from attrib.scoring.decision import decide, rank, score_queries
from attrib.scoring.open_set import DecisionModel
from attrib.storage.fast_reader import FastReader
from attrib.upkeep import refit
from attrib.upkeep.freshness import fit_problems, load_index_view

from comparisons import assert_same_neighbours
from gallery_helpers import bound, enrolled_gallery, run_in_process


def check(root: Path):
    with Gallery(root, read_only=True) as g:
        return g.check()


def answers(root: Path, queries) -> list[dict]:
    with Gallery(root, read_only=True) as g:
        return [r.to_json() for r in g.identify(queries, bound())]


def sidecar(root: Path) -> dict:
    return json.loads((root / "index" / "1.json").read_text())


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return enrolled_gallery(tmp_path_factory.mktemp("scale"), 8)


@pytest.fixture
def filled(template, tmp_path):
    shutil.copytree(template, tmp_path / "g")
    return tmp_path / "g"


@pytest.fixture
def large(monkeypatch):
    """Galleries this small count as large: refitted only when changes exceed the share, deltas kept."""
    monkeypatch.setattr(whitening_module, "REFIT_EVERY_CHANGE_BELOW", 10)
    monkeypatch.setattr(whitening_module, "REFIT_SHARE", 0.5)
    monkeypatch.setattr(files, "FOLD_MIN", 0)
    monkeypatch.setattr(files, "FOLD_SHARE", 10.0)


KILLED_AFTER_FIRST_CHUNK = """
import os, signal
from pathlib import Path
from gallery_helpers import bound
from attrib.errors import EmptyGallery
from attrib.gallery import Gallery, cohort_version
from attrib.storage import bulk
store_chunk = bulk.store_chunk
def store_then_die(*args, **kwargs):
    stored = store_chunk(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)
bulk.store_chunk = store_then_die
gallery, generator, *paths = sys.argv[1:]
with Gallery(gallery) as g:
    g.enroll(generator, [Path(p) for p in paths], bound())
"""


def test_an_enroll_killed_after_its_first_chunk_keeps_it_and_a_rerun_completes(filled, make_set):
    images = make_set("gray", BATCH + 5)
    victim = run_in_process(KILLED_AFTER_FIRST_CHUNK, str(filled), "gray", *map(str, images))
    victim.wait(timeout=300)
    assert victim.returncode == -9, victim.stderr.read()
    with Gallery(filled, read_only=True) as g:
        counts = {info.name: info.samples for info in g.generators()}
    assert counts["gray"] == BATCH  # the whole first chunk, nothing of the second
    report = check(filled)
    assert not any("no vector" in f.problem for f in report.findings)
    assert all(f.repair for f in report.findings)  # only stale fits and index, which are rebuilt
    with Gallery(filled) as g:
        again = g.enroll("gray", images, bound())
    assert len(again.added) == 5 and len(again.skipped) == BATCH and not again.failed
    assert check(filled).consistent
    assert {r["nearest"] for r in answers(filled, make_set("gray", 2, seed=4))} == {"gray"}


def test_a_new_generator_is_calibrated_and_indexed_incrementally(filled, make_set, large, store_of):
    base = sidecar(filled)
    store = store_of(filled)
    with Gallery(filled) as g:
        before = store.whitening(1).digest
        report = g.enroll("gray", make_set("gray", 6), bound())
        assert len(report.added) == 6 and "recalibrated 1 generator" in report.calibration
        assert store.whitening(1).digest == before  # a new generator, 6 of the 30 vectors fitted on: within 50 %
        assert {info.name: info.threshold is not None for info in g.generators()}["gray"]
    after = sidecar(filled)
    assert after["index_file"] == base["index_file"] and len(after["deltas"]) == 1
    assert after["deltas"][0]["count"] == 6 and after["count"] == base["count"] + 6
    assert check(filled).consistent  # the full check: every id and label against the database
    assert [r["nearest"] for r in answers(filled, make_set("gray", 3, seed=8))] == ["gray"] * 3


def test_changes_past_the_share_refit_the_whitening_and_rebuild_the_index(filled, make_set, large, store_of):
    store = store_of(filled)
    before = store.whitening(1).digest
    with Gallery(filled) as g:
        g.enroll("gray", make_set("gray", 30), bound())  # a new generator, 30 of the 54 vectors fitted on: over 50 %
    assert store.whitening(1).digest != before
    assert store.whitening(1).fitted_count == 54
    assert sidecar(filled)["deltas"] == [] and check(filled).consistent


def test_a_stale_index_is_extended_by_the_next_reader(filled, make_set, large, monkeypatch):
    with monkeypatch.context() as patch:
        patch.setattr(files, "append_delta", lambda *a, **k: (_ for _ in ()).throw(SystemExit("killed")))
        with pytest.raises(SystemExit), Gallery(filled) as g:
            g.enroll("gray", make_set("gray", 2), bound())
    assert any("index is out of date" in f.problem for f in check(filled).findings)
    notes = []
    with Gallery(filled, read_only=True, notify=notes.append) as g:
        assert [r.to_json()["nearest"] for r in g.identify(make_set("gray", 2, seed=3), bound())] == ["gray"] * 2
    assert any("added 2 stored vectors to it" in n for n in notes)
    assert len(sidecar(filled)["deltas"]) == 1 and check(filled).consistent


def test_deltas_are_folded_into_a_new_base(filled, make_set, large, monkeypatch):
    monkeypatch.setattr(files, "MAX_DELTAS", 2)
    with Gallery(filled) as g:
        g.enroll("gray", make_set("gray", 1), bound())
        assert len(sidecar(filled)["deltas"]) == 1
        g.enroll("gray", make_set("gray", 1, seed=1), bound())
    folded = sidecar(filled)
    assert folded["deltas"] == [] and folded["base_count"] == folded["count"] == 26
    assert files.stray_files(filled / "index", [filled / "index" / "1.json"]) == []
    assert check(filled).consistent


def records(n: int, prefix: str) -> list[ImageRecord]:
    return [ImageRecord(Path(f"/synthetic/{prefix}/{i}.png"), hashlib.sha256(f"{prefix}{i}".encode()).hexdigest(),
                        "PNG", 100, 8, 8) for i in range(n)]


def clustered(n: int, centre: int, dim: int = 6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    vectors = np.eye(dim, dtype=np.float32)[centre] * 3 + rng.normal(scale=0.3, size=(n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_enroll_embedded_stores_in_chunks_and_reports_exactly(tmp_path):
    extractor = bound()
    with Gallery(tmp_path / "g") as g:
        for k in range(3):
            report = g.enroll_embedded(f"gen-{k}", records(25, f"g{k}"), clustered(25, k), extractor, chunk=10,
                                       bring_up_to_date=False)
            assert len(report.added) == 25 and not report.skipped
        again = g.enroll_embedded("gen-1", records(30, "g1"), clustered(30, 1), extractor, chunk=10)
        assert len(again.added) == 5 and len(again.skipped) == 25
        taken = g.enroll_embedded("gen-2", records(3, "g1"), clustered(3, 1), extractor)
        assert not taken.added and len(taken.failed) == 3 and "already enrolled under generator 'gen-1'" in \
            taken.failed[0][1]
        assert len(g.audit_log(action="enroll")) == 3 * 3 + 1
    assert check(tmp_path / "g").consistent


def test_a_bulk_load_stores_the_cohort_then_calibrates_once(tmp_path, store_of):
    extractor = bound()
    with Gallery(tmp_path / "g") as g:
        with pytest.raises(EmptyGallery, match="no enrolled generators"):
            g.ensure_cohort(extractor)
        for k in range(3):
            g.enroll_embedded(f"gen-{k}", records(20, f"g{k}"), clustered(20, k), extractor, bring_up_to_date=False)
        g.ensure_cohort(extractor)
        g.calibrate()
    store = store_of(tmp_path / "g")
    extractor_id = store.extractor_id(extractor.identity.key)
    assert store.cohort(extractor_id, cohort_version()) is not None
    assert store.calibration(extractor_id).model is not None  # calibrated on the cohort: confidence is too
    assert check(tmp_path / "g").consistent


def test_layered_index_search_equals_exact_search():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(300, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = np.arange(10, 310)
    layered = files.LayeredIndex(choice.build_index(ids[:200], vectors[:200], 8, "IDMap2,Flat"),
                                       ids[200:], vectors[200:])
    exact = vectors[:7] @ vectors.T
    best = np.argsort(-exact, axis=1, kind="stable")[:, :12]
    # FAISS's inner products and numpy's matrix product sum in other orders
    assert_same_neighbours(files.search(layered, vectors[:7], 12),
                           (np.take_along_axis(exact, best, axis=1), ids[best]))
    assert np.allclose(files.reconstruct(layered, np.array([12, 250])), vectors[[2, 240]])


def test_a_memory_mapped_generation_with_deltas_reads_back(tmp_path):
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(120, 8)).astype(np.float32)
    ids, gens = np.arange(1, 121), np.arange(120) % 4
    path = tmp_path / "index" / "1.json"
    state = files.IndexState(100, 100, int(ids[:100].sum()), 8, "IDMap2,Flat", revision=100)
    files.write_index(choice.build_index(ids[:100], vectors[:100], 8), path, state, ids[:100], gens[:100])
    assert files.append_delta(path, ids[100:], gens[100:], vectors[100:], revision=120)
    assert not files.append_delta(path, ids[:5], gens[:5], vectors[:5], revision=125)  # ids not after it
    for mmap in (False, True):
        cached = files.read_cache(path, mmap=mmap)
        assert cached.index.ntotal == 120 and cached.state.revision == 120
        assert np.array_equal(cached.labels, np.stack([ids, gens]))
    delta = next(path.parent.glob("*.delta.npz"))
    delta.write_bytes(delta.read_bytes()[:-40])
    assert files.read_cache(path) is None


def test_stratified_sample_caps_each_generator_and_the_total():
    labels = np.repeat(np.arange(4), [1000, 3, 50, 400])
    keep = stratified(labels, 100)
    assert len(keep) <= 100 and np.array_equal(np.sort(keep), keep)
    counts = np.bincount(labels[keep], minlength=4)
    assert counts[1] == 3 and counts[0] == counts[3] and counts[2] <= counts[0]
    assert np.bincount(labels[stratified(labels, 10_000, per_generator=20)]).tolist() == [20, 3, 20, 20]


def test_a_forced_refit_keeps_the_graph_and_whitens_every_vector_anew(filled, make_set, large, monkeypatch,
                                                                     store_of):
    monkeypatch.setattr(choice, "FLAT_LIMIT", 10)  # an HNSW graph from 10 vectors on
    store = store_of(filled)

    def forced():
        with store.lock.held():
            return refit.bring_up_to_date(store, 1, store.cohort(1, cohort_version()), force=True)

    assert not forced().reused  # the exact index of before: built afresh as a graph
    with Gallery(filled) as g:
        g.enroll("gray", make_set("gray", 3), bound())  # appended to the graph as a delta
    done = forced()
    assert done.refitted and done.reused and done.indexed == 27
    ids, _, matrix = store.vectors(1)
    whitened = store.whitening(1).apply(matrix)
    with Gallery(filled) as g:
        view = g.open_index(bound())
        assert "HNSW" in sidecar(filled)["key"] and sidecar(filled)["deltas"] == []
        assert np.allclose(files.reconstruct(view.index, ids), whitened, atol=1e-6)
    assert check(filled).consistent


def decisions(root: Path, queries: np.ndarray) -> list[str]:
    """The decision (a generator's name, ``unknown``, ...) for each raw query vector."""
    with Gallery(root, read_only=True) as g:
        view = g.open_index(bound())
        model = DecisionModel.from_dict(view.model)
        return [decide([c for _, c in rank(q.scores, view.threshold, model, view.generator_names, view.families)],
                       model)["decision"] for q in score_queries(view, queries)]


def thresholds(root: Path) -> dict[str, float]:
    with Gallery(root, read_only=True) as g:
        return {info.name: info.threshold for info in g.generators()}


def test_a_new_generator_kept_out_of_the_fit_decides_as_a_full_refit_would(tmp_path, monkeypatch, store_of):
    monkeypatch.setattr(whitening_module, "REFIT_EVERY_CHANGE_BELOW", 1_000)  # 6 x 500 counts as large
    extractor, root = bound(), tmp_path / "g"
    with Gallery(root) as g:
        for k in range(6):
            g.enroll_embedded(f"gen-{k}", records(500, f"g{k}"), clustered(500, k, seed=k), extractor,
                              bring_up_to_date=False)
        g.ensure_cohort(extractor)
        g.calibrate()
        fitted = store_of(root).whitening(1).digest
        report = g.enroll_embedded("new", records(10, "new"), -clustered(10, 0, seed=9), extractor)
        assert "recalibrated 1 generator" in report.calibration  # 10 of the 1,210 vectors fitted on: kept
    assert store_of(root).whitening(1).digest == fitted
    shutil.copytree(root, tmp_path / "refitted")
    with Gallery(tmp_path / "refitted") as g:
        g.calibrate()
    assert store_of(tmp_path / "refitted").whitening(1).digest != fitted
    queries = np.concatenate([clustered(40, k, seed=100 + k) for k in range(6)]
                             + [-clustered(40, 0, seed=200), -clustered(40, 1, seed=201)])  # the new one; none
    kept, full = decisions(root, queries), decisions(tmp_path / "refitted", queries)
    agree = np.mean(np.array(kept) == np.array(full))
    assert agree >= 0.99, list(zip(kept, full))
    assert kept[240:280].count("new") >= 35 and kept[280:].count("new") == 0
    before, after = thresholds(root), thresholds(tmp_path / "refitted")  # cosines, about 0.99 here
    assert max(abs(before[name] - after[name]) for name in before) <= 0.005, (before, after)


def test_both_readers_keep_a_whitening_the_vectors_added_since_leave_within_the_share(filled, make_set, large,
                                                                                     store_of):
    fitted = store_of(filled).whitening(1)
    with Gallery(filled) as g:
        g.enroll("red", make_set("red", 13, seed=5), bound())  # 13 more of 8: taken in full, 13 of 37 (< 50 %)
    store = store_of(filled)
    assert store.whitening(1).digest == fitted.digest
    red = {name: gid for gid, name in store.generator_names().items()}["red"]
    assert store.added_since(1, fitted.fitted_max_id) == {red: 13}
    assert whitening_module.refit_reason(fitted, 13) is not None  # the bound alone would refit
    assert fit_problems(store, 1) == []
    with FastReader.open(filled) as reader:
        assert reader.added_since(1, fitted.fitted_max_id) == {red: 13}
        assert load_index_view(reader, bound().identity.key) is not None


@pytest.mark.parametrize("key", ["IDMap2,Flat", "IDMap2,HNSW32"])
def test_a_search_among_some_vectors_reaches_the_deltas(key):
    rng = np.random.default_rng(2)
    vectors = rng.normal(size=(400, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = np.arange(10, 410)
    layered = files.LayeredIndex(choice.build_index(ids[:300], vectors[:300], 8, key), ids[300:], vectors[300:])
    among = ids[::3]  # in the base and in the delta
    exact = vectors[:6] @ vectors[::3].T
    best = np.argsort(-exact, axis=1, kind="stable")[:, :5]
    # FAISS's inner products and numpy's matrix product sum in other orders
    assert_same_neighbours(tuning.search_among(layered, vectors[:6], 5, among, everywhere=True),
                           (np.take_along_axis(exact, best, axis=1), among[best]))
    assert np.all(tuning.search_among(layered, vectors[:2], 5, ids[[0, 350]])[1][:, 2:] == -1)
