"""Baseline: the gallery schema 5 (generators, samples, extractors with revisions, vectors, calibrations,
fitted whitening, impostor cohorts, decision models, audit, meta) and the revision counters.

Revision ID: 0005
Revises:
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from attrib.storage.revisions import revision_triggers

revision = "0005"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA_VERSION = "5"


def _required(name: str, kind: sa.types.TypeEngine[Any], **options: Any) -> sa.Column[Any]:
    return sa.Column(name, kind, nullable=False, **options)


def _id() -> sa.Column[Any]:
    return sa.Column("id", sa.Integer(), primary_key=True)


def _created() -> sa.Column[Any]:
    return _required("created_at", sa.DateTime())


def _refers(name: str, target: str, primary: bool = False, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.Integer(), sa.ForeignKey(target, ondelete="CASCADE"), nullable=nullable,
                     primary_key=primary, index=not (primary or nullable))


def upgrade() -> None:
    auto = {"sqlite_autoincrement": True}
    op.create_table("meta", sa.Column("key", sa.String(64), primary_key=True), _required("value", sa.Text()))
    op.create_table("generators", _id(),
                    _required("name", sa.String(200), unique=True),
                    sa.Column("family", sa.String(200)),
                    sa.Column("note", sa.Text()),
                    _created(), **auto)
    op.create_table("samples", _id(),
                    _refers("generator_id", "generators.id"),
                    _required("sha256", sa.String(64), unique=True),
                    _required("path", sa.Text()),
                    _required("size_bytes", sa.Integer()),
                    _required("format", sa.String(32)),
                    _required("width", sa.Integer()),
                    _required("height", sa.Integer()),
                    _created(), **auto)
    op.create_table("extractors", _id(),
                    _required("key", sa.Text(), unique=True),
                    _required("name", sa.String(200), index=True),
                    _required("version", sa.String(64)),
                    _required("options_json", sa.Text()),
                    _required("dim", sa.Integer()),
                    _created(),
                    _required("revision", sa.Integer(), server_default="0"), **auto)
    op.create_table("vectors", _id(),
                    _refers("sample_id", "samples.id"),
                    _refers("extractor_id", "extractors.id"),
                    _required("data", sa.LargeBinary()),
                    sa.UniqueConstraint("sample_id", "extractor_id"), **auto)
    op.create_table("calibrations", _id(),
                    _refers("extractor_id", "extractors.id"),
                    _refers("generator_id", "generators.id", nullable=True),  # NULL: the global threshold
                    _required("threshold", sa.Double()),
                    _required("method", sa.String(64)),
                    _required("target_far", sa.Double()),
                    _required("n_genuine", sa.Integer()),
                    _required("n_impostor", sa.Integer()),
                    sa.Column("tar", sa.Double()),
                    sa.Column("separation", sa.Double()),
                    _created(),
                    sa.Column("revision", sa.Integer()), **auto)
    op.create_table("backends",
                    _refers("extractor_id", "extractors.id", primary=True),
                    _required("kind", sa.String(32)),
                    _required("params", sa.LargeBinary()),
                    _required("n_fitted", sa.Integer()),
                    _created(),
                    sa.Column("revision", sa.Integer()))
    op.create_table("cohorts",
                    _refers("extractor_id", "extractors.id", primary=True),
                    _required("version", sa.String(32)),
                    _required("count", sa.Integer()),
                    _required("data", sa.LargeBinary()),
                    _created())
    op.create_table("decision_models",
                    _refers("extractor_id", "extractors.id", primary=True),
                    _required("params", sa.Text()),
                    _created())
    op.create_table("audit", _id(),
                    _required("at", sa.DateTime()),
                    _required("action", sa.String(64)),
                    _required("detail", sa.Text()), **auto)
    for statement in revision_triggers(op.get_context().dialect.name):
        op.execute(statement)
    op.bulk_insert(sa.table("meta", sa.column("key"), sa.column("value")),
                   [{"key": "schema_version", "value": SCHEMA_VERSION}])


def downgrade() -> None:
    raise NotImplementedError("a gallery is never migrated back; restore a backup made before the upgrade")
