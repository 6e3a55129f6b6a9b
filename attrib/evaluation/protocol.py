"""``attrib evaluate``: few-shot, open-set evaluation of an extractor on a labelled folder.

``DATA_DIR/<generator>/`` holds images (recursively). For each condition (default
``center-crop:256``) every image is transformed once and saved losslessly as PNG in a
temporary folder, so that size and file format cannot be the cue; a query condition
(``--query-condition``, ``--sweep``) is written as its queries would travel instead: a ``.jpg``
for a trailing ``jpeg:Q``, a ``.webp`` for ``webp:Q``, a PNG after ``png`` (a lossless re-save)
or any other step, while the gallery stays PNG. ``--sweep`` runs every delivery D on the same
draws: queries under C+D against the gallery under C with its delivery versions, against the
gallery under C of originals only (no versions), and against a gallery enrolled under C+D (every
image at that quality), one row per delivery in ``data["sweep"]``. Then, per repeat, a
temporary gallery is built: K random images of each known generator are enrolled through
:meth:`attrib.gallery.Gallery.enroll` (so calibration is the real one), and the rest of the
known images plus every image of the unknown generators are identified (open set) through
:meth:`attrib.gallery.Gallery.identify`. At most ``max_per`` images of a label take part in a repeat.

The random draws depend on (seed, repeat, label) only, so every condition sees the same
enrolled/query split, and a condition's effect is measured on the same images. A random crop
(``crop:S``) is drawn once per image from (seed, label, file), the same in every repeat.
Embeddings are cached by pixel content, so an image is embedded once however many repeats and
conditions use it (an extractor must embed each image independently of its batch).

Several extractors (``--extractor a+b``) are fused as ``attrib identify`` fuses them: every
extractor embeds the enrolled images into the same temporary gallery (the first through
``enroll``, the others through :meth:`attrib.gallery.Gallery.reembed`), so each is calibrated on its
own, and the queries are identified with the calibrated margins averaged over extractors,
weighted by how well each separates the enrolled generators, and decided with the fused
thresholds and decision model calibrated against the fused cohort (:mod:`attrib.scoring.fusion`).

Metrics are per repeat, then mean, sample std and standard error of the mean over repeats
(the draw of enrolled images moves the figures a lot: compare configurations by the standard
error, and run more repeats to shrink it), the operating point first: known queries accepted,
unknown queries rejected and correct-and-accepted (CCR); then closed-set top-1 accuracy (known
queries), open-set AUROC (by the decision's margin, and by the best raw score) and OSCR,
family metrics when ``--family`` is given, verification EER and TAR at FAR 1% (trials: every query against
every known generator's score, genuine when it is its own generator), per-generator recall
(top-1 for a known generator, rejection rate for an unknown one) and the confusion matrix
(true label x decision, summed over repeats).
"""

from __future__ import annotations

import tempfile
import time
import zlib
from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import AttribError
from ..extractors.cached import CachedExtractor
from ..extractors.contract import extractor_list
from ..report.html import THUMB_PX
from ..scoring import DEFAULT_TARGET_FAR
from ..synthetic.conditions import Condition
from . import DEFAULT_CONDITION
from .mistakes import mistake_previews, name_sources, source_names

VERIFICATION_FAR = DEFAULT_TARGET_FAR  # the FAR at which verification TAR is reported
UNKNOWN = "unknown"
AMBIGUOUS = "ambiguous"
WORST_MISTAKES = 8  # wrong decisions listed per condition, the most confident first
METRICS = (  # the operating point first
    ("known_accepted", "known accepted (not answered unknown)"),
    ("unknown_rejected", "unknown rejected (answered unknown)"),
    ("ccr", "correct and accepted (CCR: the right generator named)"),
    ("closed_set_accuracy", "closed-set top-1 accuracy"),
    ("open_set_auroc", "open-set AUROC (known vs unknown, by the margin)"),
    ("open_set_auroc_score", "open-set AUROC (by the best raw score)"),
    ("oscr", "OSCR"),
    ("verification_eer", "verification EER"),
    ("tar_at_far_1pct", "verification TAR at FAR 1%"),
)
SWEEP_METRICS = ("known_accepted", "unknown_rejected", "closed_set_accuracy")  # per delivery, operating point first
DEFAULT_SWEEP = ("jpeg:95", "jpeg:90", "jpeg:80", "jpeg:70", "jpeg:60", "jpeg:50", "webp:80", "resize:0.9",
                 "resize:0.7", "resize:0.5", "resize:0.5+jpeg:75", "jpeg:90+jpeg:70", "jpeg:80+png")
FAMILY_METRICS = (
    ("family_accuracy", "family top-1 accuracy (family members' queries)"),
    ("family_decided", "family decided right (generator or family in it)"),
)


@dataclass
class Evaluation:
    """``data`` is the JSON-ready result; ``pooled`` maps a condition to (is_known, best score) over repeats;
    ``previews`` maps the sha256 of a worst mistake's query or nearest sample, as scored, to its picture
    ``(bytes, mime)``, made before the scored copies were deleted."""

    data: dict
    pooled: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    previews: dict[str, tuple[bytes, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Block:
    """One evaluated setup: the gallery enrolled under ``gallery`` (as PNG) and the queries under
    ``queries``, written as delivered (a ``.jpg`` for a trailing ``jpeg:Q``), or, when None, the
    gallery condition's own PNGs. ``sweep`` marks a block that only a ``--sweep`` row shows.
    ``versions``: the gallery's delivery versions (a ladder text, e.g. ``none``); None: the
    evaluation's own (:meth:`gallery_versions`)."""

    gallery: Condition
    queries: Condition | None = None
    sweep: bool = False
    versions: str | None = None

    @property
    def name(self) -> str:
        gallery = str(self.gallery) if self.versions is None else f"{self.gallery} (versions {self.versions})"
        return gallery if self.queries is None else f"{gallery} | queries {self.queries}"

    def gallery_versions(self, versions: str | None) -> str | None:
        """The ``versions`` its galleries are enrolled with: its own when set, ``none`` for a gallery
        enrolled under a lossy condition (every image at that quality), else the evaluation's ``versions``."""
        if self.versions is not None:
            return self.versions
        return "none" if lossy(self.gallery) else versions


def lossy(condition: Condition) -> bool:
    """Whether ``condition`` codes the images lossily (a ``jpeg:Q`` or ``webp:Q`` step)."""
    return any(s.kind in ("jpeg", "webp") for s in condition.steps)


def sweep_deliveries(text: str | None) -> tuple[str, ...]:
    """``--sweep``'s value: ``default`` (or empty) is :data:`DEFAULT_SWEEP`, else comma-separated conditions."""
    if text is None:
        return ()
    if text.strip().lower() in ("", "default"):
        return DEFAULT_SWEEP
    return tuple(split_labels(text))


def split_labels(text: str | None) -> list[str]:
    labels = [s.strip() for s in (text or "").split(",") if s.strip()]
    return list(dict.fromkeys(labels))


def find_label_files(data_dir: Path, known: list[str], unknown: list[str], shots: int) -> dict[str, list[Path]]:
    """The image files of every label; AttribError for a missing folder or too few images."""
    from ..images import iter_image_files

    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise AttribError(f"data folder {data_dir} does not exist or is not a folder")
    if not known:
        raise AttribError("--known needs at least one generator folder name, e.g. --known a,b,c")
    if UNKNOWN in known:
        raise AttribError(f"a known generator cannot be called {UNKNOWN!r}: that is the open-set decision")
    both = sorted(set(known) & set(unknown))
    if both:
        raise AttribError(f"{', '.join(both)} given both in --known and in --unknown")
    available = sorted(p.name for p in data_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    for label in known + unknown:
        if not (data_dir / label).is_dir():
            raise AttribError(
                f"no folder {label!r} in {data_dir} (given in --{'known' if label in known else 'unknown'}); "
                f"available: {', '.join(available) or 'none'}"
            )
    files = {label: list(iter_image_files([data_dir / label])) for label in known + unknown}
    for label, found in files.items():
        if len(found) < (shots + 1 if label in known else 1):
            raise AttribError(_too_few(label, data_dir / label, len(found), shots, label in known))
    return files


def _too_few(label: str, folder: Path, n: int, shots: int, known: bool, why: str = "") -> str:
    if known:
        return (f"known generator {label!r} has {n} usable images in {folder}{why}; at least --shots + 1 = "
                f"{shots + 1} are needed (enroll {shots}, identify the rest): lower --shots or add images")
    return f"unknown generator {label!r} has no usable images in {folder}{why}"


def draw_split(prepared: dict[str, dict[int, Path]], n_files: dict[str, int], known, unknown, shots, max_per,
               seed, repeat, query_prepared: dict[str, dict[int, Path]] | None = None):
    """({known label: enrolled paths}, [(true label, query path)]) for one repeat.

    The permutation covers every file of a label, so the draw is the same for every condition.
    With ``query_prepared`` (the same files under a query-only condition) the queries are taken
    from it: the same images, laundered after the gallery was enrolled."""
    enroll, queries = {}, []
    for label in known + unknown:
        rng = np.random.default_rng([seed, repeat, zlib.crc32(label.encode())])
        order = [int(i) for i in rng.permutation(n_files[label]) if int(i) in prepared[label]
                 and (query_prepared is None or int(i) in query_prepared[label])]
        chosen = order[:max_per]
        if label in known:
            enroll[label], chosen = [prepared[label][i] for i in chosen[:shots]], chosen[shots:]
        queries += [(label, (query_prepared or prepared)[label][i]) for i in chosen]
    return enroll, queries


def run_repeat(extractors, enroll, queries, known, advance, notes: Counter,
               target_far: float = DEFAULT_TARGET_FAR, families: dict[str, str] | None = None, versions=None) -> dict:
    """Enroll into a temporary gallery and identify the queries; return the raw outcomes.

    ``extractors`` is one (cached) extractor or a list of them; with several, the first enrolls,
    the others re-embed the enrolled samples, and identification fuses their scores. ``versions``: the
    gallery's delivery versions (:meth:`attrib.gallery.Gallery.ladder`; None: the default ladder)."""
    from ..gallery import open_gallery

    extractors = extractor_list(extractors)
    with tempfile.TemporaryDirectory(prefix="attrib-eval-gallery-") as tmp, open_gallery(tmp) as gallery:
        for label in known:
            report = gallery.enroll(label, enroll[label], extractors[0], progress=advance, target_far=target_far,
                                    family=(families or {}).get(label), versions=versions)
            for path, why in report.skipped + report.failed:
                notes[f"enroll {label}: {why if why.startswith(path) else f'{path}: {why}'}"] += 1
            if not report.added:
                why = (report.failed or report.skipped or [("", "no images")])[0][1]
                raise AttribError(f"no image of known generator {label!r} could be enrolled: {why}")
        for other in extractors[1:]:
            for problem in gallery.reembed(other, target_far=target_far, versions=versions).problems:
                notes[f"reembed {other.identity.key}: {problem}"] += 1
        identified = gallery.identify([p for _, p in queries], extractors if len(extractors) > 1 else extractors[0],
                                      len(known))
        truth, best, decision, score, margin, per_known, mistakes = [], [], [], [], [], [], []
        for (label, path), result in zip(queries, identified):
            advance(1)
            if result.error:
                notes[f"identify: {result.error}"] += 1
                continue
            scores = {c.generator: c.score for c in result.candidates}
            nearest = result.require_nearest()
            truth.append(label)
            best.append(nearest.generator)
            decision.append(result.decision)
            score.append(result.score)
            margin.append(nearest.margin)
            per_known.append([scores.get(g, -1.0) for g in known])
            right = (label, (families or {}).get(label)) if label in known else (UNKNOWN,)
            if result.decision not in right:
                mistakes.append({"path": str(path), "sha256": result.sha256, "truth": label,
                                 "decision": result.decision, "confidence": result.confidence, "reason": result.reason,
                                 "nearest": list(nearest.exemplars or [])})
    return {"truth": truth, "best": best, "decision": decision, "mistakes": mistakes, "score": np.array(score, float),
            "margin": np.array(margin, float), "per_known": np.array(per_known, float).reshape(len(truth), len(known))}


def verification_metrics(truth: list[str], per_known: np.ndarray, known: list[str]) -> tuple[float, float]:
    """(EER, TAR at FAR 1%) over trials 'query vs each known generator' (genuine: its own generator)."""
    from sklearn.metrics import roc_curve

    genuine = (np.asarray(truth)[:, None] == np.asarray(known)[None, :]).ravel()
    if genuine.all() or not genuine.any():
        return float("nan"), float("nan")
    fpr, tpr, _ = roc_curve(genuine.astype(int), per_known.ravel(), drop_intermediate=False)
    diff = (1 - tpr) - fpr  # goes from 1 down to -1
    i = int(np.argmax(diff <= 0))
    j = max(i - 1, 0)
    t = diff[j] / (diff[j] - diff[i]) if diff[j] != diff[i] else 0.0
    eer = fpr[j] + t * (fpr[i] - fpr[j])
    return float(eer), float(tpr[fpr <= VERIFICATION_FAR].max())


def repeat_metrics(raw: dict, known: list[str], families: dict[str, str] | None = None) -> tuple[dict, dict]:
    from .metrics import (OpenSetQueries, closed_set_accuracy, correct_and_accepted, family_metrics, open_set_auroc,
                          operating_point, oscr, per_generator)

    q = OpenSetQueries(truth=raw["truth"], predicted=raw["best"], score=raw["margin"],
                       accepted=np.array([d != UNKNOWN for d in raw["decision"]], bool),
                       known=np.isin(raw["truth"], known), decision=list(raw["decision"]))
    accepted, rejected = operating_point(q)
    eer, tar = verification_metrics(raw["truth"], raw["per_known"], known)
    by_score = OpenSetQueries(q.truth, q.predicted, raw["score"], q.accepted, q.known)
    values = {"closed_set_accuracy": closed_set_accuracy(q), "open_set_auroc": open_set_auroc(q),
              "open_set_auroc_score": open_set_auroc(by_score), "oscr": oscr(q), "ccr": correct_and_accepted(q),
              "known_accepted": accepted, "unknown_rejected": rejected, "verification_eer": eer,
              "tar_at_far_1pct": tar}
    if families:
        values.update(family_metrics(q, families))
    return values, per_generator(q)


def summary(values) -> dict:
    """Mean, sample std and standard error of the mean (over finite values; std and sem None under 2)
    plus the per-repeat values (NaN as None)."""
    arr = np.asarray(values, float)
    finite = arr[np.isfinite(arr)]
    mean = float(finite.mean()) if finite.size else None
    std = float(finite.std(ddof=1)) if finite.size > 1 else None
    sem = std / float(np.sqrt(finite.size)) if std is not None else None
    return {"mean": mean, "std": std, "sem": sem, "values": [float(v) if np.isfinite(v) else None for v in arr]}


def run_evaluation(data_dir, known, unknown=(), *, extractor, shots=10, repeats=5, seed=0, max_per=60,
                   conditions=(DEFAULT_CONDITION,), query_conditions=(), families=None, progress_bar=None,
                   target_far=DEFAULT_TARGET_FAR, sweep=(), versions=None) -> Evaluation:
    """Evaluate ``extractor`` (a BoundExtractor, or a list of them to fuse) on DATA_DIR; see the module docstring.

    Every condition C is evaluated as is and, for every query condition Q, with the gallery enrolled
    under C and the queries under C+Q, written as they travel (a ``.jpg`` for a trailing ``jpeg:Q``).
    Every delivery D of ``sweep`` is evaluated with queries under C+D against the gallery under C
    (clean, with its delivery versions), against the gallery under C without versions (originals only;
    not run apart when C's gallery has none anyway), and against a gallery enrolled under C+D (every
    image at that quality); ``data["sweep"]`` holds one row per (C, delivery), the clean C first.
    ``families`` maps known labels to the family they are enrolled under.

    A gallery enrolled from lossless images gets the delivery versions ``versions`` (None: the default
    ladder, :func:`attrib.delivery.default_ladder`; ``none``: none); one enrolled under a lossy condition
    (every image at that quality, the reference a versioned gallery is compared with) gets none."""
    from ..delivery import default_ladder, parse_ladder
    from ..synthetic.conditions import parse_condition, write_conditioned

    known, unknown = list(known), list(unknown)
    ladder = parse_ladder(versions) if versions is not None else default_ladder()
    families = dict(families or {})
    extractors = extractor_list(extractor)
    if max_per < shots + 1:
        raise AttribError(f"--max-per ({max_per}) must be at least --shots + 1 ({shots + 1})")
    strange = sorted(set(families) - set(known))
    if strange:
        raise AttribError(f"--family names {', '.join(strange)}, which is not in --known ({', '.join(known)})")
    parsed = list({str(c): c for c in map(parse_condition, conditions or (DEFAULT_CONDITION,))}.values())
    laundering = list({str(c): c for c in map(parse_condition, query_conditions)}.values())
    deliveries = list({str(c): c for c in map(parse_condition, sweep)}.values())
    blocks = [Block(c) for c in parsed] + [Block(c, parse_condition(f"{c}+{q}")) for c in parsed for q in laundering]
    for c in parsed:
        for d in deliveries:
            travelled = parse_condition(f"{c}+{d}")
            blocks += [Block(c, travelled, sweep=True), Block(travelled, travelled, sweep=True)]
            if ladder and not lossy(c):  # else C's gallery holds originals only already
                blocks.append(Block(c, travelled, sweep=True, versions="none"))
    unique: dict[str, Block] = {}
    for block in blocks:
        unique.setdefault(block.name, block)  # a -q block that a sweep repeats stays a full one
    blocks = list(unique.values())
    to_write = list({(str(c), as_file): (c, as_file) for c, as_file in
                     [(b.gallery, False) for b in blocks] + [(b.queries, True) for b in blocks if b.queries]}.values())
    files = find_label_files(Path(data_dir), known, unknown, shots)
    bar = progress_bar or (lambda total, label: nullcontext(lambda n=1: None))
    notes: Counter = Counter()
    started = time.perf_counter()
    data: dict[str, Any] = {"config": {"data_dir": str(data_dir), "known": known, "unknown": unknown, "shots": shots,
                       "repeats": repeats, "seed": seed, "max_per": max_per, "conditions": [str(c) for c in parsed],
                       "query_conditions": [str(q) for q in laundering], "sweep": [str(d) for d in deliveries],
                       "families": families, "versions": None if versions is None else str(versions),
                       "extractor": "+".join(e.identity.key for e in extractors), "target_far": target_far},
            "conditions": []}
    result = Evaluation(data)
    with tempfile.TemporaryDirectory(prefix="attrib-eval-images-") as tmp:
        with bar(sum(map(len, files.values())), "preparing images") as advance:
            written = dict(zip([(str(c), as_file) for c, as_file in to_write],
                               write_conditioned(files, [c for c, _ in to_write], seed, Path(tmp), advance, notes,
                                                 [as_file for _, as_file in to_write])))
        for (written_as, _), images in written.items():
            for label in known + unknown:
                if len(images[label]) < (shots + 1 if label in known else 1):
                    why = (f" under {written_as} ({len(files[label]) - len(images[label])} of {len(files[label])} "
                           f"files left out: unreadable, or under 64 px after the condition)")
                    raise AttribError(_too_few(label, Path(data_dir) / label, len(images[label]), shots,
                                               label in known, why))
        n_files = {label: len(paths) for label, paths in files.items()}
        sources = source_names(written.values(), files)
        cached = [CachedExtractor(e) for e in extractors]  # equal pixels embed once, whatever block they are in
        for block in blocks:
            name = block.name
            images = written[(str(block.gallery), False)]
            query_images = None if block.queries is None else written[(str(block.queries), True)]
            t0 = time.perf_counter()
            before = sum(c.embedded for c in cached), sum(c.reused for c in cached)
            splits = [draw_split(images, n_files, known, unknown, shots, max_per, seed, r, query_images)
                      for r in range(repeats)]
            total = sum(sum(map(len, e.values())) + len(q) for e, q in splits)
            raws = []
            with bar(total, f"evaluating {name}") as advance:
                for enroll, queries in splits:
                    raws.append(run_repeat(cached, enroll, queries, known, advance, notes, target_far, families,
                                           block.gallery_versions(versions)))
            result.data["conditions"].append(_condition_block(name, raws, splits, known, unknown, families))
            result.data["conditions"][-1].update(
                cache={"embedded": sum(c.embedded for c in cached) - before[0],
                       "reused": sum(c.reused for c in cached) - before[1]},
                wall_s=round(time.perf_counter() - t0, 2), **({"sweep": True} if block.sweep else {}))
            result.pooled[name] = (np.concatenate([np.isin(r["truth"], known) for r in raws]),
                                   np.concatenate([r["margin"] for r in raws]))
            worst = result.data["conditions"][-1]["worst_mistakes"]
            if not block.sweep:  # a sweep block has no section of its own to show them in
                mistake_previews(worst, result.previews, THUMB_PX)
            name_sources(worst, sources)
    if deliveries:
        data["sweep"] = sweep_rows(data["conditions"], parsed, deliveries)
    data["notes"] = [f"{text} (x{n})" if n > 1 else text for text, n in notes.items()]
    data["wall_s"] = round(time.perf_counter() - started, 2)
    return result


def sweep_rows(blocks: list[dict], conditions: list[Condition], deliveries: list[Condition]) -> list[dict]:
    """Per gallery condition C, a row per delivery (``none`` first: C's own block on every side) with
    :data:`SWEEP_METRICS` against the gallery of originals only (``originals_gallery``; the clean block
    where none was run apart: C's gallery had no versions), the clean gallery with its delivery versions
    (``clean_gallery``) and the gallery at that quality (``same_gallery``)."""
    by_name = {b["condition"]: b for b in blocks}

    def metrics(name: str) -> dict:
        return {key: by_name[name]["metrics"][key] for key in SWEEP_METRICS}

    rows = []
    for c in conditions:
        rows.append({"condition": str(c), "delivery": "none", "originals_gallery": metrics(str(c)),
                     "clean_gallery": metrics(str(c)), "same_gallery": metrics(str(c))})
        for d in deliveries:
            travelled = Condition(c.steps + d.steps)
            clean, originals = Block(c, travelled).name, Block(c, travelled, versions="none").name
            rows.append({"condition": str(c), "delivery": str(d),
                         "originals_gallery": metrics(originals if originals in by_name else clean),
                         "clean_gallery": metrics(clean),
                         "same_gallery": metrics(Block(travelled, travelled).name)})
    return rows


def _condition_block(condition: str, raws, splits, known, unknown, families=None) -> dict:
    families = families or {}
    per_repeat = [repeat_metrics(raw, known, families) for raw in raws]
    family_names = list(dict.fromkeys(families.values()))
    rows, columns = known + unknown, known + family_names + [AMBIGUOUS, UNKNOWN]
    matrix = np.zeros((len(rows), len(columns)), int)
    for raw in raws:
        for t, d in zip(raw["truth"], raw["decision"]):
            matrix[rows.index(t), columns.index(d if d in columns else AMBIGUOUS)] += 1
    per_generator = {}
    for label in rows:
        stats = [p.get(label) for _, p in per_repeat]
        recall = [(s["top1"] if label in known else s["correct_decision"]) if s else np.nan for s in stats]
        per_generator[label] = {
            "known": label in known,
            "enrolled_per_repeat": len(splits[0][0].get(label, [])),
            "queries": int(sum(s["queries"] for s in stats if s)),
            "recall": summary(recall),
            "correct_decision": summary([s["correct_decision"] if s else np.nan for s in stats]),
            "accepted": summary([s["accepted"] if s else np.nan for s in stats]),
        }
    return {"condition": condition,
            "queries_per_repeat": float(np.mean([len(r["truth"]) for r in raws])),
            "metrics": {name: summary([m[name] for m, _ in per_repeat])
                        for name, _ in METRICS + (FAMILY_METRICS if families else ())},
            "per_generator": per_generator,
            "confusion": {"rows": rows, "columns": columns, "matrix": matrix.tolist()},
            "worst_mistakes": sorted((m for raw in raws for m in raw.get("mistakes", [])),
                                     key=lambda m: -(m["confidence"] or 0.0))[:WORST_MISTAKES]}
