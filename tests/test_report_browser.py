"""The identify report rendered by a real browser (headless Chromium): the screenshot has the asked
size and is not blank, and the decision is in the rendered DOM. Skips only where no Chromium binary
exists (`.ci/run` installs Debian's `chromium`)."""

from __future__ import annotations

import os
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


def render(page: Path, screenshot: Path) -> str:
    """Screenshot ``page`` to ``screenshot`` and return the DOM Chromium rendered from it."""
    binary = chromium()
    with tempfile.TemporaryDirectory(prefix="attrib-chromium-") as profile:
        common = [binary, *FLAGS, f"--user-data-dir={profile}", f"--window-size={WIDTH},{HEIGHT}"]
        shot = subprocess.run([*common, f"--screenshot={screenshot}", page.resolve().as_uri()],
                              capture_output=True, text=True, timeout=60)
        assert screenshot.is_file(), shot.stderr[-2000:]
        dom = subprocess.run([*common, "--dump-dom", page.resolve().as_uri()], capture_output=True, text=True,
                             timeout=60)
        assert dom.returncode == 0, dom.stderr[-2000:]
    return dom.stdout


def small_gallery_report(folder: Path, colormean) -> Path:
    gallery = folder / "gallery"

    def invoke(*args):
        result = CliRunner().invoke(cli, ["--gallery", str(gallery), *map(str, args)], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result

    for name in ("red", "green", "blue"):
        invoke("enroll", "-e", "colormean", "--generator", name, make_images(folder / "data" / name, name, 4)[0].parent)
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
    assert dom.count('<section class="query">') == 2 and dom.count('class="thumb"') >= 6
