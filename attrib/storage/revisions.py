"""The revision counters (schema 5): ``extractors.revision`` is bumped in the same transaction as
every insert, change or delete of one of its vectors, and when a sample changes generator.

Database triggers do it, so every writer (this code, a bulk loader, a hand-written SQL fix) keeps
the counters honest. The same four row-level triggers exist for SQLite and for PostgreSQL
(where each runs a small PL/pgSQL function); :func:`attrib.upkeep.freshness.fit_problems` compares
the counters with the revisions the whitening and the calibration were fitted at.
"""

from __future__ import annotations

# name -> (event, table, extractor ids whose revision is bumped)
TRIGGERS = {
    "vectors_added": ("INSERT", "vectors", "id = NEW.extractor_id"),
    "vectors_removed": ("DELETE", "vectors", "id = OLD.extractor_id"),
    "vectors_changed": ("UPDATE OF data, sample_id, extractor_id", "vectors",
                        "id IN (OLD.extractor_id, NEW.extractor_id)"),
    "samples_relabelled": ("UPDATE OF generator_id", "samples",
                           "id IN (SELECT extractor_id FROM vectors WHERE sample_id = NEW.id)"),
}


def _bump(which: str) -> str:
    return f"UPDATE extractors SET revision = revision + 1 WHERE {which};"


def sqlite_triggers() -> list[str]:
    return [f"CREATE TRIGGER IF NOT EXISTS {name} AFTER {event} ON {table} BEGIN {_bump(which)} END"
            for name, (event, table, which) in TRIGGERS.items()]


def postgresql_triggers() -> list[str]:
    statements = []
    for name, (event, table, which) in TRIGGERS.items():
        function = f"attrib_{name}"
        statements.append(f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ "
                          f"BEGIN {_bump(which)} RETURN NULL; END $$")
        statements.append(f"CREATE OR REPLACE TRIGGER {name} AFTER {event} ON {table} "
                          f"FOR EACH ROW EXECUTE FUNCTION {function}()")
    return statements


def revision_triggers(dialect: str) -> list[str]:
    """The DDL creating the revision triggers on database ``dialect`` (``sqlite`` or ``postgresql``)."""
    if dialect == "sqlite":
        return sqlite_triggers()
    if dialect == "postgresql":
        return postgresql_triggers()
    raise ValueError(f"no revision triggers for database dialect {dialect!r}")
