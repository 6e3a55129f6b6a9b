"""The installed `attrib` in real subprocesses: entry-point plugins, exit codes, light start-up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import make_images

ATTRIB = Path(sys.executable).parent / "attrib"
HEAVY = ("torch", "open_clip", "sklearn", "matplotlib", "skimage", "sqlalchemy")

PROBE = """
import sys
from attrib.cli import cli
try:
    cli.main(sys.argv[1:], prog_name="attrib", standalone_mode=False)
except SystemExit:
    pass
heavy = sorted(m for m in {heavy!r} if m in sys.modules)
print("HEAVY=" + ",".join(heavy), file=sys.stderr)
"""


def attrib(*args, env=None, check=True):
    full_env = {**os.environ, **(env or {})}
    full_env.pop("ATTRIB_LOAD_PLUGINS", None) if env is None or "ATTRIB_LOAD_PLUGINS" not in env else None
    result = subprocess.run([str(ATTRIB), *args], capture_output=True, text=True, env=full_env, timeout=300)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_version_and_help():
    from attrib import __version__

    assert __version__ in attrib("--version").stdout
    assert "identify" in attrib("--help").stdout


def test_example_plugin_loads_through_its_entry_point():
    rows = {r["name"]: r for r in json.loads(attrib("plugins", "--json").stdout)}
    assert rows["example"]["package"] == "attrib-example"
    assert rows["example"]["extractors"][0]["name"] == "example-color"
    restricted = json.loads(attrib("plugins", "--json", env={"ATTRIB_LOAD_PLUGINS": "attrib-example"}).stdout)
    assert {r["name"] for r in restricted} == {"example", "attrib.evidence.builtin", "attrib.extractors.residual"}
    none = json.loads(attrib("plugins", "--json", env={"ATTRIB_LOAD_PLUGINS": ""}).stdout)
    assert [r["name"] for r in none] == ["attrib.evidence.builtin", "attrib.extractors.residual"]


def test_enroll_and_identify_end_to_end_with_exit_codes(tmp_path):
    gallery = str(tmp_path / "g")
    for name in ("red", "blue"):
        make_images(tmp_path / name, name, 5)
        attrib("--gallery", gallery, "enroll", "-e", "example-color", "-g", name, str(tmp_path / name))
    query = make_images(tmp_path / "q", "blue", 1, seed=4)[0]
    result = attrib("--gallery", gallery, "identify", "-e", "example-color", "--json", str(query))
    row = json.loads(result.stdout)
    assert row["generator"] == "blue" and row["extractor"] == "example-color@1"
    (tmp_path / "broken.png").write_text("nope")
    result = attrib("--gallery", gallery, "identify", "-e", "example-color", "--json", str(query),
                    str(tmp_path / "broken.png"), check=False)
    assert result.returncode == 1
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 2 and "error" in lines[1]
    assert "Traceback" not in result.stderr
    result = attrib("--gallery", gallery, "verify", "-g", "nobody", str(query), check=False)
    assert result.returncode == 1 and result.stderr.strip().count("\n") == 0
    assert "'nobody' is not enrolled" in result.stderr


@pytest.mark.parametrize("args", [["--help"], ["plugins"], ["identify", "-e", "residual", "--json"]])
def test_start_up_never_imports_heavy_modules(tmp_path, args):
    if args[0] == "identify":
        make_images(tmp_path / "red", "red", 3)
        make_images(tmp_path / "green", "green", 3)
        for name in ("red", "green"):
            attrib("--gallery", str(tmp_path / "g"), "enroll", "-g", name, str(tmp_path / name))
        args = ["--gallery", str(tmp_path / "g"), *args, str(tmp_path / "red")]
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *args], capture_output=True, text=True, timeout=300
    )
    assert "HEAVY=\n" in result.stderr or result.stderr.rstrip().endswith("HEAVY="), result.stderr


def test_plugins_are_found_through_the_attrib_group_alone(monkeypatch):
    import importlib.metadata

    from attrib.host import manager

    parsed = []
    metadata = importlib.metadata.Distribution.metadata

    def counting(dist):
        parsed.append(dist)
        return metadata.fget(dist)

    monkeypatch.setattr(importlib.metadata.Distribution, "metadata", property(counting))
    monkeypatch.setenv("ATTRIB_LOAD_PLUGINS", "attrib_example")
    found = manager._entry_points()
    read = list(parsed)  # distributions whose metadata start-up parsed
    monkeypatch.undo()
    assert [(ep.name, dist.name) for ep, dist in found] == [("example", "attrib-example")]
    plugin_dists = {ep.dist.name for ep in importlib.metadata.entry_points(group="attrib")}
    assert len(plugin_dists) >= 2 and {d.name for d in read} <= plugin_dists


def test_help_without_plugins_imports_no_numpy():
    probe = PROBE.replace("{heavy!r}", repr(("numpy", "faiss", *HEAVY)))
    result = subprocess.run([sys.executable, "-c", probe, "--help"], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "ATTRIB_LOAD_PLUGINS": ""})
    assert result.stderr.rstrip().endswith("HEAVY="), result.stderr
