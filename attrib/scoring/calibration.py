"""Scores and thresholds: how similarities become decisions.

A generator's score for a query is the mean cosine similarity of the query to
its ``TOP_M`` nearest enrolled samples of that generator (fewer when fewer are
enrolled). Thresholds come from the gallery itself: every enrolled sample is
scored leave-one-out against its own generator (genuine) and against every
other generator (impostor). A generator's threshold is the impostor-score
quantile that lets through at most the target false-accept rate, raised up to
the genuine-score quantile that still accepts ``1 - max_frr`` of genuine
samples: a gallery's own impostors under-represent generators nobody has
enrolled, so where genuine and impostor scores are well apart the threshold
moves as close to the genuine scores as the false-reject budget allows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

TOP_M = 3
DEFAULT_THRESHOLD = 0.5
from . import DEFAULT_TARGET_FAR as DEFAULT_TARGET_FAR  # re-exported
MIN_SAMPLES_PER_GENERATOR = 2
MIN_IMPOSTORS = 5
MAX_CALIBRATION_SAMPLES = 4000
MAX_FRR = 0.05
COHORT_FAR = "cohort-far"  # the method of thresholds set on the impostor cohort (attrib.scoring.open_set)


def aggregate(similarities: np.ndarray, top_m: int = TOP_M) -> float:
    """Mean of the ``top_m`` largest similarities (all of them when fewer)."""
    if similarities.size == 0:
        return float("-inf")
    m = min(top_m, similarities.size)
    part = np.partition(similarities, similarities.size - m)[-m:]
    return float(part.mean())


@dataclass
class TopHits:
    """Each query's hits grouped by generator, the ``top_m`` best of each group kept.

    Groups are ordered by query row, then generator id; ``members[starts[i]:starts[i + 1]]`` are
    the flat positions (``row * k + column`` in the [n_queries, k] hit arrays) of group i's kept
    hits, best first.
    """

    rows: np.ndarray  # [groups] query row
    generators: np.ndarray  # [groups] generator id
    sums: np.ndarray  # [groups] sum of the kept similarities (float64)
    counts: np.ndarray  # [groups] how many hits were kept (at most top_m)
    members: np.ndarray
    starts: np.ndarray  # [groups + 1]

    @property
    def scores(self) -> np.ndarray:
        """Mean of each group's kept similarities: the generator's score from these hits."""
        return self.sums / np.maximum(self.counts, 1)


def top_hits(sims: np.ndarray, generators: np.ndarray, top_m: int = TOP_M, best_first: bool = False) -> TopHits:
    """Group a batch of hits ([n_queries, k] similarities and generator ids, negative where there is
    no hit) by query and generator and keep the ``top_m`` most similar of each group, in one sort
    for the whole batch (no loop over generators or queries). ``best_first``: each row is already
    ordered by decreasing similarity (as searches return it), which saves sorting on it."""
    sims = np.atleast_2d(np.asarray(sims))
    generators = np.atleast_2d(np.asarray(generators, dtype=np.int64))
    k = generators.shape[1]
    flat = np.flatnonzero(generators.ravel() >= 0)
    rows, gens, values = flat // max(k, 1), generators.ravel()[flat], sims.ravel()[flat]
    if best_first and len(flat):  # a stable sort on (query, generator) keeps each group best first
        order = np.argsort(rows * (int(gens.max()) + 1) + gens, kind="stable")
    else:
        order = np.lexsort((-values, gens, rows))  # by query, then generator, then best first
    flat, rows, gens = flat[order], rows[order], gens[order]
    first = np.ones(len(flat), dtype=bool)
    first[1:] = (rows[1:] != rows[:-1]) | (gens[1:] != gens[:-1])
    heads = np.flatnonzero(first)
    group = np.cumsum(first) - 1
    keep = np.arange(len(flat)) - heads[group] < top_m
    counts = np.bincount(group[keep], minlength=len(heads))
    sums = np.bincount(group[keep], weights=sims.ravel()[flat[keep]].astype(np.float64), minlength=len(heads))
    return TopHits(rows[heads], gens[heads], sums, counts, flat[keep], np.concatenate([[0], np.cumsum(counts)]))


def generator_scores(
    hit_scores: np.ndarray, hit_generators: np.ndarray, top_m: int = TOP_M
) -> dict[int, float]:
    """Per-generator scores from one query's hits (similarities and generator ids): the mean of each
    generator's ``top_m`` best hits (:func:`aggregate`, computed by :func:`top_hits`)."""
    top = top_hits(np.asarray(hit_scores)[None], np.asarray(hit_generators)[None], top_m)
    return dict(zip(top.generators.tolist(), top.scores.tolist()))


def generator_score_matrix(
    sims: np.ndarray, labels: np.ndarray, generators: np.ndarray, top_m: int = TOP_M
) -> np.ndarray:
    """[n_queries, n_generators]: mean of each query's top-m similarities per generator.

    ``sims`` is [n_queries, n_gallery] with ``labels`` the gallery's generators;
    entries set to -inf (a sample compared with itself) are left out.
    """
    scores = np.full((sims.shape[0], len(generators)), -np.inf, dtype=np.float64)
    for j, gid in enumerate(generators):
        cols = sims[:, labels == gid]
        m = min(top_m, cols.shape[1])
        if m == 0:
            continue
        top = -np.sort(-cols, axis=1)[:, :m]
        finite = np.isfinite(top)
        counts = finite.sum(axis=1)
        sums = np.where(finite, top, 0.0).sum(axis=1)
        scores[:, j] = np.where(counts > 0, sums / np.maximum(counts, 1), -np.inf)
    return scores


def loo_score_matrix(vectors: np.ndarray, labels: np.ndarray, top_m: int = TOP_M) -> tuple[np.ndarray, np.ndarray]:
    """Leave-one-out scores: [n_samples, n_generators] and the generator order.

    Entry (i, g) scores sample i against generator g without sample i itself.
    """
    generators = np.unique(labels)
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    return generator_score_matrix(sims, labels, generators, top_m), generators


@dataclass
class Threshold:
    generator_id: int | None  # None: the global open-set threshold
    threshold: float
    method: str  # "loo-far" or "default"
    n_genuine: int = 0
    n_impostor: int = 0
    tar: float | None = None


@dataclass
class CalibrationResult:
    target_far: float
    thresholds: list[Threshold] = field(default_factory=list)
    message: str = ""
    separation: float | None = None  # d' of held-out genuine vs impostor scores (see :func:`separation`)
    model: dict[str, Any] | None = None  # the open-set decision model (:class:`attrib.scoring.open_set.DecisionModel`)

    @property
    def calibrated(self) -> bool:
        return any(t.method in ("loo-far", COHORT_FAR) for t in self.thresholds)


def quotas(counts: np.ndarray, total: int, per_generator: int | None = None) -> np.ndarray:
    """How many vectors :func:`stratified` keeps of generators holding ``counts``: at most ``per_generator``
    of each (by default an even share of ``total``, with what small generators leave over given to the
    others), at most ``total`` in all."""
    counts = np.asarray(counts, np.int64)
    cap = np.minimum(counts, per_generator if per_generator is not None else counts.max(initial=0))
    if cap.sum() > total:  # the largest per-generator quota that keeps the total within ``total``
        low, high = 0, int(cap.max())
        while low < high:
            mid = (low + high + 1) // 2
            low, high = (mid, high) if np.minimum(cap, mid).sum() <= total else (low, mid - 1)
        cap = np.minimum(cap, max(low, 1))
    return cap


def stratified(labels: np.ndarray, total: int, per_generator: int | None = None, seed: int = 0,
               ids: np.ndarray | None = None) -> np.ndarray:
    """Sorted positions of at most ``total`` of ``labels``, as many of each generator as :func:`quotas`
    allows, a fixed random choice within each generator.

    ``ids`` (one per label, unique): the choice follows a seeded hash of each id instead of its position,
    so vectors added later change it only where they hash ahead of the chosen ones (about the generator's
    quota over its count of them), and the choice never moves with the positions of the others."""
    labels = np.asarray(labels)
    if len(labels) <= total and per_generator is None:
        return np.arange(len(labels))
    generators, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    cap = quotas(counts, total, per_generator)
    if ids is None:
        order = np.random.default_rng(seed).permutation(len(labels))
    else:
        order = np.argsort(id_hash(ids, seed), kind="stable")
    ordered = inverse[order]
    rank = np.empty(len(labels), np.int64)  # each position's rank among its generator's in the random order
    sort = np.argsort(ordered, kind="stable")
    starts = np.concatenate([[0], np.cumsum(np.bincount(ordered, minlength=len(generators)))[:-1]])
    rank[sort] = np.arange(len(labels)) - starts[ordered[sort]]
    return np.sort(order[rank < cap[ordered]])


def id_hash(ids: np.ndarray, seed: int = 0) -> np.ndarray:
    """A seeded 64-bit mix (splitmix64) of each id: a random order that depends on the id alone."""
    z = np.asarray(ids).astype(np.uint64) + np.uint64(seed + 1) * np.uint64(0x9E3779B97F4A7C15)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def subsample(vectors: np.ndarray, labels: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """At most MAX_CALIBRATION_SAMPLES of (vectors, labels), stratified by generator (see :func:`stratified`),
    in order."""
    labels = np.asarray(labels)
    if len(vectors) <= MAX_CALIBRATION_SAMPLES:
        return vectors, labels
    keep = stratified(labels, MAX_CALIBRATION_SAMPLES, seed=seed)
    return vectors[keep], labels[keep]


def far_threshold(impostors: np.ndarray, target_far: float) -> float:
    """Smallest threshold whose false-accept rate on ``impostors`` is at most ``target_far``."""
    ordered = np.sort(impostors)[::-1]
    allowed = int(np.floor(target_far * len(ordered)))
    if allowed >= len(ordered):
        return float(ordered[-1])
    # accept strictly above the (allowed+1)-th highest impostor score
    return float(np.nextafter(ordered[allowed], np.inf))


def pick_threshold(impostors: np.ndarray, genuine: np.ndarray, target_far: float, max_frr: float) -> float:
    """The FAR threshold, raised towards the genuine scores as far as ``max_frr`` allows."""
    threshold = far_threshold(impostors, target_far)
    if len(genuine):
        threshold = max(threshold, float(np.quantile(genuine, max_frr, method="lower")))
    return threshold


def separation(genuine: np.ndarray, impostors: np.ndarray) -> float | None:
    """d' = (mean genuine - mean impostor) / sqrt of the mean of their variances; None when undefined.

    How well an extractor tells the enrolled generators apart on held-out samples: fusion
    weighs extractors by it, so one that barely separates this gallery's generators counts little.
    """
    genuine, impostors = np.asarray(genuine, float), np.asarray(impostors, float)
    if len(genuine) < 2 or len(impostors) < 2:
        return None
    spread = np.sqrt((genuine.var() + impostors.var()) / 2)
    return float((genuine.mean() - impostors.mean()) / max(spread, 1e-12))


def calibrate(
    vectors: np.ndarray,
    labels: np.ndarray,
    target_far: float = DEFAULT_TARGET_FAR,
    default: float = DEFAULT_THRESHOLD,
    seed: int = 0,
    max_frr: float = MAX_FRR,
    score_matrix: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]] = loo_score_matrix,
) -> CalibrationResult:
    """Leave-one-out thresholds per generator and a global one, at ``target_far``.

    ``score_matrix(vectors, labels)`` gives every sample's score against every
    generator without the sample itself (leave-one-out by default; a cross-fitted
    version when the whitening was fitted on these very samples).
    """
    if not 0 < target_far < 1:
        raise ValueError(f"target false-accept rate must be between 0 and 1, got {target_far}")
    vectors, labels = subsample(vectors, labels, seed)
    generators, counts = np.unique(labels, return_counts=True)
    result = CalibrationResult(target_far=target_far)
    usable = generators[counts >= MIN_SAMPLES_PER_GENERATOR]
    if len(generators) < 2 or len(usable) < 1:
        result.message = (
            f"too few samples to calibrate (need at least 2 generators and {MIN_SAMPLES_PER_GENERATOR} "
            f"samples of a generator; have {len(generators)} generator(s)); using the default threshold {default}"
        )
        result.thresholds = [Threshold(None, default, "default")] + [
            Threshold(int(g), default, "default") for g in generators
        ]
        return result
    scores, order = score_matrix(vectors.astype(np.float64), labels)
    return calibrate_scores(scores, labels, order, target_far=target_far, max_frr=max_frr)


def calibrate_scores(
    scores: np.ndarray, labels: np.ndarray, order: np.ndarray, target_far: float = DEFAULT_TARGET_FAR,
    max_frr: float = MAX_FRR,
) -> CalibrationResult:
    """Thresholds from held-out scores: ``scores[i, j]`` is sample i (of generator ``labels[i]``)
    against generator ``order[j]``, never using sample i itself; -inf where there is no score."""
    labels = np.asarray(labels)
    generators = np.unique(labels)
    result = CalibrationResult(target_far=target_far)
    own = labels[:, None] == order[None, :]
    best_impostor = np.where(own, -np.inf, scores).max(axis=1)
    genuine_all = scores[own]
    genuine_all = genuine_all[np.isfinite(genuine_all)]
    glob = pick_threshold(best_impostor, genuine_all, target_far, max_frr)
    tar = float(np.mean(genuine_all >= glob)) if genuine_all.size else None
    impostor_all = scores[~own]
    result.separation = separation(genuine_all, impostor_all[np.isfinite(impostor_all)])
    result.thresholds.append(Threshold(None, glob, "loo-far", len(genuine_all), len(best_impostor), tar))
    for j, gid in enumerate(order):
        impostors = scores[~own[:, j], j]
        genuine = scores[own[:, j], j]
        genuine = genuine[np.isfinite(genuine)]
        if len(impostors) < MIN_IMPOSTORS or len(genuine) == 0:
            result.thresholds.append(Threshold(int(gid), glob, "global", len(genuine), len(impostors)))
            continue
        thr = pick_threshold(impostors, genuine, target_far, max_frr)
        result.thresholds.append(
            Threshold(int(gid), thr, "loo-far", len(genuine), len(impostors), float(np.mean(genuine >= thr)))
        )
    n_imp = len(best_impostor)
    coarse = n_imp * target_far < 1
    parts = [
        f"calibrated on {len(labels)} samples of {len(generators)} generators at FAR {target_far:g} "
        f"(false rejects at most {max_frr:g})"
    ]
    if coarse:
        parts.append(
            f"only {n_imp} impostor scores, so the false-accept part of each threshold is the highest impostor score "
            f"(enroll more samples for a finer FAR)"
        )
    result.message = "; ".join(parts)
    return result
