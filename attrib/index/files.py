"""FAISS indexes: a rebuildable cache of the durable vectors in the database.

Each extractor identity has one index generation: a *base* (an index file and a labels file,
the vector id and generator id of every vector, aligned with the index) and zero or more
*deltas* appended since (``.delta.npz``: ids, generator ids and whitened vectors of vectors
enrolled later), all named by a token of their content, and a JSON sidecar
(``index/<extractor id>.json``) naming them and recording the database state they reflect:
count, largest id and id sum, the extractor's revision, the whitening's digest and a digest of
the labels chained over the base and every delta. An enroll appends one delta (it writes
O(new) bytes); when the deltas grow past a share of the base they are folded into a new base.

Every file is written to a temporary name, synced and moved into place with ``os.replace``;
the sidecar goes last, so a reader sees either the previous generation or the new one, never a
mix, and files no sidecar names any more are removed after. A reader trusts a generation only
when its files agree with the sidecar and the sidecar with the database
(:func:`attrib.upkeep.freshness.load_index_view`). Readers that only search memory-map the base
(:func:`read_cache` with ``mmap``) and search the deltas exactly beside it (:class:`LayeredIndex`).
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from . import tuning


@dataclass
class IndexState:
    """The database state an index generation was built from."""

    count: int
    max_id: int
    id_sum: int
    dim: int
    key: str = ""
    whitening: str = "identity"  # the fitted whitening's digest
    labels: str = ""  # digest of the vector ids and generator ids (labels_digest, chained over deltas)
    revision: int | None = None  # the extractor's revision the generation reflects (None: not recorded)

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


def differences_from(cached: "CachedIndex", state: IndexState) -> list[str]:
    """What differs between a generation read back (every id and label, over base and deltas) and
    ``state``, the database's (:meth:`IndexState.differences`)."""
    ids, generators = cached.labels
    found = IndexState(len(ids), int(ids.max()) if len(ids) else 0, int(ids.sum()), cached.state.dim,
                       whitening=cached.state.whitening, labels=labels_digest(ids, generators))
    return found.differences(state)


def labels_digest(ids: np.ndarray, generators: np.ndarray) -> str:
    """A digest of vector ids and their generator ids, in vector id order."""
    pairs = np.stack([np.asarray(ids, np.int64), np.asarray(generators, np.int64)]) if len(ids) else np.zeros((2, 0))
    return hashlib.sha256(np.ascontiguousarray(pairs, dtype="<i8").tobytes()).hexdigest()[:24]


def index_path(root: Path, extractor_id: int) -> Path:
    """The sidecar of one extractor's index generation in the gallery folder ``root``."""
    return Path(root) / "index" / f"{extractor_id}.json"


FOLD_SHARE = 0.25  # deltas are folded into a new base once they hold more than this share of it ...
FOLD_MIN = 5_000  # ... and more than this many vectors
MAX_DELTAS = 64  # ... or once there are this many delta files
MMAP_FLAG = getattr(faiss, "IO_FLAG_MMAP_IFC", faiss.IO_FLAG_MMAP)  # zero-copy where FAISS supports it


class LayeredIndex:
    """A base FAISS index and the vectors appended since it was written (searched exactly beside it).

    The base may be memory-mapped and is never changed; anything else is asked of the base.
    """

    def __init__(self, base: faiss.Index, ids: np.ndarray, vectors: np.ndarray):
        self.base = base
        self.delta_ids = np.asarray(ids, np.int64)
        self.delta_vectors = np.ascontiguousarray(vectors, dtype=np.float32)

    @property
    def ntotal(self) -> int:
        return int(self.base.ntotal) + len(self.delta_ids)

    @property
    def d(self) -> int:
        return int(self.base.d)

    def search(self, queries: np.ndarray, k: int, copy: faiss.Index | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k similarities and ids over the base and the deltas; ``copy``: a copy of the base searched in
        its place (on a GPU, :mod:`.gpu`)."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        searched = self.base if copy is None else copy
        base = searched.search(queries, min(k, int(self.base.ntotal))) if self.base.ntotal else None
        return self._merged(queries, k, base, np.ones(len(self.delta_ids), bool))

    def search_among(self, queries: np.ndarray, k: int, ids: np.ndarray, everywhere: bool = False
                     ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k among the vectors ``ids`` only: the base searched through an ID selector
        (:func:`.tuning.search_among`), the deltas exactly."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        base = (tuning.search_among(self.base, queries, min(k, int(self.base.ntotal)), ids, everywhere)
                if self.base.ntotal else None)
        return self._merged(queries, k, base, np.isin(self.delta_ids, ids))

    def _merged(self, queries: np.ndarray, k: int, base: tuple[np.ndarray, np.ndarray] | None, among: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
        """The top-k of the base's answer and of the delta vectors where ``among``, by similarity (k columns,
        padded with id -1 as FAISS pads)."""
        parts_s, parts_i = [np.full((len(queries), k), -np.inf, np.float32)], [np.full((len(queries), k), -1, np.int64)]
        if base is not None:
            parts_s.append(base[0])
            parts_i.append(base[1])
        if among.any():
            sims = queries @ self.delta_vectors[among].T
            top = min(k, sims.shape[1])
            best = np.argpartition(-sims, top - 1, axis=1)[:, :top]
            parts_s.append(np.take_along_axis(sims, best, axis=1))
            parts_i.append(self.delta_ids[among][best])
        scores, ids = np.concatenate(parts_s, axis=1), np.concatenate(parts_i, axis=1)
        scores = np.where(ids >= 0, scores, -np.inf)
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(scores, order, axis=1).astype(np.float32), np.take_along_axis(ids, order, axis=1)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.base, name)


GalleryIndex = faiss.Index | LayeredIndex  # what a generation is read back as: a LayeredIndex when it has deltas


@dataclass
class CachedIndex:
    """One index generation as read back: the index (a :class:`LayeredIndex` when it has deltas), its
    labels ([2, n] vector ids, generator ids, by id), its state, and the files it was read from."""

    index: GalleryIndex
    labels: np.ndarray
    state: IndexState
    files: tuple[Path, ...]  # the index file, the labels file, then the delta files


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


def chain_digest(previous: str, delta: str) -> str:
    """The labels digest of a generation after appending a delta whose own labels digest is ``delta``."""
    return hashlib.sha256(f"{previous}|{delta}".encode()).hexdigest()[:24]


def write_index(index: faiss.Index, path: Path, state: IndexState, ids: np.ndarray, generators: np.ndarray) -> None:
    """Write a new base generation without deltas (labels, index, then the sidecar ``path`` naming them)
    and remove older files.

    Sets ``state.labels`` to the digest of ``ids`` and ``generators``.
    """
    labels = np.stack([ids, generators]).astype(np.int64) if len(ids) else np.zeros((2, 0), np.int64)
    state.labels = labels_digest(labels[0], labels[1])
    token = hashlib.sha256(f"{state.labels}|{state.whitening}|{state.dim}|{state.key}".encode()).hexdigest()[:16]
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    stem = path.stem
    index_file, labels_file = folder / f"{stem}-{token}.faiss", folder / f"{stem}-{token}.labels.npy"
    _write_synced(labels_file, _npy_bytes(labels))
    _write_synced(index_file, faiss.serialize_index(index).tobytes())
    sidecar = {**asdict(state), "index_file": index_file.name, "labels_file": labels_file.name,
               "base_count": len(labels[0]), "base_labels": state.labels, "deltas": []}
    _write_synced(path, json.dumps(sidecar).encode())
    _sync_folder(folder)
    for stale in _files_of(path):
        if stale not in (path, index_file, labels_file):
            stale.unlink(missing_ok=True)


def read_sidecar(path: Path) -> dict[str, Any] | None:
    """The fields of sidecar ``path`` (None when missing, damaged or of an earlier format)."""
    try:
        return _parse_sidecar(path.read_text())
    except OSError:
        return None


def _parse_sidecar(text: str) -> dict[str, Any] | None:
    try:
        fields = json.loads(text)
        IndexState(**{k: v for k, v in fields.items() if k in IndexState.__dataclass_fields__})
        if not all(name in fields for name in ("index_file", "labels_file", "base_count", "deltas")):
            return None
        return fields
    except Exception:  # missing, damaged or of an earlier format: rebuilt, never trusted
        return None


def sidecar_state(fields: dict[str, Any]) -> IndexState:
    return IndexState(**{k: v for k, v in fields.items() if k in IndexState.__dataclass_fields__})


def append_delta(path: Path, ids: np.ndarray, generators: np.ndarray, vectors: np.ndarray, revision: int) -> bool:
    """Append vectors enrolled after the generation of sidecar ``path`` (ids above its largest, whitened
    like it) as one delta file, then the sidecar naming it; False (nothing written) when there is no
    readable generation or the ids do not come after it."""
    fields = read_sidecar(path)
    ids = np.asarray(ids, np.int64)
    if fields is None or (len(ids) and int(ids.min()) <= fields["max_id"] and fields["count"]):
        return False
    if len(ids) and (vectors.ndim != 2 or vectors.shape[1] != fields["dim"]):
        return False
    state = sidecar_state(fields)
    deltas = list(fields["deltas"])
    if len(ids):
        generators = np.asarray(generators, np.int64)
        digest = labels_digest(ids, generators)
        state.labels = chain_digest(state.labels, digest)
        delta_file = path.parent / f"{path.stem}-{state.labels[:16]}.delta.npz"
        buffer = io.BytesIO()
        np.savez(buffer, ids=ids, generators=generators, vectors=np.ascontiguousarray(vectors, np.float32))
        _write_synced(delta_file, buffer.getvalue())
        deltas.append({"file": delta_file.name, "count": len(ids), "labels": digest})
        state.count, state.max_id, state.id_sum = state.count + len(ids), int(ids.max()), state.id_sum + int(ids.sum())
    state.revision = revision
    sidecar = {**fields, **asdict(state), "deltas": deltas}
    _write_synced(path, json.dumps(sidecar).encode())
    _sync_folder(path.parent)
    return True


def needs_fold(fields: dict[str, Any]) -> bool:
    """Whether the deltas of a generation (its sidecar ``fields``) should be folded into a new base."""
    appended = sum(d["count"] for d in fields["deltas"])
    return len(fields["deltas"]) >= MAX_DELTAS or (appended > FOLD_MIN and appended > FOLD_SHARE * fields["base_count"])


def fold(path: Path) -> bool:
    """Fold the deltas of the generation at ``path`` into a new base (the base index read into memory, the
    delta vectors added to it with ``add_with_ids``); False when it cannot be read."""
    cached = read_cache(path)
    if cached is None:
        return False
    index = cached.index
    if isinstance(index, LayeredIndex):
        index.base.add_with_ids(index.delta_vectors, index.delta_ids)
        index = index.base
    state = cached.state
    write_index(index, path, state, cached.labels[0], cached.labels[1])
    return True


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
    fields = read_sidecar(path)
    if fields is None:
        return set()
    return {path, path.parent / fields["index_file"], path.parent / fields["labels_file"],
            *(path.parent / d["file"] for d in fields["deltas"])}


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


def read_cache(path: Path, mmap: bool = False) -> CachedIndex | None:
    """The index generation named by sidecar ``path`` when its files exist and agree with it, else None.

    ``mmap``: memory-map the base index where FAISS can (for searching only: it must not be changed).
    A writer may replace the generation (and remove the previous one) while it is read: a file found
    missing sends the reader back to the sidecar. A sidecar written anew is followed again, even with the
    same text (writers may have replaced a generation and then written the same one again, files and
    sidecar alike); the very same sidecar file (inode, modification time, size) is followed once more, and
    when it names a missing file twice in a row it is an incomplete generation.
    """
    seen, again = None, 0
    for _ in range(READ_TRIES):
        try:
            with open(path, "rb") as handle:
                stat = os.fstat(handle.fileno())
                text = handle.read().decode("utf-8")
        except Exception:
            return None
        read = (text, stat.st_ino, stat.st_mtime_ns, stat.st_size)
        again = again + 1 if read == seen else 0
        fields = _parse_sidecar(text) if again < 2 else None
        if fields is None:
            return None  # damaged, or the sidecar names a file that is gone: an incomplete generation
        seen = read
        try:
            return _read_generation(path.parent, fields, mmap)
        except FileNotFoundError:
            continue  # replaced by a writer since the sidecar was read
    return None


def _read_generation(folder: Path, fields: dict[str, Any], mmap: bool) -> CachedIndex | None:
    state = sidecar_state(fields)
    files = (folder / fields["index_file"], folder / fields["labels_file"],
             *(folder / d["file"] for d in fields["deltas"]))
    try:
        labels = np.load(files[1], allow_pickle=False)
        read = [_read_delta(file) for file in files[2:]]
        if mmap:
            base: faiss.Index | None = _read_mapped(files[0])
        else:
            base = _deserialize(files[0].read_bytes())
    except FileNotFoundError:
        raise
    except Exception:  # a damaged cache is rebuilt, never trusted
        return None
    deltas = [delta for delta in read if delta is not None]
    if base is None or len(deltas) != len(read):
        return None
    base_state = IndexState(fields["base_count"], 0, 0, state.dim, labels=fields.get("base_labels", ""))
    if not _agrees(base, labels, base_state):
        return None
    digest = base_state.labels
    for delta, described in zip(deltas, fields["deltas"]):
        ids, generators, vectors = delta
        if len(ids) != described["count"] or labels_digest(ids, generators) != described["labels"]:
            return None
        if vectors.shape != (len(ids), state.dim):
            return None
        digest = chain_digest(digest, described["labels"])
    if digest != state.labels:
        return None
    index: GalleryIndex = base
    if deltas:
        labels = np.concatenate([labels] + [np.stack([d[0], d[1]]) for d in deltas], axis=1)
        index = LayeredIndex(base, labels[0][fields["base_count"]:], np.concatenate([d[2] for d in deltas]))
    if labels.shape[1] != state.count or (state.count and (int(labels[0].max()) != state.max_id
                                                           or int(labels[0].sum()) != state.id_sum)):
        return None
    return CachedIndex(index, labels, state, files)


def _read_mapped(file: Path) -> faiss.Index:
    """The index in ``file``, memory-mapped; FileNotFoundError when the file is gone (a writer removed it,
    also between a check and FAISS opening it) or FAISS found it gone (a writer may have written it again
    since), whatever FAISS raises otherwise."""
    try:
        return faiss.read_index(str(file), MMAP_FLAG)
    except RuntimeError as exc:
        if not file.exists() or os.strerror(errno.ENOENT) in str(exc):
            raise FileNotFoundError(file) from None
        raise


def _read_delta(file: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    with np.load(file, allow_pickle=False) as npz:
        ids, generators, vectors = npz["ids"], npz["generators"], npz["vectors"]
    if ids.dtype.kind != "i" or generators.dtype.kind != "i" or vectors.dtype != np.float32 or vectors.ndim != 2:
        return None
    if ids.shape != generators.shape or ids.ndim != 1:
        return None
    return ids.astype(np.int64), generators.astype(np.int64), vectors


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
    """The base index and labels are what the sidecar says: sizes, dimension, digest, and the index's own ids."""
    if not (isinstance(labels, np.ndarray) and labels.ndim == 2 and labels.shape == (2, state.count)):
        return False
    if labels.dtype.kind != "i" or index.ntotal != state.count or index.d != state.dim:
        return False
    if labels_digest(labels[0], labels[1]) != state.labels:
        return False
    if isinstance(index, faiss.IndexIDMap2):
        return bool(np.array_equal(faiss.vector_to_array(index.id_map), labels[0]))
    return True


def search(index: GalleryIndex, queries: np.ndarray, k: int, copy: faiss.Index | None = None
           ) -> tuple[np.ndarray, np.ndarray]:
    """Top-k inner products and ids; k is clipped to the index size. ``copy``: a copy of the FAISS index (of
    a :class:`LayeredIndex`, of its base) searched in its place (on a GPU, :mod:`.gpu`)."""
    k = max(1, min(k, index.ntotal))
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    if isinstance(index, LayeredIndex):
        return index.search(queries, k, copy)
    scores, ids = (index if copy is None else copy).search(queries, k)
    return scores, ids


def reconstruct(index: GalleryIndex, ids: np.ndarray) -> np.ndarray:
    """Stored vectors for database ids (IDMap2 indexes keep them; IVF needs its direct map)."""
    ids = np.asarray(ids, np.int64)
    if len(ids) == 0:
        return np.zeros((0, index.d), dtype=np.float32)
    if isinstance(index, LayeredIndex):
        out = np.zeros((len(ids), index.d), np.float32)
        position = np.searchsorted(index.delta_ids, ids)
        in_delta = (position < len(index.delta_ids)) & (index.delta_ids[np.minimum(position, len(index.delta_ids) - 1)]
                                                       == ids) if len(index.delta_ids) else np.zeros(len(ids), bool)
        out[in_delta] = index.delta_vectors[position[in_delta]]
        out[~in_delta] = reconstruct(index.base, ids[~in_delta])
        return out
    if not isinstance(index, faiss.IndexIDMap2):
        tuning.keep_direct_map(faiss.extract_index_ivf(index))  # built with database ids: a hash-table map
    return np.stack([index.reconstruct(int(i)) for i in ids]).astype(np.float32)
