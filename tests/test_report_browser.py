"""The reports rendered by a real browser (headless Chromium): identify, evaluate and gallery show. The
screenshot has the asked size and is not blank, the key figures are in the rendered DOM, and every picture
is an inline image that decodes. Skips only where no Chromium binary exists (`.ci/run` installs Debian's
`chromium`)."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from attrib.cli import cli

from conftest import make_images

WIDTH, HEIGHT = 1200, 900
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars")


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    pytest.skip("no Chromium binary found (install Debian's `chromium` package, as .ci/run does)")


def render(page: Path, screenshot: Path, height: int = HEIGHT) -> str:
    """Screenshot ``page`` to ``screenshot`` (``WIDTH`` x ``height``) and return the DOM Chromium rendered
    from it."""
    binary = chromium()
    with tempfile.TemporaryDirectory(prefix="attrib-chromium-") as profile:
        common = [binary, *FLAGS, f"--user-data-dir={profile}", f"--window-size={WIDTH},{height}"]
        shot = subprocess.run([*common, f"--screenshot={screenshot}", page.resolve().as_uri()],
                              capture_output=True, text=True, timeout=60)
        assert screenshot.is_file(), shot.stderr[-2000:]
        dom = subprocess.run([*common, "--dump-dom", page.resolve().as_uri()], capture_output=True, text=True,
                             timeout=60)
        assert dom.returncode == 0, dom.stderr[-2000:]
    return dom.stdout


def not_blank(screenshot: Path, height: int = HEIGHT) -> np.ndarray:
    """The screenshot's grey levels, asserted to be a light page of the asked size with dark text on it."""
    with Image.open(screenshot) as im:
        assert im.size == (WIDTH, height)
        pixels = np.asarray(im.convert("L"), dtype=np.float32)
    assert pixels.std() > 10  # text, bars and pictures, not a blank page
    assert pixels[:200].mean() > 128 and (pixels < 100).mean() > 0.005
    return pixels


def pictures(dom: str) -> list[tuple[str, tuple[int, int]]]:
    """``(alt, (width, height))`` of every ``<img>`` in ``dom``; each must be an inline image that decodes
    (a broken picture fails here)."""
    found = []
    for tag in re.findall(r"<img\b[^>]*>", dom):
        src = re.search(r'src="([^"]*)"', tag).group(1)
        assert src.startswith("data:image/") and ";base64," in src, tag[:200]
        with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as im:
            im.load()
            found.append((re.search(r'alt="([^"]*)"', tag).group(1), im.size))
    return found


def invoker(gallery: Path):
    def invoke(*args, expect=0):
        result = CliRunner().invoke(cli, ["--gallery", str(gallery), *map(str, args)], catch_exceptions=False)
        assert result.exit_code == expect, result.output
        return result

    return invoke


def enrolled(folder: Path, per_generator: int = 4):
    """A gallery in ``folder`` of red, green and blue (colormean); its CLI invoker."""
    invoke = invoker(folder / "gallery")
    for name in ("red", "green", "blue"):
        invoke("enroll", "-e", "colormean", "--generator", name,
               make_images(folder / "data" / name, name, per_generator)[0].parent)
    return invoke


def small_gallery_report(folder: Path, colormean) -> Path:
    invoke = enrolled(folder)
    queries = make_images(folder / "q", "blue", 1, seed=7, size=(160, 120)) + make_images(folder / "q", "gray", 1,
                                                                                           seed=7)
    page = folder / "report.html"
    invoke("identify", "-e", "colormean", "--report", page, *queries)
    return page


def test_identify_report_renders_in_chromium(tmp_path, colormean):
    binary = chromium()
    page = small_gallery_report(tmp_path, colormean)
    shot = tmp_path / "shot.png"
    dom = render(page, shot)
    with Image.open(shot) as im:
        assert im.size == (WIDTH, HEIGHT), binary
        pixels = np.asarray(im.convert("L"), dtype=np.float32)
    assert pixels.std() > 10  # text, bars and pictures, not a blank page
    assert pixels[:200].mean() > 128 and (pixels < 100).mean() > 0.01  # a light page with dark text on it
    assert '<span class="decision known">blue</span>' in dom
    assert '<span class="decision unknown">unknown</span>' in dom
    assert dom.count('<section class="query"') == 2 and dom.count('class="thumb"') >= 6
    assert len(pictures(dom)) == 2 + dom.count('class="thumb"')  # the previews and thumbnails, all decodable


def test_identify_report_of_13_images_is_compact_with_its_summary_first_in_chromium(tmp_path, colormean):
    invoke = enrolled(tmp_path)
    queries = [make_images(tmp_path / "q" / f"batch-{i}", name, 1, seed=20 + i)[0]
               for i, name in enumerate(["red", "green", "blue", "gray"] * 3 + ["red"])]
    page = tmp_path / "report.html"
    invoke("report", "-e", "colormean", *queries, "--output", page)
    tall = 8000
    dom = render(page, tmp_path / "shot.png", tall)
    pixels = not_blank(tmp_path / "shot.png", tall)
    content = int(np.flatnonzero((pixels < 245).any(axis=1)).max())
    assert content < 13 * 420  # each image in a compact section (it was over 700 px each)
    assert dom.index('<table class="summary">') < dom.index('<section class="query"')
    summary = dom.split('<table class="summary">')[1].split("</table>")[0]
    assert summary.count("<tr>") == 14 and summary.count('href="#q') == 13
    assert dom.count('<section class="query"') == 13 and len(pictures(dom)) == 13 + 13 * 9


def test_evaluate_report_renders_in_chromium(tmp_path, colormean):
    chromium()
    data = tmp_path / "data"
    for i, name in enumerate(("red", "green", "blue")):
        make_images(data / name, name, 6, seed=i)
    make_images(data / "crimson", "red", 6, seed=9)  # unknown, coloured like red: mistakes to show
    report = tmp_path / "report"
    result = CliRunner().invoke(cli, ["evaluate", str(data), "--known", "red,green,blue", "--unknown", "crimson",
                                      "-k", "3", "-r", "1", "--max-per", "5", "-e", "colormean", "--json",
                                      "--report", str(report)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    block = json.loads((report / "metrics.json").read_text())["conditions"][0]
    dom = render(report / "index.html", tmp_path / "shot.png")
    not_blank(tmp_path / "shot.png")
    for key in ("known_accepted", "unknown_rejected", "closed_set_accuracy"):
        assert f"<td class=\"num\">{block['metrics'][key]['mean']:.3f}</td>" in dom
    assert "".join(f'<td class="num">{n}</td>' for n in block["confusion"]["matrix"][-1]) in dom
    mistakes = block["worst_mistakes"]
    assert mistakes and dom.count('<div class="mistake">') == len(mistakes)
    shown = pictures(dom)
    plots = [alt for alt, _ in shown if alt.endswith(".png") and alt.startswith(("roc-", "confusion-"))]
    assert len(plots) == 2
    named = [alt for alt, _ in shown if alt not in plots]
    assert named == [path for m in mistakes for path in [m["path"]] + [e["path"] for e in m["nearest"]]]
    assert all(path.startswith(str(data)) for path in named) and 'class="placeholder"' not in dom


def test_gallery_report_renders_in_chromium(tmp_path, colormean):
    chromium()
    invoke = enrolled(tmp_path, per_generator=6)
    page = tmp_path / "red.html"
    invoke("gallery", "show", "red", "--report", page)
    dom = render(page, tmp_path / "shot.png")
    not_blank(tmp_path / "shot.png")
    assert "<th>genuine accepted at calibration</th>" in dom and "<h2>6 samples (6 with a picture)</h2>" in dom
    below = re.search(r"threshold (-?[0-9.]+): (\d+) of 6 below it", dom)
    scores = [float(s) for s in re.findall(r"held-out (-?[0-9.]+)", dom)]
    assert below and len(scores) == 6
    assert int(below.group(2)) == sum(s < float(below.group(1)) for s in scores) == dom.count("below threshold<")
    assert sorted(alt for alt, _ in pictures(dom)) == sorted(str(p) for p in (tmp_path / "data" / "red").iterdir())
