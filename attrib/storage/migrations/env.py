"""Alembic's environment for the gallery schema: runs on the connection :func:`upgrade` passes (inside
its transaction), else on ``sqlalchemy.url``; SQLite gets batch mode, so revisions can alter tables."""

from alembic import context
from alembic.util import CommandError
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection

from attrib.storage.models import Base

config = context.config


def run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=Base.metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=Base.metadata,
                      literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif config.attributes.get("connection") is not None:
    run(config.attributes["connection"])
else:
    url = config.get_main_option("sqlalchemy.url")
    if url is None:
        raise CommandError("no connection given and no sqlalchemy.url in the Alembic configuration")
    with create_engine(url).begin() as connection:
        run(connection)
