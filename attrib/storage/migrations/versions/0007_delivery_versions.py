"""Schema 7: delivery versions. ``extractors.delivery`` names the lossy coding (``jpeg:80``) that a
version's vectors were embedded after (NULL: the enrolled files as they are, every extractor row
written before); ``samples.delivery`` the coding each enrolled file showed (``jpeg:75``, ``lossless``;
NULL: enrolled before it was measured, taken as lossless). ``attrib gallery reembed --versions`` adds
versions to an older gallery.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

SCHEMA_VERSION = "7"


def upgrade() -> None:
    for table in ("extractors", "samples"):
        columns = {column["name"] for column in sa.inspect(op.get_bind()).get_columns(table)}
        if "delivery" not in columns:  # a pre-Alembic gallery's tables were created from the current models
            op.add_column(table, sa.Column("delivery", sa.String(32), nullable=True))
    meta = sa.table("meta", sa.column("key"), sa.column("value"))
    op.execute(meta.update().where(meta.c.key == "schema_version").values(value=SCHEMA_VERSION))


def downgrade() -> None:
    raise NotImplementedError("a gallery is never migrated back; restore a backup made before the upgrade")
