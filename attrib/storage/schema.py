"""The gallery schema version, importable without SQLAlchemy."""

SCHEMA_VERSION = 5
