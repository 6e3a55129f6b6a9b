"""The decision for one query: rank the enrolled generators, then answer a generator, a family,
``ambiguous`` or ``unknown`` with a confidence and the reason (see :mod:`.open_set`).

Also the result types that identification and verification return.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import calibration
from .open_set import WHICH_LEVEL, DecisionModel

EXACT_SEARCH_LIMIT = 4096
UNKNOWN = "unknown"


SCHEMA = 3  # of the JSON objects identify and verify print (3: evidence, provenance, decided_by)
GENERATOR, FAMILY, AMBIGUOUS, UNKNOWN = "generator", "family", "ambiguous", "unknown"


@dataclass
class Candidate:
    """One enrolled generator's standing for a query."""

    generator: str
    family: str | None
    score: float
    threshold: float
    confidence: float  # P(the query comes from this generator's source | its margin), see DecisionModel
    exemplars: list[dict] = field(default_factory=list)  # nearest enrolled samples: path, sha256, similarity
    per_extractor: dict[str, float] = field(default_factory=dict)  # fused: each extractor's own score

    @property
    def margin(self) -> float:
        return self.score - self.threshold

    @property
    def accepted(self) -> bool:
        return self.score >= self.threshold

    def to_json(self, explain: bool) -> dict:
        out = {"generator": self.generator, "family": self.family, "score": round(self.score, 6),
               "threshold": round(self.threshold, 6), "margin": round(self.margin, 6),
               "confidence": round(self.confidence, 4)}
        if explain:
            out["exemplars"] = self.exemplars
            if self.per_extractor:
                out["per_extractor"] = {k: round(v, 6) for k, v in self.per_extractor.items()}
        return out


@dataclass
class IdentificationResult:
    """One input's identification: a decision with its confidence and reason, or an error.

    ``decision`` is a generator name, a family name, ``ambiguous`` or ``unknown``
    (``decision_level`` says which); ``generator`` is set only when one generator was decided;
    ``nearest`` is always the best-scoring candidate.
    """

    path: str
    sha256: str | None = None
    decision: str | None = None
    decision_level: str | None = None
    generator: str | None = None
    family: str | None = None
    confidence: float | None = None
    reason: str = ""
    candidates: list[Candidate] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    extractor: str | None = None
    error: str | None = None
    evidence: list[dict] = field(default_factory=list)  # what the file says (attrib.evidence), always listed
    provenance: dict = field(default_factory=dict)  # summary, agreement, decided_by, forensic_decision, note

    @property
    def nearest(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None

    @property
    def score(self) -> float | None:
        return None if self.nearest is None else self.nearest.score

    @property
    def threshold(self) -> float | None:
        return None if self.nearest is None else self.nearest.threshold

    @property
    def accepted(self) -> bool:
        return self.decision_level not in (None, UNKNOWN)

    def to_json(self, top_k: int | None = None) -> dict:
        if self.error is not None:
            return {"schema": SCHEMA, "path": self.path, "error": self.error, "evidence": self.evidence}
        nearest = self.nearest
        shown = self.candidates[:top_k] if top_k else self.candidates
        return {
            "schema": SCHEMA,
            "path": self.path,
            "sha256": self.sha256,
            "decision": self.decision,
            "decision_level": self.decision_level,
            "generator": self.generator,
            "family": self.family,
            "nearest": nearest.generator,
            "score": round(nearest.score, 6),
            "threshold": round(nearest.threshold, 6),
            "margin": round(nearest.margin, 6),
            "confidence": None if self.confidence is None else round(self.confidence, 4),
            "reason": self.reason,
            "decided_by": self.provenance.get("decided_by", "forensic"),
            "candidates": [c.to_json(explain=False) for c in shown],
            "extractor": self.extractor,
            "evidence": self.evidence,
            "provenance": self.provenance,
            "explain": {"candidates": [c.to_json(explain=True) for c in shown], "flags": self.flags},
        }


@dataclass
class Verification:
    """One input's verification against one generator: a score and match / no match, or an error."""

    path: str
    generator: str
    sha256: str | None = None
    score: float | None = None
    threshold: float | None = None
    match: bool | None = None
    confidence: float | None = None  # P(genuine | margin), as for identification candidates
    extractor: str | None = None
    error: str | None = None
    evidence: list[dict] = field(default_factory=list)
    provenance: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        if self.error is not None:
            return {"schema": SCHEMA, "path": self.path, "generator": self.generator, "error": self.error,
                    "evidence": self.evidence}
        return {
            "schema": SCHEMA,
            "path": self.path,
            "sha256": self.sha256,
            "generator": self.generator,
            "score": self.score,
            "threshold": self.threshold,
            "margin": round(self.score - self.threshold, 6),
            "match": self.match,
            "confidence": round(self.confidence, 4),
            "extractor": self.extractor,
            "evidence": self.evidence,
            "provenance": self.provenance,
        }


@dataclass
class QueryScores:
    """One query against one extractor's index: each generator's score and its nearest hits."""

    scores: dict[int, float]
    hits: dict[int, list[tuple[int, float]]]  # generator id -> [(vector id, similarity)], best first


def score_queries(view, queries: np.ndarray) -> list[QueryScores]:
    """Per-generator scores (and the hits behind them) for each query vector against a loaded
    index (:class:`attrib.storage.base.IndexView`), for the whole batch at once.

    A generator's score is the mean similarity of its ``TOP_M`` nearest vectors (all of them when
    it has fewer: ``m_g`` below). An index of at most EXACT_SEARCH_LIMIT vectors is searched whole,
    so every generator is scored. A larger one is searched for FIRST_K hits, however many
    generators there are, and the candidate set is then made complete:

    - a generator with ``m_g`` hits among the k is scored exactly (its best vectors are the hits);
    - one with fewer scores at most ``bound = (its hits + the k-th similarity for each missing
      one) / m_g``, and one with none at most the k-th similarity;
    - while such a bound reaches the generator's acceptance floor (the lower of its threshold and
      the global one, so that fusion, which ranks margins over the global threshold, loses no
      candidate either), the query is searched again with twice the hits, up to MAX_K; a query
      still open then has exactly those generators scored against their own vectors.

    So every generator that could be accepted is scored; a generator seen with fewer than ``m_g``
    hits is reported with its bound (below its floor), and one never seen is left out: it scores
    at most the k-th similarity, below every exactly scored generator. Approximate search (HNSW,
    IVF) makes "the hits" those the index finds, at the recall it was tuned to (:mod:`attrib.storage.index_tuning`).
    """
    x = np.ascontiguousarray(view.whitening.apply(queries), dtype=np.float32)
    ntotal = view.index.ntotal
    out: list[QueryScores | None] = [None] * len(x)
    table = _generator_table(view)
    k = ntotal if ntotal <= EXACT_SEARCH_LIMIT else min(FIRST_K, ntotal)
    pending = np.arange(len(x))
    while len(pending):
        sims, ids = view.search(x[pending], k)
        top = calibration.top_hits(sims, view.generators_of(ids))
        bound = _kth_similarity(sims, ids)
        where, most = _bounds(top, bound, table)
        still = _open(top, bound, table, where, most)
        grow = still & (ids[:, -1] >= 0) & (k < min(MAX_K, ntotal))
        for row in np.flatnonzero(~grow):
            out[pending[row]] = _row_scores(view, table, top, most, row, sims, ids, bound[row],
                                            x[pending[row]] if still[row] else None)
        pending, k = pending[grow], min(2 * k, ntotal)
    return out


FIRST_K = 256  # hits asked for first, whatever the number of generators
MAX_K = 4096  # hits asked for at most; a generator still open after that is scored on its own vectors


@dataclass
class _GeneratorTable:
    """Per enrolled generator of a view (sorted ids): how many vectors it has and its acceptance floor."""

    gids: np.ndarray
    m: np.ndarray  # min(TOP_M, its vector count)
    floors: np.ndarray
    sorted_floors: np.ndarray


def _generator_table(view) -> _GeneratorTable:
    cache = getattr(view, "cache", None)
    if cache is not None and "generators" in cache:
        return cache["generators"]
    gids, counts = np.unique(np.asarray(view.generator_ids, dtype=np.int64), return_counts=True)
    floors = np.array([min(view.threshold(int(g)), view.threshold(None)) for g in gids], dtype=np.float64)
    table = _GeneratorTable(gids, np.minimum(counts, calibration.TOP_M), floors, np.sort(floors))
    if cache is not None:
        cache["generators"] = table
    return table


def _kth_similarity(sims: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Each row's last similarity found: no vector the search did not return is more similar."""
    found = (ids >= 0).sum(axis=1)
    return np.where(found > 0, sims[np.arange(len(sims)), np.maximum(found - 1, 0)], -np.inf)


def _bounds(top: calibration.TopHits, bound: np.ndarray, table: _GeneratorTable) -> tuple[np.ndarray, np.ndarray]:
    """Per group: the generator's m and the most its score can be (exact when it has m hits)."""
    where = np.searchsorted(table.gids, top.generators)
    m = table.m[where]
    missing = np.where(top.counts < m, (m - top.counts) * bound[top.rows], 0.0)
    return where, (top.sums + missing) / m


def _open(top: calibration.TopHits, bound: np.ndarray, table: _GeneratorTable, where: np.ndarray,
          most: np.ndarray) -> np.ndarray:
    """Per query: is a generator seen with too few hits, or one never seen, still possibly accepted?"""
    n = len(bound)
    short = top.counts < table.m[where]
    partial = np.bincount(top.rows, weights=short & (most >= table.floors[where]), minlength=n) > 0
    reachable = np.searchsorted(table.sorted_floors, bound, side="right")
    seen = np.bincount(top.rows, weights=table.floors[where] <= bound[top.rows], minlength=n)
    return partial | (reachable > seen)


def _row_scores(view, table: _GeneratorTable, top: calibration.TopHits, most: np.ndarray, row: int,
                sims: np.ndarray, ids: np.ndarray, bound: float, query: np.ndarray | None) -> QueryScores:
    """One query's scores and hits from its groups; with ``query``, generators still open are scored
    on their own vectors."""
    lo, hi = np.searchsorted(top.rows, [row, row + 1])
    flat_sims, flat_ids = sims.ravel(), ids.ravel()
    scores, hits = {}, {}
    for group in range(lo, hi):
        gid = int(top.generators[group])
        members = top.members[top.starts[group]:top.starts[group + 1]]
        scores[gid] = float(most[group])
        hits[gid] = list(zip(flat_ids[members].tolist(), flat_sims[members].tolist()))
    if query is not None:
        reopen = [gid for gid, score in scores.items()
                  if len(hits[gid]) < table.m[np.searchsorted(table.gids, gid)]
                  and score >= table.floors[np.searchsorted(table.gids, gid)]]
        unseen = [int(g) for g in table.gids[table.floors <= bound] if int(g) not in scores]
        for gid in reopen + unseen:
            scores[gid], hits[gid] = _exact_score(view, gid, query)
    return QueryScores(scores, hits)


def _exact_score(view, gid: int, query: np.ndarray) -> tuple[float, list[tuple[int, float]]]:
    """A generator's score and best hits from all of its vectors."""
    cache = getattr(view, "cache", None)
    key = ("vectors", gid)
    if cache is not None and key in cache:
        ids, vectors = cache[key]
    else:
        ids = view.ids[view.generator_ids == gid]
        vectors = view.generator_vectors(gid)
        if cache is not None:
            cache[key] = ids, vectors
    sims = vectors @ query
    best = np.argsort(-sims, kind="stable")[: calibration.TOP_M]
    return float(sims[best].astype(np.float64).mean()), list(zip(ids[best].tolist(), sims[best].tolist()))


def rank(scores: dict[int, float], threshold_of: Callable[[int], float], model: DecisionModel,
         names: dict[int, str], families: dict[int, str | None]) -> list[tuple[int, Candidate]]:
    """Every scored generator as a Candidate, best score first, with its id."""
    ranked = []
    for gid, score in sorted(scores.items(), key=lambda kv: -kv[1]):
        threshold = threshold_of(gid)
        ranked.append((gid, Candidate(names[gid], families.get(gid), float(score), float(threshold),
                                      model.p_known(score - threshold, gid))))
    return ranked


def decide(candidates: list[Candidate], model: DecisionModel) -> dict:
    """The decision over ranked candidates: generator, family, ambiguous or unknown, with a
    confidence and the reason (fields of :class:`IdentificationResult`)."""
    best = candidates[0]
    second = candidates[1] if len(candidates) > 1 else None
    if not best.accepted:
        return {"decision": UNKNOWN, "decision_level": UNKNOWN, "confidence": 1.0 - best.confidence,
                "reason": f"unknown: nearest {best.generator}, {-best.margin:.3f} below its threshold"}
    gap = best.score - second.score if second is not None else float("inf")
    which = model.p_which(gap)
    if second is not None and second.accepted and which < WHICH_LEVEL:
        pair = f"{best.generator} and {second.generator} both above their thresholds, {gap:.3f} apart"
        if best.family and best.family == second.family:
            return {"decision": best.family, "decision_level": FAMILY, "family": best.family,
                    "confidence": best.confidence, "reason": f"family {best.family}: {pair}"}
        return {"decision": AMBIGUOUS, "decision_level": AMBIGUOUS, "confidence": best.confidence,
                "reason": f"ambiguous: {pair}, in no common family"}
    reason = f"{best.generator}: {best.margin:.3f} above its threshold"
    if second is not None:
        reason += f", {gap:.3f} ahead of {second.generator}"
    return {"decision": best.generator, "decision_level": GENERATOR, "generator": best.generator,
            "family": best.family, "confidence": best.confidence * which, "reason": reason}
