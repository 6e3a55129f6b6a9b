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

from ...errors import GalleryError
from ..schema import HEAD_REVISION, SCHEMA_VERSION

FOLDER = Path(__file__).resolve().parent
BASELINE = "0005"  # the schema 5 of SQLite galleries written before Alembic


def config(connection=None, url: str | None = None):
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

    return ScriptDirectory.from_config(config()).get_current_head()


def upgrade(connection, where: str, stamp: bool = False) -> None:
    """Apply every revision the database on ``connection`` lacks; with ``stamp``, first record it at the
    baseline (a gallery brought to schema 5 by the code before Alembic)."""
    from alembic import command
    from alembic.util import CommandError

    cfg = config(connection)
    try:
        if stamp:
            command.stamp(cfg, BASELINE)
        command.upgrade(cfg, "head")
    except CommandError as exc:
        if "Can't locate revision" in str(exc):
            raise GalleryError(f"gallery {where} was migrated by a newer attrib ({exc}; this attrib knows "
                               f"schema {SCHEMA_VERSION}, revision {HEAD_REVISION}); upgrade attrib") from None
        raise
