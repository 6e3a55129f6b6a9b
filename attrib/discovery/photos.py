"""Whether a candidate is camera photographs rather than a generator.

Two signs, each per member image:

- **Camera metadata.** The file's EXIF names a camera (``Make``/``Model``, read by
  :mod:`attrib.evidence.exif_xmp`) and none of its evidence names a generator or says the image is
  AI-generated.
- **Photo-likeness.** With reference photographs (``--photos DIR``: camera photos of the kind the batch
  may hold, never grouped themselves), the member's score against them minus their threshold is higher
  than its best score minus threshold against the enrolled generators: the reference photographs,
  enrolled as one more generator, would be its nearest. Their threshold is the one enrollment would
  calibrate for them (:func:`references_threshold`: the enrolled samples' scores against them at the
  gallery's false-accept rate, raised towards their own held-out scores as calibration does), so that
  photographs, whose content varies more than a generator's, are not held to a generator's bar. Without
  references there is no photo-likeness (None).

A candidate is labelled ``photographs`` when at least half of its members show either sign; it is then
listed, never offered as a new generator.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..scoring import DEFAULT_TARGET_FAR
from ..scoring.calibration import MAX_FRR, pick_threshold
from .clustering import held_out_scores, top_mean

PHOTO_SHARE = 0.5  # members showing a sign, at least, for a candidate to be labelled photographs


def camera_of(evidence: Sequence[dict[str, Any]]) -> str | None:
    """``"Make Model"`` when the evidence items (dicts of :class:`attrib.evidence.item.Evidence`) name a
    camera and nothing in them names a generator or says AI-generated; else None."""
    if any(item.get("generator") or item.get("ai_generated") for item in evidence if not item.get("error")):
        return None
    for item in evidence:
        if item.get("kind") != "exif" or item.get("error"):
            continue
        fields = (item.get("detail") or {}).get("fields") or {}
        make, model = str(fields.get("Make") or "").strip(), str(fields.get("Model") or "").strip()
        if make or model:
            return model if make and model.lower().startswith(make.lower()) else " ".join(p for p in (make, model) if p)
    return None


def photo_evidence(evidence: Sequence[dict[str, Any]], clip: int = 80) -> list[dict[str, Any]]:
    """``evidence`` (dicts of :class:`attrib.evidence.item.Evidence`) cut down to what :func:`camera_of`
    reads, each text clipped to ``clip`` characters: a few short fields, for keeping many images' worth in
    memory (``attrib serve --discover``); ``camera_of`` answers the same for both."""
    kept: list[dict[str, Any]] = []
    for item in evidence:
        if item.get("error"):
            continue
        if item.get("generator") or item.get("ai_generated"):
            kept.append({"kind": str(item.get("kind") or "")[:clip], "generator": str(item.get("generator") or "")[:clip]
                         or None, "ai_generated": item.get("ai_generated"), "error": None})
            break  # one such claim is enough: camera_of names no camera then
        if item.get("kind") != "exif" or any(k.get("kind") == "exif" for k in kept):
            continue
        fields = (item.get("detail") or {}).get("fields") or {}
        camera = {name: str(fields[name])[:clip] for name in ("Make", "Model") if str(fields.get(name) or "").strip()}
        if camera:
            kept.append({"kind": "exif", "generator": None, "ai_generated": None, "error": None,
                         "detail": {"fields": camera}})
    return kept


@dataclass
class PhotoCheck:
    """What a candidate's members say of being camera photographs."""

    cameras: dict[str, int]  # camera named in EXIF -> members
    with_camera: int  # members whose EXIF names a camera
    photo_like: int | None  # members nearer the reference photographs than any enrolled generator (None: no references)
    likeness: float | None  # median over members of (score against the references - reference threshold)
    photographs: bool

    def to_json(self) -> dict[str, Any]:
        return {"photographs": self.photographs, "with_camera_exif": self.with_camera, "cameras": self.cameras,
                "photo_like": self.photo_like, "photo_likeness": self.likeness}


def references_threshold(references: np.ndarray, anchors: np.ndarray, fallback: float,
                         target_far: float = DEFAULT_TARGET_FAR) -> float:
    """The threshold the gallery would calibrate for the reference photographs enrolled as one more
    generator (:func:`attrib.scoring.calibration.pick_threshold`): impostors are the enrolled samples'
    scores against the references, genuine scores the references' held-out scores against each other;
    ``fallback`` (the reference threshold) with fewer than 2 references or no enrolled sample."""
    if len(references) < 2 or not len(anchors):
        return fallback
    return pick_threshold(top_mean(anchors @ references.T), held_out_scores(references), target_far, MAX_FRR)


def check_photos(evidence: Sequence[Sequence[dict[str, Any]]], vectors: np.ndarray, enrolled_margin: np.ndarray,
                 references: np.ndarray, threshold: float) -> PhotoCheck:
    """The photo check of one candidate: its members' evidence, vectors and best margins against the
    enrolled generators, the reference photographs and their ``threshold`` (:func:`references_threshold`);
    see the module docstring."""
    cameras = [camera_of(items) for items in evidence]
    named = [c for c in cameras if c]
    like = None
    likeness = None
    sign = np.array([c is not None for c in cameras])
    if len(references) and len(vectors):
        to_photos = top_mean(vectors @ references.T) - threshold
        close = to_photos > np.asarray(enrolled_margin)
        like = int(close.sum())
        likeness = round(float(np.median(to_photos)), 6)
        sign = sign | close
    photographs = bool(len(sign)) and bool(sign.mean() >= PHOTO_SHARE)
    return PhotoCheck(dict(Counter(named).most_common()), len(named), like, likeness, photographs)
