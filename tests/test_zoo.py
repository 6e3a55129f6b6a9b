"""Tests for the synthetic generator zoo (attrib.synthetic.zoo)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from attrib.synthetic import zoo

SIZE = 64


def _gray(im: np.ndarray) -> np.ndarray:
    return im.astype(np.float64).mean(axis=2)


def _lowpass(im: np.ndarray) -> np.ndarray:
    return ndimage.gaussian_filter(_gray(im), 3)


def _residual(im: np.ndarray) -> np.ndarray:
    g = _gray(im)
    return g - ndimage.gaussian_filter(g, 1.0)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_families_and_default_names():
    assert len(zoo.FAMILIES) >= 6
    names = zoo.zoo_generator_names()
    assert names == zoo.zoo_generator_names()  # deterministic order
    assert len(names) == len(set(names)) >= 12
    assert {n.rsplit("-", 1)[0] for n in names} == set(zoo.FAMILIES)
    for n in names:
        fam, seed = n.rsplit("-", 1)
        assert fam in zoo.FAMILIES and seed.isdigit()


@pytest.mark.parametrize("family", zoo.FAMILIES)
def test_shape_dtype_and_determinism(family):
    g = f"{family}-3"
    a = zoo.render(g, 5, SIZE)
    assert a.shape == (SIZE, SIZE, 3) and a.dtype == np.uint8
    zoo._decoder.cache_clear()
    zoo._content.cache_clear()
    zoo._prnu.cache_clear()
    b = zoo.render(g, 5, SIZE)
    assert np.array_equal(a, b)
    assert a.std() > 1.0  # not a blank image
    odd = zoo.render(g, 5, 50)  # sizes not divisible by the up-sampling factor
    assert odd.shape == (50, 50, 3)


def test_any_seed_and_canonical_names():
    assert np.array_equal(zoo.render("TConv-01", 2, SIZE), zoo.render("tconv-1", 2, SIZE))
    big = zoo.render("shuffle-123456789012", 0, SIZE)
    neg = zoo.render("bicubic--4", 0, SIZE)
    assert big.shape == neg.shape == (SIZE, SIZE, 3)


@pytest.mark.parametrize("bad", ["foo-1", "tconv", "tconv-x", "", "nearest_1", "-1"])
def test_bad_names_raise(bad):
    with pytest.raises(ValueError) as info:
        zoo.render(bad, 0, SIZE)
    assert "tconv" in str(info.value) and "bicubic" in str(info.value)


def test_bad_index_and_size_raise():
    with pytest.raises(ValueError):
        zoo.render("nearest-1", -1, SIZE)
    with pytest.raises(ValueError):
        zoo.render("nearest-1", 0, 8)


def test_same_content_across_generators():
    names = zoo.zoo_generator_names()
    for index in range(4):
        ref = _lowpass(zoo.render(names[0], index, 128))
        for g in names[1:]:
            assert _corr(ref, _lowpass(zoo.render(g, index, 128))) > 0.85, (g, index)
    # and different indices are different scenes
    a = _lowpass(zoo.render(names[0], 0, 128))
    b = _lowpass(zoo.render(names[0], 1, 128))
    assert _corr(a, b) < 0.9


def test_generators_differ_in_residual():
    names = ["nearest-1", "nearest-2", "bilinear-1", "tconv-1", "tconv-2", "shuffle-1",
             "upconv-1", "multistage-1"]
    res = {g: _residual(zoo.render(g, 0, 128)) for g in names}
    for i, g1 in enumerate(names):
        for g2 in names[i + 1:]:
            diff = np.sqrt(np.mean((res[g1] - res[g2]) ** 2))
            assert diff > 0.3, (g1, g2, diff)


def test_fingerprint_is_consistent_within_a_generator():
    """A trace of each generator (mean residual spectrum) is closer across its own images than
    to another generator of the same family on the same images."""

    def spectrum(g, idx):
        r = _residual(zoo.render(g, idx, 64))
        return np.log(np.abs(np.fft.fft2(r)) ** 2 + 1e-3)

    a1 = np.mean([spectrum("tconv-1", i) for i in range(0, 6)], axis=0)
    a2 = np.mean([spectrum("tconv-1", i) for i in range(6, 12)], axis=0)
    b2 = np.mean([spectrum("tconv-2", i) for i in range(6, 12)], axis=0)
    assert np.abs(a1 - a2).mean() < np.abs(a1 - b2).mean()


def test_procedural_fallback_without_photos(monkeypatch):
    monkeypatch.setattr(zoo, "_photo_paths", lambda: ())
    zoo._content.cache_clear()
    try:
        for i in range(6):
            im = zoo.render("bilinear-1", i, SIZE)
            assert im.shape == (SIZE, SIZE, 3) and im.std() > 1.0
    finally:
        zoo._content.cache_clear()


def test_write_zoo_writes_and_skips(tmp_path, monkeypatch):
    gens = ["nearest-1", "tconv-2"]
    out = zoo.write_zoo(tmp_path, gens, n_per=2, size=SIZE, start=3)
    assert list(out) == gens
    for g in gens:
        assert [p.name for p in out[g]] == [f"{g}_0003.png", f"{g}_0004.png"]
        for i, p in zip((3, 4), out[g]):
            assert p.parent == tmp_path / g and p.is_file()
            assert np.array_equal(np.asarray(Image.open(p)), zoo.render(g, i, SIZE))
    assert not list(tmp_path.rglob("*.tmp"))

    # second run: everything present with the right size -> nothing is rendered
    def boom(*args, **kwargs):
        raise AssertionError("render called for an existing file")

    monkeypatch.setattr(zoo, "render", boom)
    again = zoo.write_zoo(tmp_path, gens, n_per=2, size=SIZE, start=3)
    assert again == out
    monkeypatch.undo()

    # a file of the wrong size is re-rendered
    stale = out["nearest-1"][0]
    Image.new("RGB", (10, 10)).save(stale)
    zoo.write_zoo(tmp_path, gens, n_per=2, size=SIZE, start=3)
    assert Image.open(stale).size == (SIZE, SIZE)


def test_write_zoo_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError):
        zoo.write_zoo(tmp_path, ["nope-1"], n_per=1, size=SIZE)
    with pytest.raises(ValueError):
        zoo.write_zoo(tmp_path, ["nearest-1"], n_per=1, size=SIZE, fmt="gif")
