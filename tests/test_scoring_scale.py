"""Per-generator scoring over a whole batch: the same scores as a loop over generators, and no
generator that could be accepted is left out, however far down the hits its vectors are."""

from __future__ import annotations

import numpy as np
import pytest

from attrib.index import choice
from attrib.index.whitening import Whitening
from attrib.scoring import calibration, candidates
from attrib.scoring.calibration import TOP_M, aggregate, generator_scores, top_hits
from attrib.scoring.candidates import EXACT_SEARCH_LIMIT, FIRST_K
from attrib.scoring.decision import decide, rank, score_queries
from attrib.scoring.open_set import DecisionModel
from attrib.upkeep.freshness import LoadedIndex

from comparisons import assert_same_answers


def unit(x):
    x = np.asarray(x, dtype=np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def view_of(vectors, gens, thresholds, ids=None, key="IDMap2,Flat"):
    ids = np.arange(len(vectors), dtype=np.int64) * 3 + 7 if ids is None else ids
    index = choice.build_index(ids, vectors, vectors.shape[1], key)
    names = {int(g): f"gen{g}" for g in np.unique(gens)}
    return LoadedIndex(1, "test", index, ids, np.asarray(gens, np.int64), names, thresholds, Whitening("identity"))


def loop_scores(sims, gens):
    """The reference: one generator at a time, each scored by :func:`aggregate` of its hits."""
    return {int(g): aggregate(sims[gens == g]) for g in np.unique(gens[gens >= 0])}


def loop_query_scores(view, query):
    """The reference for an index searched whole: each generator's aggregate and first TOP_M hits."""
    sims, ids = view.search(query[None], view.index.ntotal)
    gens = view.generators_of(ids[0])
    hits = {int(g): [(int(i), float(s)) for i, s in zip(ids[0][gens == g][:TOP_M], sims[0][gens == g][:TOP_M])]
            for g in np.unique(gens)}
    return loop_scores(sims[0], gens), hits


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_batched_scores_equal_the_loop_on_random_hits(seed):
    rng = np.random.default_rng(seed)
    sims = np.sort(rng.uniform(-1, 1, size=(25, 300)).astype(np.float32), axis=1)[:, ::-1]
    gens = rng.integers(0, 40, size=sims.shape) * 5 + 2
    gens[rng.random(sims.shape) < 0.1] = -1  # no hit
    top = top_hits(sims, gens)
    fast = top_hits(sims, gens, best_first=True)  # rows come best first, as searches return them
    assert all(np.array_equal(getattr(top, f), getattr(fast, f)) for f in ("rows", "generators", "counts", "members"))
    for row in range(len(sims)):
        mine = top.rows == row
        got = dict(zip(top.generators[mine].tolist(), top.scores[mine].tolist()))
        want = loop_scores(sims[row], gens[row])
        assert got.keys() == want.keys()
        assert np.allclose([got[g] for g in want], list(want.values()), rtol=0, atol=1e-6)
        # the kept hits are each generator's TOP_M best, best first
        for group in np.flatnonzero(mine)[:5]:
            kept = top.members[top.starts[group]:top.starts[group + 1]]
            assert np.all(gens.ravel()[kept] == top.generators[group]) and len(kept) == top.counts[group] <= TOP_M
            assert np.all(np.diff(sims.ravel()[kept]) <= 0)
    shuffled = rng.permutation(sims.shape[1])  # hits in any order score the same
    assert generator_scores(sims[0, shuffled], gens[0, shuffled]) == pytest.approx(loop_scores(sims[0], gens[0]))


def test_exact_galleries_score_as_the_loop_did():
    rng = np.random.default_rng(4)
    centres = unit(rng.normal(size=(12, 16)))
    gens = rng.integers(0, 12, 3000)
    gens[:12] = np.arange(12)
    gens[gens == 5] = 7  # generator 5 keeps one vector: fewer than TOP_M
    gens[5] = 5
    vectors = unit(centres[gens] + 0.3 * rng.normal(size=(3000, 16)))
    view = view_of(vectors, gens, {None: 0.6, 3: 0.9})
    queries = unit(centres[rng.integers(0, 12, 40)] + 0.3 * rng.normal(size=(40, 16)))
    batch = score_queries(view, queries)
    for query, got in zip(queries, batch):
        scores, hits = loop_query_scores(view, query)
        assert got.scores.keys() == scores.keys() == set(range(12))
        assert np.allclose([got.scores[g] for g in scores], list(scores.values()), rtol=0, atol=1e-6)
        assert {g: [i for i, _ in h] for g, h in got.hits.items()} == {g: [i for i, _ in h] for g, h in hits.items()}
    model, decisions = DecisionModel(), set()
    for got, query in zip(batch, queries):
        scores, _ = loop_query_scores(view, query)
        mine, theirs = (decide([c for _, c in rank(s, view.threshold, model, view.generator_names, {})], model)
                        for s in (got.scores, scores))
        # the batch and the loop sum in other orders (FAISS takes BLAS from 20 queries): scores up to 8e-8
        # apart, and one printed margin lies 1.3e-6 from where its 3rd decimal turns
        assert_same_answers(mine, theirs)
        decisions.add(mine["decision_level"])
    assert decisions == {"generator", "unknown"}


def around(query, similarity, n, rng):
    """``n`` unit vectors at the given similarities (a number or an array) to the unit ``query``."""
    other = rng.normal(size=(n, len(query)))
    other -= np.outer(other @ query, query)
    other /= np.linalg.norm(other, axis=1, keepdims=True)
    s = np.broadcast_to(similarity, (n,))[:, None]
    return unit(s * query + np.sqrt(1 - s**2) * other)


@pytest.mark.parametrize("crowd,max_k,own,key", [
    (1500, candidates.MAX_K, candidates.OWN_VECTORS, "IDMap2,Flat"),  # found by growing k
    (1500, 512, candidates.OWN_VECTORS, "IDMap2,Flat"),  # scored on its vectors read back
    (1500, 512, 0, "IDMap2,Flat"),  # scored by a search restricted to its vectors
    (1500, 512, 0, "IVF16,Flat"),
    (1500, 512, candidates.OWN_VECTORS, "IVF16,Flat"),
    (1500, 512, 0, "IDMap2,HNSW16"),
])
def test_a_generator_beyond_the_first_hits_is_found_and_accepted(crowd, max_k, own, key, monkeypatch):
    """``crowd`` generators each have one vector closer to the query than any of the true
    generator's (and two far ones, so they score low): the true generator's vectors come after
    ``crowd`` hits."""
    rng = np.random.default_rng(5)
    query = unit(rng.normal(size=16))
    near = around(query, rng.uniform(0.95, 0.99, crowd), crowd, rng)
    far = around(query, rng.uniform(-0.3, 0.3, 2 * crowd), 2 * crowd, rng)
    true = around(query, np.array([0.90, 0.88, 0.86, 0.80, 0.7]), 5, rng)
    vectors = np.concatenate([near, far, true])
    gens = np.concatenate([np.arange(crowd), np.arange(2 * crowd) % crowd, np.full(5, crowd)])
    monkeypatch.setattr(candidates, "OWN_VECTORS", own)
    monkeypatch.setattr(candidates, "MAX_K", max_k)
    view = view_of(vectors, gens, {None: 0.99, crowd: 0.8}, key=key)
    assert view.index.ntotal > EXACT_SEARCH_LIMIT
    _, first = view.search(query[None], FIRST_K)
    assert crowd not in set(view.generators_of(first[0]).tolist())  # outside the first hits
    got = score_queries(view, query[None])[0]
    assert got.scores[crowd] == pytest.approx((0.90 + 0.88 + 0.86) / 3, abs=1e-5)
    assert [i for i, _ in got.hits[crowd]] == list(view.ids[3 * crowd:3 * crowd + 3])
    model = DecisionModel()
    answer = decide([c for _, c in rank(got.scores, view.threshold, model, view.generator_names, {})], model)
    assert answer["decision"] == f"gen{crowd}" and answer["decision_level"] == "generator"


@pytest.mark.parametrize("seed", [0, 1])
def test_every_generator_that_could_be_accepted_is_scored_exactly(seed):
    """On random clustered galleries larger than exact search covers, against brute force."""
    rng = np.random.default_rng(seed)
    n_gen, dim = 150, 12
    centres = unit(rng.normal(size=(n_gen, dim)))
    gens = rng.integers(0, n_gen, 6000)
    vectors = unit(centres[gens] + 0.5 * rng.normal(size=(6000, dim)))
    thresholds = {None: 0.7, **{int(g): float(t) for g, t in zip(range(n_gen), rng.uniform(0.55, 0.95, n_gen))}}
    view = view_of(vectors, gens, thresholds)
    queries = unit(centres[rng.integers(0, n_gen, 30)] + 0.5 * rng.normal(size=(30, dim)))
    exact = calibration.generator_score_matrix(queries @ vectors.T, gens, np.arange(n_gen))
    for q, got in enumerate(score_queries(view, queries)):
        for g in range(n_gen):
            floor = min(thresholds[g], thresholds[None])
            m = min(TOP_M, int((gens == g).sum()))
            if exact[q, g] >= floor:
                assert got.scores[g] == pytest.approx(exact[q, g], abs=1e-5) and len(got.hits[g]) == m
            elif g in got.scores:  # scored only from its best vectors
                assert got.scores[g] == pytest.approx(exact[q, g], abs=1e-5) and len(got.hits[g]) == m
        best_two = np.argsort(-exact[q])[:2]  # what decide() reads: the top two, exactly
        assert sorted(got.scores, key=lambda g: -got.scores[g])[:2] == list(best_two)
        assert [got.scores[g] for g in best_two] == pytest.approx(exact[q, best_two], abs=1e-5)
        assert len(got.scores) < n_gen  # the far generators were never scored
