"""The storage interface: everything the scoring side reads and writes about a gallery.

Two implementations: :class:`attrib.storage.sqlite.SQLiteStore` (SQLAlchemy, reads and
writes, migrates, rebuilds) and :class:`attrib.storage.fast_reader.FastReader` (plain sqlite3,
read-only, for a quick ``attrib identify``). Whether the stored fits and an index generation
can be trusted is decided in one place, :func:`load_index_view` (with :func:`fit_problems` and
:func:`index_problems`), from what either implementation reads.

Freshness: every vector insert or delete bumps its extractor's ``revision`` in the same
transaction (database triggers, schema 5); the whitening and the calibration record the
revision they were fitted at. The calibration is stale when it differs, the whitening once the
gallery changed enough since (:func:`attrib.scoring.whitening.refit_reason`). An index
generation is current when it records the database's revision and whitening (a reader's check),
or when its ids, labels, dimension and whitening match the database (the full check).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ContextManager, Protocol

import numpy as np

from ..scoring.calibration import DEFAULT_THRESHOLD
from ..scoring.whitening import Whitening, refit_reason
from . import faiss_cache, faiss_gpu, index_tuning


@dataclass
class CalibrationState:
    """The stored calibration of one extractor: thresholds by generator id (None: global), d', FAR."""

    thresholds: dict[int | None, float]
    separation: float | None = None  # d' of held-out genuine vs impostor scores (the fusion weight)
    target_far: float | None = None  # the FAR the thresholds were calibrated at
    model: dict | None = None  # the open-set decision model (attrib.scoring.open_set.DecisionModel)


@dataclass
class IndexView:
    """A loaded index with the generator id of every vector id, for one extractor."""

    extractor_id: int
    extractor_key: str
    index: object
    ids: np.ndarray  # sorted vector ids
    generator_ids: np.ndarray  # aligned with ids
    generator_names: dict[int, str]
    thresholds: dict[int | None, float]
    whitening: Whitening
    separation: float | None = None  # the calibration's d' (fusion weight); None before schema 3 calibration
    rebuilt: bool = False
    target_far: float | None = None  # the FAR the thresholds were calibrated at
    model: dict | None = None  # the open-set decision model; None for a gallery calibrated without a cohort
    families: dict[int, str | None] = field(default_factory=dict)
    cache: dict = field(default_factory=dict, repr=False, compare=False)  # what scoring derives from it, kept

    def generators_of(self, vector_ids: np.ndarray) -> np.ndarray:
        pos = np.searchsorted(self.ids, vector_ids)
        pos = np.clip(pos, 0, max(len(self.ids) - 1, 0))
        return np.where(self.ids[pos] == vector_ids, self.generator_ids[pos], -1)

    def threshold(self, generator_id: int | None) -> float:
        """The generator's calibrated threshold, else the global one (``None``), else the default."""
        return float(self.thresholds.get(generator_id, self.thresholds.get(None, DEFAULT_THRESHOLD)))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k similarities and vector ids of whitened queries (on a GPU copy when one is usable)."""
        return faiss_gpu.search(self.index, queries, k)

    def search_among(self, queries: np.ndarray, k: int, vector_ids: np.ndarray, everywhere: bool = False
                     ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k similarities and vector ids of whitened queries among ``vector_ids`` only."""
        return index_tuning.search_among(self.index, queries, k, vector_ids, everywhere)

    def generator_vectors(self, generator_id: int) -> np.ndarray:
        """The whitened (searchable) vectors of one generator, read back from the index."""
        return faiss_cache.reconstruct(self.index, self.ids[self.generator_ids == generator_id])


class GalleryReads(Protocol):
    """What identification, verification and fusion read; both implementations provide it."""

    root: Path

    def snapshot(self) -> ContextManager[None]:
        """Reads inside the block see one state of the database (a read transaction)."""

    def extractor_id(self, key: str) -> int | None:
        """The id of extractor identity ``key``; None when the gallery has no such extractor."""

    def extractor_key(self, extractor_id: int) -> str:
        """The identity key of one extractor."""

    def extractor_names(self) -> set[str]:
        """Names of the extractors the gallery holds vectors for."""

    def revision(self, extractor_id: int) -> int:
        """How many times one extractor's vectors changed (bumped with every vector insert or delete)."""

    def fit_revisions(self, extractor_id: int) -> tuple[int | None, int | None]:
        """The revisions the whitening and the calibration were fitted at (None: not recorded)."""

    def labels(self, extractor_id: int) -> tuple[np.ndarray, np.ndarray]:
        """(vector ids, generator ids) of one extractor, by vector id."""

    def added_since(self, extractor_id: int, after_id: int) -> dict[int, int]:
        """How many of one extractor's vectors have ids above ``after_id``, by generator id."""

    def vectors(self, extractor_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(vector ids, generator ids, float32 matrix) of one extractor, by vector id."""

    def index_state(self, extractor_id: int) -> faiss_cache.IndexState:
        """What the index of one extractor must reflect: its vectors (ids, labels) and the whitening."""

    def whitening(self, extractor_id: int) -> Whitening:
        """The whitening fitted on one extractor's vectors (identity before any fit)."""

    def calibration(self, extractor_id: int) -> CalibrationState:
        """The stored thresholds of one extractor."""

    def generator_names(self) -> dict[int, str]:
        """Every enrolled generator's name by id."""

    def generator_families(self) -> dict[int, str | None]:
        """Every enrolled generator's family by id."""

    def sample_ids(self, extractor_id: int) -> np.ndarray:
        """Sorted ids of the samples one extractor has vectors for."""

    def exemplars(self, vector_ids: list[int]) -> dict[int, tuple[str, str]]:
        """(original path, sha256) of the samples behind vector ids."""

    def sample_owner(self, sha256: str) -> str | None:
        """The generator a file with this sha256 is enrolled under, if any."""

    def cohort(self, extractor_id: int, version: str) -> np.ndarray | None:
        """The impostor cohort embedded by one extractor at cohort ``version``; None when not stored."""

    def vectors_of_samples(self, extractor_id: int, sample_ids: np.ndarray | None = None
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(sample ids, generator ids, float32 matrix) by sample id; only ``sample_ids`` when given."""


class GalleryStore(GalleryReads, Protocol):
    """Everything scoring and the gallery write: the SQLite store implements all of it."""

    def save_whitening(self, extractor_id: int, whitening: Whitening, n_fitted: int, revision: int) -> None:
        """Store the whitening fitted on ``n_fitted`` of one extractor's vectors at ``revision``."""

    def save_calibration(self, extractor_id: int, result, target_far: float, revision: int) -> None:
        """Replace one extractor's thresholds by a calibration result fitted at ``revision``, and audit it."""

    def write_index(self, extractor_id: int, force: bool = False) -> bool:
        """Rebuild one extractor's index generation from durable vectors if stale; True if rebuilt."""

    def audit(self, action: str, detail: dict) -> None:
        """Append an entry to the audit trail."""

    def save_cohort(self, extractor_id: int, version: str, vectors: np.ndarray) -> None:
        """Store the impostor cohort embedded by one extractor."""


def fit_problems(store: GalleryReads, extractor_id: int) -> list[str]:
    """Why one extractor's whitening or calibration cannot be trusted: the calibration fitted at another
    revision of its vectors, the whitening fitted on a gallery that changed too much since
    (:func:`attrib.scoring.whitening.refit_reason`), or either without a record of it (empty when both
    are current)."""
    revision = store.revision(extractor_id)
    key = store.extractor_key(extractor_id)
    problems = []
    whitened, calibrated = store.fit_revisions(extractor_id)
    if whitened is None:
        problems.append(f"the whitening of {key} does not record which vectors it was fitted on")
    elif whitened != revision:
        why = whitening_refit_reason(store, extractor_id, revision - whitened)
        if why is not None:
            problems.append(f"the whitening of {key} was fitted at revision {whitened} of its vectors, "
                            f"which are now at revision {revision}" + (f" ({why})" if why else ""))
    if calibrated is None:
        problems.append(f"the calibration of {key} does not record which vectors it was fitted on")
    elif calibrated != revision:
        problems.append(f"the calibration of {key} was fitted at revision {calibrated} of its vectors, "
                        f"which are now at revision {revision}")
    if problems and not len(store.labels(extractor_id)[0]):
        return []  # nothing to fit: an extractor without vectors
    return problems


def whitening_refit_reason(store: GalleryReads, extractor_id: int, changes: int) -> str | None:
    """:func:`attrib.scoring.whitening.refit_reason` for one extractor's stored whitening after ``changes``
    since its fit: bounded by their number alone first, and only when that bound says refit, with the
    vectors added since the fit counted by generator (a read of those vectors' labels, never the rest)."""
    whitening = store.whitening(extractor_id)
    reason = refit_reason(whitening, changes)
    if reason and whitening.fitted_counts:
        reason = refit_reason(whitening, changes, store.added_since(extractor_id, whitening.fitted_max_id))
    return reason


def index_problems(store: GalleryReads, extractor_id: int, full: bool = True
                   ) -> tuple[list[str], faiss_cache.CachedIndex | None]:
    """Why one extractor's index generation cannot be trusted (empty when it matches the database),
    with the generation read back. ``full``: compare every vector id and label with the database;
    else (a reader's check) the revision and whitening its sidecar records, falling back to the full
    comparison for a generation that does not record its revision. Not ``full``, the base index is
    memory-mapped (search only)."""
    path = faiss_cache.index_path(store.root, extractor_id)
    cached = faiss_cache.read_cache(path, mmap=not full)
    if cached is None:
        return [f"index files are {faiss_cache.why_unreadable(path)}"], None
    if not full and cached.state.revision is not None:
        revision, whitening = store.revision(extractor_id), store.whitening(extractor_id).digest
        if cached.state.revision == revision and cached.state.whitening == whitening:
            return [], cached
        differences = [f"revision {cached.state.revision} instead of {revision}"] * (cached.state.revision != revision)
        differences += ["built with another whitening"] * (cached.state.whitening != whitening)
        return [f"index is out of date with the database ({'; '.join(differences)})"], cached
    differences = faiss_cache.differences_from(cached, store.index_state(extractor_id))
    return ([f"index is out of date with the database ({'; '.join(differences)})"] if differences else []), cached


def load_index_view(store: GalleryReads, key: str) -> IndexView | None:
    """The index view of extractor identity ``key`` when the whitening and calibration are current and the
    index generation on disk matches the database (:func:`index_problems`, a reader's check); None when
    there is no such extractor, no vector, or anything is stale."""
    with store.snapshot():
        extractor_id = store.extractor_id(key)
        if extractor_id is None or fit_problems(store, extractor_id):
            return None
        problems, cached = index_problems(store, extractor_id, full=False)
        if problems or not cached.state.count:
            return None
        return _view(store, extractor_id, key, cached.index, cached.labels[0], cached.labels[1])


def memory_view(store: GalleryReads, key: str) -> IndexView | None:
    """The index view of ``key`` built in memory from the stored vectors (for a gallery that cannot be
    written, whose index files are stale); None when there is no such extractor or no vector."""
    with store.snapshot():
        extractor_id = store.extractor_id(key)
        if extractor_id is None:
            return None
        ids, gens, matrix = store.vectors(extractor_id)
        if not len(ids):
            return None
        whitening = store.whitening(extractor_id)
        index = faiss_cache.build_index(ids, whitening.apply(matrix), whitening.out_dim(matrix.shape[1]))
        return _view(store, extractor_id, key, index, ids, gens)


def _view(store: GalleryReads, extractor_id: int, key: str, index, ids: np.ndarray, gens: np.ndarray) -> IndexView:
    calibration = store.calibration(extractor_id)
    return IndexView(
        extractor_id, key, index, ids, gens, store.generator_names(),
        calibration.thresholds or {None: DEFAULT_THRESHOLD}, store.whitening(extractor_id),
        separation=calibration.separation, target_far=calibration.target_far, model=calibration.model,
        families=store.generator_families(),
    )


def state_of(ids: np.ndarray, generators: np.ndarray, dim: int, whitening: Whitening) -> faiss_cache.IndexState:
    """The index state that durable vectors (ids and their generators) and a fitted whitening call for."""
    ids = np.asarray(ids, np.int64)
    return faiss_cache.IndexState(len(ids), int(ids.max()) if len(ids) else 0, int(ids.sum()),
                                  whitening.out_dim(dim), whitening=whitening.digest,
                                  labels=faiss_cache.labels_digest(ids, generators))


def stack_rows(rows, dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(first column, second column, float32 matrix of the third) from (id, generator id, blob) rows."""
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    gens = np.array([r[1] for r in rows], dtype=np.int64)
    matrix = (np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float32).reshape(len(rows), dim)
              if rows else np.zeros((0, dim), dtype=np.float32))
    return ids, gens, matrix
