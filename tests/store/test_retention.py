"""Retention purge on SQLite and PostgreSQL: personal data removed after the period of the report
type, aggregate data kept; the `tranquillite purge` command on a real database file."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from store_support import database_url

from webhook.config import PROJECT_ROOT
from webhook.delivery.outbox import OutboxConfig, OutboxWorker
from webhook.store import lifecycle, tickets
from webhook.store.db import CitizenMessage, OutboxMessage, Ticket, session_factory, utcnow
from webhook.store.retention import PolicyError, RetentionPolicy, purge

PERSONAL = "Marie Martin, 07 11 22 33 44, 3 chemin des Vignes"


def report(report_type: str, n: int) -> tickets.NewReport:
    return tickets.NewReport(
        report_type=report_type,
        commune_insee="04070",
        fields={"description": f"{report_type} {n}", "contact": PERSONAL},
        channel="web",
        conversation_id=f"web-retention{n}",
        anonymous=False,
        idempotency_key=f"retention-{report_type}-{n}",
    )


async def age(engine: AsyncEngine, ticket_id: int, days: int) -> None:
    async with session_factory(engine)() as session, session.begin():
        await session.execute(
            update(Ticket)
            .where(Ticket.id == ticket_id)
            .values(updated_at=utcnow() - dt.timedelta(days=days))
        )


async def test_purge_anonymises_after_the_period_of_each_type(db_engine: AsyncEngine) -> None:
    sessions = session_factory(db_engine)
    policy = RetentionPolicy.load()
    assert policy.days_for("absence_vacances") == 30 and policy.days_for("arnaque") == 365

    otv_old, _ = await tickets.file_report(sessions, report("absence_vacances", 1))
    otv_recent, _ = await tickets.file_report(sessions, report("absence_vacances", 2))
    scam_40_days, _ = await tickets.file_report(sessions, report("arnaque", 3))
    scam_old, _ = await tickets.file_report(sessions, report("arnaque", 4))
    await lifecycle.acknowledge(sessions, scam_old.id, "agent:alice")
    await lifecycle.answer(sessions, scam_old.id, "agent:alice", f"Rappel de {PERSONAL}")
    await OutboxWorker(sessions, OutboxConfig(backoff_base=0.1)).drain()
    await age(db_engine, otv_old.id, 31)
    await age(db_engine, otv_recent.id, 29)
    await age(db_engine, scam_40_days.id, 40)
    await age(db_engine, scam_old.id, 400)

    dry = await purge(sessions, policy, dry_run=True)
    assert dict(dry.per_type) == {"absence_vacances": 1, "arnaque": 1}
    async with sessions() as session:
        assert (await session.get(Ticket, otv_old.id)).purged_at is None  # type: ignore[union-attr]

    done = await purge(sessions, policy)
    assert dict(done.per_type) == {"absence_vacances": 1, "arnaque": 1}
    assert (await purge(sessions, policy)).total == 0  # idempotent

    purged_ids = {otv_old.id, scam_old.id}
    async with sessions() as session:
        all_tickets = (await session.execute(select(Ticket))).scalars().all()
        outbox_rows = (await session.execute(select(OutboxMessage))).scalars().all()
        kept_messages = (await session.execute(select(CitizenMessage))).scalars().all()
    for ticket in all_tickets:
        if ticket.id in purged_ids:
            assert ticket.purged_at is not None
            assert ticket.fields == {} and ticket.conversation_id is None
            assert ticket.idempotency_key is None
            assert all(e.note is None for e in ticket.events if e.kind != "delivery")
            # aggregate data stay: type, commune, status, dates, history (who/when/what)
            assert ticket.commune_insee == "04070" and ticket.reference
            assert ticket.created_at is not None and ticket.destinations
        else:
            assert ticket.purged_at is None and ticket.fields["contact"] == PERSONAL
    scam = next(t for t in all_tickets if t.id == scam_old.id)
    assert [(e.kind, e.status_to) for e in scam.events if e.kind != "delivery"] == [
        ("status", "received"),
        ("status", "acknowledged"),
        ("answer", "acknowledged"),
    ]
    assert scam.status == "acknowledged"
    assert all(r.payload == {} for r in outbox_rows if r.ticket_id in purged_ids)
    assert all(r.payload for r in outbox_rows if r.ticket_id not in purged_ids)
    assert not any(m.ticket_id in purged_ids for m in kept_messages)
    assert any(m.ticket_id == otv_recent.id for m in kept_messages)


def test_policy_file_is_validated(tmp_path: Path) -> None:
    bad = tmp_path / "retention.yml"
    bad.write_text("default_days: 365\nreport_types:\n  pas_un_type: 10\n")
    with pytest.raises(PolicyError, match="unknown report type"):
        RetentionPolicy.load(bad)
    bad.write_text("default_days: 0\n")
    with pytest.raises(PolicyError, match="default_days"):
        RetentionPolicy.load(bad)


async def test_purge_command(tmp_path: Path) -> None:
    from webhook.store.db import create_engine, migrate

    url = f"sqlite+aiosqlite:///{tmp_path / 'purge.db'}"
    engine = create_engine(url)
    await migrate(engine)
    sessions = session_factory(engine)
    old, _ = await tickets.file_report(sessions, report("incivilite", 1))
    await age(engine, old.id, 181)
    env = {**os.environ, "TRANQUILLITE_DATABASE_URL": database_url(engine)}

    def run(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "webhook.cli", "purge", *args],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        assert PERSONAL not in done.stdout + done.stderr
        return done.stdout

    assert "1 ticket(s) would be anonymised" in run("--dry-run")
    assert "incivilite" in run("--dry-run")
    assert "1 ticket(s) anonymised" in run()
    assert "0 ticket(s) anonymised" in run()
    async with sessions() as session:
        stored = await session.get(Ticket, old.id)
        assert stored is not None and stored.fields == {} and stored.purged_at is not None
    await engine.dispose()
