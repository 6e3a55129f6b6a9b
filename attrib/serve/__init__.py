"""``attrib serve``: the library over HTTP (FastAPI; the optional extra ``attrib[serve]``).

:mod:`.settings` reads the settings (token, limits, gallery) from the environment, :mod:`.uploads`
decodes uploads from their bytes (identify, verify) or writes them as files (enroll), :mod:`.limits`
enforces the request size and pixel limits, :mod:`.batching` answers concurrent requests together,
:mod:`.schemas` describes every answer (pydantic models, for the OpenAPI schema), :mod:`.app` builds
the app (:func:`create_app`). Nothing here is imported by ``attrib.cli`` until ``attrib serve`` runs.
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
