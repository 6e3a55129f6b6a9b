"""Score fusion weighted by each extractor's calibrated separation (attrib.identify.fuse)."""

from types import SimpleNamespace

import numpy as np
import pytest

from attrib import identify, scoring


def _view(separation, thresholds):
    return SimpleNamespace(separation=separation, thresholds=thresholds)


def test_separation_is_d_prime():
    genuine, impostors = np.array([1.0, 3.0]), np.array([-1.0, 1.0])
    assert scoring.separation(genuine, impostors) == pytest.approx(2.0)
    assert scoring.separation(np.array([1.0]), impostors) is None
    # identical distributions separate nothing
    assert scoring.separation(impostors, impostors) == pytest.approx(0.0)


def test_weights_follow_separation():
    w = identify.fusion_weights([_view(2.0, {}), _view(1.0, {})])
    assert w.sum() == pytest.approx(1.0)
    assert w[0] / w[1] == pytest.approx(2.0 ** identify.FUSION_POWER)
    # an extractor that separates nothing (or worse) gets no weight
    assert list(identify.fusion_weights([_view(3.0, {}), _view(-0.5, {})])) == [1.0, 0.0]
    # galleries calibrated before separation was stored: equal weights
    assert list(identify.fusion_weights([_view(None, {}), _view(4.0, {})])) == [0.5, 0.5]


def test_fuse_is_the_weighted_margin():
    # per-generator thresholds (1, 2) are not used: margins are from the global one (None)
    strong = _view(2.0, {None: 0.5, 1: 0.9, 2: 0.0})
    weak = _view(1.0, {None: 0.1, 1: 0.7, 2: 0.7})
    # the weak extractor prefers generator 2, the strong one generator 1: the strong one wins
    fused = identify.fuse([strong, weak], [{1: 0.9, 2: 0.5}, {1: 0.2, 2: 0.6}])
    w = identify.fusion_weights([strong, weak])
    assert fused[1] == pytest.approx(w[0] * 0.4 + w[1] * 0.1)
    assert fused[2] == pytest.approx(w[0] * 0.0 + w[1] * 0.5)
    assert max(fused, key=fused.get) == 1
    # a generator one extractor did not return counts with that extractor's lowest margin
    partial = identify.fuse([strong, weak], [{1: 0.9}, {1: 0.2, 2: 0.6}])
    assert partial[2] == pytest.approx(w[0] * 0.4 + w[1] * 0.5)


def test_fused_threshold_uses_each_generators_own_offset():
    strong = _view(2.0, {None: 0.5, 1: 0.9, 2: 0.5})
    weak = _view(1.0, {None: 0.1, 1: 0.7, 2: 0.1})
    w = identify.fusion_weights([strong, weak])
    assert identify.fused_threshold([strong, weak], 1) == pytest.approx(w[0] * 0.4 + w[1] * 0.6)
    # a generator calibrated like the global threshold (or not at all) needs a fused margin of 0
    assert identify.fused_threshold([strong, weak], 2) == pytest.approx(0.0)
    assert identify.fused_threshold([strong, weak], 99) == pytest.approx(0.0)
