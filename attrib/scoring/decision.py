"""The decision for one query: rank the enrolled generators, then answer a generator, a family,
``ambiguous`` or ``unknown`` with a confidence and the reason (see :mod:`.open_set`).

Also the result types that identification and verification return.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal

from .candidates import EXACT_SEARCH_LIMIT as EXACT_SEARCH_LIMIT  # re-exported
from .candidates import QueryScores as QueryScores
from .candidates import score_queries as score_queries
from .open_set import WHICH_LEVEL, DecisionModel


SCHEMA = 4  # of the JSON objects identify and verify print (3: evidence, provenance, decided_by; 4: delivery)
GENERATOR, FAMILY, AMBIGUOUS, UNKNOWN = "generator", "family", "ambiguous", "unknown"
DecisionLevel = Literal["generator", "family", "ambiguous", "unknown"]  # the four levels above, as a type


@dataclass
class Candidate:
    """One enrolled generator's standing for a query."""

    generator: str
    family: str | None
    score: float
    threshold: float
    confidence: float  # P(the query comes from this generator's source | its margin), see DecisionModel
    exemplars: list[dict[str, Any]] = field(default_factory=list)  # nearest enrolled samples: path, sha256, similarity
    per_extractor: dict[str, float] = field(default_factory=dict)  # fused: each extractor's own score

    @property
    def margin(self) -> float:
        return self.score - self.threshold

    @property
    def accepted(self) -> bool:
        return self.score >= self.threshold

    def to_json(self, explain: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"generator": self.generator, "family": self.family, "score": round(self.score, 6),
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
    evidence: list[dict[str, Any]] = field(default_factory=list)  # what the file says (attrib.evidence), always listed
    provenance: dict[str, Any] = field(default_factory=dict)  # summary, agreement, decided_by, forensic_decision, note
    # how the file travelled and the gallery version it was scored against: {"describe", "version", "measured"}
    delivery: dict[str, Any] | None = None

    @property
    def nearest(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None

    def require_nearest(self) -> Candidate:
        """:attr:`nearest` of a result without an error, which always has candidates."""
        if self.nearest is None:
            raise ValueError(f"{self.path}: no candidate ({self.error or 'nothing was scored'})")
        return self.nearest

    @property
    def score(self) -> float | None:
        return None if self.nearest is None else self.nearest.score

    @property
    def threshold(self) -> float | None:
        return None if self.nearest is None else self.nearest.threshold

    @property
    def accepted(self) -> bool:
        return self.decision_level not in (None, UNKNOWN)

    def to_json(self, top_k: int | None = None) -> dict[str, Any]:
        if self.error is not None:
            return {"schema": SCHEMA, "path": self.path, "error": self.error, "evidence": self.evidence}
        nearest = self.require_nearest()
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
            "delivery": self.delivery,
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
    evidence: list[dict[str, Any]] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)
    delivery: dict[str, Any] | None = None  # as for identification

    def to_json(self) -> dict[str, Any]:
        if self.error is not None:
            return {"schema": SCHEMA, "path": self.path, "generator": self.generator, "error": self.error,
                    "evidence": self.evidence}
        assert self.score is not None and self.threshold is not None and self.confidence is not None, \
            "a verification without an error is scored"
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
            "delivery": self.delivery,
            "evidence": self.evidence,
            "provenance": self.provenance,
        }


def rank(scores: dict[int, float], threshold_of: Callable[[int], float], model: DecisionModel,
         names: dict[int, str], families: dict[int, str | None]) -> list[tuple[int, Candidate]]:
    """Every scored generator as a Candidate, best score first, with its id."""
    ranked = []
    for gid, score in sorted(scores.items(), key=lambda kv: -kv[1]):
        threshold = threshold_of(gid)
        ranked.append((gid, Candidate(names[gid], families.get(gid), float(score), float(threshold),
                                      model.p_known(score - threshold, gid))))
    return ranked


def decide(candidates: list[Candidate], model: DecisionModel) -> dict[str, Any]:
    """The decision over ranked candidates: generator, family, ambiguous or unknown, with a
    confidence and the reason (fields of :class:`IdentificationResult`)."""
    best = candidates[0]
    second = candidates[1] if len(candidates) > 1 else None
    if not best.accepted:  # P(none of them): every candidate is below its threshold, so each is under 0.5
        return {"decision": UNKNOWN, "decision_level": UNKNOWN,
                "confidence": 1.0 - max(c.confidence for c in candidates),
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
