"""Writes are atomic and the stored state says what it is: crashes, stale fits, damaged cache files,
faults as one line (disk full, read-only, damaged database), gallery paths, schema migration."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from attrib.cli import cli
from attrib.errors import DamagedGallery, DiskFull, GalleryError, StaleGallery
from attrib.gallery import Gallery
from attrib.index import files

from gallery_helpers import bound, enrolled_gallery, fill_disk, read_only_view, small_disk

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return enrolled_gallery(tmp_path_factory.mktemp("template"), 6)


@pytest.fixture
def filled(template, tmp_path):
    """A gallery of 3 generators x 6 images (a copy of one enrolled once per module)."""
    shutil.copytree(template, tmp_path / "g")
    return tmp_path / "g"


def answers(root: Path, queries, notes=None) -> list[dict]:
    with Gallery(root, read_only=True, notify=(notes.append if notes is not None else None)) as g:
        return [r.to_json() for r in g.identify(queries, bound())]


def check(root: Path, repair=False):
    with Gallery(root, read_only=True) as g:
        return g.check(repair=repair)


def labels_file(root: Path) -> Path:
    return next((root / "index").glob("*.labels.npy"))


def test_kill_9_at_random_points_of_enroll_and_remove_leaves_whole_chunks_and_a_rerun_completes(tmp_path):
    """A small run of benchmarks/kill_test.py: kills while the victim holds the writer lock; an enroll leaves
    whole chunks (every sample with its vector), a remove the old or the new state."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "kill_test.py"), "--points", "2", "--images", "100",
         "--in-lock-only", "--no-rerun", "--json", "--workdir", str(tmp_path / "work")],
        capture_output=True, text=True, timeout=600)
    report = json.loads(result.stdout)
    assert report["summary"]["trials"] == 4
    assert [t["failure"] for t in report["trials"]] == [None] * 4, result.stdout
    assert result.returncode == 0


def test_a_crash_after_the_commit_leaves_a_stale_index_the_next_reader_rebuilds(filled, make_set, monkeypatch):
    query = make_set("gray", 2, seed=9) + make_set("red", 2, seed=9)

    def killed(*args, **kwargs):
        raise SystemExit("killed while writing the index")

    with monkeypatch.context() as patch:
        patch.setattr(files, "write_index", killed)
        with pytest.raises(SystemExit), Gallery(filled) as g:
            g.enroll("gray", make_set("gray", 6), bound())
    report = check(filled)
    assert [f.subject for f in report.findings if f.severity == "stale"] == ["colormean@1"]
    assert "index is out of date" in report.findings[0].problem and report.findings[0].repair
    notes = []
    stale = answers(filled, query, notes)
    assert any("rebuilt it from 24 stored vectors" in n for n in notes)
    assert check(filled).consistent
    assert answers(filled, query) == stale and stale[0]["nearest"] == "gray"


def test_a_crash_while_calibrating_keeps_the_committed_chunks_and_a_rerun_completes(filled, make_set, monkeypatch):
    from attrib.scoring import open_set

    query = make_set("green", 2, seed=5)
    before = answers(filled, query)
    images = make_set("gray", 6)
    with monkeypatch.context() as patch:
        patch.setattr(open_set, "calibrate", lambda *a, **k: (_ for _ in ()).throw(SystemExit("killed")))
        with pytest.raises(SystemExit), Gallery(filled) as g:
            g.enroll("gray", images, bound())
    report = check(filled)
    assert report.samples == 24 and report.generators == 4  # the chunk was committed, with its vectors
    assert not any("no vector" in f.problem for f in report.findings)
    assert {f.repair for f in report.findings} == {"refit the whitening and recalibrate",
                                                   "rebuild it from the stored vectors"}
    with Gallery(filled) as g:
        again = g.enroll("gray", images, bound())
        assert again.added == [] and len(again.skipped) == 6 and again.calibration
    assert check(filled).consistent
    assert [r["nearest"] for r in answers(filled, query)] == [r["nearest"] for r in before]


def test_samples_stored_without_their_calibration_are_refitted_by_the_next_enroll(filled, make_set, store_of):
    """What a crash between the commits of earlier versions left: samples, then no recalibration."""
    from attrib.images import load_images

    images = make_set("gray", 6)
    loaded = [image for _, image in load_images(images)]
    store_of(filled).add_samples("gray", loaded, bound().embed([i.pixels for i in loaded]), bound())
    report = check(filled)
    assert {f.repair for f in report.findings} == {"refit the whitening and recalibrate",
                                                   "rebuild it from the stored vectors"}
    assert "was fitted at revision" in report.findings[0].problem
    notes = []
    with Gallery(filled, notify=notes.append) as g:
        again = g.enroll("gray", images, bound())
        assert again.added == [] and len(again.skipped) == 6 and again.calibration
        assert all(info.threshold is not None for info in g.generators())
    assert any("recalibrating" in n for n in notes)
    assert check(filled).consistent


def test_a_reader_refits_stale_fits_when_it_can_write_and_says_so_in_one_line_when_not(filled, make_set):
    query = make_set("blue", 2, seed=4)
    expected = answers(filled, query)
    with sqlite3.connect(filled / "gallery.db") as con:  # an unrecorded change to the vectors
        con.execute("UPDATE extractors SET revision = revision + 1")
    with read_only_view(filled) as frozen:
        with pytest.raises(StaleGallery, match=r"fitted at revision \d+ .*run `attrib calibrate`"):
            answers(frozen, query)
    notes = []
    assert answers(filled, query, notes) == expected
    assert any("refitted and recalibrated" in n for n in notes) and check(filled).consistent


@pytest.mark.parametrize("damage", ["empty", "random", "permuted"])
def test_damaged_labels_are_detected_and_rebuilt(filled, make_set, damage):
    query = make_set("green", 3, seed=2) + make_set("red", 3, seed=2)
    expected = answers(filled, query)
    path = labels_file(filled)
    if damage == "empty":
        path.write_bytes(b"")
    elif damage == "random":
        path.write_bytes(np.random.default_rng(0).bytes(300))
    else:
        labels = np.load(path)
        labels[1] = np.roll(labels[1], 6)  # every vector now points at another generator
        np.save(path, labels)
    report = check(filled)
    assert not report.consistent and report.to_reindex
    notes = []
    assert answers(filled, query, notes) == expected
    assert any("rebuilt it" in n for n in notes) and check(filled).consistent


def test_reads_during_index_rewrites_always_see_a_whole_generation(filled):
    from attrib.upkeep.freshness import read_view

    key = bound().identity.key
    writer = subprocess.Popen([sys.executable, "-c", (  # two generations in turn: the previous one is removed
        "import sys; from pathlib import Path; from attrib.index import choice, files\n"
        "from attrib.storage.sqlite import SQLiteStore\n"
        "root = Path(sys.argv[1]); store = SQLiteStore(root); state = store.index_state(1)\n"
        "ids, gens, matrix = store.vectors(1); vectors = store.whitening(1).apply(matrix)\n"
        "for i in range(40):\n"
        "    state.key = ('IDMap2,Flat', 'IDMap2,HNSW32')[i % 2]\n"
        "    index = choice.build_index(ids, vectors, state.dim, state.key)\n"
        "    files.write_index(index, files.index_path(root, 1), state, ids, gens)\n"), str(filled)])
    views = []
    while writer.poll() is None:
        views.append(read_view(filled, key))
    assert writer.wait() == 0
    assert len(views) > 10 and all(v is not None and len(v.ids) == 18 for v in views)


def test_disk_full_during_enroll_is_one_line_and_loses_nothing(filled, make_set):
    with small_disk(2048) as disk:
        gallery = disk / "g"
        subprocess.run(["cp", "-r", str(filled), str(gallery)], check=True)
        filler = fill_disk(disk, leave_bytes=8192)
        with pytest.raises(DiskFull, match=f"gallery {gallery} .*free space, then run `attrib gallery check --repair`"):
            with Gallery(gallery) as g:
                g.enroll("gray", make_set("gray", 30), bound())
        filler.unlink()
        report = check(gallery)
        assert report.consistent and report.samples == 18


def test_disk_full_while_writing_the_index_keeps_identify_working_until_repaired(filled, make_set, monkeypatch):
    query = make_set("gray", 2, seed=3)
    with small_disk(2048) as disk:
        gallery = disk / "g"
        subprocess.run(["cp", "-r", str(filled), str(gallery)], check=True)
        write = files.write_index

        def disk_fills_up(*args, **kwargs):
            fill_disk(disk)
            return write(*args, **kwargs)

        with monkeypatch.context() as patch:
            patch.setattr(files, "write_index", disk_fills_up)
            with pytest.raises(DiskFull, match="writing the index files .*free space"), Gallery(gallery) as g:
                g.enroll("gray", make_set("gray", 6), bound())
        notes = []
        assert answers(gallery, query, notes)[0]["nearest"] == "gray"
        assert any("searched the stored vectors instead" in n for n in notes)
        (disk / "filler").unlink()
        repaired = check(gallery, repair=True)
        assert repaired.consistent and any("rebuilt the index" in line for line in repaired.repaired)


def test_a_read_only_gallery_refuses_writes_in_one_line_and_still_answers(filled, make_set):
    query = make_set("red", 1, seed=8)
    expected = answers(filled, query)
    with read_only_view(filled) as frozen:
        assert answers(frozen, query) == expected
        with Gallery(frozen) as g:
            for write in (lambda: g.enroll("gray", make_set("gray", 3), bound()), lambda: g.calibrate(),
                          lambda: g.remove("red")):
                with pytest.raises(GalleryError, match=f"gallery {frozen} cannot be written"):
                    write()
        assert check(frozen).consistent


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_database_is_one_line_naming_the_file(filled, make_set, damage):
    database = filled / "gallery.db"
    with sqlite3.connect(database) as con:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    if damage == "garbage":
        database.write_bytes(np.random.default_rng(1).bytes(database.stat().st_size))
    else:
        with open(database, "r+b") as handle:
            handle.truncate(database.stat().st_size // 2)
    with pytest.raises(DamagedGallery, match=f"{database} is damaged .*restore it from a backup"):
        answers(filled, make_set("red", 1))
    with pytest.raises(DamagedGallery, match=f"{database} is damaged .*restore it from a backup"):
        with Gallery(filled) as g:
            g.enroll("x", make_set("gray", 2), bound())
    report = check(filled)
    assert not report.consistent and "damaged" in report.findings[0].problem


@pytest.mark.parametrize("state", ["empty", "missing"])
def test_a_new_gallery_is_never_started_over_the_index_files_of_an_old_one(filled, make_set, state):
    database = filled / "gallery.db"
    for path in filled.glob("gallery.db*"):
        path.unlink()
    if state == "empty":
        database.write_bytes(b"")
    index_files = {p: p.read_bytes() for p in (filled / "index").iterdir()}
    with pytest.raises(DamagedGallery, match="refusing to start a new gallery over them"):
        with Gallery(filled) as g:
            g.enroll("x", make_set("gray", 2), bound())
    assert {p: p.read_bytes() for p in (filled / "index").iterdir()} == index_files
    assert not check(filled).consistent


@pytest.mark.parametrize("name", ["a?b", "p%41q", "h#x", "sp ace"])
def test_gallery_paths_with_url_characters(tmp_path, make_set, name):
    folder = tmp_path / "gp" / name
    with Gallery(folder) as g:
        g.enroll("red", make_set("red", 4), bound())
        g.enroll("blue", make_set("blue", 4), bound())
    assert answers(folder, make_set("red", 1, seed=3))[0]["nearest"] == "red"
    assert sorted(p.name for p in (tmp_path / "gp").iterdir()) == [name]
    assert (folder / "gallery.db").stat().st_size > 0 and check(folder).consistent


def test_an_empty_gallery_path_is_refused_in_one_line(tmp_path, make_set, monkeypatch):
    monkeypatch.chdir(tmp_path)
    paths = make_set("red", 2)
    result = CliRunner().invoke(cli, ["--gallery", "", "enroll", "-g", "red", str(paths[0])])
    assert result.exit_code == 1 and result.output.strip().count("\n") == 0
    assert "gallery path is empty" in result.output and not (tmp_path / "gallery.db").exists()


def downgrade_to_schema_4(root: Path, whitening_fitted_on_all: bool = True) -> None:
    """Make ``root`` look like a gallery written by the previous attrib (schema 4)."""
    with sqlite3.connect(root / "gallery.db") as con:
        for trigger in ("vectors_added", "vectors_removed", "vectors_changed", "samples_relabelled"):
            con.execute(f"DROP TRIGGER {trigger}")
        for table in ("extractors", "backends", "calibrations"):
            con.execute(f"ALTER TABLE {table} DROP COLUMN revision")
        if not whitening_fitted_on_all:
            con.execute("UPDATE backends SET n_fitted = n_fitted - 6")
        con.execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'")


@pytest.mark.parametrize("fitted_on_all", [True, False])
def test_a_schema_4_gallery_opens_and_only_an_incomplete_fit_is_redone(filled, make_set, fitted_on_all):
    query = make_set("green", 2, seed=6)
    expected = answers(filled, query)
    downgrade_to_schema_4(filled, fitted_on_all)
    report = check(filled)
    assert report.needs_migration and not report.consistent
    notes = []
    assert answers(filled, query, notes) == expected
    assert any("refitted" in n for n in notes) != fitted_on_all
    assert check(filled).consistent


@pytest.mark.parametrize("fault,kind,words", [
    (OSError(28, "No space left on device", "/g/index/1.json"), DiskFull, "free space, then run `attrib gallery check"),
    (OSError(13, "Permission denied", "/g/gallery.lock"), GalleryError, "cannot be written (Permission denied: /g/"),
    (OSError(30, "Read-only file system"), GalleryError, "cannot be written (Read-only file system)"),
    (sqlite3.OperationalError("database or disk is full"), DiskFull, "free space"),
    (sqlite3.OperationalError("attempt to write a readonly database"), GalleryError, "cannot be written"),
    (sqlite3.DatabaseError("file is not a database"), DamagedGallery, "restore it from a backup"),
    (sqlite3.DatabaseError("database disk image is malformed"), DamagedGallery, "restore it from a backup"),
    (sqlite3.IntegrityError("UNIQUE constraint failed: samples.sha256"), GalleryError, "run the command again"),
])
def test_storage_faults_become_one_line_gallery_errors(tmp_path, fault, kind, words):
    from attrib.storage.faults import faults

    with pytest.raises(kind, match=f"gallery.* {tmp_path}") as raised, faults(tmp_path, "writing"):
        raise fault
    assert words in str(raised.value) and "\n" not in str(raised.value)
    with pytest.raises(ValueError), faults(tmp_path):  # anything else is not hidden
        raise ValueError("a bug")


def test_the_cli_reports_a_damaged_gallery_in_one_line(filled, make_set, colormean):
    (filled / "gallery.db").write_bytes(b"\1" * 4096)
    for path in filled.glob("gallery.db-*"):
        path.unlink()
    for args in (["identify", "-e", "colormean"], ["enroll", "-e", "colormean", "-g", "x"]):
        result = CliRunner().invoke(cli, ["--gallery", str(filled), *args, str(make_set("red", 1)[0])])
        assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
        assert result.output.startswith(f"Error: gallery database {filled / 'gallery.db'} is damaged")
