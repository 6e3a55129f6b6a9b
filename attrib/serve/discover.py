"""``attrib serve --discover N``: the worker's recent ``unknown`` answers, grouped into candidate generators.

With ``discover_keep`` (``ATTRIB_DISCOVER_KEEP``, ``attrib serve --discover N``; 0, the default, turns it off)
each worker keeps in memory its last ``N`` identify answers that were ``unknown`` (:class:`UnknownAnswers`):
per image, its embedding by each bound extractor (as the extractor returned it, so that it is placed in the
gallery's space as it stands when grouped), a WebP thumbnail of at most 128 px, the uploaded name, the
sha256, the few evidence fields the photograph check reads, and the uploaded bytes while they fit
``KEEP_BYTES`` each and ``BYTES_BUDGET`` together (the oldest give theirs up first). No upload is written to
disk for it. The same image (sha256) is kept once; beyond ``N`` the oldest is dropped. So a worker holds at
most ``BYTES_BUDGET`` of uploads plus, per kept answer, a thumbnail (16 KiB for pure noise), its embeddings
(4 bytes a dimension) and under 1 KiB of names and fields, plus the member sha256s of the last ``OFFERED``
candidates (under 4 MiB): under 150 MiB with ``N = MOST_KEPT`` and extractors of a few hundred dimensions.

``GET /v1/discover`` groups the kept answers with :mod:`attrib.discovery` in the gallery's current space
and answers the JSON of ``attrib discover --json`` (with ``thumbnails=true``, each candidate member's
thumbnail as a ``data:`` URL). ``POST /v1/discover/enroll`` (needs the token) enrolls a candidate offered by
a recent ``GET``, named by its digest, from the kept bytes of its members, as ``POST /v1/enroll`` enrolls
uploads. Reads need the token exactly when the API's reads do. Both routes are outside the published
OpenAPI description (the answer is the documented candidates JSON, docs/discovery.md). ``GET /discover`` is
the page. Each worker keeps its own answers: ``attrib serve --discover`` runs one worker. With
``discover_photos`` (``ATTRIB_DISCOVER_PHOTOS``, ``--discover-photos DIR``) the photographs in that folder are
embedded once per worker and placed in the gallery's space at each grouping, as the reference photographs of
``attrib discover --photos DIR`` (:mod:`attrib.discovery.photos`).
(This module keeps its annotations evaluated: FastAPI reads those of the routes that :func:`install` defines.)
"""

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Callable, Protocol, Sequence

import numpy as np
from fastapi import APIRouter, Depends, FastAPI, Form, HTTPException, Query
from fastapi.responses import JSONResponse, Response

from ..discovery.candidates import PHOTOGRAPHS, Discovery, Settings, discover
from ..discovery.clustering import MIN_CLUSTER_SIZE, MIN_TIGHTNESS, clustering_available
from ..discovery.photos import photo_evidence
from ..discovery.space import PhotoReferences, PoolImage, embed_photos, place_photos, place_pool
from ..enrollment import make_thumbnail
from ..errors import AttribError
from ..extractors.contract import BoundExtractor, extractor_list
from ..gallery import Gallery
from ..images import Loaded, LoadedImage, display_path, iter_image_files
from ..scoring.decision import UNKNOWN
from .page import PAGE_HEADERS, STATIC, asset_bytes, data_url
from .settings import DISCOVER_KEEP_ENV, DISCOVER_PHOTOS_ENV, MOST_DISCOVER_KEEP, ServeSettings
from .uploads import Upload, UploadFolder, stored_as




class Service(Protocol):
    """What discovery uses of the worker's :class:`attrib.serve.app.Service`."""

    settings: ServeSettings
    uploads: UploadFolder
    unknowns: "UnknownAnswers"

    def reading(self) -> Gallery: ...

    def writing(self) -> Gallery: ...

    def extractor_key(self) -> str: ...


MOST_KEPT = MOST_DISCOVER_KEEP  # the largest N a worker keeps
KEEP_BYTES = 8 * 1024 * 1024  # an upload larger than this keeps no bytes: grouped and shown, not enrollable here
BYTES_BUDGET = 128 * 1024 * 1024  # the kept uploads' bytes together, at most
OFFERED = 64  # candidates of recent GETs that an enroll may name
NAME_CHARS = 200  # of an uploaded name kept
OFF = (f"discovery is off on this server: start it with `attrib serve --discover N` (or {DISCOVER_KEEP_ENV}=N) "
       "to keep the last N unknown answers and group them")
log = logging.getLogger("attrib.serve")
Submit = Callable[[Any, list[Loaded]], list[Any]]


@dataclass
class KeptAnswer:
    """One ``unknown`` answer as the worker keeps it (see the module docstring)."""

    name: str
    sha256: str
    embeddings: tuple[np.ndarray, ...]  # one float32 row per bound extractor
    thumbnail: bytes | None
    evidence: list[dict[str, Any]]  # photo_evidence of the upload's evidence
    data: bytes | None  # the uploaded bytes; None when over KEEP_BYTES or given up for BYTES_BUDGET


@dataclass(frozen=True)
class Offered:
    """A candidate a GET offered: what an enroll of it needs."""

    id: str
    kind: str
    members: tuple[str, ...]  # sha256s


class UnknownAnswers:
    """The last ``limit`` unknown identify answers of one worker (none when ``limit`` is 0)."""

    def __init__(self, limit: int, identifier: BoundExtractor | Sequence[BoundExtractor],
                 photos: Path | None = None) -> None:
        if not 0 <= limit <= MOST_KEPT:
            raise AttribError(f"{DISCOVER_KEEP_ENV}={limit} is out of range; keep 0 (off) to {MOST_KEPT} answers")
        if limit and not clustering_available():
            raise AttribError(f"{DISCOVER_KEEP_ENV}={limit} needs scikit-learn to group the answers: "
                              "pip install 'attrib[eval]', or set it to 0")
        if photos is not None and not limit:
            raise AttribError(f"{DISCOVER_PHOTOS_ENV}={photos} gives discovery reference photographs, but discovery "
                              f"is off: turn it on with --discover N ({DISCOVER_KEEP_ENV}=N), or unset it")
        self.limit = limit
        self.extractors = extractor_list(identifier)
        self.photos = reference_photos(photos, self.extractors) if photos is not None else None
        self._kept: OrderedDict[str, KeptAnswer] = OrderedDict()
        self._offered: OrderedDict[str, Offered] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.grouping = threading.Lock()  # one grouping at a time: each may cluster every enrolled sample

    @property
    def enabled(self) -> bool:
        return self.limit > 0

    def answered(self, key: tuple[Any, ...], uploads: list[Upload], images: list[Loaded], submit: Submit) -> list[Any]:
        """``submit(key, images)``'s results; when on and ``key`` is an identify, the unknown ones kept first."""
        if not self.enabled or key[0] != "identify":
            return submit(key, images)
        pixels = [item[1].pixels if isinstance(item[1], LoadedImage) else None for item in images]  # dropped in the call
        results = submit(key, images)
        try:
            self._keep(uploads, images, pixels, results)
        except Exception:  # noqa: BLE001 - keeping for discovery never changes an identify answer
            log.exception("could not keep unknown answers for discovery")
        return results

    def _keep(self, uploads: list[Upload], images: list[Loaded], pixels: list[np.ndarray | None],
              results: list[Any]) -> None:
        chosen = [i for i, result in enumerate(results)
                  if result.error is None and result.decision == UNKNOWN and pixels[i] is not None]
        arrays = [p for p in (pixels[i] for i in chosen) if p is not None]
        if not arrays:
            return
        rows = [np.asarray(bound.embed(arrays), np.float32) for bound in self.extractors]
        for n, i in enumerate(chosen):
            loaded = images[i][1]
            assert isinstance(loaded, LoadedImage)
            data = uploads[i].data if len(uploads[i].data) <= KEEP_BYTES else None
            answer = KeptAnswer(uploads[i].name[:NAME_CHARS], loaded.sha256, tuple(r[n].copy() for r in rows),
                                make_thumbnail(arrays[n]).data, photo_evidence([e.to_dict() for e in loaded.evidence]), data)
            self._add(answer)

    def _add(self, answer: KeptAnswer) -> None:
        with self._lock:
            old = self._kept.pop(answer.sha256, None)
            if old is not None and old.data is not None:
                self._bytes -= len(old.data)
            self._kept[answer.sha256] = answer
            self._bytes += len(answer.data) if answer.data is not None else 0
            while len(self._kept) > self.limit:
                _, dropped = self._kept.popitem(last=False)
                self._bytes -= len(dropped.data) if dropped.data is not None else 0
            for kept in self._kept.values():  # oldest first
                if self._bytes <= BYTES_BUDGET:
                    break
                if kept.data is not None:
                    self._bytes -= len(kept.data)
                    kept.data = None

    def kept(self) -> list[KeptAnswer]:
        """The kept answers, oldest first."""
        with self._lock:
            return list(self._kept.values())

    def kept_bytes(self) -> int:
        with self._lock:
            return self._bytes

    def group(self, service: Service, settings: Settings, thumbnails: bool = False) -> dict[str, Any]:
        """The candidates among the kept answers (the JSON of ``attrib discover --json``), remembered for
        :meth:`enroll`."""
        if not self.enabled:
            raise HTTPException(404, OFF)
        kept = self.kept()
        with self.grouping:
            found = self._discover(service, kept, settings)
            with self._lock:
                for candidate in found.candidates if found else []:
                    self._offered.pop(candidate.digest, None)
                    self._offered[candidate.digest] = Offered(candidate.id, candidate.kind,
                                                              tuple(m["sha256"] for m in candidate.members))
                while len(self._offered) > OFFERED:
                    self._offered.popitem(last=False)
        by_sha = {answer.sha256: answer for answer in kept}
        context = {"gallery": None, "records": None,  # where the gallery is stays on the server
                   "answers": {"kept": len(kept), "limit": self.limit,
                               "enrollable": sum(a.data is not None for a in kept)}}
        data = found.to_json() if found else _empty(service, settings)
        data = {"schema": data.pop("schema"), "kind": data.pop("kind"), **context, **data}
        for candidate in data["candidates"]:
            for member in candidate["members"]:
                answer = by_sha.get(member["sha256"])
                member["enrollable"] = answer is not None and answer.data is not None
                if thumbnails:
                    member["thumbnail"] = data_url(answer.thumbnail) if answer and answer.thumbnail else None
        return data

    def _discover(self, service: Service, kept: list[KeptAnswer], settings: Settings) -> Discovery | None:
        if not kept:
            return None
        images = [PoolImage(a.name, a.sha256, decision=UNKNOWN, evidence=a.evidence) for a in kept]
        embeddings = [np.stack([a.embeddings[e] for a in kept]) for e in range(len(self.extractors))]
        with service.reading() as gallery:
            pool = place_pool(gallery, self.extractors, images, embeddings)
            if self.photos is not None:  # placed anew each time: the gallery's whitening moves as it grows
                pool.photo_references = place_photos(gallery, self.extractors, self.photos)
        return discover(pool, settings)

    def enroll(self, service: Service, digest: str, generator: str, family: str | None, note: str | None,
               force: bool) -> dict[str, Any]:
        """Enroll the offered candidate ``digest`` (or a prefix of 6 or more) under ``generator`` from its
        members' kept bytes: what ``POST /v1/enroll`` answers, with ``candidate`` and the members whose bytes
        are no longer kept (``not_kept``). The answers enrolled (or enrolled already) are no longer kept."""
        if not self.enabled:
            raise HTTPException(404, OFF)
        digest = digest.strip().lower()
        listed: list[KeptAnswer | None] = []
        members: list[tuple[KeptAnswer, bytes]] = []
        with self._lock:
            named = [(d, o) for d, o in self._offered.items() if d == digest or (len(digest) >= 6 and d.startswith(digest))]
            if len(named) == 1:
                listed = [self._kept.get(sha) for sha in named[0][1].members]
                members = [(a, a.data) for a in listed if a is not None and a.data is not None]  # their bytes now
        if len(named) != 1:
            raise HTTPException(409, f"no candidate {digest[:40]!r} among those offered lately; GET /v1/discover "
                                     "again and name a candidate by its digest")
        digest, offered = named[0]
        if offered.kind == PHOTOGRAPHS and not force:
            raise HTTPException(409, f"candidate {digest} is labelled photographs (camera photos, not a generator); "
                                     "send force=true to enroll it anyway")
        enrollable = {a.sha256 for a, _ in members}
        missing = [(sha, a.name if a is not None else None) for sha, a in zip(offered.members, listed)
                   if sha not in enrollable]
        if not members:
            raise HTTPException(409, f"none of the {len(offered.members)} images of candidate {digest} is kept any "
                                     "more (dropped for newer answers or too large); enroll them with POST /v1/enroll")
        uploads = [Upload(a.name, data) for a, data in members]
        note = note or f"discovered: candidate {offered.id} ({digest}) of attrib serve's unknown answers"
        with service.uploads.written(uploads) as saved, service.writing() as gallery:
            report = gallery.enroll(generator, [f.path for f in saved], self.extractors, family=family, note=note,
                                    stored_as=stored_as(saved, service.settings.uploads_dir))
        names = {f.shown: f.name for f in saved}
        summary = report.to_json(service.extractor_key(), lambda shown: names.get(shown, shown))
        failed = {f.shown for f in saved} & {path for path, _ in report.failed}
        with self._lock:
            enrolled = {a.sha256 for f, (a, _) in zip(saved, members) if f.shown not in failed}
            for sha in enrolled & set(self._kept):
                dropped = self._kept.pop(sha)
                self._bytes -= len(dropped.data) if dropped.data is not None else 0
            self._offered.pop(digest, None)
        return {**summary, "candidate": digest,
                "not_kept": [{"sha256": sha, "path": name} for sha, name in missing]}


def reference_photos(folder: Path, extractors: Sequence[BoundExtractor]) -> PhotoReferences:
    """The camera photographs in ``folder`` embedded by ``extractors``, once per worker; AttribError naming
    the folder when it holds none that can be used (an unusable file among usable ones is logged)."""
    found = list(iter_image_files([folder])) if folder.is_dir() else []
    if not found:
        what = "holds no image files" if folder.is_dir() else "is not a folder"
        raise AttribError(f"{DISCOVER_PHOTOS_ENV}={display_path(folder)} {what}: point --discover-photos at a "
                          "folder of camera photographs, or leave it out")
    references = embed_photos(extractors, found)
    if not len(references):
        path, why = references.errors[0]
        raise AttribError(f"{DISCOVER_PHOTOS_ENV}={display_path(folder)}: none of its {len(found)} files could be "
                          f"used ({path}: {why})")
    for path, why in references.errors:
        log.warning("discovery leaves out %s: %s", path, why)
    log.info("discovery: %d reference photographs from %s", len(references), display_path(folder))
    return references


def _empty(service: Service, settings: Settings) -> dict[str, Any]:
    """The candidates JSON of no images."""
    return {"schema": 1, "kind": "attrib-discovery", "extractor": service.extractor_key(), "weights": None,
            "reference": None, "settings": settings.to_json(), "images": 0, "photo_references": 0,
            "photo_judges": {},
            "counts": {"candidates": 0, "photographs": 0, "in_candidates": 0, "near_enrolled": 0, "let_go": 0,
                       "one_offs": 0},
            "candidates": [], "near_enrolled": {}, "let_go": {}, "one_offs": [], "errors": []}


def install(app: FastAPI, service: Callable[..., Service], reader: Callable[..., None],
            writer: Callable[..., None]) -> None:
    """Add the discover routes to ``app``: ``service`` is the worker's Service dependency, ``reader`` and
    ``writer`` the token guards of reads and writes (the writer's routes are then also gated before their body
    is read, :class:`attrib.serve.auth.TokenGate`)."""
    router = APIRouter(include_in_schema=False)
    Held = Annotated[Any, Depends(service)]
    Reader = Annotated[None, Depends(reader)]
    Writer = Annotated[None, Depends(writer)]

    @router.get("/v1/discover", response_model=None)
    def candidates(_: Reader, held: Held,
                   min_cluster_size: Annotated[int, Query(ge=2, le=MOST_KEPT)] = MIN_CLUSTER_SIZE,
                   min_samples: Annotated[int | None, Query(ge=1, le=MOST_KEPT)] = None,
                   min_tightness: Annotated[float, Query(ge=-2.0, le=2.0)] = MIN_TIGHTNESS,
                   thumbnails: bool = False) -> dict[str, Any]:
        """The kept unknown answers grouped into candidates: the JSON of `attrib discover --json`; 404 when
        discovery is off."""
        return held.unknowns.group(held, Settings(min_cluster_size, min_samples, min_tightness), thumbnails)

    @router.post("/v1/discover/enroll", response_model=None)
    def enroll(_: Writer, held: Held, candidate: Annotated[str, Form(min_length=6, max_length=64)],
               generator: Annotated[str, Form(min_length=1)], family: Annotated[str | None, Form()] = None,
               note: Annotated[str | None, Form()] = None, force: Annotated[bool, Form()] = False
               ) -> JSONResponse | dict[str, Any]:
        """Enroll candidate `candidate` (its digest) of a recent GET /v1/discover under `generator` (needs the
        token): the summary of POST /v1/enroll; 409 when it is no longer offered or none of its images is kept,
        422 when an image could not be enrolled."""
        summary = held.unknowns.enroll(held, candidate, generator, family, note, force)
        if summary["failed"]:
            return JSONResponse({"detail": summary["failed"][0]["error"], **summary}, status_code=422)
        return summary

    @router.get("/discover")
    def discover_page() -> Response:
        return Response(asset_bytes("discover.html"), media_type="text/html; charset=utf-8",
                        headers=PAGE_HEADERS)

    @router.get("/discover/discover.js")
    def discover_script() -> Response:
        return Response((STATIC / "discover.js").read_bytes(), media_type="text/javascript; charset=utf-8",
                        headers=PAGE_HEADERS)

    app.include_router(router)

