"""The residual fingerprint's learned projection at run time (numpy only).

The projection maps the standardised residual statistics (:mod:`.fingerprint`) onto directions
learned from thousands of simulated generators: two linear discriminant projections side by side
(one fitted on losslessly delivered generators, one on JPEG / WebP ones), a compression gate that
scales the compressed half by the probability that the image was compressed, and a constant
coordinate so that L2 normalisation keeps how far a fingerprint lies from the training mean.
It is shipped as ``projection.npz`` beside this file and loaded with ``allow_pickle=False``;
how it is trained lives apart, in :mod:`attrib.training.projection`
(``python -m attrib.training.projection``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

COMPONENTS = 32  # per group (lossless / compressed); the fingerprint has 2 * COMPONENTS + 1 dimensions
PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "projection.npz")


@dataclass(frozen=True)
class Projection:
    """The learned map from standardised statistics to the fingerprint (see the module docstring)."""

    offset: np.ndarray  # [2k]
    matrix: np.ndarray  # [dim, 2k]: lossless directions, then compressed ones
    gate_weights: np.ndarray  # [dim]
    gate_bias: float
    constant: float

    @property
    def dim(self) -> int:
        return self.matrix.shape[1] + 1

    def compressed_probability(self, statistics: np.ndarray) -> np.ndarray:
        """[n] probability that each image was delivered through JPEG / WebP."""
        logits = np.asarray(statistics, dtype=np.float64) @ self.gate_weights.astype(np.float64) + self.gate_bias
        return 1.0 / (1.0 + np.exp(-np.clip(logits, -60.0, 60.0)))

    def apply(self, statistics: np.ndarray) -> np.ndarray:
        """[n, STATS_DIM] statistics -> float32 [n, 2k + 1]: lossless part, gated compressed part, constant."""
        x = np.asarray(statistics, dtype=np.float64)
        projected = x @ self.matrix.astype(np.float64) - self.offset.astype(np.float64)
        half = self.matrix.shape[1] // 2
        projected[:, half:] *= self.compressed_probability(x)[:, None]
        constant = np.full((len(x), 1), self.constant)
        return np.hstack([projected, constant]).astype(np.float32)


@lru_cache(maxsize=1)
def load(path: str = PATH) -> Projection:
    """The shipped projection."""
    with np.load(path, allow_pickle=False) as npz:
        return Projection(npz["offset"].astype(np.float64), npz["matrix"].astype(np.float64),
                          npz["gate_weights"].astype(np.float64), float(npz["gate_bias"]), float(npz["constant"]))


def project(statistics: np.ndarray) -> np.ndarray:
    """[n, STATS_DIM] standardised statistics -> float32 [n, 2 * COMPONENTS + 1] fingerprints."""
    return load().apply(statistics)
