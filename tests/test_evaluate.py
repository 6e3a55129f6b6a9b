"""`attrib evaluate` and image conditions, on tiny colour-cast datasets with a fake extractor."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from attrib.evaluation import protocol as ev
from attrib.synthetic import cohort
from attrib.cli import cli
from attrib.synthetic.conditions import parse_condition
from attrib.errors import AttribError
from attrib.extractors.contract import BoundExtractor
from attrib.host.manager import ExtractorSpec

from conftest import ColorMean, make_images

KNOWN = ["red", "green", "blue"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval-data")
    for i, name in enumerate(KNOWN):
        make_images(root / name, name, 8, size=(96, 80), seed=i)
    make_images(root / "gray" / "nested", "gray", 5, size=(96, 80), seed=7)  # recursive
    make_images(root / "few", "red", 3, seed=9)
    return root


def photo(h=200, w=300, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3)).astype(np.float32)
    smooth = np.kron(base, np.ones((8, 8, 1)))[:h, :w]
    return np.clip(smooth + rng.normal(0, 6, smooth.shape), 0, 255).astype(np.uint8)


def invoke(*args, expect=0):
    result = CliRunner().invoke(cli, ["evaluate", *map(str, args)], catch_exceptions=False)
    assert result.exit_code == expect, result.output
    return result


# -- conditions -------------------------------------------------------------


def test_parse_condition_canonical_forms():
    assert str(parse_condition(" Center-Crop:256 + JPEG:80 ")) == "center-crop:256+jpeg:80"
    assert str(parse_condition("resize:0.5+webp:70+crop:128")) == "resize:0.5+webp:70+crop:128"
    assert str(parse_condition("none")) == "none"
    assert parse_condition("center-crop:256+jpeg:80").slug == "center-crop-256+jpeg-80"
    assert parse_condition("crop:64").random and not parse_condition("center-crop:64").random


@pytest.mark.parametrize(
    "text, part",
    [("jpeg", "jpeg needs a value"), ("jpeg:abc", "whole number"), ("blur:3", "unknown transformation 'blur'"),
     ("center-crop:256+", "empty part"), ("jpeg:101", "1-100"), ("resize:0", "resize factor"),
     ("center-crop:256+sharpen:2", "part 'sharpen:2'"), ("", "empty")],
)
def test_parse_condition_errors_name_the_part(text, part):
    with pytest.raises(AttribError) as info:
        parse_condition(text)
    message = str(info.value)
    assert part in message and "valid forms" in message and "\n" not in message


def test_center_crop_and_clipping():
    image = photo(200, 300)
    out = parse_condition("center-crop:128").apply(image)
    assert out.shape == (128, 128, 3) and out.dtype == np.uint8
    assert np.array_equal(out, image[36:164, 86:214])
    assert parse_condition("center-crop:256").apply(image).shape == (200, 256, 3)  # clipped to the image


def test_random_crop_is_seeded_and_inside():
    image = photo(200, 300)
    crop = parse_condition("crop:64")
    a = crop.apply(image, np.random.default_rng(1))
    b = crop.apply(image, np.random.default_rng(1))
    c = crop.apply(image, np.random.default_rng(2))
    assert a.shape == (64, 64, 3) and np.array_equal(a, b) and not np.array_equal(a, c)


def test_lossy_round_trips_and_resize():
    image = photo(128, 128)
    for text in ("jpeg:80", "webp:80"):
        out = parse_condition(text).apply(image)
        assert out.shape == image.shape and out.dtype == np.uint8
        assert not np.array_equal(out, image)
        assert np.abs(out.astype(int) - image).mean() < 12  # still the same picture
    assert parse_condition("resize:0.5").apply(photo(200, 300)).shape == (100, 150, 3)
    assert np.array_equal(parse_condition("none").apply(image), image)


def test_combination_applies_left_to_right():
    image = photo(200, 200)
    assert parse_condition("center-crop:64+resize:0.5").apply(image).shape == (32, 32, 3)
    assert parse_condition("resize:0.5+center-crop:64").apply(image).shape == (64, 64, 3)
    both = parse_condition("center-crop:64+jpeg:80").apply(image)
    assert np.array_equal(both, parse_condition("jpeg:80").apply(image[68:132, 68:132]))


# -- evaluation -------------------------------------------------------------


def bound():
    return BoundExtractor(ExtractorSpec(ColorMean, "test"))


def test_cache_embeds_once_without_changing_results():
    images = [photo(80, 80, seed=s) for s in range(3)]
    plain = bound()
    cached = ev.CachedExtractor(plain)
    first = cached.embed(images + [images[0].copy()])
    again = cached.embed(images[::-1])
    assert np.array_equal(first, plain.embed(images + [images[0]]))
    assert np.array_equal(again, plain.embed(images[::-1]))
    assert (cached.embedded, cached.reused) == (3, 4)
    assert cached.identity.key == "colormean@1" and cached.dim == 6


def test_verification_metrics():
    truth = ["a", "b", "x"]
    perfect = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.3]])
    assert ev.verification_metrics(truth, perfect, ["a", "b"]) == (0.0, 1.0)
    swapped = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.3]])
    eer, tar = ev.verification_metrics(truth, swapped, ["a", "b"])
    assert eer == pytest.approx(1.0) and tar == 0.0


def test_run_evaluation_metrics(data_dir, monkeypatch):
    kw = dict(extractor=bound(), shots=3, repeats=2, seed=0, max_per=6,
              conditions=("center-crop:64", "center-crop:64+jpeg:80"))
    result = ev.run_evaluation(data_dir, KNOWN, ["gray"], **kw)
    data = result.data
    assert data["config"]["conditions"] == ["center-crop:64", "center-crop:64+jpeg:80"]
    assert [b["condition"] for b in data["conditions"]] == data["config"]["conditions"]
    for block in data["conditions"]:
        for name, _ in ev.METRICS:
            stat = block["metrics"][name]
            assert len(stat["values"]) == 2 and 0.0 <= stat["mean"] <= 1.0 and stat["std"] >= 0
        assert block["metrics"]["closed_set_accuracy"]["mean"] == 1.0  # colour casts are easy
        conf = block["confusion"]
        assert conf["rows"] == KNOWN + ["gray"] and conf["columns"] == KNOWN + ["ambiguous", "unknown"]
        # 3 known x (6 - 3) queries + 5 gray, per repeat
        assert np.array(conf["matrix"]).sum() == 2 * (3 * 3 + 5) == 2 * block["queries_per_repeat"]
        assert block["per_generator"]["gray"]["known"] is False
        assert block["per_generator"]["red"]["enrolled_per_repeat"] == 3
        extra = block["cache"]["embedded"] + block["cache"]["reused"] - 2 * (3 * 6 + 5)
        assert extra in (0, cohort.size())  # the impostor cohort, unless this process cached it already
        # the operating point comes first, and CCR never exceeds the share of known queries accepted
        assert list(block["metrics"])[:3] == ["known_accepted", "unknown_rejected", "ccr"]
        assert block["metrics"]["ccr"]["mean"] <= block["metrics"]["known_accepted"]["mean"] + 1e-9
    is_known, score = result.pooled["center-crop:64"]
    assert is_known.sum() == 18 and (~is_known).sum() == 10 and score.shape == (28,)

    # the cache changes nothing but the work done
    monkeypatch.setattr(ev.CachedExtractor, "embed", lambda self, images: self.bound.embed(images))
    uncached = ev.run_evaluation(data_dir, KNOWN, ["gray"], **{**kw, "conditions": ("center-crop:64+jpeg:80",)})
    a, b = data["conditions"][1], uncached.data["conditions"][0]
    assert a["metrics"] == b["metrics"] and a["confusion"] == b["confusion"]


def test_query_condition_launders_queries_only_and_families_are_measured(data_dir):
    kw = dict(extractor=bound(), shots=3, repeats=2, seed=0, max_per=6, conditions=("center-crop:64",))
    evaluation = ev.run_evaluation(data_dir, KNOWN, ["gray"], query_conditions=("jpeg:30",),
                                   families={"red": "warm", "green": "warm"}, **kw)
    result = evaluation.data
    assert [b["condition"] for b in result["conditions"]] == ["center-crop:64",
                                                              "center-crop:64 | queries center-crop:64+jpeg:30"]
    clean, laundered = result["conditions"]
    # the same draws, so the same number of queries; only their pixels differ
    assert clean["queries_per_repeat"] == laundered["queries_per_repeat"]
    clean_known, clean_margin = evaluation.pooled[clean["condition"]]
    laundered_known, laundered_margin = evaluation.pooled[laundered["condition"]]
    assert np.array_equal(clean_known, laundered_known) and not np.allclose(clean_margin, laundered_margin)
    for block in (clean, laundered):
        assert "warm" in block["confusion"]["columns"]
        assert 0 <= block["metrics"]["family_decided"]["mean"] <= 1
        assert block["metrics"]["family_accuracy"]["mean"] >= block["metrics"]["family_decided"]["mean"] - 1
    assert result["config"]["families"] == {"red": "warm", "green": "warm"}
    with pytest.raises(AttribError, match="not in --known"):
        ev.run_evaluation(data_dir, KNOWN, ["gray"], families={"gray": "x"}, **kw)


class ChanMean:
    """A second test extractor for fusion: per-channel mean only."""

    name = "chanmean"
    version = "1"
    dim = 3

    def embed_batch(self, images):
        return np.stack([im.reshape(-1, 3).mean(0) - 127.5 for im in images]).astype(np.float32)


def test_run_evaluation_fused(data_dir):
    second = BoundExtractor(ExtractorSpec(ChanMean, "test"))
    kw = dict(shots=3, repeats=2, seed=0, max_per=6, conditions=("center-crop:64",))
    result = ev.run_evaluation(data_dir, KNOWN, ["gray"], extractor=[bound(), second], **kw)
    fused = result.data
    assert fused["config"]["extractor"] == "colormean@1+chanmean@1"
    block = fused["conditions"][0]
    assert block["metrics"]["closed_set_accuracy"]["mean"] == 1.0
    # both extractors embed every enrolled and query image (the second through reembed), plus the
    # impostor cohort once per extractor unless this process has it cached already
    from attrib.synthetic import cohort

    extra = block["cache"]["embedded"] + block["cache"]["reused"] - 2 * 2 * (3 * 6 + 5)
    assert extra in (0, cohort.size(), 2 * cohort.size())
    assert np.array(block["confusion"]["matrix"]).sum() == 2 * (3 * 3 + 5)
    # fused scores are calibrated margins (threshold 0), not the single extractor's similarities
    single = ev.run_evaluation(data_dir, KNOWN, ["gray"], extractor=bound(), **kw)
    assert np.array_equal(single.pooled["center-crop:64"][0], result.pooled["center-crop:64"][0])
    assert not np.allclose(single.pooled["center-crop:64"][1], result.pooled["center-crop:64"][1])


def test_cli_fused(data_dir, plugin):
    plugin(ColorMean, ChanMean, name="test-fused")
    args = [data_dir, "--known", "red,green,blue", "--unknown", "gray", "-k", "3", "-r", "1", "--max-per", "5",
            "-c", "center-crop:64"]
    data = json.loads(invoke(*args, "-e", "colormean+chanmean", "--json").stdout)
    assert data["config"]["extractor"] == "colormean@1+chanmean@1"
    assert data["conditions"][0]["metrics"]["closed_set_accuracy"]["mean"] == 1.0
    result = invoke(*args, "-e", "colormean+chanmean", "-o", "size=3", expect=1)
    assert "NAME.size=3" in result.output and len(result.output.strip().splitlines()) == 1


def test_cli_json_and_report(data_dir, colormean, tmp_path):
    report = tmp_path / "report"
    result = invoke(data_dir, "--known", "red,green,blue", "--unknown", "gray", "--shots", "3", "--repeats", "1",
                    "--max-per", "5", "-e", "colormean", "-c", "center-crop:64", "-c", "jpeg:90",
                    "--json", "--report", report)
    assert "NaN" not in result.stdout  # strict JSON: missing values are null
    data = json.loads(result.stdout)
    assert set(data) == {"config", "conditions", "notes", "wall_s"}
    assert data["config"]["extractor"] == "colormean@1" and data["config"]["unknown"] == ["gray"]
    block = data["conditions"][0]
    assert set(block) >= {"condition", "metrics", "per_generator", "confusion", "cache", "wall_s"}
    assert set(block["metrics"]) == {name for name, _ in ev.METRICS}
    assert set(block["metrics"]["oscr"]) == {"mean", "std", "sem", "values"}
    assert json.loads((report / "metrics.json").read_text()) == data
    for name in ("roc-center-crop-64.png", "confusion-center-crop-64.png", "roc-jpeg-90.png",
                 "confusion-jpeg-90.png"):
        assert (report / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_table(data_dir, colormean):
    result = invoke(data_dir, "--known", "red,green", "--unknown", "gray", "-k", "2", "-r", "1", "--max-per", "4",
                    "-e", "colormean")
    out = result.stdout
    assert "center-crop:256" in out and "closed-set top-1 accuracy" in out and "OSCR" in out
    assert "verification EER" in out and "red" in out and "gray" in out and "confusion" in out


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--known", "red,purple"], "no folder 'purple'"),
        (["--known", "red", "--unknown", "cyan"], "available: blue, few, gray, green, red"),
        (["--known", "red,few", "-k", "3"], "known generator 'few' has 3 usable images"),
        (["--known", "red", "-c", "jpeg:good"], "condition 'jpeg:good'"),
        (["--known", "red", "--unknown", "red"], "both in --known and in --unknown"),
        (["--known", "red", "-k", "5", "--max-per", "5"], "--max-per (5) must be at least"),
        (["--known", "red", "-k", "2", "-c", "resize:0.5"], "under resize:0.5"),
    ],
)
def test_cli_errors_are_one_line(data_dir, colormean, args, expected):
    result = invoke(data_dir, *args, "-e", "colormean", expect=1)
    assert expected in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_missing_data_dir(tmp_path, colormean):
    result = invoke(tmp_path / "nope", "--known", "a", "-e", "colormean", expect=1)
    assert "does not exist" in result.output and len(result.output.strip().splitlines()) == 1


def test_cli_start_up_does_not_import_heavy_modules():
    code = ("import sys, attrib.cli; heavy = [m for m in ('sklearn', 'matplotlib', 'sqlalchemy', 'faiss') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_target_far_moves_the_operating_point(tmp_path, colormean):
    from attrib.extractors.resolve import bind_extractor
    from attrib.evaluation.protocol import run_evaluation

    for seed, name in enumerate(("red", "green", "blue", "gray")):
        make_images(tmp_path / "data" / name, name, 12, seed=seed)
    common = dict(extractor=bind_extractor("colormean", ()), shots=5, repeats=1, conditions=("none",))
    strict = run_evaluation(tmp_path / "data", ["red", "green", "blue"], ["gray"], target_far=0.001, **common)
    loose = run_evaluation(tmp_path / "data", ["red", "green", "blue"], ["gray"], target_far=0.5, **common)
    assert strict.data["config"]["target_far"] == 0.001 and loose.data["config"]["target_far"] == 0.5
    accepted = [e.data["conditions"][0]["metrics"]["known_accepted"]["mean"] for e in (strict, loose)]
    assert accepted[1] >= accepted[0]


def test_summary_reports_the_standard_error_of_the_mean():
    s = ev.summary([0.8, 0.9, float("nan"), 0.7, 0.8])
    assert s["mean"] == pytest.approx(0.8)
    assert s["std"] == pytest.approx(np.std([0.8, 0.9, 0.7, 0.8], ddof=1))
    assert s["sem"] == pytest.approx(s["std"] / 2.0)  # four finite repeats
    assert s["values"][2] is None
    single = ev.summary([0.5])
    assert single["std"] is None and single["sem"] is None
