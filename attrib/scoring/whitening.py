"""The whitening fitted on the gallery itself, refitted when the gallery changed enough to matter.

Extractor embeddings share a large common component and correlated
dimensions, so raw cosine similarity wastes most of its range. The whitening
learns, from the enrolled vectors alone (no training data, no weights):

1. the gallery mean, subtracted from every vector;
2. the within-generator covariance ``Sw``, shrunk a little (``SHRINK``) towards a multiple of the
   identity (``Sw' = (1 - s) Sw + s tr(Sw)/d I``), and whitens by it, so the
   directions in which samples of one generator vary count less than those in
   which generators differ;
3. a constant coordinate equal to the RMS norm of the whitened gallery, then
   L2 normalisation, so that a query far from every enrolled vector keeps a
   low score instead of being centred away (this is what keeps open-set
   rejection working).

Queries and enrolled vectors go through the same transform; the FAISS index
stores transformed vectors. With fewer than two generators of two samples
each, the whitening is the identity.

The fit reads a bounded sample stratified by generator (:func:`fit_sample`), so its cost is
capped however large the gallery; the sample is chosen by a hash of each vector id, so vectors
added later change it only by those that enter it. A whitening records what it was fitted on
(how many vectors of each generator the gallery held, and the largest vector id);
:func:`refit_reason` says when the gallery has changed enough since to refit it (and rewrite the
index, which stores whitened vectors): small galleries after every change, large ones once the
changes would move more than :data:`REFIT_SHARE` of the sample it is fitted on. A vector added to
a generator enters that sample with the chance the generator's quota leaves it (every one of a
new or small generator, few of a large one's), so ten images of a new generator among six
generators of 10,000 move about 1 % of it, and 6,000 more of an enrolled one about 6 %.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from ..index.whitening import IDENTITY, Whitening

SHRINK = 0.1
MAX_FIT_SAMPLES = 20_000
FIT_PER_GENERATOR = 200  # vectors of one generator in the sample the whitening is fitted on
REFIT_EVERY_CHANGE_BELOW = 20_000  # galleries smaller than this are refitted after every change
REFIT_SHARE = 0.1  # larger ones once changes would move this share of the sample the whitening is fitted on


def fit_whitening(vectors: np.ndarray, labels: np.ndarray, shrink: float = SHRINK, seed: int = 0) -> Whitening:
    """Fit the whitening on enrolled vectors; identity when there is too little to fit."""
    labels = np.asarray(labels)
    generators, counts = np.unique(labels, return_counts=True)
    if (counts >= 2).sum() < 2:
        return IDENTITY
    if len(vectors) > MAX_FIT_SAMPLES:
        keep = np.random.default_rng(seed).choice(len(vectors), MAX_FIT_SAMPLES, replace=False)
        vectors, labels = vectors[keep], labels[keep]
    x = vectors.astype(np.float64)
    d = x.shape[1]
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    sums = np.zeros((len(counts), d))
    np.add.at(sums, inverse, x)
    centred = x - (sums / counts[:, None])[inverse]
    within = centred.T @ centred / len(x)
    within = (1 - shrink) * within + shrink * (np.trace(within) / d) * np.eye(d)
    eigenvalues, eigenvectors = np.linalg.eigh(within)
    matrix = eigenvectors / np.sqrt(np.maximum(eigenvalues, 1e-12))
    mean = x.mean(axis=0)
    whitened = (x - mean) @ matrix
    constant = float(np.sqrt(np.mean(np.sum(whitened**2, axis=1))))
    return Whitening("whiten", mean.astype(np.float32), matrix.astype(np.float32), constant)


def fit_sample(labels: np.ndarray, ids: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    """Positions of the vectors to fit on: at most FIT_PER_GENERATOR of each generator, MAX_FIT_SAMPLES in all,
    chosen by a hash of their ``ids`` when given (see :func:`attrib.scoring.calibration.stratified`)."""
    from .calibration import stratified

    return stratified(labels, MAX_FIT_SAMPLES, FIT_PER_GENERATOR, seed, ids)


def refit_reason(whitening: Whitening, changes: int, added: Mapping[int, int] | None = None) -> str | None:
    """Why ``whitening`` must be refitted after ``changes`` vector inserts, deletes and relabels since its fit
    ("" for a small gallery, which is refitted after any change); None while it may stay.

    A large gallery's whitening stays while the changes would move at most REFIT_SHARE of the sample it is
    fitted on (:func:`fit_moved`); an identity whitening is refitted once a whitening can be fitted.
    ``added``: the vectors added since the fit (ids above ``whitening.fitted_max_id``) by generator id;
    None when not counted, and then every change is taken to move one vector of the sample, the most it
    can (an answer of None then holds whatever they were)."""
    if changes <= 0:
        return None
    fitted = whitening.fitted_count
    if fitted < REFIT_EVERY_CHANGE_BELOW:
        return ""
    then = whitening.fitted_counts
    if not then:  # fitted before the counts by generator were recorded: taken as even, every change in full
        shares = np.diff(np.linspace(0, fitted, max(1, whitening.fitted_generators) + 1).round().astype(np.int64))
        then, added = dict(enumerate(shares.tolist())), None
    now = dict(then)
    for generator, count in (added or {}).items():
        now[generator] = now.get(generator, 0) + int(count)
    if whitening.kind == "identity" and (added is None or sum(c >= 2 for c in now.values()) >= 2):
        return f"{changes} vectors changed since an identity whitening was fitted on {fitted}"
    moved, sample = fit_moved(now, changes, added)
    if moved > REFIT_SHARE * sample:
        return (f"{changes} vector changes since would move about {moved:.0f} of the {sample} vectors it is "
                f"fitted on, over {REFIT_SHARE:.0%}")
    return None


def fit_moved(counts: Mapping[int, int], changes: int, added: Mapping[int, int] | None) -> tuple[float, int]:
    """(about how many vectors of the fit sample :func:`fit_sample` draws from a gallery of ``counts``
    vectors by generator id have changed, how many it holds), after ``changes`` since the fit.

    Each vector added to a generator (``added``, by generator id, included in ``counts``) entered the
    sample with the chance its quota leaves it (quota over count: 1 for a new or small generator); every
    other change (a delete, a relabel, a changed vector, whose generator is not known) counts as one
    vector moved and one fewer in the sample, and so does every change when ``added`` is None."""
    from .calibration import quotas

    quota = dict(zip(counts, quotas(np.array(list(counts.values()), np.int64), MAX_FIT_SAMPLES,
                                    FIT_PER_GENERATOR).tolist()))
    added = added if added is not None else {}
    other = max(0, changes - sum(added.values()))
    entered = sum(count * quota[g] / counts[g] for g, count in added.items() if count > 0)
    return entered + other, max(0, sum(quota.values()) - other)


def staleness(whitening: Whitening, changes: int) -> str:
    """How far the gallery moved since ``whitening`` was fitted, in words."""
    fitted = f"fitted on {whitening.fitted_count} vectors of {whitening.fitted_generators} generators"
    if not whitening.fitted_count:
        fitted = "fitted on a gallery of unrecorded size"
    return f"{fitted}; {changes} vector changes since"


def held_out_score_matrix(whitening: Whitening):
    """How to score enrolled samples held-out for calibration under ``whitening``: leave-one-out
    when nothing is fitted (identity), else :func:`crossfit_score_matrix`."""
    from .calibration import loo_score_matrix

    return loo_score_matrix if whitening.kind == "identity" else crossfit_score_matrix


def crossfit_score_matrix(
    vectors: np.ndarray, labels: np.ndarray, folds: int = 2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Held-out scores for calibration when the whitening is fitted on the gallery.

    Scoring a sample with a whitening fitted on that very sample inflates its
    genuine score. Instead each generator's samples are split into ``folds``;
    the samples of one fold are transformed by a whitening fitted on the others
    and scored against them. Returns ([n_samples, n_generators], generators).
    """
    from .calibration import generator_score_matrix

    labels = np.asarray(labels)
    generators = np.unique(labels)
    rng = np.random.default_rng(seed)
    fold = np.empty(len(labels), dtype=np.int64)
    for g in generators:
        rows = np.flatnonzero(labels == g)
        fold[rng.permutation(rows)] = np.arange(len(rows)) % folds
    scores = np.full((len(labels), len(generators)), -np.inf)
    for f in range(folds):
        test, train = fold == f, fold != f
        if not test.any() or not train.any():
            continue
        fitted = fit_whitening(vectors[train], labels[train])
        sims = fitted.apply(vectors[test]) @ fitted.apply(vectors[train]).T
        scores[test] = generator_score_matrix(sims.astype(np.float64), labels[train], generators)
    return scores, generators
