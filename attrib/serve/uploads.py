"""Uploaded images as files the loader reads, and answers that name the uploads, not those files.

Each upload is written to a folder of its own inside one temporary folder per request, under its
uploaded base name, so the loader (:mod:`attrib.images`) reads, hashes and decodes it exactly as it
reads a file named on the command line; :func:`relabel` then puts the uploaded name back into the
answer's path and error text, which are then the CLI's for a file of that name.
"""

from __future__ import annotations

import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..images import display_path

PREFIX = "attrib-upload-"


@dataclass(frozen=True)
class Upload:
    """One uploaded image: its name as the client gave it, and its bytes."""

    name: str
    data: bytes


@dataclass(frozen=True)
class Written:
    """An upload written to ``path`` (shown by the loader as ``shown``), answered as ``name``."""

    name: str
    path: Path
    shown: str


def upload_name(filename: str | None, position: int) -> str:
    """The base name of an uploaded file name (no folders, no NUL), or ``upload-N`` when none is left."""
    base = (filename or "").replace("\\", "/").rsplit("/", 1)[-1].replace("\x00", "").strip()
    return base if base not in ("", ".", "..") else f"upload-{position + 1}"


@contextmanager
def written(uploads: list[Upload]):
    """The uploads as files in a temporary folder (removed afterwards), in order."""
    with tempfile.TemporaryDirectory(prefix=PREFIX) as folder:
        files = []
        for position, upload in enumerate(uploads):
            own = Path(folder) / str(position)
            own.mkdir()
            path = own / upload.name
            path.write_bytes(upload.data)
            files.append(Written(upload.name, path, display_path(path)))
        yield files


def relabel(result, file: Written):
    """``result`` (an IdentificationResult or Verification) answered for the upload: its path is the
    uploaded name, and its error (if any) names the upload as the CLI names a file."""
    result.path = file.name
    if getattr(result, "error", None):
        result.error = result.error.replace(file.shown, file.name)
    return result
