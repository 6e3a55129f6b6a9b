"""Rewriting an approximate index after a refit without building its structure again.

A refit changes the whitening, so every stored vector changes and the new index must hold the new
ones: a vector whitened one way is never searched as if whitened another. What need not be redone,
when the index type stays, is the costly part: an HNSW graph (built by inserting every vector, most
of a refit's time from 50,000 vectors on) or the trained IVF centroids (k-means).
:func:`rewhitened` takes the previous generation's structure, puts every vector under the new
whitening in it (the graph's stored vectors replaced in place, the IVF lists refilled), adds the
vectors stored since, and tunes the search parameter again from the previous generation's
(:func:`retuned`: half, the same or twice it, the smallest whose measured recall@1 meets
:data:`~attrib.index.tuning.TARGET_RECALL`, as a fresh build's tuning would land within a
doubling). A structure that needs more than that, and an HNSW graph holding a vector removed since
(a graph cannot drop one), is not reused: the caller builds afresh. The whitening moves with the
share of its fit sample that changed (:func:`attrib.scoring.whitening.refit_reason`), so
neighbourhoods move little and the previous graph stays a good one.
"""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

from . import files, tuning


def rewhitened(path: Path, ids: np.ndarray, vectors: np.ndarray, key: str) -> faiss.Index | None:
    """An index of factory ``key`` holding ``vectors`` (whitened, by sorted ``ids``), in the graph or lists of
    the generation at sidecar ``path``, when that was built with ``key``, is readable and :func:`retuned`
    finds a search parameter for it; None otherwise (and for an exact index)."""
    fields = files.read_sidecar(path)
    if fields is None or fields.get("key") != key or fields.get("dim") != vectors.shape[1] or not len(ids):
        return None
    if "HNSW" not in key and "IVF" not in key:
        return None  # exact search: building it is only adding the vectors
    cached = files.read_cache(path)
    if cached is None:
        return None
    index = cached.index.base if isinstance(cached.index, files.LayeredIndex) else cached.index
    parameter, _ = tuning.search_parameter(index)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    ids = np.asarray(ids, np.int64)
    if parameter == "efSearch":
        if not _regraphed(index, ids, vectors):
            return None
    elif parameter == "nprobe":
        index.reset()
        index.add_with_ids(vectors, ids)
    else:
        return None
    return index if retuned(index, ids, vectors) else None


def _regraphed(index: faiss.Index, ids: np.ndarray, vectors: np.ndarray) -> bool:
    """Replace, in the ``IDMap2,HNSW`` ``index``, the vectors of its ids by theirs in ``vectors`` (keeping its
    graph) and insert the other ``vectors``; False (nothing changed) when it holds an id no longer in ``ids``
    or is no such index."""
    if not isinstance(index, faiss.IndexIDMap2):
        return False
    inner = faiss.downcast_index(index.index)
    storage = faiss.downcast_index(inner.storage) if isinstance(inner, faiss.IndexHNSW) else None
    if not isinstance(storage, faiss.IndexFlat) or storage.code_size != 4 * vectors.shape[1]:
        return False
    held = faiss.vector_to_array(index.id_map)
    rows = np.minimum(np.searchsorted(ids, held), len(ids) - 1)
    if not np.array_equal(ids[rows], held):
        return False  # a vector was removed since: a graph cannot drop one
    faiss.copy_array_to_vector(np.ascontiguousarray(vectors[rows]).view(np.uint8).ravel(), storage.codes)
    new = np.ones(len(ids), bool)
    new[rows] = False
    if new.any():
        index.add_with_ids(vectors[new], ids[new])
    return True


def retuned(index: faiss.Index, ids: np.ndarray, vectors: np.ndarray, target: float = tuning.TARGET_RECALL
            ) -> bool:
    """Set the search parameter of ``index`` (holding ``vectors`` by ``ids``) to the smallest of half, once and
    twice its value at which it finds the exact nearest neighbour of held-out queries
    (:func:`~attrib.index.tuning.held_out_queries`) with recall@1 >= ``target``; False, the value
    left as it was, when none does."""
    parameter, value = tuning.search_parameter(index)
    if parameter is None or value is None:
        return False
    queries = tuning.held_out_queries(vectors, index=index)
    exact, _ = faiss.knn(queries, vectors, 1, metric=faiss.METRIC_INNER_PRODUCT)
    for candidate in sorted({max(1, value // 2), value, 2 * value}):
        tuning.set_search_parameter(index, candidate)
        if tuning.recall_at_1(index, queries, exact[:, 0], vectors, ids) >= target:
            return True
    tuning.set_search_parameter(index, value)
    return False
