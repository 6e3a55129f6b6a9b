"""The images to group, embedded once and placed in the gallery's own space.

Each image is decoded and embedded by every extractor of the call, then scored against every enrolled
generator by :meth:`attrib.gallery.Gallery.identify`, as the gallery scores any query (the embeddings are
reused, never computed twice). For grouping, each extractor's vectors go through that extractor's stored
whitening (:attr:`attrib.upkeep.freshness.LoadedIndex.whitening`, the space its index searches) and, with
several extractors, are concatenated with each block scaled by the square root of its fusion weight
(:func:`attrib.scoring.fusion.fusion_weights`): the cosine of two fused vectors is then the weighted
mean of the extractors' cosines, the quantity fusion weighs. The *reference* of that space is the same
weighted mean of the extractors' global thresholds: the similarity at which the gallery starts to accept.

:func:`embed_pool` does all of it for files; :func:`place_pool` places embeddings made already (``attrib
serve`` keeps those of its recent unknown answers, :mod:`attrib.serve.discover`), taking each image's scores
against the enrolled generators from the enrolled samples themselves. Reference photographs are embedded
once by :func:`embed_photos` and placed by :func:`place_photos` (again whenever the gallery's whitening may
have changed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import AttribError
from ..extractors.contract import BoundExtractor
from ..extractors.cached import CachedExtractor
from ..gallery import Gallery
from ..images import LoadedImage, display_path, load_batches
from ..scoring import DEFAULT_TARGET_FAR
from ..scoring.fusion import fusion_weights
from ..upkeep.freshness import LoadedIndex

Advance = Callable[[int], None]


@dataclass
class PoolImage:
    """One image to group: its file, what the file says, and how the gallery scores it."""

    path: str
    sha256: str
    decision: str | None = None  # identify's answer for it now
    nearest: str | None = None  # the best-scoring enrolled generator
    margin: float | None = None  # its score minus its threshold (< 0: below every threshold)
    scores: dict[str, tuple[float, float]] = field(default_factory=dict)  # generator -> (score, threshold)
    evidence: list[dict[str, Any]] = field(default_factory=list)  # attrib.evidence items, as dicts
    label: str | None = None  # the true label, known only in an evaluation
    file: Path | None = field(default=None, repr=False, compare=False)  # the file as given (``path`` is printable)


@dataclass
class Pool:
    """Images embedded in the gallery's whitened (fused) space; row ``i`` of ``vectors`` is ``images[i]``."""

    images: list[PoolImage]
    vectors: np.ndarray  # [n, D] unit vectors
    reference: float  # the (fused) global threshold: the similarity at which the gallery starts to accept
    extractor: str  # "residual@..." or "a+b" keys
    weights: dict[str, float]
    anchors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))  # enrolled samples, same space
    anchor_generators: list[str] = field(default_factory=list)  # the generator of each anchor row
    thresholds: dict[str, float] = field(default_factory=dict)  # each generator's threshold in this space
    photo_references: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))  # camera photos
    errors: list[tuple[str, str]] = field(default_factory=list)  # (path, why) of files that could not be used
    target_far: float = DEFAULT_TARGET_FAR  # the false-accept rate the gallery's thresholds were calibrated at
    cohort_photo_like: np.ndarray | None = None  # per image: photo-like against the cohort (None: no extractor judges)
    photo_judges: dict[str, float] = field(default_factory=dict)  # extractor key -> photos.judges_photographs share


def embed_pool(gallery: Gallery, extractors: Sequence[BoundExtractor], paths: Sequence[Path | str],
               advance: Advance = lambda n: None, evidence: bool = True, labels: dict[str, str] | None = None,
               photos: Sequence[Path | str] = ()) -> Pool:
    """Embed ``paths`` with ``extractors`` and score them against every enrolled generator of ``gallery``
    (see the module docstring); ``photos`` (camera photographs for reference, never grouped) are placed in
    the same space. A file that cannot be used is listed in ``errors``."""
    if not extractors:
        raise AttribError("discovery needs at least one extractor")
    cached = [CachedExtractor(e) for e in extractors]
    inspect = None
    if evidence:
        from ..evidence.read import file_inspector

        inspect = file_inspector()
    images, rows, errors = _embed(cached, paths, inspect, advance, labels or {})
    if not images:
        raise AttribError("none of the images could be used" + (f": {errors[0][0]}: {errors[0][1]}" if errors else ""))
    pool = place_pool(gallery, extractors, images, [np.concatenate(out) for out in rows], errors)
    _score(gallery, cached, images, len(pool.thresholds))
    if photos:
        references = embed_photos(cached, photos)
        pool.photo_references = place_photos(gallery, extractors, references)
        pool.errors += references.errors
    return pool


@dataclass
class PhotoReferences:
    """Reference photographs embedded by each extractor, as the extractors returned them: :func:`place_photos`
    places them in a gallery's space as it stands then."""

    rows: list[np.ndarray]  # one [n, d] array per extractor
    errors: list[tuple[str, str]] = field(default_factory=list)  # (path, "photo reference: why") of unusable files

    def __len__(self) -> int:
        return len(self.rows[0]) if self.rows else 0


def embed_photos(extractors: Sequence[BoundExtractor | CachedExtractor],
                 paths: Sequence[Path | str]) -> PhotoReferences:
    """The reference photographs ``paths`` (files, read once) embedded by each of ``extractors``; a file that
    cannot be used is listed in ``errors``."""
    _, rows, errors = _embed(list(extractors), paths, None, lambda n: None, {})
    return PhotoReferences([np.concatenate(out) if out else np.zeros((0, e.dim), np.float32)
                            for e, out in zip(extractors, rows)],
                           [(path, f"photo reference: {why}") for path, why in errors])


def place_photos(gallery: Gallery, extractors: Sequence[BoundExtractor], references: PhotoReferences) -> np.ndarray:
    """``references`` placed in ``gallery``'s whitened (fused) space as it stands now, as :func:`place_pool`
    places images (the ``photo_references`` of a :class:`Pool`); an empty array when there are none."""
    if not len(references):
        return np.zeros((0, 0), np.float32)
    views = [gallery.open_index(e) for e in extractors]
    return _place(views, fusion_weights(views), references.rows)


def place_pool(gallery: Gallery, extractors: Sequence[BoundExtractor], images: list[PoolImage],
               embeddings: Sequence[np.ndarray], errors: list[tuple[str, str]] | None = None) -> Pool:
    """The pool of ``images``, whose embeddings by each of ``extractors`` are ``embeddings[e]`` (one row per
    image, as the extractor returned them), placed in ``gallery``'s whitened (fused) space beside its
    enrolled samples, with its thresholds (see the module docstring)."""
    if not extractors:
        raise AttribError("discovery needs at least one extractor")
    if any(len(rows) != len(images) for rows in embeddings) or len(embeddings) != len(extractors):
        raise ValueError(f"{len(images)} images but embeddings of shapes {[np.shape(r) for r in embeddings]} "
                         f"for {len(extractors)} extractors")
    views = [gallery.open_index(e) for e in extractors]
    weights = fusion_weights(views)
    vectors = _place(views, weights, embeddings)
    reference = float(sum(w * view.threshold(None) for w, view in zip(weights, views)))
    anchors, anchor_generators = enrolled_vectors(views, weights, vectors.shape[1])
    thresholds = {name: float(sum(w * view.threshold(gid) for w, view in zip(weights, views)))
                  for gid, name in views[0].generator_names.items()}
    key = "+".join(e.identity.key for e in extractors)
    target_far = views[0].target_far or DEFAULT_TARGET_FAR
    like, judges = cohort_photo_likeness(gallery, extractors, views, embeddings)
    return Pool(images, vectors, reference, key, {e.identity.key: round(float(w), 4) for e, w in zip(extractors, weights)},
                anchors, anchor_generators, thresholds, errors=list(errors or []), target_far=target_far,
                cohort_photo_like=like, photo_judges=judges)


def cohort_photo_likeness(gallery: Gallery, extractors: Sequence[BoundExtractor], views: Sequence[LoadedIndex],
                          embeddings: Sequence[np.ndarray]) -> tuple[np.ndarray | None, dict[str, float]]:
    """Per image, whether it is photo-like against the cohort in every extractor that judges photographs
    (:mod:`attrib.discovery.photos`; None when none does), and each extractor's share
    (:func:`attrib.discovery.photos.judges_photographs`; absent for one whose gallery has no usable cohort)."""
    from .photos import (COHORT_JUDGE, cohort_sources, judges_photographs, linear_photo_likeness,
                         nearest_is_photographs)

    like: np.ndarray | None = None
    judges: dict[str, float] = {}
    for extractor, view, rows in zip(extractors, views, embeddings):
        stored = gallery.cohort(view)
        sources = None if stored is None else cohort_sources(len(stored))
        if stored is None or sources is None:
            continue
        cohort = _unit(view.whitening.apply(stored))
        judges[extractor.identity.key] = share = round(judges_photographs(cohort, *sources), 4)
        if share >= COHORT_JUDGE:
            placed = _unit(view.whitening.apply(np.asarray(rows)))
            enrolled, _ = enrolled_vectors([view], np.ones(1), placed.shape[1])
            here = (nearest_is_photographs(placed, cohort, sources[0])
                    | linear_photo_likeness(placed, cohort, sources[0], enrolled))
            like = here if like is None else like & here
    return like, judges


def _unit(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, np.float32)
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


def _embed(cached: Sequence[BoundExtractor | CachedExtractor], paths: Sequence[Path | str], inspect: Any,
           advance: Advance, labels: dict[str, str]) -> tuple[list[PoolImage], list[list[np.ndarray]], list[tuple[str, str]]]:
    images: list[PoolImage] = []
    rows: list[list[np.ndarray]] = [[] for _ in cached]
    errors: list[tuple[str, str]] = []
    for chunk in load_batches(list(paths), inspect=inspect):
        loaded = [item for item in chunk if isinstance(item, LoadedImage)]
        errors += [(display_path(item[0]), item[1]) for item in chunk if not isinstance(item, LoadedImage)]
        if not loaded:
            continue
        for extractor, out in zip(cached, rows):
            out.append(extractor.embed([item.require_pixels() for item in loaded]))
        for item in loaded:
            images.append(PoolImage(display_path(item.path), item.sha256, label=labels.get(str(item.path)),
                                    evidence=[e.to_dict() for e in item.evidence], file=item.path))
        advance(len(loaded))
    return images, rows, errors


def _place(views: Sequence[LoadedIndex], weights: np.ndarray, rows: Sequence[np.ndarray]) -> np.ndarray:
    """Each extractor's vectors whitened as its index is, weighted and joined (unit rows)."""
    blocks = [np.sqrt(w) * view.whitening.apply(np.asarray(out)) for w, view, out in zip(weights, views, rows)]
    return _unit(np.hstack(blocks))


def enrolled_vectors(views: Sequence[LoadedIndex], weights: np.ndarray, dim: int) -> tuple[np.ndarray, list[str]]:
    """Every enrolled sample in the pool's space, with its generator's name. With several extractors a
    generator's vectors are joined by position (each extractor stores a generator's samples in the order
    they were enrolled); a generator that some extractor holds fewer vectors of is left out."""
    names = views[0].generator_names
    rows, owners = [], []
    for gid, name in sorted(names.items()):
        per_view = [view.generator_vectors(gid) for view in views]
        counts = {len(v) for v in per_view}
        if len(counts) != 1 or not counts.pop():
            continue
        block = np.hstack([np.sqrt(w) * v for w, v in zip(weights, per_view)])
        rows.append(block)
        owners += [name] * len(block)
    if not rows:
        return np.zeros((0, dim), np.float32), []
    matrix = np.concatenate(rows).astype(np.float32)
    matrix /= np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    return matrix, owners


def _score(gallery: Gallery, cached: list[CachedExtractor], images: list[PoolImage], generators: int) -> None:
    """Fill in each image's decision and its score against every generator, through ``Gallery.identify``
    (the embeddings come from the cache that :func:`embed_pool` filled)."""
    bound: Any = cached if len(cached) > 1 else cached[0]
    results = gallery.identify([image.file or Path(image.path) for image in images], bound, top_k=max(generators, 1), evidence=False)
    for image, result in zip(images, results):
        if result.error:
            continue
        image.decision = result.decision
        image.scores = {c.generator: (round(c.score, 6), round(c.threshold, 6)) for c in result.candidates}
        if result.candidates:
            best = result.candidates[0]
            image.nearest, image.margin = best.generator, round(best.margin, 6)


def subset(pool: Pool, rows: Sequence[int]) -> Pool:
    """The pool of ``rows`` of ``pool`` only (the same space, anchors and references)."""
    rows = list(rows)
    like = None if pool.cohort_photo_like is None else pool.cohort_photo_like[rows]
    return Pool([pool.images[i] for i in rows], pool.vectors[rows], pool.reference, pool.extractor, pool.weights,
                pool.anchors, pool.anchor_generators, pool.thresholds, pool.photo_references, pool.errors,
                pool.target_far, like, pool.photo_judges)
