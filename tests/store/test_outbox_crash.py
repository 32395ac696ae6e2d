"""The outbox worker as its own OS process, killed with SIGKILL in the middle of deliveries to a
slow receiver, then restarted: every ticket is delivered, none is lost (the receiver dedupes
duplicates by Idempotency-Key). On SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from store_support import RECEIVER_SECRET, Receiver, add_channel, database_url

from webhook.config import PROJECT_ROOT
from webhook.store import tickets
from webhook.store.db import OutboxMessage, Ticket, session_factory

TICKETS = 24


def start_worker(url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "TRANQUILLITE_DATABASE_URL": url,
        "TRANQUILLITE_OUTBOX_BATCH": "4",
        "TRANQUILLITE_OUTBOX_LEASE_SECONDS": "2",
        "TRANQUILLITE_OUTBOX_POLL_SECONDS": "0.1",
        "TRANQUILLITE_OUTBOX_BACKOFF_SECONDS": "0.2",
        "TRANQUILLITE_OUTBOX_TIMEOUT_SECONDS": "10",
        # the test receiver is a plain-http server on this machine: the operator allows it
        "TRANQUILLITE_WEBHOOK_ALLOW_HTTP": "1",
        "TRANQUILLITE_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "webhook.cli", "outbox-worker"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def pending(engine: AsyncEngine) -> int:
    async with session_factory(engine)() as session:
        result = await session.execute(
            select(OutboxMessage.id).where(OutboxMessage.status == "pending")
        )
        return len(result.all())


async def wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def test_kill_9_during_deliveries_loses_nothing(
    db_engine: AsyncEngine, receiver: Receiver, tmp_path: Path
) -> None:
    sessions = session_factory(db_engine)
    first, _ = await tickets.file_report(
        sessions, tickets.NewReport("incivilite", "39198", {"description": "x"}, channel="api")
    )
    agency = first.destinations[0].agency_id
    await add_channel(db_engine, agency, "webhook", receiver.url, RECEIVER_SECRET)
    filed = await asyncio.gather(
        *(
            tickets.file_report(
                sessions,
                tickets.NewReport(
                    "incivilite",
                    "39198",
                    {"description": f"dépôt sauvage {n}"},
                    channel="web",
                    conversation_id=f"web-crash{n}",
                    idempotency_key=f"crash-{n}",
                ),
            )
            for n in range(TICKETS)
        )
    )
    expected = {f"webhook:{t.reference}:{agency}:1" for t, _ in filed}
    assert len(expected) == TICKETS
    receiver.delay = 0.25
    log = tmp_path / "worker.log"
    url = database_url(db_engine)

    worker = start_worker(url, log)
    try:

        async def some_delivered() -> bool:
            return len(set(receiver.keys)) >= 6

        await wait_for(some_delivered, 60, "the first deliveries")
        os.kill(worker.pid, signal.SIGKILL)
        assert worker.wait(10) == -signal.SIGKILL
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)
    delivered_before_restart = set(receiver.keys)
    assert 6 <= len(delivered_before_restart) < TICKETS, "the kill came too late to prove much"
    assert await pending(db_engine) > 0

    restarted = start_worker(url, log)
    try:

        async def drained() -> bool:
            return await pending(db_engine) == 0

        await wait_for(drained, 120, "the outbox to drain after restart")
        restarted.send_signal(signal.SIGTERM)
        assert restarted.wait(20) == 0  # clean stop on SIGTERM
    finally:
        if restarted.poll() is None:
            restarted.kill()
            restarted.wait(10)

    received = receiver.keys
    assert set(received) == expected, "a ticket was lost"
    # at-least-once: rows in flight at the kill may have been sent twice; the key dedupes them
    assert len(received) - len(expected) <= 4
    assert receiver.rejected_signatures == 0
    assert receiver.truncated <= 1  # only the request the kill cut off, if any
    async with sessions() as session:
        rows = (await session.execute(select(OutboxMessage))).scalars().all()
        statuses = (await session.execute(select(Ticket.status))).scalars().all()
    assert {r.status for r in rows} == {"delivered"}
    assert set(statuses) == {"transmitted"}
