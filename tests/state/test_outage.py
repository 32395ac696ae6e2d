"""The shared state's storage down: conversations go on in the gateway's memory and go back to
the storage when it answers again; the database down altogether keeps a report half-way, says
so to the citizen, and files it when the database is back (SPEC: bad input or a component down
loses nothing)."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text as sql

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS / "security") not in sys.path:
    sys.path.insert(0, str(TESTS / "security"))

from security_support import Gateway, button, settings_for, texts  # noqa: E402

from tests.conftest import POSTGRES_ADMIN_DSN  # noqa: E402
from webhook.app import create_app  # noqa: E402
from webhook.ops.bench_tickets import throwaway_postgres  # noqa: E402
from webhook.store.db import Base, create_engine, migrate  # noqa: E402
from webhook.store.state import ResilientStateBackend, SqlStateBackend, backend_for  # noqa: E402

STATE_TABLES = ("conversation_states", "conversation_notes", "rate_buckets", "state_entries")


async def _turn(backend: ResilientStateBackend, cid: str, data: dict[str, object]) -> object:
    """One turn: the lease with the saved state, then the new state saved."""
    async with backend.leased(cid, idle_seconds=3600) as lease:
        before = lease.stored.data if lease.stored is not None else None
        assert await backend.save(cid, data, owner=None, in_report=True, token=lease.token)
        lease.released = False
    return before


async def test_conversations_go_on_in_memory_while_the_state_tables_fail(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'state.db'}")
    await migrate(engine)
    backend = backend_for(engine)
    assert isinstance(backend, ResilientStateBackend)
    backend.retry_seconds = 0.0  # try the storage again at every call
    primary = backend.primary
    assert isinstance(primary, SqlStateBackend)
    try:
        assert await _turn(backend, "web-a", {"step": 1}) is None
        # the storage goes away (its tables, here): the turn goes on from this gateway's copy
        async with engine.begin() as conn:
            for table in STATE_TABLES:
                await conn.execute(sql(f"DROP TABLE {table}"))
        assert await _turn(backend, "web-a", {"step": 2}) == {"step": 1}
        assert await backend.hit("bucket", 2, 0.01) is not None  # limits keep answering
        # back: the next turn reads the memory copy and saves it back to the storage
        async with engine.begin() as conn:
            await conn.run_sync(
                lambda sync: Base.metadata.create_all(
                    sync, tables=[Base.metadata.tables[t] for t in STATE_TABLES]
                )
            )
        assert await _turn(backend, "web-a", {"step": 3}) == {"step": 2}
        stored = await primary.load("web-a", 3600)
        assert stored is not None and stored.data == {"step": 3}
    finally:
        await backend.close()
        await engine.dispose()


def _set_connections(admin_dsn: str, name: str, allowed: bool) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS {str(allowed).lower()}')
        if not allowed:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )


@pytest.fixture
def own_postgres() -> Iterator[tuple[str, str, str]]:
    """A database of its own on the real server (this test cuts it off): admin DSN, name, URL."""
    with throwaway_postgres(POSTGRES_ADMIN_DSN) as url:
        yield POSTGRES_ADMIN_DSN, url.rsplit("/", 1)[1], url


@pytest.mark.postgres
async def test_a_guided_report_survives_the_database_going_down(
    own_postgres: tuple[str, str, str], tmp_path: Path
) -> None:
    admin, name, url = own_postgres
    app = create_app(settings_for(url, tmp_path))
    citizen = f"panne-{uuid.uuid4().hex[:8]}"
    async with app.router.lifespan_context(app):
        gw = Gateway(app)
        try:
            await gw.chat(citizen, payload="/mode_guide")
            q0 = await gw.chat(citizen, payload="/guide:type:incivilite")
            q1 = await gw.chat(citizen, payload=button(q0, "Passer"))
            _set_connections(admin, name, allowed=False)  # the database goes down
            try:
                q2 = await gw.chat(citizen, payload=button(q1, "Bruit"))
                assert q2.status_code == 200, q2.text
                q3 = await gw.chat(citizen, text="Place du marché")
                await gw.chat(citizen, payload=button(q3, "Tous les jours"))
                contact = await gw.chat(citizen, text="lons le saunier")
                summary = await gw.chat(citizen, payload=button(contact, "Non, rester anonyme"))
                assert "Place du marché" in "\n".join(texts(summary))
                failed = await gw.chat(citizen, payload="/guide:send")
                assert failed.status_code == 200 and not failed.json().get("tickets")
                said = "\n".join(texts(failed))
                assert "n'a pas pu être enregistré" in said and "Rien n'est perdu" in said
            finally:
                _set_connections(admin, name, allowed=True)  # back
            filed = await gw.chat(citizen, payload="/guide:send")
            assert filed.status_code == 200, filed.text
            (ticket,) = filed.json()["tickets"]
            assert ticket["reference"]
            assert await gw.ticket_count() == 1
        finally:
            await gw.close()
