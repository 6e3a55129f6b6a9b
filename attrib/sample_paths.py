"""What a sample's stored path is: the file it was read from at enrollment, or, for an image uploaded
to ``attrib serve`` without a kept copy, a placeholder ``upload:NAME`` (NAME: the uploaded base name)
that names no local file. Enrolling the same image again from a file (or uploading it to a server that
keeps uploads) replaces its placeholder with that file's path (:func:`relink`), so ``gallery reembed``
can read it again."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

from .images import LoadedImage

PREFIX = "upload:"
StoredAs = Callable[[LoadedImage], str]  # the path to store for an image read from its (given) path


def placeholder(name: str) -> str:
    """The stored path of an uploaded image of which no copy is kept."""
    return PREFIX + name


def is_placeholder(path: str | Path) -> bool:
    return str(path).startswith(PREFIX)


def stored_path(image: LoadedImage, stored_as: StoredAs | None) -> str:
    """The path stored for ``image``: ``stored_as(image)``, by default the file's resolved path."""
    return stored_as(image) if stored_as is not None else str(image.record().path)


def relink(store, generator: str, images: Sequence[LoadedImage], stored_as: StoredAs | None = None) -> dict[str, str]:
    """Give each sample of ``generator`` among ``images`` (by sha256) whose stored path is a placeholder the
    path it would be stored under now, unless that is a placeholder too; one transaction under the writer
    lock. Returns {sha256: the placeholder replaced}."""
    from .storage import bulk

    waiting = bulk.paths_starting(store, generator, [image.sha256 for image in images], PREFIX)
    if not waiting:
        return {}
    paths = {image.sha256: stored_path(image, stored_as) for image in images if image.sha256 in waiting}
    paths = {sha256: path for sha256, path in paths.items() if not is_placeholder(path)}
    if not paths:
        return {}
    with store.lock.held():
        replaced = bulk.replace_paths(store, generator, paths, PREFIX)
    return {sha256: waiting[sha256] for sha256 in replaced}
