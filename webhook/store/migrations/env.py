"""Alembic environment: migrations run on a connection handed over by
``webhook.store.db.migrate``."""

from __future__ import annotations

from alembic import context

from webhook.store.db import Base

target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError(
            "run migrations through webhook.store.db.migrate() or `tranquillite db-upgrade`"
        )
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("offline migrations are not supported")
run_migrations_online()
