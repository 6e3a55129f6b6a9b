"""Per-generator scores and leave-one-out calibration."""

from __future__ import annotations

import numpy as np
import pytest

from attrib.scoring.calibration import aggregate, calibrate, far_threshold, loo_score_matrix


def test_aggregate_means_the_top_three():
    assert aggregate(np.array([0.1, 0.9, 0.5, 0.7])) == pytest.approx(0.7)
    assert aggregate(np.array([0.4])) == pytest.approx(0.4)


def test_loo_excludes_the_sample_itself():
    v = np.eye(3)
    scores, order = loo_score_matrix(v, np.array([1, 1, 2]), top_m=1)
    assert list(order) == [1, 2]
    assert scores[0, 0] == 0.0  # only the other sample of generator 1 counts
    assert scores[2, 1] == -np.inf  # generator 2 has no other sample


def test_far_threshold_accepts_at_most_the_target():
    impostors = np.linspace(0, 1, 1000)
    thr = far_threshold(impostors, 0.01)
    assert np.mean(impostors >= thr) <= 0.01
    assert np.mean(impostors >= thr) >= 0.009


def clusters(n_gen=4, per=12, d=16, spread=0.3, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_gen, d))
    x = np.concatenate([c + spread * rng.normal(size=(per, d)) for c in centres])
    return x / np.linalg.norm(x, axis=1, keepdims=True), np.repeat(np.arange(1, n_gen + 1), per)


def test_calibration_separates_genuine_from_impostors():
    x, y = clusters()
    result = calibrate(x, y, target_far=0.05)
    assert result.calibrated
    per_gen = {t.generator_id: t for t in result.thresholds}
    assert set(per_gen) == {None, 1, 2, 3, 4}
    assert all(t.tar >= 0.9 for t in result.thresholds)


def test_overlapping_generators_get_thresholds_that_keep_far():
    x, y = clusters(spread=3.0)
    result = calibrate(x, y, target_far=0.1)
    scores, order = loo_score_matrix(x, y)
    for t in result.thresholds[1:]:
        j = list(order).index(t.generator_id)
        impostors = scores[y != t.generator_id, j]
        assert np.mean(impostors >= t.threshold) <= 0.1


def test_too_few_samples_falls_back_to_default_and_says_so():
    x, y = clusters(n_gen=1, per=5)
    result = calibrate(x, y)
    assert not result.calibrated
    assert "default threshold 0.5" in result.message
    assert {t.threshold for t in result.thresholds} == {0.5}


def test_target_far_is_validated():
    x, y = clusters()
    with pytest.raises(ValueError, match="between 0 and 1"):
        calibrate(x, y, target_far=1.5)
