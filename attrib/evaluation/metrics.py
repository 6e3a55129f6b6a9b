"""Open-set attribution metrics (scikit-learn where it has them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class OpenSetQueries:
    """Outcomes of identifying a set of queries against a gallery.

    ``truth`` is the true generator (any string; not enrolled = unknown),
    ``predicted`` the best-scoring enrolled generator, ``score`` its score,
    ``accepted`` whether the calibrated threshold accepted it.
    """

    truth: list[str]
    predicted: list[str]
    score: np.ndarray
    accepted: np.ndarray
    known: np.ndarray  # bool: truth is an enrolled generator
    decision: list[str] | None = None  # what was answered: a generator, a family, "ambiguous" or "unknown"


def closed_set_accuracy(q: OpenSetQueries) -> float:
    known = q.known
    if not known.any():
        return float("nan")
    return float(np.mean(np.array(q.truth)[known] == np.array(q.predicted)[known]))


def open_set_auroc(q: OpenSetQueries) -> float:
    """AUROC of known (positive) vs unknown queries by the best score."""
    from sklearn.metrics import roc_auc_score

    if q.known.all() or not q.known.any():
        return float("nan")
    return float(roc_auc_score(q.known.astype(int), q.score))


def oscr(q: OpenSetQueries) -> float:
    """Area under the open-set classification rate curve (CCR vs FPR over thresholds)."""
    if q.known.all() or not q.known.any():
        return float("nan")
    correct = (np.array(q.truth) == np.array(q.predicted)) & q.known
    order = np.argsort(-q.score, kind="stable")
    ccr = np.concatenate([[0.0], np.cumsum(correct[order]) / q.known.sum()])
    fpr = np.concatenate([[0.0], np.cumsum(~q.known[order]) / (~q.known).sum()])
    return float(np.sum(np.diff(fpr) * (ccr[1:] + ccr[:-1]) / 2.0))  # the trapezoid rule, as np.trapezoid


def correct_and_accepted(q: OpenSetQueries) -> float:
    """CCR at the operating point: share of known queries answered with their own generator."""
    if not q.known.any():
        return float("nan")
    decided = np.array(q.decision if q.decision is not None else
                       [p if a else "unknown" for p, a in zip(q.predicted, q.accepted)])
    return float(np.mean(decided[q.known] == np.array(q.truth)[q.known]))


def family_metrics(q: OpenSetQueries, families: dict[str, str]) -> dict[str, float]:
    """Over the queries of generators enrolled in a family: the nearest generator's family is theirs
    (``family_accuracy``), and the decision is their family or a generator of it (``family_decided``)."""
    truth = np.array(q.truth)
    members = np.array([t in families for t in q.truth])
    if not members.any():
        return {"family_accuracy": float("nan"), "family_decided": float("nan")}
    own = np.array([families.get(t) for t in truth[members]])
    nearest = np.array([families.get(p) for p in np.array(q.predicted)[members]])
    decided = [d if d in families.values() else families.get(d) for d in np.array(q.decision)[members]]
    return {"family_accuracy": float(np.mean(nearest == own)),
            "family_decided": float(np.mean(np.array(decided, dtype=object) == own))}


def operating_point(q: OpenSetQueries) -> tuple[float, float]:
    """(share of known queries accepted, share of unknown queries rejected) at the calibrated threshold."""
    known_acc = float(q.accepted[q.known].mean()) if q.known.any() else float("nan")
    unknown_rej = float((~q.accepted[~q.known]).mean()) if (~q.known).any() else float("nan")
    return known_acc, unknown_rej


def per_generator(q: OpenSetQueries) -> dict[str, dict[str, Any]]:
    """For each true generator: queries, top-1 correct (known) or rejected (unknown), and the decision rate."""
    truth = np.array(q.truth)
    predicted = np.array(q.predicted)
    out = {}
    for name in sorted(set(q.truth)):
        mask = truth == name
        known = bool(q.known[mask][0])
        if known:
            top1 = float(np.mean(predicted[mask] == name))
            if q.decision is not None:
                decided = float(np.mean(np.array(q.decision)[mask] == name))
            else:
                decided = float(np.mean((predicted[mask] == name) & q.accepted[mask]))
        else:
            top1 = float("nan")
            decided = float(np.mean(~q.accepted[mask]))
        out[name] = {"known": known, "queries": int(mask.sum()), "top1": top1, "correct_decision": decided,
                     "accepted": float(np.mean(q.accepted[mask]))}
    return out
