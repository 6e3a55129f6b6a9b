"""The gallery-fitted whitening and the schema migration that stores it."""

from __future__ import annotations

import numpy as np
from sqlalchemy import create_engine, inspect
from sqlalchemy.orm import Session

from attrib.gallery import Gallery
from attrib.index.whitening import IDENTITY, Whitening
from attrib.scoring.calibration import loo_score_matrix
from attrib.scoring.whitening import crossfit_score_matrix, fit_whitening
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
        assert db.schema_version(session) == db.SCHEMA_VERSION == 6
