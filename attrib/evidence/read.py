"""Reading a file's evidence: every registered reader in turn, each wrapped so that a hostile
file gives an evidence item or one error line, never an exception."""

from __future__ import annotations

import dataclasses
import functools
import os
from pathlib import Path
from typing import Any, Callable, Iterable

from PIL import Image

from ..errors import EvidenceError, MetadataError
from .item import Evidence
from .names import GeneratorNames, generator_names
from .source import C2PA_TRUST_OPTION, EvidenceSource

C2PA_TRUST_ENV = "ATTRIB_C2PA_TRUST"
METADATA_KIND = "metadata"  # the kind of the one error item for a file whose metadata cannot be parsed


def evidence_readers() -> list[Any]:
    """One instance of every registered reader (built-ins first), built with no arguments."""
    from ..host.manager import evidence_reader_specs

    return [spec.factory() for spec in evidence_reader_specs().values()]


@functools.lru_cache(maxsize=4)
def _trust_pem(path: str, mtime_ns: int) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise EvidenceError(f"C2PA trust list {path}: cannot be read ({exc})") from None
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise EvidenceError(f"C2PA trust list {path}: no PEM certificate in it (expected "
                            "'-----BEGIN CERTIFICATE-----' blocks of the trust anchors)")
    return text


def load_trust_list(path: str | os.PathLike[str] | None = None) -> str | None:
    """The PEM text of a C2PA trust list: ``path``, else ``$ATTRIB_C2PA_TRUST``, else None."""
    path = path if path is not None else os.environ.get(C2PA_TRUST_ENV) or None
    if path is None:
        return None
    try:
        mtime = os.stat(path).st_mtime_ns
    except OSError as exc:
        raise EvidenceError(f"C2PA trust list {path}: cannot be read ({exc.strerror or exc})") from None
    return _trust_pem(str(path), mtime)


def _reader_name(reader: Any) -> str:
    return str(getattr(reader, "name", None) or type(reader).__name__)


def names_for(readers: Iterable[Any]) -> GeneratorNames:
    """The generator-name rules in force with these readers (their ``generator_names`` rules
    between the user's file and the shipped table); raises EvidenceError for a bad rule or file."""
    return generator_names([(_reader_name(r), r.generator_names) for r in readers if getattr(r, "generator_names", None)])


def run_reader(reader: Any, source: EvidenceSource) -> list[Evidence]:
    """``reader.read(source)``, checked; any failure becomes one evidence item with ``error`` set."""
    name = _reader_name(reader)
    kind = str(getattr(reader, "kind", None) or name)
    try:
        found = reader.read(source)
        if not isinstance(found, (list, tuple)) or not all(isinstance(e, Evidence) for e in found):
            raise EvidenceError(f"reader {name!r} returned {type(found).__name__}, not a list of Evidence")
    except MetadataError as exc:  # the file itself, not this reader: said once under kind "metadata"
        return [Evidence.failure(METADATA_KIND, str(exc), reader=name)]
    except EvidenceError as exc:
        return [Evidence.failure(kind, str(exc), reader=name)]
    except Exception as exc:  # noqa: BLE001 - a reader's bug or a hostile file: one line, never a traceback
        return [Evidence.failure(kind, f"reader {name!r} failed: {type(exc).__name__}: {exc}", reader=name)]
    return [e if e.reader else dataclasses.replace(e, reader=name) for e in found]


def read_evidence(
    path: str | os.PathLike[str] | None = None,
    data: bytes | None = None,
    image: Image.Image | None = None,
    readers: Iterable[Any] | None = None,
    *,
    c2pa_trust: str | os.PathLike[str] | None = None,
) -> list[Evidence]:
    """What the file says about its origin: evidence items from every reader (or ``readers``).

    ``data`` are the file's bytes (read from ``path`` when None); ``image`` an already opened
    Pillow image of them, if the caller has one. ``c2pa_trust`` is a PEM file of C2PA trust
    anchors (default ``$ATTRIB_C2PA_TRUST``). A file without metadata gives an empty list.
    Raises EvidenceError only for a file that cannot be read or a bad trust list; whatever is
    wrong inside the file, or a bad names file when a claim needs it, becomes an item with
    ``error`` set (check a names file up front with :func:`names_for`).
    """
    if data is None:
        if path is None:
            raise TypeError("read_evidence needs a path or the file's bytes")
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise EvidenceError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    readers = evidence_readers() if readers is None else list(readers)
    source = EvidenceSource(data=data, path=None if path is None else Path(path), names_factory=lambda: names_for(readers),
                            options={C2PA_TRUST_OPTION: load_trust_list(c2pa_trust)}, _image=image)
    items: list[Evidence] = []
    errors: set[str] = set()
    for reader in readers:
        for item in run_reader(reader, source):
            if item.error is not None:
                if item.error in errors:
                    continue  # e.g. a file Pillow cannot open: said once, not once per reader
                errors.add(item.error)
            items.append(item)
    return items


def file_inspector(c2pa_trust: str | os.PathLike[str] | None = None, readers: Iterable[Any] | None = None
                   ) -> Callable[[Path, bytes], list[Evidence]]:
    """``inspect(path, data) -> [Evidence]`` for :func:`attrib.images.load_images`: the readers, the
    names file and the trust list are set up (and checked, raising EvidenceError) once, here."""
    readers = evidence_readers() if readers is None else list(readers)
    names_for(readers)
    load_trust_list(c2pa_trust)

    def inspect(path: Path, data: bytes) -> list[Evidence]:
        return read_evidence(path, data=data, readers=readers, c2pa_trust=c2pa_trust)

    return inspect
