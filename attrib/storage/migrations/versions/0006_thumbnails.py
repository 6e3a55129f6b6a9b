"""Schema 6: a small preview of every sample (table ``thumbnails``), removed with its sample; galleries
enrolled earlier get theirs from ``attrib gallery reembed``.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SCHEMA_VERSION = "6"


def upgrade() -> None:
    op.create_table("thumbnails",
                    sa.Column("sample_id", sa.Integer(), sa.ForeignKey("samples.id", ondelete="CASCADE"),
                              primary_key=True),
                    sa.Column("format", sa.String(16), nullable=False),
                    sa.Column("width", sa.Integer(), nullable=False),
                    sa.Column("height", sa.Integer(), nullable=False),
                    sa.Column("data", sa.LargeBinary(), nullable=False))
    meta = sa.table("meta", sa.column("key"), sa.column("value"))
    op.execute(meta.update().where(meta.c.key == "schema_version").values(value=SCHEMA_VERSION))


def downgrade() -> None:
    raise NotImplementedError("a gallery is never migrated back; restore a backup made before the upgrade")
