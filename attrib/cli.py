"""The ``attrib`` command line.

Heavy modules (faiss, SQLAlchemy, plugins' frameworks) are imported inside the
commands that need them, so ``attrib --help`` and ``attrib plugins`` stay fast.
Library errors (:class:`attrib.errors.AttribError`) become one-line messages.
"""

from __future__ import annotations

import json
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path

import click

from . import __version__
from .errors import AttribError

DEFAULT_EXTRACTOR = "residual"


def default_gallery() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("attrib", appauthor=False)) / "gallery"


class AttribGroup(click.Group):
    """A click group that turns library errors into one line and exit status 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except AttribError as exc:
            raise click.ClickException(str(exc)) from None
        except Exception as exc:
            if type(exc).__module__.startswith("sqlalchemy") and "database is locked" in str(exc):
                raise click.ClickException(
                    f"gallery {ctx.obj['gallery']} is busy: another attrib process is writing to it; retry when it finishes"
                ) from None
            raise


def echo_err(message: str) -> None:
    click.echo(message, err=True)


def emit_json(obj) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False))


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


def bind_extractor(name: str | None, options: tuple[str, ...], gallery=None):
    """Bind the named extractor; without a name, the gallery's only extractor (else the default)."""
    from .extractor import BoundExtractor, parse_options
    from .plugins import get_extractor_spec

    if name is None:
        from .view import extractor_names

        names = (extractor_names(gallery.root) or set()) if gallery is not None else set()
        name = names.pop() if len(names) == 1 else DEFAULT_EXTRACTOR
    return BoundExtractor(get_extractor_spec(name), parse_options(options))


def bind_fused(names: str, options: tuple[str, ...], gallery) -> list:
    """Bind each extractor of ``a+b``; options go to one extractor as ``NAME.key=value``."""
    from .extractor import parse_options

    parts = [n.strip() for n in names.split("+") if n.strip()]
    if len(parts) < 2 or len(set(parts)) != len(parts):
        raise AttribError(f"--extractor {names!r}: join two or more different extractor names with '+', e.g. residual+clip")
    per: dict[str, list[str]] = {name: [] for name in parts}
    for key, value in parse_options(options).items():
        target, dot, option = key.partition(".")
        if not dot or target not in per:
            raise AttribError(
                f"--option {key}={value}: with fused extractors write NAME.{key}={value} with NAME one of {', '.join(parts)}"
            )
        per[target].append(f"{option}={value}")
    return [bind_extractor(name, tuple(per[name]), gallery) for name in parts]


def open_gallery(ctx: click.Context, read_only: bool = False):
    """The gallery for this invocation; ``read_only`` avoids loading SQLAlchemy when nothing needs repair."""
    notify = lambda m: echo_err(f"note: {m}")  # noqa: E731
    if read_only:
        from .view import GalleryReader

        return GalleryReader(ctx.obj["gallery"], notify=notify)
    from .gallery import Gallery

    return Gallery(ctx.obj["gallery"], notify=notify)


def collect_paths(paths: tuple[str, ...]) -> list[Path]:
    from .images import iter_image_files

    found = list(iter_image_files(paths))
    if not found:
        raise AttribError(
            f"no image files found in {', '.join(paths)} (looked for .png .jpg .jpeg .webp .gif .bmp .tif .tiff)"
        )
    return found


@click.group(cls=AttribGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="attrib")
@click.option(
    "--gallery",
    "gallery",
    envvar="ATTRIB_GALLERY",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Gallery folder (default: $ATTRIB_GALLERY or a per-user data folder).",
)
@click.pass_context
def cli(ctx: click.Context, gallery: Path | None) -> None:
    """Tell which generator made an image, or say it is unknown."""
    ctx.ensure_object(dict)
    ctx.obj["gallery"] = gallery or default_gallery()


@cli.command()
@click.option("--generator", "-g", required=True, help="Name to enroll the images under.")
@click.option("--family", help="Model family, e.g. 'stable-diffusion'.")
@click.option("--note", help="Free text kept with the generator.")
@extractor_options
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.pass_context
def enroll(ctx, generator, family, note, extractor, options, as_json, paths):
    """Enroll the images in PATHS (files or folders) as samples of GENERATOR."""
    files = collect_paths(paths)
    with open_gallery(ctx) as gallery, progress_bar(len(files), f"enrolling {generator}") as advance:
        bound = bind_extractor(extractor, options, gallery)
        report = gallery.enroll(generator, files, bound, family=family, note=note, progress=advance)
    if as_json:
        emit_json(
            {
                "generator": report.generator,
                "extractor": bound.identity.key,
                "added": report.added,
                "skipped": [{"path": p, "reason": r} for p, r in report.skipped],
                "failed": [{"path": p, "error": r} for p, r in report.failed],
                "calibration": report.calibration,
            }
        )
    else:
        click.echo(
            f"{report.generator}: added {len(report.added)}, already enrolled {len(report.skipped)}, "
            f"failed {len(report.failed)}"
        )
        for path, reason in report.skipped:
            click.echo(f"  skipped {path}: {reason}")
        for path, reason in report.failed:
            click.echo(f"  failed {reason if reason.startswith(path) else f'{path}: {reason}'}")
        if report.calibration:
            click.echo(f"calibration: {report.calibration}")
    if report.failed:
        ctx.exit(1)


@cli.command()
@extractor_options
@click.option("--top-k", "-k", default=3, show_default=True, type=int, help="Candidates to list per image.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line per input file.")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.pass_context
def identify(ctx, extractor, options, top_k, as_json, paths):
    """Name the generator of each image in PATHS, or say `unknown`."""
    from .identify import identify as run_identify

    files = collect_paths(paths)
    failed = 0
    with open_gallery(ctx, read_only=True) as gallery:
        bound = bind_fused(extractor, options, gallery) if extractor and "+" in extractor else (
            bind_extractor(extractor, options, gallery)
        )
        for result in run_identify(gallery, bound, files, top_k=top_k):
            failed += result.error is not None
            if as_json:
                emit_json(result.to_json())
            elif result.error:
                echo_err(f"error: {result.error}")
            else:
                cands = ", ".join(f"{c['generator']} {c['score']:.3f}" for c in result.candidates)
                click.echo(
                    f"{result.path}: {result.decision} (best {result.generator} {result.score:.3f}, "
                    f"threshold {result.threshold:.3f}; top: {cands})"
                )
    if failed:
        ctx.exit(1)


@cli.command()
@click.option("--generator", "-g", required=True, help="The enrolled generator to verify against.")
@extractor_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line per input file.")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.pass_context
def verify(ctx, generator, extractor, options, as_json, paths):
    """Say whether each image in PATHS was made by GENERATOR."""
    from .identify import verify as run_verify

    files = collect_paths(paths)
    failed = 0
    with open_gallery(ctx, read_only=True) as gallery:
        bound = bind_extractor(extractor, options, gallery)
        for result in run_verify(gallery, bound, generator, files):
            failed += result.error is not None
            if as_json:
                emit_json(result.to_json())
            elif result.error:
                echo_err(f"error: {result.error}")
            else:
                verdict = "match" if result.match else "no match"
                click.echo(
                    f"{result.path}: {verdict} for {generator} (score {result.score:.3f}, "
                    f"threshold {result.threshold:.3f})"
                )
    if failed:
        ctx.exit(1)


@cli.command()
@click.option("--target-far", default=0.01, show_default=True, type=float, help="Target false-accept rate.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def calibrate(ctx, target_far, as_json):
    """Refit the scoring backend and recompute open-set thresholds from held-out gallery scores."""
    if not 0 < target_far < 1:
        raise AttribError(f"--target-far must be between 0 and 1 (e.g. 0.01), got {target_far}")
    with open_gallery(ctx) as gallery:
        results = gallery.calibrate(target_far)
        ids = _generator_names(gallery)
    if as_json:
        emit_json(
            {
                key: {
                    "message": r.message,
                    "separation": r.separation,
                    "thresholds": [
                        {
                            "generator": ids.get(t.generator_id) if t.generator_id else None,
                            "threshold": t.threshold,
                            "method": t.method,
                            "n_genuine": t.n_genuine,
                            "n_impostor": t.n_impostor,
                            "tar": t.tar,
                        }
                        for t in r.thresholds
                    ],
                }
                for key, r in results.items()
            }
        )
        return
    for key, r in results.items():
        separation = "" if r.separation is None else f"; separation d' {r.separation:.2f} (fusion weight)"
        click.echo(f"{key}: {r.message}{separation}")
        for t in r.thresholds:
            who = ids.get(t.generator_id, "(open-set)") if t.generator_id else "(open-set)"
            tar = f", genuine accepted {t.tar:.0%}" if t.tar is not None else ""
            click.echo(f"  {who:24s} threshold {t.threshold:.4f} [{t.method}]{tar}")


def _generator_names(gallery) -> dict[int, str]:
    from sqlalchemy import select

    from . import db

    with gallery.Session() as session:
        return dict(session.execute(select(db.Generator.id, db.Generator.name)).all())


@cli.group()
def gallery():
    """Inspect and maintain the gallery."""


@gallery.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def gallery_list(ctx, as_json):
    """List enrolled generators."""
    with open_gallery(ctx) as g:
        infos = g.generators()
        keys = g.extractor_keys()
    if as_json:
        emit_json({"gallery": str(ctx.obj["gallery"]), "extractors": keys, "generators": [vars(i) for i in infos]})
        return
    if not infos:
        click.echo(f"gallery {ctx.obj['gallery']} is empty; enroll with `attrib enroll --generator NAME IMAGES...`")
        return
    from rich.table import Table

    table = Table(title=f"gallery {ctx.obj['gallery']}")
    for column in ("generator", "family", "samples", "threshold", "enrolled"):
        table.add_column(column)
    for i in infos:
        thr = f"{i.threshold:.3f} ({i.threshold_method})" if i.threshold is not None else "-"
        table.add_row(i.name, i.family or "", str(i.samples), thr, i.created_at)
    stdout_console().print(table)
    click.echo(f"extractors: {', '.join(keys) or 'none'}")


@gallery.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def gallery_show(ctx, name, as_json):
    """Show one generator: its samples and thresholds."""
    with open_gallery(ctx) as g:
        detail = g.generator_detail(name)
    if as_json:
        emit_json(detail)
        return
    click.echo(f"{detail['name']}  family: {detail['family'] or '-'}  enrolled: {detail['created_at']}")
    if detail["note"]:
        click.echo(f"note: {detail['note']}")
    for c in detail["calibration"]:
        click.echo(f"threshold {c['threshold']:.4f} [{c['method']}] for {c['extractor']} at FAR {c['target_far']:g}")
    click.echo(f"{len(detail['samples'])} samples:")
    for s in detail["samples"]:
        click.echo(f"  {s['sha256'][:12]}  {s['width']}x{s['height']} {s['format']:5s} {s['path']}")


@gallery.command("remove")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def gallery_remove(ctx, name, as_json):
    """Remove a generator and its samples, then re-calibrate."""
    with open_gallery(ctx) as g:
        count = g.remove(name)
    if as_json:
        emit_json({"removed": name, "samples": count})
    else:
        click.echo(f"removed {name} ({count} samples); thresholds re-calibrated")


@gallery.command("audit")
@click.option("--limit", "-n", type=click.IntRange(min=1), default=None, help="Only the last N entries.")
@click.option("--action", type=click.Choice(["enroll", "remove", "calibrate", "reembed"]),
              help="Only entries of this kind.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line per entry.")
@click.pass_context
def gallery_audit(ctx, limit, action, as_json):
    """Show the audit trail: every enroll, remove, calibrate and reembed, oldest first (UTC)."""
    with open_gallery(ctx) as g:
        entries = g.audit_log(limit, action)
    for entry in entries:
        if as_json:
            emit_json(entry)
        else:
            detail = entry["detail"]
            text = " ".join(f"{k}={v}" for k, v in detail.items()) if isinstance(detail, dict) else str(detail)
            click.echo(f"{entry['at']}  {entry['action']:9s}  {text}")
    if not entries and not as_json:
        click.echo(f"no audit entries in {ctx.obj['gallery']}")


@gallery.command("rebuild-index")
@click.pass_context
def gallery_rebuild(ctx):
    """Rebuild every FAISS index from the vectors stored in the database."""
    with open_gallery(ctx) as g:
        for eid in g.extractor_ids():
            g.sync_index(eid, force=True)
        click.echo(f"rebuilt indexes for: {', '.join(g.extractor_keys()) or 'none'}")


@gallery.command("reembed")
@extractor_options
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def gallery_reembed(ctx, extractor, options, as_json):
    """Embed every stored sample again (from its original file) with an extractor."""
    from .reembed import reembed

    with open_gallery(ctx) as g:
        bound = bind_extractor(extractor or DEFAULT_EXTRACTOR, options)
        total = sum(i.samples for i in g.generators())
        with progress_bar(total, f"re-embedding with {bound.name}") as advance:
            report = reembed(g, bound, progress=advance)
    if as_json:
        emit_json(vars(report))
    else:
        click.echo(
            f"{report.extractor}: embedded {report.embedded}, already present {report.present}, "
            f"problems {len(report.problems)}"
        )
        for problem in report.problems:
            click.echo(f"  {problem}")
    if report.problems:
        ctx.exit(1)


@cli.command()
@click.option("--json", "as_json", is_flag=True)
def plugins(as_json):
    """List loaded plugins and the extractors they provide."""
    from .plugins import plugin_infos

    infos = plugin_infos()
    rows = [
        {
            "name": i.name,
            "package": i.package,
            "version": i.version,
            "hooks": i.hooks,
            "extractors": [{"name": s.name, "version": s.version, "dim": s.dim} for s in i.extractors],
        }
        for i in infos
    ]
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        click.echo(f"{row['name']} ({row['package'] or '?'} {row['version'] or ''})".rstrip())
        for e in row["extractors"]:
            dim = e["dim"] if e["dim"] is not None else "depends on options"
            click.echo(f"  extractor {e['name']} v{e['version']} dim {dim}")


def _add_builtin_commands() -> None:
    from .demo import demo

    cli.add_command(demo)

    from .evaluate import evaluate

    cli.add_command(evaluate)


def _register_plugin_commands() -> None:
    from .plugins import load_plugins

    load_plugins().hook.register_commands(cli=cli)


_add_builtin_commands()
_register_plugin_commands()


def main() -> None:
    # Pillow warns about images over its own size limit; the loader then rejects them with its
    # one-line error, so the warning would only say the same thing twice
    warnings.filterwarnings("ignore", message=r"Image size \(\d+ pixels\) exceeds limit")
    try:
        cli(prog_name="attrib")
    except BrokenPipeError:  # e.g. `attrib identify --json dir/ | head`
        sys.stderr.close()
        sys.exit(1)
