"""A bound extractor that embeds each distinct image once: evaluation and discovery score the same pixels
through several calls (``Gallery.identify`` after embedding them for their own use) and pay for them once."""

from __future__ import annotations

import hashlib
from typing import Any, Sequence

import numpy as np

from .contract import BoundExtractor


class CachedExtractor:
    """``bound``, with each distinct pixel array (bytes, shape and dtype) embedded only once; ``embedded`` and
    ``reused`` count the images embedded and those answered from the cache."""

    def __init__(self, bound: BoundExtractor) -> None:
        self.bound = bound
        self.cache: dict[bytes, np.ndarray] = {}
        self.embedded = self.reused = 0

    def __getattr__(self, name: str) -> Any:  # identity, dim, name, version, plugin ...
        return getattr(self.bound, name)

    @staticmethod
    def key(pixels: np.ndarray) -> bytes:
        digest = hashlib.blake2b(f"{pixels.shape}{pixels.dtype.str}".encode(), digest_size=20)
        digest.update(np.ascontiguousarray(pixels).data)
        return digest.digest()

    def embed(self, images: Sequence[np.ndarray]) -> np.ndarray:
        keys = [self.key(np.asarray(im)) for im in images]
        missing = {k: im for k, im in zip(keys, images) if k not in self.cache}  # equal keys: equal pixels
        if missing:
            self.cache.update(zip(missing, self.bound.embed(list(missing.values()))))
        self.embedded, self.reused = self.embedded + len(missing), self.reused + len(keys) - len(missing)
        return np.stack([self.cache[k] for k in keys]) if keys else np.zeros((0, self.bound.dim), np.float32)
