"""Whether a candidate is camera photographs rather than a generator.

Three signs, each per member image:

- **Camera metadata.** The file's EXIF names a camera (``Make``/``Model``, read by
  :mod:`attrib.evidence.exif_xmp`) and none of its evidence names a generator or says the image is
  AI-generated.
- **Photo-likeness against the cohort.** Every gallery holds the impostor cohort
  (:mod:`attrib.synthetic.cohort`): photographs, and simulated generators of several families. A member is
  photo-like when either of two readings puts it with the photographs: treating the photographs as one
  source and each family as another, the photographs score highest (the mean of its ``TOP_M`` best
  similarities, as a generator is scored: :func:`nearest_is_photographs`); or a logistic regression fitted
  on the photographs against every generated image at hand (the cohort's simulated generators and the
  gallery's enrolled samples, classes balanced) puts it on the photographs' side
  (:func:`linear_photo_likeness`). This is asked only in the spaces of extractors that can tell: an
  extractor *judges* photographs when, in its own whitened space, at least ``COHORT_JUDGE`` of the
  cohort's photographs have the photographs as their nearest source with every photograph of their own
  scene left out (:func:`judges_photographs`): the simulated generators render the same scenes, so an
  extractor that sees content rather than traces fails. A member must be photo-like in every extractor
  that judges; with none, this sign is absent.
- **Photo-likeness against reference photographs.** With reference photographs (``--photos DIR``: camera
  photos of the kind the batch may hold, never grouped themselves), the member's score against them minus
  their threshold is higher than its best score minus threshold against the enrolled generators: the
  reference photographs, enrolled as one more generator, would be its nearest. Their threshold is the one
  enrollment would calibrate for them (:func:`references_threshold`: the enrolled samples' scores against
  them at the gallery's false-accept rate, raised towards their own held-out scores as calibration does),
  so that photographs, whose content varies more than a generator's, are not held to a generator's bar.

A candidate is labelled ``photographs`` when at least half of its members show a sign; it is then
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
COHORT_JUDGE = 0.8  # the cohort's photographs nearest photographs (own scene left out), at least, for an extractor to judge
PHOTO = "photo"  # the source of the cohort's photographs (each simulated generator's is its family)


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
    cohort_like: int | None = None  # members photo-like against the cohort (None: no extractor judges)

    def to_json(self) -> dict[str, Any]:
        return {"photographs": self.photographs, "with_camera_exif": self.with_camera, "cameras": self.cameras,
                "photo_like_cohort": self.cohort_like, "photo_like": self.photo_like, "photo_likeness": self.likeness}


def references_threshold(references: np.ndarray, anchors: np.ndarray, fallback: float,
                         target_far: float = DEFAULT_TARGET_FAR) -> float:
    """The threshold the gallery would calibrate for the reference photographs enrolled as one more
    generator (:func:`attrib.scoring.calibration.pick_threshold`): impostors are the enrolled samples'
    scores against the references, genuine scores the references' held-out scores against each other;
    ``fallback`` (the reference threshold) with fewer than 2 references or no enrolled sample."""
    if len(references) < 2 or not len(anchors):
        return fallback
    return pick_threshold(top_mean(anchors @ references.T), held_out_scores(references), target_far, MAX_FRR)


def cohort_sources(rows: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(source, scene) of each of the ``rows`` rows of a stored cohort: :data:`PHOTO` or the simulated
    generator's family, and the photograph's file ("" for a simulated generator); None when the cohort made
    here has another number of rows (one embedded where scikit-image's photographs were missing, or the
    other way round) or no photographs."""
    from ..synthetic.cohort import sources

    made = sources()
    if len(made) != rows or not any(source == PHOTO for source, _ in made):
        return None
    return np.array([source for source, _ in made]), np.array([scene for _, scene in made])


def nearest_is_photographs(vectors: np.ndarray, cohort: np.ndarray, source: np.ndarray) -> np.ndarray:
    """Per row of ``vectors``: whether, of the cohort's sources (``source`` of each cohort row), the
    photographs score highest (unit rows of one space)."""
    sims = vectors @ cohort.T
    others = [top_mean(sims[:, source == name]) for name in sorted(set(source.tolist()) - {PHOTO})]
    photographs = top_mean(sims[:, source == PHOTO])
    return photographs > np.max(others, axis=0) if others else np.isfinite(photographs)


def linear_photo_likeness(vectors: np.ndarray, cohort: np.ndarray, source: np.ndarray,
                          enrolled: np.ndarray) -> np.ndarray:
    """Per row of ``vectors``: whether a logistic regression (scikit-learn's, classes balanced) fitted on
    the cohort's photographs against its simulated generators and the ``enrolled`` samples (unit rows of
    the same space) gives it a probability of being a photograph above one half."""
    from sklearn.linear_model import LogisticRegression

    generated = np.vstack([cohort[source != PHOTO], enrolled.reshape(-1, cohort.shape[1])])
    photographs = cohort[source == PHOTO]
    if not len(photographs) or not len(generated) or not len(vectors):
        return np.zeros(len(vectors), bool)
    features = np.vstack([photographs, generated]).astype(np.float64)
    labels = np.r_[np.ones(len(photographs)), np.zeros(len(generated))]
    model = LogisticRegression(class_weight="balanced", max_iter=5000).fit(features, labels)
    return model.predict_proba(np.asarray(vectors, np.float64))[:, 1] > 0.5


def judges_photographs(cohort: np.ndarray, source: np.ndarray, scene: np.ndarray) -> float:
    """The share of the cohort's photographs whose nearest source is the photographs when every photograph
    of their own scene is left out (unit rows of one extractor's space): 1 where the space sees a camera's
    traces, low where it sees the scene (the simulated generators render the same scenes)."""
    photos = np.flatnonzero(source == PHOTO)
    hits = [nearest_is_photographs(cohort[i:i + 1], cohort[scene != scene[i]], source[scene != scene[i]])[0]
            for i in photos]
    return float(np.mean(hits)) if hits else 0.0


def check_photos(evidence: Sequence[Sequence[dict[str, Any]]], vectors: np.ndarray, enrolled_margin: np.ndarray,
                 references: np.ndarray, threshold: float, cohort_like: np.ndarray | None = None) -> PhotoCheck:
    """The photo check of one candidate: its members' evidence, vectors and best margins against the
    enrolled generators, the reference photographs and their ``threshold`` (:func:`references_threshold`),
    and whether each member is photo-like against the cohort (None: no extractor judges); see the module
    docstring."""
    cameras = [camera_of(items) for items in evidence]
    named = [c for c in cameras if c]
    like = None
    likeness = None
    sign = np.array([c is not None for c in cameras])
    if cohort_like is not None:
        sign = sign | np.asarray(cohort_like, bool)
    if len(references) and len(vectors):
        to_photos = top_mean(vectors @ references.T) - threshold
        close = to_photos > np.asarray(enrolled_margin)
        like = int(close.sum())
        likeness = round(float(np.median(to_photos)), 6)
        sign = sign | close
    photographs = bool(len(sign)) and bool(sign.mean() >= PHOTO_SHARE)
    return PhotoCheck(dict(Counter(named).most_common()), len(named), like, likeness, photographs,
                      None if cohort_like is None else int(np.sum(cohort_like)))
