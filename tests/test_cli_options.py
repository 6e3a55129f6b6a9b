"""Options that mean one thing everywhere: --gallery after any command that uses one, read commands that never
create a gallery, --output for records and --report for pages (a file or a folder, by one rule), -k and -s,
and `attrib calibrate` keeping the stored FAR and saying when a genuine floor set a threshold."""

from __future__ import annotations

import json

import numpy as np
import pytest

from attrib.cli.attribution import GENUINE_FLOOR, TARGET_FAR, threshold_setter
from attrib.scoring import open_set

from cli_helpers import attrib, json_lines, register_both
from conftest import make_images


@pytest.fixture
def gallery(tmp_path, plugin):
    """red, green and blue (5 images each, colormean with its own small cohort) and 3 queries."""
    register_both(plugin)
    location = tmp_path / "g"
    for seed, name in enumerate(("red", "green", "blue")):
        attrib("enroll", "--gallery", location, "-e", "colormean", "-g", name,
               *make_images(tmp_path / name, name, 5, seed=seed))
    queries = make_images(tmp_path / "q", "red", 2, seed=9) + make_images(tmp_path / "q", "blue", 1, seed=8)
    return location, queries


# -- --gallery, and galleries that do not exist -------------------------------------------------

def test_gallery_is_accepted_after_every_command_that_uses_one(gallery, tmp_path):
    location, queries = gallery
    rows = json_lines(attrib("identify", "--json", "-e", "colormean", "--gallery", location, *queries).output)
    assert [r["decision"] for r in rows] == ["red", "red", "blue"]
    rows = json_lines(attrib("verify", "--gallery", location, "-g", "blue", "--json", *queries).output)
    assert [r["match"] for r in rows] == [False, False, True]
    listed = json.loads(attrib("gallery", "list", "--json", "--gallery", location).output)
    assert [g["name"] for g in listed["generators"]] == ["blue", "green", "red"]
    for args in (["gallery", "show", "red"], ["gallery", "audit", "-n", "1"], ["gallery", "check"],
                 ["gallery", "rebuild-index"], ["calibrate"]):
        attrib(*args, "--gallery", location)
    # given before and after the command: the same is fine, two different ones are refused
    attrib("--gallery", location, "gallery", "list", "--gallery", location)
    result = attrib("--gallery", location, "gallery", "list", "--gallery", tmp_path / "other", expect=2)
    assert "--gallery is given twice" in result.output


@pytest.mark.parametrize("args", [
    ["identify", "{q}"], ["verify", "-g", "red", "{q}"], ["gallery", "list"], ["gallery", "show", "red"],
    ["gallery", "check"], ["gallery", "audit"], ["gallery", "remove", "red"], ["calibrate"],
    ["report", "{q}", "--output", "{tmp}/r.html"], ["gallery", "reembed", "-e", "colormean"],
])
def test_commands_refuse_a_gallery_that_does_not_exist_and_never_create_it(gallery, tmp_path, args):
    location, queries = gallery
    typo = tmp_path / "galery"
    args = [a.format(q=queries[0], tmp=tmp_path) for a in args]
    result = attrib("--gallery", typo, *args, expect=1)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and f"no gallery at {typo}" in lines[0]
    assert "enroll --generator NAME" in lines[0] or args[:2] == ["gallery", "check"]  # check says it its own way
    assert not typo.exists()
    typo.mkdir()  # an empty folder is no gallery either, and stays empty
    attrib("--gallery", typo, *args, expect=1)
    assert list(typo.iterdir()) == []


# -- --output holds records, --report a page -----------------------------------------------------

@pytest.mark.parametrize("args, words", [
    (["--output", "{tmp}/o.html"], "for an HTML report use --report {tmp}/o.html"),
    (["--output", "{tmp}/o.PNG"], "is named as an image"),
    (["--output", "{tmp}/o.jsonl", "--format", "csv"], "the name says jsonl"),
    (["--output", "{tmp}/o.csv", "--format", "jsonl"], "the name says csv"),
    (["--report", "{tmp}/o.json"], "the report is an .html file or a folder"),
    (["--report", "weights=x"], "extractor options are --option KEY=VALUE"),
])
def test_mismatched_output_and_report_names_are_refused_before_anything_is_written(gallery, tmp_path, args, words):
    location, queries = gallery
    args = [a.format(tmp=tmp_path) for a in args]
    result = attrib("--gallery", location, "identify", "-e", "colormean", *args, *queries, expect=1)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and words.format(tmp=tmp_path) in lines[0]
    assert not (tmp_path / args[1]).exists()


def test_report_takes_a_page_or_a_folder_on_every_command(gallery, tmp_path):
    location, queries = gallery
    attrib("--gallery", location, "identify", "-e", "colormean", "--report", tmp_path / "page.html", *queries)
    attrib("--gallery", location, "identify", "-e", "colormean", "--report", tmp_path / "pages", *queries)
    attrib("--gallery", location, "gallery", "show", "red", "--report", tmp_path / "red")
    for page in (tmp_path / "page.html", tmp_path / "pages" / "index.html", tmp_path / "red" / "index.html"):
        assert page.read_text(encoding="utf-8").lstrip().lower().startswith("<!doctype html")


@pytest.fixture
def data_dir(tmp_path):
    data = tmp_path / "data"
    for seed, name in enumerate(("red", "green", "blue", "gray")):
        make_images(data / name, name, 5, seed=seed)
    return data


EVALUATE = ["--known", "red,green,blue", "--unknown", "gray", "-r", "1", "--max-per", "5", "-e", "colormean",
            "-c", "center-crop:64", "--json"]


def test_evaluate_report_as_a_page_and_short_options(data_dir, tmp_path, plugin):
    register_both(plugin)
    page = tmp_path / "eval.html"
    result = attrib("evaluate", data_dir, *EVALUATE, "-s", "3", "--report", page)
    data = json.loads(result.stdout)
    assert data["config"]["shots"] == 3
    assert page.read_text(encoding="utf-8").lstrip().lower().startswith("<!doctype html")
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text()) == data
    assert not (tmp_path / "eval" / "index.html").exists() and str(page) in result.stderr
    # -k, as older scripts wrote the shots, is still read; with --shots too it is refused
    assert json.loads(attrib("evaluate", data_dir, *EVALUATE, "-k", "2").stdout)["config"]["shots"] == 2
    result = attrib("evaluate", data_dir, *EVALUATE, "-k", "2", "--shots", "3", expect=2)
    assert "give the shots once" in result.output


def test_short_options_mean_one_thing_in_help():
    from attrib.cli import cli

    meanings: dict[str, set[str]] = {}

    def walk(command):
        for param in command.params:
            if getattr(param, "hidden", False):
                continue
            for opt in param.opts:
                if len(opt) == 2 and opt.startswith("-"):
                    meanings.setdefault(opt, set()).add(max(param.opts, key=len))
        for sub in getattr(command, "commands", {}).values():
            walk(sub)

    walk(cli)
    clashes = {short: longs for short, longs in meanings.items() if len(longs) > 1}
    assert clashes == {} and meanings["-o"] == {"--option"}
    assert meanings["-k"] == {"--top-k"} and meanings["-s"] == {"--shots"}


# -- calibrate -----------------------------------------------------------------------------------

def test_calibrate_keeps_the_stored_far_unless_given(gallery):
    location, _ = gallery
    attrib("--gallery", location, "calibrate", "--target-far", "0.05")
    result = attrib("--gallery", location, "calibrate")
    assert "at FAR 0.05" in result.output and "at FAR 0.01" not in result.output
    audit = json_lines(attrib("--gallery", location, "gallery", "audit", "--json", "--action", "calibrate").output)
    assert [e["detail"]["target_far"] for e in audit[-2:]] == [0.05, 0.05]
    shown = json.loads(attrib("--gallery", location, "gallery", "show", "red", "--json").output)
    assert shown["calibration"][0]["target_far"] == 0.05


def test_calibrate_says_which_thresholds_a_genuine_floor_set(gallery):
    location, _ = gallery
    runs = {}
    for far in ("0.01", "0.05"):
        data = json.loads(attrib("--gallery", location, "calibrate", "--target-far", far, "--json").output)
        runs[far] = {t["generator"]: t for t in data["colormean@1"]["thresholds"] if t["generator"]}
    assert {t["set_by"] for run in runs.values() for t in run.values()} <= {GENUINE_FLOOR, TARGET_FAR}
    floored = [g for g in runs["0.01"] if runs["0.01"][g]["set_by"] == runs["0.05"][g]["set_by"] == GENUINE_FLOOR]
    assert floored  # colour casts sit far above the cohort: the floor sets their thresholds
    for name in floored:  # which is why a different FAR moved nothing
        assert runs["0.01"][name]["threshold"] == pytest.approx(runs["0.05"][name]["threshold"], abs=1e-9)
    text = attrib("--gallery", location, "calibrate").output
    floors = sum(t["set_by"] == GENUINE_FLOOR for t in runs["0.05"].values())
    assert text.count("; set by its genuine floor, not the FAR") == floors
    assert "note: a threshold set by its genuine floor" in text


@pytest.mark.parametrize("seed", range(12))
def test_threshold_setter_agrees_with_the_calibration(seed):
    """On random held-out and cohort scores, the floor is said to set a threshold exactly when it is at least
    the FAR threshold."""
    rng = np.random.default_rng(seed)
    order = np.array([1, 2, 3])
    labels = np.repeat(order, rng.integers(2, 30, size=3))
    held_out = rng.normal(0.5, 0.15, (len(labels), 3))
    cohort = rng.normal(rng.uniform(0.1, 0.7), 0.1, (200, 3))
    far = float(rng.choice([0.001, 0.01, 0.05, 0.2]))
    result = open_set.calibrate(held_out, labels, order, cohort, far)
    by_far = open_set.cohort_thresholds(cohort, far)
    for j, gid in enumerate(order):
        t = next(t for t in result.thresholds if t.generator_id == gid)
        floor = open_set.genuine_floor(held_out[labels == gid, j])
        assert threshold_setter(t) == (GENUINE_FLOOR if floor >= by_far[j] else TARGET_FAR)
    assert threshold_setter(next(t for t in result.thresholds if t.generator_id is None)) is None
