"""Forensic fingerprint of an image's noise residual (numpy only: no network, one small linear map).

The statistics are co-occurrence histograms (SPAM-style Markov features)
of truncated pixel differences, computed at native resolution over a fixed
budget of crops, so cost is nearly constant in image size and nothing is
resized:

* ``gray``  (343): horizontal + vertical triples of first differences of the
  luma channel, truncated to [-3, 3] (7**3 bins).  Captures the generator's
  local smoothness / noise texture and up-sampling correlations.
* ``chroma`` (125): the same for the chroma planes R-G and B-G, truncated to
  [-2, 2].  Captures colour-interpolation and decoder colour traces.
* ``rgb``   (125): joint (dR, dG, dB) first differences at one position
  (horizontal + vertical), truncated to [-2, 2].  Cross-channel coupling of the
  residual (demosaicing, colour-space conversion, VAE decoders).

Each histogram is turned into log-probabilities, centred and scaled with FIXED
constants (per-dimension mean, one scale per block), and a constant coordinate
is appended.  The constants come from synthetic procedural images
(:func:`attrib.training.constants.derive_constants`, stored in
``fingerprint_stats.npy`` beside this module); no real or test images are used.  (The constant coordinate mattered when
these statistics were the embedding, version 1; the projection below folds it into
its offset, and the gallery backend adds its own for open-set rejection.)

These ``STATS_DIM`` statistics (:func:`statistics`) are not the embedding itself: the
fingerprint (:func:`fingerprint`, ``DIM`` = 65) is their image under a projection learned
from thousands of simulated generators (:mod:`.projection`, shipped as
``projection.npz``), which keeps the directions that tell generators apart and drops those
that only the image content moves, gates the directions learned on compressed images by how
compressed the image looks, and appends a constant coordinate.

Crops: up to ``_BUDGET`` pixels in crops of at most 128x128 whose top-left
corners are multiples of 8 from the image origin (so JPEG / VAE / up-sampling
grid phase is preserved), spread evenly over the image.  A 256x256 image is
covered exactly by its four 128x128 crops.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from ...errors import ExtractorError

from .identity import DIM as DIM  # re-exported: the extractor identity
from .identity import VERSION as VERSION

_CROP = 128
_BUDGET = 4 * _CROP * _CROP  # pixels per image: fixed cost
_MAX_CROPS = 8
_EPS = 1e-4  # probability floor before the log
_T_GRAY, _T_CHROMA, _T_RGB = 3, 2, 2
BLOCKS = (("gray", (2 * _T_GRAY + 1) ** 3), ("chroma", (2 * _T_CHROMA + 1) ** 3),
           ("rgb", (2 * _T_RGB + 1) ** 3))
_RAW_DIM = sum(n for _, n in BLOCKS)
_CONST = 1.0  # value of the appended coordinate (blocks have unit RMS spread on synthetic data)
STATS_DIM = _RAW_DIM + 1

_STATS_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fingerprint_stats.npy")
_STATS: np.ndarray | None = None  # [2, _RAW_DIM]: row 0 mean, row 1 per-dim scale


# --------------------------------------------------------------------------- crops
def _axis_positions(n: int, c: int, k: int) -> list[int]:
    """k crop starts of length c in [0, n): centred in k equal segments (away from
    borders, where watermarks and frames live), rounded down to multiples of 8."""
    out = []
    for i in range(k):
        s = int(round((i + 0.5) * n / k - c / 2))
        out.append(min(max(s, 0), n - c) // 8 * 8)
    return out


def crop_boxes(h: int, w: int) -> list[tuple[int, int, int, int]]:
    """(y, x, ch, cw) of the crops analysed for an h x w image."""
    ch, cw = min(h, _CROP), min(w, _CROP)
    n_max = max(1, min(_MAX_CROPS, _BUDGET // (ch * cw)))
    ky_max, kx_max = max(1, h // ch), max(1, w // cw)
    best = (1, 1)
    for ky in range(1, ky_max + 1):
        for kx in range(1, kx_max + 1):
            if ky * kx <= n_max and (ky * kx, -abs(ky - kx)) > (best[0] * best[1], -abs(best[0] - best[1])):
                best = (ky, kx)
    ys = _axis_positions(h, ch, best[0])
    xs = _axis_positions(w, cw, best[1])
    return [(y, x, ch, cw) for y in ys for x in xs]


# --------------------------------------------------------------------------- histograms
def _triples(d: np.ndarray, t: int, axis: int) -> np.ndarray:
    """Counts of (d[i], d[i+1], d[i+2]) along axis, d truncated to [-t, t]."""
    n = 2 * t + 1
    q = np.clip(d, -t, t)
    q += t
    if axis == 0:
        a, b, c = q[:-2], q[1:-1], q[2:]
    else:
        a, b, c = q[:, :-2], q[:, 1:-1], q[:, 2:]
    code = (a * n + b) * n + c
    return np.bincount(code.ravel(), minlength=n ** 3)


def _joint3(d: np.ndarray, t: int) -> np.ndarray:
    """Counts of (dR, dG, dB) at the same position, truncated to [-t, t]. d: [..., 3]."""
    n = 2 * t + 1
    q = np.clip(d, -t, t)
    q += t
    code = (q[..., 0] * n + q[..., 1]) * n + q[..., 2]
    return np.bincount(code.ravel(), minlength=n ** 3)


def _crop_counts(x: np.ndarray) -> list[np.ndarray]:
    """Raw counts for each block for one int16 HxWx3 crop."""
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    # integer luma (ITU-R BT.601 weights, rounded), keeps differences integral
    x32 = x.astype(np.int32)
    y = ((x32[..., 0] * 77 + x32[..., 1] * 150 + x32[..., 2] * 29 + 128) >> 8).astype(np.int16)
    gray = _triples(np.diff(y, axis=0), _T_GRAY, 0) + _triples(np.diff(y, axis=1), _T_GRAY, 1)
    chroma = 0
    for c in (r - g, b - g):
        chroma = chroma + _triples(np.diff(c, axis=0), _T_CHROMA, 0) + _triples(np.diff(c, axis=1), _T_CHROMA, 1)
    rgb = _joint3(np.diff(x, axis=0), _T_RGB) + _joint3(np.diff(x, axis=1), _T_RGB)
    return [gray, chroma, rgb]


def raw_statistics(image: np.ndarray) -> np.ndarray:
    """Un-normalised log-probability features (length ``STATS_DIM - 1``)."""
    im = _check(image)
    h, w = im.shape[:2]
    acc = [np.zeros(n, dtype=np.int64) for _, n in BLOCKS]
    for y0, x0, ch, cw in crop_boxes(h, w):
        crop = im[y0:y0 + ch, x0:x0 + cw].astype(np.int16)
        for i, cnt in enumerate(_crop_counts(crop)):
            acc[i] += cnt
    out = []
    for cnt in acc:
        p = cnt / max(1, cnt.sum())
        out.append(np.log(p + _EPS))
    return np.concatenate(out)


def _check(image: np.ndarray) -> np.ndarray:
    im = np.asarray(image)
    if im.ndim != 3 or im.shape[2] != 3:
        raise ValueError(f"expected HxWx3 RGB image, got shape {im.shape}")
    if im.shape[0] < 64 or im.shape[1] < 64:
        raise ValueError(f"image must be at least 64x64, got {im.shape[:2]}")
    if im.dtype != np.uint8:
        im = np.clip(np.rint(im), 0, 255).astype(np.uint8) if im.dtype.kind == "f" else im.astype(np.uint8)
    return im


def _stats() -> np.ndarray:
    global _STATS
    if _STATS is None:
        if not os.path.exists(_STATS_PATH):
            raise ExtractorError(f"the residual extractor's constants {_STATS_PATH} are missing; reinstall attrib")
        st = np.load(_STATS_PATH).astype(np.float64)
        if st.shape != (2, _RAW_DIM):
            raise RuntimeError(f"bad fingerprint constants shape {st.shape}")
        _STATS = st
    return _STATS


# --------------------------------------------------------------------------- API
def statistics(image: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 RGB image (H, W >= 64) -> float32 [STATS_DIM] standardised co-occurrence statistics."""
    st = _stats()
    z = (raw_statistics(image) - st[0]) / st[1]
    return np.append(z, _CONST).astype(np.float32)


def statistics_batch(images: Sequence[np.ndarray]) -> np.ndarray:
    """List of images -> float32 [n, STATS_DIM]."""
    if len(images) == 0:
        return np.zeros((0, STATS_DIM), dtype=np.float32)
    return np.stack([statistics(im) for im in images])


def fingerprint_batch(images: Sequence[np.ndarray]) -> np.ndarray:
    """List of images -> float32 [n, DIM]: the statistics through the learned projection."""
    from .projection import project

    if len(images) == 0:
        return np.zeros((0, DIM), dtype=np.float32)
    return project(statistics_batch(images))


def fingerprint(image: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 RGB image (H, W >= 64) -> float32 [DIM] embedding."""
    return fingerprint_batch([image])[0]
