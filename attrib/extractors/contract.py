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

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from ..errors import BadOption, ExtractorError
from ..host.manager import ExtractorSpec


class Extractor(Protocol):
    """Every attribute the host reads from an extractor; only the first four are required.

    ``name``, ``version`` and ``dim`` are read from the class without building it (``dim``
    may be ``None`` there when it depends on options, and must be set on the instance).
    """

    name: str
    version: str
    dim: int | None
    description: str  # optional: one line for `attrib plugins` (default: the docstring's first line)
    options_help: dict[str, str]  # optional: option name -> one line of help, shown by `attrib plugins`
    identity_options: tuple[str, ...]  # optional: options that change embeddings (default: all of them)
    identity: dict[str, Any]  # optional, on the instance: more identity, e.g. a weights digest

    def __init__(self, **options: str) -> None:
        """Build from ``--option key=value`` strings; raise attrib.errors.BadOption for a bad value."""

    def embed_batch(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Return float32 [len(images), dim] embeddings for HxWx3 uint8 RGB arrays."""

    def cohort_vectors(self, version: str) -> np.ndarray | None:
        """Optional: the impostor cohort (attrib.synthetic.cohort at ``version``) already embedded, or None."""

    def delivered_cohort_vectors(self, version: str, rung: str) -> np.ndarray | None:
        """Optional: the same with each image embedded after the lossy coding ``rung`` ("jpeg:80"), or None."""


@dataclass(frozen=True)
class ExtractorIdentity:
    """What makes two sets of embeddings comparable: name, version, options that matter."""

    name: str
    version: str
    options: dict[str, Any] = field(default_factory=dict)
    delivery: str | None = None  # a gallery's delivery version ("jpeg:80"): images embedded after that coding

    @property
    def key(self) -> str:
        """A stable string, e.g. ``residual@2``, ``clip@1{"model":"ViT-B-32"}`` or ``residual@2|jpeg:80``."""
        base = f"{self.name}@{self.version}"
        if self.options:
            base += json.dumps(self.options, sort_keys=True, separators=(",", ":"))
        return base if self.delivery is None else f"{base}|{self.delivery}"

    @property
    def base_key(self) -> str:
        """The key without the delivery: the extractor whose delivery version this is."""
        return replace(self, delivery=None).key


class BoundExtractor:
    """An extractor instance wrapped with the host's validation and normalisation."""

    def __init__(self, spec: ExtractorSpec, options: dict[str, str] | None = None):
        self.spec = spec
        self.plugin = spec.plugin
        options = dict(options or {})
        try:
            self.impl = spec.factory(**options)
        except TypeError as exc:
            raise BadOption(
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
        try:
            return normalised_embeddings(out, n, self.dim)
        except ExtractorError as exc:
            raise ExtractorError(f"{where} {exc}") from None


class DeliveredExtractor(BoundExtractor):
    """``base`` embedding each image after ``deliver`` (a lossy round trip, e.g. JPEG at quality 80): the
    embeddings of a gallery's delivery version ``rung``, scored against queries that travelled that way.
    Shares ``base``'s instance; its identity is ``base``'s with ``delivery=rung``."""

    def __init__(self, base: BoundExtractor, rung: str, deliver: Callable[[np.ndarray], np.ndarray]):
        self.base, self.rung, self.deliver = base, rung, deliver
        self.spec, self.plugin, self.impl = base.spec, base.plugin, base.impl
        self.name, self.version, self.dim = base.name, base.version, base.dim
        self.identity = replace(base.identity, delivery=rung)

    def embed(self, images: Sequence[np.ndarray]) -> np.ndarray:
        return self.base.embed([self.deliver(np.asarray(image)) for image in images])


def extractor_list(extractor: BoundExtractor | Sequence[BoundExtractor]) -> list[BoundExtractor]:
    """One bound extractor, or several (to fuse), as a list."""
    return list(extractor) if isinstance(extractor, Sequence) else [extractor]


def normalised_embeddings(out: object, n: int, dim: int) -> np.ndarray:
    """Check an extractor's output for ``n`` images of ``dim`` numbers and L2-normalise it.

    Raises ExtractorError whose message starts with what was returned ("returned shape ...",
    "returned NaN ..."); the host and the conformance kit put the extractor's name before it.
    """
    out = np.asarray(out)
    if out.shape != (n, dim):
        raise ExtractorError(f"returned shape {tuple(out.shape)} for {n} images; expected ({n}, {dim})")
    if not np.issubdtype(out.dtype, np.floating):
        raise ExtractorError(f"returned dtype {out.dtype}; expected a float dtype (float32)")
    if not np.isfinite(out).all():
        raise ExtractorError(f"returned NaN or infinite values ({int((~np.isfinite(out)).sum())} of {out.size})")
    out = out.astype(np.float32, copy=False)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    if (norms <= 1e-12).any():
        raise ExtractorError(
            f"returned an all-zero embedding for image(s) {np.flatnonzero(norms[:, 0] <= 1e-12).tolist()}")
    return np.ascontiguousarray(out / norms, dtype=np.float32)
