"""Baseline: the gallery schema 5 (generators, samples, extractors with revisions, vectors, calibrations,
fitted whitening, impostor cohorts, decision models, audit, meta) and the revision counters.

Revision ID: 0005
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from attrib.storage.revisions import revision_triggers

revision = "0005"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA_VERSION = "5"


def _id() -> sa.Column:
    return sa.Column("id", sa.Integer(), primary_key=True)


def _created() -> sa.Column:
    return sa.Column("created_at", sa.DateTime(), nullable=False)


def _extractor_key(primary: bool = False) -> sa.Column:
    return sa.Column("extractor_id", sa.Integer(), sa.ForeignKey("extractors.id", ondelete="CASCADE"),
                     nullable=False, primary_key=primary, index=not primary)


def upgrade() -> None:
    auto = {"sqlite_autoincrement": True}
    op.create_table("meta", sa.Column("key", sa.String(64), primary_key=True),
                    sa.Column("value", sa.Text(), nullable=False))
    op.create_table("generators", _id(), sa.Column("name", sa.String(200), nullable=False, unique=True),
                    sa.Column("family", sa.String(200)), sa.Column("note", sa.Text()), _created(), **auto)
    op.create_table("samples", _id(),
                    sa.Column("generator_id", sa.Integer(), sa.ForeignKey("generators.id", ondelete="CASCADE"),
                              nullable=False, index=True),
                    sa.Column("sha256", sa.String(64), nullable=False, unique=True),
                    sa.Column("path", sa.Text(), nullable=False), sa.Column("size_bytes", sa.Integer(), nullable=False),
                    sa.Column("format", sa.String(32), nullable=False), sa.Column("width", sa.Integer(), nullable=False),
                    sa.Column("height", sa.Integer(), nullable=False), _created(), **auto)
    op.create_table("extractors", _id(), sa.Column("key", sa.Text(), nullable=False, unique=True),
                    sa.Column("name", sa.String(200), nullable=False, index=True),
                    sa.Column("version", sa.String(64), nullable=False),
                    sa.Column("options_json", sa.Text(), nullable=False), sa.Column("dim", sa.Integer(), nullable=False),
                    _created(), sa.Column("revision", sa.Integer(), nullable=False, server_default="0"), **auto)
    op.create_table("vectors", _id(),
                    sa.Column("sample_id", sa.Integer(), sa.ForeignKey("samples.id", ondelete="CASCADE"),
                              nullable=False, index=True),
                    _extractor_key(), sa.Column("data", sa.LargeBinary(), nullable=False),
                    sa.UniqueConstraint("sample_id", "extractor_id"), **auto)
    op.create_table("calibrations", _id(), _extractor_key(),
                    sa.Column("generator_id", sa.Integer(), sa.ForeignKey("generators.id", ondelete="CASCADE")),
                    sa.Column("threshold", sa.Double(), nullable=False), sa.Column("method", sa.String(64), nullable=False),
                    sa.Column("target_far", sa.Double(), nullable=False),
                    sa.Column("n_genuine", sa.Integer(), nullable=False),
                    sa.Column("n_impostor", sa.Integer(), nullable=False), sa.Column("tar", sa.Double()),
                    sa.Column("separation", sa.Double()), _created(), sa.Column("revision", sa.Integer()), **auto)
    op.create_table("backends", _extractor_key(primary=True), sa.Column("kind", sa.String(32), nullable=False),
                    sa.Column("params", sa.LargeBinary(), nullable=False),
                    sa.Column("n_fitted", sa.Integer(), nullable=False), _created(), sa.Column("revision", sa.Integer()))
    op.create_table("cohorts", _extractor_key(primary=True), sa.Column("version", sa.String(32), nullable=False),
                    sa.Column("count", sa.Integer(), nullable=False), sa.Column("data", sa.LargeBinary(), nullable=False),
                    _created())
    op.create_table("decision_models", _extractor_key(primary=True), sa.Column("params", sa.Text(), nullable=False),
                    _created())
    op.create_table("audit", _id(), sa.Column("at", sa.DateTime(), nullable=False),
                    sa.Column("action", sa.String(64), nullable=False), sa.Column("detail", sa.Text(), nullable=False),
                    **auto)
    for statement in revision_triggers(op.get_context().dialect.name):
        op.execute(statement)
    op.bulk_insert(sa.table("meta", sa.column("key"), sa.column("value")),
                   [{"key": "schema_version", "value": SCHEMA_VERSION}])


def downgrade() -> None:
    raise NotImplementedError("a gallery is never migrated back; restore a backup made before the upgrade")
