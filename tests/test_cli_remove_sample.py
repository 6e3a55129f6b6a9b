"""`attrib gallery remove-sample`: one mislabelled sample out, by sha256 (or a prefix) or path, audited, with the
fits, thresholds and index brought up to date as after removing a generator; on both backends."""

from __future__ import annotations

import json

import pytest

from attrib.errors import GalleryError
from attrib.gallery import Gallery

from cli_helpers import attrib, json_lines, register_both
from conftest import make_images
from gallery_helpers import bound


@pytest.fixture
def mislabelled(tmp_path, plugin):
    """A gallery of red (5 images) and blue (5 images and, by mistake, 1 red one)."""
    register_both(plugin)
    location = tmp_path / "g"
    red = make_images(tmp_path / "red", "red", 6)
    blue = make_images(tmp_path / "blue", "blue", 5, seed=1)
    attrib("--gallery", location, "enroll", "-e", "colormean", "-g", "red", *red[:5])
    attrib("--gallery", location, "enroll", "-e", "colormean", "-g", "blue", *blue, red[5])
    return location, red[5]


def test_a_refused_enroll_names_the_command_that_removes_the_sample(mislabelled):
    location, stray = mislabelled
    result = attrib("--gallery", location, "enroll", "-e", "colormean", "-g", "red", stray, expect=1)
    assert "remove it from 'blue' first" in result.output and "attrib gallery remove-sample" in result.output


def test_remove_sample_by_path_then_it_enrolls_under_the_right_generator(mislabelled):
    location, stray = mislabelled
    before = json.loads(attrib("--gallery", location, "gallery", "show", "blue", "--json").output)
    result = attrib("gallery", "remove-sample", stray, "--json", "--gallery", location)
    removed = json.loads(result.output)["removed"]
    assert removed["generator"] == "blue" and removed["samples_left"] == 5 and removed["path"] == str(stray)
    after = json.loads(attrib("--gallery", location, "gallery", "show", "blue", "--json").output)
    assert len(after["samples"]) == 5 and removed["sha256"] not in {s["sha256"] for s in after["samples"]}
    assert after["calibration"][0]["threshold"] != before["calibration"][0]["threshold"]  # recalibrated
    audit = json_lines(attrib("--gallery", location, "gallery", "audit", "--json", "--action", "remove-sample").output)
    assert audit[-1]["detail"] == {"generator": "blue", "sha256": removed["sha256"], "path": str(stray),
                                   "samples_left": 5}
    # consistent: vectors, fits and index files follow the database
    check = json.loads(attrib("--gallery", location, "gallery", "check", "--json").output)
    assert check["status"] == "consistent", check
    result = attrib("--gallery", location, "enroll", "-e", "colormean", "-g", "red", stray)
    assert "red: added 1" in result.output
    query = make_images(location.parent / "q", "red", 1, seed=9)[0]
    row = json_lines(attrib("--gallery", location, "identify", "--json", "-e", "colormean", query).output)[0]
    assert row["decision"] == "red"


def test_remove_sample_by_sha256_prefix_and_refusals(mislabelled, tmp_path):
    location, stray = mislabelled
    shown = json.loads(attrib("--gallery", location, "gallery", "show", "red", "--json").output)["samples"]
    sha = shown[0]["sha256"]
    result = attrib("--gallery", location, "gallery", "remove-sample", sha[:12])
    assert f"removed sample {sha[:12]}" in result.output and "from 'red', 4 samples left" in result.output
    for sample, words in ((sha[:12], "no sample with sha256"), (str(tmp_path / "nowhere.png"), "no sample enrolled"),
                          ("0123", "no sample enrolled")):
        result = attrib("--gallery", location, "gallery", "remove-sample", sample, expect=1)
        assert words in result.output and len(result.output.strip().splitlines()) == 1


def test_the_last_sample_of_a_generator_is_kept(gallery_location, tmp_path):
    with Gallery(gallery_location) as gallery:
        gallery.enroll("red", make_images(tmp_path / "red", "red", 3), bound())
        gallery.enroll("gray", make_images(tmp_path / "gray", "gray", 1), bound())
        with pytest.raises(GalleryError, match="only sample of 'gray'.*gallery remove gray"):
            gallery.remove_sample(str(tmp_path / "gray" / "gray_0_0.png"))
        sha = gallery.generator_detail("red")["samples"][0]["sha256"]
        assert gallery.remove_sample(sha)["samples_left"] == 2
        assert {g.name: g.samples for g in gallery.generators()} == {"red": 2, "gray": 1}
        assert gallery.audit_log(action="remove-sample")[-1]["detail"]["sha256"] == sha
        report = gallery.check()
        assert report.status == "consistent", report.lines()
