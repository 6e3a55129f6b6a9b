"""The FastAPI app: identify, verify, enroll and remove over HTTP, answering with the CLI's JSON objects.

The extractor is bound (and warmed) once per worker, at start-up. Identify and verify requests
decode their uploads on their own threads, within the request's pixel limit and the worker's pixel
allowance (:mod:`.limits`), then those that arrive together are answered together (:mod:`.batching`):
one gallery open per batch, each request's images scored as they would be alone. Each batch and each
write opens the gallery afresh (read-only for reads), so it sees every write committed before it, by
this worker or any other process. Endpoints are plain functions, which FastAPI runs on its thread
pool, off the event loop. Writes need the bearer token, reads only with ``auth_reads`` (:mod:`.auth`,
checked before the body is read); a body that does not arrive in time is 408 (:mod:`.slow_clients`).
"""

import logging
import os
import threading
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, AsyncIterator, Union

import numpy as np
from fastapi import Depends, FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ..errors import (AttribError, DiskFull, EmptyGallery, GalleryBusy, ImageError, ReadOnlyGallery,
                      UnknownGenerator)
from ..evidence.read import file_inspector
from ..gallery import Gallery, open_gallery
from ..images import PIXELS_AHEAD, Loaded
from ..scoring.decision import IdentificationResult, Verification
from ..version import __version__
from . import discover, page
from .auth import TokenGate, guarded, open_access, token_guard
from .batching import Batcher
from .limits import BodyLimit, PixelAllowance, pixel_problem, request_pixel_problem
from .schemas import (EnrollFailed, Enrolled, Generators, Health, Identified, IdentifyFailed, Removed, Verified,
                      VerifyFailed, answers)
from .settings import ServeSettings
from .slow_clients import BodyTimeout
from .uploads import Upload, UploadFolder, check_folder, decoded, stored_as, upload_name

_STATUS = ((ImageError, 422), (UnknownGenerator, 404), (EmptyGallery, 409), (GalleryBusy, 503),
           (ReadOnlyGallery, 507), (DiskFull, 507))
Result = Union[IdentificationResult, Verification]  # one answer of identify or verify
log = logging.getLogger("attrib.serve")


def error_status(exc: AttribError) -> int:
    """The HTTP status of a library error: 422 bad image, 404 unknown generator, 409 empty gallery,
    503 busy, 507 cannot write; 400 otherwise."""
    return next((status for kind, status in _STATUS if isinstance(exc, kind)), 400)


class Service:
    """What one worker holds: the gallery's location, the settings, the bound extractors and the
    batcher of its identify and verify requests."""

    def __init__(self, location: str | Path, settings: ServeSettings) -> None:
        self.location = location
        self.settings = settings
        if settings.uploads_dir is not None:
            check_folder(settings.uploads_dir)
        with open_gallery(location, read_only=True) as gallery:
            self.identifier = gallery.load_extractor(settings.extractor)
            self.extractor = self.identifier[0] if isinstance(self.identifier, list) else self.identifier
            try:  # a stale index or fit is brought up to date now, once, rather than by concurrent requests
                gallery.open_index(self.extractor)
            except AttribError:  # e.g. an empty gallery: each request says so itself
                pass
        for bound in self.identifier if isinstance(self.identifier, list) else [self.identifier]:
            bound.embed([np.zeros((64, 64, 3), np.uint8)])  # loads the model now, not on the first request
        self.batcher = Batcher(self.run_batch)
        self.pixels = PixelAllowance(PIXELS_AHEAD)
        self.closed = False
        self.inspect = file_inspector(None)  # what identify and verify read of each file's origin
        self.unknowns = discover.UnknownAnswers(settings.discover_keep, self.identifier,
                                                settings.discover_photos)  # kept for GET /v1/discover
        self.uploads = UploadFolder()  # last: nothing after it can fail and leave the folder behind

    def results(self, key: tuple[Any, ...], uploads: list[Upload]) -> list[Result]:
        """The results for ``uploads`` (decoded here, on the request's thread, within the worker's pixel
        allowance) from the batcher: ``key`` as for :meth:`run_batch`."""
        with self.pixels.held(sum(upload.pixels for upload in uploads)):
            return self.unknowns.answered(key, uploads, decoded(uploads, self.inspect), self.batcher.submit)

    def run_batch(self, key: tuple[Any, ...], requests: list[list[Loaded]]) -> list[list[Result]]:
        """The results of each request of one batch (its images decoded already, see :func:`.uploads.decoded`),
        from one gallery open: ``key`` is ("identify", top_k, trust_metadata) or ("verify", generator). Each
        request is scored on its own (set up once for the batch), so it gets exactly the answer it would alone."""
        with self.reading() as gallery:
            if key[0] == "identify":
                answers = gallery.identify_each(requests, self.identifier, top_k=key[1], trust_metadata=key[2])
                return [list[Result](request) for request in answers]
            return [list(gallery.verify(key[1], paths, self.extractor)) for paths in requests]

    def extractor_key(self) -> str:
        """The identity key of the bound extractor (``a+b`` for fused ones)."""
        if isinstance(self.identifier, list):
            return "+".join(bound.identity.key for bound in self.identifier)
        return self.identifier.identity.key

    def close(self) -> None:
        """Answer the requests waiting, then remove the upload folder."""
        self.closed = True
        self.batcher.close()
        self.uploads.close()

    def reading(self) -> Gallery:
        return open_gallery(self.location, read_only=True)

    def writing(self) -> Gallery:
        return open_gallery(self.location)


def create_app(gallery_location: str | Path, settings: ServeSettings | None = None) -> "FastAPI":
    """The app for the gallery at ``gallery_location`` (a folder or a PostgreSQL URL), with ``settings``
    (default: :meth:`ServeSettings.from_environment`)."""
    settings = settings or ServeSettings.from_environment()

    starting = threading.Lock()
    lifespans = 0  # start-ups of this app running now: the last one to end closes the service

    def built(state: Any, reopen: bool = False) -> Service:
        """The worker's Service, built when there is none (or, with ``reopen``, when it was closed); the
        caller holds ``starting``."""
        held = getattr(state, "service", None)
        if held is None or (reopen and held.closed):
            held = state.service = Service(gallery_location, settings)
        return held

    def started(state: Any) -> Service:
        """The Service of one more start-up: the one running already, if any, so none is left unclosed."""
        nonlocal lifespans
        with starting:
            held = built(state, reopen=True)
            lifespans += 1
        return held

    def stopped(state: Any) -> None:
        """One start-up ended: the last one closes the Service."""
        nonlocal lifespans
        with starting:
            lifespans -= 1
            if lifespans:
                return
            held = state.service
        held.close()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        held = await run_in_threadpool(started, app.state)
        log.info("worker %d ready: extractor %s", os.getpid(), held.extractor_key())
        try:
            yield
        finally:
            await run_in_threadpool(stopped, app.state)

    app = FastAPI(title="attrib", version=__version__, lifespan=lifespan,
                  description="Tell which generator made an image, or say it is unknown.")
    needs_token = token_guard(settings.token)
    app.add_middleware(BodyLimit, limit=settings.max_request_bytes)
    app.add_middleware(BodyTimeout, timeout=settings.read_timeout, min_rate=settings.min_body_rate)
    app.add_middleware(TokenGate, token=settings.token, routes=lambda: guarded(app.routes, needs_token),
                       max_body=settings.max_request_bytes)

    def service(request: Request) -> Service:
        """The worker's Service; built here when the app's start-up did not run (e.g. mounted in another app)."""
        with starting:
            return built(request.app.state)

    @app.exception_handler(AttribError)
    def library_error(request: Request, exc: AttribError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=error_status(exc))

    Files = Annotated[list[UploadFile], File(description="One or more images.")]
    Reader = Annotated[None, Depends(needs_token if settings.auth_reads else open_access)]
    Writer = Annotated[None, Depends(needs_token)]
    Held = Annotated[Service, Depends(service)]

    @app.get("/v1/health", response_model=None, responses=answers(Health, 401, 403))
    def health(_: Reader, held: Held) -> dict[str, Any]:
        """Whether the server is up, with the gallery and extractor it serves."""
        return {"status": "ok", "version": __version__, "extractor": held.extractor_key()}

    @app.get("/v1/generators", response_model=None, responses=answers(Generators, 400, 401, 403, 503))
    def generators(_: Reader, held: Held) -> dict[str, Any]:
        """The enrolled generators, as `attrib gallery list --json` lists them."""
        with held.reading() as gallery:
            infos = gallery.generators()
        return {"generators": [vars(info) for info in infos]}

    @app.post("/v1/identify", response_model=None,
              responses=answers(Identified, 400, 401, 403, 409, 413, 503, unreadable=IdentifyFailed))
    def identify(_: Reader, held: Held, files: Files, top_k: Annotated[int, Form(ge=1, le=100)] = 3,
                 trust_metadata: Annotated[bool, Form()] = False) -> JSONResponse:
        """Identify each uploaded image: `{"results": [...]}`, one `attrib identify --json` object per image,
        in upload order; 422 (with the results) when an image cannot be read."""
        results = held.results(("identify", top_k, trust_metadata), read_uploads(files, held.settings, decoding=True))
        return answer([result.to_json() for result in results])

    @app.post("/v1/verify", response_model=None,
              responses=answers(Verified, 400, 401, 403, 404, 409, 413, 503, unreadable=VerifyFailed))
    def verify(_: Reader, held: Held, files: Files, generator: Annotated[str, Form(min_length=1)]) -> JSONResponse:
        """Verify each uploaded image against `generator`: `{"results": [...]}`, one `attrib verify --json`
        object per image; 404 when the generator is not enrolled."""
        results = held.results(("verify", generator), read_uploads(files, held.settings, decoding=True))
        return answer([result.to_json() for result in results])

    @app.post("/v1/enroll", response_model=None,
              responses=answers(Enrolled, 400, 401, 403, 413, 503, 507, unreadable=EnrollFailed))
    def enroll(_: Writer, held: Held, files: Files, generator: Annotated[str, Form(min_length=1)],
               family: Annotated[str | None, Form()] = None, note: Annotated[str | None, Form()] = None
               ) -> JSONResponse | dict[str, Any]:
        """Enroll the uploaded images under `generator` (needs the token): the summary `attrib enroll
        --json` prints; 422 when an image could not be enrolled, 400 for a name the gallery refuses."""
        uploads = read_uploads(files, held.settings, decoding=False)
        with held.uploads.written(uploads) as saved, held.writing() as gallery:
            report = gallery.enroll(generator, [f.path for f in saved], held.extractor, family=family, note=note,
                                    stored_as=stored_as(saved, held.settings.uploads_dir))
        names = {f.shown: f.name for f in saved}
        summary = report.to_json(held.extractor.identity.key, lambda shown: names.get(shown, shown))
        if summary["failed"]:
            return JSONResponse({"detail": summary["failed"][0]["error"], **summary}, status_code=422)
        return summary

    @app.delete("/v1/generators/{name:path}", response_model=None,
                responses=answers(Removed, 400, 401, 403, 404, 422, 503, 507))
    def remove(_: Writer, held: Held, name: str) -> dict[str, Any]:
        """Remove a generator and its samples, then recalibrate (needs the token); 404 when not enrolled. The
        name is the rest of the path, so any enrolled name can be given (`/` as is or as `%2F`)."""
        with held.writing() as gallery:
            count = gallery.remove(name)
        return {"removed": name, "samples": count}

    kept_reads = needs_token if settings.discover_keep else open_access  # kept answers: other clients' uploads
    discover.install(app, service, kept_reads, needs_token)
    page.install(app)  # the page at / and the offline API page at /docs (attrib/serve/page.py)
    return app


def read_uploads(files: list[UploadFile], settings: ServeSettings, decoding: bool) -> list[Upload]:
    """The uploads' names and bytes; 413 for an image over the pixel limit and, for uploads decoded together
    (``decoding``: identify and verify), for images over the request's pixel limit together, judged from
    their headers before any is decoded. (Enroll decodes its files in turn, within the loader's own bound.)"""
    uploads = []
    for position, file in enumerate(files):
        name, data = upload_name(file.filename, position), file.file.read()
        problem, pixels = pixel_problem(name, data, settings.max_image_pixels)
        if problem:
            raise HTTPException(413, problem)
        uploads.append(Upload(name, data, pixels))
    total = sum(upload.pixels for upload in uploads)
    if decoding and (problem := request_pixel_problem(total, len(uploads), settings.max_request_pixels)):
        raise HTTPException(413, problem)
    return uploads


def answer(records: list[dict[str, Any]]) -> JSONResponse:
    """``{"results": records}`` (plain JSON already: sent as it is); 422 with the first error as the
    detail when an image could not be read."""
    error = next((r["error"] for r in records if r.get("error")), None)
    if error is not None:
        return JSONResponse({"detail": error, "results": records}, status_code=422)
    return JSONResponse({"results": records})


def app_from_environment() -> "FastAPI":
    """The app for ``$ATTRIB_GALLERY`` with the settings of the environment: what each ``attrib serve``
    worker builds (uvicorn's factory)."""
    from .settings import GALLERY_ENV

    location = os.environ.get(GALLERY_ENV, "")
    if not location.strip():
        raise AttribError(f"{GALLERY_ENV} is not set; start the server with `attrib --gallery DIR serve`")
    return create_app(location)
