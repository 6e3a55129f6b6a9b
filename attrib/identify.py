"""Identification and verification of query images against a gallery."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from . import index as faiss_index, scoring
from .errors import AttribError, UnknownGenerator
from .extractor import BoundExtractor
from .images import BATCH, LoadedImage, load_image
from .view import GalleryReader, IndexView  # a Gallery works too: both have open_index

EXACT_SEARCH_LIMIT = 4096
UNKNOWN = "unknown"
FUSION_POWER = 4  # fusion weight = separation ** FUSION_POWER (README, "How attribution works")


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


def threshold_for(view: IndexView, generator_id: int | None) -> float:
    """The generator's calibrated threshold, else the global one (``None``), else the default."""
    return float(view.thresholds.get(generator_id, view.thresholds.get(None, scoring.DEFAULT_THRESHOLD)))


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
    for path in paths:
        try:
            chunk.append(load_image(path))
        except AttribError as exc:
            chunk.append((Path(path), str(exc)))
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

    With several extractors the scores are fused (:func:`fuse`): each generator's
    score is a weighted mean over extractors of (score - that extractor's global
    calibrated threshold); the best generator is accepted when that reaches
    :func:`fused_threshold` (0 where its own thresholds equal the global ones).
    """
    if top_k < 1:
        raise AttribError(f"--top-k must be at least 1, got {top_k}")
    extractors = list(extractor) if isinstance(extractor, (list, tuple)) else [extractor]
    views = [gallery.open_index(e) for e in extractors]
    key = "+".join(e.identity.key for e in extractors)
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
            if len(views) == 1:
                ranked, threshold_of = scores[0], lambda gid, v=views[0]: threshold_for(v, gid)
            else:
                ranked, threshold_of = fuse(views, scores), lambda gid: fused_threshold(views, gid)
            yield decide(views[0].generator_names, ranked, threshold_of, str(item.path), item.sha256, key, top_k)


def fusion_weights(views: Sequence[IndexView]) -> np.ndarray:
    """Each extractor's weight: its calibrated separation d' (at least 0) to the FUSION_POWER, summing to 1.

    d' is measured on held-out enrolled samples of this very gallery, so an extractor that
    tells these generators apart poorly counts little. Extractors calibrated before schema 3
    (no d' stored) count equally.
    """
    known = [v.separation for v in views]
    if any(s is None for s in known):
        return np.full(len(views), 1.0 / len(views))
    raw = np.maximum(np.asarray(known, dtype=np.float64), 0.0) ** FUSION_POWER
    return raw / raw.sum() if raw.sum() > 0 else np.full(len(views), 1.0 / len(views))


def fused_threshold(views: Sequence[IndexView], generator_id: int) -> float:
    """The fused score a generator must reach: the weighted mean of its own thresholds' offsets.

    Ranking uses one offset per extractor (the global threshold, see :func:`fuse`); the decision
    for the best generator then uses its per-generator thresholds, as a single extractor does.
    """
    weights = fusion_weights(views)
    return float(sum(w * (threshold_for(v, generator_id) - threshold_for(v, None)) for w, v in zip(weights, views)))


def fuse(views: Sequence[IndexView], scores: Sequence[dict[int, float]]) -> dict[int, float]:
    """Weighted mean calibrated margin (score - global threshold) per generator over extractors.

    Weights come from :func:`fusion_weights`. Each extractor's margin is taken from its
    global (open-set) threshold, one offset per extractor: per-generator thresholds would
    shift generators against each other and cost open-set AUROC (0.96 -> 0.88 on the dev
    protocol). A generator missing from one extractor's search results counts with that
    extractor's lowest margin.
    """
    margins = [{g: s - threshold_for(v, None) for g, s in sc.items()} for v, sc in zip(views, scores)]
    floors = [min(m.values(), default=-1.0) for m in margins]
    weights = fusion_weights(views)
    generators = set().union(*margins)
    return {
        g: float(sum(w * m.get(g, floor) for w, m, floor in zip(weights, margins, floors))) for g in generators
    }


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
    threshold = threshold_for(view, gid)
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

