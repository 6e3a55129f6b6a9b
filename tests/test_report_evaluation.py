"""``attrib evaluate --report DIR`` writes index.html: metrics (operating point first), tables, the ROC
and confusion plots inlined, nothing fetched."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil

from click.testing import CliRunner

from attrib.cli import cli
from attrib.evaluation.protocol import METRICS

from conftest import make_images


def test_evaluate_report_index_is_self_contained(tmp_path, colormean):
    data = tmp_path / "data"
    for i, name in enumerate(("red", "green", "blue", "gray")):
        make_images(data / name, name, 6, seed=i)
    report = tmp_path / "report"
    result = CliRunner().invoke(cli, ["evaluate", str(data), "--known", "red,green,blue", "--unknown", "gray",
                                      "-k", "3", "-r", "1", "--max-per", "5", "-e", "colormean",
                                      "-c", "center-crop:64", "-c", "jpeg:90", "--json", "--report", str(report)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert str(report / "index.html") in result.stderr
    html = (report / "index.html").read_text(encoding="utf-8")
    metrics = json.loads((report / "metrics.json").read_text())
    assert html.count("<h2>") == len(metrics["conditions"]) == 2
    # the metrics in the protocol's order, the operating point first, in each condition
    first_section = html.split("<h2>")[1]
    positions = [first_section.index(text) for _, text in METRICS]
    assert positions == sorted(positions)
    # the plots are the PNG files, inlined; nothing else is referenced
    inlined = [base64.b64decode(uri) for uri in re.findall(r'src="data:image/png;base64,([^"]+)"', html)]
    assert inlined == [(report / name).read_bytes() for name in
                       ("roc-center-crop-64.png", "confusion-center-crop-64.png", "roc-jpeg-90.png",
                        "confusion-jpeg-90.png")]
    assert not re.search(r"https?://|file:", html)
    # the confusion matrix as a table: the counts of the JSON
    conf = metrics["conditions"][0]["confusion"]
    row = "".join(f'<td class="num">{n}</td>' for n in conf["matrix"][0])
    assert f"<td>{conf['rows'][0]}</td>{row}" in html


def test_evaluate_report_lists_the_most_confident_mistakes_with_their_nearest_samples(tmp_path, colormean):
    data = tmp_path / "data"
    for i, name in enumerate(("red", "green", "blue")):
        make_images(data / name, name, 6, seed=i)
    make_images(data / "crimson", "red", 6, seed=9)  # unknown, and coloured like red: accepted as red
    report = tmp_path / "report"
    result = CliRunner().invoke(cli, ["evaluate", str(data), "--known", "red,green,blue", "--unknown", "crimson",
                                      "-k", "3", "-r", "1", "--max-per", "5", "-e", "colormean", "--json",
                                      "--report", str(report)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    mistakes = json.loads((report / "metrics.json").read_text())["conditions"][0]["worst_mistakes"]
    assert mistakes and all(m["decision"] != m["truth"] for m in mistakes)
    assert any(m["truth"] == "crimson" and m["decision"] == "red" for m in mistakes)
    confidences = [m["confidence"] for m in mistakes]
    assert confidences == sorted(confidences, reverse=True)
    html = (report / "index.html").read_text(encoding="utf-8")
    section = html.split("Worst mistakes")[1]
    for m in mistakes:
        assert m["path"].rsplit("/", 1)[-1] in section
        assert all(e["path"].rsplit("/", 1)[-1] in section for e in m["nearest"]) and m["nearest"]


def crimson_evaluation(data):
    """Red, green and blue known, crimson (coloured like red) unknown: crimson queries are accepted as red.
    Every image is scored as its 64-px centre crop, a copy in the evaluation's temporary folder."""
    from attrib.evaluation.protocol import run_evaluation
    from attrib.extractors.contract import BoundExtractor
    from attrib.host.manager import ExtractorSpec

    from conftest import ColorMean

    for i, name in enumerate(("red", "green", "blue")):
        make_images(data / name, name, 6, seed=i)
    make_images(data / "crimson", "red", 6, seed=9)
    sources = {str(p) for p in data.rglob("*.png")}
    evaluation = run_evaluation(data, ["red", "green", "blue"], ["crimson"],
                                extractor=BoundExtractor(ExtractorSpec(ColorMean, "test")), shots=3, repeats=1,
                                max_per=5, conditions=("center-crop:64",))
    return evaluation, sources


def test_worst_mistakes_name_the_data_files_and_show_them_as_scored_after_the_copies_are_gone(tmp_path):
    from PIL import Image

    from attrib.evaluation.report import write_report

    evaluation, sources = crimson_evaluation(tmp_path / "data")
    mistakes = evaluation.data["conditions"][0]["worst_mistakes"]
    assert any(m["truth"] == "crimson" and m["decision"] == "red" for m in mistakes)
    named = [m["path"] for m in mistakes] + [e["path"] for m in mistakes for e in m["nearest"]]
    assert named and set(named) <= sources  # the data folder's files, not the deleted copies
    shutil.move(tmp_path / "data", tmp_path / "moved")  # the report needs neither the copies nor the data
    report = tmp_path / "report"
    write_report(evaluation, report)
    html = (report / "index.html").read_text(encoding="utf-8")
    assert "attrib-eval-images-" not in html + (report / "metrics.json").read_text(encoding="utf-8")
    section = html.split("Worst mistakes")[1]
    assert 'class="placeholder"' not in section
    boxes = section.split('<div class="mistake">')[1:]
    assert len(boxes) == len(mistakes)
    for n, (box, m) in enumerate(zip(boxes, mistakes), 1):
        # each box opens with its own heading, then its query and nearest samples, all pictured
        assert box.startswith(f"<h4>{n}. a {m['truth']} image decided as {m['decision']} ")
        assert box.index("<h4>") < box.index("<figure")
        pictures = re.findall(r'<img class="thumb" alt="([^"]*)" src="data:image/[a-z]+;base64,([^"]+)"', box)
        assert [alt for alt, _ in pictures] == [m["path"]] + [e["path"] for e in m["nearest"]]
        with Image.open(io.BytesIO(base64.b64decode(pictures[0][1]))) as query:
            assert query.size == (64, 64)  # the centre crop that was scored, not the 96x80 file
