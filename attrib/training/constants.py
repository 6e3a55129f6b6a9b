"""How the residual statistics' normalisation constants (``fingerprint_stats.npy``) are derived.

Deterministic: procedural images only (no real or test images), so
``np.save(path, derive_constants().astype(np.float32))`` rewrites the shipped file.
"""

from __future__ import annotations

import numpy as np

from ..extractors.residual.fingerprint import BLOCKS, raw_statistics


def synthetic_image(rng: np.random.Generator, size: int = 256) -> np.ndarray:
    """One procedural RGB image: 1/f^a colour noise + blurred shapes, optional
    up/down-sampling, sensor-like noise, gamma, 8-bit quantisation."""
    s = size
    fy = np.fft.fftfreq(s)[:, None]
    fx = np.fft.rfftfreq(s)[None, :]
    f = np.sqrt(fy ** 2 + fx ** 2)
    f[0, 0] = 1.0 / s
    alpha = rng.uniform(1.6, 3.2)  # power spectrum ~ f^-alpha
    amp = f ** (-alpha / 2)
    base = np.fft.irfft2(amp * (rng.standard_normal((s, fx.shape[1])) + 1j * rng.standard_normal((s, fx.shape[1]))), s=(s, s))
    base = (base - base.mean()) / (base.std() + 1e-9)
    mix = rng.normal(size=(3, 3)) * rng.uniform(0.1, 0.6) + np.eye(3)  # channel correlation
    img = np.empty((s, s, 3))
    comps = [base]
    for _ in range(2):
        o = np.fft.irfft2(amp * (rng.standard_normal((s, fx.shape[1])) + 1j * rng.standard_normal((s, fx.shape[1]))), s=(s, s))
        comps.append((o - o.mean()) / (o.std() + 1e-9))
    for c in range(3):
        img[..., c] = sum(mix[c, k] * comps[k] for k in range(3))
    # piecewise-constant shapes (edges)
    yy, xx = np.mgrid[:s, :s]
    for _ in range(rng.integers(0, 6)):
        cy, cx, r = rng.uniform(0, s), rng.uniform(0, s), rng.uniform(s / 16, s / 3)
        m = ((yy - cy) ** 2 + (xx - cx) ** 2) < r * r
        img[m] += rng.normal(size=3) * 1.5
    img = img * rng.uniform(15, 60) + rng.uniform(60, 190)
    op = rng.integers(0, 4)
    if op == 1:  # nearest x2 up-sampling of the top-left quarter
        img = np.repeat(np.repeat(img[: s // 2, : s // 2], 2, 0), 2, 1)
    elif op == 2:  # bilinear-ish x2 up-sampling
        q = img[: s // 2, : s // 2]
        q = np.repeat(np.repeat(q, 2, 0), 2, 1)
        img = 0.25 * (q + np.roll(q, 1, 0) + np.roll(q, 1, 1) + np.roll(np.roll(q, 1, 0), 1, 1))
    elif op == 3:  # 3-tap blur
        img = (img + np.roll(img, 1, 0) + np.roll(img, -1, 0)) / 3
        img = (img + np.roll(img, 1, 1) + np.roll(img, -1, 1)) / 3
    img = img + rng.normal(size=img.shape) * rng.uniform(0.0, 3.0)
    img = np.clip(img, 0, 255)
    g = rng.uniform(0.8, 1.25)
    img = 255.0 * (img / 255.0) ** g
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def derive_constants(n_images: int = 160, seed: int = 20240601) -> np.ndarray:
    """Deterministically derive the normalisation constants from synthetic images.

    Returns [2, STATS_DIM-1]: the per-dimension mean of :func:`raw_statistics` over
    ``n_images`` images from :func:`synthetic_image`, and a per-dimension scale
    equal to each block's RMS distance to that mean (one value per block), so
    every block contributes about equally.  ``fingerprint_stats.npy`` was written
    with ``np.save(path, derive_constants().astype(np.float32))``.
    """
    rng = np.random.default_rng(seed)
    X = np.stack([raw_statistics(synthetic_image(rng)) for _ in range(n_images)])
    mu = X.mean(0)
    scale = np.empty_like(mu)
    o = 0
    for _, n in BLOCKS:
        z = X[:, o:o + n] - mu[o:o + n]
        scale[o:o + n] = np.sqrt((z * z).sum(1).mean()) + 1e-6
        o += n
    return np.stack([mu, scale])
