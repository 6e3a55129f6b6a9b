"""Fast tests for the weights-free noise-residual fingerprint (attrib.extractors.residual.fingerprint)."""

from __future__ import annotations


import numpy as np
import pytest

from attrib.extractors.residual import fingerprint as fp
from attrib.training import constants


def _image(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    base = 128 + 60 * np.sin(xx / 17.0)[..., None] * np.cos(yy / 23.0)[..., None] * np.array([1.0, 0.8, 0.6])
    return np.clip(base + rng.normal(0, 4, (h, w, 3)), 0, 255).astype(np.uint8)


def test_constants():
    assert isinstance(fp.DIM, int) and fp.STATS_DIM > 500 and fp.DIM < fp.STATS_DIM
    assert fp.VERSION == "3"
    st = np.load(fp._STATS_PATH)
    assert st.shape == (2, fp.STATS_DIM - 1)
    assert np.all(np.isfinite(st)) and np.all(st[1] > 0)


@pytest.mark.parametrize("shape", [(64, 64), (67, 301), (64, 900), (900, 64), (256, 256), (1023, 777)])
def test_shape_dtype_finite(shape):
    v = fp.fingerprint(_image(*shape))
    assert v.shape == (fp.DIM,)
    assert v.dtype == np.float32
    assert np.all(np.isfinite(v))
    assert np.any(v != 0)


@pytest.mark.parametrize("shape", [(64, 64), (67, 301), (1023, 777), (3000, 64)])
def test_crops_inside_and_aligned(shape):
    h, w = shape
    boxes = fp.crop_boxes(h, w)
    assert 1 <= len(boxes) <= fp._MAX_CROPS
    assert sum(ch * cw for _, _, ch, cw in boxes) <= fp._BUDGET
    for y, x, ch, cw in boxes:
        assert y % 8 == 0 and x % 8 == 0
        assert 0 <= y and y + ch <= h and 0 <= x and x + cw <= w


def test_flat_and_extreme_images():
    for im in (np.zeros((64, 64, 3), np.uint8), np.full((80, 90, 3), 255, np.uint8)):
        v = fp.fingerprint(im)
        assert np.all(np.isfinite(v)) and np.any(v != 0)


def test_deterministic_and_batch():
    ims = [_image(128, 160, s) for s in range(3)]
    a = fp.fingerprint_batch(ims)
    b = fp.fingerprint_batch(ims)
    assert a.shape == (3, fp.DIM) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    # alone, the projection is a matrix-vector product, whose float64 sums may round the last float32 bit otherwise
    np.testing.assert_allclose(a[1], fp.fingerprint(ims[1]), rtol=1e-6, atol=1e-6)
    assert fp.fingerprint_batch([]).shape == (0, fp.DIM)


def test_rejects_bad_input():
    with pytest.raises(ValueError):
        fp.fingerprint(np.zeros((32, 128, 3), np.uint8))
    with pytest.raises(ValueError):
        fp.fingerprint(np.zeros((128, 128), np.uint8))


def test_centred_not_degenerate():
    """Cosine between unrelated images must not be ~1 (output is centred)."""
    rng = np.random.default_rng(3)
    vs = fp.fingerprint_batch([constants.synthetic_image(rng, 128) for _ in range(6)])
    vs = vs / np.linalg.norm(vs, axis=1, keepdims=True)
    cos = vs @ vs.T
    off = cos[~np.eye(len(vs), dtype=bool)]
    assert off.mean() < 0.9


def _upsample(x: np.ndarray, kind: str, kernel: np.ndarray | None = None) -> np.ndarray:
    x = x.astype(np.float64)
    if kind == "nearest":
        y = np.repeat(np.repeat(x, 2, 0), 2, 1)
    elif kind == "bilinear":
        y = np.repeat(np.repeat(x, 2, 0), 2, 1)
        y = 0.25 * (y + np.roll(y, 1, 0) + np.roll(y, 1, 1) + np.roll(np.roll(y, 1, 0), 1, 1))
    else:  # transposed-convolution-like: zero insertion + fixed 4x4 kernel (circular)
        z = np.zeros((x.shape[0] * 2, x.shape[1] * 2, 3))
        z[::2, ::2] = x
        k = kernel / kernel.sum() * 4
        y = np.zeros_like(z)
        for i in range(4):
            for j in range(4):
                y += k[i, j] * np.roll(np.roll(z, i - 1, 0), j - 1, 1)
    return np.clip(np.rint(y), 0, 255).astype(np.uint8)


def test_separates_upsampling_traces():
    """Same content, different x2 up-samplers -> nearest-centroid attribution works."""
    rng = np.random.default_rng(11)
    contents = [constants.synthetic_image(rng, 64) for _ in range(8)]
    kernel = np.abs(np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 16 + np.random.default_rng(5).normal(0, 0.05, (4, 4)))
    kinds = ["nearest", "bilinear", "tconv"]
    feats = {k: fp.fingerprint_batch([_upsample(c, k, kernel) for c in contents]) for k in kinds}
    norm = {k: v / np.linalg.norm(v, axis=1, keepdims=True) for k, v in feats.items()}
    centroids = np.stack([norm[k][:4].mean(0) for k in kinds])
    correct = total = 0
    for ci, k in enumerate(kinds):
        pred = (norm[k][4:] @ centroids.T).argmax(1)
        correct += int((pred == ci).sum())
        total += len(pred)
    assert correct / total >= 0.9


def test_derive_constants_small_is_deterministic():
    a = constants.derive_constants(n_images=3, seed=1)
    b = constants.derive_constants(n_images=3, seed=1)
    assert a.shape == (2, fp.STATS_DIM - 1)
    np.testing.assert_array_equal(a, b)


def test_shipped_constants_match_derivation():
    st = np.load(fp._STATS_PATH)
    np.testing.assert_allclose(constants.derive_constants().astype(np.float32), st, rtol=1e-4, atol=1e-5)
