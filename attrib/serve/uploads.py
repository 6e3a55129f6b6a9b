"""Uploaded images: decoded from their bytes for identify and verify, written as files for enroll.

Identify and verify decode each upload from its bytes (:func:`decoded`, on the request's thread) under
its uploaded base name, so the answer's path and any error line are the CLI's for a file of that name.
Enroll writes each upload as one file, ``N.EXT`` (N unique within the worker, EXT the uploaded name's
extension when it is a short plain one; :func:`file_name`), in the worker's own temporary folder
(:class:`UploadFolder`), removed once its request is answered, so the enrollment reads, hashes and decodes
it exactly as a file named on the command line. No uploaded name reaches the file system, whatever its
length or characters: answers and stored paths give the uploaded name, mapped back from the file.

An enrolled upload is stored (:func:`stored_as`) as its kept copy when the server keeps uploads
(``ATTRIB_UPLOADS_DIR``, ``attrib serve --keep-uploads DIR``): ``DIR/<sha256[:2]>/<sha256>.<format>``,
named by its content only, so no uploaded name reaches the file system there; else as the placeholder
``upload:NAME`` (:func:`attrib.enrollment.placeholder`), which no one mistakes for a local file.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import secrets
import shutil
import tempfile
import weakref
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ..errors import AttribError, DiskFull
from ..images import Inspect, Loaded, LoadedImage, display_path, image_from_bytes
from ..enrollment import StoredAs, placeholder
from ..delivery import measured
from ..storage.faults import NO_SPACE
from .settings import UPLOADS_DIR_ENV

PREFIX = "attrib-upload-"


@dataclass(frozen=True)
class Upload:
    """One uploaded image: its name as the client gave it, and its bytes."""

    name: str
    data: bytes
    pixels: int = 0  # from its header (0 when that cannot be read)


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


def file_name(number: int, name: str) -> str:
    """The temporary file name of upload ``number`` uploaded as ``name``: ``N.ext`` with the name's extension
    when it is 1-8 ASCII letters or digits, else ``N.upload`` (never one name inside another, as the
    answer's messages are mapped back to uploaded names by finding the file's path in them)."""
    suffix = name.rpartition(".")[2] if "." in name else ""
    plain = 0 < len(suffix) <= 8 and suffix.isascii() and suffix.isalnum()
    return f"{number}.{suffix.lower() if plain else 'upload'}"


class UploadFolder:
    """One worker's temporary folder for the uploads it is answering: removed by :meth:`close`, else when
    the process exits (a worker whose start-up and shut-down never ran, e.g. mounted in another app)."""

    def __init__(self) -> None:
        self.path = Path(tempfile.mkdtemp(prefix=PREFIX))
        self._numbers = itertools.count(1)
        self._removal = weakref.finalize(self, shutil.rmtree, self.path, ignore_errors=True)

    @contextmanager
    def written(self, uploads: list[Upload]) -> Iterator[list[Written]]:
        """The uploads as files in this folder, in order; each file is removed afterwards."""
        with ExitStack() as stack:
            files = []
            for upload in uploads:
                path = self.path / file_name(next(self._numbers), upload.name)
                with open(path, "xb") as out:
                    stack.callback(path.unlink, missing_ok=True)
                    out.write(upload.data)
                files.append(Written(upload.name, path, display_path(path)))
            yield files

    def close(self) -> None:
        self._removal()


def decoded(uploads: list[Upload], inspect: Inspect | None) -> list[Loaded]:
    """Each upload decoded from its bytes as the file named by its uploaded name (or the error that
    name would get), with what ``inspect`` reads of its origin: items :func:`attrib.images.load_images`
    passes on as they are."""
    items: list[Loaded] = []
    for upload in uploads:
        path = Path(upload.name)
        try:
            items.append((path, image_from_bytes(path, upload.data, inspect=inspect, measure=measured)))
        except AttribError as exc:
            items.append((path, exc))
    return items


def stored_as(saved: list[Written], folder: Path | None) -> StoredAs:
    """The path to store for each of the ``saved`` uploads an enroll reads: its copy kept in ``folder``
    (:func:`keep`), or without a folder ``upload:NAME``."""
    if folder is None:
        names = {file.path: file.name for file in saved}
        return lambda image: placeholder(names[image.path])
    return lambda image: display_path(keep(image, folder).resolve())


def kept_file(folder: Path, sha256: str, image_format: str) -> Path:
    """Where the upload with this sha256 (hex) and format (e.g. ``PNG``) is kept in ``folder``."""
    suffix = image_format.lower() if image_format.isascii() and image_format.isalnum() else "img"
    return Path(folder) / sha256[:2] / f"{sha256}.{suffix}"


def keep(image: LoadedImage, folder: Path) -> Path:
    """Copy the file ``image`` was read from to :func:`kept_file` (a temporary name beside it, synced, then
    renamed into place), unless a file with the same content is there already; returns the kept file."""
    target = kept_file(folder, image.sha256, image.format)
    if target.is_file() and _sha256(target) == image.sha256:
        return target
    partial = target.with_name(f".{target.name}.{secrets.token_hex(8)}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(image.path, "rb") as source, open(partial, "xb") as out:
            shutil.copyfileobj(source, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, target)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        kind = DiskFull if exc.errno in NO_SPACE else AttribError
        raise kind(f"cannot keep an upload in {folder} ({exc.strerror or exc}); free space there or set "
                   f"{UPLOADS_DIR_ENV} to a folder the server may write") from None
    return target


def check_folder(folder: Path) -> None:
    """Create ``folder`` (the uploads folder) when missing; one line when the server cannot write there."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise AttribError(f"{UPLOADS_DIR_ENV}={str(folder)!r} cannot be written ({exc.strerror or exc}); "
                          "give a folder the server may write (attrib serve --keep-uploads DIR)") from None


def _sha256(path: Path) -> str | None:
    digest = hashlib.sha256()  # hashlib.file_digest is Python 3.11+
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()
