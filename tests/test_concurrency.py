"""Concurrent writers: the writer lock serialises them, owners are checked again under it, and a stale
calibration never lands after a fresh one."""

from __future__ import annotations

import fcntl
import os
import signal
import threading

import pytest

from attrib.errors import GalleryBusy
from attrib.gallery import Gallery

from gallery_helpers import bound, enroll_elsewhere, outcomes, run_in_process


def check(root):
    with Gallery(root, read_only=True) as g:
        return g.check()


def test_two_enrolls_into_the_same_new_name_both_store(tmp_path, make_set):
    first, second = make_set("gray", 12, seed=1), make_set("gray", 12, seed=2)
    with Gallery(tmp_path / "g") as g:
        g.enroll("red", make_set("red", 5), bound())
    results = outcomes([enroll_elsewhere(tmp_path / "g", "gray", first),
                        enroll_elsewhere(tmp_path / "g", "gray", second)])
    assert [r.get("added") for r in results] == [12, 12], results
    report = check(tmp_path / "g")
    assert report.consistent and report.samples == 29 and report.generators == 2


def test_the_same_files_enrolled_at_once_are_stored_once(tmp_path, make_set):
    files = make_set("gray", 12)
    with Gallery(tmp_path / "g") as g:
        g.enroll("red", make_set("red", 5), bound())
    same_name = outcomes([enroll_elsewhere(tmp_path / "g", "gray", files) for _ in range(2)])
    assert sorted((r["added"], r["skipped"]) for r in same_name) == [(0, 12), (12, 0)], same_name
    more = make_set("blue", 8)
    other_names = outcomes([enroll_elsewhere(tmp_path / "g", name, more) for name in ("blue", "navy")])
    assert sorted(r["added"] for r in other_names) == [0, 8]
    refused = next(r for r in other_names if r["added"] == 0)["failed"]
    assert len(refused) == 8 and all("already enrolled under generator" in reason for _, reason in refused)
    report = check(tmp_path / "g")
    assert report.consistent and report.samples == 25


def test_concurrent_loops_of_small_enrolls_end_with_every_generator_calibrated(tmp_path, make_set, store_of):
    with Gallery(tmp_path / "g") as g:
        g.enroll("seed", make_set("gray", 4, seed=9), bound())
    loop = """
from pathlib import Path
from gallery_helpers import bound
from attrib.gallery import Gallery
gallery, name, *paths = sys.argv[1:]
for start in range(0, len(paths), 3):
    with Gallery(gallery) as g:
        g.enroll(name, [Path(p) for p in paths[start:start + 3]], bound())
print('{}')
"""
    casts = ("red", "green", "blue")
    processes = [run_in_process(loop, str(tmp_path / "g"), f"{cast}-loop", *map(str, make_set(cast, 9, seed=3)))
                 for cast in casts]
    outcomes(processes)
    report = check(tmp_path / "g")
    assert report.consistent and report.samples == 31
    with Gallery(tmp_path / "g") as g:
        infos = g.generators()
        assert len(infos) == 4 and all(info.threshold is not None for info in infos)
    store = store_of(tmp_path / "g")
    extractor_id = store.extractor_id(bound().identity.key)
    assert store.fit_revisions(extractor_id) == (store.revision(extractor_id),) * 2


def hold_lock(root):
    handle = open(root / "gallery.lock", "a+")
    fcntl.flock(handle, fcntl.LOCK_EX)
    return handle


def test_a_writer_waits_for_the_lock_says_so_and_then_gives_up(tmp_path, make_set):
    root = tmp_path / "g"
    with Gallery(root) as g:
        g.enroll("red", make_set("red", 5), bound())
    holder = hold_lock(root)
    notes = []
    with Gallery(root, notify=notes.append, lock_timeout=0.3) as g:
        with pytest.raises(GalleryBusy, match="another attrib process has been writing to it for over 0.3 s"):
            g.enroll("green", make_set("green", 5), bound())
        assert [n for n in notes if "busy" in n] == [f"gallery {root} is busy: another attrib process is "
                                                     "writing to it; waiting up to 0.3 s"]
    holder.close()
    assert check(root).samples == 5
    release = threading.Timer(0.5, hold_lock(root).close)
    release.start()
    with Gallery(root, lock_timeout=60) as g:
        assert len(g.enroll("green", make_set("green", 5), bound()).added) == 5
    release.join()


def test_a_killed_writer_never_leaves_the_gallery_locked(tmp_path, make_set):
    root = tmp_path / "g"
    root.mkdir()
    holder = run_in_process(
        "import fcntl, time\nh = open(sys.argv[1], 'a+'); fcntl.flock(h, fcntl.LOCK_EX); print('held', flush=True)\n"
        "time.sleep(600)\n", str(root / "gallery.lock"))
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(GalleryBusy), Gallery(root, lock_timeout=0.2) as g:
        g.enroll("red", make_set("red", 4), bound())
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    with Gallery(root, lock_timeout=60) as g:  # the kernel released the dead holder's lock
        assert len(g.enroll("red", make_set("red", 4), bound()).added) == 4
