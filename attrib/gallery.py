"""``Gallery``: the library's one object for a gallery of enrolled generators.

Composes the parts: images are read by :mod:`attrib.images`, embedded by a bound extractor
(:mod:`attrib.extractors`), stored through the storage interface (:mod:`attrib.storage`) and
scored by :mod:`attrib.scoring`. Identification reads through the fast read-only path when
the index on disk can be trusted, and opens the SQLite store (which migrates and rebuilds,
saying so) only when it cannot.

Writes hold the gallery's writer lock (:mod:`attrib.storage.locking`). Enrollment commits
images in chunks, one transaction each (samples with their vectors), so an interrupted enroll
keeps whole chunks and a re-run completes it; then the whitening, the calibration and the index
are brought up to date at a cost set by what changed (:mod:`attrib.upkeep.refit`). The index files
follow the database and are extended or rebuilt from it whenever they lag.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from .delivery import delivered, measured
from .enrollment import (Chunk, EnrollReport, ReembedReport, StoredAs, conflict_message, embed_again,
                         embedded_chunks, enroll_extractors, fill_in, find_sample, ladder_of, relink,
                         require_fusable, require_single, skip_reason, store_cohort, validate_name)
from .errors import AttribError, DiskFull, GalleryError, ReadOnlyGallery, UnknownGenerator
from .extractors.contract import BoundExtractor, extractor_list
from .images import ImageInput, ImageRecord, Inspect, LoadedImage, load_batches
from .routing import Router
from .scoring import calibration
from .scoring.decision import IdentificationResult, Verification, decide, rank
from .storage.fast_reader import FastReader
from .storage.interface import GalleryReads
from .storage.location import MaskedURL, database_url, is_database_url
from .upkeep import refit
from .upkeep.check import CheckReport, inspect_gallery, with_staleness
from .upkeep.check import repair as repair_gallery
from .upkeep.freshness import (LoadedIndex, fit_problems, held_out_scores, index_problems, load_index_view,
                               open_index, read_only_view)

if TYPE_CHECKING:
    from .storage.sql import SQLStore

Progress = Callable[[int], None]
EMBEDDED_CHUNK = 10_000  # precomputed vectors stored per transaction by Gallery.enroll_embedded


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


class Gallery:
    """A gallery folder. ``read_only`` defers opening the database read-write (and creating the
    folder) until something must be written or repaired. Writers wait up to ``lock_timeout``
    seconds for each other (default: $ATTRIB_LOCK_TIMEOUT, else 300), then raise GalleryBusy."""

    def __init__(self, root: str | Path, notify: Callable[[str], None] | None = None, read_only: bool = False,
                 lock_timeout: float | None = None):
        self.url = database_url(root) if is_database_url(root) else None  # a PostgreSQL gallery
        self.root: MaskedURL | Path = MaskedURL(self.url) if self.url is not None else Path(root).expanduser()
        self.notify = notify or (lambda message: None)
        self.lock_timeout = lock_timeout
        self._location = root if self.url is not None else self.root  # what open_store opens
        self._opened: SQLStore | None = None  # SQLiteStore or PostgresStore, opened on first use
        self._reader: FastReader | None = None
        if not read_only or self.url is not None:  # a database has no fast read-only path
            self._store  # noqa: B018 - open (and create) now, so a bad folder fails first

    @property
    def _store(self) -> SQLStore:
        """The SQL store (SQLite, or PostgreSQL for a URL), opened on first use. Private: the gallery's
        methods are its interface; tests and tools that need the store itself open one with
        :func:`attrib.storage.opening.open_store`."""
        if self._opened is None:
            from .storage.opening import open_store  # SQLAlchemy: kept off the fast read-only path

            self._opened = open_store(self._location, notify=lambda message: self.notify(message),
                                      lock_timeout=self.lock_timeout)
        return self._opened

    def _reads(self) -> GalleryReads:
        """The store when it is open, else the fast read-only path (else the store)."""
        if self._opened is None and self._reader is None:
            self._reader = FastReader.open(self.root)
        return self._opened or self._reader or self._store

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._opened is not None:
            self._opened.close()
            self._opened = None

    def __enter__(self) -> "Gallery":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- extractors -----------------------------------------------------

    def extractor_names(self) -> set[str]:
        """Names of the extractors this gallery holds vectors for (empty for a new or unreadable one)."""
        if self._opened is None and isinstance(self.root, Path) and not (self.root / "gallery.db").exists():
            return set()
        try:
            return self._reads().extractor_names()
        except (sqlite3.Error, GalleryError):
            return set()

    def extractor_keys(self) -> list[str]:
        return self._store.extractor_keys()

    def load_extractor(self, name: str | None = None, options: Sequence[str] = ()
                       ) -> BoundExtractor | list[BoundExtractor]:
        """Bind ``name`` (``a+b`` fuses several); without a name, this gallery's only extractor."""
        from .extractors.resolve import load_extractor

        return load_extractor(name, options, self.extractor_names())

    def open_index(self, extractor: BoundExtractor) -> LoadedIndex:
        """The loaded index for ``extractor``. When the whitening or calibration predates the vectors
        they are refitted, and a stale index is rebuilt, under the writer lock (and said so); a gallery
        that cannot be written searches its stored vectors instead, or refuses stale fits in one line."""
        if self._opened is None:
            try:
                reader = self._reads()
                view = load_index_view(reader, extractor.identity.key)
            except sqlite3.Error:
                view = None
            if view is not None:
                return view
        try:
            return self._repaired_view(extractor)
        except (ReadOnlyGallery, DiskFull) as exc:
            return self._read_only_view(extractor, exc)

    def _repaired_view(self, extractor: BoundExtractor) -> LoadedIndex:
        store = self._store
        view = load_index_view(store, extractor.identity.key)
        if view is not None:
            return view
        extractor_id = store.require_extractor(extractor)
        with store.lock.held():
            problems = fit_problems(store, extractor_id)
            stale_index, _ = index_problems(store, extractor_id, full=False)
            if problems or stale_index:
                done = self._bring_up_to_date(extractor_id)
                if problems:
                    self.notify(f"{problems[0]}; refitted and recalibrated it" if done.refitted
                                else f"{problems[0]}; recalibrated {len(done.recalibrated)} generator(s)")
                elif stale_index:
                    self.notify(f"{stale_index[0]} for {extractor.identity.key}; " + (
                        f"rebuilt it from {done.indexed} stored vectors" if done.indexed
                        else f"added {done.appended} stored vectors to it"))
            return open_index(store, extractor)

    def _read_only_view(self, extractor: BoundExtractor, exc: ReadOnlyGallery | DiskFull) -> LoadedIndex:
        """For a gallery this process cannot write now (:func:`attrib.upkeep.freshness.read_only_view`)."""
        self._reader = self._reader or FastReader.open(self.root)
        if self._reader is None:
            raise exc
        return read_only_view(self._reader, extractor.identity.key, exc, str(self.root), self.notify)

    # -- enrollment -----------------------------------------------------

    def enroll(
        self,
        generator: str,
        paths: Iterable[Path],
        extractor: BoundExtractor | Sequence[BoundExtractor],
        family: str | None = None,
        note: str | None = None,
        progress: Progress | None = None,
        target_far: float | None = None,
        stored_as: StoredAs | None = None,
        versions: Sequence[str] | str | None = None,
    ) -> EnrollReport:
        """Embed and store images under ``generator``, then bring the fits and the index up to date.

        Images are committed in chunks (:data:`attrib.images.BATCH` at a time), so an interrupted enroll
        keeps every chunk it committed; running it again skips those (by sha256) and stores the rest.
        Each sample's stored path is ``stored_as(image)`` (by default the file's resolved path); an image
        already enrolled under ``generator`` with a placeholder path (:func:`attrib.enrollment.placeholder`) gets this
        one instead.

        Each image is embedded by every extractor the gallery holds too (:func:`attrib.enrollment.enroll_extractors`),
        and after each coding of their delivery ladders (:meth:`ladder`), in the same transaction. Names follow
        :mod:`attrib.names`."""
        generator = validate_name(generator)
        report = EnrollReport(generator)
        store = self._store
        first, *others = enroll_extractors(store, extractor_list(extractor), str(self.root))
        rungs = self.ladder(first, versions)
        report.versions, report.extractors = list(rungs), [e.identity.key for e in (first, *others)]
        extra = others + [delivered(bound, rung) for bound in (first, *others)
                          for rung in (rungs if bound is first else self.ladder(bound, versions))]
        chunks = embedded_chunks(report, paths, first, store.owners, progress, stored_as,
                                 lambda images: relink(store, generator, images, stored_as), versions=extra)
        return self._enroll_chunks(report, chunks, first, family, note, target_far)

    def ladder(self, extractor: BoundExtractor, versions: Sequence[str] | str | None = None) -> tuple[str, ...]:
        """The delivery versions an enroll with ``extractor`` embeds (:func:`attrib.enrollment.ladder_of`)."""
        if not self.extractor_names():
            return ladder_of(None, extractor, versions)
        return ladder_of(self._store, extractor, versions)

    def enroll_embedded(self, generator: str, records: Sequence[ImageRecord], vectors: np.ndarray,
                        extractor: BoundExtractor, family: str | None = None, note: str | None = None,
                        target_far: float | None = None, chunk: int = EMBEDDED_CHUNK,
                        bring_up_to_date: bool = True) -> EnrollReport:
        """Store precomputed ``vectors`` (one per record of ``records``: path, sha256, format, size_bytes,
        width, height; see :class:`attrib.images.ImageRecord`; paths stored as given) under ``generator``,
        ``chunk`` per transaction, then bring the fits and the index up to date, as :meth:`enroll` does.
        The vectors must come from ``extractor`` (L2-normalised, of its dimension). Without
        ``bring_up_to_date`` the fits and the index are left stale (a bulk load of many generators then
        calls :meth:`calibrate` once)."""
        generator = validate_name(generator)
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != extractor.dim or len(vectors) != len(records):
            raise AttribError(f"enroll_embedded needs one {extractor.dim}-d vector per record; got "
                              f"{vectors.shape} for {len(records)} records")
        require_single(self._store, extractor, str(self.root))
        report = EnrollReport(generator)
        chunks = (Chunk(list(records[start: start + chunk]), [str(r.path) for r in records[start: start + chunk]],
                        vectors[start: start + chunk]) for start in range(0, len(records), chunk))
        report = self._enroll_chunks(report, chunks, extractor, family, note, target_far, bring_up_to_date)
        held = self._reads().delivery_versions(extractor.identity.key) if report.added else {}
        if held:
            self.notify(f"the delivery versions {', '.join(held)} of {extractor.identity.key} lack the {len(report.added)} "
                        "samples stored from vectors (queries are scored against the originals until they have them); "
                        "`attrib gallery reembed` embeds them from the files")
        return report

    def _enroll_chunks(self, report: EnrollReport, chunks: Iterable[Chunk], extractor: BoundExtractor,
                       family: str | None, note: str | None, target_far: float | None,
                       bring_up_to_date: bool = True) -> EnrollReport:
        """Commit each chunk (records, shown paths, vectors, and those of its delivery versions) in its own
        transaction under the writer lock, then bring the fits and index of the extractor and of each version
        up to date. Files another process enrolled meanwhile are reported like those enrolled before; stale
        fits are brought up to date even when nothing new is stored."""
        from .storage import bulk

        store, family = self._store, validate_name(family, "family") if family is not None else None
        versions: dict[str, BoundExtractor] = {}
        for chunk in chunks:
            with store.lock.held():
                stored = bulk.store_chunk(store, report.generator, chunk.records, chunk.vectors, extractor,
                                          family=family, note=note, versions=chunk.versions)
            versions.update((version.identity.key, version) for version, _ in chunk.versions)
            for position in stored.duplicates:
                report.skipped.append((chunk.shown[position], skip_reason(report.generator)))
            for position, owner in stored.conflicts:
                report.failed.append((chunk.shown[position],
                                      conflict_message(chunk.shown[position], owner, report.generator)))
            report.added.extend(chunk.shown[position] for position in stored.added)
        if not bring_up_to_date:
            return report
        for bound in [extractor, *versions.values()]:
            extractor_id = store.extractor_id(bound.identity.key)
            if extractor_id is None:
                continue
            with store.lock.held():
                if not report.added:
                    stale = fit_problems(store, extractor_id)
                    if not (stale or index_problems(store, extractor_id, full=False)[0]):
                        continue
                    if stale:
                        self.notify(f"{stale[0]}; recalibrating")
                self.ensure_cohort(bound, extractor_id)
                done = self._bring_up_to_date(extractor_id, target_far)
            if bound is extractor:
                report.calibration = done.message
        return report

    def _bring_up_to_date(self, extractor_id: int, target_far: float | None = None, force: bool = False
                          ) -> refit.Upkeep:
        """:func:`attrib.upkeep.refit.bring_up_to_date` with this gallery's cohort (the caller holds the writer
        lock)."""
        return refit.bring_up_to_date(self._store, extractor_id, self._store.cohort(extractor_id, cohort_version()),
                                      target_far, force)

    def remove(self, generator: str, target_far: float | None = None) -> int:
        """Remove a generator with its samples and vectors, then refit and recalibrate; return the samples
        removed."""
        store = self._store
        with store.lock.held():
            count = store.remove_generator(generator)
            for extractor_id in store.extractor_ids():
                self._bring_up_to_date(extractor_id, target_far)
        return count

    def rename(self, old: str, new: str) -> int:
        """Rename generator ``old`` (enrolled under any name) to ``new`` (following :mod:`attrib.names`), audited;
        its samples, vectors and thresholds stay. Returns its sample count."""
        from .storage.edits import rename_generator

        return rename_generator(self._store, old, validate_name(new))

    def remove_sample(self, sample: str | Path, target_far: float | None = None) -> dict[str, Any]:
        """Remove one sample (:func:`attrib.enrollment.find_sample`: by sha256 or path) with its vectors, audited,
        then refit and recalibrate as :meth:`remove` does; {generator, sha256, path, samples_left}."""
        from .storage.edits import remove_sample

        store = self._store
        with store.lock.held():
            found = find_sample(store, sample)
            left = remove_sample(store, found)
            for extractor_id in store.extractor_ids():
                self._bring_up_to_date(extractor_id, target_far)
        return {"generator": found.generator, "sha256": found.sha256, "path": found.path, "samples_left": left}

    def reembed(self, extractor: BoundExtractor, progress: Progress | None = None,
                target_far: float | None = None, versions: Sequence[str] | str | None = None) -> ReembedReport:
        """Embed every sample that lacks a vector for ``extractor``, reading it again from its path,
        then calibrate it (at ``target_far``, by default the FAR it was last calibrated at).

        Files that are missing or whose sha256 changed since enrollment are reported (``problems``) and
        left alone, as are samples uploaded without a kept copy (``uploaded``). When every sample is covered,
        vectors of other versions (or options) of the same extractor are dropped. Samples without a thumbnail
        (enrolled before galleries kept them) get one, from the images read here or else from their files
        (``thumbnails_added``; files missing or changed go to ``thumbnail_problems``, which, unlike
        ``problems``, leave the vectors complete).

        Then the same for each delivery version of :meth:`ladder` (those the gallery holds, and ``versions``):
        the samples each lacks are read again and embedded after its coding (``versions`` in the report).
        """
        key = extractor.identity.key
        report = ReembedReport(key)
        rungs = self.ladder(extractor, versions)  # before the extractor's row exists, for a new one
        extractor_id, todo, report.present = self._store.samples_to_embed(extractor)
        if progress and report.present:
            progress(report.present)
        new_vectors, made, unread = embed_again(todo, extractor, report, progress)
        store = self._store
        with store.lock.held():
            report.embedded, report.replaced = store.add_vectors(
                extractor_id, extractor.name, key, new_vectors, replace_other_versions=report.complete)
            self.ensure_cohort(extractor, extractor_id)
            self._bring_up_to_date(extractor_id, target_far, force=True)
        for old_key in report.replaced:
            self.notify(f"dropped vectors of {old_key}: every sample now has a {key} vector")
        for rung in rungs:
            version = delivered(extractor, rung)
            version_id, todo, _ = store.samples_to_embed(version)
            read = ReembedReport(version.identity.key)
            vectors, _, _ = embed_again(todo, version, read, progress)
            # a sample whose file is gone leaves the version incomplete (and unused): said, never dropped silently
            report.problems += [f"{rung} version: {p}" for p in read.problems if p not in report.problems]
            report.uploaded += [u for u in read.uploaded if u not in report.uploaded]
            with store.lock.held():
                report.versions[rung], _ = store.add_vectors(version_id, version.name, version.identity.key, vectors,
                                                             replace_other_versions=False)
                self.ensure_cohort(version, version_id)
                self._bring_up_to_date(version_id, target_far, force=bool(todo))
        report.thumbnails_added = fill_in(store, skip=unread, ready=made, problems=report.thumbnail_problems,
                                          notify=self.notify)
        return report

    # -- calibration ----------------------------------------------------

    def calibrate_extractor(self, extractor_id: int, target_far: float | None = None) -> calibration.CalibrationResult:
        """Refit the whitening on a bounded sample of the vectors, recompute thresholds and the decision model,
        and rebuild the index (with the index type for the gallery's size).

        Thresholds are set on the impostor cohort stored for the extractor (:mod:`attrib.scoring.open_set`);
        a gallery without one falls back to its own impostors. ``target_far`` defaults to the one this
        extractor was last calibrated at (else the default).
        """
        with self._store.lock.held():
            return self._refit(extractor_id, target_far)

    def _refit(self, extractor_id: int, target_far: float | None) -> calibration.CalibrationResult:
        """A forced :meth:`_bring_up_to_date`, which always refits the calibration; its result."""
        done = self._bring_up_to_date(extractor_id, target_far, force=True)
        assert done.calibration is not None, "a forced refit calibrates"
        return done.calibration

    def cohort(self, view: LoadedIndex) -> np.ndarray | None:
        """The impostor cohort (:mod:`attrib.synthetic.cohort`) as ``view``'s extractor embedded it, or None."""
        return self._reads().cohort(view.extractor_id, cohort_version())

    def ensure_cohort(self, extractor: BoundExtractor, extractor_id: int | None = None) -> None:
        """Store the impostor cohort embedded by ``extractor`` unless the gallery has it (once per extractor;
        ``extractor_id`` is its id in the gallery, looked up when not given)."""
        if extractor_id is None:
            extractor_id = self._store.require_extractor(extractor)
        store_cohort(self._store, extractor, extractor_id, cohort_version(), self.notify)

    def calibrate(self, target_far: float | None = None) -> dict[str, calibration.CalibrationResult]:
        """Recalibrate every extractor at ``target_far`` (None: each at the FAR it was last calibrated at, else
        the default); results by extractor identity key."""
        if target_far is not None and not 0 < target_far < 1:
            raise AttribError(f"--target-far must be between 0 and 1 (e.g. 0.01), got {target_far}")
        store = self._store
        rows = store.extractors()
        if not rows:
            from .errors import EmptyGallery

            raise EmptyGallery(f"gallery {self.root} is empty; nothing to calibrate")
        with store.lock.held():
            return {key: self._refit(eid, target_far) for eid, key in rows}

    def rebuild_indexes(self) -> list[str]:
        """Rebuild every FAISS index from the database; return the extractor keys."""
        with self._store.lock.held():
            for extractor_id in self._store.extractor_ids():
                refit.rebuild_index(self._store, extractor_id)
        return self._store.extractor_keys()

    def check(self, repair: bool = False) -> CheckReport:
        """Verify the gallery (:mod:`attrib.upkeep.check`); with ``repair``, migrate an earlier schema and
        rebuild what the durable vectors allow (whitening and calibration, index files, leftover files)
        under the writer lock, then verify again; the report lists what was repaired."""
        report = inspect_gallery(self.root, self._opened)
        if not (repair and report.repairable):
            return with_staleness(report, self._reads)
        store = self._store  # opening the store migrates an earlier schema
        done = ["migrated the database to the current schema"] if report.needs_migration else []
        with store.lock.held():
            done += repair_gallery(store, inspect_gallery(self.root, store), self.calibrate_extractor)
        report = inspect_gallery(self.root, store)
        report.repaired = done
        return with_staleness(report, self._reads)

    # -- identification and verification ---------------------------------

    def identify(self, paths: Iterable[ImageInput], extractor: BoundExtractor | Sequence[BoundExtractor],
                 top_k: int = 3, evidence: bool = True, c2pa_trust: str | Path | None = None,
                 trust_metadata: bool = False) -> Iterator[IdentificationResult]:
        """Yield one IdentificationResult per input path, in order (see :mod:`attrib.scoring.decision`). A
        path may also be an image decoded already ((path, LoadedImage or its error): see
        :func:`attrib.images.load_images`).

        Each result also lists what the file says about its origin (:mod:`attrib.evidence`; C2PA
        signatures checked against ``c2pa_trust``) and whether that agrees with the forensic answer;
        the evidence decides only with ``trust_metadata`` and a signature from a trusted signer.

        With several extractors the scores are fused (:mod:`attrib.scoring.fusion`): each
        generator's score is a weighted mean over extractors of (score - that extractor's global
        threshold), decided with thresholds and a decision model calibrated on fused scores.

        Each query's delivery is measured from its file, and the query is scored against the gallery's
        delivery version nearest to it (:mod:`attrib.routing`); the result says which (``delivery``).
        """
        if top_k < 1:
            raise AttribError(f"--top-k must be at least 1, got {top_k}")
        extractors = extractor_list(extractor)
        yield from self._identify(self._router(extractors), extractors, paths, top_k, evidence, c2pa_trust,
                                  trust_metadata)

    def identify_each(self, requests: Sequence[Iterable[ImageInput]],
                      extractor: BoundExtractor | Sequence[BoundExtractor], top_k: int = 3, evidence: bool = True,
                      c2pa_trust: str | Path | None = None, trust_metadata: bool = False
                      ) -> list[list[IdentificationResult]]:
        """:meth:`identify` of each of several requests (lists of paths), set up once (views, fits and decision
        models read once): each request's answers are exactly those :meth:`identify` gives it alone."""
        if top_k < 1:
            raise AttribError(f"--top-k must be at least 1, got {top_k}")
        extractors = extractor_list(extractor)
        router = self._router(extractors)
        return [list(self._identify(router, extractors, paths, top_k, evidence, c2pa_trust, trust_metadata))
                for paths in requests]

    def _router(self, extractors: list[BoundExtractor]) -> Router:
        require_fusable(self._reads(), extractors, str(self.root))
        return Router(self._reads, self.open_index, extractors, cohort_version())

    def _identify(self, router: Router, extractors: list[BoundExtractor], paths: Iterable[ImageInput], top_k: int,
                  evidence: bool, c2pa_trust: str | Path | None, trust_metadata: bool
                  ) -> Iterator[IdentificationResult]:
        reads = self._reads()
        key = "+".join(e.identity.key for e in extractors)
        names, families = router.originals[0].generator_names, router.originals[0].families
        inspect, enrolled = _inspector(evidence, c2pa_trust), list(names.values())
        if inspect:
            from .evidence.combine import apply_to_identification
        for chunk in load_batches(paths, inspect=inspect, measure=measured):
            plans = [router.plan(item) for item in chunk if isinstance(item, LoadedImage)]
            scored = router.score([_embed_chunk(bound, chunk) for bound in extractors], plans)
            position = 0
            hit_ids = [vid for s in scored for queries in s.values() for hits in queries[0].hits.values()
                       for vid, _ in hits]
            exemplars = reads.exemplars(hit_ids) if hit_ids else {}
            for item in chunk:
                if not isinstance(item, LoadedImage):
                    yield IdentificationResult(path=str(item[0]), error=item[1])
                    continue
                plan, by_version = plans[position], scored[position]
                position += 1
                ranked, model = router.ranked(plan, by_version, names, families)
                for gid, candidate in ranked[:top_k]:
                    queries = by_version[plan.version_of(gid)]
                    candidate.exemplars = [
                        {"path": exemplars[vid][0], "sha256": exemplars[vid][1], "similarity": round(sim, 6)}
                        for vid, sim in queries[0].hits.get(gid, []) if vid in exemplars]
                    if len(extractors) > 1:
                        candidate.per_extractor = {e.identity.key: q.scores[gid]
                                                   for e, q in zip(extractors, queries) if gid in q.scores}
                candidates = [c for _, c in ranked]
                result = IdentificationResult(path=str(item.path), sha256=item.sha256, candidates=candidates[:top_k],
                                              flags=router.flags(reads, item, plan.rung, extractors[0].name),
                                              extractor=key, delivery=router.delivery_json(item, plan, names),
                                              **decide(candidates, model))
                yield apply_to_identification(result, item.evidence, enrolled, trust_metadata) if inspect else result

    def verify(self, generator: str, paths: Iterable[ImageInput], extractor: BoundExtractor, evidence: bool = True,
               c2pa_trust: str | Path | None = None) -> Iterator[Verification]:
        """Yield one Verification per input path: is it from ``generator``? With what the file says
        (see :meth:`identify`, also for paths that are decoded images), which never changes the match."""
        router = Router(self._reads, self.open_index, [extractor], cohort_version())
        view = router.originals[0]
        by_name = {name: gid for gid, name in view.generator_names.items()}
        if generator not in by_name:
            known = ", ".join(sorted(by_name)) or "none"
            raise UnknownGenerator(
                f"generator {generator!r} is not enrolled (enrolled: {known}); see `attrib gallery list`")
        gid = by_name[generator]
        if len(view.generator_vectors(gid)) == 0:
            raise UnknownGenerator(
                f"generator {generator!r} has no samples embedded with {extractor.identity.key}; run "
                f"`attrib gallery reembed --extractor {extractor.name}`"
            )
        inspect = _inspector(evidence, c2pa_trust)
        if inspect:
            from .evidence.combine import apply_to_verification
        for chunk in load_batches(paths, inspect=inspect, measure=measured):
            vectors = iter(_embed_chunk(extractor, chunk))
            for item in chunk:
                if not isinstance(item, LoadedImage):
                    yield Verification(path=str(item[0]), generator=generator, error=item[1])
                    continue
                plan = router.plan(item)
                rung = plan.version_of(gid)
                version, model = router.views(rung)[0], router.decider(rung).model
                threshold = version.threshold(gid)
                own = version.generator_vectors(gid)
                score = calibration.aggregate(own @ version.whitening.apply(next(vectors)[None])[0])
                result = Verification(
                    path=str(item.path),
                    generator=generator,
                    sha256=item.sha256,
                    score=round(score, 6),
                    threshold=round(threshold, 6),
                    match=bool(score >= threshold),
                    confidence=model.p_known(score - threshold, gid),
                    extractor=extractor.identity.key,
                    delivery=router.delivery_json(item, plan, view.generator_names),
                )
                yield apply_to_verification(result, item.evidence, by_name) if inspect else result

    # -- listing --------------------------------------------------------

    def generators(self) -> list[GeneratorInfo]:
        return [GeneratorInfo(**row) for row in self._store.generator_rows()]

    def generator_names(self) -> dict[int, str]:
        return self._reads().generator_names()

    def generator_detail(self, name: str) -> dict[str, Any]:
        return self._store.generator_detail(name)

    def audit_log(self, limit: int | None = None, action: str | None = None) -> list[dict[str, Any]]:
        return self._store.audit_log(limit, action)

    def held_out_scores(self, name: str) -> tuple[dict[str, float], float | None, str | None]:
        """Each sample of generator ``name`` scored as identify scores a query, against the rest of its
        generator, under the gallery's first extractor (:func:`attrib.upkeep.freshness.held_out_scores`)."""
        keys = self.extractor_keys()
        return held_out_scores(self._reads(), keys[0], name) if keys else ({}, None, None)

    def thumbnails(self, sha256s: Iterable[str]) -> dict[str, bytes]:
        """The stored previews (WebP bytes, at most 128 px on the long side) of the enrolled samples with
        these sha256s; samples without one, and sha256s not enrolled, are absent."""
        reads = self._reads()
        if isinstance(reads, FastReader):
            return reads.thumbnails(list(sha256s))
        from .storage import thumbnails

        return thumbnails.by_sha256(self._store, sha256s)

    def generator_samples(self, name: str) -> list[dict[str, Any]]:
        """The samples of generator ``name`` in enrollment order, each ``{"sha256", "path", "thumbnail"}``
        (WebP bytes, or None where the gallery has none: see ``attrib gallery reembed``)."""
        from .storage import thumbnails

        return thumbnails.of_generator(self._store, name)


def _inspector(evidence: bool, c2pa_trust: str | Path | None) -> Inspect | None:
    """The per-file evidence reader for :func:`attrib.images.load_batches` (None: evidence not read)."""
    if not evidence:
        return None
    from .evidence.read import file_inspector

    return file_inspector(c2pa_trust)


def cohort_version() -> str:
    from .synthetic.cohort import COHORT_VERSION

    return COHORT_VERSION


def _embed_chunk(extractor: BoundExtractor, chunk: list[LoadedImage | tuple[Path, str]]) -> np.ndarray:
    images = [item.require_pixels() for item in chunk if isinstance(item, LoadedImage)]
    return extractor.embed(images) if images else np.zeros((0, extractor.dim), np.float32)


def open_gallery(location: str | Path, notify: Callable[[str], None] | None = None,
                 read_only: bool = False) -> Gallery:
    """Open (creating when not ``read_only``) the gallery at ``location``: a folder, or a PostgreSQL URL
    (``postgresql://USER@HOST/DATABASE``) whose database every machine shares."""
    if not str(location).strip():
        raise GalleryError("the gallery path is empty; give a folder or a postgresql:// URL "
                           "(--gallery DIR or ATTRIB_GALLERY)")
    return Gallery(location, notify=notify, read_only=read_only)
