"""The browser page of ``attrib serve``: ``/`` (identify, the gallery, enroll and remove) and ``/docs`` (the API
described from ``/openapi.json``), both working offline.

The page is static HTML, CSS and JavaScript served from this package's ``static/`` folder, same-origin, under
a strict Content-Security-Policy (no inline script or style, nothing from another origin); its script calls
the JSON API (``/v1/...``) and shows every value from the server as text. FastAPI's own ``/docs`` (Swagger UI)
and ``/redoc`` load their code from a CDN, so :func:`install` replaces them with a page of this package.

The pages share their frame: ``static/_page.html`` holds the head and body every page has, and each page's file
holds only its own head lines (title, scripts), a line ``<!-- body -->``, then its body; :func:`asset_bytes`
puts the two together once per process. Nothing in them comes from a request.

Two read routes serve what the JSON API does not: a generator's samples with their held-out scores and
thumbnails (``GET /page/generators/{name}``) and the thumbnails of enrolled samples by SHA-256 (``GET
/page/thumbnails``). They are the page's, outside the published schema, and need the token exactly when
the API's reads do.
"""

from __future__ import annotations

import base64
import re
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Protocol

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import Response

from ..errors import AttribError
from .auth import refusal

if TYPE_CHECKING:
    from ..gallery import Gallery
    from .settings import ServeSettings


class Served(Protocol):
    """What the page's routes use of the worker's :class:`attrib.serve.app.Service`."""

    settings: ServeSettings

    def reading(self) -> Gallery: ...

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
PAGE_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"}
ASSETS = {  # name in static/ -> media type; nothing else is served from it
    "index.html": "text/html; charset=utf-8",
    "api.html": "text/html; charset=utf-8",
    "page.css": "text/css; charset=utf-8",
    "page.js": "text/javascript; charset=utf-8",
    "dom.js": "text/javascript; charset=utf-8",
    "api.js": "text/javascript; charset=utf-8",
    "icon.svg": "image/svg+xml",
}
THUMBNAIL_MIME = "image/webp"  # the gallery's stored previews (Gallery.thumbnails)
MOST_THUMBNAILS = 64  # per /page/thumbnails request
MOST_SAMPLES = 500  # per /page/generators/{name} request
SHA256 = re.compile(r"[0-9a-f]{64}")
STATIC = Path(__file__).resolve().with_name("static")
FRAME = "_page.html"  # in static/: the pages' shared head and body, not served itself
OWN_HEAD, OWN_BODY = "<!-- head -->\n", "<!-- body -->\n"  # where a page's own lines go in FRAME

router = APIRouter(include_in_schema=False)


@lru_cache(maxsize=None)
def asset_bytes(name: str) -> bytes:
    """The bytes served for the file ``name`` of static/: a page (``.html``) in its frame, any other file as is."""
    if not name.endswith(".html"):
        return (STATIC / name).read_bytes()
    head, split, body = (STATIC / name).read_text("utf-8").partition(OWN_BODY)
    if not split or OWN_BODY in body:
        raise AttribError(f"static/{name} needs one line {OWN_BODY.strip()} between its own head and its body")
    return (STATIC / FRAME).read_text("utf-8").replace(OWN_HEAD, head).replace(OWN_BODY, body).encode("utf-8")


def asset(name: str) -> Response:
    """The file ``name`` of static/ with its media type and the page's headers (CSP included)."""
    return Response(asset_bytes(name), media_type=ASSETS[name], headers=PAGE_HEADERS)


@router.get("/")
def index() -> Response:
    return asset("index.html")


@router.get("/docs")
def api_page() -> Response:
    return asset("api.html")


@router.get("/static/{name}")
def static(name: str) -> Response:
    if name not in ASSETS:
        raise HTTPException(404, f"no file {name!r} here; the page's files are {', '.join(sorted(ASSETS))}")
    return asset(name)


def reader(request: Request) -> Served:
    """The worker's Service, once the bearer token is checked where reads need it (``auth_reads``)."""
    service = getattr(request.app.state, "service", None)
    if service is None:
        raise HTTPException(503, "the server is still starting; try again in a moment")
    if service.settings.auth_reads:
        problem = refusal(service.settings.token, request.headers.get("authorization", "").encode("latin-1") or None)
        if problem is not None:
            status, detail = problem
            raise HTTPException(status, detail, headers={"WWW-Authenticate": "Bearer"} if status == 401 else None)
    return service


Reader = Annotated[Served, Depends(reader)]


def data_url(data: bytes) -> str:
    return f"data:{THUMBNAIL_MIME};base64,{base64.b64encode(data).decode('ascii')}"


@router.get("/page/generators/{name}")
def generator_samples(held: Reader, name: str,
                      limit: Annotated[int, Query(ge=1, le=MOST_SAMPLES)] = 60) -> dict[str, Any]:
    """Generator ``name``: its entry, its threshold and the first ``limit`` samples in enrollment order, each
    with its held-out score (against the rest of its generator, as identify scores a query; null when not
    known) and its thumbnail as a ``data:`` URL (null when the gallery has none); 404 when not enrolled."""
    with held.reading() as gallery:
        detail = gallery.generator_detail(name)
        held_out, threshold, extractor = gallery.held_out_scores(name)
        shown = detail["samples"][:limit]
        thumbnails = gallery.thumbnails(s["sha256"] for s in shown)
    samples = [{"sha256": s["sha256"], "path": s["path"], "width": s["width"], "height": s["height"],
                "enrolled_at": s["enrolled_at"], "held_out": held_out.get(s["sha256"]),
                "thumbnail": data_url(thumbnails[s["sha256"]]) if thumbnails.get(s["sha256"]) else None}
               for s in shown]
    return {"name": detail["name"], "family": detail["family"], "note": detail["note"],
            "created_at": detail["created_at"], "extractor": extractor, "threshold": threshold,
            "total": len(detail["samples"]), "samples": samples}


@router.get("/page/thumbnails")
def thumbnails(held: Reader, sha256: Annotated[list[str], Query()]) -> dict[str, Any]:
    """``{"thumbnails": {sha256: data URL}}`` for the enrolled samples among ``sha256`` (repeated, at most
    64) that have a thumbnail; 422 for a value that is not a SHA-256."""
    wanted = [value.strip().lower() for value in sha256]
    bad = next((value for value in wanted if not SHA256.fullmatch(value)), None)
    if bad is not None:
        raise HTTPException(422, f"sha256={bad[:80]!r} is not a SHA-256; give 64 hexadecimal digits")
    if len(wanted) > MOST_THUMBNAILS:
        raise HTTPException(422, f"{len(wanted)} thumbnails asked for; ask for at most {MOST_THUMBNAILS} at once")
    with held.reading() as gallery:
        found = gallery.thumbnails(dict.fromkeys(wanted))
    return {"thumbnails": {sha: data_url(data) for sha, data in found.items() if data}}


def install(app: FastAPI) -> None:
    """Serve the page at ``/`` and the API page at ``/docs`` in ``app``, in place of FastAPI's Swagger UI and
    ReDoc pages (which load their code from a CDN, so they do not work offline nor under the page's CSP)."""
    dropped = {app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url} - {None}
    app.router.routes[:] = [r for r in app.router.routes if getattr(r, "path", None) not in dropped]
    app.docs_url = app.redoc_url = None
    app.include_router(router)
