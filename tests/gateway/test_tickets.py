"""Ticket store on SQLite and on the real PostgreSQL server."""

from __future__ import annotations

import asyncio
import re

from sqlalchemy.ext.asyncio import AsyncEngine

from webhook.store import tickets
from webhook.store.db import session_factory


def report(n: int, commune: str = "39198") -> tickets.NewReport:
    return tickets.NewReport(
        report_type="incivilite",
        commune_insee=commune,
        fields={"description": f"bruit numéro {n}"},
        idempotency_key=f"key-{commune}-{n}",
    )


async def test_concurrent_filings_get_unique_references(db_engine: AsyncEngine) -> None:
    sessions = session_factory(db_engine)
    results = await asyncio.gather(*(tickets.file_report(sessions, report(n)) for n in range(50)))
    references = [ticket.reference for ticket, created in results]
    assert all(created for _, created in results)
    assert len(set(references)) == 50
    assert all(re.fullmatch(r"39-\d{4}-\d{6}", ref) for ref in references)
    numbers = sorted(int(ref.rsplit("-", 1)[1]) for ref in references)
    assert numbers == list(range(1, 51))


async def test_references_are_counted_per_departement(db_engine: AsyncEngine) -> None:
    sessions = session_factory(db_engine)
    jura, _ = await tickets.file_report(sessions, report(1, "39198"))
    ahp, _ = await tickets.file_report(sessions, report(1, "04070"))
    assert jura.reference.endswith("-000001") and jura.reference.startswith("39-")
    assert ahp.reference.endswith("-000001") and ahp.reference.startswith("04-")


async def test_same_idempotency_key_files_once(db_engine: AsyncEngine) -> None:
    sessions = session_factory(db_engine)
    results = await asyncio.gather(*(tickets.file_report(sessions, report(7)) for _ in range(5)))
    assert len({ticket.reference for ticket, _ in results}) == 1
    assert sum(created for _, created in results) == 1


async def test_ticket_keeps_decision_and_history(db_engine: AsyncEngine) -> None:
    sessions = session_factory(db_engine)
    ticket, _ = await tickets.file_report(sessions, report(3))
    stored = await tickets.get_by_reference(sessions, ticket.reference)
    assert stored is not None
    assert stored.status == "received"
    assert [e.status_to for e in stored.events] == ["received"]
    assert stored.decision["destinations"]
    assert {d.agency_id for d in stored.destinations} == {
        d["agency_id"] for d in stored.decision["destinations"]
    }
