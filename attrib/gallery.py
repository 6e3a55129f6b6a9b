"""The gallery: enrolled generators, their samples and vectors, indexes and calibration.

A gallery is a folder holding ``gallery.db`` (SQLite, the durable truth) and
``index/`` (FAISS files, a cache rebuilt from the database whenever they
disagree). See gallery/README.md in the repository for the format.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from . import db, index as faiss_index, scoring
from .backend import Backend, fit_backend, held_out_score_matrix
from .errors import (
    AttribError,
    EmptyGallery,
    EnrollmentConflict,
    ExtractorMismatch,
    GalleryError,
    UnknownGenerator,
)
from .extractor import BoundExtractor
from .images import BATCH, LoadedImage, load_images
from .view import IndexView, index_path, read_view

Progress = Callable[[int], None]


@dataclass
class EnrollReport:
    generator: str
    added: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    calibration: str = ""


@dataclass
class GeneratorInfo:
    name: str
    family: str | None
    note: str | None
    samples: int
    threshold: float | None
    threshold_method: str | None
    created_at: str


class Gallery:
    """Open (creating if needed) the gallery folder ``root``."""

    def __init__(self, root: str | Path, notify: Callable[[str], None] | None = None):
        self.root = Path(root).expanduser()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise GalleryError(f"cannot create gallery folder {self.root}: {exc.strerror or exc}") from None
        if not self.root.is_dir():
            raise GalleryError(f"gallery path {self.root} is not a folder")
        self.notify = notify or (lambda message: None)
        self.engine = db.open_database(self.root / "gallery.db")
        self.Session = sessionmaker(self.engine, expire_on_commit=False)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> "Gallery":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- extractors -----------------------------------------------------

    def index_path(self, extractor_id: int) -> Path:
        return index_path(self.root, extractor_id)

    def extractor_row(
        self, session: Session, extractor: BoundExtractor, create: bool, allow_other_versions: bool = False
    ) -> db.ExtractorRow | None:
        """The row for ``extractor``'s identity (created if asked).

        Refuses, naming the re-embed command, when the gallery holds vectors of
        another version or option set of the same extractor, unless
        ``allow_other_versions`` (as re-embedding does).
        """
        key = extractor.identity.key
        row = session.scalar(select(db.ExtractorRow).where(db.ExtractorRow.key == key))
        if row is not None:
            if row.dim != extractor.dim:
                raise ExtractorMismatch(
                    f"gallery stores {key} vectors of dim {row.dim} but the extractor now gives dim "
                    f"{extractor.dim}; bump the extractor's version"
                )
            return row
        others = session.execute(
            select(db.ExtractorRow.key, func.count(db.Vector.id))
            .join(db.Vector, db.Vector.extractor_id == db.ExtractorRow.id)
            .where(db.ExtractorRow.name == extractor.name)
            .group_by(db.ExtractorRow.key)
        ).all()
        if others and not allow_other_versions:
            stored = ", ".join(f"{k} ({n} vectors)" for k, n in others)
            raise ExtractorMismatch(
                f"gallery holds vectors from {stored}, not from {key}; vectors of different versions or "
                f"options are never mixed: run `attrib gallery reembed --extractor {extractor.name}` "
                f"(with the same --option values) to embed the stored samples with {key}"
            )
        if not create:
            return None
        row = db.ExtractorRow(
            key=key,
            name=extractor.name,
            version=extractor.version,
            options_json=json.dumps(extractor.identity.options, sort_keys=True),
            dim=extractor.dim,
        )
        session.add(row)
        session.flush()
        return row

    def extractor_keys(self) -> list[str]:
        with self.Session() as session:
            return list(session.scalars(select(db.ExtractorRow.key).order_by(db.ExtractorRow.id)))

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
        with self.Session() as session:
            existing = dict(
                session.execute(
                    select(db.Sample.sha256, db.Generator.name).join(db.Generator)
                ).all()
            )
        pending: list[LoadedImage] = []
        vectors: list[np.ndarray] = []
        seen: set[str] = set()

        def flush() -> None:
            if pending:
                vectors.append(extractor.embed([image.pixels for image in pending]))
                kept.extend(pending)
                pending.clear()

        kept: list[LoadedImage] = []
        for path, image in load_images(paths):
            if not isinstance(image, LoadedImage):
                report.failed.append((str(path), str(image)))
                if progress:
                    progress(1)
                continue
            owner = existing.get(image.sha256)
            if owner == generator or image.sha256 in seen:
                report.skipped.append((str(path), f"already enrolled under {generator!r}"))
            elif owner is not None:
                report.failed.append(
                    (
                        str(path),
                        str(
                            EnrollmentConflict(
                                f"{path}: already enrolled under generator {owner!r}, refused for {generator!r}; "
                                f"remove it from {owner!r} first if it was mislabelled"
                            )
                        ),
                    )
                )
            else:
                seen.add(image.sha256)
                pending.append(image)
                if len(pending) >= BATCH:
                    flush()
            if progress:
                progress(1)
        flush()
        if not kept:
            return report
        matrix = np.concatenate(vectors)
        with self.Session.begin() as session:
            row = self.extractor_row(session, extractor, create=True)
            gen = session.scalar(select(db.Generator).where(db.Generator.name == generator))
            if gen is None:
                gen = db.Generator(name=generator, family=family, note=note)
                session.add(gen)
            else:
                gen.family = family or gen.family
                gen.note = note or gen.note
            session.flush()
            for image, vector in zip(kept, matrix):
                sample = db.Sample(
                    generator_id=gen.id,
                    sha256=image.sha256,
                    path=str(image.path.resolve()),
                    size_bytes=image.size_bytes,
                    format=image.format,
                    width=image.width,
                    height=image.height,
                )
                session.add(sample)
                session.flush()
                session.add(db.Vector(sample_id=sample.id, extractor_id=row.id, data=vector.tobytes()))
                report.added.append(str(image.path))
            session.add(
                db.Audit(
                    action="enroll",
                    detail=json.dumps(
                        {"generator": generator, "added": len(kept), "extractor": extractor.identity.key}
                    ),
                )
            )
            extractor_id = row.id
        report.calibration = self.calibrate_extractor(extractor_id, target_far).message
        return report

    def remove(self, generator: str, target_far: float | None = None) -> int:
        """Remove a generator with its samples and vectors; return the number of samples removed."""
        with self.Session.begin() as session:
            gen = self._generator(session, generator)
            count = len(gen.samples)
            session.delete(gen)
            session.add(db.Audit(action="remove", detail=json.dumps({"generator": generator, "samples": count})))
        for extractor_id in self.extractor_ids():
            self.calibrate_extractor(extractor_id, target_far)
        return count

    def _generator(self, session: Session, name: str) -> db.Generator:
        gen = session.scalar(select(db.Generator).where(db.Generator.name == name))
        if gen is None:
            known = ", ".join(session.scalars(select(db.Generator.name).order_by(db.Generator.name))) or "none"
            raise UnknownGenerator(f"generator {name!r} is not enrolled (enrolled: {known}); see `attrib gallery list`")
        return gen

    def extractor_ids(self) -> list[int]:
        with self.Session() as session:
            return list(session.scalars(select(db.ExtractorRow.id)))

    # -- durable vectors and the index cache ----------------------------

    def durable_vectors(self, extractor_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(vector ids, generator ids, float32 matrix) for one extractor, ordered by vector id."""
        with self.Session() as session:
            row = session.get(db.ExtractorRow, extractor_id)
            rows = session.execute(
                select(db.Vector.id, db.Sample.generator_id, db.Vector.data)
                .join(db.Sample, db.Sample.id == db.Vector.sample_id)
                .where(db.Vector.extractor_id == extractor_id)
                .order_by(db.Vector.id)
            ).all()
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        gens = np.array([r[1] for r in rows], dtype=np.int64)
        matrix = (
            np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float32).reshape(len(rows), row.dim)
            if rows
            else np.zeros((0, row.dim), dtype=np.float32)
        )
        return ids, gens, matrix

    def _db_state(self, session: Session, row: db.ExtractorRow) -> tuple[faiss_index.IndexState, Backend]:
        """What the index for ``row`` must reflect: its vectors (count, ids) and the fitted backend."""
        count, max_id, id_sum = session.execute(
            select(func.count(db.Vector.id), func.max(db.Vector.id), func.sum(db.Vector.id)).where(
                db.Vector.extractor_id == row.id
            )
        ).one()
        stored = session.get(db.BackendRow, row.id)
        backend = Backend.from_bytes(stored.params if stored else None)
        state = faiss_index.IndexState(
            int(count), int(max_id or 0), int(id_sum or 0), backend.out_dim(row.dim), backend=backend.digest
        )
        return state, backend

    def sync_index(self, extractor_id: int, force: bool = False) -> bool:
        """Rebuild the index file from durable vectors if it is missing or stale; True if rebuilt."""
        with self.Session() as session:
            row = session.get(db.ExtractorRow, extractor_id)
            state, backend = self._db_state(session, row)
        path = self.index_path(extractor_id)
        loaded = None if force else faiss_index.read_index(path)
        if loaded is not None and loaded[1].matches(state):
            return False
        ids, gens, matrix = self.durable_vectors(extractor_id)
        built = faiss_index.build_index(ids, backend.apply(matrix), state.dim)
        state.key = faiss_index.choose_index_key(len(ids), state.dim)
        faiss_index.write_index(built, path, state)
        np.save(path.with_suffix(".labels.npy"), np.stack([ids, gens]) if len(ids) else np.zeros((2, 0), np.int64))
        return True

    def open_index(self, extractor: BoundExtractor) -> IndexView:
        """Load the index for ``extractor``, rebuilding it (and saying so) if it disagrees with the database."""
        key = extractor.identity.key
        view = read_view(self.root, key)
        if view is not None:
            return view
        with self.Session() as session:
            row = self.extractor_row(session, extractor, create=False)
            if row is None:
                if session.scalar(select(func.count(db.Generator.id))):
                    raise ExtractorMismatch(
                        f"no enrolled sample has been embedded with {key} "
                        f"(gallery extractors: {', '.join(self.extractor_keys()) or 'none'}); run "
                        f"`attrib gallery reembed --extractor {extractor.name}` or pick another --extractor"
                    )
                raise EmptyGallery(
                    f"gallery {self.root} has no enrolled generators; enroll some with "
                    "`attrib enroll --generator NAME IMAGES...`"
                )
            state, _ = self._db_state(session, row)
        if state.count == 0:
            raise EmptyGallery(
                f"gallery {self.root} has no samples for {key}; enroll some with "
                "`attrib enroll --generator NAME IMAGES...`"
            )
        why = "missing" if faiss_index.read_index(self.index_path(row.id)) is None else "out of date with the database"
        self.notify(f"index for {key} was {why}; rebuilt it from {state.count} stored vectors")
        self.sync_index(row.id, force=True)
        view = read_view(self.root, key)
        if view is None:
            raise GalleryError(f"index for {key} could not be rebuilt; check that {self.root} is writable")
        view.rebuilt = True
        return view

    # -- calibration ----------------------------------------------------

    def calibrate_extractor(self, extractor_id: int, target_far: float | None = None) -> scoring.CalibrationResult:
        """Refit the scoring backend, recompute thresholds, and bring the index up to date.

        ``target_far`` defaults to the one this extractor was last calibrated at (else 0.01).
        """
        _, gens, matrix = self.durable_vectors(extractor_id)
        backend = fit_backend(matrix, gens)
        with self.Session.begin() as session:
            if target_far is None:
                previous = session.scalar(
                    select(db.Calibration.target_far).where(db.Calibration.extractor_id == extractor_id).limit(1)
                )
                target_far = previous if previous is not None else scoring.DEFAULT_TARGET_FAR
            session.merge(
                db.BackendRow(extractor_id=extractor_id, kind=backend.kind, params=backend.to_bytes(), n_fitted=len(gens))
            )
        result = scoring.calibrate(matrix, gens, target_far=target_far, score_matrix=held_out_score_matrix(backend))
        with self.Session.begin() as session:
            session.execute(delete(db.Calibration).where(db.Calibration.extractor_id == extractor_id))
            for t in result.thresholds:
                separation = result.separation if t.generator_id is None else None
                session.add(
                    db.Calibration(
                        extractor_id=extractor_id,
                        generator_id=t.generator_id,
                        threshold=t.threshold,
                        method=t.method,
                        target_far=target_far,
                        n_genuine=t.n_genuine,
                        n_impostor=t.n_impostor,
                        tar=t.tar,
                        separation=separation,
                    )
                )
            key = session.get(db.ExtractorRow, extractor_id).key
            detail = {"extractor": key, "extractor_id": extractor_id, "target_far": target_far, "message": result.message}
            session.add(db.Audit(action="calibrate", detail=json.dumps(detail)))
        self.sync_index(extractor_id)
        return result

    def calibrate(self, target_far: float = 0.01) -> dict[str, scoring.CalibrationResult]:
        with self.Session() as session:
            rows = list(session.execute(select(db.ExtractorRow.id, db.ExtractorRow.key)).all())
        if not rows:
            raise EmptyGallery(f"gallery {self.root} is empty; nothing to calibrate")
        return {key: self.calibrate_extractor(eid, target_far) for eid, key in rows}

    # -- listing --------------------------------------------------------

    def generators(self) -> list[GeneratorInfo]:
        with self.Session() as session:
            rows = session.execute(
                select(db.Generator, func.count(db.Sample.id))
                .outerjoin(db.Sample)
                .group_by(db.Generator.id)
                .order_by(db.Generator.name)
            ).all()
            cal = {
                c.generator_id: c
                for c in session.scalars(select(db.Calibration).order_by(db.Calibration.extractor_id.desc()))
            }
        out = []
        for gen, count in rows:
            c = cal.get(gen.id)
            out.append(
                GeneratorInfo(
                    gen.name,
                    gen.family,
                    gen.note,
                    int(count),
                    c.threshold if c else None,
                    c.method if c else None,
                    gen.created_at.isoformat(timespec="seconds"),
                )
            )
        return out

    def generator_detail(self, name: str) -> dict:
        with self.Session() as session:
            gen = self._generator(session, name)
            samples = [
                {
                    "id": s.id,
                    "sha256": s.sha256,
                    "path": s.path,
                    "format": s.format,
                    "width": s.width,
                    "height": s.height,
                    "size_bytes": s.size_bytes,
                    "enrolled_at": s.created_at.isoformat(timespec="seconds"),
                }
                for s in gen.samples
            ]
            calibration = [
                {
                    "extractor": session.get(db.ExtractorRow, c.extractor_id).key,
                    "threshold": c.threshold,
                    "method": c.method,
                    "target_far": c.target_far,
                    "n_genuine": c.n_genuine,
                    "n_impostor": c.n_impostor,
                    "tar": c.tar,
                }
                for c in session.scalars(select(db.Calibration).where(db.Calibration.generator_id == gen.id))
            ]
            return {
                "name": gen.name,
                "family": gen.family,
                "note": gen.note,
                "created_at": gen.created_at.isoformat(timespec="seconds"),
                "samples": samples,
                "calibration": calibration,
            }

    def audit_log(self, limit: int | None = None, action: str | None = None) -> list[dict]:
        """The gallery's audit trail, oldest first: the last ``limit`` entries (all when None),
        optionally of one ``action`` (enroll, remove, calibrate, reembed)."""
        query = select(db.Audit).order_by(db.Audit.id.desc())
        if action:
            query = query.where(db.Audit.action == action)
        if limit is not None:
            query = query.limit(limit)
        with self.Session() as session:
            rows = list(session.scalars(query))
        return [
            {"id": r.id, "at": r.at.isoformat(timespec="seconds") + "Z", "action": r.action, "detail": json.loads(r.detail)}
            for r in reversed(rows)
        ]


def validate_name(name: str) -> str:
    cleaned = name.strip()
    if not cleaned or len(cleaned) > 200 or any(ch in cleaned for ch in "\n\r\t+"):
        raise AttribError(
            f"generator name {name!r} is not usable: use 1-200 characters without '+', tabs or newlines"
        )
    return cleaned

