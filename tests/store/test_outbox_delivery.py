"""Outbox delivery on SQLite and PostgreSQL to real peers: a local SMTP server, a local HTTP
receiver that checks the HMAC signature, retries with backoff, giving up, the history."""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import replace

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from store_support import RECEIVER_SECRET, MailBox, Receiver, add_channel

from webhook.delivery.outbox import OutboxConfig, OutboxWorker, claim
from webhook.security.clients import parse_networks
from webhook.security.netguard import TargetPolicy
from webhook.store import tickets
from webhook.store.db import OutboxMessage, session_factory

CONFIG = OutboxConfig(
    poll_seconds=0.05,
    lease_seconds=30,
    max_attempts=3,
    backoff_base=0.2,
    backoff_max=1.0,
    delivery_timeout=10,
    smtp_from="tranquillite@example.org",
    dashboard_url="https://tranquillite.example.org/dashboard",
    # the test receiver is a plain-http server on this machine: the operator allows it
    webhook_policy=TargetPolicy(allow_http=True, allowed_networks=parse_networks(["127.0.0.0/8"])),
)
SECRET_TEXT = "Jean Dupont au 06 12 34 56 78, 12 rue des Arènes"


def report(n: int, commune: str = "39198") -> tickets.NewReport:
    return tickets.NewReport(
        report_type="vol_cambriolage",
        commune_insee=commune,
        fields={"description": f"vol de vélo {n}", "contact": SECRET_TEXT},
        channel="web",
        conversation_id=f"web-citizen{n}",
        anonymous=False,
        idempotency_key=f"delivery-{commune}-{n}",
    )


async def rows(engine: AsyncEngine) -> list[OutboxMessage]:
    async with session_factory(engine)() as session:
        result = await session.execute(select(OutboxMessage).order_by(OutboxMessage.id))
        return list(result.scalars().all())


async def run_until_settled(worker: OutboxWorker, engine: AsyncEngine, timeout: float) -> None:
    """Run the worker until no agency delivery is pending."""
    deadline = time.monotonic() + timeout
    while any(r.status == "pending" for r in await rows(engine)):
        assert time.monotonic() < deadline, "outbox not settled in time"
        if not await worker.run_once():
            await asyncio.sleep(0.05)


async def test_email_and_signed_webhook_are_delivered(
    db_engine: AsyncEngine, receiver: Receiver, smtp_server: tuple[MailBox, int]
) -> None:
    box, smtp_port = smtp_server
    sessions = session_factory(db_engine)
    probe, _ = await tickets.file_report(sessions, report(0))
    agency = probe.destinations[0].agency_id
    await add_channel(db_engine, agency, "email", "accueil@brigade.example.org")
    await add_channel(db_engine, agency, "webhook", receiver.url, RECEIVER_SECRET)
    ticket, _ = await tickets.file_report(sessions, report(1))

    worker = OutboxWorker(sessions, replace(CONFIG, smtp_host="127.0.0.1", smtp_port=smtp_port))
    await run_until_settled(worker, db_engine, 30)

    mine = [r for r in await rows(db_engine) if r.ticket_id == ticket.id]
    assert sorted(r.kind for r in mine) == ["citizen", "dashboard", "email", "webhook"]
    assert all(r.status == "delivered" and r.attempts == 1 for r in mine)

    # e-mail: reference, type, commune, dashboard link; never the content or the contact
    assert len(box.messages) == 1
    recipients, mail = box.messages[0]
    assert recipients == ["accueil@brigade.example.org"]
    body = mail.get_payload(decode=True).decode()
    assert ticket.reference in mail["Subject"] and "Vol ou cambriolage" in mail["Subject"]
    assert "Dole (39198)" in body
    assert f"https://tranquillite.example.org/dashboard/tickets/{ticket.reference}" in body
    assert "vélo" not in body and "Dupont" not in body and "06 12" not in body
    assert mail["X-Tranquillite-Idempotency-Key"] == f"email:{ticket.reference}:{agency}:1"

    # webhook: signature verified by the receiver, idempotency key, full ticket
    assert receiver.rejected_signatures == 0
    assert receiver.keys == [f"webhook:{ticket.reference}:{agency}:2"]
    sent = receiver.requests[0]["body"]["ticket"]
    assert sent["reference"] == ticket.reference
    assert sent["fields"]["description"] == "vol de vélo 1"
    assert sent["created_at"].endswith("+00:00")

    stored = await tickets.get_by_reference(sessions, ticket.reference)
    assert stored is not None and stored.status == "transmitted"
    assert [(e.kind, e.status_to) for e in stored.events] == [
        ("status", "received"),
        ("delivery", "received"),
        ("delivery", "received"),
        ("delivery", "received"),
        ("status", "transmitted"),
    ]
    assert all(not e.visible_to_citizen for e in stored.events if e.kind == "delivery")
    assert all(d.visible_at is not None for d in stored.destinations)


async def test_webhook_retries_with_backoff_then_succeeds(
    db_engine: AsyncEngine, receiver: Receiver
) -> None:
    sessions = session_factory(db_engine)
    probe, _ = await tickets.file_report(sessions, report(0, "04070"))
    agency = probe.destinations[0].agency_id
    await add_channel(db_engine, agency, "webhook", receiver.url, RECEIVER_SECRET)
    receiver.fail_first = 2
    ticket, _ = await tickets.file_report(sessions, report(1, "04070"))

    worker = OutboxWorker(sessions, replace(CONFIG, max_attempts=5))
    await run_until_settled(worker, db_engine, 30)

    webhook = next(r for r in await rows(db_engine) if r.kind == "webhook")
    assert webhook.status == "delivered" and webhook.attempts == 3
    tries = [r for r in receiver.requests if r["key"] == webhook.idempotency_key]
    assert [t["accepted"] for t in tries] == [False, False, True]
    gaps = [b["at"] - a["at"] for a, b in itertools.pairwise(tries)]
    # exponential backoff with jitter: [base/2, base] then [base, 2*base]
    assert gaps[0] >= 0.1 and gaps[1] >= 0.2, gaps
    stored = await tickets.get_by_reference(sessions, ticket.reference)
    assert stored is not None and stored.status == "transmitted"


async def test_a_delivery_is_given_up_after_max_attempts_and_the_history_says_so(
    db_engine: AsyncEngine, receiver: Receiver
) -> None:
    sessions = session_factory(db_engine)
    probe, _ = await tickets.file_report(sessions, report(0))
    agency = probe.destinations[0].agency_id
    # the agency's receiver checks signatures with another key: every delivery is refused
    await add_channel(db_engine, agency, "webhook", receiver.url, "not-the-receiver-key")
    ticket, _ = await tickets.file_report(sessions, report(1))

    worker = OutboxWorker(sessions, CONFIG)
    await run_until_settled(worker, db_engine, 30)

    webhook = next(r for r in await rows(db_engine) if r.kind == "webhook")
    assert webhook.status == "failed" and webhook.attempts == CONFIG.max_attempts
    assert webhook.last_error == "HTTP 401"
    assert receiver.rejected_signatures == CONFIG.max_attempts and receiver.keys == []
    stored = await tickets.get_by_reference(sessions, ticket.reference)
    assert stored is not None
    notes = [e.note or "" for e in stored.events if e.kind == "delivery"]
    assert any("webhook delivery" in n and "failed after 3 attempts: HTTP 401" in n for n in notes)
    # the dashboard got it: the ticket is still transmitted
    assert stored.status == "transmitted"


async def test_email_without_smtp_server_is_retried_not_lost(db_engine: AsyncEngine) -> None:
    sessions = session_factory(db_engine)
    probe, _ = await tickets.file_report(sessions, report(0))
    agency = probe.destinations[0].agency_id
    await add_channel(db_engine, agency, "email", "accueil@brigade.example.org")
    await tickets.file_report(sessions, report(1))
    # port 9 (discard) is closed here: connection refused
    worker = OutboxWorker(sessions, replace(CONFIG, smtp_host="127.0.0.1", smtp_port=9))
    await worker.run_once()
    email = next(r for r in await rows(db_engine) if r.kind == "email")
    assert email.status == "pending" and email.attempts == 1
    assert email.last_error == "ConnectionRefusedError"
    assert email.next_attempt_at is not None and email.locked_until is None


async def test_concurrent_claims_are_disjoint_and_bounded(db_engine: AsyncEngine) -> None:
    sessions = session_factory(db_engine)
    await asyncio.gather(*(tickets.file_report(sessions, report(n)) for n in range(12)))
    config = replace(CONFIG, batch_size=3)
    claims = await asyncio.gather(
        *(claim(sessions, f"worker-{n}", config, frozenset({"web"})) for n in range(4))
    )
    assert all(len(c) <= 3 for c in claims)
    flat = [i for c in claims for i in c]
    assert len(flat) == len(set(flat)) == 12  # every due row claimed once, by one worker
    # leased rows are not claimed again until the lease expires
    assert await claim(sessions, "worker-late", config, frozenset({"web"})) == []
