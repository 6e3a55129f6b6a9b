"""The extractor contract and the host-side checks around every call.

An extractor turns RGB images into fixed-length embeddings. Plugins register
*extractor classes* (anything callable with keyword options that returns an
extractor) through the ``register_extractors`` hook. The class attributes
``name``, ``version`` and ``dim`` must be readable without instantiating it, so
that ``attrib plugins`` never loads a model; ``dim`` may be ``None`` on the
class when it depends on options (it must be set on the instance).

A minimal extractor::

    class Mean:
        name = "mean-rgb"
        version = "1"
        dim = 3

        def __init__(self, **options):
            self.options = options

        def embed_batch(self, images):
            return np.stack([im.reshape(-1, 3).mean(0) for im in images]).astype("float32")
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

import numpy as np

from .errors import ExtractorError


class Extractor(Protocol):
    """What the host needs from an extractor instance."""

    name: str
    version: str
    dim: int

    def embed_batch(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Return float32 [len(images), dim] embeddings for HxWx3 uint8 RGB arrays."""


@dataclass(frozen=True)
class ExtractorSpec:
    """A registered extractor class and the plugin that provided it."""

    factory: Any
    plugin: str

    @property
    def name(self) -> str:
        return str(self.factory.name)

    @property
    def version(self) -> str:
        return str(self.factory.version)

    @property
    def dim(self) -> int | None:
        return getattr(self.factory, "dim", None)

    @property
    def description(self) -> str:
        doc = getattr(self.factory, "description", None) or (self.factory.__doc__ or "")
        return doc.strip().splitlines()[0] if doc.strip() else ""

    @property
    def option_help(self) -> dict[str, str]:
        return dict(getattr(self.factory, "options_help", {}) or {})


@dataclass(frozen=True)
class ExtractorIdentity:
    """What makes two sets of embeddings comparable: name, version, options that matter."""

    name: str
    version: str
    options: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        """A stable string, e.g. ``residual@2`` or ``clip@1{"model":"ViT-B-32"}``."""
        base = f"{self.name}@{self.version}"
        if self.options:
            base += json.dumps(self.options, sort_keys=True, separators=(",", ":"))
        return base


class BoundExtractor:
    """An extractor instance wrapped with the host's validation and normalisation."""

    def __init__(self, spec: ExtractorSpec, options: dict[str, str] | None = None):
        self.spec = spec
        self.plugin = spec.plugin
        options = dict(options or {})
        try:
            self.impl = spec.factory(**options)
        except TypeError as exc:
            raise ExtractorError(
                f"extractor {spec.name!r} (plugin {spec.plugin}) rejected options {options}: {exc}"
            ) from exc
        except ExtractorError:
            raise
        except Exception as exc:  # a plugin's own failure, named
            raise ExtractorError(
                f"extractor {spec.name!r} (plugin {spec.plugin}) failed to start: {exc}"
            ) from exc
        self.name = str(getattr(self.impl, "name", spec.name))
        self.version = str(getattr(self.impl, "version", spec.version))
        dim = getattr(self.impl, "dim", None)
        if not isinstance(dim, (int, np.integer)) or dim <= 0:
            raise ExtractorError(
                f"extractor {self.name!r} (plugin {self.plugin}) has no positive integer dim: {dim!r}"
            )
        self.dim = int(dim)
        identity_keys = getattr(self.impl, "identity_options", None)
        if identity_keys is None:
            identity_options = options
        else:
            identity_options = {k: v for k, v in options.items() if k in identity_keys}
            extra = getattr(self.impl, "identity", None)
            if isinstance(extra, dict):
                identity_options.update(extra)
        self.identity = ExtractorIdentity(self.name, self.version, identity_options)

    def embed(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Embed images; return L2-normalised float32 [n, dim] or raise ExtractorError."""
        n = len(images)
        if n == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        where = f"extractor {self.name!r} (plugin {self.plugin})"
        try:
            out = self.impl.embed_batch(list(images))
        except ExtractorError:
            raise
        except Exception as exc:
            raise ExtractorError(f"{where} raised {type(exc).__name__}: {exc}") from exc
        out = np.asarray(out) if not isinstance(out, np.ndarray) else out
        if out.shape != (n, self.dim):
            raise ExtractorError(
                f"{where} returned shape {tuple(out.shape)} for {n} images; expected ({n}, {self.dim})"
            )
        if not np.issubdtype(out.dtype, np.floating):
            raise ExtractorError(f"{where} returned dtype {out.dtype}; expected float32")
        out = out.astype(np.float32, copy=False)
        if not np.isfinite(out).all():
            raise ExtractorError(f"{where} returned NaN or infinite values")
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        if (norms <= 1e-12).any():
            raise ExtractorError(f"{where} returned an all-zero embedding")
        return np.ascontiguousarray(out / norms, dtype=np.float32)


def parse_options(pairs: Sequence[str]) -> dict[str, str]:
    """Turn ``["key=value", ...]`` into a dict; raise ExtractorError naming a bad pair."""
    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ExtractorError(f"option {pair!r} is not of the form key=value (e.g. --option model=ViT-B-32)")
        options[key.strip()] = value.strip()
    return options


def weights_digest(path: str | os.PathLike) -> str:
    """A short content hash of a weights file, for an extractor's identity (``sha256:<16 hex>``).

    Identity by content survives moving the file and changes with different
    weights; the hash is cached per process by (path, size, mtime).
    """
    resolved = os.path.realpath(path)
    stat = os.stat(resolved)
    return _digest(resolved, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 22), b""):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()[:16]
