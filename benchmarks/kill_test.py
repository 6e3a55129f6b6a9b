"""Crash consistency: kill -9 `attrib enroll` and `attrib gallery remove` at random points.

    python benchmarks/kill_test.py [--points 20] [--images 600] [--operations enroll,remove]
                                   [--in-lock-only] [--no-rerun] [--workdir DIR] [--seed 0] [--json]

A base gallery (3 zoo generators x 20 images) is copied for every trial; the victim process
enrolls a 4th generator (``--images`` zoo images of 64-128 px) into the copy, or removes it
from a copy that holds it, and is killed with SIGKILL. Half the kill times are uniform over
the whole run (start-up, decoding and embedding included), half uniform over the time the
victim holds the gallery's writer lock (storing, calibrating, writing the index), which an
uninterrupted run is timed for first (the lock is watched in /proc/locks).

Enrollment commits its images in chunks, so after each kill of an enroll the gallery holds the
victim with between none and all of its images (for a remove: all or none), every sample with
its vector, and `attrib gallery check` must call it consistent, or stale (only what the next
reader refits by itself; exit status 0): then an identify runs, and the check must pass. Finally the killed
command is run again to completion, and must leave the new state (every image enrolled, checked
consistent; ``--no-rerun`` skips that). ``--in-lock-only`` draws every kill time from the lock
window(s). Prints one line per trial and a summary; exit status 1 when any trial failed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASE = ("nearest-1", "bilinear-1", "tconv-1")
VICTIM = "upconv-2"
SIZES = (64, 96, 128)


def attrib_command(gallery: Path, *args: str) -> list[str]:
    """The installed `attrib` command (beside this Python) with ``args``."""
    return [sys.executable, "-c", "from attrib.cli import main; main()", "--gallery", str(gallery), *args]


def write_data(folder: Path, images: int) -> tuple[dict[str, Path], Path]:
    """Base generators' folders (20 images each) and the victim's folder (``images`` of 64-128 px)."""
    from attrib.synthetic.zoo import write_zoo

    write_zoo(folder / "base", list(BASE), n_per=20, size=96)
    per_size = -(-images // len(SIZES))
    for k, size in enumerate(SIZES):
        count = min(per_size, images - k * per_size)
        if count > 0:
            write_zoo(folder / "victim", [VICTIM], n_per=count, size=size, start=k * per_size)
    return {name: folder / "base" / name for name in BASE}, folder / "victim" / VICTIM


def enroll_base(gallery: Path, base: dict[str, Path]) -> None:
    import attrib

    extractor = attrib.load_extractor("residual")
    with attrib.open_gallery(gallery) as g:
        for name, folder in base.items():
            g.enroll(name, sorted(folder.iterdir()), extractor)


def run(command: list[str]) -> None:
    subprocess.run(command, check=True, capture_output=True, text=True, env=child_env())


def child_env() -> dict:
    return {**os.environ, "ATTRIB_LOCK_TIMEOUT": "60"}


def lock_held(gallery: Path) -> bool:
    """Whether some process holds the gallery's writer lock (read from /proc/locks, never taken)."""
    try:
        inode = os.stat(gallery / "gallery.lock").st_ino
        return any(line.split()[5].endswith(f":{inode}") for line in Path("/proc/locks").read_text().splitlines()
                   if "FLOCK" in line)
    except (OSError, IndexError):
        return False


def timed_run(command: list[str], gallery: Path) -> tuple[float, float, float]:
    """Run to completion: (seconds in all, seconds until the writer lock was first held, seconds held)."""
    start = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=child_env())
    first = last = None
    while process.poll() is None:
        if lock_held(gallery):
            now = time.monotonic()
            first = first if first is not None else now
            last = now
        time.sleep(0.002)
    end = time.monotonic()
    if process.returncode:
        raise SystemExit(f"{' '.join(command)} failed with status {process.returncode}")
    first = first if first is not None else end
    return end - start, first - start, (last or end) - first


def kill_at(command: list[str], gallery: Path, delay: float, after_lock: bool) -> str:
    """Start ``command`` and kill it ``delay`` seconds after its start (or after it takes the writer lock);
    returns whether it was killed or had finished first."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=child_env())
    if after_lock:
        while process.poll() is None and not lock_held(gallery):
            time.sleep(0.001)
    time.sleep(delay)
    if process.poll() is not None:
        return "finished"
    process.send_signal(signal.SIGKILL)
    process.wait()
    return "killed"


def gallery_state(gallery: Path, query: Path) -> dict:
    """Check the gallery; when it is not consistent, identify once (a reader refits what it can) and check
    again. Returns the victim's sample count, both checks, and whether every generator has a threshold."""
    import attrib
    from attrib.gallery import Gallery

    notes: list[str] = []
    with Gallery(gallery, read_only=True, notify=notes.append) as g:
        first = g.check()
    after = first
    if not first.consistent:
        with Gallery(gallery, read_only=True, notify=notes.append) as g:
            list(g.identify([query], attrib.load_extractor("residual")))
            after = g.check()
    with Gallery(gallery, read_only=True) as g:
        generators = {info.name: info for info in g.generators()}
    victim = generators.get(VICTIM)
    return {
        "victim_samples": victim.samples if victim else 0,
        "first_check": [f.line() for f in first.findings],
        "consistent_first": first.consistent,
        "status_first": first.status,
        "consistent_after_reader": after.consistent,
        "after_reader": [f.line() for f in after.findings],
        "thresholds": all(info.threshold is not None for info in generators.values()),
        "notes": notes,
    }


def judge(state: dict, old: int, new: int, partial: bool) -> str | None:
    """Why a trial failed, or None. ``partial``: any count between ``old`` and ``new`` is a valid state
    (an enroll killed between chunk commits)."""
    count = state["victim_samples"]
    if not (min(old, new) <= count <= max(old, new) if partial else count in (old, new)):
        return f"victim has {count} samples: not a state between the old ({old}) and the new ({new})"
    if state["status_first"] == "inconsistent":
        return "inconsistent after the kill (not only stale): " + "; ".join(state["first_check"])
    if not state["consistent_after_reader"]:
        return "inconsistent even after a reader: " + "; ".join(state["after_reader"])
    if not state["thresholds"]:
        return "a generator has no threshold"
    return None


def trials(operation: str, template: Path, work: Path, command_of, args, rng: random.Random,
           total: float, window: float, old: int, new: int, query: Path, say) -> list[dict]:
    results = []
    for point in range(args.points):
        after_lock = args.in_lock_only or point % 2 == 1
        delay = rng.uniform(0, window if after_lock else total)
        gallery = work / f"{operation}-{point}"
        shutil.copytree(template, gallery)
        outcome = kill_at(command_of(gallery), gallery, delay, after_lock)
        state = gallery_state(gallery, query)
        state.update(operation=operation, point=point, delay=round(delay, 3),
                     clock="after taking the lock" if after_lock else "after start", outcome=outcome)
        state["failure"] = judge(state, old, new, partial=operation == "enroll")
        if not args.no_rerun:  # the killed command again, to completion (a remove that was done fails)
            subprocess.run(command_of(gallery), capture_output=True, env=child_env())
            rerun = gallery_state(gallery, query)
            state["rerun_victim_samples"] = rerun["victim_samples"]
            if state["failure"] is None and (rerun["victim_samples"] != new or not rerun["consistent_first"]):
                state["failure"] = (f"running it again left {rerun['victim_samples']} victim samples; "
                                    + "; ".join(rerun["first_check"]))
        kind = {new: "new", old: "old"}.get(state["victim_samples"], f"partial ({state['victim_samples']} of {new})")
        stale = ("" if state["consistent_first"]
                 else f", stale then refitted by a reader ({len(state['first_check'])} findings)")
        say(f"{operation} #{point}: {outcome} {delay:.3f} s {state['clock']}: {kind} state{stale}"
            + (f"  FAILED: {state['failure']}" if state["failure"] else ""))
        results.append(state)
        shutil.rmtree(gallery)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=20, help="kill points per operation (default 20)")
    parser.add_argument("--images", type=int, default=600, help="images the victim enrolls (default 600)")
    parser.add_argument("--operations", default="enroll,remove", help="enroll, remove or both (default)")
    parser.add_argument("--in-lock-only", action="store_true", help="kill only while the writer lock is held")
    parser.add_argument("--no-rerun", action="store_true", help="do not run the killed command again")
    parser.add_argument("--workdir", type=Path, help="keep data and galleries here (default: a temporary folder)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the trials and the summary as one JSON object")
    args = parser.parse_args(argv)
    say = (lambda line: None) if args.json else print
    work = args.workdir or Path(tempfile.mkdtemp(prefix="attrib-kill-"))
    work.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    base, victim = write_data(work / "data", args.images)
    query = sorted(victim.iterdir())[0]
    old_gallery, new_gallery = work / "old", work / "new"
    for path in (old_gallery, new_gallery):
        shutil.rmtree(path, ignore_errors=True)
    enroll_base(old_gallery, base)
    shutil.copytree(old_gallery, new_gallery)
    operations = [op.strip() for op in args.operations.split(",") if op.strip()]
    enroll = lambda gallery: attrib_command(gallery, "enroll", "-g", VICTIM, str(victim))  # noqa: E731
    remove = lambda gallery: attrib_command(gallery, "gallery", "remove", VICTIM)  # noqa: E731
    total, until_lock, held = timed_run(enroll(new_gallery), new_gallery)
    say(f"uninterrupted enroll of {args.images} images: {total:.2f} s, writer lock taken after "
        f"{until_lock:.2f} s and held {held:.2f} s")
    results = []
    if "enroll" in operations:
        results += trials("enroll", old_gallery, work, enroll, args, rng, total, held, 0, args.images, query, say)
    if "remove" in operations:
        spare = work / "timing"
        shutil.rmtree(spare, ignore_errors=True)
        shutil.copytree(new_gallery, spare)
        total, until_lock, held = timed_run(remove(spare), spare)
        say(f"uninterrupted remove: {total:.2f} s, writer lock taken after {until_lock:.2f} s and held {held:.2f} s")
        shutil.rmtree(spare)
        results += trials("remove", new_gallery, work, remove, args, rng, total, held, args.images, 0, query, say)
    failed = [r for r in results if r["failure"]]
    summary = {
        "trials": len(results), "failed": len(failed),
        "killed": sum(r["outcome"] == "killed" for r in results),
        "old_state": sum(r["victim_samples"] == (0 if r["operation"] == "enroll" else args.images) for r in results),
        "partial_state": sum(0 < r["victim_samples"] < args.images for r in results),
        "stale_then_refitted": sum(not r["consistent_first"] for r in results),
    }
    if args.json:
        print(json.dumps({"summary": summary, "trials": results}))
    else:
        print(f"{summary['trials']} trials ({summary['killed']} killed before finishing): {summary['failed']} failed; "
              f"{summary['old_state']} left the old state, {summary['partial_state']} a partial one (whole chunks), "
              f"{summary['trials'] - summary['old_state'] - summary['partial_state']} the new one; "
              f"{summary['stale_then_refitted']} reported stale and were refitted by the next reader")
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
