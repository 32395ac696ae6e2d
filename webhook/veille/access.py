"""Who sees what of the cellule de veille.

- An **observer** (account or API token) sees the figures and the alerts of its territory
  (:mod:`webhook.agency.territory`) — never a ticket, never a reference, nothing outside it. It
  acknowledges and closes the alerts of its territory.
- An **agent** (or agency admin) sees the alerts that involve tickets routed to its agency, with
  the references of those tickets only ("the references that make it up, for the agencies that
  hold them"), and no figure.
- An **agency admin** sets the territories of its agency's observers and the e-mail and webhook
  channels where they receive alerts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from webhook.agency import territory as territories
from webhook.agency.auth import Principal
from webhook.agency.territory import Territory
from webhook.store.db import Ticket, TicketDestination, VeilleAlert, VeilleAlertTicket

Sessions = async_sessionmaker[AsyncSession]


async def observer_territory(sessions: Sessions, principal: Principal) -> Territory | None:
    """The territory of an observer (None for other roles)."""
    if principal.role != "observer":
        return None
    stored = await territories.stored_territory(
        sessions, agent_id=principal.agent_id, token_id=principal.token_id
    )
    return territories.for_agency(principal.agency_id, stored)


def covers(territory: Territory, alert: VeilleAlert) -> bool:
    return territory.covers(alert.area_kind, alert.area_code, alert.departement)


async def alerts_for_territory(
    sessions: Sessions,
    territory: Territory,
    *,
    statuses: Collection[str] | None = None,
    since: dt.datetime | None = None,
    limit: int = 500,
) -> list[VeilleAlert]:
    """The alerts of a territory, most recent first."""
    query = select(VeilleAlert).where(VeilleAlert.departement == territory.departement)
    if statuses is not None:
        query = query.where(VeilleAlert.status.in_(sorted(statuses)))
    if since is not None:
        query = query.where(VeilleAlert.raised_at >= since)
    query = query.order_by(VeilleAlert.raised_at.desc(), VeilleAlert.id.desc())
    async with sessions() as session:
        found = (await session.execute(query)).scalars().all()
    return [a for a in found if covers(territory, a)][:limit]


async def alerts_for_agency(
    sessions: Sessions, agency_id: str, *, limit: int = 100
) -> list[tuple[VeilleAlert, list[str]]]:
    """The alerts involving tickets routed to an agency, with those tickets' references."""
    query = (
        select(VeilleAlert, Ticket.reference)
        .join(VeilleAlertTicket, VeilleAlertTicket.alert_id == VeilleAlert.id)
        .join(Ticket, Ticket.id == VeilleAlertTicket.ticket_id)
        .join(TicketDestination, TicketDestination.ticket_id == Ticket.id)
        .where(TicketDestination.agency_id == agency_id)
        .order_by(VeilleAlert.raised_at.desc(), VeilleAlert.id.desc(), Ticket.reference)
    )
    out: dict[int, tuple[VeilleAlert, list[str]]] = {}
    async with sessions() as session:
        for alert, reference in (await session.execute(query)).all():
            if alert.id not in out:
                if len(out) >= limit:
                    break
                out[alert.id] = (alert, [])
            out[alert.id][1].append(reference)
    return list(out.values())


async def agency_references(sessions: Sessions, alert_id: int, agency_id: str) -> list[str]:
    """References of the alert's tickets routed to ``agency_id``."""
    query = (
        select(Ticket.reference)
        .join(VeilleAlertTicket, VeilleAlertTicket.ticket_id == Ticket.id)
        .join(TicketDestination, TicketDestination.ticket_id == Ticket.id)
        .where(VeilleAlertTicket.alert_id == alert_id, TicketDestination.agency_id == agency_id)
        .order_by(Ticket.reference)
        .distinct()
    )
    async with sessions() as session:
        return [str(r) for r in (await session.execute(query)).scalars()]


async def get_alert(sessions: Sessions, alert_id: int) -> VeilleAlert | None:
    async with sessions() as session:
        return await session.get(VeilleAlert, alert_id)
