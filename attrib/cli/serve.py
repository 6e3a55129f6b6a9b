"""``attrib serve``: the HTTP API (:mod:`attrib.serve`), run by uvicorn; needs ``attrib[serve]``."""

from __future__ import annotations

import os

import click

from ..errors import AttribError

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
@click.option("--create", is_flag=True,
              help="Serve a new, empty gallery when none is at --gallery (without it, a missing gallery is refused).")
@click.option("--access-log/--no-access-log", default=True, show_default=True,
              help="One line per request on standard output.")
@click.pass_context
def serve(ctx, host, port, workers, auth_reads, extractor, keep_uploads, create, access_log):
    """Serve the gallery over HTTP: POST /v1/identify, /v1/verify, /v1/enroll; OpenAPI at /docs.

    Writes (enroll, DELETE /v1/generators/NAME) need `Authorization: Bearer $ATTRIB_TOKEN`; with no
    ATTRIB_TOKEN set they are refused. ATTRIB_MAX_REQUEST_BYTES (default 64 MiB), ATTRIB_MAX_IMAGE_PIXELS,
    ATTRIB_MAX_REQUEST_PIXELS, ATTRIB_READ_TIMEOUT and ATTRIB_MIN_BODY_RATE bound what one request may send
    and how slowly. Prints what it serves at start-up."""
    try:
        import fastapi  # noqa: F401
        import python_multipart  # noqa: F401
        import uvicorn
    except ImportError as exc:
        raise AttribError(f"attrib serve needs its extra ({exc.name} is missing): "
                          "pip install 'attrib[serve]'") from None
    from ..serve.settings import AUTH_READS_ENV, EXTRACTOR_ENV, GALLERY_ENV, UPLOADS_DIR_ENV, ServeSettings
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
    settings = ServeSettings.from_environment()  # a bad setting fails here, in one line, before any worker starts
    if settings.uploads_dir is not None:
        check_folder(settings.uploads_dir)
    gallery = served_gallery(ctx.obj["gallery"], create)
    shown_host = f"[{host}]" if ":" in host else host
    for line in summary(f"http://{shown_host}:{port}", gallery, settings, workers, access_log):
        click.echo(line, err=True)
    uvicorn.run(APP_FACTORY, factory=True, host=host, port=port, workers=workers, http=PROTOCOL,
                log_config=log_config(access_log), access_log=access_log)


COMMANDS = (serve,)
