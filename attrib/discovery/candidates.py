"""Candidates: the groups of :mod:`.clustering` as ranked candidate generators, and the JSON that
``attrib discover`` writes and ``--enroll`` reads back.

Each candidate says how tight it is (``tightness``, :mod:`.clustering`), how far it is from every enrolled
generator (``novelty``: minus the median over its members of their best margin, score minus threshold, as
identify scores them; positive when most members are below every threshold), which enrolled generator is
nearest, and whether it is camera photographs (:mod:`.photos`). Candidates offered as new generators
(``kind: generator``) come first, by ``tightness + novelty`` (both in the gallery's similarity units):
tight groups far from everything enrolled first; photographs follow, labelled so.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import AttribError
from .clustering import (MIN_CLUSTER_SIZE, MIN_TIGHTNESS, Group, Grouping, enrolled_margins, group_images,
                         tightness_bar)
from .photos import PhotoCheck, check_photos, references_threshold
from .space import Pool

SCHEMA = 1
KIND = "attrib-discovery"  # the "kind" of a candidates file
GENERATOR, PHOTOGRAPHS = "generator", "photographs"
EXEMPLARS = 8


@dataclass(frozen=True)
class Settings:
    min_cluster_size: int = MIN_CLUSTER_SIZE
    min_samples: int | None = None
    min_tightness: float = MIN_TIGHTNESS

    def to_json(self) -> dict[str, Any]:
        return {"min_cluster_size": self.min_cluster_size, "min_samples": self.min_samples,
                "min_tightness": self.min_tightness}


@dataclass
class Candidate:
    id: str
    kind: str  # GENERATOR or PHOTOGRAPHS
    members: list[dict[str, Any]]  # path, sha256, probability, held_out, nearest, margin, decision (label in evaluations)
    tightness: float
    novelty: float | None
    nearest: str | None
    strength: float
    photo: PhotoCheck
    split_from: int | None = None

    @property
    def rank_score(self) -> float:
        return self.tightness + (self.novelty or 0.0)

    @property
    def digest(self) -> str:
        """A short digest of the member files (sorted sha256s): the same images, the same digest."""
        return hashlib.sha256("\n".join(sorted(m["sha256"] for m in self.members)).encode()).hexdigest()[:16]

    def exemplars(self, n: int = EXEMPLARS) -> list[dict[str, Any]]:
        """The ``n`` members most typical of it (highest held-out score against the others)."""
        return sorted(self.members, key=lambda m: -m["held_out"])[:n]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "size": len(self.members), "digest": self.digest,
                "tightness": self.tightness, "novelty": self.novelty, "rank_score": round(self.rank_score, 6),
                "nearest_enrolled": self.nearest, "strength": self.strength, "split_from": self.split_from,
                "photo": self.photo.to_json(), "exemplars": [m["path"] for m in self.exemplars()],
                "members": self.members}


@dataclass
class Discovery:
    """What ``attrib discover`` found among ``pool``'s images."""

    pool: Pool
    settings: Settings
    candidates: list[Candidate]
    grouping: Grouping
    tightness_bar: float  # what the candidates' tightness was measured against (clustering.tightness_bar)
    photo_threshold: float | None  # the reference photographs' threshold (photos.references_threshold); None: none
    context: dict[str, Any] = field(default_factory=dict)  # gallery, inputs: said in the JSON

    def to_json(self) -> dict[str, Any]:
        images = self.pool.images
        near: dict[str, list[str]] = {}
        for index, name in sorted(self.grouping.near_enrolled.items()):
            near.setdefault(name, []).append(images[index].path)
        let_go: dict[str, list[str]] = {}
        for part in self.grouping.let_go:
            let_go.setdefault(part.why, []).extend(images[i].path for i in part.members)
        return {"schema": SCHEMA, "kind": KIND, **self.context, "extractor": self.pool.extractor,
                "weights": self.pool.weights, "reference": round(self.pool.reference, 6),
                "tightness_bar": round(self.tightness_bar, 6),
                "photo_threshold": None if self.photo_threshold is None else round(self.photo_threshold, 6),
                "photo_judges": self.pool.photo_judges,
                "settings": self.settings.to_json(), "images": len(images),
                "photo_references": len(self.pool.photo_references),
                "counts": {"candidates": sum(c.kind == GENERATOR for c in self.candidates),
                           "photographs": sum(c.kind == PHOTOGRAPHS for c in self.candidates),
                           "in_candidates": sum(len(c.members) for c in self.candidates),
                           "near_enrolled": len(self.grouping.near_enrolled),
                           "let_go": sum(len(p.members) for p in self.grouping.let_go),
                           "one_offs": len(self.grouping.noise)},
                "candidates": [c.to_json() for c in self.candidates],
                "near_enrolled": near, "let_go": let_go,
                "one_offs": [images[i].path for i in self.grouping.noise],
                "errors": [{"path": path, "error": why} for path, why in self.pool.errors]}


def discover(pool: Pool, settings: Settings = Settings(), context: dict[str, Any] | None = None) -> Discovery:
    """Group ``pool``'s images into ranked candidates (see the module docstring)."""
    bar = tightness_bar(pool.thresholds, pool.reference)
    grouping = group_images(pool.vectors, pool.reference, pool.anchors, pool.anchor_generators, pool.thresholds,
                            settings.min_cluster_size, settings.min_samples, settings.min_tightness, bar)
    pool_best, pool_nearest = enrolled_margins(pool.vectors, pool.anchors, pool.anchor_generators, pool.thresholds)
    photo_threshold = references_threshold(pool.photo_references, pool.anchors, pool.reference, pool.target_far)
    made = [_candidate(pool, group, pool_best, pool_nearest, photo_threshold) for group in grouping.groups]
    made.sort(key=lambda c: (c.kind != GENERATOR, -c.rank_score))
    for number, candidate in enumerate(made, 1):
        candidate.id = f"c{number}"
    return Discovery(pool, settings, made, grouping, bar, photo_threshold if len(pool.photo_references) else None,
                     dict(context or {}))


def _candidate(pool: Pool, group: Group, pool_best: np.ndarray, pool_nearest: list[str | None],
               photo_threshold: float) -> Candidate:
    members = []
    for index, probability, held in zip(group.members, group.probabilities, group.held_out):
        image = pool.images[index]
        margin = image.margin if image.margin is not None else _finite(pool_best[index])
        nearest = image.nearest or pool_nearest[index]
        member: dict[str, Any] = {"path": image.path, "sha256": image.sha256, "probability": probability,
                                  "held_out": held, "nearest": nearest, "margin": margin, "decision": image.decision}
        if image.label is not None:
            member["label"] = image.label
        members.append(member)
    margins = [m["margin"] for m in members if m["margin"] is not None]
    novelty = round(-float(np.median(margins)), 6) if margins else None
    nearest_names = [m["nearest"] for m in members if m["nearest"]]
    nearest = Counter(nearest_names).most_common(1)[0][0] if nearest_names else None
    cohort_like = None if pool.cohort_photo_like is None else pool.cohort_photo_like[group.members]
    photo = check_photos([pool.images[i].evidence for i in group.members], pool.vectors[group.members],
                         pool_best[group.members], pool.photo_references, photo_threshold, cohort_like)
    return Candidate("", PHOTOGRAPHS if photo.photographs else GENERATOR, members, group.tightness, novelty, nearest,
                     group.strength, photo, group.split_from)


def _finite(value: float) -> float | None:
    return round(float(value), 6) if np.isfinite(value) else None


def candidates_text(discovery: Discovery) -> str:
    """The discovery's JSON as the text of a candidates file, which :func:`load_candidate` reads back."""
    return json.dumps(discovery.to_json(), ensure_ascii=False, allow_nan=False, indent=1) + "\n"


def load_candidate(path: Path, wanted: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the file's JSON, the candidate ``wanted``: its id, e.g. ``c2``, or a prefix of its digest) from a
    candidates file (:func:`candidates_text`, written by ``attrib discover --output``)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise AttribError(f"cannot read candidates file {path}: {exc.strerror or exc}; write one with "
                          "`attrib discover ... --output FILE`") from None
    except ValueError as exc:
        raise AttribError(f"candidates file {path} is not JSON ({exc}); write one with `attrib discover ... "
                          "--output FILE`") from None
    if not isinstance(data, dict) or data.get("kind") != KIND or data.get("schema") != SCHEMA:
        raise AttribError(f"{path} is not a candidates file of `attrib discover` (schema {SCHEMA}); write one with "
                          "`attrib discover ... --output FILE`")
    candidates = data.get("candidates") or []
    found = [c for c in candidates if c.get("id") == wanted or (len(wanted) >= 6 and str(c.get("digest", ""))
                                                                    .startswith(wanted))]
    if len(found) != 1:
        listed = ", ".join(f"{c.get('id')} ({c.get('kind')}, {c.get('size')} images)" for c in candidates) or "none"
        raise AttribError(f"no candidate {wanted!r} in {path}; its candidates: {listed}")
    return data, found[0]
