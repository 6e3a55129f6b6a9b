"""What every command shares: the error-to-one-line group, JSON and console output, progress
bars, the extractor options and opening the gallery."""

from __future__ import annotations

import os
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

import click

from ..errors import AttribError
from ..extractors import DEFAULT_EXTRACTOR


def default_gallery() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("attrib", appauthor=False)) / "gallery"


class AttribGroup(click.Group):
    """A click group that turns library errors into one line and exit status 1, and Ctrl-C at any point
    into one line and exit status 130."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except AttribError as exc:
            raise click.ClickException(str(exc)) from None
        except KeyboardInterrupt:
            echo_err("attrib: interrupted")
            from ..batch.run import INTERRUPTED_EXIT

            raise click.exceptions.Exit(INTERRUPTED_EXIT) from None


def echo_err(message: str) -> None:
    click.echo(message, err=True)


def emit_json(obj) -> None:
    """``obj`` as one line of strict JSON on standard output (:func:`attrib.batch.records.json_text`)."""
    from ..batch.records import json_text

    click.echo(json_text(obj))


def stdout_console():
    """A rich console on stdout; piped output gets wide lines instead of an 80-column squeeze."""
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=200, soft_wrap=True)


@contextmanager
def progress_bar(total: int, label: str, enabled: bool = True):
    """A rich progress bar on stderr when it is a terminal; a no-op callback otherwise."""
    if not (enabled and total > 1 and sys.stderr.isatty()):
        yield lambda n=1: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n=1: bar.advance(task, n)


@contextmanager
def batch_progress(label: str, enabled: bool = True, count=None):
    """A progress bar on stderr, when it is a terminal, with the images done, their rate, the time
    so far and, once ``count()`` (run on a thread of its own) says how many there are, the bar and
    the time left; a no-op callback otherwise."""
    if not (enabled and sys.stderr.isatty()):
        yield lambda n=1: None
        return
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task) -> Text:
            return Text(f"{task.speed:.1f} images/s" if task.speed else "")

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), Rate(), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=None)

        def set_total() -> None:
            try:
                total = count()
            except (OSError, ValueError):  # a list or folder the run itself will report on
                return
            if total is not None:
                bar.update(task, total=total)

        if count is not None:
            threading.Thread(target=set_total, name="attrib-count", daemon=True).start()
        yield lambda n=1: bar.advance(task, n)


def versions_option(func):
    """--versions RUNGS: the delivery versions enroll and reembed embed too (attrib.delivery.versions)."""
    def checked(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        from ..delivery import parse_ladder
        from ..errors import AttribError

        if value is not None:
            try:
                parse_ladder(value)  # refused before any gallery is opened or created
            except AttribError as exc:
                raise click.BadParameter(str(exc)) from None
        return value

    return click.option(
        "--versions", default=None, metavar="RUNGS", callback=checked,
        help="Delivery versions to embed too, so laundered queries are scored against images coded the same way: "
             "comma-separated jpeg:Q and webp:Q (e.g. jpeg:90,jpeg:70,webp:80), `default` or `none`. A gallery keeps "
             "the versions it has; a new one gets $ATTRIB_DELIVERY_LADDER, else the default ladder.",
    )(func)


def extractor_options(func):
    """--extractor NAME and repeated --option key=value, shared by every embedding command."""
    func = click.option(
        "--option",
        "-o",
        "options",
        multiple=True,
        metavar="KEY=VALUE",
        help="Option passed to the extractor (repeatable), e.g. -o weights=model.safetensors.",
    )(func)
    func = click.option(
        "--extractor",
        "-e",
        envvar="ATTRIB_EXTRACTOR",
        default=None,
        help=f"Feature extractor (see `attrib plugins`); default: $ATTRIB_EXTRACTOR, else the gallery's "
        f"only extractor, else {DEFAULT_EXTRACTOR}. Join names with '+' to fuse (identify).",
    )(func)
    return func


c2pa_trust_option = click.option(
    "--c2pa-trust", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="PEM file of C2PA trust anchors (default: $ATTRIB_C2PA_TRUST); without one, a valid signature is "
         "reported as not verified against a trust list.")


def open_gallery(ctx: click.Context, read_only: bool = False):
    """The gallery of this invocation; ``read_only`` keeps SQLAlchemy unloaded unless something needs repair."""
    from ..gallery import open_gallery as open_library_gallery

    return open_library_gallery(ctx.obj["gallery"], notify=lambda m: echo_err(f"note: {m}"), read_only=read_only)


def collect_paths(paths: tuple[str, ...]) -> list[Path]:
    """Every image file in ``paths`` (files and folders). A path that is missing or unusable stays in
    the list, so that the command answers it with one error line and goes on with the others; only
    when none of ``paths`` exists, or the folders hold no image file, is there nothing to do."""
    from ..images import display_path, iter_image_files

    shown = ", ".join(display_path(p) for p in paths)
    if not any(os.path.lexists(p) for p in paths):
        raise AttribError(f"no such file or folder: {shown}")
    found = list(iter_image_files(paths))
    if not found:
        raise AttribError(f"no image files found in {shown} "
                          "(looked for .png .jpg .jpeg .webp .gif .bmp .tif .tiff)")
    return found
