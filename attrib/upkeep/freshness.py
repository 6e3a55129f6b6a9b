"""Freshness: whether a gallery's fitted whitening, calibration and index files can be trusted, and the
loaded index of one extractor when they can.

Decided in one place, :func:`load_index_view` (with :func:`fit_problems` and :func:`index_problems`),
from what either implementation of the storage interface reads (:mod:`attrib.storage.interface`).

Every vector insert or delete bumps its extractor's ``revision`` in the same transaction
(database triggers, schema 5); the whitening and the calibration record the revision they were
fitted at. The calibration is stale when it differs, the whitening once the gallery changed enough
since (:func:`attrib.scoring.whitening.refit_reason`). An index generation is current when it
records the database's revision and whitening (a reader's check), or when its ids, labels,
dimension and whitening match the database (the full check).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ..errors import DiskFull, EmptyGallery, GalleryError, StaleGallery
from ..index import choice, files, gpu, tuning
from ..index.whitening import Whitening
from ..scoring import calibration
from ..scoring.calibration import DEFAULT_THRESHOLD
from ..scoring.whitening import refit_reason
from ..storage.fast_reader import FastReader
from ..storage.interface import GalleryReads

if TYPE_CHECKING:
    from ..extractors.contract import BoundExtractor
    from ..storage.sql import SQLStore


@dataclass
class LoadedIndex:
    """A loaded index with the generator id of every vector id, for one extractor."""

    extractor_id: int
    extractor_key: str
    index: files.GalleryIndex  # a files.LayeredIndex when the generation has deltas
    ids: np.ndarray  # sorted vector ids
    generator_ids: np.ndarray  # aligned with ids
    generator_names: dict[int, str]
    thresholds: dict[int | None, float]
    whitening: Whitening
    separation: float | None = None  # the calibration's d' (fusion weight); None before schema 3 calibration
    rebuilt: bool = False
    target_far: float | None = None  # the FAR the thresholds were calibrated at
    model: dict[str, Any] | None = None  # the open-set decision model; None for a gallery calibrated without a cohort
    families: dict[int, str | None] = field(default_factory=dict)
    cache: dict[object, Any] = field(default_factory=dict, repr=False, compare=False)  # what scoring derives, kept

    def generators_of(self, vector_ids: np.ndarray) -> np.ndarray:
        pos = np.searchsorted(self.ids, vector_ids)
        pos = np.clip(pos, 0, max(len(self.ids) - 1, 0))
        return np.where(self.ids[pos] == vector_ids, self.generator_ids[pos], -1)

    def threshold(self, generator_id: int | None) -> float:
        """The generator's calibrated threshold, else the global one (``None``), else the default."""
        return float(self.thresholds.get(generator_id, self.thresholds.get(None, DEFAULT_THRESHOLD)))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k similarities and vector ids of whitened queries (on a GPU copy when one is usable)."""
        return gpu.search(self.index, queries, k)

    def search_among(self, queries: np.ndarray, k: int, vector_ids: np.ndarray, everywhere: bool = False
                     ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k similarities and vector ids of whitened queries among ``vector_ids`` only."""
        return tuning.search_among(self.index, queries, k, vector_ids, everywhere)

    def generator_vectors(self, generator_id: int) -> np.ndarray:
        """The whitened (searchable) vectors of one generator, read back from the index."""
        return files.reconstruct(self.index, self.ids[self.generator_ids == generator_id])


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
                   ) -> tuple[list[str], files.CachedIndex | None]:
    """Why one extractor's index generation cannot be trusted (empty when it matches the database),
    with the generation read back. ``full``: compare every vector id and label with the database;
    else (a reader's check) the revision and whitening its sidecar records, falling back to the full
    comparison for a generation that does not record its revision. Not ``full``, the base index is
    memory-mapped (search only)."""
    path = files.index_path(store.root, extractor_id)
    cached = files.read_cache(path, mmap=not full)
    if cached is None:
        return [f"index files are {files.why_unreadable(path)}"], None
    if not full and cached.state.revision is not None:
        revision, whitening = store.revision(extractor_id), store.whitening(extractor_id).digest
        if cached.state.revision == revision and cached.state.whitening == whitening:
            return [], cached
        differences = [f"revision {cached.state.revision} instead of {revision}"] * (cached.state.revision != revision)
        differences += ["built with another whitening"] * (cached.state.whitening != whitening)
        return [f"index is out of date with the database ({'; '.join(differences)})"], cached
    differences = files.differences_from(cached, store.index_state(extractor_id))
    return ([f"index is out of date with the database ({'; '.join(differences)})"] if differences else []), cached


def load_index_view(store: GalleryReads, key: str) -> LoadedIndex | None:
    """The index view of extractor identity ``key`` when the whitening and calibration are current and the
    index generation on disk matches the database (:func:`index_problems`, a reader's check); None when
    there is no such extractor, no vector, or anything is stale."""
    with store.snapshot():
        extractor_id = store.extractor_id(key)
        if extractor_id is None or fit_problems(store, extractor_id):
            return None
        problems, cached = index_problems(store, extractor_id, full=False)
        if problems or cached is None or not cached.state.count:  # cached is None only with problems
            return None
        return _view(store, extractor_id, key, cached.index, cached.labels[0], cached.labels[1])


def memory_view(store: GalleryReads, key: str) -> LoadedIndex | None:
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
        index = choice.build_index(ids, whitening.apply(matrix), whitening.out_dim(matrix.shape[1]))
        return _view(store, extractor_id, key, index, ids, gens)


def _view(store: GalleryReads, extractor_id: int, key: str, index: files.GalleryIndex, ids: np.ndarray, gens: np.ndarray
          ) -> LoadedIndex:
    calibration = store.calibration(extractor_id)
    return LoadedIndex(
        extractor_id, key, index, ids, gens, store.generator_names(),
        calibration.thresholds or {None: DEFAULT_THRESHOLD}, store.whitening(extractor_id),
        separation=calibration.separation, target_far=calibration.target_far, model=calibration.model,
        families=store.generator_families(),
    )


def open_index(store: SQLStore, extractor: BoundExtractor) -> LoadedIndex:
    """Load the index of ``extractor`` from the SQL store ``store``, rebuilding it under the writer lock (and
    saying so) if it disagrees with the database."""
    key = extractor.identity.key
    view = load_index_view(store, key)
    if view is not None:
        return view
    extractor_id = store.require_extractor(extractor)
    with store.lock.held():
        state = store.index_state(extractor_id)
        if state.count == 0:
            raise EmptyGallery(
                f"gallery {store.name} has no samples for {key}; enroll some with "
                "`attrib enroll --generator NAME IMAGES...`"
            )
        problems, _ = index_problems(store, extractor_id)
        if problems:
            store.write_index(extractor_id, force=True)
            store.notify(f"{problems[0]} for {key}; rebuilt it from {state.count} stored vectors")
        view = load_index_view(store, key)
    if view is None:
        raise GalleryError(f"index for {key} could not be rebuilt; run `attrib gallery check` on {store.name}")
    view.rebuilt = bool(problems)
    return view


def read_view(root: str | Path, key: str) -> LoadedIndex | None:
    """The trusted index view of extractor identity ``key`` in the gallery at ``root``, else None."""
    reader = FastReader.open(root)
    if reader is None:
        return None
    try:
        return load_index_view(reader, key)
    except sqlite3.Error:
        return None
    finally:
        reader.close()


def held_out_scores(reads: GalleryReads, key: str, name: str) -> tuple[dict[str, float], float | None, str | None]:
    """Each sample of generator ``name`` scored as identify scores a query, against the rest of its
    generator, by sha256; with the generator's threshold and the extractor ``key``. Empty when the index is
    not current (a reader never rewrites it here) or the generator has a single sample."""
    view = load_index_view(reads, key)
    ids = {generator: gid for gid, generator in view.generator_names.items()} if view else {}
    if view is None or name not in ids:
        return {}, None, None
    vector_ids = view.ids[view.generator_ids == ids[name]]
    if len(vector_ids) < 2:
        return {}, view.threshold(ids[name]), view.extractor_key
    vectors = view.generator_vectors(ids[name])
    scores, _ = calibration.loo_score_matrix(vectors, np.zeros(len(vector_ids), np.int64))
    owners = reads.exemplars([int(v) for v in vector_ids])
    held_out = {owners[int(v)][1]: float(s) for v, s in zip(vector_ids, scores[:, 0]) if int(v) in owners}
    return held_out, view.threshold(ids[name]), view.extractor_key


def read_only_view(reader: GalleryReads, key: str, exc: Exception, where: str, notify: Callable[[str], None]
                   ) -> LoadedIndex:
    """For a gallery this process cannot write now (``exc``: ReadOnlyGallery or DiskFull, raised again when
    nothing can be read instead): the stored vectors of ``key`` searched in memory when only the index files
    are stale (and said so); StaleGallery, in one line, when the fits are."""
    why = "no space is left on its disk" if isinstance(exc, DiskFull) else "it is read-only here"
    extractor_id = reader.extractor_id(key)
    problems = fit_problems(reader, extractor_id) if extractor_id is not None else []
    if problems:
        raise StaleGallery(f"{problems[0]}, and gallery {where} cannot be refitted: {why}; "
                           "run `attrib calibrate` where it can be written")
    view = memory_view(reader, key)
    if view is None:
        raise exc
    notify(f"the index files of {key} are out of date and cannot be rewritten ({why}); searched the "
           "stored vectors instead; `attrib gallery check --repair` rewrites them")
    return view
