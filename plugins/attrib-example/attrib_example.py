"""attrib-example: a tiny, deterministic, numpy-only extractor plugin.

Copy this file to start your own plugin: rename the class, change ``name``,
bump ``version`` whenever the embedding changes, and keep ``embed_batch``
deterministic.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from attrib import hookimpl

__version__ = "0.1.0"

_MAX_SIDE = 512  # larger images are subsampled (deterministically) to keep this cheap


class ColorStats:
    """Per-channel colour statistics plus gradient statistics (24 numbers, no model)."""

    name = "example-color"
    version = "1"  # bump when the numbers change: old gallery vectors become incomparable
    dim = 24
    options_help = {"max_side": f"subsample images whose longer side exceeds this (default {_MAX_SIDE})"}
    identity_options = ("max_side",)  # options that change the embedding

    def __init__(self, max_side: str | int = _MAX_SIDE):
        try:
            self.max_side = int(max_side)
        except ValueError:
            raise ValueError(f"max_side must be an integer, got {max_side!r}") from None
        if self.max_side < 16:
            raise ValueError(f"max_side must be at least 16, got {self.max_side}")

    def embed_batch(self, images: Sequence[np.ndarray]) -> np.ndarray:
        return np.stack([self._embed_one(im) for im in images]).astype(np.float32)

    def _embed_one(self, image: np.ndarray) -> np.ndarray:
        step = max(1, int(np.ceil(max(image.shape[:2]) / self.max_side)))
        x = image[::step, ::step, :3].astype(np.float64) / 255.0  # H x W x 3 in [0, 1]
        pixels = x.reshape(-1, 3)
        mean = pixels.mean(0)
        std = pixels.std(0)
        p10, p50, p90 = np.percentile(pixels, [10, 50, 90], axis=0)
        colour = np.concatenate([mean, std, p10, p50, p90])  # 15

        luma = x @ np.array([0.299, 0.587, 0.114])
        dx = np.diff(luma, axis=1) if luma.shape[1] > 1 else np.zeros((luma.shape[0], 1))
        dy = np.diff(luma, axis=0) if luma.shape[0] > 1 else np.zeros((1, luma.shape[1]))
        lap = luma[1:-1, 1:-1] * 4 - luma[:-2, 1:-1] - luma[2:, 1:-1] - luma[1:-1, :-2] - luma[1:-1, 2:]
        rg = x[..., 0] - x[..., 1]
        yb = 0.5 * (x[..., 0] + x[..., 1]) - x[..., 2]
        grad = np.array([
            np.abs(dx).mean(), np.abs(dy).mean(), dx.std(), dy.std(),
            np.abs(lap).mean() if lap.size else 0.0,
            float((np.abs(dx) > 0.1).mean()),  # share of strong horizontal edges
            rg.std(), yb.std(),  # opponent-colour spread ("colourfulness")
            np.abs(dx - np.median(dx)).mean(),  # gradient roughness
        ])  # 9
        # The tiny offset keeps an all-black image from giving the all-zero vector the host rejects.
        return np.concatenate([colour, grad]) + 1e-6


@hookimpl
def register_extractors(register):
    register(ColorStats)
