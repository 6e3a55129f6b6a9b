"""FAISS indexes: a rebuildable cache of the durable vectors in the database.

Each extractor identity has one index file (``index/<extractor id>.faiss``)
plus a JSON sidecar recording which database state it was built from. Vectors
are added with ``add_with_ids`` keyed by the database's vector ids; files are
written to a temporary name and moved into place with ``os.replace``.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import faiss
import numpy as np


FLAT_LIMIT = 50_000
HNSW_LIMIT = 2_000_000


def choose_index_key(n: int, dim: int, memory: int | None = None) -> str:
    """Pick a FAISS factory string for ``n`` vectors of ``dim`` floats within ``memory`` bytes.

    Exact search while it is cheap; HNSW for up to a few million vectors when
    memory allows raw vectors plus the graph; IVF with product quantisation
    beyond, or whenever raw vectors do not fit.
    """
    if n < 0 or dim <= 0:
        raise ValueError(f"need n >= 0 and dim > 0, got n={n}, dim={dim}")
    raw = 4 * n * dim
    graph = n * 32 * 2 * 4
    fits_raw = memory is None or raw * 1.1 <= memory
    if n < FLAT_LIMIT and fits_raw:
        return "IDMap2,Flat"
    if n < HNSW_LIMIT and (memory is None or raw + graph <= memory):
        return "IDMap2,HNSW32"
    nlist = int(min(65536, max(64, 2 ** round(math.log2(4 * math.sqrt(n))))))
    if fits_raw:
        return f"IVF{nlist},Flat"
    m = max(1, next(d for d in (64, 32, 16, 8, 4, 2, 1) if dim % d == 0 and d <= dim))
    return f"IVF{nlist},PQ{m}"


@dataclass
class IndexState:
    """The database state an index file was built from."""

    count: int
    max_id: int
    id_sum: int
    dim: int
    key: str = ""
    whitening: str = "identity"  # the fitted whitening's digest

    def matches(self, other: "IndexState") -> bool:
        """Same vectors, same dimension, same whitening (the index key may differ)."""
        return (self.count, self.max_id, self.id_sum, self.dim, self.whitening) == (
            other.count,
            other.max_id,
            other.id_sum,
            other.dim,
            other.whitening,
        )


def build_index(ids: np.ndarray, vectors: np.ndarray, dim: int, key: str | None = None) -> faiss.Index:
    """Build an inner-product index over L2-normalised vectors, keyed by ``ids``."""
    n = len(ids)
    key = key or choose_index_key(n, dim)
    index = faiss.index_factory(dim, key, faiss.METRIC_INNER_PRODUCT)
    if not index.is_trained:
        if n < 40:
            index = faiss.index_factory(dim, "IDMap2,Flat", faiss.METRIC_INNER_PRODUCT)
        else:
            index.train(vectors)
    if n:
        index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))
    return index


def index_path(root: Path, extractor_id: int) -> Path:
    """The index file of one extractor in the gallery folder ``root``."""
    return Path(root) / "index" / f"{extractor_id}.faiss"


def labels_path(path: Path) -> Path:
    """The labels file (vector ids and their generator ids) beside an index file."""
    return path.with_suffix(".labels.npy")


def _replace_atomically(path: Path, write) -> None:
    """Call ``write(temporary path)`` then move the result onto ``path`` (never a half-written file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_index(index: faiss.Index, path: Path, state: IndexState, ids: np.ndarray, generators: np.ndarray) -> None:
    """Write the labels, the index and its sidecar, each atomically (temp file then os.replace)."""
    labels = np.stack([ids, generators]).astype(np.int64) if len(ids) else np.zeros((2, 0), np.int64)

    def save_labels(tmp: str) -> None:
        with open(tmp, "wb") as handle:
            np.save(handle, labels)

    def save_sidecar(tmp: str) -> None:
        with open(tmp, "w") as handle:
            json.dump(asdict(state), handle)

    _replace_atomically(labels_path(path), save_labels)
    _replace_atomically(path, lambda tmp: faiss.write_index(index, tmp))
    _replace_atomically(path.with_suffix(".json"), save_sidecar)


def read_labels(path: Path, count: int) -> np.ndarray | None:
    """[2, count] vector ids and generator ids beside index ``path``; None when missing or malformed."""
    try:
        labels = np.load(labels_path(path), allow_pickle=False)
    except Exception:  # a damaged cache is rebuilt, never trusted
        return None
    return labels if labels.shape == (2, count) else None


def read_index(path: Path) -> tuple[faiss.Index, IndexState] | None:
    """Read an index and its sidecar; None when either is missing or unreadable."""
    sidecar = path.with_suffix(".json")
    if not path.exists() or not sidecar.exists():
        return None
    try:
        fields = json.loads(sidecar.read_text())
        fields.setdefault("whitening", fields.get("backend", "identity"))  # the field's earlier name
        state = IndexState(**{k: v for k, v in fields.items() if k in IndexState.__dataclass_fields__})
        index = faiss.read_index(str(path))
    except Exception:  # a damaged cache is rebuilt, never trusted
        return None
    if index.ntotal != state.count or index.d != state.dim:
        return None
    return index, state


def search(index: faiss.Index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k inner products and ids; k is clipped to the index size."""
    k = max(1, min(k, index.ntotal))
    scores, ids = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    return scores, ids


def reconstruct(index: faiss.Index, ids: np.ndarray) -> np.ndarray:
    """Stored vectors for database ids (IDMap2 indexes keep them; IVF needs its direct map)."""
    if len(ids) == 0:
        return np.zeros((0, index.d), dtype=np.float32)
    if not isinstance(index, faiss.IndexIDMap2):
        faiss.extract_index_ivf(index).make_direct_map()
    return np.stack([index.reconstruct(int(i)) for i in ids]).astype(np.float32)
