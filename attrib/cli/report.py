"""``attrib report IMAGES... --output report.html``: identify the images and write one self-contained HTML
page that shows, per image, why attrib said what it said (see :mod:`attrib.report.identify`)."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import BadOption
from .common import c2pa_trust_option, collect_paths, echo_err, gallery_option, open_gallery, progress_bar


def check_report_path(path: str | Path, option: str) -> Path:
    """A report is an .html file: ``-o weights=x`` is the extractor option of other commands."""
    if Path(path).suffix.lower() not in (".html", ".htm"):
        raise BadOption(f"{option} {path}: the report is an HTML file, give a name ending in .html "
                        "(extractor options are --option KEY=VALUE)")
    return Path(path)


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--output", "output", type=click.Path(dir_okay=False), metavar="FILE.html",
              help="The HTML file to write (replaced atomically).")
@click.option("--extractor", "-e", envvar="ATTRIB_EXTRACTOR", default=None,
              help="Feature extractor, as for `attrib identify` ('+' fuses several).")
@click.option("--option", "-o", "options", multiple=True, metavar="KEY=VALUE", help="Extractor option (repeatable).")
@click.option("--top-k", "-k", default=3, show_default=True, type=click.IntRange(min=1),
              help="Candidates shown per image, each with its nearest enrolled samples.")
@c2pa_trust_option
@click.option("--trust-metadata", is_flag=True, help="As for `attrib identify`.")
@gallery_option
@click.pass_context
def report(ctx, paths, output, extractor, options, top_k, c2pa_trust, trust_metadata):
    """Identify the images in PATHS (files and folders) and write a self-contained HTML report: per image
    the decision, the score against the threshold, the nearest enrolled samples, the file's evidence."""
    from ..report.identify import IdentifyReport

    for option in options:
        if "=" not in option and Path(option).suffix.lower() in (".html", ".htm"):
            raise BadOption(f"-o {option}: -o is --option KEY=VALUE, as on every command; write the page with "
                            f"--output {option}")
    if output is None:
        raise click.UsageError("Missing option '--output FILE.html': the page to write")
    target = check_report_path(output, "--output")
    files = collect_paths(paths)
    collected = IdentifyReport()
    with open_gallery(ctx, read_only=True) as gallery, progress_bar(len(files), "identifying") as advance:
        bound = gallery.load_extractor(extractor, options)
        for result in gallery.identify(files, bound, top_k=top_k, c2pa_trust=c2pa_trust,
                                       trust_metadata=trust_metadata):
            collected.add(result)
            if result.error is not None:
                echo_err(f"error: {result.error}")
            advance(1)
        collected.write(target, gallery)
    errors = sum(r.error is not None for r in collected.results)
    click.echo(f"report: {target} ({len(collected.results)} images"
               + (f", {errors} could not be read" if errors else "") + ")")
    if errors:
        ctx.exit(1)


COMMANDS = (report,)
