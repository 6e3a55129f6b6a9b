"""The fingerprint projection learned from simulated generators (attrib.projection)."""

import numpy as np
import pytest

from attrib import fingerprint as fp
from attrib import projection
from attrib.zoo import FAMILIES


def _toy(n_generators=60, per=5, dim=12, seed=0):
    """Generators differ along axis 0 only; axis 1 carries large per-image (content) noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 0.1, (n_generators, per, dim))
    x[:, :, 0] += rng.normal(0, 1.0, (n_generators, 1))  # generator identity
    x[:, :, 1] += rng.normal(0, 5.0, (n_generators, per))  # content nuisance, larger than identity
    return x


def test_fit_lda_keeps_generator_directions_and_drops_content():
    mean, matrix = projection.fit_lda(_toy(), components=3)
    assert mean.shape == (12,) and matrix.shape == (12, 3)
    strongest = matrix[:, 0] / np.linalg.norm(matrix[:, 0])
    assert abs(strongest[0]) > 0.99  # the generator axis comes first
    # content moves the projection far less than the generator does (per unit of input)
    assert np.linalg.norm(matrix[1]) < 0.1 * np.linalg.norm(matrix[0])


def test_fit_lda_rejects_bad_shapes():
    with pytest.raises(ValueError, match="generators >= 2"):
        projection.fit_lda(np.zeros((1, 4, 3)))
    with pytest.raises(ValueError, match="shape"):
        projection.fit_lda(np.zeros((4, 3)))


def test_training_generators_never_overlap_evaluation_ones():
    names = [projection.generator_of(i) for i in range(3 * len(FAMILIES))]
    assert len(set(names)) == len(names)
    assert {n.rsplit("-", 1)[0] for n in names} == set(FAMILIES)
    assert min(int(n.rsplit("-", 1)[1]) for n in names) >= projection.TRAIN_SEED_BASE


def test_pipelines_are_deterministic_and_valid():
    from attrib.conditions import parse_condition

    drawn = [projection.pipeline_of(i) for i in range(200)]
    assert drawn == [projection.pipeline_of(i) for i in range(200)]
    kinds = {p.split(":")[0] for p in drawn}
    assert kinds == {"none", "jpeg", "webp"}
    for p in drawn:
        parse_condition(p)
        if ":" in p:
            assert projection.QUALITY_RANGE[0] <= int(p.split(":")[1]) <= projection.QUALITY_RANGE[1]


def test_shipped_projection_matches_the_fingerprint():
    offset, matrix = projection.load()
    assert offset.shape == (fp.DIM,) and matrix.shape == (fp.STATS_DIM, fp.DIM)
    assert fp.DIM == 2 * projection.COMPONENTS
    assert np.isfinite(matrix).all() and np.linalg.matrix_rank(matrix) == fp.DIM


def test_train_small_end_to_end(tmp_path):
    out = tmp_path / "p.npz"
    projection.train(str(out), n_generators=2 * len(FAMILIES), per=2, components=4, workers=1)
    with np.load(out) as npz:
        assert npz["matrix"].shape == (fp.STATS_DIM, 2 * 4)
        assert int(npz["n_generators"]) == 2 * len(FAMILIES)
    assert not list(tmp_path.glob("*.tmp*"))
