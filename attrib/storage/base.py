"""The storage interface: everything the scoring side reads and writes about a gallery.

Two implementations: :class:`attrib.storage.sqlite.SQLiteStore` (SQLAlchemy, reads and
writes, migrates, rebuilds) and :class:`attrib.storage.fast_reader.FastReader` (plain sqlite3,
read-only, for a quick ``attrib identify``). Whether an index file can be trusted is decided
in one place, :func:`load_index_view`, from what either implementation reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from ..scoring.calibration import DEFAULT_THRESHOLD
from ..scoring.whitening import Whitening
from . import faiss_cache


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

    def generators_of(self, vector_ids: np.ndarray) -> np.ndarray:
        pos = np.searchsorted(self.ids, vector_ids)
        pos = np.clip(pos, 0, max(len(self.ids) - 1, 0))
        return np.where(self.ids[pos] == vector_ids, self.generator_ids[pos], -1)

    def threshold(self, generator_id: int | None) -> float:
        """The generator's calibrated threshold, else the global one (``None``), else the default."""
        return float(self.thresholds.get(generator_id, self.thresholds.get(None, DEFAULT_THRESHOLD)))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k similarities and vector ids of whitened queries."""
        return faiss_cache.search(self.index, queries, k)

    def generator_vectors(self, generator_id: int) -> np.ndarray:
        """The whitened (searchable) vectors of one generator, read back from the index."""
        return faiss_cache.reconstruct(self.index, self.ids[self.generator_ids == generator_id])


class GalleryReads(Protocol):
    """What identification, verification and fusion read; both implementations provide it."""

    root: Path

    def extractor_id(self, key: str) -> int | None:
        """The id of extractor identity ``key``; None when the gallery has no such extractor."""

    def extractor_names(self) -> set[str]:
        """Names of the extractors the gallery holds vectors for."""

    def index_state(self, extractor_id: int) -> faiss_cache.IndexState:
        """What the index of one extractor must reflect: its vectors (count, ids) and the whitening."""

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

    def vectors(self, extractor_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(vector ids, generator ids, float32 matrix) of one extractor, by vector id."""

    def save_whitening(self, extractor_id: int, whitening: Whitening, n_fitted: int) -> None:
        """Store the whitening fitted on ``n_fitted`` of one extractor's vectors."""

    def save_calibration(self, extractor_id: int, result, target_far: float) -> None:
        """Replace one extractor's thresholds by a calibration result, and audit it."""

    def write_index(self, extractor_id: int, force: bool = False) -> bool:
        """Rebuild one extractor's index file from durable vectors if stale; True if rebuilt."""

    def audit(self, action: str, detail: dict) -> None:
        """Append an entry to the audit trail."""

    def save_cohort(self, extractor_id: int, version: str, vectors: np.ndarray) -> None:
        """Store the impostor cohort embedded by one extractor."""


def load_index_view(store: GalleryReads, key: str) -> IndexView | None:
    """The index view of extractor identity ``key`` when the index on disk matches the database
    exactly; None when there is no such extractor, no vector, or the cache cannot be trusted."""
    extractor_id = store.extractor_id(key)
    if extractor_id is None:
        return None
    state = store.index_state(extractor_id)
    if not state.count:
        return None
    path = faiss_cache.index_path(store.root, extractor_id)
    loaded = faiss_cache.read_index(path)
    if loaded is None or not loaded[1].matches(state):
        return None
    labels = faiss_cache.read_labels(path, state.count)
    if labels is None:
        return None
    calibration = store.calibration(extractor_id)
    return IndexView(
        extractor_id, key, loaded[0], labels[0], labels[1], store.generator_names(),
        calibration.thresholds or {None: DEFAULT_THRESHOLD}, store.whitening(extractor_id),
        separation=calibration.separation, target_far=calibration.target_far, model=calibration.model,
        families=store.generator_families(),
    )


def expected_state(count: int, max_id: int | None, id_sum: int | None, dim: int,
                   whitening: Whitening) -> faiss_cache.IndexState:
    """The index state that durable vectors and a fitted whitening call for."""
    return faiss_cache.IndexState(int(count), int(max_id or 0), int(id_sum or 0), whitening.out_dim(dim),
                                  whitening=whitening.digest)
