"""Migrations 0004_veille, 0005_veille_waves and 0006_veille_epci go down to 0003_security and up
again on SQLite and PostgreSQL, keeping tickets; 0005 fills the sub-kind of tickets filed before
it, 0006 their EPCI."""

from __future__ import annotations

import datetime as dt

from alembic import command
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine
from veille_support import NOW, file_at

from webhook.store.db import alembic_config, session_factory

VEILLE_TABLES = {"veille_alerts", "veille_queue", "veille_channels", "store_meta"}


def _alembic(connection: Connection, action: str, revision: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    getattr(command, action)(cfg, revision)


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def _columns(connection: Connection, table: str) -> set[str]:
    return {c["name"] for c in inspect(connection).get_columns(table)}


def _indexes(connection: Connection, table: str) -> set[str]:
    return {str(i["name"]) for i in inspect(connection).get_indexes(table)}


def _index_columns(connection: Connection, table: str, name: str) -> list[str]:
    found = [i for i in inspect(connection).get_indexes(table) if i["name"] == name]
    return [str(c) for c in found[0]["column_names"]]


async def test_veille_migrations_go_down_and_up_keeping_tickets(db_engine: AsyncEngine) -> None:
    sessions = session_factory(db_engine)
    ticket = await file_at(sessions, NOW - dt.timedelta(days=1))
    national = await file_at(
        sessions,
        NOW - dt.timedelta(days=2),
        commune=None,  # type: ignore[arg-type]
        report_type="incivilite",
        fields={},
    )
    async with db_engine.begin() as conn:
        assert VEILLE_TABLES <= await conn.run_sync(_tables)
        await conn.run_sync(_alembic, "downgrade", "0005_veille_waves")
        assert "epci_siren" not in await conn.run_sync(_columns, "tickets")
        assert not {
            "ix_tickets_veille_epci",
            "ix_tickets_veille_departement",
        } & await conn.run_sync(_indexes, "tickets")
        await conn.run_sync(_alembic, "downgrade", "0004_veille")
        assert "subtype" not in await conn.run_sync(_columns, "tickets")
        assert "veille_alert_tickets" in await conn.run_sync(_tables)
        await conn.run_sync(_alembic, "downgrade", "0003_security")
    async with db_engine.begin() as conn:
        assert not VEILLE_TABLES & await conn.run_sync(_tables)
        assert "territory" not in await conn.run_sync(_columns, "agents")
        assert "alert_id" not in await conn.run_sync(_columns, "outbox")
        await conn.run_sync(_alembic, "upgrade", "head")
    async with db_engine.begin() as conn:
        assert VEILLE_TABLES <= await conn.run_sync(_tables)
        assert "veille_alert_tickets" not in await conn.run_sync(_tables)
        epci = await conn.run_sync(_index_columns, "tickets", "ix_tickets_veille_epci")
        departement = await conn.run_sync(
            _index_columns, "tickets", "ix_tickets_veille_departement"
        )
        # covering on SQLite (index-only counts), narrow on PostgreSQL (see webhook.store.db)
        if conn.dialect.name == "sqlite":
            assert epci[4:] == ["status", "subtype", "commune_insee", "conversation_id"]
            assert departement[3:] == ["status", "subtype", "conversation_id"]
        else:
            assert epci == ["epci_siren", "departement", "report_type", "created_at", "subtype"]
            assert departement == ["departement", "report_type", "created_at"]
        rows = (
            await conn.execute(
                text("SELECT reference, subtype, epci_siren FROM tickets ORDER BY id")
            )
        ).all()
    # the sub-kind of a ticket filed before 0005 is read from its answer, its EPCI (0006) from
    # its commune; a report without a commune has none
    assert [tuple(r) for r in rows] == [
        (ticket.reference, "faux_conseiller", "240400440"),
        (national.reference, None, None),
    ]
