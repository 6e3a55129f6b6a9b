"""Helpers for the storage tests (durability, concurrency, gallery check): a quick extractor with its
own impostor cohort, galleries in other processes, read-only mounts and small disks."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from attrib.extractors.contract import BoundExtractor
from attrib.host.manager import ExtractorSpec

from conftest import ColorMean

HERE = Path(__file__).resolve().parent


class CohortColorMean(ColorMean):
    """ColorMean with a small impostor cohort of its own (noise of random casts), so a gallery is
    calibrated against a cohort without rendering the project's 400 cohort images."""

    def cohort_vectors(self, version: str) -> np.ndarray:
        rng = np.random.default_rng(7)
        images = [np.clip(rng.normal(rng.uniform(40, 220, 3), 25, (24, 24, 3)), 0, 255).astype(np.uint8)
                  for _ in range(60)]
        vectors = self.embed_batch(images)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def bound() -> BoundExtractor:
    return BoundExtractor(ExtractorSpec(CohortColorMean, "test-plugin"))


def run_in_process(code: str, *args: str, check: bool = True) -> subprocess.Popen:
    """Start ``python -c code args...`` with the tests folder importable; returns the process."""
    prelude = f"import sys; sys.path.insert(0, {str(HERE)!r})\n"
    return subprocess.Popen([sys.executable, "-c", prelude + code, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


ENROLL = """
import json
from pathlib import Path
from gallery_helpers import bound
from attrib.gallery import Gallery
from attrib.errors import AttribError
gallery, generator, *paths = sys.argv[1:]
try:
    with Gallery(gallery) as g:
        report = g.enroll(generator, [Path(p) for p in paths], bound())
    print(json.dumps({"added": len(report.added), "skipped": len(report.skipped), "failed": report.failed}))
except AttribError as exc:
    print(json.dumps({"error": str(exc)}))
"""


def enroll_elsewhere(gallery: Path, generator: str, paths) -> subprocess.Popen:
    """Enroll ``paths`` under ``generator`` from another process (prints a JSON summary)."""
    return run_in_process(ENROLL, str(gallery), generator, *map(str, paths))


def outcomes(processes) -> list[dict]:
    """The JSON summary each finished process printed last (every one must have succeeded)."""
    import json

    results = []
    for process in processes:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0 and "Traceback" not in err, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def enrolled_gallery(folder: Path, per_generator: int) -> Path:
    """``folder/g``: red, green and blue, ``per_generator`` images each, enrolled with :func:`bound`."""
    from attrib.gallery import Gallery
    from conftest import make_images

    with Gallery(folder / "g") as gallery:
        for name in ("red", "green", "blue"):
            gallery.enroll(name, make_images(folder / "data" / name, name, per_generator), bound())
    return folder / "g"


def _mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


@contextmanager
def read_only_view(folder: Path):
    """``folder`` mounted read-only at another path (even root cannot write there); skips the test where
    mounting is not allowed."""
    target = Path(tempfile.mkdtemp(prefix="attrib-ro-"))
    if not (_mount("--bind", str(folder), str(target))):
        target.rmdir()
        pytest.skip("needs permission to bind-mount a folder read-only")
    try:
        if not _mount("-o", "remount,ro,bind", str(target)):
            pytest.skip("needs permission to remount a folder read-only")
        yield target
    finally:
        subprocess.run(["umount", "--lazy", str(target)], capture_output=True)  # files a traceback holds open
        target.rmdir()


@contextmanager
def small_disk(size_kib: int):
    """An empty tmpfs of ``size_kib`` KiB; skips the test where mounting is not allowed."""
    target = Path(tempfile.mkdtemp(prefix="attrib-disk-"))
    if not _mount("-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(target)):
        target.rmdir()
        pytest.skip("needs permission to mount a tmpfs")
    try:
        yield target
    finally:
        subprocess.run(["umount", "--lazy", str(target)], capture_output=True)
        target.rmdir()


def fill_disk(folder: Path, leave_bytes: int = 0) -> Path:
    """Fill the disk of ``folder`` up to ``leave_bytes`` free with one file; returns it."""
    import os

    filler = folder / "filler"
    with open(filler, "wb") as handle:
        chunk = b"\0" * 4096
        while True:
            free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
            if free <= leave_bytes:
                break
            try:
                handle.write(chunk[: max(1, min(len(chunk), free - leave_bytes))])
                handle.flush()
            except OSError:
                break
    return filler
