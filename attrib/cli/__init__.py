"""The ``attrib`` command line: a thin layer over the library API (:mod:`attrib`).

One module per command group: :mod:`.attribution` (enroll, identify, verify, calibrate),
:mod:`.gallery` (gallery ...), :mod:`.evaluation` (evaluate, demo), :mod:`.evidence` (inspect),
:mod:`.plugins`, :mod:`.report`, :mod:`.serve`.
Heavy modules (numpy, faiss, SQLAlchemy, plugins' frameworks) are imported inside the
commands that need them, so ``attrib --help`` stays fast. Library errors
(:class:`attrib.errors.AttribError`) become one-line messages.

May import (the layers below it in the import contract, pyproject.toml): :mod:`attrib.discovery`, :mod:`attrib.serve`,
:mod:`attrib.batch`, :mod:`attrib.evaluation`, :mod:`attrib.report`, :mod:`attrib.gallery`,
:mod:`attrib.enrollment`, :mod:`attrib.routing`, :mod:`attrib.upkeep`, :mod:`attrib.scoring`, :mod:`attrib.storage`,
:mod:`attrib.index`, :mod:`attrib.delivery`, :mod:`attrib.extractors`, :mod:`attrib.evidence`, :mod:`attrib.synthetic`,
:mod:`attrib.images`, :mod:`attrib.host`, :mod:`attrib.names`, :mod:`attrib.errors`, :mod:`attrib.version`. Never
:mod:`attrib.training` or :mod:`attrib.testing` (its siblings in the top layer, which no part imports).
"""

from __future__ import annotations

import sys
import warnings
import click

from ..version import __version__
from . import attribution, discover, evaluation, evidence, gallery, plugins, report, serve
from .common import AttribGroup, default_gallery, gallery_location


@click.group(cls=AttribGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="attrib")
@click.option(
    "--gallery",
    "gallery",
    envvar="ATTRIB_GALLERY",
    type=click.Path(file_okay=False),
    default=None,
    help="Gallery folder, or PostgreSQL URL postgresql://USER@HOST/DATABASE shared by several machines "
    "(default: $ATTRIB_GALLERY or a per-user data folder); also accepted after any command that uses a gallery.",
)
@click.pass_context
def cli(ctx: click.Context, gallery: str | None) -> None:
    """Tell which generator made an image, or say it is unknown."""
    ctx.ensure_object(dict)
    ctx.obj["gallery"] = default_gallery() if gallery is None else gallery_location(gallery)
    ctx.obj["gallery_given"] = ctx.get_parameter_source("gallery") == click.core.ParameterSource.COMMANDLINE


for _command in (*attribution.COMMANDS, gallery.gallery, *evaluation.COMMANDS, *evidence.COMMANDS, plugins.plugins,
                 *report.COMMANDS, *serve.COMMANDS, *discover.COMMANDS):
    cli.add_command(_command)


def _register_plugin_commands() -> None:
    from ..host.manager import load_plugins

    load_plugins().hook.register_commands(cli=cli)


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
