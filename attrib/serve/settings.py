"""What ``attrib serve`` reads from the environment: the gallery, the token, the limits, where uploads are kept,
how many unknown answers are kept for discovery."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from ..errors import AttribError
from ..images import MAX_PIXELS, PIXELS_AHEAD, positive_setting

TOKEN_ENV = "ATTRIB_TOKEN"
AUTH_READS_ENV = "ATTRIB_AUTH_READS"
MAX_REQUEST_ENV = "ATTRIB_MAX_REQUEST_BYTES"
MAX_PIXELS_ENV = "ATTRIB_MAX_IMAGE_PIXELS"
MAX_REQUEST_PIXELS_ENV = "ATTRIB_MAX_REQUEST_PIXELS"
READ_TIMEOUT_ENV = "ATTRIB_READ_TIMEOUT"
MIN_BODY_RATE_ENV = "ATTRIB_MIN_BODY_RATE"
EXTRACTOR_ENV = "ATTRIB_EXTRACTOR"
GALLERY_ENV = "ATTRIB_GALLERY"
UPLOADS_DIR_ENV = "ATTRIB_UPLOADS_DIR"
DISCOVER_KEEP_ENV = "ATTRIB_DISCOVER_KEEP"
DISCOVER_PHOTOS_ENV = "ATTRIB_DISCOVER_PHOTOS"
MOST_DISCOVER_KEEP = 500  # unknown answers a worker may keep for discovery
DEFAULT_MAX_REQUEST_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_REQUEST_PIXELS = PIXELS_AHEAD  # what one worker decodes at once: one 8000 x 8000 image, or 16 of 2000 x 2000
DEFAULT_READ_TIMEOUT = 30  # seconds
DEFAULT_MIN_BODY_RATE = 32 * 1024  # bytes per second, on average, once the read timeout has passed


@dataclass(frozen=True)
class ServeSettings:
    """``token``: the bearer token writes need (None: writes are refused); ``auth_reads``: reads need it
    too; ``max_request_bytes``: the largest request body; ``max_image_pixels``: the most pixels one
    uploaded image may have (read from its header); ``max_request_pixels``: the most pixels the images of one
    identify or verify request may have together (they are decoded at once); ``read_timeout``: the seconds a
    client has to send a request's headers, and its body unless that keeps arriving at ``min_body_rate``
    bytes per second on average (:mod:`.slow_clients`); ``extractor``: the extractor to bind (None: the
    gallery's only one, else the default); ``uploads_dir``: the folder where each enrolled upload is kept
    (:func:`attrib.serve.uploads.keep`) and stored as that file (None: none is kept, and samples are stored
    as ``upload:NAME``); ``discover_keep``: how many of its latest ``unknown`` identify answers each worker keeps
    in memory for ``GET /v1/discover`` (0: none, discovery off; :mod:`attrib.serve.discover`);
    ``discover_photos``: a folder of camera photographs the grouping takes as reference photographs (as
    ``attrib discover --photos DIR``), embedded once per worker."""

    token: str | None = None
    auth_reads: bool = False
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    max_image_pixels: int = MAX_PIXELS
    max_request_pixels: int = DEFAULT_MAX_REQUEST_PIXELS
    read_timeout: float = DEFAULT_READ_TIMEOUT
    min_body_rate: int = DEFAULT_MIN_BODY_RATE
    extractor: str | None = None
    uploads_dir: Path | None = None
    discover_keep: int = 0
    discover_photos: Path | None = None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> "ServeSettings":
        env = os.environ if environ is None else environ
        return cls(
            token=env.get(TOKEN_ENV) or None,
            auth_reads=_flag(env.get(AUTH_READS_ENV, "")),
            max_request_bytes=_positive(env, MAX_REQUEST_ENV, DEFAULT_MAX_REQUEST_BYTES),
            max_image_pixels=_positive(env, MAX_PIXELS_ENV, MAX_PIXELS),
            max_request_pixels=_positive(env, MAX_REQUEST_PIXELS_ENV, DEFAULT_MAX_REQUEST_PIXELS),
            read_timeout=_positive(env, READ_TIMEOUT_ENV, DEFAULT_READ_TIMEOUT),
            min_body_rate=_positive(env, MIN_BODY_RATE_ENV, DEFAULT_MIN_BODY_RATE),
            extractor=env.get(EXTRACTOR_ENV) or None,
            uploads_dir=Path(env[UPLOADS_DIR_ENV]).expanduser().absolute() if env.get(UPLOADS_DIR_ENV) else None,
            discover_keep=_discover_keep(env.get(DISCOVER_KEEP_ENV, "")),
            discover_photos=Path(env[DISCOVER_PHOTOS_ENV]).expanduser().absolute() if env.get(DISCOVER_PHOTOS_ENV)
            else None,
        )


def _flag(value: str) -> bool:
    text = value.strip().lower()
    if text in ("", "0", "false", "no", "off"):
        return False
    if text in ("1", "true", "yes", "on"):
        return True
    raise AttribError(f"{AUTH_READS_ENV}={value!r} is not a yes/no value; set it to 1 or 0")


def _discover_keep(value: str) -> int:
    text = value.strip()
    if not text:
        return 0
    if not (text.isascii() and text.isdigit()) or int(text) > MOST_DISCOVER_KEEP:
        raise AttribError(f"{DISCOVER_KEEP_ENV}={value!r} must be a whole number from 0 (discovery off) to "
                          f"{MOST_DISCOVER_KEEP}: how many recent unknown answers each worker keeps")
    return int(text)


def _positive(env: Mapping[str, str], name: str, default: int) -> int:
    return positive_setting(name, default, f"must be a positive whole number (default {default})", env)
