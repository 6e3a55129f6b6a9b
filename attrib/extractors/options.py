"""Helpers an extractor plugin may import: option parsing, local weights lookup, weights digest.

Every in-repo plugin reports a bad option value through :func:`bad_option`, so the message and
the error type (:class:`attrib.errors.BadOption`) are the same whichever plugin raised it.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import BadOption, ExtractorError

_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


def parse_options(pairs: Sequence[str]) -> dict[str, str]:
    """Turn ``["key=value", ...]`` into a dict; raise BadOption naming a bad pair."""
    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise BadOption(f"option {pair!r} is not of the form key=value (e.g. --option model=ViT-B-32)")
        options[key.strip()] = value.strip()
    return options


def bad_option(extractor: str, key: str, value: Any, expected: str) -> BadOption:
    """The error for option ``key=value`` of ``extractor``; ``expected`` says what a good value is."""
    return BadOption(f"extractor {extractor!r}: option {key}={value!r} {expected}")


def parse_flag(extractor: str, key: str, value: Any) -> bool:
    """A true/false option (1/0, yes/no, on/off, empty = false)."""
    text = str(value).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise bad_option(extractor, key, value, "must be true or false")


def parse_positive_int(extractor: str, key: str, value: Any) -> int:
    """A positive integer option."""
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        number = 0
    if number < 1:
        raise bad_option(extractor, key, value, "must be a positive integer")
    return number


def resolve_weights(
    extractor: str,
    value: str | None,
    env: str,
    where_to_put: str,
    folder_files: Sequence[str] = (),
    suffixes: Sequence[str] = (),
    default: Callable[[], Path | None] | None = None,
) -> Path:
    """The local weights file of an extractor that never downloads.

    ``value`` (the ``weights`` option), else the environment variable ``env``, else
    ``default()`` (e.g. a file shipped inside a package). A folder is searched for
    ``folder_files`` in order; a file must end with one of ``suffixes`` (any when empty).
    Every failure is an ExtractorError that names the path and ends with ``where_to_put``.
    """
    raw = value if value not in (None, "") else os.environ.get(env, "")
    if not raw:
        found = default() if default is not None else None
        if found is None:
            raise ExtractorError(f"extractor {extractor!r} has no weights (it never downloads): {where_to_put}")
        return found
    path = Path(raw).expanduser()
    if path.is_dir() and folder_files:
        for name in folder_files:
            if (path / name).is_file():
                return path / name
        raise ExtractorError(
            f"extractor {extractor!r}: folder {path} holds none of {', '.join(folder_files)}; {where_to_put}"
        )
    if not path.is_file():
        raise ExtractorError(f"extractor {extractor!r}: weights file {path} does not exist; {where_to_put}")
    if suffixes and path.suffix.lower() not in suffixes:
        raise ExtractorError(
            f"extractor {extractor!r}: weights file {path} is not one of {', '.join(suffixes)}; {where_to_put}"
        )
    return path


def weights_digest(path: str | os.PathLike[str]) -> str:
    """A short content hash of a weights file, for an extractor's identity (``sha256:<16 hex>``).

    Identity by content survives moving the file and changes with different
    weights; the hash is cached per process by (path, size, mtime).
    """
    resolved = os.path.realpath(path)
    stat = os.stat(resolved)
    return _digest(resolved, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 22), b""):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()[:16]
