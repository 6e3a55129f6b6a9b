"""Where the paths of a batch come from: command-line arguments (folders expand to the image files
in them, as everywhere in attrib) and path lists (a file or standard input, one path per line or
NUL-separated as ``find -print0`` writes them).

Paths are streamed: a list of a million paths yields its first path at once. A list names files:
an entry that is a folder is answered as a path that is not an image file, not expanded (``find``
without ``-type f`` lists folders and their files, which would then be answered twice).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

from ..errors import AttribError

STDIN = "-"
_CHUNK = 1 << 16


class BatchInputError(AttribError):
    """The paths of a batch cannot be read: a missing list, or nothing to answer at all."""


def path_key(path: str | os.PathLike[str]) -> str:
    """The text a record writes for ``path`` (see :func:`attrib.images.display_path`): what
    ``--resume`` compares. ``./a.png`` and ``a.png`` are the same key; relative paths stay relative."""
    return os.fsencode(Path(path)).decode("utf-8", "backslashreplace")


def read_list(stream: BinaryIO, null: bool = False) -> Iterator[str]:
    """Paths from a binary stream: one per line (a trailing CR is dropped) or, with ``null``,
    separated by NUL bytes. Empty entries are skipped; names that are not UTF-8 keep their bytes."""
    if not null:
        for line in stream:
            entry = line.rstrip(b"\n").removesuffix(b"\r")
            if entry:
                yield os.fsdecode(entry)
        return
    rest = b""
    while True:
        chunk = stream.read1(_CHUNK) if hasattr(stream, "read1") else stream.read(_CHUNK)
        if not chunk:
            break
        *entries, rest = (rest + chunk).split(b"\0")
        yield from (os.fsdecode(e) for e in entries if e)
    if rest:
        yield os.fsdecode(rest)


def count_entries(location: str, null: bool = False) -> int:
    """How many paths the list file at ``location`` holds (streamed, nothing kept)."""
    with open(location, "rb") as f:
        return sum(1 for _ in read_list(f, null))


@dataclass
class PathSource:
    """The paths of one batch, in order: ``arguments`` (a ``-`` among them reads standard input in
    its place), then each list in ``lists`` (a file, or ``-`` for standard input).

    When only arguments are given and none of them exists, or their folders hold no image file,
    iterating raises :class:`BatchInputError` (nothing to do); every other missing or unreadable
    path is yielded as it is, for the loader to answer with one error.
    """

    arguments: tuple[str, ...] = ()
    lists: tuple[str, ...] = ()
    null: bool = False
    stdin: BinaryIO | None = None

    def __post_init__(self) -> None:
        self.arguments, self.lists = tuple(map(str, self.arguments)), tuple(map(str, self.lists))
        if not self.arguments and not self.lists:
            raise BatchInputError("no paths given: name files or folders, `-` to read paths from standard input, "
                                  "or --files-from FILE")
        if (*self.arguments, *self.lists).count(STDIN) > 1:
            raise BatchInputError("standard input (`-`) can be read once: give it once")
        for location in self.lists:
            if location != STDIN and not os.path.isfile(location):
                problem = "is a folder" if os.path.isdir(location) else "no such file"
                raise BatchInputError(f"--files-from {location}: {problem}; give a file that lists one path a line")
        named = [a for a in self.arguments if a != STDIN]
        if named and len(named) == len(self.arguments) and not self.lists and not any(map(os.path.lexists, named)):
            from ..images import display_path

            raise BatchInputError(f"no such file or folder: {', '.join(display_path(p) for p in named)}")

    @property
    def reads_stdin(self) -> bool:
        return STDIN in self.arguments or STDIN in self.lists

    def __iter__(self) -> Iterator[Path]:
        from ..images import iter_image_files

        only_arguments = not self.reads_stdin and not self.lists
        found = False
        for argument in self.arguments:
            entries = self._stdin_entries() if argument == STDIN else iter_image_files([argument])
            for path in entries:
                found = True
                yield Path(path)
        if only_arguments and not found:
            from ..images import display_path

            shown = ", ".join(display_path(p) for p in self.arguments)
            raise BatchInputError(f"no image files found in {shown} "
                                  "(looked for .png .jpg .jpeg .webp .gif .bmp .tif .tiff)")
        for location in self.lists:
            if location == STDIN:
                yield from map(Path, self._stdin_entries())
                continue
            with open(location, "rb") as f:
                yield from map(Path, read_list(f, self.null))

    def _stdin_entries(self) -> Iterator[str]:
        return read_list(self.stdin if self.stdin is not None else sys.stdin.buffer, self.null)

    def count(self) -> int | None:
        """How many paths iterating yields, or None when standard input is one of the sources.
        Walks every folder argument: call it off the thread that runs the batch."""
        if self.reads_stdin:
            return None
        from ..images import iter_image_files

        return (sum(1 for _ in iter_image_files(self.arguments))
                + sum(count_entries(location, self.null) for location in self.lists))
