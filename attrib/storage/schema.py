"""The gallery schema version and the newest Alembic revision, importable without SQLAlchemy or Alembic
(a test checks HEAD_REVISION against the scripts in attrib/storage/migrations/versions)."""

SCHEMA_VERSION = 7
HEAD_REVISION = "0007"
