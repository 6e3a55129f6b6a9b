"""``attrib gallery check``: is the gallery on disk consistent, and what can be rebuilt.

Verifies the database (for a gallery folder, SQLite's integrity and foreign-key checks and the
schema version; for a PostgreSQL gallery the server keeps both), a vector of the right size for
every sample and extractor, that each extractor's whitening and
calibration were fitted on its current vectors (:func:`attrib.upkeep.freshness.fit_problems`),
and that its index generation matches the database (:func:`attrib.upkeep.freshness.index_problems`).
Reads only; :func:`repair` rebuilds what the durable vectors allow.

Each finding has a severity: ``problem`` (the gallery is inconsistent: exit status 1), ``stale``
(fits or index files that lag the vectors, as a killed writer leaves them: the next identify or
enroll that can write the gallery brings them up to date by itself, so the check exits 0 and says
so) or ``note`` (harmless). The report's ``status`` is ``consistent``, ``stale`` or ``inconsistent``.
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ..errors import GalleryError
from ..index import files
from ..scoring.whitening import staleness
from ..storage.fast_reader import FastReader, connect_read_only
from ..storage.interface import GalleryReads, GalleryStore
from ..storage.schema import SCHEMA_VERSION
from .freshness import fit_problems, index_problems

if TYPE_CHECKING:
    from ..storage.sql import SQLStore

MAX_LISTED = 10  # integrity problems listed one by one
SEVERITIES = ("problem", "stale", "note")
REFITS_ITSELF = "the next identify or enroll refits it by itself, or `attrib calibrate` now"
REINDEXES_ITSELF = "the next identify or enroll rebuilds it by itself, or `attrib gallery check --repair` now"


@dataclass
class Finding:
    """One thing wrong: where, what, and what ``--repair`` does about it (None: it cannot).
    ``severity`` (:data:`SEVERITIES`): ``problem``, the gallery is inconsistent; ``stale``, it lags
    and ``heals`` says what brings it up to date without anyone's help; ``note``, harmless
    (leftover files)."""

    subject: str
    problem: str
    repair: str | None = None
    severity: str = "problem"
    heals: str | None = None

    def line(self) -> str:
        heals = f"; {self.heals}" if self.heals else ""
        fix = f"; --repair will {self.repair}" if self.repair else ""
        return f"{self.severity}: {self.subject}: {self.problem}{heals}{fix}"


@dataclass
class CheckReport:
    """What :func:`inspect_gallery` found (and, after a repair, what was repaired)."""

    gallery: str
    findings: list[Finding] = field(default_factory=list)
    generators: int = 0
    samples: int = 0
    extractors: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    needs_migration: bool = False
    to_recalibrate: list[tuple[int, str]] = field(default_factory=list)
    to_reindex: list[tuple[int, str]] = field(default_factory=list)
    stray_files: list[Path] = field(default_factory=list)
    contents_read: bool = False  # generators, samples and extractors were counted

    def _of(self, severity: str) -> list[Finding]:
        return [f for f in self.findings if f.severity == severity]

    @property
    def consistent(self) -> bool:
        """Nothing wrong and nothing stale."""
        return not any(f.severity in ("problem", "stale") for f in self.findings)

    @property
    def status(self) -> str:
        """``inconsistent`` (a problem: exit status 1), ``stale`` (only what the next identify or
        enroll brings up to date by itself) or ``consistent``."""
        if self._of("problem"):
            return "inconsistent"
        return "stale" if self._of("stale") else "consistent"

    @property
    def repairable(self) -> bool:
        return any(f.repair for f in self.findings)

    def summary(self) -> str:
        contents = "contents not read"
        if self.contents_read:
            contents = (f"{self.generators} generators, {self.samples} samples, "
                        f"extractors: {', '.join(self.extractors) or 'none'}")
        stale = len(self._of("stale"))
        heals = "that the next identify or enroll brings up to date by itself"
        if self.status == "consistent":
            return f"gallery {self.gallery}: consistent ({contents})"
        if self.status == "stale":
            return (f"gallery {self.gallery}: stale, {stale} findings {heals} (`attrib gallery check --repair` "
                    f"now) ({contents})")
        problems = self._of("problem")
        fixable = sum(1 for f in problems if f.repair)
        hint = f", {fixable} repairable: run `attrib gallery check --repair`" if fixable else ""
        also = f"; {stale} stale findings {heals}" if stale else ""
        return f"gallery {self.gallery}: inconsistent, {len(problems)} problems{hint}{also} ({contents})"

    def lines(self) -> list[str]:
        """One line per finding and per repair done, then the summary."""
        return [f.line() for f in self.findings] + [f"repaired: {r}" for r in self.repaired] + [self.summary()]

    def to_json(self) -> dict[str, Any]:
        return {"gallery": self.gallery, "consistent": self.consistent, "status": self.status,
                "generators": self.generators,
                "samples": self.samples, "extractors": self.extractors,
                "findings": [asdict(f) for f in self.findings], "repaired": self.repaired}


def inspect_gallery(root: str | Path, store: SQLStore | None = None) -> CheckReport:
    """Check the gallery folder ``root``, reading through the SQL store ``store`` when given (else read-only
    sqlite3); a PostgreSQL gallery is checked through its ``store``."""
    if store is not None and store.dialect != "sqlite":
        return _inspect_database(store)
    root = Path(root)
    report = CheckReport(str(root))
    database = root / "gallery.db"
    if not root.is_dir():
        raise GalleryError(f"no gallery at {root}: the folder does not exist")
    if not database.exists() or database.stat().st_size == 0:
        leftovers = list((root / "index").glob("*"))
        report.contents_read = not leftovers  # else a gallery's database is lost, not a new gallery
        if leftovers:
            state = "missing" if not database.exists() else "empty (0 bytes)"
            report.findings.append(Finding("database", f"{database} is {state} beside {len(leftovers)} index "
                                                       "files of a gallery; restore it from a backup"))
        return report
    try:
        connection = connect_read_only(root)
    except sqlite3.Error as exc:
        report.findings.append(_unreadable(database, exc))
        return report
    try:
        version = _database_findings(connection, report)
        if version is None:
            return report
        if version < SCHEMA_VERSION and store is None:
            report.needs_migration = True
            report.findings.append(Finding("database", f"schema version {version}, this attrib writes "
                                           f"{SCHEMA_VERSION}; the rest is checked once it is migrated",
                                           repair="migrate it"))
            return report
        reads = store if store is not None else FastReader(root, connection)
        with reads.snapshot():
            _content_findings(lambda sql, params=(): connection.execute(sql, params).fetchall(), reads, report)
    except sqlite3.DatabaseError as exc:
        report.findings.append(_unreadable(database, exc))
    finally:
        connection.close()
    return report


def _inspect_database(store: SQLStore) -> CheckReport:
    """Check a gallery whose database is a server's (which keeps its own integrity): its contents and
    this machine's index files."""
    from sqlalchemy import text

    report = CheckReport(store.name)
    with store.snapshot(), store.reading() as session:
        _content_findings(lambda sql, params=(): session.execute(text(sql), dict(params)).all(), store, report)
    return report


def _unreadable(database: Path, exc: sqlite3.Error) -> Finding:
    text = str(exc)
    if "not a database" in text or "malformed" in text:
        return Finding("database", f"{database} is damaged ({text}); restore it from a backup, or salvage what "
                                   f"SQLite can read with `sqlite3 {database} .recover`")
    return Finding("database", f"{database} cannot be read ({text})")


def _database_findings(connection: sqlite3.Connection, report: CheckReport) -> int | None:
    """SQLite's integrity and foreign-key checks and the schema version (None: not a readable gallery)."""
    rows = [r[0] for r in connection.execute(f"PRAGMA integrity_check({MAX_LISTED})")]
    if rows != ["ok"]:
        for row in rows:
            report.findings.append(Finding("database", f"integrity check: {row}"))
        return None
    orphans = connection.execute("PRAGMA foreign_key_check").fetchall()
    by_table: dict[str, int] = {}
    for table, *_ in orphans:
        by_table[table] = by_table.get(table, 0) + 1
    for table, count in sorted(by_table.items()):
        report.findings.append(Finding("database", f"{count} rows of {table} point at rows that do not exist"))
    try:
        (value,) = connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        version = int(value)
    except (sqlite3.Error, TypeError, ValueError):
        report.findings.append(Finding("database", "not an attrib gallery (no schema version)"))
        return None
    if version > SCHEMA_VERSION:
        report.findings.append(Finding("database", f"schema version {version} is newer than this attrib "
                                       f"supports ({SCHEMA_VERSION}); upgrade attrib"))
        return None
    return version


def _content_findings(query: Callable[..., Sequence[Sequence[Any]]], reads: GalleryReads, report: CheckReport) -> None:
    """Per extractor: vectors present and well formed, fits current, index generation current; stray files.
    ``query(sql, params)`` returns the rows of an SQL statement with ``:name`` parameters."""
    report.contents_read = True
    report.generators, = query("SELECT count(*) FROM generators")[0]
    report.samples, = query("SELECT count(*) FROM samples")[0]
    extractors = query("SELECT id, key, name, dim FROM extractors ORDER BY id")
    report.extractors = [key for _, key, _, _ in extractors]
    for extractor_id, key, name, dim in extractors:
        missing, = query("SELECT count(*) FROM samples s WHERE NOT EXISTS (SELECT 1 FROM vectors v "
                         "WHERE v.sample_id = s.id AND v.extractor_id = :extractor)", {"extractor": extractor_id})[0]
        if missing:
            report.findings.append(Finding(key, f"{missing} of {report.samples} samples have no vector; run `attrib "
                                                f"gallery reembed --extractor {name}` (with its --option values)"))
        malformed, = query("SELECT count(*) FROM vectors WHERE extractor_id = :extractor AND length(data) != :size",
                           {"extractor": extractor_id, "size": 4 * dim})[0]
        if malformed:
            report.findings.append(Finding(key, f"{malformed} stored vectors are not {dim} float32 values; "
                                                "remove and re-enroll their generators"))
            continue
        for problem in fit_problems(reads, extractor_id):
            report.findings.append(Finding(key, problem, repair="refit the whitening and recalibrate",
                                           severity="stale", heals=REFITS_ITSELF))
            if (extractor_id, key) not in report.to_recalibrate:
                report.to_recalibrate.append((extractor_id, key))
        if len(reads.labels(extractor_id)[0]):
            problems, _ = index_problems(reads, extractor_id)
            for problem in problems:
                report.findings.append(Finding(key, problem, repair="rebuild it from the stored vectors",
                                               severity="stale", heals=REINDEXES_ITSELF))
                report.to_reindex.append((extractor_id, key))
    folder = Path(reads.root) / "index"
    sidecars = [files.index_path(reads.root, extractor_id) for extractor_id, *_ in extractors]
    report.stray_files = files.stray_files(folder, sidecars)
    if report.stray_files:
        report.findings.append(Finding(str(folder), f"{len(report.stray_files)} files no index uses (left by "
                                       "an interrupted write or a dropped extractor)", repair="remove them",
                                       severity="note"))


def repair(store: GalleryStore, report: CheckReport, recalibrate: Callable[[int], object]) -> list[str]:
    """Rebuild what ``report`` (made through ``store``, under the writer lock) found stale: fits through
    ``recalibrate(extractor_id)``, index generations from the stored vectors, leftover files removed.
    Returns what was done, one line each."""
    done = []
    for extractor_id, key in report.to_recalibrate:
        recalibrate(extractor_id)
        done.append(f"refitted the whitening and recalibrated {key}")
    for extractor_id, key in report.to_reindex:
        if store.write_index(extractor_id):
            done.append(f"rebuilt the index of {key} from its stored vectors")
    if report.stray_files:
        files.remove_files(report.stray_files)
        done.append(f"removed {len(report.stray_files)} leftover files from {Path(store.root) / 'index'}")
    return done


def with_staleness(report: CheckReport, reads: Callable[[], GalleryReads]) -> CheckReport:
    """Add to a consistent ``report`` a note per extractor whose whitening predates changes still within the
    refit share (how stale it is; `attrib calibrate` refits it), read through ``reads()``."""
    if not report.contents_read or not report.consistent or not report.extractors:
        return report
    reader = reads()
    for key in report.extractors:
        extractor_id = reader.extractor_id(key)
        if extractor_id is None:  # the report lists the extractors the database holds
            continue
        whitened, _ = reader.fit_revisions(extractor_id)
        changes = reader.revision(extractor_id) - (whitened or 0)
        if whitened is not None and changes > 0:
            report.findings.append(Finding(key, f"whitening {staleness(reader.whitening(extractor_id), changes)}"
                                                "; within the refit share, `attrib calibrate` refits it",
                                           severity="note"))
    return report
