"""The whitening as a value: the transform a gallery's vectors go through before the index stores them
and queries search them (gallery mean, whitening matrix, constant coordinate, L2 normalisation), with
what it was fitted on, its bytes as stored and its digest as index files record it.

Fitting it, and when it must be refitted, is scoring's (:mod:`attrib.scoring.whitening`); storage keeps
its bytes and the index its digest.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Whitening:
    kind: str  # "whiten" or "identity"
    mean: np.ndarray | None = None
    matrix: np.ndarray | None = None
    constant: float = 0.0
    fitted_count: int = 0  # vectors the gallery held when fitted (0: not recorded)
    fitted_generators: int = 0  # generators it held then
    fitted_counts: dict[int, int] = field(default_factory=dict)  # its vectors by generator id (empty: not recorded)
    fitted_max_id: int = 0  # the largest vector id it held then

    def out_dim(self, dim: int) -> int:
        return dim + 1 if self.kind == "whiten" else dim

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        """Transform L2-normalised extractor vectors into the space the index searches."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if self.kind == "identity":
            return np.ascontiguousarray(vectors)
        mean, matrix = self._fitted()
        if len(vectors) == 0:
            return np.zeros((0, matrix.shape[1] + 1), np.float32)
        y = (vectors - mean) @ matrix
        y = np.hstack([y, np.full((len(y), 1), self.constant, dtype=np.float32)])
        y /= np.maximum(np.linalg.norm(y, axis=1, keepdims=True), 1e-12)
        return np.ascontiguousarray(y, dtype=np.float32)

    def _fitted(self) -> tuple[np.ndarray, np.ndarray]:
        """The mean and matrix of a fitted whitening (kind ``whiten``)."""
        if self.mean is None or self.matrix is None:
            raise ValueError(f"a {self.kind!r} whitening without its mean and matrix")
        return self.mean, self.matrix

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        fitted = {"fitted": np.array([self.fitted_count, self.fitted_generators], dtype=np.int64)}
        if self.fitted_counts:
            fitted["fitted_counts"] = np.array([list(self.fitted_counts), list(self.fitted_counts.values())],
                                               dtype=np.int64)
            fitted["fitted_max_id"] = np.array(self.fitted_max_id, dtype=np.int64)
        # allow_pickle named (it only matters for object arrays: none here), so **fitted cannot stand for it
        if self.kind == "identity":
            np.savez(buffer, allow_pickle=False, kind=np.array("identity"), **(fitted if self.fitted_count else {}))
        else:
            mean, matrix = self._fitted()
            np.savez(buffer, allow_pickle=False, kind=np.array("whiten"), mean=mean, matrix=matrix,
                     constant=np.array(self.constant, dtype=np.float32), **(fitted if self.fitted_count else {}))
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes | None) -> "Whitening":
        if not data:
            return IDENTITY
        with np.load(io.BytesIO(data)) as npz:
            count, generators = (int(v) for v in npz["fitted"]) if "fitted" in npz.files else (0, 0)
            by_generator = dict(zip(*npz["fitted_counts"].tolist())) if "fitted_counts" in npz.files else {}
            max_id = int(npz["fitted_max_id"]) if "fitted_max_id" in npz.files else 0
            if str(npz["kind"]) == "identity":
                return cls("identity", None, None, 0.0, count, generators, by_generator, max_id) if count else IDENTITY
            return cls("whiten", npz["mean"], npz["matrix"], float(npz["constant"]), count, generators, by_generator,
                       max_id)

    def fitted_on(self, ids: np.ndarray, generators: np.ndarray) -> "Whitening":
        """This whitening, recording that it was fitted on a gallery of the vectors ``ids`` of ``generators``
        (one generator id each)."""
        names, counts = np.unique(np.asarray(generators, np.int64), return_counts=True)
        return Whitening(self.kind, self.mean, self.matrix, self.constant, len(ids), len(names),
                         dict(zip(names.tolist(), counts.tolist())), int(np.max(ids, initial=0)))

    @property
    def digest(self) -> str:
        return "identity" if self.kind == "identity" else hashlib.sha256(self.to_bytes()).hexdigest()[:16]


IDENTITY = Whitening("identity")
