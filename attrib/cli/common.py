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
def batch_progress(label: str, enabled: bool = True, count=None, console=None, get_time=None):
    """A progress bar on stderr (or ``console``), when it is a terminal, with the images done, their rate, the
    time so far and, once ``count()`` (run on a thread of its own) says how many there are, the bar and the time
    left; no-op callbacks otherwise. Yields (answered, skipped): callbacks for images answered and for paths
    skipped (--resume). The rate is the overall one, images answered over the time since the start, as the
    summary line says it; paths skipped move the bar but are no images answered. ``console`` and ``get_time``
    (a clock) replace the terminal's and the monotonic one."""
    if console is None and not (enabled and sys.stderr.isatty()):
        yield (lambda n=1: None), (lambda n=1: None)
        return
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)
    from rich.text import Text

    class OverallRate(ProgressColumn):
        def render(self, task) -> Text:
            return Text(overall_rate(task.fields.get("answered", 0), task.elapsed))

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), OverallRate(),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=console or Console(stderr=True),
                  transient=True, get_time=get_time) as bar:
        task = bar.add_task(label, total=None, answered=0)
        answered = 0

        def set_total() -> None:
            try:
                total = count()
            except (OSError, ValueError):  # a list or folder the run itself will report on
                return
            if total is not None:
                bar.update(task, total=total)

        def answer(n: int = 1) -> None:
            nonlocal answered
            answered += n
            bar.update(task, advance=n, answered=answered)

        if count is not None:
            threading.Thread(target=set_total, name="attrib-count", daemon=True).start()
        yield answer, (lambda n=1: bar.advance(task, n))


def overall_rate(answered: int, elapsed: float | None) -> str:
    """``22.0 images/s``: images answered over the time since the start ("" before there is one)."""
    if not answered or not elapsed:
        return ""
    return f"{answered / elapsed:.1f} images/s"


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


def gallery_location(value: str) -> str | Path:
    """What ``--gallery VALUE`` names: a PostgreSQL URL as given, else a folder; an empty value is refused."""
    from ..storage.location import is_database_url

    if not value.strip():
        from ..gallery import open_gallery

        open_gallery(value)  # refuses an empty path in one line, before any command can use it
    return value if is_database_url(value) else Path(value)


def gallery_option(func):
    """--gallery DIR|URL on a command, as on the group (``attrib identify --gallery g`` = ``attrib --gallery g
    identify``); given on both with different values, refused."""
    def chosen(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
        if value is None:
            return
        obj = ctx.ensure_object(dict)
        location = gallery_location(value)
        if obj.get("gallery_given") and str(obj["gallery"]) != str(location):
            raise click.UsageError(f"--gallery is given twice ({obj['gallery']} before the command, {value} after "
                                   "it); give it once")
        obj["gallery"], obj["gallery_given"] = location, True

    return click.option(
        "--gallery", type=click.Path(file_okay=False), default=None, expose_value=False, callback=chosen,
        is_eager=True, metavar="DIR|URL",
        help="Gallery folder or postgresql:// URL (as `attrib --gallery`; default: $ATTRIB_GALLERY or a per-user "
             "data folder).")(func)


def missing_gallery(location: str | Path) -> str | None:
    """Why there is no gallery at ``location`` to read (None: there is one, or it is a database URL, which the
    store checks itself): a folder that does not exist, or an empty one."""
    from ..storage.faults import database_path

    if not isinstance(location, Path):
        return None
    folder = location.expanduser()
    if database_path(folder).exists():
        return None
    if folder.is_dir() and any(folder.iterdir()):
        return None  # files of a gallery without its database: the store says it is damaged
    return "does not exist" if not folder.exists() else "is empty"


def open_gallery(ctx: click.Context, read_only: bool = False, must_exist: bool = True):
    """The gallery of this invocation; ``read_only`` keeps SQLAlchemy unloaded unless something needs repair.
    Only without ``must_exist`` (enroll, demo) is a gallery made where there is none; every other command
    refuses, in one line naming the location and how to make one, rather than leave an empty gallery behind a
    typo."""
    from ..gallery import open_gallery as open_library_gallery

    if must_exist:
        require_gallery(ctx)
    return open_library_gallery(ctx.obj["gallery"], notify=lambda m: echo_err(f"note: {m}"), read_only=read_only)


def require_gallery(ctx: click.Context) -> None:
    """Refuse, in one line naming the location and how to make one, when there is no gallery to read."""
    location = ctx.obj["gallery"]
    why = missing_gallery(location)
    if why is not None:
        raise AttribError(f"no gallery at {location} (the folder {why}); check --gallery / $ATTRIB_GALLERY, or "
                          f"create one with `attrib --gallery {location} enroll --generator NAME IMAGES...`")


REPORT_SUFFIXES = (".html", ".htm")


def report_page(path: str | Path, option: str = "--report") -> Path:
    """Where ``--report PATH`` writes its page, by one rule for every command: a name ending in .html (or .htm)
    is the page; any other name is a folder (made when missing) that gets ``index.html``. A name that looks like
    an extractor option (KEY=VALUE) or another kind of file (a suffix such as .json or .png) is refused."""
    from ..errors import BadOption

    target = Path(path)
    if target.suffix.lower() in REPORT_SUFFIXES:
        return target
    if "=" in target.name:
        raise BadOption(f"{option} {path}: the report is an .html file or a folder; extractor options are "
                        "--option KEY=VALUE")
    if target.suffix and not target.is_dir():
        raise BadOption(f"{option} {path}: the report is an .html file or a folder (which gets index.html), not "
                        f"a {target.suffix} file; give a name ending in .html")
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadOption(f"{option} {path}: cannot create the report folder ({exc.strerror or exc})") from None
    return target / "index.html"


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
