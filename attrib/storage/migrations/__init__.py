"""The gallery schema's Alembic migrations, for SQLite and PostgreSQL, run from code.

``env.py`` and ``versions/`` form an ordinary Alembic script folder; :func:`upgrade` runs it on an
open connection inside the caller's transaction (:mod:`attrib.storage.database` decides when).
A new revision: ``alembic -c <a config whose script_location is this folder> revision -m WHAT``,
then write its ``upgrade()`` (batch operations for SQLite), bump ``SCHEMA_VERSION`` in
:mod:`attrib.storage.schema` and the ``meta`` row in the revision, and set ``HEAD_REVISION``.
Imported only when a database needs migrating.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import GalleryError
from ..schema import HEAD_REVISION, SCHEMA_VERSION

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine import Connection

FOLDER = Path(__file__).resolve().parent
BASELINE = "0005"  # the schema 5 of SQLite galleries written before Alembic


def config(connection: Connection | None = None, url: str | None = None) -> Config:
    """An Alembic Config for this script folder, running on ``connection`` (else on ``url``)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(FOLDER).replace("%", "%%"))
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    """The newest revision among the scripts."""
    from alembic.script import ScriptDirectory

    current = ScriptDirectory.from_config(config()).get_current_head()
    if current is None:
        raise GalleryError(f"no Alembic revision in {FOLDER / 'versions'}; this attrib is damaged, reinstall it")
    return current


def upgrade(connection: Connection, where: str, stamp: int | None = None) -> None:
    """Apply every revision the database on ``connection`` lacks; with ``stamp`` (a schema version, 5 or
    later), first record it at that schema's revision (a gallery without the Alembic stamp: brought to
    schema 5 by the code before Alembic, or whose stamp was lost)."""
    from alembic import command
    from alembic.util import CommandError

    cfg = config(connection)
    try:
        if stamp is not None:
            command.stamp(cfg, revision_of(stamp))
        command.upgrade(cfg, "head")
    except CommandError as exc:
        if "Can't locate revision" in str(exc):
            raise GalleryError(f"gallery {where} was migrated by a newer attrib ({exc}; this attrib knows "
                               f"schema {SCHEMA_VERSION}, revision {HEAD_REVISION}); upgrade attrib") from None
        raise


def revision_of(schema_version: int) -> str:
    """The revision that brings a gallery to ``schema_version`` (revisions are named by it: 0005, 0006...)."""
    return f"{max(int(schema_version), int(BASELINE)):04d}"
