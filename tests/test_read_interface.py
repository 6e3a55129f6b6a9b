"""One contract for the read interface (attrib.storage.interface.GalleryReads): the SQL store on SQLite,
the fast read-only reader (plain sqlite3) and the SQL store on PostgreSQL answer every read the same way
for the same gallery."""

from __future__ import annotations

import hashlib
import inspect

import numpy as np
import pytest

from attrib.gallery import Gallery, cohort_version
from attrib.images import load_images
from attrib.storage.fast_reader import FastReader
from attrib.storage.interface import GalleryReads

from conftest import make_images
from gallery_helpers import bound

GENERATORS = {"red": 5, "green": 4, "blue": 3}
FAMILIES = {"red": "warm", "green": None, "blue": None}
# the same floats written through SQLite and PostgreSQL and read back: equal but for the last bit of a
# float32 that either driver might round through float64
ATOL = 1e-6


def enroll_all(location: str, data) -> None:
    with Gallery(location) as g:
        for name, paths in data.items():
            g.enroll(name, paths, bound(), family=FAMILIES[name], versions="jpeg:80")


def answers(reader: GalleryReads, data) -> dict:
    """Every read of the interface, with database ids replaced by names and sha256s, so that two
    backends that numbered their rows alike or not can be compared."""
    key = bound().identity.key
    extractor_id = reader.extractor_id(key)
    assert extractor_id is not None
    names = reader.generator_names()
    vector_ids, generators = reader.labels(extractor_id)
    ids, vgens, matrix = reader.vectors(extractor_id)
    owners = reader.exemplars([int(v) for v in ids])
    sample_ids = reader.sample_ids(extractor_id)
    s_ids, s_gens, s_matrix = reader.vectors_of_samples(extractor_id)
    some, _, some_matrix = reader.vectors_of_samples(extractor_id, sample_ids[::2])
    calibration = reader.calibration(extractor_id)
    state = reader.index_state(extractor_id)
    whitening = reader.whitening(extractor_id)
    with reader.snapshot():
        in_snapshot = reader.revision(extractor_id)
    shas = {hashlib.sha256(p.read_bytes()).hexdigest(): name for name, paths in data.items() for p in paths}
    return {
        "extractor_key": reader.extractor_key(extractor_id),
        "delivery_versions": reader.delivery_versions(key),
        "no_delivery_versions": reader.delivery_versions("no-such@1"),
        "vector_count": reader.vector_count(extractor_id),
        "generator_deliveries": {names[g]: label for g, label in reader.generator_deliveries().items()},
        "unknown_extractor": reader.extractor_id("no-such@1"),
        "extractor_names": reader.extractor_names(),
        "revision": reader.revision(extractor_id),
        "revision_in_snapshot": in_snapshot,
        "fit_revisions": reader.fit_revisions(extractor_id),
        "labels": sorted(names[int(g)] for g in generators),
        "added_since": [{names[g]: n for g, n in reader.added_since(extractor_id, int(after)).items()}
                        for after in (0, vector_ids[len(vector_ids) // 2], vector_ids[-1])],
        "labels_sorted": bool(np.all(np.diff(vector_ids) > 0)) and np.array_equal(vector_ids, ids),
        "vectors_by_sha": {owners[int(v)][1]: (names[int(g)], row) for v, g, row in zip(ids, vgens, matrix)},
        "exemplar_paths": sorted(path for path, _ in owners.values()),
        "owners": {sha: reader.sample_owner(sha) for sha in shas},
        "unknown_owner": reader.sample_owner("0" * 64),
        "samples": (len(sample_ids), bool(np.all(np.diff(sample_ids) > 0)), np.array_equal(s_ids, sample_ids)),
        "sample_rows": sorted((names[int(g)], tuple(np.round(row, 5))) for g, row in zip(s_gens, s_matrix)),
        "some_samples": (len(some), some_matrix.shape),
        "whitening": (whitening.fitted_count, whitening.fitted_generators, whitening.digest),
        "index_state": (state.count, state.dim, state.whitening, bool(state.labels)),
        "thresholds": {names.get(k, k) if k is not None else None: v for k, v in calibration.thresholds.items()},
        "calibration": (calibration.separation, calibration.target_far, calibration.model is not None),
        "generator_names": sorted(names.values()),
        "families": {names[k]: v for k, v in reader.generator_families().items()},
        "cohort": reader.cohort(extractor_id, cohort_version()),
        "no_cohort": reader.cohort(extractor_id, "no-such-version"),
        "shas": shas,
    }


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        x, y = a[key], b[key]
        if key == "vectors_by_sha":
            assert x.keys() == y.keys()
            for sha in x:
                assert x[sha][0] == y[sha][0]
                np.testing.assert_allclose(x[sha][1], y[sha][1], atol=ATOL, err_msg=sha)
        elif key == "thresholds":
            assert x.keys() == y.keys()
            np.testing.assert_allclose([x[k] for k in x], [y[k] for k in x], atol=ATOL)
        elif key == "sample_rows":
            assert [n for n, _ in x] == [n for n, _ in y]
            np.testing.assert_allclose([r for _, r in x], [r for _, r in y], atol=1e-4)
        elif key == "cohort":
            np.testing.assert_allclose(x, y, atol=ATOL)
        elif key == "calibration":
            np.testing.assert_allclose(x[:2], y[:2], atol=ATOL)
            assert x[2] == y[2]
        else:
            assert x == y, key


def test_every_read_of_the_interface_is_covered():
    covered = {"added_since", "extractor_id", "extractor_key", "extractor_names", "revision", "fit_revisions", "labels",
               "vectors", "index_state", "whitening", "calibration", "generator_names", "generator_families",
               "sample_ids", "exemplars", "sample_owner", "cohort", "vectors_of_samples", "snapshot",
               "delivery_versions", "vector_count", "generator_deliveries"}
    declared = {name for name, _ in inspect.getmembers(GalleryReads, inspect.isfunction) if not name.startswith("_")}
    assert declared == covered


@pytest.fixture
def data(tmp_path):
    return {name: make_images(tmp_path / "data" / name, name, n, seed=i) for i, (name, n) in
            enumerate(GENERATORS.items())}


def test_sqlite_store_fast_reader_and_postgresql_read_alike(tmp_path, data, postgres_url, store_of):
    folder = str(tmp_path / "g")
    enroll_all(folder, data)
    enroll_all(postgres_url, data)
    fast = FastReader.open(folder)
    assert fast is not None
    with fast:
        expected = answers(store_of(folder), data)
        # what the gallery holds, read through the SQL store on SQLite
        assert expected["generator_names"] == sorted(GENERATORS)
        assert expected["labels"] == sorted(n for n, k in GENERATORS.items() for _ in range(k))
        everything, later, none = expected["added_since"]
        assert everything == GENERATORS and none == {} and 0 < sum(later.values()) < sum(GENERATORS.values())
        assert expected["owners"] == expected["shas"] and expected["unknown_owner"] is None
        assert expected["unknown_extractor"] is None and expected["no_cohort"] is None
        assert expected["families"] == FAMILIES
        total = sum(GENERATORS.values())
        assert expected["vector_count"] == total and expected["no_delivery_versions"] == {}
        assert expected["delivery_versions"] == {"jpeg:80": (f"{bound().identity.key}|jpeg:80", total)}
        assert expected["generator_deliveries"] == {name: ("lossless", frozenset({96})) for name in GENERATORS}
        assert expected["revision"] == sum(GENERATORS.values()) == expected["revision_in_snapshot"]
        assert expected["fit_revisions"] == (expected["revision"],) * 2
        assert expected["samples"] == (sum(GENERATORS.values()), True, True)
        assert expected["labels_sorted"] and expected["index_state"][0] == sum(GENERATORS.values())
        loaded = [image for _, image in load_images([p for paths in data.values() for p in paths])]
        embedded = dict(zip((image.sha256 for image in loaded), bound().embed([image.pixels for image in loaded])))
        assert expected["vectors_by_sha"].keys() == embedded.keys()
        for sha, (_, row) in expected["vectors_by_sha"].items():
            assert float(row @ embedded[sha]) > 1 - 1e-5  # the stored vector is the file's embedding
        np.testing.assert_allclose(expected["cohort"], bound().impl.cohort_vectors(cohort_version()), atol=ATOL)
        assert set(expected["thresholds"]) >= set(GENERATORS)

        assert_same(answers(fast, data), expected)
        assert_same(answers(store_of(postgres_url), data), expected)
