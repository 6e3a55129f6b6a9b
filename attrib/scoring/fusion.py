"""Fusing several extractors into one decision (``--extractor a+b``).

Ranking: each extractor's score minus its own global calibrated threshold (a *margin*),
averaged over extractors with weights proportional to the extractor's calibrated separation
d' to the ``FUSION_POWER`` (:func:`fusion_weights`), so an extractor that tells this
gallery's generators apart poorly counts little.

Decision: the fused score is calibrated like a single extractor's score
(:func:`fit_fusion`): the enrolled samples that every extractor embedded are scored
held-out (cross-fitted, exactly as :mod:`.whitening` does per extractor) and the impostor
cohort is scored by each extractor; both sets of per-extractor margins are fused with the same
weights, and :func:`.open_set.calibrate` sets per-generator thresholds on the fused cohort at
the gallery's target FAR, with the decision model. A gallery without stored cohorts is
calibrated on its own impostors (:func:`.calibration.calibrate_scores`); where that is impossible
too (fewer than two generators in common), a generator's fused threshold is the weighted
offset of its per-extractor thresholds from the global ones (:func:`offset_threshold`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce
from typing import Any, Protocol, Sequence

import numpy as np

from ..index.whitening import Whitening
from . import calibration, open_set
from .whitening import held_out_score_matrix


class CalibratedExtractor(Protocol):
    """One extractor as fusion reads it: its id, whitening and calibration (the loaded index,
    :class:`attrib.upkeep.freshness.LoadedIndex`, is one)."""

    extractor_id: int
    whitening: Whitening
    separation: float | None
    target_far: float | None

    def threshold(self, generator_id: int | None) -> float: ...


class VectorStore(Protocol):
    """What fusion reads from storage (see :class:`attrib.storage.interface.GalleryStore`)."""

    def sample_ids(self, extractor_id: int) -> np.ndarray: ...

    def vectors_of_samples(self, extractor_id: int, sample_ids: np.ndarray | None = None
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...


FUSION_POWER = 4  # fusion weight = separation ** FUSION_POWER (docs/measured.md, "Accuracy")
HELD_OUT = "held-out fused scores"
COHORT = "held-out fused scores against the fused cohort"
OFFSETS = "weighted threshold offsets"


def fusion_weights(views: Sequence[CalibratedExtractor]) -> np.ndarray:
    """Each extractor's weight: its calibrated separation d' (at least 0) to the FUSION_POWER, summing to 1.

    d' is measured on held-out enrolled samples of this very gallery. Extractors calibrated
    before schema 3 (no d' stored) count equally.
    """
    known = [v.separation for v in views]
    if any(s is None for s in known):
        return np.full(len(views), 1.0 / len(views))
    raw = np.maximum(np.asarray(known, dtype=np.float64), 0.0) ** FUSION_POWER
    return raw / raw.sum() if raw.sum() > 0 else np.full(len(views), 1.0 / len(views))


def fuse(views: Sequence[CalibratedExtractor], scores: Sequence[dict[int, float]], weights: np.ndarray | None = None
         ) -> dict[int, float]:
    """Weighted mean margin (score - the extractor's global threshold) per generator.

    One offset per extractor: per-generator thresholds would shift generators against each
    other and cost open-set AUROC (0.96 -> 0.88 on the dev protocol). A generator missing from
    one extractor's search results counts with that extractor's lowest margin.
    """
    margins = [{g: s - v.threshold(None) for g, s in sc.items()} for v, sc in zip(views, scores)]
    floors = [min(m.values(), default=-1.0) for m in margins]
    weights = fusion_weights(views) if weights is None else weights
    generators = set().union(*margins)
    return {
        g: float(sum(w * m.get(g, floor) for w, m, floor in zip(weights, margins, floors))) for g in generators
    }


def offset_threshold(views: Sequence[CalibratedExtractor], generator_id: int, weights: np.ndarray | None = None) -> float:
    """Fallback fused threshold: the weighted mean of the generator's own thresholds' offsets."""
    weights = fusion_weights(views) if weights is None else weights
    return float(sum(w * (v.threshold(generator_id) - v.threshold(None)) for w, v in zip(weights, views)))


@dataclass
class Fusion:
    """Fitted fusion of several extractors' views of one gallery."""

    views: list[CalibratedExtractor]
    weights: np.ndarray
    thresholds: dict[int | None, float]  # fused thresholds; empty with the OFFSETS method
    method: str  # COHORT, HELD_OUT or OFFSETS
    n_samples: int = 0
    model: dict[str, Any] | None = None  # the fused open-set decision model (COHORT only)

    def rank(self, scores: Sequence[dict[int, float]]) -> dict[int, float]:
        """Fused score per generator from each extractor's per-generator scores."""
        return fuse(self.views, scores, self.weights)

    def threshold(self, generator_id: int) -> float:
        """The fused score the generator must reach to be accepted."""
        if self.method == OFFSETS:
            return offset_threshold(self.views, generator_id, self.weights)
        return float(self.thresholds.get(generator_id, self.thresholds[None]))


def held_out_margins(view: CalibratedExtractor, matrix: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[n, generators] held-out margins of enrolled vectors (cross-fitted when the whitening is fitted)."""
    scores, order = held_out_score_matrix(view.whitening)(matrix.astype(np.float64), labels)
    margins = scores - view.threshold(None)
    finite = np.isfinite(margins)
    # as fuse() ranks: a generator with no score counts with the sample's lowest margin; a missing
    # genuine score (a generator with one sample in common) stays missing and is left out
    floor = np.where(finite, margins, np.inf).min(axis=1, keepdims=True)
    floor = np.where(np.isfinite(floor), floor, -np.inf)
    impostor = np.asarray(labels)[:, None] != order[None, :]
    return np.where(finite | ~impostor, margins, floor), order


def fit_fusion(store: VectorStore, views: Sequence[CalibratedExtractor], cohorts: Sequence[np.ndarray | None] | None = None,
               seed: int = 0) -> Fusion:
    """Weights and fused thresholds for ``views`` of the gallery in ``store`` (see the module docstring)."""
    views = list(views)
    weights = fusion_weights(views)
    common = reduce(np.intersect1d, [store.sample_ids(v.extractor_id) for v in views])
    if len(common) > calibration.MAX_CALIBRATION_SAMPLES:
        common = np.sort(np.random.default_rng(seed).choice(common, calibration.MAX_CALIBRATION_SAMPLES, replace=False))
    stored = [store.vectors_of_samples(v.extractor_id, common) for v in views]
    labels = stored[0][1]
    generators, counts = np.unique(labels, return_counts=True)
    fars = [v.target_far for v in views if v.target_far is not None]
    target_far = min(fars, default=calibration.DEFAULT_TARGET_FAR)
    cohort_vectors = [c for c in cohorts or () if c is not None]
    with_cohort = cohorts is not None and len(generators) > 0 and len(cohort_vectors) == len(cohorts)
    if not with_cohort and (len(generators) < 2 or not (counts >= calibration.MIN_SAMPLES_PER_GENERATOR).any()):
        return Fusion(views, weights, {}, OFFSETS)
    fused, fused_cohort, order = 0.0, 0.0, generators
    for i, (weight, view, (_, _, matrix)) in enumerate(zip(weights, views, stored)):
        if weight > 0:
            margins, order = held_out_margins(view, matrix, labels)
            fused = fused + weight * margins
            if with_cohort:
                scores = open_set.cohort_scores(view.whitening.apply(cohort_vectors[i]), view.whitening.apply(matrix),
                                                labels, order)
                fused_cohort = fused_cohort + weight * (scores - view.threshold(None))
    if with_cohort:
        result = open_set.calibrate(np.asarray(fused), labels, order, np.asarray(fused_cohort), target_far)
        thresholds = {t.generator_id: t.threshold for t in result.thresholds}
        return Fusion(views, weights, thresholds, COHORT, len(common), model=result.model)
    result = calibration.calibrate_scores(np.asarray(fused), labels, order, target_far=target_far)
    thresholds = {t.generator_id: t.threshold for t in result.thresholds}
    return Fusion(views, weights, thresholds, HELD_OUT, len(common))
