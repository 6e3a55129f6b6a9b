"""Every enrolled generator that could be the answer, scored against a batch of queries.

:func:`score_queries` searches a loaded index once for the whole batch and scores generators
with numpy (one sort of all hits, :func:`attrib.scoring.calibration.top_hits`), so its cost per
query does not grow with the number of generators; it then makes the candidate set complete
(see its docstring) instead of scoring only the generators that happen to be among the hits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from . import calibration

if TYPE_CHECKING:
    from .whitening import Whitening

EXACT_SEARCH_LIMIT = 4096  # indexes this small are searched whole
FIRST_K = 256  # hits asked for first, whatever the number of generators
MAX_K = 4096  # hits asked for at most; a generator still open then is searched for on its own
OWN_VECTORS = 2048  # a generator with at most this many vectors is rescored by reading them back


class SearchView(Protocol):
    """What scoring reads of one extractor's loaded index (see :class:`attrib.storage.base.IndexView`);
    an optional ``cache`` dict keeps what scoring derives from it."""

    index: Any  # a FAISS index
    ids: np.ndarray
    generator_ids: np.ndarray
    whitening: Whitening

    def threshold(self, generator_id: int | None) -> float: ...

    def generators_of(self, vector_ids: np.ndarray) -> np.ndarray: ...

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]: ...

    def search_among(self, queries: np.ndarray, k: int, vector_ids: np.ndarray, everywhere: bool = False
                     ) -> tuple[np.ndarray, np.ndarray]: ...

    def generator_vectors(self, generator_id: int) -> np.ndarray: ...


@dataclass
class QueryScores:
    """One query against one extractor's index: each generator's score and its nearest hits."""

    scores: dict[int, float]
    hits: dict[int, list[tuple[int, float]]]  # generator id -> [(vector id, similarity)], best first


def score_queries(view: SearchView, queries: np.ndarray) -> list[QueryScores]:
    """Per-generator scores (and the hits behind them) for each query vector against a loaded
    index (:class:`attrib.upkeep.freshness.LoadedIndex`), for the whole batch at once.

    A generator's score is the mean similarity of its ``TOP_M`` nearest vectors (all of them when
    it has fewer: ``m`` below). An index of at most EXACT_SEARCH_LIMIT vectors is searched whole,
    so every generator is scored exactly. A larger one is searched for FIRST_K hits, however many
    generators there are, and the candidates are then made complete. After a search for k hits:

    - a generator with ``m`` hits is scored exactly (its best vectors are among the hits);
    - one with fewer than ``m`` scores at most ``(its hits + the k-th similarity for each one
      missing) / m``, and one with none at most the k-th similarity, which is below every exact score;
    - such a generator is *open* when that bound reaches its acceptance floor (the lower of its
      threshold and the global one: fusion ranks margins over the global threshold) or, seen with
      too few hits, the second-best exact score (it could change the top two that :func:`decide`
      reads);
    - a query with an open generator is searched again for twice the hits, up to MAX_K; then each
      generator still open is scored on its own vectors, batched over the queries that need it:
      read back from the index and compared (up to OWN_VECTORS of them), or a search restricted
      to them (a FAISS ``IDSelector``, at the index's tuned efSearch / nprobe).

    So every generator that could be accepted or reach the top two is scored from its best
    vectors. The others (seen with too few hits, or never seen) are left out: each is below its
    floor and below the top two, so neither acceptance nor the decision depends on them; listing
    them would cost time per generator. Approximate indexes (HNSW, IVF) find "the best vectors"
    at the recall they were tuned to (:mod:`attrib.index.tuning`).
    """
    x = np.ascontiguousarray(view.whitening.apply(queries), dtype=np.float32)
    ntotal = view.index.ntotal
    out: list[QueryScores | None] = [None] * len(x)
    table = _generator_table(view)
    k = ntotal if ntotal <= EXACT_SEARCH_LIMIT else min(FIRST_K, ntotal)
    pending = np.arange(len(x))
    reopen: dict[int, list[int]] = {}
    while len(pending):
        sims, ids = view.search(x[pending], k)
        top = calibration.top_hits(sims, view.generators_of(ids), best_first=True)
        bound = _kth_similarity(sims, ids)
        where, most = _bounds(top, bound, table)
        partial, unseen = _open(top, bound, table, where, most)
        still = unseen | (np.bincount(top.rows, weights=partial, minlength=len(pending)) > 0)
        grow = still & (ids[:, -1] >= 0) & (k < min(MAX_K, ntotal))
        rows = _Rows(top, most, where, table, sims, ids)
        queries_of = pending.tolist()
        for row in np.flatnonzero(~grow).tolist():
            out[queries_of[row]] = rows.scores(row)
        for row in np.flatnonzero(~grow & still).tolist():  # scored from the hits, some generators still open
            query = queries_of[row]
            lo, hi = rows.edges[row], rows.edges[row + 1]
            doubtful = top.generators[lo:hi][partial[lo:hi]].tolist()
            if unseen[row]:
                seen = set(top.generators[lo:hi].tolist())
                doubtful += [g for g in table.gids[table.floors <= bound[row]].tolist() if g not in seen]
            for gid in doubtful:
                reopen.setdefault(gid, []).append(query)
        pending, k = pending[grow], min(2 * k, ntotal)
    scored = [scores for scores in out if scores is not None]
    assert len(scored) == len(out), "every query is scored once its search stops growing"
    for gid, open_queries in reopen.items():
        _rescore(view, table, gid, x, open_queries, scored)
    return scored


@dataclass
class _GeneratorTable:
    """Per enrolled generator of a view (sorted ids): min(TOP_M, its vectors) and its acceptance floor."""

    gids: np.ndarray
    m: np.ndarray
    floors: np.ndarray
    sorted_floors: np.ndarray
    members: np.ndarray  # positions in view.ids, grouped by generator (in gids order)
    starts: np.ndarray  # [generators + 1] offsets into members

    def vector_ids(self, view: SearchView, gid: int) -> np.ndarray:
        i = int(np.searchsorted(self.gids, gid))
        return view.ids[self.members[self.starts[i]:self.starts[i + 1]]]


def _generator_table(view: SearchView) -> _GeneratorTable:
    cache = getattr(view, "cache", None)
    if cache is not None and "generators" in cache:
        return cache["generators"]
    generator_ids = np.asarray(view.generator_ids, dtype=np.int64)
    gids, counts = np.unique(generator_ids, return_counts=True)
    floors = np.array([min(view.threshold(int(g)), view.threshold(None)) for g in gids], dtype=np.float64)
    table = _GeneratorTable(gids, np.minimum(counts, calibration.TOP_M), floors, np.sort(floors),
                            np.argsort(generator_ids, kind="stable"), np.concatenate([[0], np.cumsum(counts)]))
    if cache is not None:
        cache["generators"] = table
    return table


def _kth_similarity(sims: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Each row's last similarity found: no vector the search did not return is more similar."""
    found = (ids >= 0).sum(axis=1)
    return np.where(found > 0, sims[np.arange(len(sims)), np.maximum(found - 1, 0)], -np.inf)


def _bounds(top: calibration.TopHits, bound: np.ndarray, table: _GeneratorTable) -> tuple[np.ndarray, np.ndarray]:
    """Per group: where its generator is in the table, and the most its score can be (exact with m hits)."""
    where = np.searchsorted(table.gids, top.generators)
    m = table.m[where]
    missing = np.where(top.counts < m, (m - top.counts) * bound[top.rows], 0.0)
    return where, (top.sums + missing) / m


def _open(top: calibration.TopHits, bound: np.ndarray, table: _GeneratorTable, where: np.ndarray,
          most: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per group: seen with too few hits and still open; per query: a generator never seen still open."""
    n = len(bound)
    short = top.counts < table.m[where]
    exact = np.where(short, -np.inf, most)
    order = np.lexsort((-exact, top.rows))  # each query's exact scores, best first
    second = np.searchsorted(top.rows[order], np.arange(n)) + 1
    has_second = second < len(order)
    has_second[has_second] &= top.rows[order[second[has_second]]] == np.arange(n)[has_second]
    runner_up = np.full(n, -np.inf)
    runner_up[has_second] = exact[order[second[has_second]]]
    partial = short & ((most >= table.floors[where]) | (most >= runner_up[top.rows]))
    reachable = np.searchsorted(table.sorted_floors, bound, side="right")
    seen = np.bincount(top.rows, weights=table.floors[where] <= bound[top.rows], minlength=n)
    return partial, reachable > seen


class _Rows:
    """One search round's exactly scored groups as Python lists, cut by query."""

    def __init__(self, top: calibration.TopHits, most: np.ndarray, where: np.ndarray, table: _GeneratorTable,
                 sims: np.ndarray, ids: np.ndarray):
        self.edges = np.searchsorted(top.rows, np.arange(len(sims) + 1)).tolist()  # all groups, by query
        exact = np.flatnonzero(top.counts >= table.m[where])
        self.exact_edges = np.searchsorted(top.rows[exact], np.arange(len(sims) + 1)).tolist()
        self.generators, self.scores_of = top.generators[exact].tolist(), most[exact].tolist()
        counts = top.counts[exact]
        offsets = np.concatenate([[0], np.cumsum(counts)])
        members = top.members[np.repeat(top.starts[exact] - offsets[:-1], counts) + np.arange(offsets[-1])]
        self.pairs = list(zip(ids.ravel()[members].tolist(), sims.ravel()[members].tolist()))
        self.offsets = offsets.tolist()

    def scores(self, row: int) -> QueryScores:
        lo, hi = self.exact_edges[row], self.exact_edges[row + 1]
        gens, offsets, pairs = self.generators[lo:hi], self.offsets, self.pairs
        hits = {gid: pairs[offsets[i]:offsets[i + 1]] for gid, i in zip(gens, range(lo, hi))}
        return QueryScores(dict(zip(gens, self.scores_of[lo:hi])), hits)


def _rescore(view: SearchView, table: _GeneratorTable, gid: int, x: np.ndarray, rows: list[int],
             out: list[QueryScores]) -> None:
    """Score one generator for the queries ``rows`` on its own vectors: read back and compared with
    each query when it has at most OWN_VECTORS of them, else by a search restricted to them
    (``view.search_among``), repeated over the whole index for a query it found too few for."""
    m = int(table.m[np.searchsorted(table.gids, gid)])
    ids = table.vector_ids(view, gid)
    if len(ids) <= OWN_VECTORS:
        sims = x[rows] @ _own_vectors(view, gid).T
        best = np.argsort(-sims, axis=1, kind="stable")[:, :m]
        sims, ids = np.take_along_axis(sims, best, axis=1), ids[best]
    else:
        own = ids
        sims, ids = view.search_among(x[rows], m, own)
        short = (ids < 0).any(axis=1)
        if short.any():
            sims[short], ids[short] = view.search_among(x[rows][short], m, own, everywhere=True)
    for row, row_sims, row_ids in zip(rows, sims, ids):
        found = row_ids >= 0
        if found.any():
            out[row].scores[gid] = float(row_sims[found].astype(np.float64).mean())
            out[row].hits[gid] = list(zip(row_ids[found].tolist(), row_sims[found].tolist()))


def _own_vectors(view: SearchView, gid: int) -> np.ndarray:
    """One generator's searchable vectors (in vector id order), read back from the index once per view."""
    cache = getattr(view, "cache", None)
    if cache is not None and ("vectors", gid) in cache:
        return cache[("vectors", gid)]
    vectors = view.generator_vectors(gid)
    if cache is not None:
        cache[("vectors", gid)] = vectors
    return vectors
