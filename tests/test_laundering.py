"""The laundering report: queries written as they travel, ``png`` re-saves, and ``attrib evaluate --sweep``."""

from __future__ import annotations

import base64
import functools
import json
import re
from collections import Counter

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from attrib.cli import cli
from attrib.delivery import measure_delivery
from attrib.errors import AttribError
from attrib.evaluation import protocol as ev
from attrib.extractors.contract import BoundExtractor
from attrib.host.manager import ExtractorSpec
from attrib.synthetic.conditions import parse_condition, write_conditioned
from attrib.synthetic.zoo import write_zoo

from conftest import ColorMean, make_images

KNOWN = ["red", "green", "blue"]


@functools.lru_cache(maxsize=None)
def quick_cohort(rung: str | None = None) -> np.ndarray:
    rng = np.random.default_rng(7)
    images = [np.clip(rng.normal(rng.uniform(40, 220, 3), 25, (48, 48, 3)), 0, 255).astype(np.uint8)
              for _ in range(40)]
    vectors = ColorMean().embed_batch([parse_condition(rung).apply(im) for im in images] if rung else images)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


class QuickColorMean(ColorMean):
    """ColorMean with a small impostor cohort of its own, also per delivery version (as the residual extractor
    ships its cohort): a gallery with delivery versions calibrates without embedding the zoo cohort per rung."""

    def cohort_vectors(self, version):
        return quick_cohort()

    def delivered_cohort_vectors(self, version, rung):
        return quick_cohort(rung)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("launder-data")
    for i, name in enumerate(KNOWN + ["gray"]):
        make_images(root / name, name, 6, size=(128, 112), seed=i)
    return root


def decoded(path):
    with Image.open(path) as image:
        return image.format, np.asarray(image.convert("RGB"))


def test_png_step_parses_and_keeps_the_pixels():
    assert str(parse_condition("JPEG:80 + png")) == "jpeg:80+png"
    assert parse_condition("jpeg:80+png").slug == "jpeg-80+png"
    pixels = np.random.default_rng(0).integers(0, 256, (70, 90, 3), dtype=np.uint8)
    assert np.array_equal(parse_condition("png").apply(pixels), pixels)
    assert np.array_equal(parse_condition("jpeg:80+png").apply(pixels), parse_condition("jpeg:80").apply(pixels))
    with pytest.raises(AttribError, match="png takes no value"):
        parse_condition("jpeg:80+png:9")
    assert [parse_condition(t).delivered_as for t in ("jpeg:80", "resize:0.5+webp:70", "jpeg:80+png", "resize:0.5",
                                                       "none")] == [("JPEG", 80), ("WEBP", 70), ("PNG", None),
                                                                    ("PNG", None), ("PNG", None)]


def test_query_files_are_written_as_they_travel(tmp_path):
    files = {"red": make_images(tmp_path / "src" / "red", "red", 2, size=(128, 112))}
    texts = ["jpeg:80", "webp:80", "jpeg:80+png", "resize:0.7", "jpeg:90+jpeg:70", "jpeg:80"]
    conditions = [parse_condition(t) for t in texts]
    delivered = [True] * 5 + [False]  # the last: the same jpeg:80, as a gallery writes it
    written = write_conditioned(files, conditions, 0, tmp_path / "out", delivered=delivered)
    source = decoded(files["red"][0])[1]
    formats = {}
    for text, condition, as_file, images in zip(texts, conditions, delivered, written):
        path = images["red"][0]
        fmt, pixels = decoded(path)
        formats[(text, as_file)] = (fmt, path.suffix)
        # whatever the file, its decoded pixels are the in-memory condition's
        assert np.array_equal(pixels, condition.apply(source)), text
    assert formats == {("jpeg:80", True): ("JPEG", ".jpg"), ("webp:80", True): ("WEBP", ".webp"),
                       ("jpeg:80+png", True): ("PNG", ".png"), ("resize:0.7", True): ("PNG", ".png"),
                       ("jpeg:90+jpeg:70", True): ("JPEG", ".jpg"), ("jpeg:80", False): ("PNG", ".png")}
    # the re-saved PNG holds exactly the decoded JPEG's pixels
    jpeg, png = written[0]["red"][1], written[2]["red"][1]
    assert np.array_equal(decoded(png)[1], decoded(jpeg)[1])
    assert (measure_delivery(jpeg).coding, measure_delivery(jpeg).jpeg_quality) == ("jpeg", 80)
    assert measure_delivery(written[1]["red"][1]).coding == "lossy-webp"
    assert measure_delivery(png).coding == "lossless"


def test_sweep_runs_each_delivery_against_every_gallery(data_dir, monkeypatch):
    extractor = BoundExtractor(ExtractorSpec(QuickColorMean, "test"))
    ladders: Counter = Counter()
    real = ev.run_repeat

    def run_repeat(*args):
        ladders[args[-1]] += 1  # the gallery's versions
        return real(*args)

    monkeypatch.setattr(ev, "run_repeat", run_repeat)
    evaluation = ev.run_evaluation(data_dir, KNOWN, ["gray"], extractor=extractor, shots=3, repeats=2, max_per=6,
                                   conditions=("center-crop:96",), query_conditions=("jpeg:80",),
                                   sweep=("jpeg:80", "jpeg:80+png", "resize:0.7"), versions="jpeg:80")
    data = evaluation.data
    rows = data["sweep"]
    assert [r["delivery"] for r in rows] == ["none", "jpeg:80", "jpeg:80+png", "resize:0.7"]
    assert data["config"]["sweep"] == ["jpeg:80", "jpeg:80+png", "resize:0.7"]
    names = [b["condition"] for b in data["conditions"]]
    assert names[:2] == ["center-crop:96", "center-crop:96 | queries center-crop:96+jpeg:80"]  # -q stays a full block
    assert "center-crop:96+jpeg:80 | queries center-crop:96+jpeg:80" in names
    assert "center-crop:96 (versions none) | queries center-crop:96+jpeg:80" in names
    assert len(names) == len(set(names)) == 2 + 3 * 3 - 1
    # 2 repeats of: C and its 3 clean sweep blocks, and the gallery under C+resize:0.7, with the versions;
    # the 3 originals-only galleries and the 2 under a lossy C+D without
    assert ladders == {"jpeg:80": 2 * 5, "none": 2 * 5}
    by_name = {b["condition"]: b for b in data["conditions"]}
    assert not by_name[names[1]].get("sweep") and by_name["center-crop:96 | queries center-crop:96+resize:0.7"]["sweep"]
    for row in rows:
        assert list(row)[2:] == ["originals_gallery", "clean_gallery", "same_gallery"]
        for side in ("originals_gallery", "clean_gallery", "same_gallery"):
            assert list(row[side]) == list(ev.SWEEP_METRICS)  # the operating point first
            assert all(0 <= row[side][k]["mean"] <= 1 and len(row[side][k]["values"]) == 2 for k in ev.SWEEP_METRICS)
    clean = {k: by_name["center-crop:96"]["metrics"][k] for k in ev.SWEEP_METRICS}
    assert rows[0]["originals_gallery"] == rows[0]["clean_gallery"] == rows[0]["same_gallery"] == clean
    # jpeg:80 and jpeg:80+png decode to the same pixels: the same figures, from cached embeddings
    assert all(rows[1][side] == rows[2][side] for side in ("originals_gallery", "clean_gallery", "same_gallery"))
    assert by_name["center-crop:96 | queries center-crop:96+jpeg:80+png"]["cache"]["embedded"] == 0
    # the originals-only gallery: the same images as the clean one, every embedding cached already
    assert by_name["center-crop:96 (versions none) | queries center-crop:96+resize:0.7"]["cache"]["embedded"] == 0
    assert rows[3]["originals_gallery"] == {
        k: by_name["center-crop:96 (versions none) | queries center-crop:96+resize:0.7"]["metrics"][k]
        for k in ev.SWEEP_METRICS}
    # every query of a block of the same draw: the same number of queries everywhere
    assert len({b["queries_per_repeat"] for b in data["conditions"]}) == 1


def test_sweep_option_values():
    assert ev.sweep_deliveries(None) == ()
    assert ev.sweep_deliveries("default") == ev.DEFAULT_SWEEP
    assert ev.sweep_deliveries(" jpeg:80, resize:0.5+jpeg:75 ") == ("jpeg:80", "resize:0.5+jpeg:75")
    assert len(ev.DEFAULT_SWEEP) == 13 and all(parse_condition(d) for d in ev.DEFAULT_SWEEP)
    assert {"jpeg:80+png", "jpeg:90+jpeg:70", "resize:0.5+jpeg:75", "webp:80"} <= set(ev.DEFAULT_SWEEP)


def test_cli_sweep_prints_the_table_and_reports_the_curve(data_dir, colormean, tmp_path):
    report = tmp_path / "report"
    args = ["evaluate", str(data_dir), "--known", "red,green,blue", "--unknown", "gray", "-k", "3", "-r", "1",
            "--max-per", "5", "-e", "colormean", "-c", "center-crop:96", "--report", str(report),
            "--sweep", "jpeg:70,webp:80"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.stdout.count("attrib evaluate: ") == 1  # only the clean block gets the full tables
    sweep = result.stdout[result.stdout.index("attrib evaluate --sweep"):]
    assert "webp:80" in sweep and sweep.index("known") < sweep.index("unknown") < sweep.index("top-1")
    flat = " ".join(sweep.split())
    assert flat.index("originals only") < flat.index("with versions") < flat.index("at that quality")
    assert "with versions: the gallery with delivery versions (none)" in flat  # $ATTRIB_DELIVERY_LADDER here
    metrics = json.loads((report / "metrics.json").read_text())
    assert [r["delivery"] for r in metrics["sweep"]] == ["none", "jpeg:70", "webp:80"]
    assert all(r["originals_gallery"] == r["clean_gallery"] for r in metrics["sweep"])
    assert (report / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(report.glob("roc-*queries*"))  # sweep blocks get no plots of their own
    html = (report / "index.html").read_text(encoding="utf-8")
    section = html[html.index("Laundering sweep"):]
    inlined = [base64.b64decode(u) for u in re.findall(r'src="data:image/png;base64,([^"]+)"', section)]
    assert inlined == [(report / "sweep.png").read_bytes()]
    assert "<td>webp:80</td>" in section
    sides = ("gallery of originals only", "gallery with delivery versions", "every image at that quality")
    positions = [section.index(f"{side}: {text}") for side in sides
                 for text in ("known accepted", "unknown rejected", "closed-set top-1")]
    assert positions == sorted(positions)
    bad = CliRunner().invoke(cli, args[:-1] + ["jpeg:80,blur:3"])
    assert bad.exit_code == 1 and "unknown transformation 'blur'" in bad.output


def test_default_sweep_on_a_small_zoo(tmp_path):
    zoo = write_zoo(tmp_path / "zoo", ["tconv-1", "tconv-2", "bilinear-1", "nearest-1"], n_per=5, size=128)
    extractor = BoundExtractor(ExtractorSpec(ColorMean, "test"))
    data = ev.run_evaluation(tmp_path / "zoo", list(zoo)[:3], list(zoo)[3:], extractor=extractor, shots=2, repeats=1,
                             max_per=5, conditions=("none",), sweep=ev.DEFAULT_SWEEP, versions="none").data
    assert [r["delivery"] for r in data["sweep"]] == ["none", *ev.DEFAULT_SWEEP]
    assert data["config"]["versions"] == "none"
    # no versions: the clean gallery is the gallery of originals only, not run twice
    assert len(data["conditions"]) == 1 + 2 * len(ev.DEFAULT_SWEEP)
    assert all(r["originals_gallery"] == r["clean_gallery"] for r in data["sweep"])
