"""Uploaded images as files the loader reads, and answers that name the uploads, not those files.

Each upload is written as one file, ``N-NAME`` (N unique within the worker, NAME its uploaded base
name), in the worker's own temporary folder (:class:`UploadFolder`), and removed once its request is
answered, so the loader (:mod:`attrib.images`) reads, hashes and decodes it exactly as it reads a
file named on the command line; :func:`relabel` then puts the uploaded name back into the answer's
path and error text, which are then the CLI's for a file of that name.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from contextlib import ExitStack, contextmanager
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


class UploadFolder:
    """One worker's temporary folder for the uploads it is answering (removed by :meth:`close`)."""

    def __init__(self) -> None:
        self.path = Path(tempfile.mkdtemp(prefix=PREFIX))
        self._numbers = itertools.count(1)

    @contextmanager
    def written(self, uploads: list[Upload]):
        """The uploads as files in this folder, in order; each file is removed afterwards."""
        with ExitStack() as stack:
            files = []
            for upload in uploads:
                path = self.path / f"{next(self._numbers)}-{upload.name}"
                with open(path, "xb") as out:
                    stack.callback(path.unlink, missing_ok=True)
                    out.write(upload.data)
                files.append(Written(upload.name, path, display_path(path)))
            yield files

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def relabel(result, file: Written):
    """``result`` (an IdentificationResult or Verification) answered for the upload: its path is the
    uploaded name, and its error (if any) names the upload as the CLI names a file."""
    result.path = file.name
    if getattr(result, "error", None):
        result.error = result.error.replace(file.shown, file.name)
    return result
