"""What `attrib serve` checks and says before it starts: the gallery must exist (or be created on request),
and a summary of what is served, to whom and within which limits; then uvicorn's logging (an access
log, each worker's ready line with the extractor it bound)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import GalleryError
from ..extractors import DEFAULT_EXTRACTOR
from ..gallery import open_gallery
from ..storage.faults import database_path
from ..storage.location import is_database_url
from .settings import AUTH_READS_ENV, TOKEN_ENV, ServeSettings

ACCESS_FORMAT = '%(asctime)s %(client_addr)s - "%(request_line)s" %(status_code)s'


@dataclass(frozen=True)
class GalleryFacts:
    """What the summary says of the served gallery: where it is, its extractors and how many generators."""

    shown: str
    extractors: list[str]
    generators: int


def served_gallery(location: str | Path, create: bool) -> GalleryFacts:
    """The gallery at ``location``, which must exist unless ``create`` (then an empty one is made there);
    GalleryError in one line naming the path and the fix. A PostgreSQL URL is taken as it is (its
    database is checked when the workers open it)."""
    if not is_database_url(location):
        folder = Path(location).expanduser()
        if not database_path(folder).is_file():
            if not create:
                raise GalleryError(f"no gallery at {folder} (no {database_path(folder).name} there): check "
                                   "--gallery (or ATTRIB_GALLERY), or add --create to serve a new, empty gallery there")
            with open_gallery(folder):
                pass
    with open_gallery(location, read_only=True) as gallery:
        return GalleryFacts(str(gallery.root), sorted(gallery.extractor_names()), len(gallery.generators()))


def summary(url: str, gallery: GalleryFacts, settings: ServeSettings, workers: int, access_log: bool) -> list[str]:
    """The lines `attrib serve` prints at start-up."""
    if settings.extractor:
        extractor = f"{settings.extractor} (as asked)"
    elif len(gallery.extractors) == 1:
        extractor = f"{gallery.extractors[0]} (the gallery's only one)"
    else:
        held = f"the gallery holds {', '.join(gallery.extractors)}; -e picks one" if gallery.extractors else \
            "the gallery holds none yet"
        extractor = f"{DEFAULT_EXTRACTOR}, the default ({held})"
    if settings.token is None:
        writes = f"refused ({TOKEN_ENV} is not set)"
    else:
        writes = f"need `Authorization: Bearer ${TOKEN_ENV}`"
    reads = "need the token too" if settings.auth_reads else f"open to anyone who can connect ({AUTH_READS_ENV}=1 " \
                                                             "or --auth-reads to require the token)"
    kept = str(settings.uploads_dir) if settings.uploads_dir else "not kept (stored as upload:NAME)"
    return [
        f"attrib serve: {url} (API description at {url}/docs)",
        f"  gallery:    {gallery.shown} ({gallery.generators} generator{'s' if gallery.generators != 1 else ''})",
        f"  extractor:  {extractor}; each worker logs the one it binds",
        f"  writes:     {writes}; reads: {reads}",
        f"  limits:     {settings.max_request_bytes:,} bytes per request; {settings.max_image_pixels:,} pixels per "
        f"image and {settings.max_request_pixels:,} per identify or verify request; {settings.read_timeout:g} s "
        f"to send a request, then {settings.min_body_rate:,} bytes/s",
        f"  workers:    {workers}; enrolled uploads {kept}",
        f"  access log: {'one line per request on standard output' if access_log else 'off'}",
    ]


def log_config(access_log: bool) -> dict[str, Any]:
    """uvicorn's logging: its own messages from warnings up, the access log (with the time) unless turned
    off, and each worker's ready line (logger ``attrib.serve``)."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["access"]["fmt"] = ACCESS_FORMAT
    config["loggers"]["uvicorn.error"] = {"level": "WARNING"}
    config["loggers"]["uvicorn.access"]["level"] = "INFO" if access_log else "WARNING"
    config["loggers"]["attrib.serve"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config
