"""``attrib serve``: the HTTP API (:mod:`attrib.serve`), run by uvicorn; needs ``attrib[serve]``."""

from __future__ import annotations

import os
from pathlib import Path

import click

from ..errors import AttribError
from .common import gallery_option

APP_FACTORY = "attrib.serve.app:app_from_environment"


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0: every interface; put TLS in front of it).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1),
              help="Worker processes; each loads the extractor once.")
@click.option("--auth-reads", is_flag=True, default=None,
              help="Reads (identify, verify, lists) need the token too (default: $ATTRIB_AUTH_READS, else open).")
@click.option("--extractor", "-e", envvar="ATTRIB_EXTRACTOR", default=None,
              help="Feature extractor; default: $ATTRIB_EXTRACTOR, else the gallery's only one, else the default.")
@click.option("--keep-uploads", "keep_uploads", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="Keep each enrolled upload in DIR (by content), so `gallery reembed` can read it again "
                   "(default: $ATTRIB_UPLOADS_DIR, else none is kept and samples are stored as upload:NAME).")
@click.option("--discover", "discover_keep", type=click.IntRange(0, 500), default=None, metavar="N",
              help="Keep the last N unknown identify answers in memory (embedding, thumbnail, name, the upload's "
                   "bytes within a cap) and group them at GET /v1/discover and the /discover page (default: "
                   "$ATTRIB_DISCOVER_KEEP, else 0: off). Needs scikit-learn and one worker.")
@click.option("--discover-photos", "discover_photos", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="With --discover: camera photographs of the kind uploads may hold; a candidate nearer them than any "
                   "enrolled generator is labelled photographs, not offered (default: $ATTRIB_DISCOVER_PHOTOS).")
@click.option("--create", is_flag=True,
              help="Serve a new, empty gallery when none is at --gallery (without it, a missing gallery is refused).")
@click.option("--access-log/--no-access-log", default=True, show_default=True,
              help="One line per request on standard output.")
@gallery_option
@click.pass_context
def serve(ctx, host, port, workers, auth_reads, extractor, keep_uploads, discover_keep, discover_photos, create,
          access_log):
    """Serve the gallery over HTTP: POST /v1/identify, /v1/verify, /v1/enroll; OpenAPI at /docs.

    Writes (enroll, DELETE /v1/generators/NAME) need `Authorization: Bearer $ATTRIB_TOKEN`; with no
    ATTRIB_TOKEN set they are refused. ATTRIB_MAX_REQUEST_BYTES (default 64 MiB), ATTRIB_MAX_IMAGE_PIXELS,
    ATTRIB_MAX_REQUEST_PIXELS, ATTRIB_READ_TIMEOUT and ATTRIB_MIN_BODY_RATE bound what one request may send
    and how slowly. With --discover N, the last N unknown answers are grouped into candidate generators at
    GET /v1/discover and on the /discover page. Prints what it serves at start-up."""
    try:
        import fastapi  # noqa: F401
        import python_multipart  # noqa: F401
        import uvicorn
    except ImportError as exc:
        raise AttribError(f"attrib serve needs its extra ({exc.name} is missing): "
                          "pip install 'attrib[serve]'") from None
    from ..serve.settings import (AUTH_READS_ENV, DISCOVER_KEEP_ENV, DISCOVER_PHOTOS_ENV, EXTRACTOR_ENV, GALLERY_ENV,
                                  UPLOADS_DIR_ENV, ServeSettings)
    from ..serve.slow_clients import PROTOCOL
    from ..serve.startup import log_config, served_gallery, summary
    from ..serve.uploads import check_folder

    os.environ[GALLERY_ENV] = str(ctx.obj["gallery"])  # the workers build the app from the environment
    if auth_reads:
        os.environ[AUTH_READS_ENV] = "1"
    if extractor:
        os.environ[EXTRACTOR_ENV] = extractor
    if keep_uploads:
        os.environ[UPLOADS_DIR_ENV] = keep_uploads
    if discover_keep is not None:
        os.environ[DISCOVER_KEEP_ENV] = str(discover_keep)
    if discover_photos:
        os.environ[DISCOVER_PHOTOS_ENV] = discover_photos
    settings = ServeSettings.from_environment()  # a bad setting fails here, in one line, before any worker starts
    if settings.uploads_dir is not None:
        check_folder(settings.uploads_dir)
    if settings.discover_keep or settings.discover_photos:
        _check_discovery(settings.discover_keep, settings.discover_photos, workers)
    gallery = served_gallery(ctx.obj["gallery"], create)
    shown_host = f"[{host}]" if ":" in host else host
    for line in summary(f"http://{shown_host}:{port}", gallery, settings, workers, access_log):
        click.echo(line, err=True)
    if settings.discover_keep:
        photos = f"; reference photographs from {settings.discover_photos}" if settings.discover_photos else ""
        click.echo(f"  discover:   the last {settings.discover_keep} unknown answers kept in memory (names, "
                   f"thumbnails) at GET /v1/discover and /discover; reading them needs the token{photos}", err=True)
    uvicorn.run(APP_FACTORY, factory=True, host=host, port=port, workers=workers, http=PROTOCOL,
                log_config=log_config(access_log), access_log=access_log)


def _check_discovery(keep: int, photos: Path | None, workers: int) -> None:
    """Discovery keeps each worker's answers in its own memory, so it runs with one worker, and groups them
    with scikit-learn; its reference photographs are a folder, for discovery only."""
    if photos is not None and not keep:
        raise AttribError(f"--discover-photos {photos} gives discovery reference photographs, but discovery is off: "
                          "add --discover N")
    if photos is not None and not photos.is_dir():
        raise AttribError(f"--discover-photos {photos}: no such folder; point it at a folder of camera photographs")
    if workers > 1:
        raise AttribError(f"--discover {keep} keeps each worker's unknown answers apart, so GET /v1/discover would "
                          f"see only one worker's; run it with --workers 1, or without --discover")
    from ..discovery.clustering import clustering_available

    if not clustering_available():
        raise AttribError(f"--discover {keep} needs scikit-learn to group the answers: pip install 'attrib[eval]'")


COMMANDS = (serve,)
