"""The decision for one query: rank the enrolled generators and apply the calibrated threshold.

Also the result types that identification and verification return.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import calibration

EXACT_SEARCH_LIMIT = 4096
UNKNOWN = "unknown"


@dataclass
class IdentificationResult:
    """One input's identification: scores and a decision, or an error."""

    path: str
    sha256: str | None = None
    decision: str | None = None
    generator: str | None = None
    score: float | None = None
    threshold: float | None = None
    candidates: list[dict] = field(default_factory=list)
    extractor: str | None = None
    error: str | None = None

    def to_json(self) -> dict:
        if self.error is not None:
            return {"path": self.path, "error": self.error}
        return {
            "path": self.path,
            "sha256": self.sha256,
            "decision": self.decision,
            "generator": self.generator,
            "score": self.score,
            "threshold": self.threshold,
            "candidates": self.candidates,
            "extractor": self.extractor,
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
    extractor: str | None = None
    error: str | None = None

    def to_json(self) -> dict:
        if self.error is not None:
            return {"path": self.path, "generator": self.generator, "error": self.error}
        return {
            "path": self.path,
            "sha256": self.sha256,
            "generator": self.generator,
            "score": self.score,
            "threshold": self.threshold,
            "match": self.match,
            "extractor": self.extractor,
        }


def score_queries(view, queries: np.ndarray) -> list[dict[int, float]]:
    """Per-generator scores for each query vector against a loaded index
    (:class:`attrib.storage.base.IndexView`)."""
    ntotal = view.index.ntotal
    n_generators = max(1, len(np.unique(view.generator_ids)))
    k = ntotal if ntotal <= EXACT_SEARCH_LIMIT else max(256, 8 * calibration.TOP_M * n_generators)
    sims, ids = view.search(view.whitening.apply(queries), k)
    out = []
    for row_sims, row_ids in zip(sims, ids):
        valid = row_ids >= 0
        gens = view.generators_of(row_ids[valid])
        keep = gens >= 0
        out.append(calibration.generator_scores(row_sims[valid][keep], gens[keep]))
    return out


def decide(
    names: dict[int, str],
    scores: dict[int, float],
    threshold_of: Callable[[int], float],
    path: str,
    sha256: str,
    key: str,
    top_k: int,
) -> IdentificationResult:
    """Rank generators and apply the best one's calibrated threshold."""
    ranked = sorted(scores.items(), key=lambda kv: -kv[1])
    candidates = [{"generator": names[g], "score": round(s, 6)} for g, s in ranked[:top_k]]
    best_gid, best = ranked[0]
    threshold = threshold_of(best_gid)
    name = names[best_gid]
    return IdentificationResult(
        path=path,
        sha256=sha256,
        decision=name if best >= threshold else UNKNOWN,
        generator=name,
        score=round(best, 6),
        threshold=round(threshold, 6),
        candidates=candidates,
        extractor=key,
    )


