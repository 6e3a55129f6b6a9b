"""``Gallery``: the library's one object for a gallery of enrolled generators.

Composes the parts: images are read by :mod:`attrib.images`, embedded by a bound extractor
(:mod:`attrib.extractors`), stored through the storage interface (:mod:`attrib.storage`) and
scored by :mod:`attrib.scoring`. Identification reads through the fast read-only path when
the index on disk can be trusted, and opens the SQLite store (which migrates and rebuilds,
saying so) only when it cannot.

Writes hold the gallery's writer lock (:mod:`attrib.storage.locking`) and are one database
transaction each: storing samples, refitting the whitening and recalibrating commit together
or not at all; the index files follow, and are rebuilt from the database whenever they lag.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from .errors import (AttribError, DiskFull, EnrollmentConflict, GalleryError, ReadOnlyGallery, StaleGallery,
                     UnknownGenerator)
from .extractors.contract import BoundExtractor
from .images import BATCH, ImageRecord, LoadedImage, display_path, load_batches, load_images
from .scoring import calibration, open_set
from .scoring.decision import IdentificationResult, Verification, decide, rank, score_queries
from .scoring.fusion import fit_fusion
from .scoring.open_set import DecisionModel
from .scoring.whitening import fit_whitening, held_out_score_matrix
from .storage.base import GalleryReads, IndexView, fit_problems, load_index_view, memory_view
from .storage.check import CheckReport, inspect_gallery
from .storage.check import repair as repair_gallery
from .storage.fast_reader import FastReader
from .storage.location import MaskedURL, database_url, is_database_url

Progress = Callable[[int], None]


@dataclass
class EnrollReport:
    """What one enroll did: files added, skipped (already enrolled) and failed, and the calibration."""

    generator: str
    added: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    calibration: str = ""


@dataclass
class GeneratorInfo:
    """One enrolled generator, as ``attrib gallery list`` shows it."""

    name: str
    family: str | None
    note: str | None
    samples: int
    threshold: float | None
    threshold_method: str | None
    created_at: str


@dataclass
class ReembedReport:
    """What one re-embed did."""

    extractor: str
    embedded: int = 0
    present: int = 0
    problems: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)


class Gallery:
    """A gallery folder. ``read_only`` defers opening the database read-write (and creating the
    folder) until something must be written or repaired. Writers wait up to ``lock_timeout``
    seconds for each other (default: $ATTRIB_LOCK_TIMEOUT, else 300), then raise GalleryBusy."""

    def __init__(self, root: str | Path, notify: Callable[[str], None] | None = None, read_only: bool = False,
                 lock_timeout: float | None = None):
        self.url = database_url(root) if is_database_url(root) else None  # a PostgreSQL gallery
        self.root = MaskedURL(self.url) if self.url is not None else Path(root).expanduser()
        self.notify = notify or (lambda message: None)
        self.lock_timeout = lock_timeout
        self._store = None
        self._reader: FastReader | None = None
        if not read_only or self.url is not None:  # a database has no fast read-only path
            self.store  # noqa: B018 - open (and create) now, so a bad folder fails first

    @property
    def store(self):
        """The SQLite store (SQLAlchemy), or the PostgreSQL one, opened on first use."""
        if self._store is None:
            if self.url is not None:
                from .storage.postgres import PostgresStore

                self._store = PostgresStore(self.url, notify=lambda message: self.notify(message),
                                            lock_timeout=self.lock_timeout)
                return self._store
            from .storage.sqlite import SQLiteStore

            self._store = SQLiteStore(self.root, notify=lambda message: self.notify(message),
                                      lock_timeout=self.lock_timeout)
        return self._store

    def reads(self) -> GalleryReads:
        """The store when it is open, else the fast read-only path (else the store)."""
        if self._store is None and self._reader is None:
            self._reader = FastReader.open(self.root)
        return self._store or self._reader or self.store

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> "Gallery":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- extractors -----------------------------------------------------

    def extractor_names(self) -> set[str]:
        """Names of the extractors this gallery holds vectors for (empty for a new or unreadable one)."""
        if self._store is None and not (self.root / "gallery.db").exists():
            return set()
        try:
            return self.reads().extractor_names()
        except (sqlite3.Error, GalleryError):
            return set()

    def extractor_keys(self) -> list[str]:
        return self.store.extractor_keys()

    def load_extractor(self, name: str | None = None, options: Sequence[str] = ()):
        """Bind ``name`` (``a+b`` fuses several); without a name, this gallery's only extractor."""
        from .extractors.resolve import load_extractor

        return load_extractor(name, options, self.extractor_names())

    def open_index(self, extractor: BoundExtractor) -> IndexView:
        """The loaded index for ``extractor``. When the whitening or calibration predates the vectors
        they are refitted, and a stale index is rebuilt, under the writer lock (and said so); a gallery
        that cannot be written searches its stored vectors instead, or refuses stale fits in one line."""
        if self._store is None:
            try:
                reader = self.reads()
                view = load_index_view(reader, extractor.identity.key)
            except sqlite3.Error:
                view = None
            if view is not None:
                return view
        try:
            return self._repaired_view(extractor)
        except (ReadOnlyGallery, DiskFull) as exc:
            return self._read_only_view(extractor, exc)

    def _repaired_view(self, extractor: BoundExtractor) -> IndexView:
        store = self.store
        view = load_index_view(store, extractor.identity.key)
        if view is not None:
            return view
        extractor_id = store.require_extractor(extractor)
        with store.lock.held():
            problems = fit_problems(store, extractor_id)
            if problems:
                self.calibrate_extractor(extractor_id)
                self.notify(f"{problems[0]}; refitted and recalibrated it")
            return store.open_index(extractor)

    def _read_only_view(self, extractor: BoundExtractor, exc: ReadOnlyGallery | DiskFull) -> IndexView:
        """For a gallery this process cannot write now: the stored vectors searched in memory when only the
        index files are stale; a one-line error when the fits are."""
        reader = self._reader or FastReader.open(self.root)
        if reader is None:
            raise exc
        self._reader = reader
        key = extractor.identity.key
        why = "no space is left on its disk" if isinstance(exc, DiskFull) else "it is read-only here"
        extractor_id = reader.extractor_id(key)
        problems = fit_problems(reader, extractor_id) if extractor_id is not None else []
        if problems:
            raise StaleGallery(f"{problems[0]}, and gallery {self.root} cannot be refitted: {why}; "
                               "run `attrib calibrate` where it can be written")
        view = memory_view(reader, key)
        if view is None:
            raise exc
        self.notify(f"the index files of {key} are out of date and cannot be rewritten ({why}); searched the "
                    "stored vectors instead; `attrib gallery check --repair` rewrites them")
        return view

    # -- enrollment -----------------------------------------------------

    def enroll(
        self,
        generator: str,
        paths: Iterable[Path],
        extractor: BoundExtractor,
        family: str | None = None,
        note: str | None = None,
        progress: Progress | None = None,
        target_far: float | None = None,
    ) -> EnrollReport:
        """Embed and store images under ``generator``; nothing is stored if the extractor fails."""
        generator = validate_name(generator)
        report = EnrollReport(generator)
        existing = self.store.owners()
        vectors: list[np.ndarray] = []
        kept: list[ImageRecord] = []  # what storage needs, without pixels: memory stays flat however many
        shown_paths: list[str] = []  # each kept file's path as given, for the report
        seen: set[str] = set()
        for chunk in load_batches(paths):
            new = []
            for item in chunk:
                if progress:
                    progress(1)
                if not isinstance(item, LoadedImage):
                    report.failed.append((display_path(item[0]), item[1]))
                    continue
                shown, owner = display_path(item.path), existing.get(item.sha256)
                if owner == generator or item.sha256 in seen:
                    report.skipped.append((shown, f"already enrolled under {generator!r}"))
                elif owner is not None:
                    report.failed.append((shown, conflict_message(shown, owner, generator)))
                else:
                    seen.add(item.sha256)
                    new.append(item)
            if new:
                vectors.append(extractor.embed([item.pixels for item in new]))
                kept.extend(item.record() for item in new)
                shown_paths.extend(display_path(item.path) for item in new)
        return self._store_enrolled(report, kept, shown_paths, vectors, extractor, family, note, target_far)

    def _store_enrolled(self, report: EnrollReport, images: list[ImageRecord], shown: list[str],
                        vectors: list[np.ndarray], extractor: BoundExtractor, family: str | None,
                        note: str | None, target_far: float | None) -> EnrollReport:
        """Store embedded images and recalibrate in one transaction under the writer lock, then write the
        index. Files another process enrolled meanwhile are reported like those enrolled before; a stale
        calibration is refitted even when nothing new is stored."""
        store = self.store
        with store.lock.held():
            with store.writing():
                matrix = np.concatenate(vectors) if vectors else np.zeros((0, extractor.dim), np.float32)
                stored = store.add_samples(report.generator, images, matrix, extractor, family=family, note=note)
                for position in stored.duplicates:
                    report.skipped.append((shown[position], f"already enrolled under {report.generator!r}"))
                for position, owner in stored.conflicts:
                    report.failed.append((shown[position], conflict_message(shown[position], owner, report.generator)))
                report.added = [shown[position] for position in stored.added]
                extractor_id = stored.extractor_id
                stale = fit_problems(store, extractor_id) if extractor_id is not None else []
                if not (report.added or stale):
                    return report
                if stale and not report.added:
                    self.notify(f"{stale[0]}; recalibrating")
                self.ensure_cohort(extractor_id, extractor)
                report.calibration = self._refit(extractor_id, target_far).message
            store.write_index(extractor_id)
        return report

    def remove(self, generator: str, target_far: float | None = None) -> int:
        """Remove a generator with its samples and vectors and recalibrate, in one transaction; return the
        samples removed."""
        store = self.store
        with store.lock.held():
            with store.writing():
                count = store.remove_generator(generator)
                extractor_ids = store.extractor_ids()
                for extractor_id in extractor_ids:
                    self._refit(extractor_id, target_far)
            self._write_indexes(extractor_ids)
        return count

    def _write_indexes(self, extractor_ids: Iterable[int], force: bool = False) -> None:
        for extractor_id in extractor_ids:
            self.store.write_index(extractor_id, force=force)

    def reembed(self, extractor: BoundExtractor, progress: Progress | None = None,
                target_far: float | None = None) -> ReembedReport:
        """Embed every sample that lacks a vector for ``extractor``, reading it again from its path,
        then calibrate it (at ``target_far``, by default the FAR it was last calibrated at).

        Files that are missing or whose sha256 changed since enrollment are reported and left
        alone. When every sample is covered, vectors of other versions (or options) of the same
        extractor are dropped.
        """
        key = extractor.identity.key
        report = ReembedReport(key)
        extractor_id, todo, report.present = self.store.samples_to_embed(extractor)
        if progress and report.present:
            progress(report.present)
        new_vectors: list[tuple[int, np.ndarray]] = []
        loaded = load_images(Path(path) for _, path, _, _ in todo)
        for start in range(0, len(todo), BATCH):
            batch_ids, pixels = [], []
            for (sample_id, path, sha256, generator), (_, image) in zip(todo[start: start + BATCH], loaded):
                if not isinstance(image, LoadedImage):
                    report.problems.append(f"sample of {generator!r} ({sha256[:12]}): {image}")
                elif image.sha256 != sha256:
                    report.problems.append(
                        f"sample of {generator!r}: {path} changed since enrollment (sha256 {image.sha256[:12]} "
                        f"!= {sha256[:12]}); remove and re-enroll it"
                    )
                else:
                    batch_ids.append(sample_id)
                    pixels.append(image.pixels)
                if progress:
                    progress(1)
            if pixels:
                new_vectors.extend(zip(batch_ids, extractor.embed(pixels)))
        store = self.store
        with store.lock.held():
            with store.writing():
                report.embedded, report.replaced = store.add_vectors(
                    extractor_id, extractor.name, key, new_vectors, replace_other_versions=not report.problems)
                self.ensure_cohort(extractor_id, extractor)
                self._refit(extractor_id, target_far)
            store.write_index(extractor_id)
        for old_key in report.replaced:
            self.notify(f"dropped vectors of {old_key}: every sample now has a {key} vector")
        return report

    # -- calibration ----------------------------------------------------

    def calibrate_extractor(self, extractor_id: int, target_far: float | None = None) -> calibration.CalibrationResult:
        """Refit the whitening, recompute thresholds and the decision model, bring the index up to date.

        Thresholds are set on the impostor cohort stored for the extractor (:mod:`attrib.scoring.open_set`);
        a gallery without one falls back to its own impostors. ``target_far`` defaults to the one this
        extractor was last calibrated at (else the default).
        """
        store = self.store
        with store.lock.held():
            with store.writing():
                result = self._refit(extractor_id, target_far)
            if not store.in_transaction:  # else the index follows the outer transaction's commit
                store.write_index(extractor_id)
        return result

    def _refit(self, extractor_id: int, target_far: float | None) -> calibration.CalibrationResult:
        """Fit the whitening and the calibration on the vectors as they are in the open transaction, and store
        both with the revision they were fitted at."""
        store = self.store
        revision = store.revision(extractor_id)
        _, gens, matrix = store.vectors(extractor_id)
        whitening = fit_whitening(matrix, gens)
        if target_far is None:
            target_far = store.calibrated_far(extractor_id)
        store.save_whitening(extractor_id, whitening, len(gens), revision)
        cohort = store.cohort(extractor_id, cohort_version())
        if cohort is None or len(gens) == 0:
            result = calibration.calibrate(matrix, gens, target_far=target_far,
                                           score_matrix=held_out_score_matrix(whitening))
        else:
            matrix, gens = calibration.subsample(matrix, gens)
            held_out, order = held_out_score_matrix(whitening)(matrix.astype(np.float64), gens)
            scores = open_set.cohort_scores(whitening.apply(cohort), whitening.apply(matrix), gens, order)
            result = open_set.calibrate(held_out, gens, order, scores, target_far)
        store.save_calibration(extractor_id, result, target_far, revision)
        return result

    def ensure_cohort(self, extractor_id: int, extractor: BoundExtractor) -> None:
        """Store the impostor cohort embedded by ``extractor`` unless the gallery has it (once per extractor)."""
        version = cohort_version()
        if self.store.cohort(extractor_id, version) is not None:
            return
        shipped = getattr(extractor.impl, "cohort_vectors", None)
        vectors = shipped(version) if callable(shipped) else None
        if vectors is None:
            from .synthetic import cohort

            self.notify(f"embedding the impostor cohort ({cohort.size()} images of generators never enrolled) "
                        f"with {extractor.identity.key} for open-set calibration; once per gallery and extractor")
            vectors = cohort.embed(extractor)
        self.store.save_cohort(extractor_id, version, np.asarray(vectors, dtype=np.float32))

    def calibrate(self, target_far: float = calibration.DEFAULT_TARGET_FAR) -> dict[str, calibration.CalibrationResult]:
        """Recalibrate every extractor at ``target_far``; results by extractor identity key."""
        if not 0 < target_far < 1:
            raise AttribError(f"--target-far must be between 0 and 1 (e.g. 0.01), got {target_far}")
        store = self.store
        rows = store.extractors()
        if not rows:
            from .errors import EmptyGallery

            raise EmptyGallery(f"gallery {self.root} is empty; nothing to calibrate")
        with store.lock.held():
            with store.writing():
                results = {key: self._refit(eid, target_far) for eid, key in rows}
            self._write_indexes(eid for eid, _ in rows)
        return results

    def rebuild_indexes(self) -> list[str]:
        """Rebuild every FAISS index from the database; return the extractor keys."""
        with self.store.lock.held():
            self._write_indexes(self.store.extractor_ids(), force=True)
        return self.store.extractor_keys()

    def check(self, repair: bool = False) -> CheckReport:
        """Verify the gallery (:mod:`attrib.storage.check`); with ``repair``, migrate an earlier schema and
        rebuild what the durable vectors allow (whitening and calibration, index files, leftover files)
        under the writer lock, then verify again; the report lists what was repaired."""
        report = inspect_gallery(self.root, self._store)
        if not (repair and report.repairable):
            return report
        store = self.store  # opening the store migrates an earlier schema
        done = ["migrated the database to the current schema"] if report.needs_migration else []
        with store.lock.held():
            done += repair_gallery(store, inspect_gallery(self.root, store), self.calibrate_extractor)
        report = inspect_gallery(self.root, store)
        report.repaired = done
        return report

    # -- identification and verification ---------------------------------

    def identify(self, paths: Iterable[Path], extractor: BoundExtractor | Sequence[BoundExtractor],
                 top_k: int = 3, evidence: bool = True, c2pa_trust: str | Path | None = None,
                 trust_metadata: bool = False) -> Iterator[IdentificationResult]:
        """Yield one IdentificationResult per input path, in order (see :mod:`attrib.scoring.decision`).

        Each result also lists what the file says about its origin (:mod:`attrib.evidence`; C2PA
        signatures checked against ``c2pa_trust``) and whether that agrees with the forensic answer;
        the evidence decides only with ``trust_metadata`` and a signature from a trusted signer.

        With several extractors the scores are fused (:mod:`attrib.scoring.fusion`): each
        generator's score is a weighted mean over extractors of (score - that extractor's global
        threshold), decided with thresholds and a decision model calibrated on fused scores.
        """
        if top_k < 1:
            raise AttribError(f"--top-k must be at least 1, got {top_k}")
        extractors = list(extractor) if isinstance(extractor, (list, tuple)) else [extractor]
        views = [self.open_index(e) for e in extractors]
        reads = self.reads()
        key = "+".join(e.identity.key for e in extractors)
        names, families = views[0].generator_names, views[0].families
        fusion = None
        if len(views) > 1:
            fusion = fit_fusion(reads, views, [reads.cohort(v.extractor_id, cohort_version()) for v in views])
        stored_model, threshold_of = (fusion.model, fusion.threshold) if fusion else (views[0].model, views[0].threshold)
        model = DecisionModel.from_dict(stored_model)
        uncalibrated = [] if stored_model else [
            "confidence is not calibrated: this gallery has no impostor cohort yet; run `attrib gallery reembed "
            f"--extractor {extractors[0].name}` once to add it"]
        inspect, enrolled = _inspector(evidence, c2pa_trust), list(names.values())
        if inspect:
            from .evidence.combine import apply_to_identification
        for chunk in load_batches(paths, inspect=inspect):
            per_extractor = []
            for bound, view in zip(extractors, views):
                matrix = _embed_chunk(bound, chunk)
                per_extractor.append(score_queries(view, matrix) if len(matrix) else [])
            position = 0
            hit_ids = [vid for q in per_extractor[0] for hits in q.hits.values() for vid, _ in hits]
            exemplars = reads.exemplars(hit_ids) if hit_ids else {}
            for item in chunk:
                if not isinstance(item, LoadedImage):
                    yield IdentificationResult(path=str(item[0]), error=item[1])
                    continue
                queries = [s[position] for s in per_extractor]
                position += 1
                scores = fusion.rank([q.scores for q in queries]) if fusion else queries[0].scores
                ranked = rank(scores, threshold_of, model, names, families)
                for gid, candidate in ranked[:top_k]:
                    candidate.exemplars = [
                        {"path": exemplars[vid][0], "sha256": exemplars[vid][1], "similarity": round(sim, 6)}
                        for vid, sim in queries[0].hits.get(gid, []) if vid in exemplars]
                    if fusion:
                        candidate.per_extractor = {e.identity.key: q.scores[gid]
                                                   for e, q in zip(extractors, queries) if gid in q.scores}
                candidates = [c for _, c in ranked]
                result = IdentificationResult(path=str(item.path), sha256=item.sha256, candidates=candidates[:top_k],
                                              flags=self._flags(reads, item) + uncalibrated, extractor=key,
                                              **decide(candidates, model))
                yield apply_to_identification(result, item.evidence, enrolled, trust_metadata) if inspect else result

    @staticmethod
    def _flags(reads: GalleryReads, item: LoadedImage) -> list[str]:
        """What makes this query special: an exact copy of an enrolled file, or visible recompression."""
        flags = []
        owner = reads.sample_owner(item.sha256)
        if owner is not None:
            flags.append(f"exact copy of a sample enrolled under {owner} (same sha256)")
        if item.compression:
            flags.append(f"recompressed ({item.compression}): attribution is less reliable")
        return flags

    def verify(self, generator: str, paths: Iterable[Path], extractor: BoundExtractor, evidence: bool = True,
               c2pa_trust: str | Path | None = None) -> Iterator[Verification]:
        """Yield one Verification per input path: is it from ``generator``? With what the file says
        (see :meth:`identify`), which never changes the match."""
        view = self.open_index(extractor)
        by_name = {name: gid for gid, name in view.generator_names.items()}
        if generator not in by_name:
            known = ", ".join(sorted(by_name)) or "none"
            raise UnknownGenerator(
                f"generator {generator!r} is not enrolled (enrolled: {known}); see `attrib gallery list`")
        gid = by_name[generator]
        own = view.generator_vectors(gid)
        if len(own) == 0:
            raise UnknownGenerator(
                f"generator {generator!r} has no samples embedded with {extractor.identity.key}; run "
                f"`attrib gallery reembed --extractor {extractor.name}`"
            )
        threshold = view.threshold(gid)
        model = DecisionModel.from_dict(view.model)
        inspect = _inspector(evidence, c2pa_trust)
        if inspect:
            from .evidence.combine import apply_to_verification
        for chunk in load_batches(paths, inspect=inspect):
            vectors = iter(_embed_chunk(extractor, chunk))
            for item in chunk:
                if not isinstance(item, LoadedImage):
                    yield Verification(path=str(item[0]), generator=generator, error=item[1])
                    continue
                score = calibration.aggregate(own @ view.whitening.apply(next(vectors)[None])[0])
                result = Verification(
                    path=str(item.path),
                    generator=generator,
                    sha256=item.sha256,
                    score=round(score, 6),
                    threshold=round(threshold, 6),
                    match=bool(score >= threshold),
                    confidence=model.p_known(score - threshold, gid),
                    extractor=extractor.identity.key,
                )
                yield apply_to_verification(result, item.evidence, by_name) if inspect else result

    # -- listing --------------------------------------------------------

    def generators(self) -> list[GeneratorInfo]:
        return [GeneratorInfo(**row) for row in self.store.generator_rows()]

    def generator_names(self) -> dict[int, str]:
        return self.reads().generator_names()

    def generator_detail(self, name: str) -> dict:
        return self.store.generator_detail(name)

    def audit_log(self, limit: int | None = None, action: str | None = None) -> list[dict]:
        return self.store.audit_log(limit, action)


def _inspector(evidence: bool, c2pa_trust: str | Path | None):
    """The per-file evidence reader for :func:`attrib.images.load_batches` (None: evidence not read)."""
    if not evidence:
        return None
    from .evidence.read import file_inspector

    return file_inspector(c2pa_trust)


def cohort_version() -> str:
    from .synthetic.cohort import COHORT_VERSION

    return COHORT_VERSION


def _embed_chunk(extractor: BoundExtractor, chunk) -> np.ndarray:
    images = [item.pixels for item in chunk if isinstance(item, LoadedImage)]
    return extractor.embed(images) if images else np.zeros((0, extractor.dim), np.float32)


def conflict_message(path: str, owner: str, generator: str) -> str:
    return str(EnrollmentConflict(
        f"{path}: already enrolled under generator {owner!r}, refused for {generator!r}; "
        f"remove it from {owner!r} first if it was mislabelled"))


def validate_name(name: str) -> str:
    cleaned = name.strip()
    if not cleaned or len(cleaned) > 200 or any(ch in cleaned for ch in "\n\r\t+"):
        raise AttribError(
            f"generator name {name!r} is not usable: use 1-200 characters without '+', tabs or newlines"
        )
    return cleaned


def open_gallery(location: str | Path, notify: Callable[[str], None] | None = None,
                 read_only: bool = False) -> Gallery:
    """Open (creating when not ``read_only``) the gallery at ``location``: a folder, or a PostgreSQL URL
    (``postgresql://USER@HOST/DATABASE``) whose database every machine shares."""
    if not str(location).strip():
        raise GalleryError("the gallery path is empty; give a folder or a postgresql:// URL "
                           "(--gallery DIR or ATTRIB_GALLERY)")
    return Gallery(location, notify=notify, read_only=read_only)
