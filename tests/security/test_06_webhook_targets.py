"""Finding 6 — SSRF: an agency admin could set a webhook delivery to http://127.0.0.1:…; the outbox
posted the full ticket there (a description with a phone number), and delivery errors in the
history made a port-scan oracle. Now webhook targets are https only and never a private,
loopback, link-local or reserved address, checked when configured and again at every
connection, after name resolution; failures are recorded coarsely."""

from __future__ import annotations

from dataclasses import replace

import httpx
import pytest
from agency_support import AGENCY_X
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from store_support import RECEIVER_SECRET, Receiver, add_channel

from webhook.agency import auth
from webhook.delivery.outbox import OutboxConfig, OutboxWorker
from webhook.store import tickets
from webhook.store.db import OutboxMessage, TicketEvent, session_factory

PERSONAL = "rappelez-moi au 06 12 34 56 78"


@pytest.mark.parametrize(
    "target",
    [
        "http://tickets.prefecture.example/hook",  # not https
        "https://127.0.0.1/hook",
        "https://127.0.0.1:8080/internal/v1/reports",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://10.1.2.3/hook",
        "https://192.168.1.1/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://0.0.0.0/hook",
        "https://localhost/hook",
        "https://user:pass@tickets.prefecture.example/hook",
    ],
)
async def test_unsafe_webhook_targets_are_refused_when_configured(
    db_engine: AsyncEngine, target: str
) -> None:
    with pytest.raises(auth.AuthError, match="webhook"):
        await auth.add_channel(session_factory(db_engine), AGENCY_X, "webhook", target)
    assert await auth.list_channels(session_factory(db_engine), AGENCY_X) == []


async def test_a_name_that_resolves_to_this_machine_is_refused_at_connection(
    receiver: Receiver,
) -> None:
    """The transport resolves the name itself and checks every address before connecting:
    ``localhost`` is loopback, whatever the URL's host says."""
    from webhook.security import netguard

    port = int(receiver.url.split(":")[2].split("/")[0])
    async with netguard.guarded_client(netguard.TargetPolicy(allow_http=True), 5.0) as client:
        with pytest.raises(httpx.ConnectError):
            await client.post(f"http://localhost:{port}/tickets", content=b"{}")
    assert receiver.requests == [] and receiver.rejected_signatures == 0


async def test_outbox_never_posts_a_ticket_to_an_internal_address(
    db_engine: AsyncEngine, receiver: Receiver
) -> None:
    """A webhook row that points inside (configured before this check existed, or written in
    the database by hand): the ticket is never sent, the history says only "refused"."""
    sessions = session_factory(db_engine)
    probe, _ = await tickets.file_report(
        sessions, tickets.NewReport("incivilite", "39198", {"description": "x"}, channel="api")
    )
    agency = probe.destinations[0].agency_id
    await add_channel(db_engine, agency, "webhook", receiver.url, RECEIVER_SECRET)
    await add_channel(
        db_engine, agency, "webhook", receiver.url.replace("http://", "https://"), RECEIVER_SECRET
    )
    ticket, _ = await tickets.file_report(
        sessions,
        tickets.NewReport("incivilite", "39198", {"description": PERSONAL}, channel="web"),
    )
    config = replace(OutboxConfig(), max_attempts=1, backoff_base=0.01, delivery_timeout=5)
    await OutboxWorker(sessions, config).drain()

    assert receiver.requests == [] and receiver.truncated == 0
    async with sessions() as session:
        rows = (
            await session.execute(
                select(OutboxMessage).where(
                    OutboxMessage.ticket_id == ticket.id, OutboxMessage.kind == "webhook"
                )
            )
        ).scalars()
        errors = {row.last_error for row in rows}
        notes = (
            (
                await session.execute(
                    select(TicketEvent.note).where(
                        TicketEvent.ticket_id == ticket.id, TicketEvent.kind == "delivery"
                    )
                )
            )
            .scalars()
            .all()
        )
    assert errors == {"destination refused"}
    assert notes and all("destination refused" in n for n in notes if "webhook" in n)
    assert not any(str(receiver.url.split(":")[2].split("/")[0]) in n for n in notes)
