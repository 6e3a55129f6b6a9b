"""Alembic revisions of the gallery schema, oldest first (see :mod:`attrib.storage.migrations`)."""
