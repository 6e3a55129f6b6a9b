"""Storage: where a gallery's durable state lives and how it is read back.

Owns one interface (:mod:`.base`: vectors, index state, fitted whitening, thresholds,
audit) with two implementations, the SQLite store through SQLAlchemy (:mod:`.sqlite`,
tables and migrations in :mod:`.models`) and the fast read-only path (:mod:`.fast_reader`,
plain sqlite3), plus the FAISS cache (:mod:`.faiss_cache`), the writer lock (:mod:`.locking`),
storage faults as one-line errors (:mod:`.faults`) and the consistency check behind
``attrib gallery check`` (:mod:`.check`). May import :mod:`attrib.errors`
and :mod:`attrib.scoring` (to store and apply the fitted whitening); never extractors,
the gallery or the CLI.
"""
