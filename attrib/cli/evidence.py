"""``attrib inspect``: what files say about their own origin (C2PA, generation parameters, EXIF,
XMP, plugins' readers), with no gallery."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import click

from ..errors import AttribError
from .common import c2pa_trust_option, collect_paths, echo_err, emit_json

if TYPE_CHECKING:
    from ..evidence.item import Evidence


def item_line(item: Evidence) -> str:
    """``  c2pa [DALL·E 3; AI-generated; signature valid, ...]: claim`` for one evidence item."""
    from ..evidence.combine import named_as, verification_phrase

    if item.error is not None:
        return f"  {item.kind}: cannot be read: {item.error}"
    named = named_as(item) if item.generator else None
    tags = [named] if named is not None else []
    if item.ai_generated is not None:
        tags.append("AI-generated" if item.ai_generated else "not AI-generated")
    if item.verified is not None:
        tags.append(verification_phrase(item))
    return f"  {item.kind}" + (f" [{'; '.join(tags)}]" if tags else "") + f": {item.claim}"


def _human(path: Path, items: list[Evidence]) -> None:
    from ..evidence import summary_line

    if not items:
        click.echo(f"{path}: no provenance evidence (no metadata, or it was stripped)")
        return
    click.echo(f"{path}: {summary_line(items) or 'says nothing about its origin'}")
    for item in items:
        click.echo(item_line(item))


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file: path and evidence (or error).")
@c2pa_trust_option
def inspect(paths: tuple[str, ...], as_json: bool, c2pa_trust: Path | None) -> None:
    """Show what files say about where they came from; no gallery needed.

    Exit status 1 when a file cannot be read or is not an image whose metadata can be parsed.
    """
    from ..evidence.read import METADATA_KIND, file_inspector

    files = collect_paths(paths)
    read_evidence = file_inspector(c2pa_trust)  # a bad names file or trust list is one line before any file
    failed = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow's "corrupt EXIF" and the like: the items say it
        for path in files:
            record, items = inspect_record(path, read_evidence)
            # unreadable, or not an image Pillow can open
            failed |= items is None or any(item.kind == METADATA_KIND for item in items)
            if as_json:
                emit_json(record)
            elif items is None:
                echo_err(record["error"])
            else:
                _human(path, items)
    if failed:
        sys.exit(1)


def inspect_record(path: Path, read_evidence: Callable[[Path, bytes], list[Evidence]]
                   ) -> tuple[dict[str, Any], list[Evidence] | None]:
    """``attrib inspect --json``'s record of one file (``path`` and ``evidence``, or ``path`` and
    ``error``) and its evidence items (None when the file cannot be read). ``read_evidence`` is a
    :func:`attrib.evidence.read.file_inspector`."""
    from ..images import display_path, read_file

    try:  # read as the image loader reads: regular files only, size capped
        items = read_evidence(path, read_file(path))
    except AttribError as exc:  # the loader's one line, which names the file
        return {"path": display_path(path), "error": str(exc)}, None
    return {"path": display_path(path), "evidence": [item.to_dict() for item in items]}, items


COMMANDS = (inspect,)
