"""Tickets for the dashboard's triage tests (tests/agency/test_dashboard_triage.py and the
browser test): five reports of Dole (39198), all routed to its police force, three of them with
someone in danger when they were filed (one closed since), filed at known instants in summer
and winter time, delivered to the dashboards by the real outbox worker."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from webhook.agency import auth
from webhook.delivery.base import OutboxConfig
from webhook.delivery.outbox import OutboxWorker
from webhook.store import lifecycle, tickets
from webhook.store.db import Ticket

POLICE_DOLE = "pn-66176"  # the competent force of Dole (39198)
PASSWORD = "mot de passe de test 2026"

# (name, report type, fields, filed at (UTC)); the force of Dole receives them all
REPORTS = (
    ("old_theft", "vol_cambriolage",
     {"description": "On m'a volé mon vélo devant la gare, un vélo bleu attaché avec un antivol "
      "à la barrière du parking de la gare, entre 8 h et 18 h, sans témoin ; il avait un "
      "panier noir et un garde-boue cassé", "en_cours": "non",
      "type_vol": "vol_vehicule", "quand": "hier", "lieu": "gare"},
     dt.datetime(2026, 7, 14, 10, 5, tzinfo=dt.UTC)),
    ("violence", "violences_conjugales",
     {"danger_now": "oui", "description": "Il frappe sa femme, j'entends des cris"},
     dt.datetime(2026, 7, 14, 22, 30, tzinfo=dt.UTC)),
    ("dealing", "drogue_trafic",
     {"lieu": "hall du bâtiment B", "moment": "soir"},
     dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)),
    ("child", "enfant_en_danger",
     {"description": "Un enfant de 6 ans est frappé", "danger_now": "oui",
      "age_enfant": "age_6_10"},
     dt.datetime(2026, 11, 30, 8, 0, tzinfo=dt.UTC)),
    ("burglary_closed", "vol_cambriolage",
     {"description": "Cambriolage en cours chez le voisin", "en_cours": "oui",
      "type_vol": "cambriolage"},
     dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)),
)  # fmt: skip


async def seed_triage(sessions: async_sessionmaker[AsyncSession]) -> dict[str, Ticket]:
    """The agent ``agent-police`` of Dole's police and the reports, by name."""
    await auth.create_agent(sessions, POLICE_DOLE, "agent-police", PASSWORD, "agent", "Agent")
    filed: dict[str, Ticket] = {}
    for n, (name, report_type, fields, at) in enumerate(REPORTS):
        ticket, _ = await tickets.file_report(
            sessions,
            tickets.NewReport(
                report_type=report_type,
                commune_insee="39198",
                fields=fields,
                channel="web",
                conversation_id=f"web-triage{n}",
            ),
        )
        assert POLICE_DOLE in {d.agency_id for d in ticket.destinations}, name
        async with sessions() as session, session.begin():
            await session.execute(
                update(Ticket).where(Ticket.id == ticket.id).values(created_at=at)
            )
        filed[name] = ticket
    # the outbox puts them on the dashboards and writes its own history lines
    await OutboxWorker(sessions, OutboxConfig.from_env()).drain()
    await lifecycle.change_status(
        sessions, filed["burglary_closed"].id, "closed", "agent:agent-police", "Interpellation."
    )
    return filed
