"""A report whose agency nobody receives for (a service the reference data did not identify)
also goes to one that can, and operators see the agencies to set up (issue 13)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

import routing
from webhook.agency import auth
from webhook.store import tickets
from webhook.store.db import session_factory

LONS = "39300"  # Jura: its vulnerable adults' cell is not identified in the sources
SISTERON = "04209"  # Alpes-de-Haute-Provence: its cell is known


def vulnerable(commune: str, key: str) -> tickets.NewReport:
    return tickets.NewReport(
        report_type="personne_vulnerable",
        commune_insee=commune,
        fields={"danger_now": "non", "personne": "personne_agee", "lieu_vie": "domicile"},
        idempotency_key=key,
    )


def test_the_jura_cell_is_to_configure_and_the_force_is_not() -> None:
    engine = routing.get_engine()
    assert engine.agency("39-adultes-vulnerables").to_configure
    assert not engine.agency("39-adultes-vulnerables").placeholder  # still the competent one
    assert all(not engine.agency(a).to_configure for a in engine.force_agencies(LONS))


async def test_a_stranded_report_also_goes_to_the_force_until_the_agency_is_set_up(
    db_engine: AsyncEngine,
) -> None:
    sessions = session_factory(db_engine)
    engine = routing.get_engine()
    force = engine.force_agencies(LONS)[0]

    ticket, _ = await tickets.file_report(sessions, vulnerable(LONS, "stranded-1"))
    by_agency = {d.agency_id: d for d in ticket.destinations}
    assert by_agency["39-adultes-vulnerables"].role == "primary"
    assert by_agency[force].role == "copy"
    assert by_agency[force].rule_id == tickets.FALLBACK_RULE_ID

    warnings = await tickets.agencies_without_channel(sessions)
    assert [w["agency_id"] for w in warnings] == ["39-adultes-vulnerables"]
    assert warnings[0]["tickets"] == 1

    # an agency whose cell is known gets no copy
    known, _ = await tickets.file_report(sessions, vulnerable(SISTERON, "stranded-2"))
    assert all(d.rule_id != tickets.FALLBACK_RULE_ID for d in known.destinations)

    # once someone receives for the Jura cell, its reports go to it alone
    await auth.create_agent(
        sessions, "39-adultes-vulnerables", "cellule39", "un mot de passe assez long", "agent"
    )
    ticket, _ = await tickets.file_report(sessions, vulnerable(LONS, "stranded-3"))
    assert [d.agency_id for d in ticket.destinations] == ["39-adultes-vulnerables"]
    assert await tickets.agencies_without_channel(sessions) == []
