"""``attrib report`` and ``attrib identify --report``: a self-contained page with every text escaped."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from click.testing import CliRunner
from PIL import Image, PngImagePlugin

from attrib.cli import cli
from attrib.report.identify import exemplar_images

from conftest import make_images

HOSTILE = "<script>alert(1)</script>"


@pytest.fixture
def run(tmp_path, colormean):
    gallery = tmp_path / "gallery"

    def invoke(*args, expect=0):
        result = CliRunner().invoke(cli, ["--gallery", str(gallery), *map(str, args)], catch_exceptions=False)
        assert result.exit_code == expect, result.output
        return result

    for name in ("red", "green", "blue"):
        folder = tmp_path / "data" / name
        make_images(folder, name, 6)
        invoke("enroll", "-e", "colormean", "--generator", name, folder)
    return invoke


def hostile_query(folder):
    """A red image whose file name and PNG text metadata hold a script tag."""
    folder.mkdir(parents=True, exist_ok=True)
    source = make_images(folder / "src", "red", 1, seed=5)[0]
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", f"a cat {HOSTILE}\nSteps: 20, Sampler: Euler, Model: {HOSTILE}")
    path = folder / "<script>alert(1).png"
    with Image.open(source) as im:
        im.save(path, pnginfo=info)
    return path


def sections(html: str) -> int:
    return html.count('<section class="query"')


def test_report_shows_each_query_self_contained_and_escaped(run, tmp_path):
    queries = [hostile_query(tmp_path / "q"), *make_images(tmp_path / "q", "blue", 1, seed=9),
               *make_images(tmp_path / "q", "gray", 1, seed=9)]
    out = tmp_path / "report.html"
    result = run("report", "-e", "colormean", *queries, "--output", out)
    assert f"report: {out} (3 images)" in result.output
    html = out.read_text(encoding="utf-8")
    assert sections(html) == 3
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1).png" in html  # the file name
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # the metadata
    # nothing is fetched: every image is inline and no address points anywhere
    sources = re.findall(r'\bsrc="([^"]*)"', html)
    assert sources and all(s.startswith("data:image/") for s in sources)
    assert re.findall(r'\bhref="([^"]*)"', html) == ["#q1", "#q2", "#q3"]  # the summary links to the sections
    assert not re.search(r"https?://|file:", html.replace("http://www.w3.org/2000/svg", ""))
    # per query: its preview, a bar per candidate, three thumbnails per candidate (files still present)
    assert html.count('class="preview"') >= 3 and html.count("<svg") == 9
    assert html.count('class="thumb"') == 27
    assert re.search(r'class="decision known">red<', html) and re.search(r'class="decision known">blue<', html)


def test_identify_report_keeps_the_records_and_shows_flags(run, tmp_path):
    enrolled = sorted((tmp_path / "data" / "green").iterdir())[0]
    queries = [enrolled, *make_images(tmp_path / "q", "red", 2, seed=3)]
    plain = run("identify", "-e", "colormean", "--json", *queries).output
    out = tmp_path / "r.html"
    result = CliRunner().invoke(
        cli, ["--gallery", str(tmp_path / "gallery"), "identify", "-e", "colormean", "--json", "--report", str(out),
              *map(str, queries)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert records == [json.loads(line) for line in plain.splitlines()]
    assert f"report: {out} (3 images)" in result.stderr
    html = out.read_text(encoding="utf-8")
    assert sections(html) == 3
    assert html.count("delivered as lossless PNG; scored against the gallery&#x27;s originals") == 3
    assert "exact copy of a sample enrolled under green" in html and 'class="flag"' in html


def test_exemplars_moved_away_show_their_stored_thumbnails_else_a_placeholder(run, tmp_path):
    import sqlite3

    query = make_images(tmp_path / "q", "red", 1, seed=4)[0]
    moved = tmp_path / "data" / "red"
    shutil.move(moved, tmp_path / "elsewhere")
    out = tmp_path / "r.html"
    run("report", "-e", "colormean", "--top-k", "1", query, "--output", out)
    html = out.read_text(encoding="utf-8")
    assert html.count('class="thumb"') == 3 and 'class="placeholder"' not in html  # the gallery's thumbnails
    with sqlite3.connect(tmp_path / "gallery" / "gallery.db") as db:
        db.execute("DELETE FROM thumbnails")
    run("report", "-e", "colormean", "--top-k", "1", query, "--output", out)
    html = out.read_text(encoding="utf-8")
    assert html.count('class="thumb"') == 0 and html.count('class="placeholder"') == 3
    assert str(moved) in html


def test_unreadable_image_is_reported_and_exit_status_is_1(run, tmp_path):
    good = make_images(tmp_path / "q", "red", 1)[0]
    bad = tmp_path / "q" / "broken.png"
    bad.write_bytes(b"not an image")
    out = tmp_path / "r.html"
    result = run("report", "-e", "colormean", good, bad, "--output", out, expect=1)
    assert "1 could not be read" in result.output
    html = out.read_text(encoding="utf-8")
    assert sections(html) == 2 and 'class="error"' in html


def test_report_name_must_be_html(run, tmp_path):
    query = make_images(tmp_path / "q", "red", 1)[0]
    result = run("report", "-e", "colormean", query, "--output", "weights=x", expect=1)
    assert "--option KEY=VALUE" in result.output and not (tmp_path / "weights=x").exists()
    # -o is --option here too: a page name given to it is refused, naming --output
    result = run("report", "-e", "colormean", query, "-o", tmp_path / "r.html", expect=1)
    assert f"--output {tmp_path / 'r.html'}" in result.output and not (tmp_path / "r.html").exists()
    result = run("identify", "-e", "colormean", "--report", tmp_path / "r.txt", query, expect=1)
    assert "ending in .html" in result.output


def test_gallery_thumbnails_are_preferred_over_files(tmp_path):
    path = make_images(tmp_path, "red", 1)[0]

    class WithThumbnails:
        def thumbnails(self, shas):
            return {sha: b"RIFF-webp-" + sha.encode() for sha in shas if sha == "a"}

    found = exemplar_images(WithThumbnails(), {"a": str(path), "b": str(path), "c": str(tmp_path / "gone.png")})
    assert found["a"] == (b"RIFF-webp-a", "image/webp")
    assert found["b"][1].startswith("image/") and len(found["b"][0]) > 100
    assert "c" not in found


def test_gallery_show_report_is_a_grid_of_the_samples(run, tmp_path):
    out = tmp_path / "red.html"
    result = run("gallery", "show", "red", "--report", out)
    assert "6 samples:" in result.output
    html = out.read_text(encoding="utf-8")
    assert "<h2>6 samples (6 with a picture)</h2>" in html and html.count('class="thumb"') == 6
    shutil.move(tmp_path / "data" / "red", tmp_path / "elsewhere")
    run("gallery", "show", "red", "--report", out)
    html = out.read_text(encoding="utf-8")
    assert "(6 with a picture)" in html and html.count('class="thumb"') == 6  # the stored thumbnails
    import sqlite3

    with sqlite3.connect(tmp_path / "gallery" / "gallery.db") as db:
        db.execute("DELETE FROM thumbnails")
    run("gallery", "show", "red", "--report", out)
    html = out.read_text(encoding="utf-8")
    assert "(0 with a picture)" in html and html.count('class="placeholder"') == 6
    assert str(tmp_path / "data" / "red") in html


def test_gallery_show_report_scores_each_sample_against_the_rest_of_its_generator(run, tmp_path):
    stray = make_images(tmp_path / "stray", "blue", 1, seed=11)[0]
    run("enroll", "-e", "colormean", "--generator", "red", stray)
    out = tmp_path / "red.html"
    run("gallery", "show", "red", "--report", out)
    html = out.read_text(encoding="utf-8")
    figures = html.split("<figure ")[1:]
    scores = {re.search(r'class="name" title="[^"]*">([^<]+)<', f).group(1):
              float(re.search(r"held-out (-?[0-9.]+)", f).group(1)) for f in figures}
    assert len(scores) == 7 and "Held-out score: each sample against the rest of its generator" in html
    others = [score for name, score in scores.items() if name != stray.name]
    assert scores[stray.name] < min(others)  # the blue image enrolled as red is the odd one out


def test_gallery_page_marks_the_samples_below_the_threshold():
    from attrib.report.gallery import generator_page

    detail = {"name": "sdxl", "family": None, "created_at": "2026-01-01T00:00:00", "calibration": [],
              "samples": [{"sha256": "a" * 64, "path": "/x/fits.png"}, {"sha256": "b" * 64, "path": "/x/odd.png"}]}
    html = generator_page(detail, {}, {"a" * 64: 0.91, "b" * 64: 0.42}, 0.8, "residual@3")
    fits, odd = html.split("<figure ")[1:]
    assert "held-out 0.910" in fits and "below threshold" not in fits
    assert "held-out 0.420 below threshold" in odd and "1 of 2 below" in html


def test_what_the_file_says_is_said_once(run, tmp_path):
    from attrib.report.identify import evidence_html
    from attrib.scoring.decision import IdentificationResult

    said = IdentificationResult(path="a.png", provenance={"summary": "file says: AI-generated (XMP DigitalSourceType)",
                                                          "agreement": {"agrees": True}})
    assert evidence_html(said) == ("<p>The file says: AI-generated (XMP DigitalSourceType) "
                                   "(agrees with the forensic answer)</p>")
    out = tmp_path / "r.html"
    run("report", "-e", "colormean", hostile_query(tmp_path / "q"), "--output", out)
    html = out.read_text(encoding="utf-8")
    assert "<p>The file says: " in html and "file says: file says" not in html.lower()


def test_identify_report_opens_with_a_summary_table_linking_each_section(run, tmp_path):
    queries = [*make_images(tmp_path / "q" / "a", "blue", 1, seed=3), *make_images(tmp_path / "q" / "b", "gray", 1)]
    bad = tmp_path / "q" / "broken.png"
    bad.write_bytes(b"not an image")
    out = tmp_path / "r.html"
    run("report", "-e", "colormean", *queries, bad, "--output", out, expect=1)
    html = out.read_text(encoding="utf-8")
    summary = html[html.index('<table class="summary">'):html.index("</table>") + len("</table>")]
    assert html.index('<table class="summary">') < html.index('<section class="query"')
    assert f"Files in {str(tmp_path / 'q').replace('/', '/<wbr>')}" in html
    rows = re.findall(r"<tr>(.*?)</tr>", summary)[1:]
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in rows]
    assert [c[1] for c in cells] == ['<a href="#q1">a/<wbr>blue_3_0.png</a>', '<a href="#q2">b/<wbr>gray_0_0.png</a>',
                                     '<a href="#q3">broken.png</a>']
    assert ">blue<" in cells[0][2] and ">unknown<" in cells[1][2] and "error" in cells[2][2]
    assert re.fullmatch(r"[01]\.\d\d", cells[0][3]) and re.fullmatch(r"blue \d\.\d{3} / -?\d\.\d{3}", cells[0][4])
    assert cells[0][5] == "lossless PNG -&gt; originals"
    assert [f'id="q{i}"' in html for i in (1, 2, 3)] == [True] * 3


def test_file_names_wrap_between_folders_and_ellipsize_in_captions():
    from attrib.report.html import STYLE, name_html, path_html

    assert path_html("/data/some folder/<b>.png") == "/<wbr>data/<wbr>some folder/<wbr>&lt;b&gt;.png"
    assert name_html("/data/x/a_long_file_name.png") == (
        '<span class="name" title="/data/x/a_long_file_name.png">a_long_file_name.png</span>')
    assert "break-all" not in STYLE and "text-overflow: ellipsis" in STYLE


def test_gallery_page_says_what_each_acceptance_figure_measures():
    from attrib.report.gallery import generator_page

    detail = {"name": "sdxl", "family": None, "created_at": "2026-01-01T00:00:00", "note": None,
              "calibration": [{"extractor": "residual@3", "threshold": 0.8, "method": "cohort-far", "target_far": 0.01,
                               "tar": 0.7},
                              {"extractor": "residual@3|jpeg:90", "threshold": 0.6, "method": "cohort-far",
                               "target_far": 0.01, "tar": 0.1}],
              "samples": [{"sha256": c * 64, "path": f"/x/{c}.png"} for c in "abc"]}
    html = generator_page(detail, {}, {c * 64: 0.9 for c in "abc"}, 0.8, "residual@3")
    assert "<th>genuine accepted at calibration</th>" in html
    held_out = html.split("Held-out score:")[1].split("</p>")[0]
    assert "0 of 3 below it" in held_out and "run higher than a new image" in held_out
    assert "genuine accepted at calibration of residual@3: 70% accepted, 30% below the threshold" in held_out
    assert "the estimate of the share of new images of this generator that are accepted" in html
