"""attrib-clip tests on a tiny random-weight OpenCLIP model saved as a user would save one."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

open_clip = pytest.importorskip("open_clip")
torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")

from attrib.errors import ExtractorError  # noqa: E402
from attrib.extractors.contract import BoundExtractor
from attrib.host.manager import ExtractorSpec  # noqa: E402
from attrib.testing import check_extractor  # noqa: E402

try:
    import attrib_clip
except ImportError:  # a checkout without `pip install -e plugins/attrib-clip`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import attrib_clip

from attrib_clip import ClipExtractor  # noqa: E402

TINY = {  # a 1.7M-parameter ViT: 64x64 input, width 64, 2 layers, 32-d projection
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


def _save_model(folder: Path, name: str, cfg: dict, seed: int) -> tuple[Path, Path]:
    config = folder / f"{name}.json"
    config.write_text(json.dumps(cfg))
    open_clip.add_model_config(config)
    torch.manual_seed(seed)
    model = open_clip.create_model(name)
    weights = folder / f"{name}.safetensors"
    safetensors_torch.save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    torch.save(model.state_dict(), folder / f"{name}.pt")
    return config, weights


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clip-weights")
    config, weights = _save_model(folder, "attrib-tiny", TINY, seed=0)
    wide = json.loads(json.dumps(TINY))
    wide["vision_cfg"]["width"] = 96
    _save_model(folder, "attrib-tiny-wide", wide, seed=1)
    return {"model": "attrib-tiny", "config": str(config), "weights": str(weights), "folder": folder}


def _opts(tiny, **extra):
    return {"model": tiny["model"], "config": tiny["config"], "weights": tiny["weights"], **extra}


def _images(n=5, seed=0):
    rng = np.random.default_rng(seed)
    sizes = [(256, 256), (64, 64), (480, 640), (131, 67), (300, 200)]
    return [rng.integers(0, 256, (*sizes[i % len(sizes)], 3), dtype=np.uint8) for i in range(n)]


def test_embeddings_shape_and_determinism(tiny):
    ext = ClipExtractor(**_opts(tiny, device="cpu"))
    assert ext.dim == 32
    images = _images()
    a = ext.embed_batch(images)
    b = ext.embed_batch(images)
    assert a.shape == (5, 32) and a.dtype == np.float32 and np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)
    again = ClipExtractor(**_opts(tiny)).embed_batch(images)  # a second load of the same file
    np.testing.assert_allclose(a, again, atol=1e-5)
    assert not np.allclose(a[0], a[1])


def test_batch_size_only_changes_chunking(tiny):
    images = _images(5)
    big = ClipExtractor(**_opts(tiny, batch_size="32")).embed_batch(images)
    small = ClipExtractor(**_opts(tiny, batch_size="2")).embed_batch(images)
    np.testing.assert_allclose(big, small, atol=1e-5)


def test_penultimate_features(tiny):
    projected = ClipExtractor(**_opts(tiny))
    penultimate = ClipExtractor(**_opts(tiny, features="penultimate"))
    assert (projected.dim, penultimate.dim) == (32, 64)  # embed_dim vs vision width
    images = _images(3)
    pre = penultimate.embed_batch(images)
    assert pre.shape == (3, 64)
    # projected = penultimate @ proj: check against the model's own projection
    model = open_clip.create_model(tiny["model"], pretrained=tiny["weights"])
    proj = model.visual.proj.detach().numpy()
    np.testing.assert_allclose(pre @ proj, projected.embed_batch(images), rtol=1e-4, atol=1e-4)


def test_conformance_kit(tiny):
    report = check_extractor(ClipExtractor, options=_opts(tiny))
    print(report)
    assert report.dim == 32
    check_extractor(ClipExtractor, options=_opts(tiny, features="penultimate", batch_size="3"), speed=False)


def test_weights_folder_and_pt_file_load_the_same(tiny, tmp_path):
    images = _images(3)
    ref = ClipExtractor(**_opts(tiny)).embed_batch(images)
    folder = tmp_path / "ViT-tiny"
    folder.mkdir()
    shutil.copy(tiny["weights"], folder / "open_clip_model.safetensors")
    from_folder = ClipExtractor(**_opts(tiny, weights=str(folder))).embed_batch(images)
    from_pt = ClipExtractor(**_opts(tiny, weights=str(tiny["folder"] / "attrib-tiny.pt"))).embed_batch(images)
    bin_folder = tmp_path / "hub-style"
    bin_folder.mkdir()
    shutil.copy(tiny["folder"] / "attrib-tiny.pt", bin_folder / "open_clip_pytorch_model.bin")
    from_bin = ClipExtractor(**_opts(tiny, weights=str(bin_folder))).embed_batch(images)
    for other in (from_folder, from_pt, from_bin):
        np.testing.assert_allclose(ref, other, atol=1e-6)


def test_weights_from_environment(tiny, monkeypatch):
    monkeypatch.setenv("ATTRIB_CLIP_WEIGHTS", tiny["weights"])
    ext = ClipExtractor(model=tiny["model"], config=tiny["config"])
    assert ext.weights_path == Path(tiny["weights"])


def test_missing_weights_say_what_to_put_where(monkeypatch, tmp_path):
    monkeypatch.delenv("ATTRIB_CLIP_WEIGHTS", raising=False)
    with pytest.raises(ExtractorError) as info:
        ClipExtractor()
    message = str(info.value)
    for words in ("--option weights=", "ATTRIB_CLIP_WEIGHTS", ".safetensors", "ViT-B-32", "never downloads"):
        assert words in message
    with pytest.raises(ExtractorError, match="does not exist"):
        ClipExtractor(weights=str(tmp_path / "nope.safetensors"))
    with pytest.raises(ExtractorError, match=r"holds none of open_clip_model\.safetensors"):
        ClipExtractor(weights=str(tmp_path))
    (tmp_path / "weights.txt").write_text("x")
    with pytest.raises(ExtractorError, match="is not one of .safetensors"):
        ClipExtractor(weights=str(tmp_path / "weights.txt"))


def test_host_reports_missing_weights_as_extractor_error(monkeypatch):
    monkeypatch.delenv("ATTRIB_CLIP_WEIGHTS", raising=False)
    with pytest.raises(ExtractorError, match="ATTRIB_CLIP_WEIGHTS"):
        BoundExtractor(ExtractorSpec(ClipExtractor, "clip"), {})


def test_wrong_or_bad_weights_are_named(tiny, tmp_path):
    wide = _opts(tiny, model="attrib-tiny-wide", config=str(tiny["folder"]))
    with pytest.raises(ExtractorError, match="could not load .* as OpenCLIP attrib-tiny-wide weights"):
        ClipExtractor(**wide)
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not a safetensors file")
    with pytest.raises(ExtractorError, match="could not load"):
        ClipExtractor(**_opts(tiny, weights=str(broken)))


@pytest.mark.parametrize(
    "options, words",
    [
        ({"features": "logits"}, "projected or penultimate"),
        ({"batch_size": "0"}, "batch_size"),
        ({"fp16": "maybe"}, "true or false"),
        ({"model": "hf-hub:org/model"}, "plain OpenCLIP architecture name"),
        ({"model": "ViT-Nope"}, "unknown OpenCLIP model"),
    ],
)
def test_bad_options(tiny, options, words):
    with pytest.raises(ExtractorError, match=words):
        ClipExtractor(**{**_opts(tiny), **options})


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only refusal")
def test_fp16_and_cuda_need_a_gpu(tiny):
    with pytest.raises(ExtractorError, match="fp16=true needs a CUDA device"):
        ClipExtractor(**_opts(tiny, fp16="true", device="cpu"))
    with pytest.raises(ExtractorError, match="no CUDA GPU"):
        ClipExtractor(**_opts(tiny, device="cuda"))


def test_identity_ignores_device_batch_size_and_path(tiny, tmp_path, monkeypatch):
    spec = ExtractorSpec(ClipExtractor, "clip")
    a = BoundExtractor(spec, _opts(tiny, batch_size="4", device="cpu")).identity
    moved = tmp_path / "moved.safetensors"
    shutil.copy(tiny["weights"], moved)
    monkeypatch.setenv("ATTRIB_CLIP_WEIGHTS", str(moved))
    b = BoundExtractor(spec, {"model": tiny["model"], "config": tiny["config"]}).identity
    assert a.key == b.key
    assert a.options["weights"].startswith("sha256:") and a.options["features"] == "projected"
    c = BoundExtractor(spec, _opts(tiny, features="penultimate")).identity
    assert c.key != a.key


def test_hook_and_lazy_import():
    registered = []
    attrib_clip.register_extractors(register=registered.append)
    assert registered == [ClipExtractor]
    assert ClipExtractor.name == "clip" and ClipExtractor.dim is None
    code = "import sys, attrib_clip; assert 'torch' not in sys.modules and 'open_clip' not in sys.modules"
    env_path = [str(Path(attrib_clip.__file__).parent)] + sys.path
    subprocess.run([sys.executable, "-c", f"import sys; sys.path[:0] = {env_path!r}; {code}"], check=True)
