"""The SQL store: the SQLAlchemy 2.x implementation of the storage interface, shared by a gallery folder
(:class:`attrib.storage.sqlite.SQLiteStore`) and a PostgreSQL gallery
(:class:`attrib.storage.postgres.PostgresStore`), sibling subclasses that say where the database, the
writer lock and the index files are.

Every write holds the writer lock and runs in one transaction; :meth:`SQLStore.writing`
blocks nest, so a caller can make several steps (store samples, refit, recalibrate) one
transaction that is committed whole or not at all. Storage faults become one-line errors
(:mod:`.faults`).
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import numpy as np
from sqlalchemy import case, delete, func, orm, select
from sqlalchemy.engine import Engine

from ..errors import EmptyGallery, ExtractorMismatch
from ..index import choice, files
from ..index.whitening import Whitening
from . import models as db
from .bulk import StoredSamples, store_chunk
from .interface import (CalibrationRecord, CalibrationState, OwnDelivery, most_common_delivery, stack_rows,
                        state_of)
from .listing import ListingMixin
from .locking import WriterLock

if TYPE_CHECKING:
    from ..extractors.contract import BoundExtractor
    from ..images import ImageRecord, LoadedImage


class SQLStore(ListingMixin):
    """The gallery's durable state through SQLAlchemy, shared by both backends: a subclass opens it
    (:class:`attrib.storage.sqlite.SQLiteStore`, :class:`attrib.storage.postgres.PostgresStore`), setting
    ``root`` (the folder of the index files), ``name`` (how messages name the gallery), ``notify``, ``lock``
    (the writer lock), ``engine`` and ``Session``, and says how storage faults read
    (:meth:`storage_faults`); ``_session`` (the open transaction or snapshot every method then uses) and
    ``_read_only`` start as None and False."""

    root: Path
    name: str
    notify: Callable[[str], None]
    lock: WriterLock[Any]
    engine: Engine
    Session: orm.sessionmaker[orm.Session]  # named like the class it makes
    dialect: str
    _session: orm.Session | None
    _read_only: bool

    def close(self) -> None:
        self.engine.dispose()

    def storage_faults(self, doing: str) -> AbstractContextManager[None]:
        """A context that turns storage faults met while ``doing`` something into one-line errors."""
        raise NotImplementedError

    @contextmanager
    def reading(self) -> Iterator[orm.Session]:
        """A session that reads one snapshot (the open transaction's, inside :meth:`writing`)."""
        if self._session is not None:
            yield self._session
            return
        with self.storage_faults("reading the gallery"), self.Session() as session:
            yield session

    @contextmanager
    def writing(self) -> Iterator[orm.Session]:
        """One transaction under the writer lock: committed when the outermost block ends, rolled back
        (with everything nested in it) on any error."""
        if self._session is not None:
            if self._read_only:
                raise RuntimeError("a write inside SQLStore.snapshot()")
            yield self._session
            return
        with self.lock.held(), self.storage_faults("writing to the gallery database (nothing was changed)"):
            with self.Session.begin() as session:
                self._session = session
                try:
                    yield session
                finally:
                    self._session = None

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads inside the block share one session, so they see one state of the database."""
        if self._session is not None:
            yield
            return
        with self.reading() as session:
            self._session, self._read_only = session, True
            try:
                yield
            finally:
                self._session, self._read_only = None, False

    @property
    def in_transaction(self) -> bool:
        return self._session is not None and not self._read_only

    # -- extractors -----------------------------------------------------

    def extractor_row(self, session: orm.Session, extractor: BoundExtractor, create: bool,
                      allow_other_versions: bool = False) -> db.ExtractorRow | None:
        """The row for ``extractor``'s identity (a bound extractor; created if asked).

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
        delivery = extractor.identity.delivery
        others = session.execute(
            select(db.ExtractorRow.key, func.count(db.Vector.id))
            .join(db.Vector, db.Vector.extractor_id == db.ExtractorRow.id)
            .where(db.ExtractorRow.name == extractor.name,
                   db.ExtractorRow.delivery.is_(None) if delivery is None else db.ExtractorRow.delivery == delivery)
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
            delivery=delivery,
        )
        session.add(row)
        session.flush()
        return row

    def extractor_id(self, key: str) -> int | None:
        with self.reading() as session:
            return session.scalar(select(db.ExtractorRow.id).where(db.ExtractorRow.key == key))

    def extractor_keys(self) -> list[str]:
        with self.reading() as session:
            return list(session.scalars(select(db.ExtractorRow.key).order_by(db.ExtractorRow.id)))

    def extractor_ids(self) -> list[int]:
        with self.reading() as session:
            return list(session.scalars(select(db.ExtractorRow.id)))

    def extractor_names(self) -> set[str]:
        with self.reading() as session:
            return set(session.scalars(select(db.ExtractorRow.name)))

    def extractors(self) -> list[tuple[int, str]]:
        """(id, identity key) of every extractor, in the order they were added."""
        with self.reading() as session:
            return [(r.id, r.key) for r in session.execute(select(db.ExtractorRow.id, db.ExtractorRow.key)).all()]

    def delivery_versions(self, key: str) -> dict[str, tuple[str, int]]:
        """The delivery versions of extractor ``key``: {rung: (identity key, vectors stored)}."""
        with self.reading() as session:
            rows = session.execute(
                select(db.ExtractorRow.delivery, db.ExtractorRow.key, func.count(db.Vector.id))
                .outerjoin(db.Vector, db.Vector.extractor_id == db.ExtractorRow.id)
                .where(db.ExtractorRow.key.startswith(key + "|", autoescape=True), db.ExtractorRow.delivery.is_not(None))
                .group_by(db.ExtractorRow.id, db.ExtractorRow.delivery, db.ExtractorRow.key)).all()
        return {rung: (version_key, int(count)) for rung, version_key, count in rows if rung is not None}

    def vector_count(self, extractor_id: int) -> int:
        with self.reading() as session:
            return int(session.scalar(select(func.count(db.Vector.id)).where(db.Vector.extractor_id == extractor_id))
                       or 0)

    def extractor_key(self, extractor_id: int) -> str:
        with self.reading() as session:
            return db.stored_extractor(session, extractor_id).key

    # -- generators and samples -----------------------------------------

    def generator_names(self) -> dict[int, str]:
        with self.reading() as session:
            return dict(session.execute(select(db.Generator.id, db.Generator.name)).all())

    def generator_deliveries(self) -> dict[int, OwnDelivery]:
        """Per generator: the coding most of its enrolled files showed (``jpeg:75``, ``lossless``; samples
        enrolled before it was measured count as lossless), and the long sides of its files."""
        side = case((db.Sample.width > db.Sample.height, db.Sample.width), else_=db.Sample.height)
        with self.reading() as session:
            rows = session.execute(select(db.Sample.generator_id, db.Sample.delivery, side, func.count(db.Sample.id))
                                   .group_by(db.Sample.generator_id, db.Sample.delivery, side)).all()
        return most_common_delivery(rows)

    def generator_families(self) -> dict[int, str | None]:
        with self.reading() as session:
            return dict(session.execute(select(db.Generator.id, db.Generator.family)).all())

    def owners(self, sha256s: Sequence[str] | None = None) -> dict[str, str]:
        """The generator name every enrolled sha256 (of ``sha256s`` when given) belongs to."""
        query = select(db.Sample.sha256, db.Generator.name).join(db.Generator)
        with self.reading() as session:
            if sha256s is None:
                return dict(session.execute(query).all())
            found: dict[str, str] = {}
            for start in range(0, len(sha256s), db.IN_CHUNK):
                chunk = list(sha256s[start: start + db.IN_CHUNK])
                found.update(session.execute(query.where(db.Sample.sha256.in_(chunk))).all())
            return found

    def add_samples(self, generator: str, images: Sequence[LoadedImage | ImageRecord], matrix: np.ndarray,
                    extractor: BoundExtractor, family: str | None = None, note: str | None = None) -> StoredSamples:
        """Store decoded ``images`` (path, sha256, size, format, width, height) and their vectors under
        ``generator`` in one transaction (:func:`attrib.storage.bulk.store_chunk`, with each path resolved).
        Who owns each sha256 is checked again inside it, so files another process enrolled meanwhile are
        reported, never stored twice."""
        records = [image.record() if hasattr(image, "record") else image for image in images]
        return store_chunk(self, generator, records, matrix, extractor, family=family, note=note)

    def remove_generator(self, generator: str) -> int:
        """Remove a generator with its samples and vectors; return the number of samples removed."""
        with self.writing() as session:
            gen = db.named_generator(session, generator)
            count = len(gen.samples)
            session.delete(gen)
            session.add(db.Audit(action="remove", detail=json.dumps({"generator": generator, "samples": count})))
        return count

    def samples_to_embed(self, extractor: BoundExtractor) -> tuple[int, list[tuple[int, str, str, str]], int]:
        """For re-embedding with ``extractor``: (its id, [(sample id, path, sha256, generator)] lacking a
        vector, how many already have one)."""
        with self.writing() as session:
            row = self.extractor_row(session, extractor, create=True, allow_other_versions=True)
            assert row is not None  # created when missing
            extractor_id = row.id
            done = set(session.scalars(select(db.Vector.sample_id).where(db.Vector.extractor_id == extractor_id)))
            samples = session.execute(
                select(db.Sample.id, db.Sample.path, db.Sample.sha256, db.Generator.name).join(db.Generator)
            ).all()
        todo = [(s.id, s.path, s.sha256, s.name) for s in samples if s.id not in done]
        return extractor_id, todo, len(samples) - len(todo)

    def add_vectors(self, extractor_id: int, name: str, key: str, vectors: list[tuple[int, np.ndarray]],
                    replace_other_versions: bool) -> tuple[int, list[str]]:
        """Store re-embedded vectors of samples that still exist and still lack one (another process may
        have removed them or embedded them meanwhile); with ``replace_other_versions`` drop the vectors of
        other versions (or options) of extractor ``name``, with their delivery versions. Returns how many were stored and the identity
        keys dropped."""
        replaced = []
        base = key.partition("|")[0]
        with self.writing() as session:
            present = set(session.scalars(select(db.Sample.id)))
            present -= set(session.scalars(select(db.Vector.sample_id).where(db.Vector.extractor_id == extractor_id)))
            vectors = [(sample_id, vector) for sample_id, vector in vectors if sample_id in present]
            for sample_id, vector in vectors:
                session.add(db.Vector(sample_id=sample_id, extractor_id=extractor_id, data=vector.tobytes()))
            if replace_other_versions:
                stale = session.scalars(
                    select(db.ExtractorRow).where(db.ExtractorRow.name == name, db.ExtractorRow.id != extractor_id)
                ).all()
                for old in stale:
                    if old.key.partition("|")[0] == base:  # a delivery version of this extractor: kept
                        continue
                    replaced.append(old.key)
                    session.execute(delete(db.Vector).where(db.Vector.extractor_id == old.id))
                    session.delete(old)
            session.add(db.Audit(action="reembed", detail=json.dumps({"extractor": key, "embedded": len(vectors)})))
        return len(vectors), replaced

    # -- durable vectors and the index cache ----------------------------

    def vectors(self, extractor_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(vector ids, generator ids, float32 matrix) for one extractor, ordered by vector id."""
        with self.reading() as session:
            dim = db.stored_extractor(session, extractor_id).dim
            rows = session.execute(
                select(db.Vector.id, db.Sample.generator_id, db.Vector.data)
                .join(db.Sample, db.Sample.id == db.Vector.sample_id)
                .where(db.Vector.extractor_id == extractor_id)
                .order_by(db.Vector.id)
            ).all()
        return stack_rows(rows, dim)

    def labels(self, extractor_id: int) -> tuple[np.ndarray, np.ndarray]:
        with self.reading() as session:
            rows = session.execute(
                select(db.Vector.id, db.Sample.generator_id).join(db.Sample, db.Sample.id == db.Vector.sample_id)
                .where(db.Vector.extractor_id == extractor_id).order_by(db.Vector.id)
            ).all()
        return np.array([r[0] for r in rows], dtype=np.int64), np.array([r[1] for r in rows], dtype=np.int64)

    def added_since(self, extractor_id: int, after_id: int) -> dict[int, int]:
        with self.reading() as session:
            rows = session.execute(
                select(db.Sample.generator_id, func.count(db.Vector.id))
                .join(db.Sample, db.Sample.id == db.Vector.sample_id)
                .where(db.Vector.extractor_id == extractor_id, db.Vector.id > int(after_id))
                .group_by(db.Sample.generator_id)).all()
        return {int(generator): int(count) for generator, count in rows}

    def revision(self, extractor_id: int) -> int:
        with self.reading() as session:
            revision = session.scalar(select(db.ExtractorRow.revision).where(db.ExtractorRow.id == extractor_id))
        if revision is None:
            raise KeyError(f"no extractor with id {extractor_id}")
        return int(revision)

    def fit_revisions(self, extractor_id: int) -> tuple[int | None, int | None]:
        with self.reading() as session:
            whitening = session.scalar(select(db.WhiteningRow.revision)
                                       .where(db.WhiteningRow.extractor_id == extractor_id))
            revisions = db.Calibration.revision
            calibrated = session.execute(
                select(func.count(db.Calibration.id), func.min(revisions), func.max(revisions))
                .where(db.Calibration.extractor_id == extractor_id)).one()
        count, low, high = calibrated
        return whitening, (low if count and low == high else None)

    def sample_ids(self, extractor_id: int) -> np.ndarray:
        with self.reading() as session:
            ids = session.scalars(select(db.Vector.sample_id).where(db.Vector.extractor_id == extractor_id)
                                  .order_by(db.Vector.sample_id))
            return np.array(list(ids), dtype=np.int64)

    def vectors_of_samples(self, extractor_id: int, sample_ids: np.ndarray | None = None
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        query = (select(db.Vector.sample_id, db.Sample.generator_id, db.Vector.data)
                 .join(db.Sample, db.Sample.id == db.Vector.sample_id)
                 .where(db.Vector.extractor_id == extractor_id).order_by(db.Vector.sample_id))
        if sample_ids is not None:
            query = query.where(db.Vector.sample_id.in_([int(i) for i in sample_ids]))
        with self.reading() as session:
            dim = db.stored_extractor(session, extractor_id).dim
            rows = session.execute(query).all()
        return stack_rows(rows, dim)

    def whitening(self, extractor_id: int) -> Whitening:
        with self.reading() as session:
            stored = session.get(db.WhiteningRow, extractor_id)
            return Whitening.from_bytes(stored.params if stored else None)

    def save_whitening(self, extractor_id: int, whitening: Whitening, n_fitted: int, revision: int) -> None:
        with self.writing() as session:
            session.merge(db.WhiteningRow(extractor_id=extractor_id, kind=whitening.kind,
                                          params=whitening.to_bytes(), n_fitted=n_fitted, revision=revision))

    def index_state(self, extractor_id: int) -> files.IndexState:
        with self.reading() as session:
            dim = db.stored_extractor(session, extractor_id).dim
            ids, gens = self.labels(extractor_id)
            return state_of(ids, gens, dim, self.whitening(extractor_id))

    def write_index(self, extractor_id: int, force: bool = False) -> bool:
        """Under the writer lock, rebuild the index generation from durable vectors if it is missing or
        stale (always with ``force``); True if rebuilt."""
        with self.lock.held(), self.storage_faults("writing the index files (the database is up to date; "
                                                     "the index is rebuilt from it)"):
            state = self.index_state(extractor_id)
            cached = None if force else files.read_cache(files.index_path(self.root, extractor_id))
            if cached is not None and cached.state.matches(state):
                return False
            ids, gens, matrix = self.vectors(extractor_id)
            built = choice.build_index(ids, self.whitening(extractor_id).apply(matrix), state.dim)
            state.key = choice.choose_index_key(len(ids), state.dim)
            state.revision = self.revision(extractor_id)  # lets readers trust the files without a full read
            files.write_index(built, files.index_path(self.root, extractor_id), state, ids, gens)
            return True

    def require_extractor(self, extractor: BoundExtractor) -> int:
        """The id of ``extractor``'s identity; raises, saying what to do, when the gallery has no sample
        embedded with it."""
        key = extractor.identity.key
        with self.reading() as session:
            row = self.extractor_row(session, extractor, create=False)
            if row is None:
                if session.scalar(select(func.count(db.Generator.id))):
                    raise ExtractorMismatch(
                        f"no enrolled sample has been embedded with {key} "
                        f"(gallery extractors: {', '.join(self.extractor_keys()) or 'none'}); run "
                        f"`attrib gallery reembed --extractor {extractor.name}` or pick another --extractor"
                    )
                raise EmptyGallery(
                    f"gallery {self.name} has no enrolled generators; enroll some with "
                    "`attrib enroll --generator NAME IMAGES...`"
                )
            return row.id

    # -- calibration ----------------------------------------------------

    def calibration(self, extractor_id: int) -> CalibrationState:
        with self.reading() as session:
            rows = session.execute(
                select(db.Calibration.generator_id, db.Calibration.threshold, db.Calibration.separation,
                       db.Calibration.target_far).where(db.Calibration.extractor_id == extractor_id)
            ).all()
            stored = session.get(db.DecisionModelRow, extractor_id)
            model = json.loads(stored.params) if stored else None
        return CalibrationState(
            {gid: threshold for gid, threshold, _, _ in rows},
            separation=next((sep for gid, _, sep, _ in rows if gid is None), None),
            target_far=next((far for gid, _, _, far in rows if gid is None), None),
            model=model,
        )

    def cohort(self, extractor_id: int, version: str) -> np.ndarray | None:
        with self.reading() as session:
            row = session.get(db.CohortRow, extractor_id)
            if row is None or row.version != version:
                return None
            return np.frombuffer(row.data, dtype=np.float32).reshape(row.count, -1)

    def save_cohort(self, extractor_id: int, version: str, vectors: np.ndarray) -> None:
        with self.writing() as session:
            session.merge(db.CohortRow(extractor_id=extractor_id, version=version, count=len(vectors),
                                       data=np.ascontiguousarray(vectors, dtype=np.float32).tobytes()))

    def exemplars(self, vector_ids: list[int]) -> dict[int, tuple[str, str]]:
        with self.reading() as session:
            rows = session.execute(select(db.Vector.id, db.Sample.path, db.Sample.sha256)
                                   .join(db.Sample, db.Sample.id == db.Vector.sample_id)
                                   .where(db.Vector.id.in_([int(i) for i in vector_ids]))).all()
        return {vid: (path, sha) for vid, path, sha in rows}

    def sample_owner(self, sha256: str) -> str | None:
        with self.reading() as session:
            return session.scalar(select(db.Generator.name).join(db.Sample).where(db.Sample.sha256 == sha256))

    def calibrated_far(self, extractor_id: int) -> float | None:
        """The FAR one extractor was last calibrated at (None: never calibrated)."""
        with self.reading() as session:
            previous = session.scalar(
                select(db.Calibration.target_far).where(db.Calibration.extractor_id == extractor_id).limit(1)
            )
        return previous

    def save_calibration(self, extractor_id: int, result: CalibrationRecord, target_far: float,
                         revision: int) -> None:
        """Replace one extractor's thresholds by ``result`` (:class:`attrib.scoring.calibration.CalibrationResult`:
        its thresholds, separation, decision model and message) fitted at ``revision``, and audit it."""
        with self.writing() as session:
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
                        revision=revision,
                    )
                )
            if result.model is not None:
                session.merge(db.DecisionModelRow(extractor_id=extractor_id, params=json.dumps(result.model)))
            else:
                session.execute(delete(db.DecisionModelRow).where(db.DecisionModelRow.extractor_id == extractor_id))
            key = db.stored_extractor(session, extractor_id).key
            detail = {"extractor": key, "extractor_id": extractor_id, "target_far": target_far,
                      "message": result.message}
            session.add(db.Audit(action="calibrate", detail=json.dumps(detail)))
