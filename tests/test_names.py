"""The naming rule of generators and families (attrib.names): one rule for the library, the CLI and HTTP;
odd names stored before it are renamed with `attrib gallery rename`, audited."""

from __future__ import annotations

import json

import pytest

from attrib.errors import AttribError
from attrib.gallery import Gallery
from attrib.names import MAX_LENGTH, BadName, check_name, name_problem

from cli_helpers import attrib, json_lines, register_both
from conftest import make_images
from gallery_helpers import bound

BAD = ["a/b", "../x", "<script>alert(1)</script>", "a\x01b", "a\\b", " sdxl", "sdxl ", "", "x" * (MAX_LENGTH + 1),
       "a+b", "tab\there", "new\nline", ".hidden", "-flag", "zero\u200bwidth", 'quote"d']
GOOD = ["sdxl", "gpt-4o", "midjourney 7", "SD_1.5", "flux:dev", "team@lab", "ÉtéGAN", "x" * MAX_LENGTH, "7"]


@pytest.mark.parametrize("name", BAD)
def test_bad_names_are_refused_naming_the_name_and_the_rule(name):
    assert name_problem(name) is not None
    with pytest.raises(BadName) as caught:
        check_name(name)
    message = str(caught.value)
    assert repr(name) in message and "letters, digits" in message and "\n" not in message
    assert isinstance(caught.value, AttribError)


@pytest.mark.parametrize("name", GOOD)
def test_good_names_pass_unchanged(name):
    assert name_problem(name) is None and check_name(name) == name


def test_the_problem_says_what_is_wrong():
    assert name_problem("a/b") == "it holds '/'"
    assert name_problem("a\x01b") == "it holds the unprintable character U+0001"
    assert name_problem(" a") == "it starts with a space"
    assert name_problem("a.") == "it ends with '.'"
    assert "101 characters" in name_problem("y" * 101)


def test_the_library_refuses_bad_names_before_storing_anything(tmp_path):
    images = make_images(tmp_path / "red", "red", 3)
    with Gallery(tmp_path / "g") as gallery:
        for name in ("a/b", "../x", "<b>x</b>", "a\x01b"):
            with pytest.raises(BadName, match="generator name"):
                gallery.enroll(name, images, bound())
        with pytest.raises(BadName, match="family name"):
            gallery.enroll("red", images, bound(), family="x/y")
        assert gallery.generators() == []
        with pytest.raises(BadName):
            gallery.enroll_embedded("a/b", [], gallery_vectors(0), bound())


def gallery_vectors(n):
    import numpy as np

    return np.zeros((n, 6), np.float32)


def test_cli_refuses_bad_names_in_one_line_without_making_a_gallery(tmp_path, plugin):
    register_both(plugin)
    images = make_images(tmp_path / "red", "red", 3)
    result = attrib("--gallery", tmp_path / "g", "enroll", "-e", "colormean", "-g", "../x", images[0].parent, expect=1)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "'../x'" in lines[0] and "letters, digits" in lines[0]
    assert not (tmp_path / "g").exists()


def _odd_gallery(tmp_path):
    """A gallery holding 'a/b', stored as an older attrib would have (the rule bypassed)."""
    from attrib.storage.opening import open_store

    location = tmp_path / "g"
    with Gallery(location) as gallery:
        gallery.enroll("red", make_images(tmp_path / "red", "red", 4), bound())
        gallery.enroll("blue", make_images(tmp_path / "blue", "blue", 4, seed=1), bound())
    store = open_store(location)
    try:
        from attrib.storage import edits

        edits.rename_generator(store, "red", "a/b")
    finally:
        store.close()
    return location


def test_gallery_rename_fixes_an_odd_name_and_audits_it(tmp_path, plugin):
    register_both(plugin)
    location = _odd_gallery(tmp_path)
    listed = attrib("--gallery", location, "gallery", "list")
    assert "does not follow the naming rule" in listed.stderr and "gallery rename a/b NEW" in listed.stderr
    result = attrib("gallery", "rename", "a/b", "red-v2", "--gallery", location)
    assert "renamed 'a/b' to 'red-v2' (4 samples)" in result.output
    names = [g["name"] for g in json.loads(attrib("gallery", "list", "--json", "--gallery", location).output)
             ["generators"]]
    assert names == ["blue", "red-v2"]
    assert "does not follow" not in attrib("gallery", "list", "--gallery", location).stderr
    audit = json_lines(attrib("gallery", "audit", "--json", "--action", "rename", "--gallery", location).output)
    assert audit[-1]["detail"] == {"from": "a/b", "to": "red-v2", "samples": 4}
    # the renamed generator answers under its new name, with its thresholds kept
    query = make_images(tmp_path / "q", "red", 1, seed=9)[0]
    row = json_lines(attrib("identify", "--json", "-e", "colormean", query, "--gallery", location).output)[0]
    assert row["decision"] == "red-v2"


def test_rename_refuses_a_bad_new_name_a_taken_one_and_an_unknown_one(tmp_path, plugin):
    register_both(plugin)
    location = _odd_gallery(tmp_path)
    for new, words in (("c/d", "not allowed"), ("blue", "enrolled already"), (" x", "starts with a space")):
        result = attrib("--gallery", location, "gallery", "rename", "a/b", new, expect=1)
        assert words in result.output and len(result.output.strip().splitlines()) == 1
    result = attrib("--gallery", location, "gallery", "rename", "purple", "violet", expect=1)
    assert "'purple' is not enrolled" in result.output


def test_rename_on_both_backends(gallery_location, tmp_path):
    with Gallery(gallery_location) as gallery:
        gallery.enroll("red", make_images(tmp_path / "red", "red", 3), bound())
        assert gallery.rename("red", "crimson") == 3
        assert [g.name for g in gallery.generators()] == ["crimson"]
        assert gallery.audit_log(action="rename")[-1]["detail"] == {"from": "red", "to": "crimson", "samples": 3}
        with pytest.raises(BadName):
            gallery.rename("crimson", "a/b")
