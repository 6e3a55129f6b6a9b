"""The fingerprint projection learned from simulated generators.

Run time: attrib.extractors.residual.projection; training: attrib.training.projection.
"""

import numpy as np
import pytest

from attrib.extractors.residual import fingerprint as fp
from attrib.extractors.residual.projection import COMPONENTS, load
from attrib.training import projection
from attrib.synthetic.zoo import FAMILIES


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
    from attrib.synthetic.conditions import parse_condition

    drawn = [projection.pipeline_of(i) for i in range(200)]
    assert drawn == [projection.pipeline_of(i) for i in range(200)]
    kinds = {p.split(":")[0] for p in drawn}
    assert kinds == {"none", "jpeg", "webp"}
    for p in drawn:
        parse_condition(p)
        if ":" in p:
            assert projection.QUALITY_RANGE[0] <= int(p.split(":")[1]) <= projection.QUALITY_RANGE[1]


def test_shipped_projection_matches_the_fingerprint():
    shipped = load()
    k = 2 * COMPONENTS
    assert shipped.offset.shape == (k,) and shipped.matrix.shape == (fp.STATS_DIM, k)
    assert shipped.gate_weights.shape == (fp.STATS_DIM,) and shipped.dim == fp.DIM == k + 1
    assert np.isfinite(shipped.matrix).all() and np.linalg.matrix_rank(shipped.matrix) == k
    assert shipped.constant > 0


def _zoo_statistics(condition: str | None, n: int = 3):
    from attrib.synthetic.conditions import parse_condition
    from attrib.synthetic.zoo import render

    images = [render("bilinear-1", i, size=128) for i in range(n)]
    if condition:
        images = [parse_condition(condition).apply(im) for im in images]
    return fp.statistics_batch(images)


def test_gate_tells_lossless_from_compressed_images():
    shipped = load()
    assert (shipped.compressed_probability(_zoo_statistics(None)) < 0.2).all()
    assert (shipped.compressed_probability(_zoo_statistics("jpeg:85")) > 0.8).all()
    assert (shipped.compressed_probability(_zoo_statistics("webp:85")) > 0.8).all()


def test_apply_gates_the_compressed_half_and_appends_the_constant():
    shipped = load()
    k = COMPONENTS
    for condition in (None, "jpeg:85"):
        stats = _zoo_statistics(condition)
        out = shipped.apply(stats)
        ungated = stats.astype(np.float64) @ shipped.matrix - shipped.offset
        p = shipped.compressed_probability(stats)
        np.testing.assert_allclose(out[:, :k], ungated[:, :k], rtol=1e-4, atol=1e-3)
        np.testing.assert_allclose(out[:, k:2 * k], ungated[:, k:] * p[:, None], rtol=1e-4, atol=1e-3)
        np.testing.assert_allclose(out[:, -1], shipped.constant, rtol=1e-6)
    lossless = shipped.apply(_zoo_statistics(None))
    # for a plainly lossless image the compressed half is all but switched off
    assert (np.linalg.norm(lossless[:, k:2 * k], axis=1) < 0.2 * np.linalg.norm(lossless[:, :k], axis=1)).all()


def test_fit_gate_and_constant_on_toy_data():
    x = _toy(n_generators=40, per=4)
    compressed = ~np.array([projection.pipeline_of(i) == "none" for i in range(len(x))])
    x[compressed, :, 2] += 3.0  # compression moves axis 2
    weights, bias = projection.fit_gate(x)
    p = 1 / (1 + np.exp(-(x.reshape(-1, x.shape[-1]) @ weights + bias)))
    assert ((p > 0.5) == np.repeat(compressed, 4)).mean() > 0.95
    fitted = projection.fit(x, components=2)
    assert fitted.dim == 5 and fitted.constant > 0
    same = int(np.argmax(compressed != compressed[0]))  # generators 0..same-1 share one kind of delivery
    with pytest.raises(ValueError, match="both lossless and compressed"):
        projection.fit_gate(x[:same])


def test_train_small_end_to_end(tmp_path):
    out = tmp_path / "p.npz"
    projection.train(str(out), n_generators=2 * len(FAMILIES), per=2, components=4, workers=1)
    with np.load(out) as npz:
        assert npz["matrix"].shape == (fp.STATS_DIM, 2 * 4) and npz["gate_weights"].shape == (fp.STATS_DIM,)
        assert int(npz["n_generators"]) == 2 * len(FAMILIES)
    assert not list(tmp_path.glob("*.tmp*"))
