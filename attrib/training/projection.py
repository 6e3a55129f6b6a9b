"""A fingerprint projection learned from thousands of simulated generators (leave-generators-out).

The residual co-occurrence statistics of :mod:`attrib.extractors.residual.fingerprint` mix two kinds of variation:
what the *generator* leaves (up-sampling, decoder and post-processing traces) and what the
*content* does to the residual (texture, edges, flat areas). Few-shot galleries (ten images a
generator) cannot tell the two apart on their own. This module learns it once, from data the
project makes itself: :func:`simulate` renders images of many simulated generators of
:mod:`attrib.synthetic.zoo` (every family, seeds from :data:`TRAIN_SEED_BASE` up, content indices from
:data:`TRAIN_CONTENT_BASE` up, so never a generator or a scene that the zoo evaluation, the demo or
the tests use), each generator behind a fixed delivery pipeline (lossless, or JPEG / WebP at a
random quality, as published images are). :func:`fit_lda` then fits a linear discriminant
projection: the statistics are whitened by the within-generator covariance and rotated onto the
directions that separate generators, each scaled by sqrt(ratio / (1 + ratio)) of its
between/within variance ratio, so directions that only content moves shrink to nothing.

Two projections of :data:`COMPONENTS` directions each are fitted and concatenated: one on the
generators delivered losslessly and one on those delivered through JPEG / WebP. A single fit on
both spends its directions on the compressed traces and loses some of the fine lossless ones
(measured in docs/measured.md, "Accuracy"). Two more pieces complete the fingerprint:

* a *compression gate*: a logistic regression (:func:`fit_gate`) on the same statistics that tells
  losslessly delivered images from JPEG / WebP ones. The compressed half of the fingerprint is
  multiplied by its probability, so an image that is plainly lossless is not described by
  directions learned on compression traces (for it they are noise);
* a *constant coordinate* (:func:`fit_constant`: the RMS norm of the losslessly delivered training
  fingerprints). The host L2-normalises every embedding; with the constant appended, what survives
  is the fingerprint's direction *and* how far it lies from the training mean, which tells unknown
  generators apart from known ones.

Reproduce the shipped ``projection.npz`` (about 3 minutes on 2 idle cores; training needs
scikit-learn and scikit-image, ``pip install 'attrib[eval]'``)::

    python -m attrib.training.projection attrib/extractors/residual/projection.npz

The file is small (an offset, a [STATS_DIM, 2K] matrix, the gate's weights and bias, the constant)
and loaded with ``allow_pickle=False``.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Iterable, Sequence

import numpy as np

from ..extractors.residual.projection import COMPONENTS, PATH, Projection

TRAIN_SEED_BASE = 1000  # zoo seeds used for training start here (evaluation, demo and tests use small seeds)
TRAIN_CONTENT_BASE = 1_000_000  # zoo content indices used for training start here
N_GENERATORS = 2100
PER_GENERATOR = 6
GATE_C = 0.1  # inverse L2 penalty of the compression gate's logistic regression
REGULARISATION = 0.1  # within-generator covariance shrunk this far towards a multiple of the identity
# delivery of a simulated generator's images: (condition kind, share)
PIPELINES: tuple[tuple[str, float], ...] = (("none", 0.5), ("jpeg", 0.25), ("webp", 0.25))
QUALITY_RANGE = (60, 95)
SEED = 20261125



def pipeline_of(index: int) -> str:
    """The delivery pipeline of training generator ``index``: a condition text such as ``jpeg:73``."""
    rng = np.random.default_rng([SEED, index, 1])
    kinds, weights = zip(*PIPELINES)
    kind = kinds[rng.choice(len(kinds), p=np.asarray(weights) / sum(weights))]
    return kind if kind == "none" else f"{kind}:{int(rng.integers(QUALITY_RANGE[0], QUALITY_RANGE[1] + 1))}"


def generator_of(index: int) -> str:
    """Training generator ``index`` as a zoo name: families in turn, seeds from TRAIN_SEED_BASE."""
    from ..synthetic.zoo import FAMILIES

    return f"{FAMILIES[index % len(FAMILIES)]}-{TRAIN_SEED_BASE + index // len(FAMILIES)}"


def _simulate_one(index: int, per: int = PER_GENERATOR) -> np.ndarray:
    from ..synthetic.conditions import parse_condition
    from ..extractors.residual.fingerprint import statistics_batch
    from ..synthetic.zoo import render

    rng = np.random.default_rng([SEED, index, 2])
    condition = parse_condition(pipeline_of(index))
    contents = TRAIN_CONTENT_BASE + rng.choice(1_000_000, per, replace=False)
    images = [condition.apply(render(generator_of(index), int(c), size=256)) for c in contents]
    return statistics_batch(images)


def simulate(n_generators: int = N_GENERATORS, per: int = PER_GENERATOR, workers: int | None = None,
             progress: bool = True) -> np.ndarray:
    """Standardised fingerprint statistics of simulated generators: [n_generators, per, DIM]."""
    from concurrent.futures import ProcessPoolExecutor
    from functools import partial

    workers = workers or os.cpu_count() or 1
    work = partial(_simulate_one, per=per)
    if workers == 1:
        rows: Iterable[np.ndarray] = map(work, range(n_generators))
        pool = None
    else:
        pool = ProcessPoolExecutor(workers)
        rows = pool.map(work, range(n_generators), chunksize=8)
    try:
        if progress:
            from rich.progress import track

            rows = track(rows, total=n_generators, description="simulating generators", transient=True)
        return np.stack(list(rows))
    finally:
        if pool is not None:
            pool.shutdown()


def fit_lda(features: np.ndarray, components: int = COMPONENTS,
            regularisation: float = REGULARISATION) -> tuple[np.ndarray, np.ndarray]:
    """Fit the projection on [generators, samples, dim] statistics; return (mean [dim], matrix [dim, k])."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 3 or x.shape[0] < 2 or x.shape[1] < 2:
        raise ValueError(f"need [generators >= 2, samples >= 2, dim] features, got shape {x.shape}")
    n, per, d = x.shape
    within = x - x.mean(axis=1, keepdims=True)
    within = np.einsum("gpi,gpj->ij", within, within) / (n * per)
    within = (1 - regularisation) * within + regularisation * (np.trace(within) / d) * np.eye(d)
    means = x.mean(axis=1)
    mean = means.mean(axis=0)
    between = (means - mean).T @ (means - mean) / n
    eigenvalues, eigenvectors = np.linalg.eigh(within)
    whiten = eigenvectors / np.sqrt(eigenvalues)
    ratios, rotation = np.linalg.eigh(whiten.T @ between @ whiten)
    order = np.argsort(ratios)[::-1][:components]
    ratios, rotation = np.maximum(ratios[order], 0.0), rotation[:, order]
    matrix = whiten @ rotation * np.sqrt(ratios / (1 + ratios))
    return mean.astype(np.float32), matrix.astype(np.float32)


def _lossless_rows(n: int) -> np.ndarray:
    return np.array([pipeline_of(i) == "none" for i in range(n)])


def fit_grouped(features: np.ndarray, components: int = COMPONENTS) -> tuple[np.ndarray, np.ndarray]:
    """One projection on the lossless generators and one on the compressed ones, side by side.

    ``features[i]`` belongs to training generator ``i`` (:func:`pipeline_of`). Returns
    (offset [2k], matrix [dim, 2k]) with projected = statistics @ matrix - offset.
    """
    lossless = _lossless_rows(len(features))
    offsets, matrices = [], []
    for rows in (lossless, ~lossless):
        mean, matrix = fit_lda(features[rows], components)
        offsets.append(mean.astype(np.float64) @ matrix)
        matrices.append(matrix)
    return np.concatenate(offsets).astype(np.float32), np.hstack(matrices).astype(np.float32)


def fit_gate(features: np.ndarray) -> tuple[np.ndarray, float]:
    """Logistic regression P(compressed | statistics) on the training images: (weights [dim], bias).

    Needs scikit-learn (``pip install 'attrib[eval]'``) to train; using the shipped gate needs numpy only.
    """
    from sklearn.linear_model import LogisticRegression

    x = np.asarray(features, dtype=np.float64)
    n, per, d = x.shape
    compressed = np.repeat(~_lossless_rows(n), per)
    if compressed.all() or not compressed.any():
        raise ValueError("the compression gate needs both lossless and compressed training generators")
    model = LogisticRegression(C=GATE_C, max_iter=5000).fit(x.reshape(-1, d), compressed)
    return model.coef_[0].astype(np.float32), float(model.intercept_[0])


def fit_constant(features: np.ndarray, offset: np.ndarray, matrix: np.ndarray) -> float:
    """RMS norm of the projected losslessly delivered training images (the appended coordinate)."""
    x = np.asarray(features, dtype=np.float64)
    lossless = x[_lossless_rows(len(x))].reshape(-1, x.shape[-1])
    projected = lossless @ matrix.astype(np.float64) - offset.astype(np.float64)
    projected[:, matrix.shape[1] // 2:] = 0.0  # the gate all but closes the compressed half for these
    return float(np.sqrt(np.mean(np.sum(projected**2, axis=1))))


def fit(features: np.ndarray, components: int = COMPONENTS) -> Projection:
    """Fit the whole projection (grouped LDA, compression gate, constant) on [generators, samples, dim]."""
    offset, matrix = fit_grouped(features, components)
    gate_weights, gate_bias = fit_gate(features)
    return Projection(offset, matrix, gate_weights, gate_bias, fit_constant(features, offset, matrix))


def save(fitted: Projection, out: str, n_generators: int, per: int) -> None:
    """Write ``fitted`` to ``out`` through a temporary file and os.replace."""
    tmp = f"{out}.tmp.npz"
    np.savez(tmp, offset=fitted.offset, matrix=fitted.matrix, gate_weights=fitted.gate_weights,
             gate_bias=np.float64(fitted.gate_bias), constant=np.float64(fitted.constant),
             n_generators=np.int64(n_generators), per=np.int64(per), seed=np.int64(SEED))
    os.replace(tmp, out)


def train(out: str, n_generators: int = N_GENERATORS, per: int = PER_GENERATOR,
          components: int = COMPONENTS, workers: int | None = None) -> None:
    """Simulate, fit and write ``out`` (through a temporary file and os.replace)."""
    started = time.time()
    features = simulate(n_generators, per, workers)
    save(fit(features, components), out, n_generators, per)
    print(f"wrote {out}: {n_generators} simulated generators x {per} images, 2 x {components} components, "
          f"{time.time() - started:.0f} s", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m attrib.training.projection", description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default=PATH)
    parser.add_argument("--generators", type=int, default=N_GENERATORS)
    parser.add_argument("--per", type=int, default=PER_GENERATOR)
    parser.add_argument("--components", type=int, default=COMPONENTS)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args(argv)
    train(args.out, args.generators, args.per, args.components, args.workers)


if __name__ == "__main__":
    main()
