"""How well discovery finds generators nobody enrolled: ``attrib discover --evaluate DATA_DIR``.

``DATA_DIR/<label>/`` holds images, as for ``attrib evaluate``, and every image goes through the same
condition (default ``center-crop:256``, saved losslessly; :func:`attrib.synthetic.conditions.write_conditioned`)
and the same random draws (:func:`attrib.evaluation.protocol.draw_split`). Per repeat, ``shots`` images of
each ``known`` label are enrolled into a temporary gallery; the rest of them, every image of the ``hidden``
labels (never enrolled) and of the ``distractors`` (camera photographs) are identified, and discovery groups
the pool: the images answered ``unknown`` (``pool="unknown"``: a batch's unknown answers, the intended use)
or every query (``pool="all"``: a folder given to discover). With ``photo_shots``, that many images of each
distractor label are the reference photographs (:mod:`attrib.discovery.photos`) and are neither queries nor grouped.
With ``query_condition`` (e.g. ``jpeg:80``) the queries are the same images laundered after the gallery was
enrolled, each written as the file it would travel as, and the gallery gets its delivery versions (the default
ladder), as ``attrib evaluate -q`` does: the images people actually hold against a gallery of originals.

Reported per repeat and as the mean and worst over repeats:

- ``purity`` of each candidate: the share of its images that carry its most common label;
- per hidden label, ``recovered``: the share of its images (all of its queries) in its best candidate, the
  candidate holding most of them, with that candidate's purity and kind;
- per distractor label, where its images end: in candidates labelled photographs, in candidates offered as
  generators (``offered``: made mostly of them; ``mixed``: a minority in another source's candidate), or in
  none (one-offs, let go, beside an enrolled generator, or accepted by one and so never in the pool).
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..discovery.candidates import GENERATOR, PHOTOGRAPHS, Discovery, Settings, discover
from ..discovery.space import embed_pool, subset
from ..errors import AttribError
from ..extractors.contract import BoundExtractor, extractor_list
from ..gallery import open_gallery
from . import DEFAULT_CONDITION
from .protocol import draw_split, find_label_files

POOLS = ("unknown", "all")
TARGET_PURITY = 0.8  # the purity a hidden generator's best candidate is read at


def evaluate_discovery(data_dir: Path | str, known: Sequence[str], hidden: Sequence[str],
                       distractors: Sequence[str] = (), *, extractor: BoundExtractor | Sequence[BoundExtractor],
                       shots: int = 10, repeats: int = 3, seed: int = 0, max_per: int = 60,
                       condition: str = DEFAULT_CONDITION, settings: Settings = Settings(), pool: str = "unknown",
                       photo_shots: int = 0, query_condition: str | None = None,
                       advance: Callable[[int], None] = lambda n: None) -> dict[str, Any]:
    """Evaluate discovery on DATA_DIR (see the module docstring); the JSON-ready result."""
    from ..synthetic.conditions import parse_condition, write_conditioned

    known, hidden, distractors = list(known), list(hidden), list(distractors)
    if pool not in POOLS:
        raise AttribError(f"--pool must be one of {', '.join(POOLS)}, got {pool!r}")
    if not hidden:
        raise AttribError("--hidden needs at least one label that is never enrolled, e.g. --hidden sd21")
    twice = sorted((set(known) & set(hidden)) | (set(known) & set(distractors)) | (set(hidden) & set(distractors)))
    if twice:
        raise AttribError(f"{', '.join(twice)} given in more than one of --known, --hidden, --distractors")
    if repeats < 1:
        raise AttribError(f"--repeats must be at least 1, got {repeats}")
    extractors = extractor_list(extractor)
    files = find_label_files(Path(data_dir), known, hidden + distractors, shots)
    started = time.perf_counter()
    runs = []
    with tempfile.TemporaryDirectory(prefix="attrib-discover-eval-") as tmp:
        conditions = [parse_condition(condition)]
        if query_condition:
            conditions.append(parse_condition(f"{condition}+{query_condition}"))
        prepared, *laundered = write_conditioned(files, conditions, seed, Path(tmp), delivered=[False, True])
        n_files = {label: len(paths) for label, paths in files.items()}
        for repeat in range(repeats):
            enroll, queries = draw_split(prepared, n_files, known, hidden + distractors, shots, max_per, seed, repeat,
                                         laundered[0] if laundered else None)
            references = [p for label in distractors for p in [q for t, q in queries if t == label][:photo_shots]]
            queries = [(t, q) for t, q in queries if q not in set(references)]
            runs.append(_repeat(extractors, enroll, queries, references, known, hidden, distractors, settings, pool,
                                Path(tmp) / f"gallery-{repeat}", None if query_condition else "none"))
            advance(1)
    return {"config": {"data_dir": str(data_dir), "known": known, "hidden": hidden, "distractors": distractors,
                       "shots": shots, "repeats": repeats, "seed": seed, "max_per": max_per, "condition": condition,
                       "pool": pool, "photo_shots": photo_shots, "query_condition": query_condition,
                       "settings": settings.to_json(),
                       "extractor": "+".join(e.identity.key for e in extractors)},
            "summary": summarise(runs, hidden, distractors), "repeats": runs,
            "wall_s": round(time.perf_counter() - started, 2)}


def _repeat(extractors: list[BoundExtractor], enroll: dict[str, list[Path]], queries: list[tuple[str, Path]],
            references: list[Path], known: list[str], hidden: list[str], distractors: list[str], settings: Settings,
            pool_kind: str, folder: Path, versions: str | None) -> dict[str, Any]:
    with open_gallery(folder) as gallery:
        for label in known:
            report = gallery.enroll(label, enroll[label], extractors, versions=versions)
            if not report.added:
                raise AttribError(f"no image of known generator {label!r} could be enrolled")
        labels = {str(path): label for label, path in queries}
        pool = embed_pool(gallery, extractors, [path for _, path in queries], evidence=True, labels=labels,
                          photos=references)
    rows = [i for i, image in enumerate(pool.images) if pool_kind == "all" or image.decision == "unknown"]
    found = discover(subset(pool, rows), settings)
    return repeat_metrics(found, [image.label or "" for image in pool.images], hidden, distractors)


def repeat_metrics(found: Discovery, query_labels: list[str], hidden: list[str], distractors: list[str]) -> dict[str, Any]:
    """The figures of one repeat (see the module docstring); ``query_labels``: the label of every query."""
    totals = Counter(query_labels)
    pooled = Counter(image.label for image in found.pool.images)
    candidates: list[dict[str, Any]] = []
    for c in found.candidates:
        counts = Counter(m.get("label") for m in c.members)
        top, n = counts.most_common(1)[0]
        candidates.append({"id": c.id, "kind": c.kind, "size": len(c.members), "majority": top,
                           "purity": round(n / len(c.members), 4), "labels": dict(counts),
                           "tightness": c.tightness, "novelty": c.novelty})
    recovered = {}
    for label in hidden:
        best: dict[str, Any] = max(candidates, key=lambda row: row["labels"].get(label, 0), default={"labels": {}})
        held = best["labels"].get(label, 0)
        recovered[label] = {"images": totals[label], "in_pool": pooled[label],
                            "recovered": round(held / totals[label], 4) if totals[label] else None,
                            "best_candidate": best["id"] if held else None,
                            "purity": best["purity"] if held else None, "kind": best["kind"] if held else None}
    photos = {}
    for label in distractors:
        where: Counter[str] = Counter()
        for row in candidates:
            n = row["labels"].get(label, 0)
            if n:
                where["photographs" if row["kind"] == PHOTOGRAPHS else "offered" if row["majority"] == label
                      else "mixed"] += n
        where["none"] = totals[label] - sum(where.values())
        photos[label] = {"images": totals[label], "in_pool": pooled[label], **{k: where[k] for k in
                                                                            ("photographs", "offered", "mixed", "none")}}
    return {"pool": dict(pooled), "queries": dict(totals), "candidates": candidates, "hidden": recovered,
            "distractors": photos}


def summarise(runs: list[dict[str, Any]], hidden: list[str], distractors: list[str]) -> dict[str, Any]:
    """Means and worst cases over repeats, and the checks the targets read."""
    sizable = [c for run in runs for c in run["candidates"] if c["size"] >= 3]
    purities = [c["purity"] for c in sizable]
    out: dict[str, Any] = {
        "candidates_per_repeat": round(float(np.mean([len(r["candidates"]) for r in runs])), 2),
        "min_purity_3plus": min(purities, default=None),
        "mean_purity_3plus": round(float(np.mean(purities)), 4) if purities else None,
        "offered_mostly_distractors": sum(1 for run in runs for c in run["candidates"]
                                          if c["kind"] == GENERATOR and c["majority"] in distractors),
        "hidden": {}, "distractors": {}}
    for label in hidden:
        rec = [r["hidden"][label] for r in runs]
        at_purity = [x["recovered"] if (x["purity"] or 0) >= TARGET_PURITY else 0.0 for x in rec]
        out["hidden"][label] = {"recovered_mean": round(float(np.mean([x["recovered"] or 0 for x in rec])), 4),
                                "recovered_at_purity_mean": round(float(np.mean(at_purity)), 4),
                                "recovered_at_purity_min": round(float(np.min(at_purity)), 4),
                                "in_pool_share_mean": round(float(np.mean([x["in_pool"] / x["images"] for x in rec
                                                                           if x["images"]] or [0])), 4)}
    for label in distractors:
        keys = ("photographs", "offered", "mixed", "none")
        out["distractors"][label] = {k: int(sum(r["distractors"][label][k] for r in runs)) for k in keys}
    return out
