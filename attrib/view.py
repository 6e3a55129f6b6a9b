"""Read-only views of a gallery's index for identify and verify, with plain sqlite3.

Opening an index for search needs a handful of reads; doing them with the
standard library's sqlite3 keeps SQLAlchemy (about 0.3 s to import) off the
path of a single ``attrib identify``. A view is returned only when the
schema is current and the index on disk matches the database exactly;
anything else returns None and the caller falls back to
:class:`attrib.gallery.Gallery`, which migrates, rebuilds and explains.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import index as faiss_index
from .backend import Backend
from .schema import SCHEMA_VERSION
from .scoring import DEFAULT_THRESHOLD


@dataclass
class IndexView:
    """A loaded index with the generator id of every vector id, for one extractor."""

    extractor_id: int
    extractor_key: str
    index: object
    ids: np.ndarray  # sorted vector ids
    generator_ids: np.ndarray  # aligned with ids
    generator_names: dict[int, str]
    thresholds: dict[int | None, float]
    backend: Backend
    separation: float | None = None  # the calibration's d' (fusion weight); None before schema 3 calibration
    rebuilt: bool = False
    target_far: float | None = None  # the FAR the thresholds were calibrated at

    def generators_of(self, vector_ids: np.ndarray) -> np.ndarray:
        pos = np.searchsorted(self.ids, vector_ids)
        pos = np.clip(pos, 0, max(len(self.ids) - 1, 0))
        return np.where(self.ids[pos] == vector_ids, self.generator_ids[pos], -1)

    def threshold(self, generator_id: int | None) -> float:
        """The generator's calibrated threshold, else the global one (``None``), else the default."""
        return float(self.thresholds.get(generator_id, self.thresholds.get(None, DEFAULT_THRESHOLD)))

    def generator_vectors(self, generator_id: int) -> np.ndarray:
        """The transformed (searchable) vectors of one generator, read back from the index."""
        return faiss_index.reconstruct(self.index, self.ids[self.generator_ids == generator_id])


def connect_read_only(root: Path) -> sqlite3.Connection:
    """A read-only sqlite3 connection to the gallery's database (raises sqlite3.Error)."""
    return sqlite3.connect(f"file:{Path(root) / 'gallery.db'}?mode=ro", uri=True)


def index_path(root: Path, extractor_id: int) -> Path:
    return Path(root) / "index" / f"{extractor_id}.faiss"


def read_view(root: Path, key: str) -> IndexView | None:
    """The index view for extractor identity ``key``, or None when it cannot be trusted as is."""
    database = Path(root) / "gallery.db"
    if not database.exists():
        return None
    try:
        con = connect_read_only(root)
    except sqlite3.Error:
        return None
    try:
        version = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if not version or int(version[0]) != SCHEMA_VERSION:
            return None
        row = con.execute("SELECT id, dim FROM extractors WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        extractor_id, dim = row
        count, max_id, id_sum = con.execute(
            "SELECT count(id), max(id), sum(id) FROM vectors WHERE extractor_id = ?", (extractor_id,)
        ).fetchone()
        params = con.execute("SELECT params FROM backends WHERE extractor_id = ?", (extractor_id,)).fetchone()
        names = dict(con.execute("SELECT id, name FROM generators"))
        rows = con.execute(
            "SELECT generator_id, threshold, separation, target_far FROM calibrations WHERE extractor_id = ?",
            (extractor_id,),
        ).fetchall()
        thresholds = {gid: threshold for gid, threshold, _, _ in rows}
        separation = next((sep for gid, _, sep, _ in rows if gid is None), None)
        target_far = next((far for gid, _, _, far in rows if gid is None), None)
    except (sqlite3.Error, ValueError):
        return None
    finally:
        con.close()
    if not count:
        return None
    backend = Backend.from_bytes(params[0] if params else None)
    state = faiss_index.IndexState(count, max_id or 0, id_sum or 0, backend.out_dim(dim), backend=backend.digest)
    path = index_path(root, extractor_id)
    loaded = faiss_index.read_index(path)
    labels_path = path.with_suffix(".labels.npy")
    if loaded is None or not loaded[1].matches(state) or not labels_path.exists():
        return None
    labels = np.load(labels_path)
    if labels.shape != (2, count):
        return None
    return IndexView(
        extractor_id, key, loaded[0], labels[0], labels[1], names, thresholds or {None: DEFAULT_THRESHOLD}, backend,
        separation=separation, target_far=target_far,
    )


def read_sample_ids(root: Path, extractor_id: int) -> np.ndarray:
    """Sorted ids of the samples one extractor has vectors for."""
    con = connect_read_only(root)
    try:
        rows = con.execute("SELECT sample_id FROM vectors WHERE extractor_id = ? ORDER BY sample_id", (extractor_id,))
        return np.array([r[0] for r in rows], dtype=np.int64)
    finally:
        con.close()


def read_vectors(root: Path, extractor_id: int, sample_ids: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sample ids, generator ids, float32 matrix) of one extractor's stored vectors, by sample id;
    only those of ``sample_ids`` when given."""
    query = ("SELECT v.sample_id, s.generator_id, v.data FROM vectors v JOIN samples s ON s.id = v.sample_id "
             "WHERE v.extractor_id = ?")
    con = connect_read_only(root)
    try:
        (dim,) = con.execute("SELECT dim FROM extractors WHERE id = ?", (extractor_id,)).fetchone()
        if sample_ids is None:
            rows = con.execute(query, (extractor_id,)).fetchall()
        else:
            con.execute("CREATE TEMP TABLE wanted (id INTEGER PRIMARY KEY)")
            con.executemany("INSERT INTO wanted VALUES (?)", ((int(i),) for i in sample_ids))
            rows = con.execute(query + " AND v.sample_id IN (SELECT id FROM wanted)", (extractor_id,)).fetchall()
    finally:
        con.close()
    rows.sort(key=lambda r: r[0])
    matrix = np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float32).reshape(len(rows), dim)
    return np.array([r[0] for r in rows], dtype=np.int64), np.array([r[1] for r in rows], dtype=np.int64), matrix


def extractor_names(root: Path) -> set[str] | None:
    """Names of the extractors a gallery holds vectors for; None when it cannot be read this way."""
    database = Path(root) / "gallery.db"
    if not database.exists():
        return set()
    try:
        con = connect_read_only(root)
        try:
            return {name for (name,) in con.execute("SELECT name FROM extractors")}
        finally:
            con.close()
    except sqlite3.Error:
        return None


class GalleryReader:
    """What identify and verify need from a gallery: trusted views, repaired by the full Gallery if not."""

    def __init__(self, root: Path, notify=None):
        self.root = Path(root)
        self.notify = notify

    def open_index(self, extractor) -> IndexView:
        view = read_view(self.root, extractor.identity.key)
        if view is not None:
            return view
        from .gallery import Gallery

        with Gallery(self.root, notify=self.notify) as gallery:
            return gallery.open_index(extractor)

    def __enter__(self) -> "GalleryReader":
        return self

    def __exit__(self, *exc) -> None:
        pass
