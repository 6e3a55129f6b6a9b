"""Keeping one extractor's fits and index current after its vectors changed, at a cost set by the change.

Two ways, chosen by :func:`bring_up_to_date` (the caller holds the gallery's writer lock):

* **incremental**, when only vectors were added since the index generation on disk, the whitening
  may stay (:func:`attrib.scoring.whitening.refit_reason`) and the calibration has a decision
  model: the generators that gained vectors are recalibrated on a bounded sample of each
  (:mod:`attrib.scoring.incremental`), committed, and the new vectors, whitened with the stored
  whitening, are appended to the index as one delta (:func:`attrib.index.files.append_delta`).
  It reads what was added and a few capped samples, never the whole gallery.
* **full** otherwise (and when forced, as ``attrib calibrate`` does): every vector is read once, the
  whitening is fitted on a bounded stratified sample, the calibration on a bounded stratified
  sample, both committed, and the index rewritten with the index type for the new size: every
  vector whitened anew, in the previous generation's HNSW graph or IVF lists where that type stays
  and the index still finds the nearest neighbours as well there (:mod:`attrib.index.reuse`),
  else in an index built afresh.

The database commits first and the index follows; a crash between leaves an index that readers
find out of date and that the next writer or reader brings up to date.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ContextManager

import numpy as np

from ..index import choice, files
from ..index.reuse import rewhitened
from ..scoring import calibration, incremental, open_set
from ..scoring.whitening import fit_sample, fit_whitening, held_out_score_matrix
from ..storage.interface import GalleryReads, GalleryStore
from .freshness import whitening_refit_reason

if TYPE_CHECKING:
    from ..storage.sql import SQLStore


@dataclass
class Upkeep:
    """What :func:`bring_up_to_date` did for one extractor."""

    refitted: bool = False  # whitening and calibration refitted, index rewritten
    reused: bool = False  # the rewritten index kept the previous generation's graph or lists
    recalibrated: list[int] = field(default_factory=list)  # generators recalibrated incrementally
    appended: int = 0  # vectors appended to the index
    folded: bool = False  # the index's deltas were folded into a new base
    indexed: int = 0  # vectors the index was rebuilt from (0: not rebuilt)
    why: str = ""  # why a full refit was needed
    calibration: calibration.CalibrationResult | None = None
    message: str = ""


def bring_up_to_date(store: SQLStore, extractor_id: int, cohort: np.ndarray | None, target_far: float | None = None,
                     force: bool = False) -> Upkeep:
    """Make one extractor's whitening, calibration and index current, incrementally where it can."""
    if target_far is None:
        target_far = store.calibrated_far(extractor_id)
    if target_far is None:
        target_far = calibration.DEFAULT_TARGET_FAR
    why = "forced" if force else _needs_full(store, extractor_id, cohort)
    if why is None:
        done = _incremental(store, extractor_id, cohort, target_far)
        if done is not None:
            return done
        revision = store.revision(extractor_id)
        if store.fit_revisions(extractor_id)[1] == revision:  # the fits may stay: only the index is rebuilt
            return Upkeep(indexed=rebuild_index(store, extractor_id))
        why = "the index cannot be extended"
    done = full_refit(store, extractor_id, cohort, target_far)
    done.why = why
    return done


def _needs_full(store: GalleryReads, extractor_id: int, cohort: np.ndarray | None) -> str | None:
    revision = store.revision(extractor_id)
    whitened, calibrated = store.fit_revisions(extractor_id)
    if whitened is None or calibrated is None:
        return "the fits do not record what they were fitted on"
    reason = whitening_refit_reason(store, extractor_id, revision - whitened)
    if reason is not None:
        return reason or "the gallery changed since the whitening was fitted"
    if calibrated != revision and (cohort is None or store.calibration(extractor_id).model is None):
        return "the calibration has no impostor cohort to extend"
    return None


def _incremental(store: SQLStore, extractor_id: int, cohort: np.ndarray | None, target_far: float) -> Upkeep | None:
    """The incremental way, or None when the index on disk cannot be extended to the database's state (or the
    calibration has no cohort to extend)."""
    from ..storage import bulk

    path = files.index_path(store.root, extractor_id)
    fields = files.read_sidecar(path)
    whitening = store.whitening(extractor_id)
    if fields is None or fields.get("revision") is None or fields["whitening"] != whitening.digest:
        return None
    revision = store.revision(extractor_id)
    ids, gens, matrix = bulk.vectors_after(store, extractor_id, fields["max_id"] if fields["count"] else 0)
    if revision - fields["revision"] != len(ids):
        return None  # vectors were removed or changed since: only a rebuild reflects that
    done = Upkeep()
    _, calibrated = store.fit_revisions(extractor_id)
    if calibrated != revision:
        touched = [int(g) for g in np.unique(gens)]
        if not touched or cohort is None:
            return None
        state = store.calibration(extractor_id)
        cap = incremental.per_generator_cap(len(store.generator_names()))
        samples = bulk.generator_samples(store, extractor_id, touched, cap)
        thresholds, model = incremental.generator_thresholds(whitening, cohort, samples, target_far, state.model)
        message = (f"recalibrated {len(touched)} generator(s) on up to {cap} samples each against a cohort of "
                   f"{len(cohort)} images, at FAR {target_far:g}; the whitening and the others' thresholds stay")
        bulk.save_generator_thresholds(store, extractor_id, thresholds, model, target_far, revision, message)
        done.recalibrated, done.message = touched, message
    if len(ids) or fields["revision"] != revision:
        with index_faults(store):
            files.append_delta(path, ids, gens, whitening.apply(matrix), revision)
            done.appended = len(ids)
            fields = files.read_sidecar(path)
            if fields is not None and files.needs_fold(fields):
                done.folded = files.fold(path)
    return done


def full_refit(store: SQLStore, extractor_id: int, cohort: np.ndarray | None, target_far: float) -> Upkeep:
    """Refit the whitening and the calibration on bounded samples of every vector (read once), commit
    both with the revision they were fitted at, then rebuild the index."""
    with store.writing():
        revision = store.revision(extractor_id)
        ids, gens, matrix = store.vectors(extractor_id)
        keep = fit_sample(gens, ids)
        whitening = fit_whitening(matrix[keep], gens[keep]).fitted_on(ids, gens)
        store.save_whitening(extractor_id, whitening, len(ids), revision)
        if cohort is None or len(gens) == 0:
            result = calibration.calibrate(matrix, gens, target_far=target_far,
                                           score_matrix=held_out_score_matrix(whitening))
        else:
            sample, labels = calibration.subsample(matrix, gens)
            held_out, order = held_out_score_matrix(whitening)(sample.astype(np.float64), labels)
            scores = open_set.cohort_scores(whitening.apply(cohort), whitening.apply(sample), labels, order)
            result = open_set.calibrate(held_out, labels, order, scores, target_far)
        store.save_calibration(extractor_id, result, target_far, revision)
    reused = False
    if not store.in_transaction:  # else the index follows the outer transaction's commit
        reused = write_base(store, extractor_id, ids, gens, whitening.apply(matrix), revision, whitening.digest,
                            reuse=True)
    return Upkeep(refitted=True, reused=reused, calibration=result, message=result.message, indexed=len(ids))


def rebuild_index(store: GalleryStore, extractor_id: int) -> int:
    """Rebuild one extractor's index from every stored vector under the stored whitening; the vector count."""
    with store.snapshot():
        revision = store.revision(extractor_id)
        ids, gens, matrix = store.vectors(extractor_id)
        whitening = store.whitening(extractor_id)
    write_base(store, extractor_id, ids, gens, whitening.apply(matrix), revision, whitening.digest)
    return len(ids)


def write_base(store: GalleryStore, extractor_id: int, ids: np.ndarray, gens: np.ndarray, whitened: np.ndarray, revision: int,
               whitening: str, reuse: bool = False) -> bool:
    """Write an index of the type :func:`~attrib.index.choice.choose_index_key` picks for its size, of
    ``whitened`` (every vector, under the whitening whose digest is ``whitening``), as a new base generation
    recording ``revision``. ``reuse``: in the previous generation's graph or lists where
    :func:`attrib.index.reuse.rewhitened` can, else (and without it) built afresh. True if reused."""
    dim = whitened.shape[1]
    key = choice.choose_index_key(len(ids), dim)
    path = files.index_path(store.root, extractor_id)
    index = rewhitened(path, ids, whitened, key) if reuse else None
    reused = index is not None
    if index is None:
        index = choice.build_index(ids, whitened, dim, key)
    state = files.IndexState(len(ids), int(ids.max()) if len(ids) else 0, int(ids.sum()), dim, key,
                             whitening=whitening, revision=revision)
    with index_faults(store):
        files.write_index(index, path, state, ids, gens)
    return reused


def index_faults(store: GalleryReads) -> ContextManager[None]:
    """Storage faults while writing index files, as one-line errors that say the database is intact."""
    from ..storage.faults import faults

    return faults(store.root, "writing the index files (the database is up to date; the index is rebuilt from it)")
