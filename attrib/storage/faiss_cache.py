"""FAISS indexes: a rebuildable cache of the durable vectors in the database.

Each extractor identity has one index generation: an index file and a labels file (vector id
and generator id of every vector, aligned with the index) whose names carry a token of their
content (``index/<extractor id>-<token>.faiss`` and ``.labels.npy``), and a JSON sidecar
(``index/<extractor id>.json``) naming them and recording the database state they were built
from, with a digest of the ids and labels. Every file is written to a temporary name, synced
and moved into place with ``os.replace``; the sidecar goes last, so a reader sees either the
previous generation or the new one, never a mix, and the previous generation's files are
removed after. A reader trusts a generation only when its files agree with the sidecar and
the sidecar with the database (:func:`attrib.storage.base.load_index_view`).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import faiss
import numpy as np

from . import index_tuning

FLAT_LIMIT = 50_000  # exact search below this many vectors
HNSW_LIMIT = 200_000  # HNSW below this many (its build grows to minutes beyond), IVF from here on
HNSW_LINKS = 32
LISTS_PER_SQRT = 2  # IVF lists: about LISTS_PER_SQRT * sqrt(n), a power of two
MIN_POINTS_PER_LIST = 39  # FAISS's k-means wants at least this many training vectors per list
ID_BYTES = 8 + 48  # per vector: its 64-bit id and its entry in the id map / direct map (a hash table)


def choose_index_key(n: int, dim: int, memory: int | None = None) -> str:
    """Pick a FAISS factory string for ``n`` vectors of ``dim`` floats within ``memory`` bytes.

    Exact search (``IDMap2,Flat``) below FLAT_LIMIT vectors; HNSW below HNSW_LIMIT, when raw
    vectors plus the graph fit; IVF beyond (its build takes seconds where HNSW's takes minutes
    at a million vectors): ``IVF<lists>,Flat`` while raw vectors fit in ``memory``, else product
    quantisation (``IVF<lists>,PQ<m>``, ``m`` bytes a vector). The search parameter of an
    approximate index is set afterwards from a measured recall (:mod:`.index_tuning`).
    """
    if n < 0 or dim <= 0:
        raise ValueError(f"need n >= 0 and dim > 0, got n={n}, dim={dim}")
    raw = n * (4 * dim + ID_BYTES)
    graph = n * HNSW_LINKS * 2 * 4
    fits_raw = memory is None or raw <= memory
    if n < FLAT_LIMIT and fits_raw:
        return "IDMap2,Flat"
    if n < HNSW_LIMIT and (memory is None or raw + graph <= memory):
        return f"IDMap2,HNSW{HNSW_LINKS}"
    lists = 2 ** round(math.log2(max(1.0, LISTS_PER_SQRT * math.sqrt(n))))
    lists = int(max(1, min(65536, lists, 2 ** int(math.log2(max(1, n // MIN_POINTS_PER_LIST))))))
    if fits_raw:
        return f"IVF{lists},Flat"
    return f"IVF{lists},PQ{_pq_bytes(n, dim, memory)}"


def _pq_bytes(n: int, dim: int, memory: int | None) -> int:
    """Sub-quantisers of a PQ code: the largest divisor of ``dim`` up to 64 (at least two dimensions
    each) whose codes fit in ``memory``, else the smallest."""
    divisors = [m for m in range(max(1, min(64, dim // 2)), 0, -1) if dim % m == 0]
    for m in divisors:
        if memory is None or n * (m + ID_BYTES) <= memory:
            return m
    return divisors[-1]


@dataclass
class IndexState:
    """The database state an index generation was built from."""

    count: int
    max_id: int
    id_sum: int
    dim: int
    key: str = ""
    whitening: str = "identity"  # the fitted whitening's digest
    labels: str = ""  # digest of the vector ids and generator ids (labels_digest)

    def matches(self, other: "IndexState") -> bool:
        """Same vectors with the same generators, same dimension, same whitening (the index key may differ)."""
        return (self.count, self.max_id, self.id_sum, self.dim, self.whitening, self.labels) == (
            other.count, other.max_id, other.id_sum, other.dim, other.whitening, other.labels)

    def differences(self, other: "IndexState") -> list[str]:
        """What differs from ``other`` (the database's state), in words."""
        found = []
        if self.count != other.count:
            found.append(f"{self.count} vectors instead of {other.count}")
        elif (self.max_id, self.id_sum, self.labels) != (other.max_id, other.id_sum, other.labels):
            found.append("vector ids or their generators differ")
        if self.dim != other.dim:
            found.append(f"dimension {self.dim} instead of {other.dim}")
        if self.whitening != other.whitening:
            found.append("built with another whitening")
        return found


def labels_digest(ids: np.ndarray, generators: np.ndarray) -> str:
    """A digest of vector ids and their generator ids, in vector id order."""
    pairs = np.stack([np.asarray(ids, np.int64), np.asarray(generators, np.int64)]) if len(ids) else np.zeros((2, 0))
    return hashlib.sha256(np.ascontiguousarray(pairs, dtype="<i8").tobytes()).hexdigest()[:24]


def build_index(ids: np.ndarray, vectors: np.ndarray, dim: int, key: str | None = None) -> faiss.Index:
    """Build an inner-product index over L2-normalised vectors, keyed by ``ids``, with its search
    parameter tuned to recall@1 >= :data:`.index_tuning.TARGET_RECALL` (see
    :func:`.index_tuning.build_tuned_index`, which also returns the measured recall)."""
    return index_tuning.build_tuned_index(ids, vectors, dim, key)[0]


def index_path(root: Path, extractor_id: int) -> Path:
    """The sidecar of one extractor's index generation in the gallery folder ``root``."""
    return Path(root) / "index" / f"{extractor_id}.json"


@dataclass
class CachedIndex:
    """One index generation as read back: the index, its labels ([2, n] vector ids, generator ids), its state."""

    index: faiss.Index
    labels: np.ndarray
    state: IndexState
    files: tuple[Path, Path]  # the index file and the labels file


def _write_synced(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, sync it, move it onto ``path`` (never half written)."""
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_index(index: faiss.Index, path: Path, state: IndexState, ids: np.ndarray, generators: np.ndarray) -> None:
    """Write a new generation (labels, index, then the sidecar ``path`` naming them) and remove older ones.

    Sets ``state.labels`` to the digest of ``ids`` and ``generators``.
    """
    labels = np.stack([ids, generators]).astype(np.int64) if len(ids) else np.zeros((2, 0), np.int64)
    state.labels = labels_digest(labels[0], labels[1])
    token = hashlib.sha256(f"{state.labels}|{state.whitening}|{state.dim}|{state.key}".encode()).hexdigest()[:16]
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    stem = path.stem
    index_file, labels_file = folder / f"{stem}-{token}.faiss", folder / f"{stem}-{token}.labels.npy"
    buffer = _npy_bytes(labels)
    _write_synced(labels_file, buffer)
    _write_synced(index_file, faiss.serialize_index(index).tobytes())
    sidecar = {**asdict(state), "index_file": index_file.name, "labels_file": labels_file.name}
    _write_synced(path, json.dumps(sidecar).encode())
    _sync_folder(folder)
    for stale in _files_of(path):
        if stale not in (path, index_file, labels_file):
            stale.unlink(missing_ok=True)


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _files_of(path: Path) -> list[Path]:
    """Every file in the index folder that belongs to the extractor of sidecar ``path`` (any generation)."""
    stem = path.stem
    return [p for p in path.parent.glob(f"{stem}*") if p.name.startswith((f"{stem}-", f"{stem}."))]


def generation_files(path: Path) -> set[Path]:
    """The sidecar ``path`` and the files it names (empty when it cannot be read)."""
    try:
        fields = json.loads(path.read_text())
        return {path, path.parent / fields["index_file"], path.parent / fields["labels_file"]}
    except Exception:  # a damaged sidecar names nothing
        return set()


def stray_files(folder: Path, sidecars: list[Path]) -> list[Path]:
    """Files in the index ``folder`` that no sidecar in ``sidecars`` names: leftovers of killed or earlier writers."""
    if not folder.is_dir():
        return []
    named = set().union(*(generation_files(p) for p in sidecars)) if sidecars else set()
    return sorted(p for p in folder.iterdir() if p.is_file() and p not in named)


def remove_files(files: list[Path]) -> None:
    for path in files:
        path.unlink(missing_ok=True)


READ_TRIES = 100  # sidecars a reader follows while writers keep replacing generations


def read_cache(path: Path) -> CachedIndex | None:
    """The index generation named by sidecar ``path`` when its files exist and agree with it, else None.

    A writer may replace the generation (and remove the previous one) while it is read: a file found
    missing sends the reader back to the sidecar, as long as the sidecar has changed since.
    """
    seen = None
    for _ in range(READ_TRIES):
        try:
            text = path.read_text()
            fields = json.loads(text)
            state = IndexState(**{k: v for k, v in fields.items() if k in IndexState.__dataclass_fields__})
            files = (path.parent / fields["index_file"], path.parent / fields["labels_file"])
        except Exception:  # missing, damaged or of an earlier format: rebuilt, never trusted
            return None
        if text == seen:
            return None  # the sidecar names a file that is gone: an incomplete generation
        seen = text
        try:
            data = files[0].read_bytes()
            labels = np.load(files[1], allow_pickle=False)
        except FileNotFoundError:
            continue  # replaced by a writer since the sidecar was read
        except Exception:  # a damaged cache is rebuilt, never trusted
            return None
        index = _deserialize(data)
        if index is None or not _agrees(index, labels, state):
            return None
        return CachedIndex(index, labels, state, files)
    return None


def why_unreadable(path: Path) -> str:
    """Why the generation of sidecar ``path`` cannot be read, in words (for a cache read_cache refused)."""
    if not path.exists():
        return "missing"
    named = generation_files(path)
    if not named:
        return "of an earlier format or their sidecar is damaged"
    if not all(p.exists() for p in named):
        return "incomplete (a file the sidecar names is missing)"
    return "damaged or do not agree with their sidecar"


def _deserialize(data: bytes) -> faiss.Index | None:
    try:
        return faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
    except Exception:  # a damaged cache is rebuilt, never trusted
        return None


def _agrees(index: faiss.Index, labels: np.ndarray, state: IndexState) -> bool:
    """The index and labels are what the sidecar says: sizes, dimension, digest, and the index's own ids."""
    if not (isinstance(labels, np.ndarray) and labels.ndim == 2 and labels.shape == (2, state.count)):
        return False
    if labels.dtype.kind != "i" or index.ntotal != state.count or index.d != state.dim:
        return False
    if labels_digest(labels[0], labels[1]) != state.labels:
        return False
    if isinstance(index, faiss.IndexIDMap2):
        return bool(np.array_equal(faiss.vector_to_array(index.id_map), labels[0]))
    return True


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
        ivf = faiss.extract_index_ivf(index)
        if ivf.direct_map.type == faiss.DirectMap.NoMap:  # built with database ids: a hash-table map
            ivf.set_direct_map_type(faiss.DirectMap.Hashtable)
    return np.stack([index.reconstruct(int(i)) for i in ids]).astype(np.float32)
