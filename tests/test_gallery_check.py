"""`attrib gallery check [--repair] [--json]` and `Gallery.check`."""

from __future__ import annotations

import json
import sqlite3

import pytest
from click.testing import CliRunner

from attrib.cli import cli
from attrib.gallery import Gallery

from gallery_helpers import bound


@pytest.fixture
def gallery(tmp_path, make_set):
    root = tmp_path / "g"
    with Gallery(root) as g:
        for name in ("red", "green", "blue"):
            g.enroll(name, make_set(name, 5), bound())
    return root


def check_cli(root, *args):
    return CliRunner().invoke(cli, ["--gallery", str(root), "gallery", "check", *args])


def sql(root, *statements, foreign_keys=True):
    with sqlite3.connect(root / "gallery.db") as con:
        con.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        for statement in statements:
            con.execute(statement)


def test_a_consistent_gallery(gallery):
    result = check_cli(gallery)
    assert result.exit_code == 0
    assert result.output.splitlines() == [
        f"gallery {gallery}: consistent (3 generators, 15 samples, extractors: colormean@1)"]
    report = json.loads(check_cli(gallery, "--json").output)
    assert report["consistent"] and report["findings"] == [] and report["samples"] == 15
    assert report["status"] == "consistent"


def test_stale_fits_index_and_leftovers_are_found_and_repaired(gallery):
    sql(gallery, "UPDATE extractors SET revision = revision + 1")  # fits now predate the vectors
    next((gallery / "index").glob("*.labels.npy")).write_bytes(b"")
    (gallery / "index" / "1.json.x1y2.tmp").write_text("left by a killed writer")
    result = check_cli(gallery)
    assert result.exit_code == 0  # stale, not inconsistent: the next identify or enroll brings it up to date
    lines = result.output.splitlines()
    refits = "the next identify or enroll refits it by itself, or `attrib calibrate` now"
    assert lines == [
        "stale: colormean@1: the whitening of colormean@1 was fitted at revision 15 of its vectors, which are now "
        f"at revision 16; {refits}; --repair will refit the whitening and recalibrate",
        "stale: colormean@1: the calibration of colormean@1 was fitted at revision 15 of its vectors, which are "
        f"now at revision 16; {refits}; --repair will refit the whitening and recalibrate",
        "stale: colormean@1: index files are damaged or do not agree with their sidecar; the next identify or "
        "enroll rebuilds it by itself, or `attrib gallery check --repair` now; --repair will rebuild it from the "
        "stored vectors",
        f"note: {gallery / 'index'}: 1 files no index uses (left by an interrupted write or a dropped extractor); "
        "--repair will remove them",
        f"gallery {gallery}: stale, 3 findings that the next identify or enroll brings up to date by itself "
        "(`attrib gallery check --repair` now) (3 generators, 15 samples, extractors: colormean@1)",
    ]
    repaired = check_cli(gallery, "--repair")
    assert repaired.exit_code == 0, repaired.output
    assert repaired.output.splitlines()[:2] == ["repaired: refitted the whitening and recalibrated colormean@1",
                                                f"repaired: removed 1 leftover files from {gallery / 'index'}"]
    assert check_cli(gallery).output.splitlines() == [
        f"gallery {gallery}: consistent (3 generators, 15 samples, extractors: colormean@1)"]
    with Gallery(gallery, read_only=True) as g:
        assert all(info.threshold is not None for info in g.generators())


def lag_the_fits(root, make_set):
    """An enroll whose fit records then lag its vectors, as a writer killed between its commits leaves them."""
    with Gallery(root) as g:
        g.enroll("gray", make_set("gray", 4), bound())
    sql(root, "UPDATE extractors SET revision = revision + 1")


def test_stale_fits_exit_0_and_say_who_refits_them_and_the_next_identify_does(gallery, make_set):
    lag_the_fits(gallery, make_set)
    result = check_cli(gallery)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1].startswith(f"gallery {gallery}: stale, 2 findings that the next identify")
    report = json.loads(check_cli(gallery, "--json").output)
    assert (report["status"], report["consistent"]) == ("stale", False)  # consistent keeps its meaning
    assert [(f["severity"], f["heals"]) for f in report["findings"]] == [
        ("stale", "the next identify or enroll refits it by itself, or `attrib calibrate` now")] * 2
    notes = []
    with Gallery(gallery, notify=notes.append) as g:
        list(g.identify(make_set("red", 1, seed=5), bound()))
    assert any("refitted" in note or "recalibrated" in note for note in notes), notes
    report = json.loads(check_cli(gallery, "--json").output)
    assert (report["status"], report["consistent"], report["findings"]) == ("consistent", True, [])


def test_a_problem_beside_stale_fits_is_inconsistent(gallery, make_set):
    lag_the_fits(gallery, make_set)
    sql(gallery, "DELETE FROM vectors WHERE id = (SELECT max(id) FROM vectors)")
    result = check_cli(gallery)
    assert result.exit_code == 1
    assert result.output.splitlines()[0].startswith("problem: colormean@1: 1 of 19 samples have no vector")
    assert ", 1 problems; 3 stale findings that the next identify or enroll" in result.output.splitlines()[-1]  # fits, index
    report = json.loads(check_cli(gallery, "--json").output)
    assert report["status"] == "inconsistent" and not report["consistent"]
    assert [f["severity"] for f in report["findings"]] == ["problem", "stale", "stale", "stale"]


def test_what_repair_cannot_rebuild_is_reported_with_the_way_out(gallery):
    sql(gallery, "DELETE FROM vectors WHERE id = (SELECT max(id) FROM vectors)")
    report = json.loads(check_cli(gallery, "--repair", "--json").output)
    assert not report["consistent"]
    assert [f["problem"] for f in report["findings"]] == [
        "1 of 15 samples have no vector; run `attrib gallery reembed --extractor colormean` (with its --option values)"]
    assert report["findings"][0]["repair"] is None
    assert report["repaired"][0] == "refitted the whitening and recalibrated colormean@1"
    sql(gallery, "UPDATE vectors SET data = X'00' WHERE id = 1")
    result = check_cli(gallery)
    assert result.exit_code == 1 and "1 stored vectors are not 6 float32 values" in result.output


def test_rows_pointing_nowhere_are_found(gallery):
    sql(gallery, "INSERT INTO vectors (sample_id, extractor_id, data) SELECT 999, extractor_id, data FROM vectors "
                 "LIMIT 1", foreign_keys=False)
    result = check_cli(gallery)
    assert result.exit_code == 1
    assert "problem: database: 1 rows of vectors point at rows that do not exist" in result.output


def test_a_damaged_database_is_one_finding(gallery):
    sql(gallery, "PRAGMA wal_checkpoint(TRUNCATE)")
    (gallery / "gallery.db").write_bytes(b"\0" * 8192)
    result = check_cli(gallery, "--repair")
    assert result.exit_code == 1
    finding, summary = result.output.splitlines()
    assert finding.startswith(f"problem: database: {gallery / 'gallery.db'} is damaged (file is not a database)")
    assert summary.startswith(f"gallery {gallery}: inconsistent, 1 problems (")


def test_an_earlier_schema_is_migrated_by_repair(gallery):
    sql(gallery, "DROP TRIGGER vectors_added", "UPDATE meta SET value = '4' WHERE key = 'schema_version'")
    with Gallery(gallery, read_only=True) as g:
        before = g.check()
    assert before.needs_migration and [f.repair for f in before.findings] == ["migrate it"]
    with Gallery(gallery, read_only=True) as g:
        after = g.check(repair=True)
    assert after.consistent and after.repaired == ["migrated the database to the current schema"]
    with sqlite3.connect(gallery / "gallery.db") as con:
        assert con.execute("SELECT count(*) FROM sqlite_master WHERE name = 'vectors_added'").fetchone() == (1,)


def test_no_gallery_there(tmp_path):
    result = check_cli(tmp_path / "nowhere")
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: no gallery at {tmp_path / 'nowhere'}: the folder does not exist"
