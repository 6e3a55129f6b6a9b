"""The CLI through click's CliRunner, with a fake extractor plugin."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from attrib import __version__
from attrib.cli import cli

from conftest import ColorPercentiles, make_images


@pytest.fixture
def run(tmp_path, colormean):
    gallery = tmp_path / "gallery"

    def invoke(*args, expect=0):
        result = CliRunner().invoke(cli, ["--gallery", str(gallery), *args], catch_exceptions=False)
        assert result.exit_code == expect, result.output
        return result

    return invoke


def enroll(run, make_set, generator, n=6, seed=0):
    paths = make_set(generator, n, seed=seed)
    return run("enroll", "-e", "colormean", "--generator", generator, str(paths[0].parent)), paths


def json_lines(output):
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_version():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_enroll_identify_verify_round_trip(run, make_set):
    for name in ("red", "green", "blue"):
        result, _ = enroll(run, make_set, name)
        assert f"{name}: added 6, already enrolled 0, failed 0" in result.output
    queries = make_set("red", 2, seed=9) + make_set("blue", 1, seed=9) + make_set("gray", 1, seed=9)
    result = run("identify", "-e", "colormean", "--json", "--top-k", "2", *map(str, queries))
    rows = json_lines(result.output)
    assert len(rows) == 4
    assert set(rows[0]) == {"schema", "path", "sha256", "decision", "decision_level", "generator", "family", "nearest",
                            "score", "threshold", "margin", "confidence", "reason", "candidates", "extractor",
                            "explain", "evidence", "provenance", "decided_by", "delivery"}
    assert [r["generator"] for r in rows[:3]] == ["red", "red", "blue"]
    assert [r["decision"] for r in rows[:3]] == ["red", "red", "blue"]
    assert {r["decision_level"] for r in rows[:3]} == {"generator"}
    assert rows[3]["decision"] == "unknown"  # gray was never enrolled
    # unknown: no generator to misattribute, but the nearest candidate, how far below, and why
    assert rows[3]["generator"] is None and rows[3]["nearest"] in ("red", "green", "blue")
    assert rows[3]["margin"] < 0 and rows[3]["reason"].startswith(f"unknown: nearest {rows[3]['nearest']}")
    assert all(0 <= r["confidence"] <= 1 and r["schema"] == 4 for r in rows)
    assert [r["delivery"]["version"] for r in rows] == ["original"] * 4  # PNG queries, a gallery without versions
    assert rows[0]["delivery"]["describe"].startswith("lossless PNG")
    assert rows[0]["margin"] == pytest.approx(rows[0]["score"] - rows[0]["threshold"], abs=1e-5)
    assert len(rows[0]["candidates"]) == 2 and rows[0]["candidates"][0]["score"] >= rows[0]["candidates"][1]["score"]
    assert rows[0]["extractor"] == "colormean@1"

    result = run("verify", "-e", "colormean", "--generator", "blue", "--json", *map(str, queries))
    matches = [r["match"] for r in json_lines(result.output)]
    assert matches == [False, False, True, False]


def test_enroll_duplicates_and_conflicts(run, make_set):
    _, red = enroll(run, make_set, "red", n=4)
    result = run("enroll", "-e", "colormean", "-g", "red", "--json", str(red[0]), str(red[0]), str(red[1]))
    summary = json.loads(result.output)
    assert summary["added"] == [] and len(summary["skipped"]) == 3
    result = run("enroll", "-e", "colormean", "-g", "green", str(red[2]), expect=1)
    assert "already enrolled under generator 'red'" in result.output and "'green'" in result.output
    listing = json.loads(run("gallery", "list", "--json").output)
    assert {g["name"]: g["samples"] for g in listing["generators"]} == {"red": 4}


def test_bad_inputs_are_reported_and_the_rest_goes_on(run, make_set, tmp_path):
    for name in ("red", "green"):
        enroll(run, make_set, name)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "empty.png").write_bytes(b"")
    (bad / "text.jpg").write_text("not an image")
    good = make_set("red", 1, seed=5)[0]
    (bad / "truncated.png").write_bytes(good.read_bytes()[:200])
    small = make_images_small(bad)
    result = CliRunner().invoke(
        cli,
        ["--gallery", str(tmp_path / "gallery"), "identify", "-e", "colormean", "--json", str(good), str(bad)],
    )
    assert result.exit_code == 1
    rows = json_lines(result.output)
    assert len(rows) == 5
    assert rows[0]["generator"] == "red"
    errors = {r["path"].rsplit("/", 1)[-1]: r["error"] for r in rows[1:]}
    assert "empty" in errors["empty.png"]
    assert "not a recognised image" in errors["text.jpg"]
    assert "truncated" in errors["truncated.png"] or "cannot decode" in errors["truncated.png"]
    assert "at least 64 px" in errors[small.name]
    assert "Traceback" not in result.output


def make_images_small(folder):
    from PIL import Image

    path = folder / "tiny.png"
    Image.new("RGB", (40, 300), (1, 2, 3)).save(path)
    return path


def test_expected_failures_are_one_line(run, make_set, tmp_path):
    query = make_set("red", 1)[0]
    result = run("identify", "-e", "colormean", str(query), expect=1)
    assert "no gallery at" in result.output and "attrib --gallery" in result.output and "enroll" in result.output
    enroll(run, make_set, "red")
    result = run("identify", "-e", "nope", str(query), expect=1)
    assert "no installed plugin provides extractor 'nope'" in result.output
    result = run("verify", "-e", "colormean", "-g", "purple", str(query), expect=1)
    assert "'purple' is not enrolled" in result.output and "red" in result.output
    result = run("identify", "-e", "colormean", str(tmp_path / "missing.png"), expect=1)
    assert "no such file" in result.output
    result = run("gallery", "remove", "purple", expect=1)
    assert "'purple' is not enrolled" in result.output
    result = run("calibrate", "--target-far", "2", expect=1)
    assert "--target-far" in result.output
    result = run("identify", "-e", "colormean", "-o", "broken", str(query), expect=1)
    assert "key=value" in result.output


def test_gallery_show_remove_calibrate(run, make_set):
    for name in ("red", "green", "blue"):
        enroll(run, make_set, name, n=5)
    show = json.loads(run("gallery", "show", "green", "--json").output)
    assert show["name"] == "green" and len(show["samples"]) == 5
    assert all(len(s["sha256"]) == 64 for s in show["samples"])
    assert show["calibration"] and show["calibration"][0]["method"] == "cohort-far"
    cal = json.loads(run("calibrate", "--target-far", "0.05", "--json").output)
    thresholds = cal["colormean@1"]["thresholds"]
    assert {t["generator"] for t in thresholds} == {None, "red", "green", "blue"}
    assert cal["colormean@1"]["separation"] > 1.0  # colour means separate these generators well
    assert "separation d'" in run("calibrate", "--target-far", "0.05").output
    removed = json.loads(run("gallery", "remove", "green", "--json").output)
    assert removed == {"removed": "green", "samples": 5}
    names = [g["name"] for g in json.loads(run("gallery", "list", "--json").output)["generators"]]
    assert names == ["blue", "red"]


def test_gallery_audit_lists_what_changed_the_gallery_in_order(run, make_set):
    assert "no gallery at" in run("gallery", "audit", expect=1).output
    for name in ("red", "green"):
        enroll(run, make_set, name, n=4)
    run("calibrate", "--target-far", "0.05")
    run("gallery", "remove", "green")
    entries = json_lines(run("gallery", "audit", "--json").output)
    assert [e["action"] for e in entries] == ["enroll", "calibrate", "enroll", "calibrate", "calibrate", "remove",
                                              "calibrate"]
    assert [e["id"] for e in entries] == sorted(e["id"] for e in entries)
    assert entries[0]["detail"] == {"generator": "red", "added": 4, "extractor": "colormean@1"}
    assert entries[4]["detail"]["extractor"] == "colormean@1" and entries[4]["detail"]["target_far"] == 0.05
    assert entries[5]["detail"] == {"generator": "green", "samples": 4} and entries[0]["at"].endswith("Z")
    last = json_lines(run("gallery", "audit", "--json", "-n", "2").output)
    assert [e["id"] for e in last] == [e["id"] for e in entries[-2:]]
    enrolls = run("gallery", "audit", "--action", "enroll").output.splitlines()
    assert len(enrolls) == 2 and "generator=red added=4" in enrolls[0] and "generator=green" in enrolls[1]


def test_a_single_generator_gallery_is_calibrated_on_the_cohort_and_rejects_strangers(run, make_set):
    result, _ = enroll(run, make_set, "red", n=6)
    assert "against a cohort of" in result.output and "default threshold" not in result.output
    queries = make_set("red", 2, seed=9) + make_set("gray", 2, seed=9) + make_set("green", 2, seed=9)
    rows = json_lines(run("identify", "-e", "colormean", "--json", *map(str, queries)).output)
    assert [r["decision"] for r in rows] == ["red", "red", "unknown", "unknown", "unknown", "unknown"]


def test_plugins_json_lists_builtin_and_fake(run):
    rows = json.loads(run("plugins", "--json").output)
    by_name = {r["name"]: r for r in rows}
    assert by_name["attrib.extractors.residual"]["extractors"][0]["name"] == "residual"
    fake = by_name["test-colormean"]
    assert fake["extractors"] == [{"name": "colormean", "version": "1", "dim": 6,
                                   "description": "Test extractor: per-channel mean and std, centred; separates "
                                                  "colour-cast images.",
                                   "options": {}, "identity_options": None}]


def test_fused_extractors(run, make_set, plugin, tmp_path):
    plugin(ColorPercentiles, name="test-colorpct")
    for name in ("red", "green", "blue"):
        paths = make_set(name, 5)
        run("enroll", "-e", "colormean", "-g", name, str(paths[0].parent))
        run("gallery", "reembed", "-e", "colorpct")
    query = make_set("green", 1, seed=8)[0]
    rows = json_lines(run("identify", "-e", "colormean+colorpct", "--json", str(query)).output)
    assert rows[0]["generator"] == "green" and rows[0]["extractor"] == "colormean@1+colorpct@1"
    # accepted at the fused threshold calibrated on held-out fused scores (attrib/scoring/fusion.py)
    assert rows[0]["decision"] == "green" and rows[0]["score"] >= rows[0]["threshold"]
    result = run("identify", "-e", "colormean+colorpct", "-o", "x=1", str(query), expect=1)
    assert "NAME.x=1" in result.output
    result = run("identify", "-e", "colormean+colormean", str(query), expect=1)
    assert "two or more different" in result.output


def test_family_note_rebuild_index_and_reembed(run, make_set, tmp_path):
    paths = make_set("red", 4)
    run("enroll", "-e", "colormean", "-g", "red", "--family", "warm", "--note", "test set", str(paths[0].parent))
    enroll(run, make_set, "blue", n=4)
    show = json.loads(run("gallery", "show", "red", "--json").output)
    assert (show["family"], show["note"]) == ("warm", "test set")
    index_dir = tmp_path / "gallery" / "index"
    for f in index_dir.iterdir():
        f.unlink()
    assert "rebuilt indexes for: colormean@1" in run("gallery", "rebuild-index").output
    assert any(p.suffix == ".faiss" for p in index_dir.iterdir())
    report = json.loads(run("gallery", "reembed", "-e", "colormean", "--json").output)
    assert report["embedded"] == 0 and report["present"] == 8 and report["problems"] == []
    paths[0].unlink()
    result = run("gallery", "reembed", "-e", "colorpct-missing", expect=1)
    assert "no installed plugin provides extractor 'colorpct-missing'" in result.output


def test_demo_runs_the_whole_job_and_prints_one_line_per_step(tmp_path, delivery_ladder):
    gallery, data = tmp_path / "g", tmp_path / "zoo"
    result = CliRunner().invoke(cli, ["--gallery", str(gallery), "demo", "--data", str(data), "--fresh"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    enrolled = [line for line in lines if line.strip().startswith("attrib enroll --generator")]
    assert len(enrolled) == 5 and all(line.endswith("failed 0") for line in enrolled)  # piped: never wrapped
    summary = next(line for line in lines if line.startswith("closed-set accuracy"))
    accuracy = float(summary.split()[2])
    assert 0.8 <= accuracy <= 1.0
    posted = next(line for line in lines if line.startswith("as posted (JPEG)"))
    assert posted.endswith("scored against the gallery's jpeg:80")  # the default ladder's version
    assert float(posted.split()[5]) >= 0.4  # against the originals alone, JPEG queries are named at chance
    assert (gallery / "gallery.db").exists() and len(list(data.iterdir())) == 9  # 8 generators, posted copies
    # --fresh refuses to empty a folder that is not a gallery
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("x")
    refused = CliRunner().invoke(cli, ["--gallery", str(other), "demo", "--data", str(data), "--fresh"])
    assert refused.exit_code != 0 and "not an attrib gallery" in refused.output
    assert (other / "keep.txt").exists()
    # its own gallery is reused, then emptied with --fresh
    again = CliRunner().invoke(cli, ["--gallery", str(gallery), "demo", "--data", str(data)])
    assert again.exit_code == 0 and "already enrolled 10" in again.output


@pytest.mark.parametrize("fresh", [False, True])
def test_demo_never_touches_a_gallery_it_did_not_make(tmp_path, monkeypatch, fresh):
    user = tmp_path / "mine"
    run_in = CliRunner().invoke
    enrolled = run_in(cli, ["--gallery", str(user), "enroll", "-g", "mine",
                            *map(str, make_images(tmp_path / "imgs", "red", 3))])
    assert enrolled.exit_code == 0, enrolled.output
    before = {p.name: p.stat().st_mtime_ns for p in user.rglob("*")}
    args = ["demo", "--data", str(tmp_path / "zoo")] + (["--fresh"] if fresh else [])
    refused = run_in(cli, ["--gallery", str(user), *args])
    assert refused.exit_code == 1 and "the demo did not make" in refused.output
    url = run_in(cli, ["--gallery", "postgresql://someone:secret@127.0.0.1:9/shared", *args])
    assert url.exit_code == 1 and "not into a database" in url.output and "secret" not in url.output
    # $ATTRIB_GALLERY names the user's gallery: the demo goes to its own folder instead
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("ATTRIB_GALLERY", str(user))
    from attrib.evaluation import demo as demo_module

    seen = []
    monkeypatch.setattr(demo_module, "run_demo", lambda gallery, *a, **k: seen.append(gallery.root) or 1 / 0)
    with pytest.raises(ZeroDivisionError):
        run_in(cli, args, catch_exceptions=False)
    assert seen == [tmp_path / "data" / "attrib" / "demo-gallery"] and (seen[0] / "attrib-demo.marker").is_file()
    assert {p.name: p.stat().st_mtime_ns for p in user.rglob("*")} == before


def test_ctrl_c_while_the_gallery_opens_is_one_line_and_status_130(tmp_path, monkeypatch):
    import attrib.gallery

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(attrib.gallery, "open_gallery", interrupted)
    image = make_images(tmp_path / "imgs", "red", 1)[0]
    result = CliRunner().invoke(cli, ["--gallery", str(tmp_path / "g"), "enroll", "-g", "red", str(image)])
    assert result.exit_code == 130, result.output
    assert "interrupted" in result.output and "Aborted" not in result.output
