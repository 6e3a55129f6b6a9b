"""Open-set decisions: the impostor cohort, thresholds and confidence calibrated on it, and the decision."""

from __future__ import annotations

import numpy as np
import pytest

from attrib.scoring import open_set
from attrib.scoring.decision import AMBIGUOUS, FAMILY, GENERATOR, UNKNOWN, Candidate, decide
from attrib.scoring.open_set import DecisionModel
from attrib.synthetic import cohort


def test_the_cohort_is_deterministic_and_never_uses_training_or_evaluation_seeds():
    items = cohort.items()
    assert items == cohort.items() and len(items) == cohort.size()
    seeds = [int(source.rsplit("-", 1)[1]) for kind, source, _, _ in items if kind == "zoo"]
    assert min(seeds) >= cohort.SEED_BASE > 3100  # the projection trains on seeds 1000-3099, evaluation on small ones
    deliveries = {delivery.split(":")[0] for _, _, _, delivery in items}
    assert {"none", "jpeg", "webp"} <= deliveries  # compressed impostors are what turn camera photos away
    a, b = cohort.render(items[3]), cohort.render(items[3])
    assert a.dtype == np.uint8 and a.shape == (cohort.SIZE, cohort.SIZE, 3) and np.array_equal(a, b)


def test_the_shipped_residual_cohort_matches_a_fresh_embedding():
    from attrib.extractors.contract import BoundExtractor
    from attrib.extractors.residual import ResidualExtractor
    from attrib.host.manager import ExtractorSpec

    bound = BoundExtractor(ExtractorSpec(ResidualExtractor, "attrib.extractors.residual"))
    shipped = bound.impl.cohort_vectors(cohort.COHORT_VERSION)
    assert shipped is not None and shipped.shape == (400, bound.dim)
    picked = np.r_[0:12, 280:400:30]  # every zoo family delivered losslessly, as JPEG and as WebP; photographs
    items = cohort.items()
    fresh = bound.embed([cohort.render(items[i]) for i in picked])
    # Not bit for bit: numpy's float32 SIMD paths differ by CPU, so a rendered pixel may round the
    # other way, and a JPEG or WebP delivery spreads that; measured over the whole cohort against
    # another CPU, 1 - cosine is at most 7e-5 (one WebP image) and 0 for most.
    distance = 1.0 - np.sum(fresh * shipped[picked], axis=1)
    assert distance.max() <= 1e-3  # one image embedded otherwise: an ungated projection moves lossless ones 0.1-0.4
    assert np.median(distance) <= 1e-5  # all moved: a projection 1 % off gives 3e-5, other statistics 6e-3
    assert np.array_equal(np.argmax(fresh @ shipped.T, axis=1), picked)  # in cohort order
    assert bound.impl.cohort_vectors("some other version") is None


@pytest.mark.parametrize("rung", ["jpeg:80", "webp:80"])
def test_the_shipped_cohort_of_each_delivery_version_matches_a_fresh_embedding(rung):
    """The residual extractor ships the cohort of each rung of the default ladder, each image embedded after
    that coding (what a gallery's delivery version is calibrated against); same tolerances as above, and
    never the cohort of another rung."""
    from attrib.delivery import DEFAULT_LADDER, delivered
    from attrib.extractors.contract import BoundExtractor
    from attrib.extractors.residual import ResidualExtractor
    from attrib.host.manager import ExtractorSpec

    bound = BoundExtractor(ExtractorSpec(ResidualExtractor, "attrib.extractors.residual"))
    assert rung in DEFAULT_LADDER
    shipped = bound.impl.delivered_cohort_vectors(cohort.COHORT_VERSION, rung)
    assert shipped is not None and shipped.shape == (400, bound.dim)
    picked = np.r_[0:12, 280:400:30]
    items = cohort.items()
    fresh = delivered(bound, rung).embed([cohort.render(items[i]) for i in picked])
    distance = 1.0 - np.sum(fresh * shipped[picked], axis=1)
    assert distance.max() <= 1e-3 and np.median(distance) <= 1e-5
    assert np.array_equal(np.argmax(fresh @ shipped.T, axis=1), picked)
    originals = bound.impl.cohort_vectors(cohort.COHORT_VERSION)
    assert np.median(1.0 - np.sum(fresh * originals[picked], axis=1)) > 1e-3  # the coding moves them
    assert bound.impl.delivered_cohort_vectors(cohort.COHORT_VERSION, "jpeg:83") is None
    assert bound.impl.delivered_cohort_vectors("some other version", rung) is None


def test_logistic_fit_recovers_a_known_slope_and_copes_with_one_class():
    rng = np.random.default_rng(0)
    x = rng.normal(size=4000)
    y = (rng.random(4000) < 1 / (1 + np.exp(-(0.5 + 2.0 * x)))).astype(float)
    a, b = open_set.fit_logistic(x, y, penalty=1e-6)
    assert a == pytest.approx(0.5, abs=0.15) and b == pytest.approx(2.0, abs=0.25)
    a, b = open_set.fit_logistic(np.arange(5.0), np.ones(5))
    assert b == 0.0 and 1 / (1 + np.exp(-a)) > 0.9


def test_cohort_thresholds_let_through_at_most_the_target_far():
    scores = np.random.default_rng(1).normal(size=(400, 3))
    thresholds = open_set.cohort_thresholds(scores, 0.05)
    assert np.all(np.mean(scores >= thresholds[None, :], axis=0) <= 0.05)
    assert np.all(np.mean(scores >= thresholds[None, :] - 0.05, axis=0) > 0.04)


def test_calibration_separates_genuine_from_cohort_and_is_comparable_across_generators():
    rng = np.random.default_rng(2)
    labels = np.repeat([1, 2], 10)
    order = np.array([1, 2])
    held_out = rng.normal(0.2, 0.05, size=(20, 2))
    held_out[labels == 1, 0] = rng.normal(0.9, 0.03, 10)  # generator 1 scores high on its own samples
    held_out[labels == 2, 1] = rng.normal(0.6, 0.03, 10)  # generator 2 lower, on another scale
    pool = rng.normal(0.0, 0.1, size=(400, 2))
    result = open_set.calibrate(held_out, labels, order, pool, 0.01)
    thresholds = {t.generator_id: t.threshold for t in result.thresholds}
    # far above the cohort, each threshold rises to its own genuine floor (5 % of held-out genuine
    # scores below it), never towards the other generator
    for j, gid in enumerate(order):
        genuine = held_out[labels == gid, j]
        assert thresholds[gid] == pytest.approx(open_set.genuine_floor(genuine))
        assert np.mean(genuine >= thresholds[gid]) >= 0.9
    assert open_set.genuine_floor(np.array([np.inf * -1])) == -np.inf
    model = DecisionModel.from_dict(result.model)
    # typical genuine margins (around +0.05 over the floor) read as genuine, the cohort's (about -0.6 and below) as not
    for gid in (1, 2):
        assert model.p_known(0.05, gid) > 0.6 and model.p_known(-0.6, gid) < 0.01
        assert model.p_known(0.1, gid) > model.p_known(0.05, gid)
    assert model.cohort_size == 400 and set(model.scales) == {"1", "2"}
    # margins count in units of each generator's cohort tail: the same raw margin means more where it is narrower
    narrow, wide = sorted(model.scales, key=model.scales.get)
    assert model.p_known(0.02, int(narrow)) > model.p_known(0.02, int(wide))
    assert all(t.method == "cohort-far" for t in result.thresholds)


def candidate(name, score, threshold=0.5, family=None, confidence=0.9):
    return Candidate(name, family, score, threshold, confidence)


@pytest.mark.parametrize(
    "candidates, level, decision",
    [
        ([candidate("a", 0.4), candidate("b", 0.3)], UNKNOWN, "unknown"),
        ([candidate("a", 0.9), candidate("b", 0.3)], GENERATOR, "a"),
        ([candidate("a", 0.61, family="sd"), candidate("b", 0.60, family="sd")], FAMILY, "sd"),
        ([candidate("a", 0.61, family="sd"), candidate("b", 0.60, family="gan")], AMBIGUOUS, "ambiguous"),
        ([candidate("a", 0.61), candidate("b", 0.45)], GENERATOR, "a"),  # the runner-up is not plausible
        ([candidate("a", 0.61)], GENERATOR, "a"),
    ],
)
def test_decide_answers_generator_family_ambiguous_or_unknown(candidates, level, decision):
    model = DecisionModel(which_a=-2.0, which_b=40.0)  # P(best is right) crosses 0.5 at a gap of 0.05
    outcome = decide(candidates, model)
    assert outcome["decision_level"] == level and outcome["decision"] == decision
    assert 0 <= outcome["confidence"] <= 1 and outcome["reason"]
    if level == UNKNOWN:
        assert outcome["reason"] == "unknown: nearest a, 0.100 below its threshold"
    assert outcome.get("generator") == (decision if level == GENERATOR else None)


def test_one_generator_gallery_rejects_the_cohort_like_strangers(tmp_path, make_set):
    from attrib.extractors.contract import BoundExtractor
    from attrib.gallery import open_gallery
    from attrib.host.manager import ExtractorSpec

    from conftest import ColorMean

    bound = BoundExtractor(ExtractorSpec(ColorMean, "test"))
    with open_gallery(tmp_path / "g") as gallery:
        gallery.enroll("red", make_set("red", 8), bound)
        results = list(gallery.identify(make_set("red", 6, seed=7) + make_set("blue", 3, seed=7), bound))
    own, strangers = results[:6], results[6:]
    # Own casts score within 2e-5 of 1, where a float32 cosine steps by 6e-8, and the threshold is one of
    # their held-out scores: two own images sit 2e-7 and 8e-7 from it, on sides another CPU may swap.
    # Within 1e-6 counts as at the threshold; it may spend its 5 % false-reject budget on the rest.
    assert sum(r.score >= r.threshold - 1e-6 for r in own) >= 4
    assert all(r.decision == ("red" if r.score >= r.threshold else "unknown") for r in own)
    assert [r.decision for r in strangers] == ["unknown"] * 3 and all(r.confidence > 0.5 for r in strangers)


def test_slope_fit_recovers_a_known_slope_through_one_half_at_zero():
    rng = np.random.default_rng(3)
    x = rng.normal(size=4000)
    y = (rng.random(4000) < 1 / (1 + np.exp(-1.5 * x))).astype(float)
    assert open_set.fit_slope(x, y, penalty=1e-6) == pytest.approx(1.5, abs=0.2)
    assert open_set.fit_slope(np.arange(5.0), np.ones(5)) == DecisionModel.known_b  # one class: the prior


@pytest.mark.parametrize("margin", [-0.3, -0.05, -1e-4, 1e-4, 0.05, 0.3])
def test_a_candidates_confidence_is_above_one_half_exactly_when_it_clears_its_threshold(margin):
    rng = np.random.default_rng(4)
    order = np.array([1, 2])
    labels = np.repeat(order, 20)
    held_out = np.where(labels[:, None] == order[None, :], rng.normal(0.7, 0.05, (40, 2)),
                        rng.normal(0.2, 0.05, (40, 2)))
    cohort = rng.normal(0.4, 0.1, (300, 2))  # a cohort that overlaps the genuine scores more than the others do
    result = open_set.calibrate(held_out, labels, order, cohort, 0.01)
    model = DecisionModel.from_dict(result.model)
    for gid in (1, 2):
        assert (model.p_known(margin, gid) > 0.5) == (margin > 0)
        assert model.p_known(0.0, gid) == pytest.approx(0.5)


def test_unknown_confidence_is_one_minus_the_most_confident_candidate():
    weak, stronger = candidate("a", 0.45), candidate("b", 0.44)
    weak.confidence, stronger.confidence = 0.05, 0.3  # b sits nearer its own threshold than a does
    outcome = decide([weak, stronger], DecisionModel())
    assert outcome["decision"] == UNKNOWN and outcome["confidence"] == pytest.approx(0.7)
