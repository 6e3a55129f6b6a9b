"""Thresholds for a few generators under the stored whitening, without refitting the rest.

With the whitening fixed, a generator's cohort threshold depends only on the impostor cohort and
that generator's own vectors (:mod:`attrib.scoring.open_set`): so when an enroll adds samples to
a few generators (or a new one), only their thresholds and cohort-tail scales are computed again,
on a bounded sample of each (:func:`per_generator_cap`), while the global threshold and the
decision model's logistic fits stay as the last full calibration left them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..index.whitening import Whitening
from .calibration import COHORT_FAR, MAX_CALIBRATION_SAMPLES, MIN_SAMPLES_PER_GENERATOR, Threshold, generator_score_matrix
from .open_set import DecisionModel, cohort_thresholds, genuine_floor, tail_scales


def per_generator_cap(generators: int) -> int:
    """Samples of one generator to calibrate it on: its share of a full calibration's sample."""
    return max(MIN_SAMPLES_PER_GENERATOR, MAX_CALIBRATION_SAMPLES // max(1, generators))


def generator_thresholds(whitening: Whitening, cohort: np.ndarray, samples: dict[int, np.ndarray],
                         target_far: float, model: dict[str, Any] | None) -> tuple[list[Threshold], dict[str, Any]]:
    """Cohort thresholds (raised to each generator's genuine floor, its own samples scored leave-one-out)
    for the generators in ``samples`` (generator id -> raw vectors), and ``model`` with their scales."""
    cohort_whitened = whitening.apply(cohort).astype(np.float64)
    decision = DecisionModel.from_dict(model)
    thresholds = []
    for generator_id, vectors in samples.items():
        whitened = whitening.apply(vectors).astype(np.float64)
        labels, order = np.full(len(whitened), generator_id), np.array([generator_id])
        against_cohort = generator_score_matrix(cohort_whitened @ whitened.T, labels, order)
        sims = whitened @ whitened.T
        np.fill_diagonal(sims, -np.inf)
        genuine = generator_score_matrix(sims, labels, order)[:, 0]
        genuine = genuine[np.isfinite(genuine)]
        threshold = max(float(cohort_thresholds(against_cohort, target_far)[0]), genuine_floor(genuine))
        tar = float(np.mean(genuine >= threshold)) if genuine.size else None
        thresholds.append(Threshold(int(generator_id), threshold, COHORT_FAR, len(genuine), len(cohort), tar))
        decision.scales[str(int(generator_id))] = float(tail_scales(against_cohort)[0])
    return thresholds, decision.to_dict()
