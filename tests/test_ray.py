"""`attrib identify --ray`: the same records as a single-process run, from actors on a local Ray;
Ray is imported only when asked for, and its absence is one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from attrib.cli import cli
from attrib.gallery import Gallery

from comparisons import assert_same_answers
from conftest import make_images


@pytest.fixture(scope="module")
def residual_gallery(tmp_path_factory):
    """A gallery of red and blue with the built-in residual extractor (which every Ray worker has),
    and queries of both plus gray."""
    root = tmp_path_factory.mktemp("ray")
    with Gallery(root / "gallery") as gallery:
        extractor = gallery.load_extractor("residual")
        for name in ("red", "blue"):
            gallery.enroll(name, make_images(root / name, name, 5, size=(128, 128)), extractor)
    for name, seed in (("red", 3), ("blue", 4), ("gray", 5)):
        make_images(root / "q", name, 2, size=(128, 128), seed=seed)
    return root


def attrib(root, *args, expect=0):
    result = CliRunner().invoke(cli, ["--gallery", str(root / "gallery"), *map(str, args)], catch_exceptions=False)
    assert result.exit_code == expect, result.output
    return result


PROBE = """
import sys
from attrib.cli import cli
assert "ray" not in sys.modules, "import attrib.cli imported ray"
try:
    cli.main(sys.argv[1:], prog_name="attrib", standalone_mode=False)
except SystemExit:
    pass
print("RAY=" + str("ray" in sys.modules))
"""


def test_the_cli_and_a_plain_identify_never_import_ray(residual_gallery, tmp_path):
    root = residual_gallery
    args = ["--gallery", str(root / "gallery"), "identify", "-e", "residual", "--output", str(tmp_path / "o.jsonl"),
            str(root / "q")]
    result = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "ATTRIB_LOAD_PLUGINS": ""})
    assert result.stdout.strip() == "RAY=False", result.stderr
    assert len((tmp_path / "o.jsonl").read_text().splitlines()) == 6


def test_without_ray_installed_or_with_a_bad_address_it_is_one_line(residual_gallery, monkeypatch, tmp_path):
    root = residual_gallery
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    result = attrib(root, "identify", "--ray", "--output", tmp_path / "o.jsonl", root / "q", expect=1)
    assert result.output.strip() == "Error: --ray needs Ray: pip install 'attrib[ray]'"
    assert not (tmp_path / "o.jsonl").exists()
    result = attrib(root, "identify", "--ray", root / "q", expect=1)
    assert "not a Ray address" in result.output and "give --ray last or write --ray local" in result.output


def test_records_on_a_local_ray_equal_the_single_process_run(residual_gallery, monkeypatch, tmp_path):
    ray = pytest.importorskip("ray")
    root = residual_gallery
    monkeypatch.setenv("ATTRIB_LOAD_PLUGINS", "")  # the workers load what this process loads: the built-ins
    monkeypatch.chdir(root)  # relative paths, answered from the driver's folder on the workers
    inputs = [*sorted(p.relative_to(root) for p in (root / "q").iterdir()), "missing.png"]
    single = attrib(root, "identify", "-e", "residual", "--json", *inputs, expect=1).stdout
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        result = attrib(root, "identify", "-e", "residual", "--ray", "--output", tmp_path / "ray.jsonl", *inputs,
                        expect=1)
    finally:
        ray.shutdown()
    expected = [json.loads(line) for line in single.splitlines()]
    # the actors embed and search batches of their own, in other processes: the same decisions, floats to
    # their last bits (comparisons.py)
    assert_same_answers([json.loads(line) for line in (tmp_path / "ray.jsonl").read_text().splitlines()], expected)
    assert [r["path"] for r in expected] == list(map(str, inputs)) and "error" in expected[-1]
    assert "identify: 7 images" in result.stderr and "1 failed" in result.stderr
