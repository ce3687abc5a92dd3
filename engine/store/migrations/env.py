"""Alembic environment of the store's migrations.

Run programmatically by ``engine.store.db.upgrade_database`` (which passes its own connection,
already in a transaction and holding the migration lock, in ``config.attributes``). Used
directly by Alembic's commands when ``sqlalchemy.url`` is set in the configuration (see
docs/store.md, "Migrations").
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from engine.store.schema import Base

config = context.config
target_metadata = Base.metadata


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        transactional_ddl=True,  # SQLite DDL is transactional too, under our explicit BEGIN
    )


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    from engine.store.db import make_engine, normalise_url

    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no sqlalchemy.url in the Alembic configuration")
    engine = make_engine(normalise_url(url))
    try:
        with engine.begin() as conn:
            _configure(conn)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
