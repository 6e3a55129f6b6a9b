"""The storage suite on both backends (a gallery folder and a PostgreSQL database on a real, throwaway
server from tests/conftest.py), and what only a database gallery has: several machines with their own
index caches, the advisory writer lock, and faults as one line with the password masked."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from sqlalchemy import text

from attrib.errors import GalleryBusy, GalleryError
from attrib.gallery import Gallery, open_gallery
from attrib.upkeep.freshness import index_problems

from conftest import PG_PASSWORD
from gallery_helpers import CohortColorMean, bound, enroll_elsewhere, outcomes, run_in_process


def decisions(gallery, paths) -> list[tuple]:
    return [(r.to_json()["decision"], r.to_json()["generator"]) for r in gallery.identify(paths, bound())]


def sql(store, statement: str):
    with store.engine.begin() as connection:
        return connection.execute(text(statement))


def test_enroll_identify_remove_calibrate_round_trip(gallery_location, make_set, store_of):
    with Gallery(gallery_location) as g:
        for cast in ("red", "green", "blue"):
            assert len(g.enroll(cast, make_set(cast, 6), bound()).added) == 6
        assert len(g.enroll("red", make_set("red", 6), bound()).skipped) == 6  # stored once, by sha256
        queries = [make_set(cast, 1, seed=5)[0] for cast in ("red", "green", "blue")]
        assert decisions(g, queries) == [(cast, cast) for cast in ("red", "green", "blue")]
        assert g.remove("green") == 6
        assert [info.name for info in g.generators()] == ["blue", "red"]
        assert decisions(g, queries[:1]) == [("red", "red")]
        results = g.calibrate(target_far=0.05)
        assert list(results) == ["colormean@1"]
        store = store_of(gallery_location)
        extractor_id = store.extractor_id("colormean@1")
        assert store.fit_revisions(extractor_id) == (store.revision(extractor_id),) * 2
        actions = [entry["action"] for entry in g.audit_log()]
        assert actions.count("enroll") == 3 and "remove" in actions and actions[-1] == "calibrate"
        report = g.check()
    assert report.consistent and (report.generators, report.samples) == (2, 12), report.lines()


def test_both_backends_give_the_same_answers_and_revisions(tmp_path, postgres_url, make_set, store_of):
    """The same steps on a folder and on a database: identical results, counters and audit trail."""
    steps = [("red", make_set("red", 5)), ("blue", make_set("blue", 5)), ("gray", make_set("gray", 5))]
    queries = make_set("red", 2, seed=7) + make_set("gray", 2, seed=7) + make_set("green", 2, seed=7)
    seen = []
    for location in (tmp_path / "g", postgres_url):
        with Gallery(location) as g:
            for name, paths in steps:
                g.enroll(name, paths, bound())
            g.remove("blue")
            results = [r.to_json() for r in g.identify(queries, bound())]
            store = store_of(location)
            extractor_id = store.extractor_id("colormean@1")
            counters = (store.revision(extractor_id), store.fit_revisions(extractor_id))
            audit = [(e["action"], e["detail"]) for e in g.audit_log()]
            seen.append((results, counters, audit))
    assert seen[0] == seen[1]
    assert seen[0][1][0] == 15 + 5  # one bump per vector stored, one per vector removed


def test_revision_triggers_count_every_change_of_vectors(gallery_location, make_set, store_of):
    with Gallery(gallery_location) as g:
        g.enroll("red", make_set("red", 4), bound())
        g.enroll("blue", make_set("blue", 3), bound())
        store = store_of(gallery_location)
        extractor_id = store.extractor_id("colormean@1")
        before = store.revision(extractor_id)
        assert before == 7
        sql(store, "UPDATE vectors SET data = data WHERE id = 1")
        sql(store, "UPDATE samples SET generator_id = (SELECT id FROM generators WHERE name = 'blue') WHERE id = 1")
        sql(store, "DELETE FROM samples WHERE id = 2")  # its vector goes with it (ON DELETE CASCADE)
        assert store.revision(extractor_id) == before + 3
        report = g.check()
        assert not report.consistent and any("was fitted at revision 7" in f.problem for f in report.findings)
        assert g.check(repair=True).consistent


def test_gallery_check_finds_stale_index_files_and_repairs_them(gallery_location, make_set, store_of):
    with Gallery(gallery_location) as g:
        g.enroll("red", make_set("red", 5), bound())
        g.enroll("green", make_set("green", 5), bound())
        index = store_of(gallery_location).root / "index"  # the folder, or the database's index cache
        for path in index.glob("*.faiss"):
            path.unlink()
        (index / "1-leftover.tmp").write_bytes(b"x")
        report = g.check()
        lines = report.lines()
        assert not report.consistent and any("index files are incomplete" in line for line in lines), lines
        assert any("1 files no index uses" in line for line in lines), lines
        repaired = g.check(repair=True)
        assert repaired.consistent, repaired.lines()
        assert any("rebuilt the index of colormean@1" in line for line in repaired.repaired)


def test_concurrent_writers_on_one_database_keep_everything(postgres_url, make_set, store_of):
    with Gallery(postgres_url) as g:
        g.enroll("red", make_set("red", 4), bound())
    first, second = make_set("gray", 10, seed=1), make_set("gray", 10, seed=2)
    results = outcomes([enroll_elsewhere(postgres_url, "gray", first), enroll_elsewhere(postgres_url, "gray", second),
                        enroll_elsewhere(postgres_url, "navy", first)])
    assert sorted(r.get("added") for r in results) == [0, 10, 10], results  # `first` is stored once
    navy_first = results[2]["added"] == 10  # then gray's enroll of `first` was refused, not stored twice
    assert [r.get("added") for r in results[:2]] == ([0, 10] if navy_first else [10, 10]), results
    with Gallery(postgres_url) as g:
        report = g.check()
        assert report.consistent and report.samples == 24, report.lines()
        names = sorted(info.name for info in g.generators())
        assert names == (["gray", "navy", "red"] if navy_first else ["gray", "red"])
    store = store_of(postgres_url)
    extractor_id = store.extractor_id("colormean@1")
    assert store.fit_revisions(extractor_id) == (store.revision(extractor_id),) * 2


def test_a_machine_rebuilds_its_index_when_another_machine_enrolled(postgres_url, tmp_path, make_set, monkeypatch,
                                                                   store_of):
    query = make_set("blue", 1, seed=5)
    monkeypatch.setenv("ATTRIB_CACHE_DIR", str(tmp_path / "machine-a"))
    with Gallery(postgres_url) as a:
        a.enroll("red", make_set("red", 6), bound())
        a.enroll("green", make_set("green", 6), bound())
        assert [r.to_json()["nearest"] for r in a.identify(query, bound())] != ["blue"]
    monkeypatch.setenv("ATTRIB_CACHE_DIR", str(tmp_path / "machine-b"))
    with Gallery(postgres_url) as b:
        b.enroll("blue", make_set("blue", 6), bound())
        on_b = [r.to_json() for r in b.identify(query, bound())]
    assert on_b[0]["nearest"] == "blue"
    monkeypatch.setenv("ATTRIB_CACHE_DIR", str(tmp_path / "machine-a"))
    notes = []
    with open_gallery(postgres_url, notify=notes.append, read_only=True) as a:
        assert [r.to_json() for r in a.identify(query, bound())] == on_b
    assert any("index is out of date with the database" in n and "rebuilt it from 18 stored vectors" in n
               for n in notes), notes
    store = store_of(postgres_url)  # machine a's view: its index cache now matches the database
    assert str(store.root).startswith(str(tmp_path / "machine-a"))
    assert index_problems(store, store.extractor_id("colormean@1"))[0] == []


def test_the_advisory_lock_makes_writers_wait_then_give_up(postgres_url, make_set, store_of):
    with Gallery(postgres_url) as g:
        g.enroll("red", make_set("red", 4), bound())
    store = store_of(postgres_url)
    key, name = store.lock.key, store.name
    holder = run_in_process(
        "import time, psycopg\nfrom attrib.storage.location import database_url\n"
        "url = database_url(sys.argv[1])\n"
        "c = psycopg.connect(host=url.query['host'], port=int(url.query['port']), user=url.username, "
        "dbname=url.database, autocommit=True)\n"
        "c.execute('SELECT pg_advisory_lock(%s)', (int(sys.argv[2]),)); print('held', flush=True); time.sleep(600)\n",
        postgres_url, str(key))
    try:
        assert holder.stdout.readline().strip() == "held"
        notes = []
        with Gallery(postgres_url, notify=notes.append, lock_timeout=0.3) as g:
            with pytest.raises(GalleryBusy, match="another attrib process has been writing to it for over 0.3 s"):
                g.enroll("green", make_set("green", 4), bound())
        assert notes == [f"gallery {name} is busy: another attrib process is writing to it; waiting up to 0.3 s"]
    finally:
        holder.kill()  # the server ends its session, and the lock with it
        holder.communicate()
    with Gallery(postgres_url, lock_timeout=30) as g:
        assert len(g.enroll("green", make_set("green", 4), bound()).added) == 4


def test_the_password_never_shows_in_messages_audit_or_cache_paths(postgres_server, tmp_path, make_set,
                                                                 monkeypatch, store_of):
    monkeypatch.setenv("ATTRIB_CACHE_DIR", str(tmp_path / "cache"))
    database = postgres_server.new_database()
    url = postgres_server.tcp_url(database)
    notes = []
    with Gallery(url, notify=notes.append) as g:
        g.enroll("red", make_set("red", 4), bound())
        store = store_of(url)
        shown = [str(g.root), store.name, json.dumps(g.audit_log()), *g.check().lines(), *notes]
        cache = store.root
    assert str(g.root) == f"postgresql://attrib:***@127.0.0.1:{postgres_server.port}/{database}"
    assert not [line for line in shown if PG_PASSWORD in line]
    files = [str(p) for p in (tmp_path / "cache").rglob("*")]
    assert files and not [f for f in files if PG_PASSWORD in f]
    from attrib.storage.location import cache_folder, database_url

    assert cache == cache_folder(database_url(url.replace(f":{PG_PASSWORD}@", ":another@")))


@pytest.mark.parametrize("case", ["refused", "unknown database", "bad password"])
def test_a_bad_url_is_one_line_naming_it_and_the_fix(postgres_server, tmp_path, case, monkeypatch):
    monkeypatch.setenv("ATTRIB_CACHE_DIR", str(tmp_path / "cache"))
    port = postgres_server.port
    url, words = {
        "refused": (f"postgresql://attrib:{PG_PASSWORD}@127.0.0.1:{_closed_port()}/gallery",
                    "cannot reach the PostgreSQL server of gallery postgresql://attrib:***@127.0.0.1:"),
        "unknown database": (f"postgresql://attrib:{PG_PASSWORD}@127.0.0.1:{port}/nowhere",
                             "does not exist"),
        "bad password": (f"postgresql://attrib:wrong-{PG_PASSWORD}@127.0.0.1:{port}/postgres",
                         "refused the login"),
    }[case]
    with pytest.raises(GalleryError) as info:
        Gallery(url)
    message = str(info.value)
    assert words in message and "\n" not in message and PG_PASSWORD not in message
    assert {"refused": "pg_isready", "unknown database": "createdb", "bad password": "PGPASSWORD"}[case] in message
    command = [sys.executable, "-c", "from attrib.cli import main; main()", "--gallery", url, "gallery", "list"]
    cli = subprocess.run(command, capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200"})
    assert cli.returncode != 0 and "Traceback" not in cli.stderr, cli.stderr
    assert len(cli.stderr.strip().splitlines()) == 1 and words in cli.stderr and PG_PASSWORD not in cli.stderr


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens there once the socket is closed


def test_without_psycopg_a_database_gallery_says_what_to_install(postgres_url):
    probe = run_in_process(
        "sys.modules['psycopg'] = None\nfrom attrib.gallery import Gallery\nfrom attrib.errors import GalleryError\n"
        "try:\n    Gallery(sys.argv[1])\nexcept GalleryError as exc:\n    print(exc)\n", postgres_url)
    out, err = probe.communicate(timeout=120)
    assert probe.returncode == 0, err
    assert "needs the PostgreSQL driver psycopg 3" in out and "pip install 'attrib[postgres]'" in out
    assert out.count("\n") == 1


def test_a_url_of_another_kind_is_refused(tmp_path):
    with pytest.raises(GalleryError, match="gallery URL scheme 'mysql' is not supported"):
        Gallery("mysql://user:pw@host/db")
    with pytest.raises(GalleryError, match="names no database") as info:
        Gallery("postgresql://user:pw@host")
    assert "pw" not in str(info.value)


def test_the_cli_takes_the_url_from_attrib_gallery(postgres_server, tmp_path, make_set, plugin, monkeypatch):
    from click.testing import CliRunner

    from attrib.cli import cli

    plugin(CohortColorMean, name="test-colormean")  # brings its own small impostor cohort
    monkeypatch.setenv("ATTRIB_CACHE_DIR", str(tmp_path / "cache"))
    url = postgres_server.tcp_url(postgres_server.new_database())
    monkeypatch.setenv("ATTRIB_GALLERY", url)

    def run(*args):
        result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert PG_PASSWORD not in result.output
        return result.output

    for cast in ("red", "blue"):
        run("enroll", "-e", "colormean", "--generator", cast, *map(str, make_set(cast, 6)))
    rows = [json.loads(line) for line in run("identify", "--json", *map(str, make_set("blue", 1, seed=5))).splitlines()
            if line.startswith("{")]
    assert [r["decision"] for r in rows] == ["blue"]  # the gallery's only extractor, found in the database
    listing = json.loads(run("gallery", "list", "--json"))
    assert listing["gallery"] == f"postgresql://attrib:***@127.0.0.1:{postgres_server.port}/" + url.rsplit("/", 1)[1]
    assert {g["name"]: g["samples"] for g in listing["generators"]} == {"blue": 6, "red": 6}
    assert "consistent (2 generators, 12 samples" in run("gallery", "check")
