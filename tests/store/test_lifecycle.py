"""Ticket lifecycle on SQLite and on the real PostgreSQL server: references under concurrency,
transitions, append-only history, citizen notices, agency isolation."""

from __future__ import annotations

import asyncio
import re

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from webhook.store import lifecycle, tickets
from webhook.store.db import HistoryIsAppendOnly, OutboxMessage, TicketEvent, session_factory


def report(n: int, commune: str = "39198", report_type: str = "incivilite") -> tickets.NewReport:
    return tickets.NewReport(
        report_type=report_type,
        commune_insee=commune,
        fields={"description": f"bruit numéro {n}"},
        channel="web",
        conversation_id=f"web-sender{n}",
        idempotency_key=f"key-{commune}-{report_type}-{n}",
    )


async def test_200_concurrent_filings_get_unique_references(db_engine: AsyncEngine) -> None:
    sessions = session_factory(db_engine)
    jura = [tickets.file_report(sessions, report(n, "39198")) for n in range(100)]
    ahp = [tickets.file_report(sessions, report(n, "04070")) for n in range(100)]
    results = await asyncio.gather(*jura, *ahp)
    references = [ticket.reference for ticket, _ in results]
    assert all(created for _, created in results)
    assert len(set(references)) == 200
    for dep in ("39", "04"):
        numbers = sorted(
            int(ref.rsplit("-", 1)[1]) for ref in references if ref.startswith(f"{dep}-")
        )
        assert numbers == list(range(1, 101))
    assert all(re.fullmatch(r"(39|04)-\d{4}-\d{6}", ref) for ref in references)
    # every accepted report has its dashboard deliveries queued in the same transaction
    async with sessions() as session:
        rows = (await session.execute(select(OutboxMessage))).scalars().all()
    per_ticket = {r.ticket_id for r in rows if r.kind == "dashboard"}
    assert per_ticket == {t.id for t, _ in results}


async def test_transitions_history_and_citizen_notices(db_engine: AsyncEngine) -> None:
    sessions = session_factory(db_engine)
    ticket, _ = await tickets.file_report(sessions, report(1))
    agency = ticket.destinations[0].agency_id

    with pytest.raises(lifecycle.TransitionError):
        await lifecycle.change_status(sessions, ticket.id, "transmitted", "agent:a")
    with pytest.raises(lifecycle.TransitionError):
        await lifecycle.change_status(sessions, ticket.id, "archived", "agent:a")
    with pytest.raises(lifecycle.TicketNotFound):
        await lifecycle.change_status(sessions, 999_999, "closed", "agent:a")

    acked = await lifecycle.acknowledge(sessions, ticket.id, "agent:alice")
    assert acked.status == "acknowledged"
    with pytest.raises(lifecycle.TransitionError, match="cannot go from 'acknowledged'"):
        await lifecycle.acknowledge(sessions, ticket.id, "agent:alice")
    await lifecycle.change_status(sessions, ticket.id, "in_progress", "agent:bob", "Patrouille")
    answered = await lifecycle.answer(sessions, ticket.id, "agent:bob", "Nous passerons ce soir.")
    assert answered.status == "in_progress"
    closed = await lifecycle.change_status(sessions, ticket.id, "closed", "agent:bob")
    reopened = await lifecycle.change_status(sessions, ticket.id, "in_progress", "agent:carol")
    assert closed.status == "closed" and reopened.status == "in_progress"
    redirected = await lifecycle.change_status(sessions, ticket.id, "redirected", "agent:carol")
    with pytest.raises(lifecycle.TransitionError):
        await lifecycle.change_status(sessions, ticket.id, "in_progress", "agent:carol")

    history = [(e.kind, e.actor, e.status_from, e.status_to) for e in redirected.events]
    assert history == [
        ("status", "citizen:web", None, "received"),
        ("status", "agent:alice", "received", "acknowledged"),
        ("status", "agent:bob", "acknowledged", "in_progress"),
        ("answer", "agent:bob", "in_progress", "in_progress"),
        ("status", "agent:bob", "in_progress", "closed"),
        ("status", "agent:carol", "closed", "in_progress"),
        ("status", "agent:carol", "in_progress", "redirected"),
    ]
    # each change and the answer queued one French notice for the citizen, in their channel
    async with sessions() as session:
        notices = (
            (
                await session.execute(
                    select(OutboxMessage)
                    .where(OutboxMessage.kind == "citizen")
                    .order_by(OutboxMessage.id)
                )
            )
            .scalars()
            .all()
        )
    assert len(notices) == 6
    assert all(n.channel == "web" and n.payload["recipient"] == "sender1" for n in notices)
    assert all(ticket.reference in n.payload["text"] for n in notices)
    assert "pris en compte" in notices[0].payload["text"]
    assert "Patrouille" in notices[1].payload["text"]
    assert "Nous passerons ce soir." in notices[2].payload["text"]
    assert "réorienté" in notices[5].payload["text"]
    assert len({n.idempotency_key for n in notices}) == 6
    # the agency sees it, with its filters
    listed = await lifecycle.tickets_for_agency(sessions, agency, status="redirected")
    assert [t.id for t in listed] == [ticket.id]
    assert await lifecycle.tickets_for_agency(sessions, agency, status="closed") == []


async def test_history_is_append_only(db_engine: AsyncEngine) -> None:
    sessions = session_factory(db_engine)
    ticket, _ = await tickets.file_report(sessions, report(2))
    await lifecycle.acknowledge(sessions, ticket.id, "agent:alice")
    async with sessions() as session:
        event = (
            (await session.execute(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id)))
            .scalars()
            .first()
        )
        assert event is not None
        event.actor = "someone else"
        with pytest.raises(HistoryIsAppendOnly):
            await session.commit()
    async with sessions() as session:
        event = (
            (await session.execute(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id)))
            .scalars()
            .first()
        )
        assert event is not None
        await session.delete(event)
        with pytest.raises(HistoryIsAppendOnly):
            await session.commit()
    stored = await tickets.get_by_reference(sessions, ticket.reference)
    assert stored is not None
    assert [e.actor for e in stored.events] == ["citizen:web", "agent:alice"]


async def test_concurrent_changes_of_one_ticket_are_serialised(db_engine: AsyncEngine) -> None:
    sessions = session_factory(db_engine)
    ticket, _ = await tickets.file_report(sessions, report(3))
    outcomes = await asyncio.gather(
        *(lifecycle.acknowledge(sessions, ticket.id, f"agent:{n}") for n in range(10)),
        return_exceptions=True,
    )
    assert sum(not isinstance(o, BaseException) for o in outcomes) == 1
    assert all(
        isinstance(o, lifecycle.TransitionError) for o in outcomes if isinstance(o, BaseException)
    )
    stored = await tickets.get_by_reference(sessions, ticket.reference)
    assert stored is not None
    assert [e.status_to for e in stored.events] == ["received", "acknowledged"]


async def test_an_agency_only_reaches_its_own_tickets(db_engine: AsyncEngine) -> None:
    sessions = session_factory(db_engine)
    jura, _ = await tickets.file_report(sessions, report(4, "39198"))
    ahp, _ = await tickets.file_report(sessions, report(4, "04070"))
    jura_agencies = {d.agency_id for d in jura.destinations}
    ahp_agencies = {d.agency_id for d in ahp.destinations}
    assert jura_agencies.isdisjoint(ahp_agencies)
    jura_agency = sorted(jura_agencies)[0]

    for key in (jura.id, str(jura.id), jura.reference):
        found = await lifecycle.ticket_for_agency(sessions, jura_agency, key)
        assert found is not None and found.id == jura.id
    for key in (ahp.id, str(ahp.id), ahp.reference, "not-a-reference", "1 OR 1=1"):
        assert await lifecycle.ticket_for_agency(sessions, jura_agency, key) is None
    listed = await lifecycle.tickets_for_agency(sessions, jura_agency)
    assert [t.id for t in listed] == [jura.id]
    assert await lifecycle.tickets_for_agency(sessions, jura_agency, commune_insee="04070") == []
    assert await lifecycle.tickets_for_agency(sessions, jura_agency, report_type="arnaque") == []
