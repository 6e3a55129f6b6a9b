"""``attrib serve``: the library over HTTP (FastAPI; the optional extra ``attrib[serve]``).

:mod:`.settings` reads the settings (token, limits, gallery) from the environment, :mod:`.uploads`
decodes uploads from their bytes (identify, verify) or writes them as files (enroll), :mod:`.limits`
enforces the request size and pixel limits, :mod:`.auth` checks the token before a body is read,
:mod:`.slow_clients` answers 408 to a request that does not arrive in time, :mod:`.batching` answers
concurrent requests together, :mod:`.schemas` describes every answer (pydantic models, for the OpenAPI
schema), :mod:`.app` builds the app (:func:`create_app`), :mod:`.discover` keeps recent unknown answers and
groups them into candidate generators (``--discover N``), :mod:`.startup` checks the gallery and says what
is served before the server starts. The command line loads this package only when ``attrib serve`` runs.

May import (the layers below it in the import contract, pyproject.toml): :mod:`attrib.discovery`, :mod:`attrib.gallery`,
:mod:`attrib.enrollment`, :mod:`attrib.routing`, :mod:`attrib.upkeep`, :mod:`attrib.scoring`, :mod:`attrib.storage`,
:mod:`attrib.index`, :mod:`attrib.delivery`, :mod:`attrib.extractors`, :mod:`attrib.evidence`, :mod:`attrib.synthetic`,
:mod:`attrib.images`, :mod:`attrib.host`, :mod:`attrib.names`, :mod:`attrib.errors`, :mod:`attrib.version`. Never
:mod:`attrib.batch`, :mod:`attrib.evaluation` (its siblings) or :mod:`attrib.report`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .settings import ServeSettings

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["ServeSettings", "create_app"]


def create_app(gallery_location: str | Path, settings: ServeSettings | None = None) -> FastAPI:
    """The FastAPI app serving the gallery at ``gallery_location`` (see :func:`attrib.serve.app.create_app`)."""
    from .app import create_app as build

    return build(gallery_location, settings)
