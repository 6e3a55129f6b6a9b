"""What ``identify`` and ``verify`` share as batch commands: where paths come from (arguments,
``-``, --files-from), where records go (standard output or --output, JSON lines or CSV, --resume),
the progress bar and the one-line summary (see :mod:`attrib.batch`)."""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager
from typing import Callable, Iterable, Iterator

import click

from ..batch.output import OutputFile, StreamWriter, format_for
from ..batch.records import FORMATS, RecordFormat
from ..batch.run import Advance, Item, Summary, run_batch, skip_done
from ..batch.sources import PathSource
from ..errors import BadOption
from .common import batch_progress, echo_err


def batch_options(func):
    """PATHS, --files-from, -0, --output, --format and --resume."""
    for option in reversed((
        click.option("--files-from", "lists", multiple=True, metavar="FILE",
                     help="Also answer the paths listed in FILE, one a line (`-`: standard input); repeatable."),
        click.option("--null", "-0", is_flag=True,
                     help="Paths in lists and on standard input are separated by NUL bytes (find -print0)."),
        click.option("--output", "output", type=click.Path(dir_okay=False), metavar="FILE",
                     help="Append one record per image to FILE, each written at once (JSON lines, or CSV for "
                          "--format csv or a .csv name); progress and a summary go to stderr."),
        click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
                     help="Record format on stdout or in --output (default: jsonl, or csv for a .csv file)."),
        click.option("--resume", is_flag=True, help="Skip the paths already answered in --output."),
        click.argument("paths", nargs=-1, type=click.Path()),
    )):
        func = option(func)
    return func


def refuse_output_as_option(options: Iterable[str]) -> None:
    """``-o out.jsonl`` is --option (an extractor option): say how to write records to a file."""
    for pair in options:
        if "=" not in pair:
            raise BadOption(f"option {pair!r} is not of the form key=value (-o is --option, for the extractor); "
                            f"to append records to a file use --output {pair}")


RECORD_SUFFIXES = {"csv": (".csv",), "jsonl": (".jsonl", ".json", ".ndjson", ".jsonlines")}


def check_output_name(output: str, fmt: str | None) -> None:
    """Refuse an --output name that says it holds something other than records: an HTML page (that is
    --report), an image (an input given in the wrong place), or the other record format than --format."""
    from pathlib import Path

    from ..images import IMAGE_EXTENSIONS

    suffix = Path(output).suffix.lower()
    if suffix in (".html", ".htm"):
        raise BadOption(f"--output {output}: --output appends records (JSON lines or CSV), not a page; for an HTML "
                        f"report use --report {output}")
    if suffix in IMAGE_EXTENSIONS:
        raise BadOption(f"--output {output}: is named as an image; --output appends records (JSON lines or CSV): "
                        "give the image as a path to answer, or a .jsonl or .csv name to write to")
    for name, suffixes in RECORD_SUFFIXES.items():
        if fmt is not None and fmt != name and suffix in suffixes:
            raise BadOption(f"--output {output} with --format {fmt}: the name says {name}; give a name ending in "
                            f"{RECORD_SUFFIXES[fmt][0]}, or drop --format")


class BatchRun:
    """One batch command: validates the options and opens the output first (before the gallery),
    then :meth:`run` answers every path; leaving the block prints the summary."""

    def __init__(self, label: str, columns: tuple[str, ...], *, paths, lists, null, output, fmt, resume,
                 as_json: bool = False, records_only: bool = False) -> None:
        if resume and not output:
            raise click.UsageError("--resume needs --output FILE (it skips the paths already answered there)")
        if as_json and fmt == "csv":
            raise click.UsageError("--json prints JSON lines: drop --json to write CSV with --format csv")
        if output is not None:
            check_output_name(output, fmt)
        self.label, self.summary = label, Summary()
        self.source = PathSource(tuple(paths), tuple(lists), null)
        self.records = records_only or output is not None or as_json or fmt is not None
        self.format = RecordFormat(format_for(output, fmt), columns)
        self.to_file = output is not None
        self.writer: OutputFile | StreamWriter
        if self.to_file:
            self.writer = OutputFile(output, self.format, resume, notify=lambda m: echo_err(f"note: {m}"))
        else:
            self.writer = StreamWriter(self.format, lambda text: click.echo(text, nl=False))
        self._progress: AbstractContextManager[tuple[Advance, Advance]] | None = None

    def __enter__(self) -> "BatchRun":
        shows_lines = not self.to_file and sys.stdout.isatty()  # the lines themselves show the progress
        self._progress = batch_progress(self.label, enabled=not shows_lines, count=self.source.count)
        self.advance, self.skip = self._progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        assert self._progress is not None, "left a BatchRun that was never entered"
        try:
            self._progress.__exit__(*exc)
        finally:
            self.writer.close()
        if exc[0] is None and self._tells_summary():
            echo_err(self.summary.line(self.label))

    def _tells_summary(self) -> bool:
        """Always with --output or after Ctrl-C; with answers on stdout, only to a person (stderr a
        terminal) and for more than one path, so that a script merging stderr into the records it
        parses (`2>&1`) gets records only."""
        if self.to_file or self.summary.interrupted:
            return True
        return sys.stderr.isatty() and self.summary.images + self.summary.skipped > 1

    def pending(self) -> Iterator:
        """The paths still to answer, in order (streamed)."""
        done = self.writer.done if isinstance(self.writer, OutputFile) else set()
        return skip_done(self.source, done, self.summary, self.skip)

    def run(self, items: Iterable[Item], to_record: Callable[[Item], dict],
            human: Callable[[Item], None] | None = None) -> Summary:
        """Write each item (a result, or a record when ``to_record`` is the identity) as a record,
        or through ``human`` when no record format was asked for (see ``records_only``)."""
        if self.records:
            def write(item, record):
                self.writer.write(record)
        else:
            assert human is not None, "without a record format the items are shown through human"

            def write(item, record):
                if record.get("error") is not None:
                    echo_err(f"error: {record['error']}")
                else:
                    human(item)
        return run_batch(items, to_record, write, self.summary, self.advance)

    @property
    def exit_status(self) -> int:
        return self.summary.exit_status

