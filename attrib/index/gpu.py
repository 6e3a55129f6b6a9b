"""Batch search on a GPU copy of an index, when FAISS has a GPU.

With the ``gpu`` extra (``pip install 'attrib[gpu]'``: faiss-gpu-cu12, which provides the same
``faiss`` module as faiss-cpu) and a CUDA device, :func:`search` copies each loaded index to the
GPUs once per process (``faiss.index_cpu_to_gpu``, or ``index_cpu_to_all_gpus`` with several)
and searches the copy; of an index with vectors appended since its base was written
(:class:`attrib.index.files.LayeredIndex`) it copies and searches the base, and searches the
appended vectors exactly on the CPU beside it, merged as the CPU search merges them. It searches
the CPU index instead, with the same results, when FAISS sees no GPU, when ``ATTRIB_FAISS_GPU=0``,
when the index type has no GPU version (HNSW), when the copy fails (one notice on stderr per
index), or for more neighbours than a GPU index returns (GPU_MAX_K).
"""

from __future__ import annotations

import os
import sys
import threading
import weakref

import faiss
import numpy as np

from . import files, tuning

ENV = "ATTRIB_FAISS_GPU"  # "0": never search on a GPU
GPU_MAX_K = 2048  # the most neighbours FAISS's GPU indexes return per query

# CPU index -> (its size, GPU copy or None)
_copies: weakref.WeakKeyDictionary[faiss.Index, tuple[int, faiss.Index | None]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()
_resources: faiss.StandardGpuResources | None = None


def num_gpus() -> int:
    """GPUs FAISS can use (0 with faiss-cpu)."""
    count = getattr(faiss, "get_num_gpus", None)
    try:
        return int(count()) if count is not None else 0
    except Exception:  # a broken CUDA install counts as no GPU
        return 0


def enabled() -> bool:
    """Whether searches try a GPU: FAISS sees one and ``ATTRIB_FAISS_GPU`` is not ``0``."""
    return os.environ.get(ENV, "1").strip() != "0" and num_gpus() > 0


def unsupported(index: faiss.Index) -> str | None:
    """Why ``index`` cannot go to a GPU, in words; None when it can."""
    inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap) else index
    if isinstance(inner, faiss.IndexHNSW):
        return "FAISS has no GPU version of HNSW indexes"
    return None


def copy_to_gpu(index: faiss.Index) -> faiss.Index:
    """A copy of ``index`` on the GPUs (shared resources on one GPU, replicas on several)."""
    global _resources
    if num_gpus() > 1:
        return faiss.index_cpu_to_all_gpus(index)
    if _resources is None:
        _resources = faiss.StandardGpuResources()
    return faiss.index_cpu_to_gpu(_resources, 0, index)


def gpu_copy(index: faiss.Index) -> faiss.Index | None:
    """The process's GPU copy of ``index`` (made on first use and again after vectors were added to
    it, with the index's tuned nprobe), or None when searches must stay on the CPU."""
    if not enabled():
        return None
    with _lock:
        size, copy = _copies.get(index, (None, None))
        if size == index.ntotal:
            return copy
        why, copy = unsupported(index), None
        if why is None:
            try:
                copy = copy_to_gpu(index)
                parameter, value = tuning.search_parameter(index)
                if parameter == "nprobe" and value is not None and hasattr(faiss, "GpuParameterSpace"):
                    faiss.GpuParameterSpace().set_index_parameter(copy, "nprobe", value)
            except Exception as exc:  # out of GPU memory, an unsupported variant, a CUDA error
                why, copy = f"copying the index to the GPU failed ({exc})", None
        if why is not None and size is None:
            print(f"attrib: searching on the CPU: {why}", file=sys.stderr)
        _copies[index] = (index.ntotal, copy)
        return copy


def search(index: files.GalleryIndex, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k inner products and ids (:func:`attrib.index.files.search`), on the index's GPU copy (of a
    :class:`~attrib.index.files.LayeredIndex`, of its base) when there is one and ``k`` is within what a GPU
    index returns."""
    copy = gpu_copy(index.base if isinstance(index, files.LayeredIndex) else index)
    if copy is None or min(k, index.ntotal) > GPU_MAX_K:
        return files.search(index, queries, k)
    return files.search(index, queries, k, copy)
