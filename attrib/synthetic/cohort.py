"""The impostor cohort: images that are none of any user's generators.

Open-set decisions need to know how high a generator's score goes for images it did *not*
make. A gallery's own other generators are a poor sample of that (they are few, and the
confusable ones among them push thresholds up), so every gallery is also scored against a
fixed cohort the project makes itself, as speaker verification does with its impostor cohorts:

* simulated generators of every zoo family (:mod:`.zoo`), with seeds and scenes that neither the
  residual projection's training (seeds 1000-3099), the evaluation, the demo nor the tests use,
  each delivered the way published images are: losslessly (half), through JPEG or through
  WebP (a quarter each) at a quality of 60-95;
* crops of the photographs bundled with scikit-image (when it is installed), losslessly or
  through JPEG: cameras are the commonest "generator" nobody enrolls.

Everything is a pure function of the constants below (:data:`COHORT_VERSION` names them), so
the cohort of an extractor is embedded once and cached: in memory per process, and in the
gallery's database per extractor identity.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Protocol

import numpy as np

from ..errors import AttribError


class Embedder(Protocol):
    """What the cohort needs of an extractor (a bound one, :class:`attrib.extractors.contract.BoundExtractor`):
    its identity key and embedding a batch of RGB images."""

    @property
    def identity(self) -> Any: ...

    def embed(self, images: list[np.ndarray]) -> np.ndarray: ...

COHORT_VERSION = "1"
SEED_BASE = 5000  # zoo seeds of the cohort's simulated generators
CONTENT_BASE = 2_000_000  # zoo scenes of the cohort
SEEDS_PER_FAMILY = 40
PHOTOS = 120
SIZE = 256
SEED = 20250611
PIPELINES: tuple[tuple[str, float], ...] = (("none", 0.5), ("jpeg", 0.25), ("webp", 0.25))
QUALITY_RANGE = (60, 95)
BATCH = 16

_cache: dict[str, np.ndarray] = {}


def _quality(rng: np.random.Generator) -> int:
    return int(rng.integers(QUALITY_RANGE[0], QUALITY_RANGE[1] + 1))


def items() -> list[tuple[str, str, int, str]]:
    """(kind, source, number, delivery condition) of every cohort image, in a fixed order."""
    from .zoo import FAMILIES, _photo_paths

    out = []
    kinds, weights = zip(*PIPELINES)
    for s in range(SEEDS_PER_FAMILY):
        for f, family in enumerate(FAMILIES):
            index = s * len(FAMILIES) + f
            rng = np.random.default_rng([SEED, index, 1])
            kind = kinds[rng.choice(len(kinds), p=np.asarray(weights) / sum(weights))]
            delivery = kind if kind == "none" else f"{kind}:{_quality(rng)}"
            out.append(("zoo", f"{family}-{SEED_BASE + s}", CONTENT_BASE + index, delivery))
    photos = _photo_paths()
    for k in range(PHOTOS if photos else 0):
        rng = np.random.default_rng([SEED, k, 3])
        delivery = "none" if rng.random() < 0.5 else f"jpeg:{_quality(rng)}"
        out.append(("photo", photos[k % len(photos)], k, delivery))
    return out


def sources() -> list[tuple[str, str]]:
    """(source, scene) of every cohort image, in :func:`items` order: ``("photo", the photograph's file)``, or
    the simulated generator's family and ``""``."""
    from .zoo import _parse

    return [(kind, source) if kind == "photo" else (_parse(source)[0], "") for kind, source, *_ in items()]


def render(item: tuple[str, str, int, str]) -> np.ndarray:
    """The HxWx3 uint8 pixels of one cohort item."""
    from PIL import Image

    from .conditions import parse_condition
    from .zoo import _load_photo
    from .zoo import render as render_zoo

    kind, source, number, delivery = item
    if kind == "zoo":
        pixels = render_zoo(source, number, SIZE)
    else:
        photo = _load_photo(source)
        if photo is None:
            raise AttribError(f"cohort photo {source} cannot be read")
        rng = np.random.default_rng([SEED, number, 4])
        h, w = photo.shape[:2]
        scale = max(float(rng.uniform(0.5, 1.0)), SIZE / min(h, w))
        if scale < 0.999:
            photo = np.asarray(Image.fromarray(photo).resize((round(w * scale), round(h * scale)),
                                                             Image.Resampling.BICUBIC))
        h, w = photo.shape[:2]
        top, left = int(rng.integers(0, h - min(h, SIZE) + 1)), int(rng.integers(0, w - min(w, SIZE) + 1))
        pixels = photo[top:top + SIZE, left:left + SIZE]
        if rng.random() < 0.5:
            pixels = pixels[:, ::-1]
    return parse_condition(delivery).apply(np.ascontiguousarray(pixels))


def batches() -> Iterator[list[np.ndarray]]:
    """The cohort's images in batches of :data:`BATCH`."""
    todo = items()
    for start in range(0, len(todo), BATCH):
        yield [render(item) for item in todo[start:start + BATCH]]


def embed(extractor: Embedder, progress: Callable[[int], None] | None = None) -> np.ndarray:
    """The cohort embedded by a bound extractor (L2-normalised [n, dim]), cached per identity key."""
    key = f"{extractor.identity.key}#cohort{COHORT_VERSION}"
    if key not in _cache:
        parts = []
        for images in batches():
            parts.append(extractor.embed(images))
            if progress:
                progress(len(images))
        _cache[key] = np.concatenate(parts).astype(np.float32)
    return _cache[key]


def size() -> int:
    """How many images the cohort has here (fewer without scikit-image's photos)."""
    return len(items())
