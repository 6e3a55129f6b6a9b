"""Storage: the SQL metadata store, where a gallery's durable state lives and how it is read back.

The storage interface (:mod:`.interface`: vectors, revisions, fitted whitening as bytes, thresholds,
cohorts, audit) has two implementations: the SQL store through SQLAlchemy (:mod:`.sql`,
:class:`~.sql.SQLStore`) with its sibling subclasses for a gallery folder (:mod:`.sqlite`) and a
PostgreSQL database (:mod:`.postgres`), and the fast read-only path (:mod:`.fast_reader`, plain
sqlite3). Tables and their schema in :mod:`.models`, :mod:`.schema`, :mod:`.revisions`; opening and
migrating in :mod:`.database` and ``migrations/`` (Alembic); bulk writes and bounded reads in
:mod:`.bulk`, :mod:`.thumbnails`, :mod:`.listing`; where a gallery is (:mod:`.location`), the writer
lock (:mod:`.locking`) and storage faults as one-line errors (:mod:`.faults`). Whether what it holds
is current is :mod:`attrib.upkeep`'s to decide.

May import (the layers below it in the import contract, pyproject.toml): :mod:`attrib.index`,
:mod:`attrib.delivery`, :mod:`attrib.extractors`, :mod:`attrib.evidence`, :mod:`attrib.synthetic`, :mod:`attrib.images`,
:mod:`attrib.host`, :mod:`attrib.names`, :mod:`attrib.errors`, :mod:`attrib.version`. Never :mod:`attrib.scoring` (its
sibling).
"""
