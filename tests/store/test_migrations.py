"""Migration 0002 goes down to 0001 and up again on SQLite and PostgreSQL, keeping tickets."""

from __future__ import annotations

from alembic import command
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from webhook.store import tickets
from webhook.store.db import alembic_config, session_factory


def _alembic(connection: Connection, action: str, revision: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    getattr(command, action)(cfg, revision)


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def _event_columns(connection: Connection) -> set[str]:
    return {c["name"] for c in inspect(connection).get_columns("ticket_events")}


async def test_0002_downgrade_and_upgrade(db_engine: AsyncEngine) -> None:
    ticket, _ = await tickets.file_report(
        session_factory(db_engine),
        tickets.NewReport("incivilite", "39198", {"description": "tags"}, channel="api"),
    )
    new_tables = {"agents", "api_tokens", "agency_channels", "outbox", "citizen_messages"}
    async with db_engine.begin() as conn:
        assert new_tables <= await conn.run_sync(_tables)
        await conn.run_sync(_alembic, "downgrade", "0001")
    async with db_engine.begin() as conn:
        assert not new_tables & await conn.run_sync(_tables)
        assert "kind" not in await conn.run_sync(_event_columns)
        await conn.run_sync(_alembic, "upgrade", "head")
    async with db_engine.begin() as conn:
        assert new_tables <= await conn.run_sync(_tables)
        kinds = await conn.execute(text("SELECT kind, visible_to_citizen FROM ticket_events"))
        assert [tuple(r) for r in kinds] == [("status", True)]
        refs = (await conn.execute(text("SELECT reference FROM tickets"))).scalars().all()
    assert refs == [ticket.reference]
