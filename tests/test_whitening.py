"""The gallery-fitted whitening and the schema migration that stores it."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import create_engine, inspect
from sqlalchemy.orm import Session

from attrib.gallery import Gallery
from attrib.index.whitening import IDENTITY, Whitening
from attrib.scoring.calibration import loo_score_matrix
from attrib.scoring.whitening import (REFIT_EVERY_CHANGE_BELOW, crossfit_score_matrix, fit_sample, fit_whitening,
                                      refit_reason)
from attrib.storage import models as db


def anisotropic(n_gen=4, per=10, d=24, seed=0):
    """Generators that differ in a few directions, with large shared within-generator noise elsewhere."""
    rng = np.random.default_rng(seed)
    common = rng.normal(size=d) * 5
    noise_scale = np.ones(d)
    noise_scale[: d // 2] = 4.0  # nuisance directions
    centres = np.zeros((n_gen, d))
    centres[:, d // 2 :] = rng.normal(size=(n_gen, d - d // 2))
    x = np.concatenate([common + c + noise_scale * rng.normal(size=(per, d)) for c in centres])
    y = np.repeat(np.arange(n_gen), per)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), y


def nearest_centroid_accuracy(train, ytrain, test, ytest):
    centroids = np.stack([train[ytrain == g].mean(0) for g in np.unique(ytrain)])
    return float(np.mean(np.argmax(test @ centroids.T, axis=1) == ytest))


def test_whitening_separates_what_raw_cosine_confuses():
    x, y = anisotropic(per=40)
    train = np.arange(len(y)) % 4 != 0
    backend = fit_whitening(x[train], y[train])
    raw = nearest_centroid_accuracy(x[train], y[train], x[~train], y[~train])
    tx = backend.apply(x)
    whitened = nearest_centroid_accuracy(tx[train], y[train], tx[~train], y[~train])
    assert whitened > raw + 0.1
    assert tx.shape[1] == x.shape[1] + 1 and np.allclose(np.linalg.norm(tx, axis=1), 1, atol=1e-5)


def test_too_little_to_fit_gives_identity():
    x, y = anisotropic(n_gen=1)
    assert fit_whitening(x, y) is IDENTITY
    assert fit_whitening(x[:3], np.array([0, 1, 2])) is IDENTITY
    assert np.array_equal(IDENTITY.apply(x), x)


def test_round_trip_and_digest():
    x, y = anisotropic()
    backend = fit_whitening(x, y)
    again = Whitening.from_bytes(backend.to_bytes())
    assert np.allclose(again.apply(x), backend.apply(x))
    assert again.digest == backend.digest != IDENTITY.digest
    assert Whitening.from_bytes(None) is IDENTITY


def test_the_fit_record_round_trips():
    x, y = anisotropic()
    ids = np.arange(len(y)) * 2 + 5
    fitted = fit_whitening(x, y).fitted_on(ids, y + 10)
    again = Whitening.from_bytes(fitted.to_bytes())
    assert (again.fitted_count, again.fitted_generators, again.fitted_max_id) == (40, 4, int(ids.max()))
    assert again.fitted_counts == {10: 10, 11: 10, 12: 10, 13: 10} and again.digest == fitted.digest
    identity = Whitening.from_bytes(IDENTITY.fitted_on(ids, np.zeros(len(ids))).to_bytes())
    assert identity.kind == "identity" and identity.fitted_counts == {0: 40}


def fitted(counts: dict[int, int], kind: str = "whiten") -> Whitening:
    """A whitening recording that it was fitted on ``counts`` vectors by generator id (ids 1..total)."""
    total = sum(counts.values())
    return Whitening(kind, fitted_count=total, fitted_generators=len(counts), fitted_counts=dict(counts),
                     fitted_max_id=total)


SIX_LARGE = {g: 10_000 for g in range(6)}  # a fit sample of 6 x 200
MANY = {g: 2_000 for g in range(500)}  # 1M vectors: a fit sample of 500 x 40


@pytest.mark.parametrize("counts, changes, added, refit", [
    (SIX_LARGE, 0, None, False),
    (SIX_LARGE, 10, {6: 10}, False),  # a new generator of 10: 10 of 1,210 in the sample
    (SIX_LARGE, 100, {6: 100}, False),  # 100 of 1,300: under 10 %
    (SIX_LARGE, 200, {6: 200}, True),  # 200 of 1,400: over
    (SIX_LARGE, 6_000, {0: 6_000}, False),  # 6,000 more of one: about 75 of the 1,200 enter
    (SIX_LARGE, 20_000, {0: 20_000}, True),  # 20,000 more of one: about 133
    (SIX_LARGE, 120, {}, True),  # 120 deletes or relabels of unknown generators: each counts in full
    (SIX_LARGE, 10_000, {}, True),  # a generator removed
    (SIX_LARGE, 100, None, False),  # not counted, 100 changes are within the share however they fell
    (SIX_LARGE, 200, None, True),  # not counted, 200 might not be
    (MANY, 100, {500: 100}, False),  # a new generator of 100 among 500 of 2,000: 40 of 20,000
    (MANY, 2_500, {501: 2_000, 502: 500}, False),  # two new ones: two quotas of 39 in 20,000
    (MANY, 6_000, {500 + g: 100 for g in range(60)}, True),  # 60 new ones: 60 quotas of 35, over 10 %
    (MANY, 100_000, {g: 200 for g in range(500)}, False),  # 10 % more of every generator: 9 % of 40 each
])
def test_a_large_gallery_is_refitted_once_the_fit_sample_would_move(counts, changes, added, refit):
    reason = refit_reason(fitted(counts), changes, added)
    assert (reason is not None) == refit and reason != ""


@pytest.mark.parametrize("changes", [1, 10])
def test_a_small_gallery_is_refitted_after_any_change(changes):
    small = fitted({0: 300, 1: 300})
    assert small.fitted_count < REFIT_EVERY_CHANGE_BELOW
    assert refit_reason(small, changes, {2: changes}) == "" and refit_reason(small, 0) is None


def test_an_identity_whitening_is_refitted_once_it_can_fit_one():
    one = fitted({0: 30_000}, "identity")
    assert refit_reason(one, 10, {0: 10}) is None
    assert refit_reason(one, 10, {1: 10}) is not None  # a second generator: a whitening can be fitted


def test_a_whitening_without_counts_by_generator_counts_every_change():
    old = Whitening("whiten", fitted_count=60_000, fitted_generators=6)  # fitted before they were recorded
    assert refit_reason(old, 100, {6: 100}) is None
    assert refit_reason(old, 200, {6: 1}) is not None


@pytest.mark.parametrize("seed", range(5))
def test_uncounted_changes_bound_the_counted_ones(seed):
    rng = np.random.default_rng(seed)
    counts = {g: int(c) for g, c in enumerate(rng.integers(1, 30_000, rng.integers(2, 60)))}
    whitening = fitted(counts)
    for changes in rng.integers(1, 5_000, 20):
        added = {int(g): int(c) for g, c in zip(rng.integers(0, len(counts) + 3, 4),
                                                rng.multinomial(int(rng.integers(0, changes + 1)), [0.25] * 4))}
        if refit_reason(whitening, int(changes)) is None:
            assert refit_reason(whitening, int(changes), added) is None


def test_vectors_added_change_the_fit_sample_only_where_they_enter_it():
    labels = np.repeat(np.arange(6), 1_000)
    ids = np.arange(1, 6_001)
    before = set(ids[fit_sample(labels, ids)].tolist())
    more = np.concatenate([labels, np.full(300, 2), np.full(10, 6)])
    after = set(np.arange(1, 6_311)[fit_sample(more, np.arange(1, 6_311))].tolist())
    entered, left = after - before, before - after
    assert {i for i in entered if i <= 6_000} == set()  # nothing chosen anew among the vectors already there
    assert len(left) == len(entered) - 10 and set(range(6_301, 6_311)) <= entered  # the new generator in full
    assert 20 <= len(entered) - 10 <= 100  # about 200 x 300 / 1,300 of generator 2's sample


def top1_and_genuine(scores, y):
    own = scores[np.arange(len(y)), y]
    other = np.where(np.eye(scores.shape[1], dtype=bool)[y], -np.inf, scores).max(axis=1)
    return float(np.mean(own > other)), float(own.mean())


def test_crossfit_scores_are_held_out():
    x, y = anisotropic(per=30)
    scores, generators = crossfit_score_matrix(x, y)
    assert scores.shape == (len(y), len(generators)) and np.isfinite(scores).all()
    crossfit_top1, crossfit_genuine = top1_and_genuine(scores, y)
    raw_top1, _ = top1_and_genuine(loo_score_matrix(x.astype(float), y)[0], y)
    in_sample = fit_whitening(x, y).apply(x).astype(float)
    _, inflated_genuine = top1_and_genuine(loo_score_matrix(in_sample, y)[0], y)
    assert crossfit_top1 > raw_top1  # still better than raw cosine
    assert crossfit_genuine < inflated_genuine  # but without the in-sample inflation


def test_schema_1_gallery_is_migrated_on_open(tmp_path, store_of):
    engine = create_engine(f"sqlite:///{tmp_path / 'gallery.db'}")
    with engine.begin() as connection:
        db._migrate_to_1(connection)
        with Session(bind=connection) as session:
            session.add(db.Meta(key="schema_version", value="1"))
            session.flush()
    assert "backends" not in inspect(engine).get_table_names()
    engine.dispose()
    Gallery(tmp_path).close()
    store = store_of(tmp_path)
    assert "backends" in inspect(store.engine).get_table_names()
    assert "separation" in {c["name"] for c in inspect(store.engine).get_columns("calibrations")}
    with store.Session() as session:
        assert db.schema_version(session) == db.SCHEMA_VERSION == 7
