"""The fast read-only path: the storage interface's reads with the standard library's sqlite3.

Opening an index for search needs a handful of reads; doing them with sqlite3 keeps
SQLAlchemy (about 0.3 s to import) off the path of a single ``attrib identify``. The reader
is only used when the schema is current (:meth:`FastReader.open`); whether the index on disk
can be trusted is decided by :func:`attrib.upkeep.freshness.load_index_view`, as for the SQL
store, and anything it does not trust goes to :class:`attrib.storage.sqlite.SQLiteStore`,
which migrates, rebuilds and explains.
"""

from __future__ import annotations

import json
import os
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator
from urllib.parse import quote

import numpy as np

from ..index import files
from ..index.whitening import Whitening
from .interface import LONG_SIDE, CalibrationState, OwnDelivery, most_common_delivery, stack_rows, state_of
from .schema import SCHEMA_VERSION


def database_uri(root: Path) -> str:
    """The gallery database as an SQLite ``file:`` URI (without parameters); the path is percent-encoded,
    so '?', '#' and '%' in folder names are read as themselves."""
    return "file:" + quote(str((Path(root) / "gallery.db").absolute()), safe="/")


def connect_read_only(root: Path) -> sqlite3.Connection:
    """A read-only sqlite3 connection to the gallery's database (raises sqlite3.Error).

    In a folder nobody can write, SQLite cannot create the WAL index it needs to read a WAL database;
    since nothing can change the database there either, it is then opened as immutable.
    """
    connection = sqlite3.connect(f"{database_uri(root)}?mode=ro", uri=True)
    try:
        connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return connection
    except sqlite3.OperationalError as exc:
        connection.close()
        if not cannot_open_here(exc, root):
            raise
    return sqlite3.connect(f"{database_uri(root)}?mode=ro&immutable=1", uri=True)


def cannot_open_here(exc: Exception, root: Path) -> bool:
    """``exc`` is SQLite failing to open the database of a gallery folder that cannot be written."""
    return "unable to open database file" in str(exc) and not os.access(root, os.W_OK)


class FastReader:
    """Read-only access to a gallery folder whose schema is current; see :meth:`open`."""

    def __init__(self, root: Path, connection: sqlite3.Connection):
        self.root = Path(root)
        self.con = connection
        self.con.isolation_level = None  # transactions only where snapshot() opens one
        self._depth = 0

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads inside the block see one committed state of the database."""
        if self._depth == 0:
            self.con.execute("BEGIN")
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0:
                self.con.execute("COMMIT")

    @classmethod
    def open(cls, root: str | Path) -> "FastReader | None":
        """A reader, or None when the database is missing, unreadable or not at the current schema."""
        database = Path(root) / "gallery.db"
        if not database.exists():
            return None
        try:
            con = connect_read_only(Path(root))
            version = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.Error:
            return None
        try:
            if not version or int(version[0]) != SCHEMA_VERSION:
                con.close()
                return None
        except ValueError:
            con.close()
            return None
        return cls(Path(root), con)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> "FastReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def extractor_id(self, key: str) -> int | None:
        row = self.con.execute("SELECT id FROM extractors WHERE key = ?", (key,)).fetchone()
        return None if row is None else int(row[0])

    def extractor_names(self) -> set[str]:
        return {name for (name,) in self.con.execute("SELECT name FROM extractors")}

    def delivery_versions(self, key: str) -> dict[str, tuple[str, int]]:
        rows = self.con.execute(
            "SELECT e.delivery, e.key, (SELECT count(*) FROM vectors v WHERE v.extractor_id = e.id) FROM extractors e "
            "WHERE e.delivery IS NOT NULL AND substr(e.key, 1, ?) = ?", (len(key) + 1, key + "|"))
        return {rung: (version_key, int(count)) for rung, version_key, count in rows}

    def vector_count(self, extractor_id: int) -> int:
        (count,) = self.con.execute("SELECT count(*) FROM vectors WHERE extractor_id = ?", (extractor_id,)).fetchone()
        return int(count)

    def extractor_key(self, extractor_id: int) -> str:
        (key,) = self.con.execute("SELECT key FROM extractors WHERE id = ?", (extractor_id,)).fetchone()
        return key

    def revision(self, extractor_id: int) -> int:
        (revision,) = self.con.execute("SELECT revision FROM extractors WHERE id = ?", (extractor_id,)).fetchone()
        return int(revision)

    def fit_revisions(self, extractor_id: int) -> tuple[int | None, int | None]:
        whitening = self.con.execute("SELECT revision FROM backends WHERE extractor_id = ?", (extractor_id,)).fetchone()
        count, low, high = self.con.execute(
            "SELECT count(id), min(revision), max(revision) FROM calibrations WHERE extractor_id = ?", (extractor_id,)
        ).fetchone()
        return (whitening[0] if whitening else None), (low if count and low == high else None)

    def labels(self, extractor_id: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self.con.execute("SELECT v.id, s.generator_id FROM vectors v JOIN samples s ON s.id = v.sample_id "
                                "WHERE v.extractor_id = ? ORDER BY v.id", (extractor_id,)).fetchall()
        pairs = np.array(rows, dtype=np.int64).reshape(-1, 2)
        return pairs[:, 0].copy(), pairs[:, 1].copy()

    def added_since(self, extractor_id: int, after_id: int) -> dict[int, int]:
        rows = self.con.execute("SELECT s.generator_id, count(v.id) FROM vectors v JOIN samples s "
                                "ON s.id = v.sample_id WHERE v.extractor_id = ? AND v.id > ? GROUP BY s.generator_id",
                                (extractor_id, int(after_id))).fetchall()
        return {int(generator): int(count) for generator, count in rows}

    def vectors(self, extractor_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows = self.con.execute("SELECT v.id, s.generator_id, v.data FROM vectors v JOIN samples s "
                                "ON s.id = v.sample_id WHERE v.extractor_id = ? ORDER BY v.id",
                                (extractor_id,)).fetchall()
        return stack_rows(rows, self._dim(extractor_id))

    def _dim(self, extractor_id: int) -> int:
        (dim,) = self.con.execute("SELECT dim FROM extractors WHERE id = ?", (extractor_id,)).fetchone()
        return int(dim)

    def whitening(self, extractor_id: int) -> Whitening:
        params = self.con.execute("SELECT params FROM backends WHERE extractor_id = ?", (extractor_id,)).fetchone()
        return Whitening.from_bytes(params[0] if params else None)

    def index_state(self, extractor_id: int) -> files.IndexState:
        ids, gens = self.labels(extractor_id)
        return state_of(ids, gens, self._dim(extractor_id), self.whitening(extractor_id))

    def calibration(self, extractor_id: int) -> CalibrationState:
        rows = self.con.execute(
            "SELECT generator_id, threshold, separation, target_far FROM calibrations WHERE extractor_id = ?",
            (extractor_id,),
        ).fetchall()
        model = self.con.execute("SELECT params FROM decision_models WHERE extractor_id = ?",
                                 (extractor_id,)).fetchone()
        return CalibrationState(
            {gid: threshold for gid, threshold, _, _ in rows},
            separation=next((sep for gid, _, sep, _ in rows if gid is None), None),
            target_far=next((far for gid, _, _, far in rows if gid is None), None),
            model=json.loads(model[0]) if model else None,
        )

    def exemplars(self, vector_ids: list[int]) -> dict[int, tuple[str, str]]:
        marks = ",".join("?" * len(vector_ids))
        rows = self.con.execute(f"SELECT v.id, s.path, s.sha256 FROM vectors v JOIN samples s ON s.id = v.sample_id "
                                f"WHERE v.id IN ({marks})", [int(i) for i in vector_ids])
        return {vid: (path, sha) for vid, path, sha in rows}

    def sample_owner(self, sha256: str) -> str | None:
        row = self.con.execute("SELECT g.name FROM samples s JOIN generators g ON g.id = s.generator_id "
                               "WHERE s.sha256 = ?", (sha256,)).fetchone()
        return row[0] if row else None

    def thumbnails(self, sha256s: list[str]) -> dict[str, bytes]:
        """The stored thumbnails (encoded bytes) of the samples with these sha256s; those without one are absent."""
        wanted = list(dict.fromkeys(sha256s))
        out: dict[str, bytes] = {}
        for start in range(0, len(wanted), 500):
            part = wanted[start: start + 500]
            out.update(self.con.execute(f"SELECT s.sha256, t.data FROM samples s JOIN thumbnails t ON t.sample_id = s.id "
                                        f"WHERE s.sha256 IN ({','.join('?' * len(part))})", part).fetchall())
        return out

    def cohort(self, extractor_id: int, version: str) -> np.ndarray | None:
        row = self.con.execute("SELECT count, data FROM cohorts WHERE extractor_id = ? AND version = ?",
                               (extractor_id, version)).fetchone()
        return None if row is None else np.frombuffer(row[1], dtype=np.float32).reshape(row[0], -1)

    def generator_names(self) -> dict[int, str]:
        return dict(self.con.execute("SELECT id, name FROM generators"))

    def generator_deliveries(self) -> dict[int, OwnDelivery]:
        return most_common_delivery(self.con.execute(
            f"SELECT generator_id, delivery, {LONG_SIDE}, count(id) FROM samples "
            f"GROUP BY generator_id, delivery, {LONG_SIDE}").fetchall())

    def generator_families(self) -> dict[int, str | None]:
        return dict(self.con.execute("SELECT id, family FROM generators"))

    def sample_ids(self, extractor_id: int) -> np.ndarray:
        rows = self.con.execute("SELECT sample_id FROM vectors WHERE extractor_id = ? ORDER BY sample_id",
                                (extractor_id,))
        return np.array([r[0] for r in rows], dtype=np.int64)

    def vectors_of_samples(self, extractor_id: int, sample_ids: np.ndarray | None = None
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        query = ("SELECT v.sample_id, s.generator_id, v.data FROM vectors v JOIN samples s ON s.id = v.sample_id "
                 "WHERE v.extractor_id = ?")
        dim = self._dim(extractor_id)
        if sample_ids is None:
            rows = self.con.execute(query, (extractor_id,)).fetchall()
        else:
            self.con.execute("CREATE TEMP TABLE IF NOT EXISTS wanted (id INTEGER PRIMARY KEY)")
            self.con.execute("DELETE FROM wanted")
            self.con.executemany("INSERT INTO wanted VALUES (?)", ((int(i),) for i in sample_ids))
            rows = self.con.execute(query + " AND v.sample_id IN (SELECT id FROM wanted)", (extractor_id,)).fetchall()
        rows.sort(key=lambda r: r[0])
        return stack_rows(rows, dim)
