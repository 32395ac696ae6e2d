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

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from webhook.agency import territory as territories
from webhook.agency.auth import Principal
from webhook.agency.territory import Territory
from webhook.store.db import Ticket, TicketDestination, VeilleAlert
from webhook.veille import alerts
from webhook.veille.config import VeilleConfig

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
    sessions: Sessions,
    agency_id: str,
    config: VeilleConfig,
    *,
    now: dt.datetime,
    days: int = 90,
    limit: int = 100,
) -> list[tuple[VeilleAlert, list[str]]]:
    """The alerts of the last ``days`` days (or going on) that involve tickets routed to an
    agency, with those tickets' references."""
    departement = territories.agency_departement(agency_id)
    if departement is None:
        return []
    query = (
        select(VeilleAlert)
        .where(
            VeilleAlert.departement == departement,
            or_(
                VeilleAlert.ended_at.is_(None),
                VeilleAlert.ended_at >= now - dt.timedelta(days=days),
            ),
        )
        .order_by(VeilleAlert.raised_at.desc(), VeilleAlert.id.desc())
        .limit(500)
    )
    out: list[tuple[VeilleAlert, list[str]]] = []
    async with sessions() as session:
        for alert in (await session.execute(query)).scalars().all():
            references = await _references(session, alert, agency_id, config)
            if references:
                out.append((alert, references))
                if len(out) >= limit:
                    break
    return out


async def _references(
    session: AsyncSession, alert: VeilleAlert, agency_id: str, config: VeilleConfig
) -> list[str]:
    query = (
        select(Ticket.reference)
        .join(TicketDestination, TicketDestination.ticket_id == Ticket.id)
        .where(*alerts.alert_reports(alert, config), TicketDestination.agency_id == agency_id)
        .order_by(Ticket.reference)
        .distinct()
    )
    return [str(r) for r in (await session.execute(query)).scalars()]


async def agency_references(
    sessions: Sessions, alert: VeilleAlert, agency_id: str, config: VeilleConfig
) -> list[str]:
    """References of the alert's reports routed to ``agency_id``."""
    async with sessions() as session:
        return await _references(session, alert, agency_id, config)


async def get_alert(sessions: Sessions, alert_id: int) -> VeilleAlert | None:
    async with sessions() as session:
        return await session.get(VeilleAlert, alert_id)
