"""Where a gallery lives: a folder (SQLite) or a PostgreSQL database named by a URL.

A database gallery keeps its metadata and vectors in PostgreSQL, shared by every machine that
opens the URL; each machine keeps the FAISS index files, a cache rebuilt from the database, in
a local folder (:func:`cache_folder`). Passwords are never shown: :func:`masked` is the form
every message, log line and cache path uses. Imports SQLAlchemy only inside functions, so the
CLI can tell a URL from a folder cheaply.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote

from ..errors import GalleryError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")
DRIVER = "postgresql+psycopg"
CACHE_ENV = "ATTRIB_CACHE_DIR"


def is_database_url(location: object) -> bool:
    """``location`` names a database (``scheme://...``), not a folder."""
    return "://" in str(location)


def database_url(location: object) -> URL:
    """The SQLAlchemy URL of a gallery location given as text (driver psycopg 3); raises GalleryError,
    with the password masked, for a scheme or URL that cannot be used."""
    from sqlalchemy.engine import URL, make_url
    from sqlalchemy.exc import ArgumentError

    if isinstance(location, MaskedURL):
        return location.url
    if isinstance(location, URL):
        location = location.render_as_string(hide_password=False)
    text = str(location).strip()
    scheme = text.split("://", 1)[0].lower()
    if scheme not in SCHEMES:
        raise GalleryError(f"gallery URL scheme {scheme!r} is not supported; give a folder, or a PostgreSQL URL "
                           "such as postgresql://USER@HOST/DATABASE")
    try:
        url = make_url(text)
    except (ArgumentError, ValueError) as exc:
        raise GalleryError(f"gallery URL {_without_password(text)} cannot be read ({exc}); write it as "
                           "postgresql://USER@HOST[:PORT]/DATABASE") from None
    url = url.set(drivername=DRIVER)
    if not url.database:
        raise GalleryError(f"gallery URL {masked(url)} names no database; write it as "
                           "postgresql://USER@HOST[:PORT]/DATABASE")
    return url


def _without_password(text: str) -> str:
    """A URL given as text with anything between ``user:`` and ``@`` replaced by ***."""
    scheme, _, rest = text.partition("://")
    credentials, at, host = rest.rpartition("@")
    if at and ":" in credentials:
        credentials = credentials.split(":", 1)[0] + ":***"
    return f"{scheme}://{credentials}{at}{host}"


def masked(url: URL) -> str:
    """The URL as shown to people: ``postgresql://``, the password (if any) as ***, no percent-escapes."""
    return unquote(url.set(drivername="postgresql").render_as_string(hide_password=True))


def cache_folder(url: URL) -> Path:
    """This machine's folder for the index files of the database gallery ``url``:
    ``$ATTRIB_CACHE_DIR`` (else the per-user cache folder) ``/galleries/<digest of the URL without its
    password>``."""
    base = os.environ.get(CACHE_ENV)
    if not base:
        from platformdirs import user_cache_dir

        base = user_cache_dir("attrib")
    name = url._replace(password=None).render_as_string(hide_password=False)
    return Path(base).expanduser() / "galleries" / hashlib.sha256(name.encode()).hexdigest()[:16]


class MaskedURL(str):
    """A database gallery's URL as shown to people (the text: :func:`masked`); ``url`` is the URL itself,
    so the gallery can be opened again from it."""

    url: URL

    def __new__(cls, url: URL) -> MaskedURL:
        shown = super().__new__(cls, masked(url))
        shown.url = url
        return shown
