"""Fusion of several extractors (attrib.scoring.fusion): weights by separation, fused margins, fused calibration."""

from types import SimpleNamespace

import numpy as np
import pytest

from attrib.extractors.contract import BoundExtractor
from attrib.gallery import Gallery
from attrib.host.manager import ExtractorSpec
from attrib.scoring import calibration as scoring
from attrib.scoring import fusion
from attrib.scoring.whitening import crossfit_score_matrix
from attrib.storage.fast_reader import FastReader
from attrib.synthetic.cohort import COHORT_VERSION
from attrib.upkeep.freshness import LoadedIndex, read_view

from conftest import ColorMean, ColorPercentiles


def _view(separation, thresholds):
    return LoadedIndex(0, "k", None, np.zeros(0), np.zeros(0), {}, thresholds, None, separation=separation)


def test_separation_is_d_prime():
    genuine, impostors = np.array([1.0, 3.0]), np.array([-1.0, 1.0])
    assert scoring.separation(genuine, impostors) == pytest.approx(2.0)
    assert scoring.separation(np.array([1.0]), impostors) is None
    # identical distributions separate nothing
    assert scoring.separation(impostors, impostors) == pytest.approx(0.0)


def test_weights_follow_separation():
    w = fusion.fusion_weights([_view(2.0, {}), _view(1.0, {})])
    assert w.sum() == pytest.approx(1.0)
    assert w[0] / w[1] == pytest.approx(2.0 ** fusion.FUSION_POWER)
    # an extractor that separates nothing (or worse) gets no weight
    assert list(fusion.fusion_weights([_view(3.0, {}), _view(-0.5, {})])) == [1.0, 0.0]
    # galleries calibrated before separation was stored: equal weights
    assert list(fusion.fusion_weights([_view(None, {}), _view(4.0, {})])) == [0.5, 0.5]


def test_fuse_is_the_weighted_margin():
    # per-generator thresholds (1, 2) are not used: margins are from the global one (None)
    strong = _view(2.0, {None: 0.5, 1: 0.9, 2: 0.0})
    weak = _view(1.0, {None: 0.1, 1: 0.7, 2: 0.7})
    # the weak extractor prefers generator 2, the strong one generator 1: the strong one wins
    fused = fusion.fuse([strong, weak], [{1: 0.9, 2: 0.5}, {1: 0.2, 2: 0.6}])
    w = fusion.fusion_weights([strong, weak])
    assert fused[1] == pytest.approx(w[0] * 0.4 + w[1] * 0.1)
    assert fused[2] == pytest.approx(w[0] * 0.0 + w[1] * 0.5)
    assert max(fused, key=fused.get) == 1
    # a generator one extractor did not return counts with that extractor's lowest margin
    partial = fusion.fuse([strong, weak], [{1: 0.9}, {1: 0.2, 2: 0.6}])
    assert partial[2] == pytest.approx(w[0] * 0.4 + w[1] * 0.5)


def test_offset_threshold_uses_each_generators_own_offset():
    strong = _view(2.0, {None: 0.5, 1: 0.9, 2: 0.5})
    weak = _view(1.0, {None: 0.1, 1: 0.7, 2: 0.1})
    w = fusion.fusion_weights([strong, weak])
    assert fusion.offset_threshold([strong, weak], 1) == pytest.approx(w[0] * 0.4 + w[1] * 0.6)
    # a generator calibrated like the global threshold (or not at all) needs a fused margin of 0
    assert fusion.offset_threshold([strong, weak], 2) == pytest.approx(0.0)
    assert fusion.offset_threshold([strong, weak], 99) == pytest.approx(0.0)
    fitted = fusion.Fusion([strong, weak], w, {}, fusion.OFFSETS)
    assert fitted.threshold(1) == pytest.approx(w[0] * 0.4 + w[1] * 0.6)


def bound(cls):
    return BoundExtractor(ExtractorSpec(cls, "test-fusion"))


@pytest.fixture
def two_extractor_gallery(tmp_path, make_set):
    gallery = Gallery(tmp_path / "g")
    for name in ("red", "green", "blue"):
        gallery.enroll(name, make_set(name, 6), bound(ColorMean))
    gallery.reembed(bound(ColorPercentiles))
    yield gallery
    gallery.close()


def _views(gallery):
    return [read_view(gallery.root, bound(cls).identity.key) for cls in (ColorMean, ColorPercentiles)]


def test_fused_thresholds_come_from_held_out_fused_scores(two_extractor_gallery, store_of):
    gallery = two_extractor_gallery
    views = _views(gallery)
    fitted = fusion.fit_fusion(store_of(gallery.root), views)
    assert fitted.method == fusion.HELD_OUT and fitted.n_samples == 18
    # recompute independently: cross-fitted scores per extractor, minus its global threshold, weighted
    fused = 0.0
    for weight, view in zip(fitted.weights, views):
        with FastReader.open(gallery.root) as reader:
            _, labels, matrix = reader.vectors_of_samples(view.extractor_id)
        scores, order = crossfit_score_matrix(matrix.astype(np.float64), labels)
        fused = fused + weight * (scores - view.threshold(None))
    expected = scoring.calibrate_scores(fused, labels, order, target_far=views[0].target_far)
    assert {t.generator_id: t.threshold for t in expected.thresholds} == pytest.approx(fitted.thresholds)
    # genuine held-out fused scores mostly clear their generator's threshold (5 % false-reject budget)
    own = labels[:, None] == order[None, :]
    genuine = fused[own]
    assert np.mean(genuine >= fitted.thresholds[None]) >= 1 - scoring.MAX_FRR - 1e-9
    # every generator has a threshold of its own, and unknown ids fall back to the global one
    assert set(fitted.thresholds) == {None, *map(int, order)}
    assert fitted.threshold(10_000) == fitted.thresholds[None]


def test_identify_uses_the_fused_thresholds(two_extractor_gallery, make_set, store_of):
    gallery = two_extractor_gallery
    views = _views(gallery)
    store = store_of(gallery.root)
    cohorts = [store.cohort(v.extractor_id, COHORT_VERSION) for v in views]
    fitted = fusion.fit_fusion(store, views, cohorts)
    assert fitted.method == fusion.COHORT and fitted.model is not None
    names = {v: k for k, v in views[0].generator_names.items()}
    queries = make_set("green", 2, seed=9) + make_set("gray", 2, seed=9)
    results = list(gallery.identify(queries, [bound(ColorMean), bound(ColorPercentiles)]))
    assert [r.generator for r in results[:2]] == ["green", "green"]
    for r in results:
        assert r.threshold == pytest.approx(fitted.threshold(names[r.nearest.generator]), abs=1e-6)
        assert r.decision == (r.nearest.generator if r.score >= r.threshold else "unknown")
        assert set(r.nearest.per_extractor) == {"colormean@1", "colorpct@1"}
    assert [r.decision for r in results[:2]] == ["green", "green"]
    assert [r.decision for r in results[2:]] == ["unknown", "unknown"]


def test_too_few_generators_in_common_fall_back_to_offsets(tmp_path, make_set, store_of):
    with Gallery(tmp_path / "g") as gallery:
        gallery.enroll("red", make_set("red", 4), bound(ColorMean))
        gallery.reembed(bound(ColorPercentiles))
        fitted = fusion.fit_fusion(store_of(gallery.root), _views(gallery))
    assert fitted.method == fusion.OFFSETS and fitted.thresholds == {}


def test_view_threshold_falls_back_to_global_then_default():
    assert _view(None, {None: 0.3, 1: 0.7}).threshold(1) == 0.7
    assert _view(None, {None: 0.3, 1: 0.7}).threshold(2) == 0.3
    assert _view(None, {}).threshold(2) == scoring.DEFAULT_THRESHOLD


def test_calibrate_is_calibrate_scores_on_the_held_out_matrix():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(30, 4)) + np.repeat(np.eye(4)[:3] * 3, 10, axis=0)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    labels = np.repeat([1, 2, 3], 10)
    direct = scoring.calibrate(vectors, labels)
    scores, order = scoring.loo_score_matrix(vectors, labels)
    split = scoring.calibrate_scores(scores, labels, order)
    assert [(t.generator_id, t.threshold) for t in direct.thresholds] == [
        (t.generator_id, t.threshold) for t in split.thresholds
    ]
    assert direct.separation == split.separation and direct.message == split.message



def test_held_out_margins_fill_missing_impostors_but_not_missing_genuine():
    # generator 3 has a single sample: it lands in one fold only, so the samples of the other
    # fold have no score against it (a missing impostor), and it has no held-out genuine score
    labels = np.array([1, 1, 1, 1, 2, 2, 2, 2, 3])
    matrix = np.random.default_rng(1).normal(size=(9, 6)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    view = _view(None, {None: 0.25})
    view.whitening = SimpleNamespace(kind="whiten")
    margins, order = fusion.held_out_margins(view, matrix, labels)
    scores, _ = crossfit_score_matrix(matrix.astype(np.float64), labels)
    assert list(order) == [1, 2, 3]
    assert np.isneginf(margins[8, 2])  # the lone sample's own generator stays missing
    missing = ~np.isfinite(scores[:8, 2])
    assert missing.any()
    lowest = np.min(np.where(np.isfinite(scores[:8]), scores[:8], np.inf), axis=1) - 0.25
    assert np.allclose(margins[:8, 2][missing], lowest[missing])  # filled with the row's lowest margin
    finite = np.isfinite(scores)
    assert np.allclose(margins[finite], scores[finite] - 0.25)


def test_reembed_calibrates_at_the_asked_far(tmp_path, make_set):
    with Gallery(tmp_path / "g") as gallery:
        for name in ("red", "green"):
            gallery.enroll(name, make_set(name, 4), bound(ColorMean), target_far=0.05)
        gallery.reembed(bound(ColorPercentiles), target_far=0.05)
        first, second = _views(gallery)
        assert first.target_far == second.target_far == 0.05
        gallery.reembed(bound(ColorPercentiles))  # nothing new: keeps the FAR it had
        assert _views(gallery)[1].target_far == 0.05
