"""The worst mistakes of an evaluation, made readable after its temporary folder is gone.

The evaluation scores copies of the data folder's images, transformed and written to a temporary
folder that is deleted at its end. A mistake's query and its nearest enrolled samples are therefore
named by their source files in the data folder (:func:`source_names`), and their pictures, as they
were scored, are made while the copies still exist (:func:`previews`), keyed by the copy's sha256.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

Preview = tuple[bytes, str]  # (image bytes, mime type)


def source_names(written: Iterable[dict[str, dict[int, Path]]], files: dict[str, list[Path]]) -> dict[str, str]:
    """``{copy's path: its source file}`` for every copy :func:`attrib.synthetic.conditions.write_conditioned`
    wrote (``{label: {file index: copy}}`` per condition) of ``files`` (``{label: source files}``); each copy
    under both its path as written and its resolved path, which is how a gallery records it."""
    names: dict[str, str] = {}
    for prepared in written:
        for label, copies in prepared.items():
            for index, copy in copies.items():
                source = str(files[label][index])
                names[str(copy)] = source
                names[str(Path(copy).resolve())] = source
    return names


def mistake_previews(mistakes: list[dict[str, Any]], into: dict[str, Preview], max_px: int) -> None:
    """Add to ``into`` a preview of each mistake's query and nearest samples not there yet, by sha256, from
    the files their ``path`` still names (the scored copies: call before :func:`name_sources`)."""
    from ..report.html import preview_bytes

    for m in mistakes:
        for item in (m, *m.get("nearest", [])):
            sha, path = item.get("sha256"), item.get("path")
            if sha and sha not in into and path and Path(path).is_file():
                made = preview_bytes(Path(path), max_px)
                if made is not None:
                    into[sha] = made


def name_sources(mistakes: list[dict[str, Any]], names: dict[str, str]) -> None:
    """Rename each mistake's query and nearest samples from the scored copy to its source file, in place
    (a path that is no copy stays as it is)."""
    for m in mistakes:
        for item in (m, *m.get("nearest", [])):
            path = item.get("path")
            if path:
                item["path"] = names.get(str(path), path)
