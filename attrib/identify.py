"""Identification and verification of query images against a gallery."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from . import index as faiss_index
from . import scoring
from .errors import AttribError, UnknownGenerator
from .extractor import BoundExtractor
from .fusion import fit_fusion
from .images import BATCH, LoadedImage, load_images
from .view import GalleryReader, IndexView  # a Gallery works too: both have open_index

EXACT_SEARCH_LIMIT = 4096
UNKNOWN = "unknown"


@dataclass
class Result:
    """One input's outcome: scores and a decision, or an error."""

    path: str
    sha256: str | None = None
    decision: str | None = None
    generator: str | None = None
    score: float | None = None
    threshold: float | None = None
    candidates: list[dict] = field(default_factory=list)
    extractor: str | None = None
    error: str | None = None

    def to_json(self) -> dict:
        if self.error is not None:
            return {"path": self.path, "error": self.error}
        return {
            "path": self.path,
            "sha256": self.sha256,
            "decision": self.decision,
            "generator": self.generator,
            "score": self.score,
            "threshold": self.threshold,
            "candidates": self.candidates,
            "extractor": self.extractor,
        }


@dataclass
class Verification:
    path: str
    generator: str
    sha256: str | None = None
    score: float | None = None
    threshold: float | None = None
    match: bool | None = None
    extractor: str | None = None
    error: str | None = None

    def to_json(self) -> dict:
        if self.error is not None:
            return {"path": self.path, "generator": self.generator, "error": self.error}
        return {
            "path": self.path,
            "sha256": self.sha256,
            "generator": self.generator,
            "score": self.score,
            "threshold": self.threshold,
            "match": self.match,
            "extractor": self.extractor,
        }


def score_queries(view: IndexView, queries: np.ndarray) -> list[dict[int, float]]:
    """Per-generator scores for each query vector."""
    ntotal = view.index.ntotal
    n_generators = max(1, len(np.unique(view.generator_ids)))
    k = ntotal if ntotal <= EXACT_SEARCH_LIMIT else max(256, 8 * scoring.TOP_M * n_generators)
    sims, ids = faiss_index.search(view.index, view.backend.apply(queries), k)
    out = []
    for row_sims, row_ids in zip(sims, ids):
        valid = row_ids >= 0
        gens = view.generators_of(row_ids[valid])
        keep = gens >= 0
        out.append(scoring.generator_scores(row_sims[valid][keep], gens[keep]))
    return out


def load_batches(paths: Iterable[Path], batch: int = BATCH) -> Iterator[list[LoadedImage | tuple[Path, str]]]:
    """Group decoded images (or (path, error) pairs) into batches, keeping input order."""
    chunk: list[LoadedImage | tuple[Path, str]] = []
    for path, loaded in load_images(paths):
        chunk.append(loaded if isinstance(loaded, LoadedImage) else (path, str(loaded)))
        if len(chunk) >= batch:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _embed_chunk(extractor: BoundExtractor, chunk) -> np.ndarray:
    images = [item.pixels for item in chunk if isinstance(item, LoadedImage)]
    return extractor.embed(images) if images else np.zeros((0, extractor.dim), np.float32)


def identify(
    gallery: GalleryReader, extractor: BoundExtractor | Sequence[BoundExtractor], paths: Iterable[Path], top_k: int = 3
) -> Iterator[Result]:
    """Yield one Result per input path, in order.

    With several extractors the scores are fused (:mod:`attrib.fusion`): each generator's
    score is a weighted mean over extractors of (score - that extractor's global
    calibrated threshold); the best generator is accepted when that reaches its fused
    threshold, calibrated on held-out fused scores of the enrolled samples.
    """
    if top_k < 1:
        raise AttribError(f"--top-k must be at least 1, got {top_k}")
    extractors = list(extractor) if isinstance(extractor, (list, tuple)) else [extractor]
    views = [gallery.open_index(e) for e in extractors]
    key = "+".join(e.identity.key for e in extractors)
    fusion = fit_fusion(gallery.root, views) if len(views) > 1 else None
    for chunk in load_batches(paths):
        per_extractor = []
        for bound, view in zip(extractors, views):
            matrix = _embed_chunk(bound, chunk)
            per_extractor.append(score_queries(view, matrix) if len(matrix) else [])
        position = 0
        for item in chunk:
            if not isinstance(item, LoadedImage):
                yield Result(path=str(item[0]), error=item[1])
                continue
            scores = [s[position] for s in per_extractor]
            position += 1
            if fusion is None:
                ranked, threshold_of = scores[0], views[0].threshold
            else:
                ranked, threshold_of = fusion.rank(scores), fusion.threshold
            yield decide(views[0].generator_names, ranked, threshold_of, str(item.path), item.sha256, key, top_k)


def decide(
    names: dict[int, str],
    scores: dict[int, float],
    threshold_of: Callable[[int], float],
    path: str,
    sha256: str,
    key: str,
    top_k: int,
) -> Result:
    """Rank generators and apply the best one's calibrated threshold."""
    ranked = sorted(scores.items(), key=lambda kv: -kv[1])
    candidates = [{"generator": names[g], "score": round(s, 6)} for g, s in ranked[:top_k]]
    best_gid, best = ranked[0]
    threshold = threshold_of(best_gid)
    name = names[best_gid]
    return Result(
        path=path,
        sha256=sha256,
        decision=name if best >= threshold else UNKNOWN,
        generator=name,
        score=round(best, 6),
        threshold=round(threshold, 6),
        candidates=candidates,
        extractor=key,
    )


def verify(
    gallery: GalleryReader, extractor: BoundExtractor, generator: str, paths: Iterable[Path]
) -> Iterator[Verification]:
    """Yield one Verification per input path: is it from ``generator``?"""
    view = gallery.open_index(extractor)
    by_name = {name: gid for gid, name in view.generator_names.items()}
    if generator not in by_name:
        known = ", ".join(sorted(by_name)) or "none"
        raise UnknownGenerator(f"generator {generator!r} is not enrolled (enrolled: {known}); see `attrib gallery list`")
    gid = by_name[generator]
    own = view.generator_vectors(gid)
    if len(own) == 0:
        raise UnknownGenerator(
            f"generator {generator!r} has no samples embedded with {extractor.identity.key}; run "
            f"`attrib gallery reembed --extractor {extractor.name}`"
        )
    threshold = view.threshold(gid)
    for chunk in load_batches(paths):
        vectors = iter(_embed_chunk(extractor, chunk))
        for item in chunk:
            if not isinstance(item, LoadedImage):
                yield Verification(path=str(item[0]), generator=generator, error=item[1])
                continue
            score = scoring.aggregate(own @ view.backend.apply(next(vectors)[None])[0])
            yield Verification(
                path=str(item.path),
                generator=generator,
                sha256=item.sha256,
                score=round(score, 6),
                threshold=round(threshold, 6),
                match=bool(score >= threshold),
                extractor=extractor.identity.key,
            )

