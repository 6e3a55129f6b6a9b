"""Open-set decisions calibrated against the impostor cohort: "is it one of mine?", then "which one?".

Two questions, two sources of evidence:

1. **Is it one of the enrolled generators?** A generator's threshold is set on the *cohort*
   (:mod:`attrib.synthetic.cohort`): images of generators nobody enrolled, scored against that
   generator. The threshold lets through at most the target false-accept rate (FAR) of them.
   The gallery's own other generators do not raise it: a confusable pair of enrolled generators
   is a "which one?" problem, not a reason to turn their images away. Where the generator sits far
   above the cohort, the threshold is raised up to the 5th percentile of its own held-out genuine
   scores (:func:`genuine_floor`), which turns away close look-alikes at a small, bounded cost.
   The confidence that a query
   comes from a candidate is a logistic model of the candidate's *margin* (score minus its
   threshold) in units of the spread of the cohort's top :data:`TAIL` scores against that
   generator, fitted on held-out genuine margins (enrolled samples scored without themselves)
   against cohort margins, with equal weight on both: P(genuine | margin) at even prior odds.
   The model passes through 0.5 at the threshold (only its slope is fitted), so a confidence
   never contradicts the decision: above 0.5 exactly when the candidate clears its threshold.
   Scaled margins make generators comparable; the probability makes the margin readable.
2. **Which one?** Among enrolled generators, how often the best-scoring one is right depends on
   how far ahead of the runner-up it is. A second logistic model, fitted on the held-out scores
   of the enrolled samples (was the best generator the sample's own?), turns the *gap* between
   the best and second score into P(the best is right). When it is under :data:`WHICH_LEVEL`
   and the runner-up also clears its threshold, the answer is the pair's family when they share
   one, else ``ambiguous``.

Galleries without a stored cohort (made before it existed) fall back to thresholds from the
gallery's own impostors (:func:`attrib.scoring.calibration.calibrate_scores`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .calibration import (COHORT_FAR, MAX_FRR, CalibrationResult, Threshold, far_threshold, generator_score_matrix,
                          separation)

TAIL = 0.05  # the share of the cohort's highest scores whose spread scales a generator's margins
MIN_TAIL = 10
WHICH_LEVEL = 0.5  # below this P(the best generator is right), two plausible candidates make an ambiguous answer
PRIOR_STRENGTH = 1.0  # L2 penalty of the logistic fits (pulls the slope towards 0 when data are few)


@dataclass
class DecisionModel:
    """The two logistic models of one extractor's (or one fusion's) calibration."""

    known_b: float = 10.0  # P(genuine | margin) = sigmoid(known_b * margin): 0.5 at the threshold
    which_a: float = 5.0  # P(best is right | gap) = sigmoid(which_a + which_b * gap)
    which_b: float = 0.0
    cohort_size: int = 0
    scales: dict[str, float] = field(default_factory=dict)  # generator id -> spread of the cohort's top scores

    def p_known(self, margin: float, generator_id: int | None = None) -> float:
        """P(genuine | margin) for a candidate generator (margin in that generator's cohort-tail units)."""
        return _sigmoid(self.known_b * margin / self.scales.get(str(generator_id), 1.0))

    def p_which(self, gap: float) -> float:
        return 1.0 if not math.isfinite(gap) else _sigmoid(self.which_a + self.which_b * gap)

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "DecisionModel":
        known = {k: v for k, v in (data or {}).items() if k in cls.__dataclass_fields__}
        return cls(**known)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, x))))


def fit_slope(x: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None,
              penalty: float = PRIOR_STRENGTH) -> float:
    """b of P(y=1 | x) = sigmoid(b x), a logistic model through 0.5 at x = 0, by Newton's method with an
    L2 penalty on b (``x`` scaled by its root mean square inside, so the penalty does not depend on the
    scale of scores)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    w = np.ones_like(x) if weights is None else np.asarray(weights, float)
    if len(x) == 0 or y.min() == y.max():
        return DecisionModel.known_b
    scale = float(np.sqrt(np.average(x ** 2, weights=w))) or 1.0
    z, beta = x / scale, 0.0
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-np.clip(beta * z, -60, 60)))
        step = (np.sum(w * (p - y) * z) + penalty * beta) / (np.sum(w * p * (1 - p) * z * z) + penalty)
        beta -= step
        if abs(step) < 1e-9:
            break
    return float(beta / scale)


def fit_logistic(x: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None,
                 penalty: float = PRIOR_STRENGTH) -> tuple[float, float]:
    """(a, b) of P(y=1 | x) = sigmoid(a + b x) by Newton's method, with an L2 penalty on b.

    ``x`` is standardised inside, so the penalty does not depend on the scale of scores.
    """
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    w = np.ones_like(x) if weights is None else np.asarray(weights, float)
    if len(x) == 0 or y.min() == y.max():
        rate = float(y.mean()) if len(y) else 0.5
        rate = min(max(rate, 0.02), 0.98)
        return math.log(rate / (1 - rate)), 0.0
    centre, scale = float(np.average(x, weights=w)), float(np.sqrt(np.average((x - np.average(x, weights=w)) ** 2,
                                                                                   weights=w))) or 1.0
    z = (x - centre) / scale
    design = np.stack([np.ones_like(z), z], axis=1)
    beta = np.zeros(2)
    reg = np.diag([1e-6, penalty])
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ beta, -60, 60)))
        gradient = design.T @ (w * (p - y)) + reg @ beta
        hessian = (design * (w * p * (1 - p))[:, None]).T @ design + reg
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if np.abs(step).max() < 1e-9:
            break
    a, b = beta[0] - beta[1] * centre / scale, beta[1] / scale
    return float(a), float(b)


def cohort_thresholds(cohort: np.ndarray, target_far: float) -> np.ndarray:
    """Per generator (column of ``cohort`` [n_cohort, n_generators]): the threshold at ``target_far``."""
    return np.array([far_threshold(cohort[:, j][np.isfinite(cohort[:, j])], target_far)
                     for j in range(cohort.shape[1])])


def tail_scales(cohort: np.ndarray) -> np.ndarray:
    """Per generator: the standard deviation of the cohort's top TAIL (at least MIN_TAIL) scores."""
    scales = []
    for column in cohort.T:
        column = np.sort(column[np.isfinite(column)])[::-1]
        top = column[: max(MIN_TAIL, int(np.ceil(TAIL * len(column))))]
        scales.append(max(float(top.std()), 1e-3) if len(top) > 1 else 1.0)
    return np.array(scales)


def genuine_floor(genuine: np.ndarray, max_frr: float = MAX_FRR) -> float:
    """The lowest threshold worth keeping: the ``max_frr`` quantile of a generator's held-out genuine scores.

    Where a generator sits far above the cohort, its cohort threshold leaves room that only
    look-alikes (another seed of the same architecture, a sibling finetune) would use; raising the
    threshold up to this floor spends at most ``max_frr`` of genuine images on rejecting them.
    """
    genuine = genuine[np.isfinite(genuine)]
    return float(np.quantile(genuine, max_frr, method="lower")) if len(genuine) else -np.inf


def fit_known(held_out: np.ndarray, labels: np.ndarray, order: np.ndarray, cohort: np.ndarray,
              thresholds: np.ndarray, scales: np.ndarray) -> float:
    """The slope of P(genuine | scaled margin) (0.5 at the threshold): held-out genuine margins against
    cohort margins, weighted to even odds."""
    own = np.asarray(labels)[:, None] == np.asarray(order)[None, :]
    genuine = ((held_out - thresholds[None, :]) / scales[None, :])[own]
    genuine = genuine[np.isfinite(genuine)]
    impostor = ((cohort - thresholds[None, :]) / scales[None, :]).ravel()
    impostor = impostor[np.isfinite(impostor)]
    if len(genuine) == 0 or len(impostor) == 0:
        return DecisionModel.known_b
    x = np.concatenate([genuine, impostor])
    y = np.concatenate([np.ones(len(genuine)), np.zeros(len(impostor))])
    w = np.concatenate([np.full(len(genuine), 0.5 / len(genuine)), np.full(len(impostor), 0.5 / len(impostor))])
    return fit_slope(x, y, w * len(x))


def fit_which(held_out: np.ndarray, labels: np.ndarray, order: np.ndarray) -> tuple[float, float]:
    """P(the best generator is right | gap to the runner-up), from held-out scores of enrolled samples."""
    if held_out.shape[1] < 2:
        return DecisionModel.which_a, 0.0
    finite = np.where(np.isfinite(held_out), held_out, -np.inf)
    ranked = np.argsort(-finite, axis=1)
    rows = np.arange(len(finite))
    best, second = finite[rows, ranked[:, 0]], finite[rows, ranked[:, 1]]
    usable = np.isfinite(best) & np.isfinite(second)
    right = np.asarray(order)[ranked[:, 0]] == np.asarray(labels)
    return fit_logistic((best - second)[usable], right[usable].astype(float))


def cohort_scores(cohort_whitened: np.ndarray, gallery_whitened: np.ndarray, labels: np.ndarray,
                  order: np.ndarray) -> np.ndarray:
    """[n_cohort, n_generators] scores of the cohort against every generator (top-m mean cosine)."""
    sims = cohort_whitened.astype(np.float64) @ gallery_whitened.astype(np.float64).T
    return generator_score_matrix(sims, np.asarray(labels), np.asarray(order))


def calibrate(held_out: np.ndarray, labels: np.ndarray, order: np.ndarray, cohort: np.ndarray,
              target_far: float) -> CalibrationResult:
    """Thresholds and the decision model from held-out scores of the enrolled samples
    (``held_out[i, j]``: sample i against generator ``order[j]``, -inf where missing) and the
    cohort's scores (``cohort[c, j]``); see the module docstring."""
    labels, order = np.asarray(labels), np.asarray(order)
    own = labels[:, None] == order[None, :]
    thresholds = cohort_thresholds(cohort, target_far)
    for j in range(len(order)):
        thresholds[j] = max(thresholds[j], genuine_floor(held_out[own[:, j], j]))
    best_cohort = cohort.max(axis=1)
    glob = far_threshold(best_cohort[np.isfinite(best_cohort)], target_far)
    genuine_all = held_out[own]
    genuine_all = genuine_all[np.isfinite(genuine_all)]
    impostor = held_out[~own]
    impostor = impostor[np.isfinite(impostor)]
    result = CalibrationResult(target_far=target_far)
    result.separation = separation(genuine_all, impostor if len(order) > 1 else best_cohort)
    tar = float(np.mean(genuine_all >= glob)) if genuine_all.size else None
    result.thresholds.append(Threshold(None, glob, COHORT_FAR, len(genuine_all), len(cohort), tar))
    for j, gid in enumerate(order):
        genuine = held_out[own[:, j], j]
        genuine = genuine[np.isfinite(genuine)]
        tar = float(np.mean(genuine >= thresholds[j])) if genuine.size else None
        result.thresholds.append(Threshold(int(gid), float(thresholds[j]), COHORT_FAR, len(genuine), len(cohort), tar))
    scales = tail_scales(cohort)
    known_b = fit_known(held_out, labels, order, cohort, thresholds, scales)
    which_a, which_b = fit_which(held_out, labels, order)
    result.model = DecisionModel(known_b, which_a, which_b, len(cohort),
                                 {str(int(g)): float(s) for g, s in zip(order, scales)}).to_dict()
    result.message = (f"calibrated on {len(labels)} samples of {len(order)} generator(s) against a cohort of "
                      f"{len(cohort)} images of generators never enrolled, at FAR {target_far:g}")
    return result
