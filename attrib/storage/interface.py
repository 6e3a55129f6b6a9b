"""The storage interface: what identification, scoring and upkeep read and write about a gallery.

Two implementations: the SQL store (:class:`attrib.storage.sql.SQLStore`, SQLAlchemy: reads and writes,
migrates, rebuilds) and :class:`attrib.storage.fast_reader.FastReader` (plain sqlite3, read-only, for a
quick ``attrib identify``). Whether what they read can be trusted (fits and index files current) is
decided above storage, in :mod:`attrib.upkeep.freshness`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ContextManager, Protocol, Sequence

import numpy as np

from ..index import files
from ..index.whitening import Whitening

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


@dataclass
class CalibrationState:
    """The stored calibration of one extractor: thresholds by generator id (None: global), d', FAR."""

    thresholds: dict[int | None, float]
    separation: float | None = None  # d' of held-out genuine vs impostor scores (the fusion weight)
    target_far: float | None = None  # the FAR the thresholds were calibrated at
    model: dict[str, Any] | None = None  # the open-set decision model (attrib.scoring.open_set.DecisionModel)


class ThresholdRecord(Protocol):
    """One calibrated threshold as storage keeps it (:class:`attrib.scoring.calibration.Threshold`)."""

    @property
    def generator_id(self) -> int | None: ...  # None: the global open-set threshold
    @property
    def threshold(self) -> float: ...
    @property
    def method(self) -> str: ...
    @property
    def n_genuine(self) -> int: ...
    @property
    def n_impostor(self) -> int: ...
    @property
    def tar(self) -> float | None: ...


class CalibrationRecord(Protocol):
    """A calibration as storage keeps it (:class:`attrib.scoring.calibration.CalibrationResult`)."""

    @property
    def thresholds(self) -> Sequence[ThresholdRecord]: ...
    @property
    def separation(self) -> float | None: ...
    @property
    def model(self) -> dict[str, Any] | None: ...
    @property
    def message(self) -> str: ...


class GalleryReads(Protocol):
    """What identification, verification and fusion read; both implementations provide it."""

    root: Path

    def snapshot(self) -> ContextManager[None]:
        """Reads inside the block see one state of the database (a read transaction)."""

    def extractor_id(self, key: str) -> int | None:
        """The id of extractor identity ``key``; None when the gallery has no such extractor."""

    def extractor_key(self, extractor_id: int) -> str:
        """The identity key of one extractor."""

    def delivery_versions(self, key: str) -> dict[str, tuple[str, int]]:
        """The delivery versions of extractor ``key``: {rung: (identity key, vectors stored)}."""

    def vector_count(self, extractor_id: int) -> int:
        """How many vectors extractor ``extractor_id`` holds."""

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

    def index_state(self, extractor_id: int) -> files.IndexState:
        """What the index of one extractor must reflect: its vectors (ids, labels) and the whitening."""

    def whitening(self, extractor_id: int) -> Whitening:
        """The whitening fitted on one extractor's vectors (identity before any fit)."""

    def calibration(self, extractor_id: int) -> CalibrationState:
        """The stored thresholds of one extractor."""

    def generator_names(self) -> dict[int, str]:
        """Every enrolled generator's name by id."""

    def generator_deliveries(self) -> dict[int, OwnDelivery]:
        """Per generator: the coding most of its enrolled files showed (``jpeg:75``, ``lossless``), and the
        long sides of its files."""

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
    """Everything scoring and the gallery write: the SQL store (:class:`attrib.storage.sql.SQLStore`) implements
    all of it."""

    def save_whitening(self, extractor_id: int, whitening: Whitening, n_fitted: int, revision: int) -> None:
        """Store the whitening fitted on ``n_fitted`` of one extractor's vectors at ``revision``."""

    def save_calibration(self, extractor_id: int, result: CalibrationRecord, target_far: float,
                         revision: int) -> None:
        """Replace one extractor's thresholds by a calibration result fitted at ``revision``, and audit it."""

    def write_index(self, extractor_id: int, force: bool = False) -> bool:
        """Rebuild one extractor's index generation from durable vectors if stale; True if rebuilt."""

    def audit(self, action: str, detail: dict[str, Any]) -> None:
        """Append an entry to the audit trail."""

    def save_cohort(self, extractor_id: int, version: str, vectors: np.ndarray) -> None:
        """Store the impostor cohort embedded by one extractor."""


class SQLSessions(Protocol):
    """The sessions of the SQL store (:class:`attrib.storage.sql.SQLStore`), which its bulk reads and writes
    (:mod:`.bulk`, :mod:`.thumbnails`, :mod:`.listing`) run in."""

    def reading(self) -> ContextManager[Session]:
        """A session that reads one snapshot (the open transaction's, inside :meth:`writing`)."""

    def writing(self) -> ContextManager[Session]:
        """One transaction under the writer lock, committed when the outermost block ends."""


def state_of(ids: np.ndarray, generators: np.ndarray, dim: int, whitening: Whitening) -> files.IndexState:
    """The index state that durable vectors (ids and their generators) and a fitted whitening call for."""
    ids = np.asarray(ids, np.int64)
    return files.IndexState(len(ids), int(ids.max()) if len(ids) else 0, int(ids.sum()),
                                  whitening.out_dim(dim), whitening=whitening.digest,
                                  labels=files.labels_digest(ids, generators))


OwnDelivery = tuple[str, frozenset[int]]  # a generator's files: the coding most showed, and their long sides


def most_common_delivery(rows: Sequence[Sequence[Any]]) -> dict[int, OwnDelivery]:
    """{generator id: (the delivery most of its samples showed, the long sides of its samples)} from
    (generator id, delivery, long side, count) rows; a delivery not measured (NULL) counts as lossless;
    ties go to the first by name."""
    counts: dict[int, dict[str, int]] = {}
    sides: dict[int, set[int]] = {}
    for generator_id, delivery, side, count in rows:
        label = delivery or "lossless"
        per = counts.setdefault(int(generator_id), {})
        per[label] = per.get(label, 0) + int(count)
        sides.setdefault(int(generator_id), set()).add(int(side))
    return {gid: (max(sorted(per), key=per.__getitem__), frozenset(sides[gid])) for gid, per in counts.items()}

# the long side of a sample in SQL both backends speak
LONG_SIDE = "CASE WHEN width > height THEN width ELSE height END"


def stack_rows(rows: Sequence[Sequence[Any]], dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(first column, second column, float32 matrix of the third) from (id, generator id, blob) rows."""
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    gens = np.array([r[1] for r in rows], dtype=np.int64)
    matrix = (np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float32).reshape(len(rows), dim)
              if rows else np.zeros((0, dim), dtype=np.float32))
    return ids, gens, matrix
