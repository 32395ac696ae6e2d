"""Read side for agencies: the tickets routed to one agency (with filters); observers' figures
are the cellule de veille's (:mod:`webhook.veille`). Every query is scoped by
``ticket_destinations.agency_id``; a ticket
routed elsewhere is simply not found (callers answer 404)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Literal, get_args

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import routing
from webhook.store import lifecycle
from webhook.store.db import Ticket, TicketDestination

Sessions = async_sessionmaker[AsyncSession]

# The report types (SPEC §2) as a type, so that API documents list them.
ReportType = Literal[
    "harcelement",
    "enfant_en_danger",
    "violences_conjugales",
    "arnaque",
    "personne_vulnerable",
    "absence_vacances",
    "incivilite",
    "vol_cambriolage",
    "drogue_trafic",
    "autre",
]
if set(get_args(ReportType)) != set(routing.REPORT_TYPES):
    raise RuntimeError("ReportType is out of date with routing.REPORT_TYPES")

OPEN311_CLOSED = frozenset({"closed", "redirected", "rejected_duplicate"})
OPEN_STATUSES = frozenset(lifecycle.STATUSES) - OPEN311_CLOSED


def status_group(status: str) -> str:
    """Open311 status of an extended status."""
    return "closed" if status in OPEN311_CLOSED else "open"


@dataclass(frozen=True)
class TicketFilter:
    statuses: Collection[str] | None = None
    report_type: str | None = None
    commune_insee: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    references: Collection[str] | None = None
    limit: int = 50
    offset: int = 0


def is_danger(ticket: Ticket) -> bool:
    """Someone may be in danger now: the routing flag computed from the report's answers and the
    safety check when it was filed (``decision.flags.danger``)."""
    flags = (ticket.decision or {}).get("flags") or {}
    return bool(flags.get("danger"))


def _open_danger_first() -> Any:
    """Sort key: open tickets where someone may be in danger now come first (0), then the rest
    (1). Read from the routing decision's JSON on SQLite and PostgreSQL alike."""
    danger = Ticket.decision[("flags", "danger")].as_boolean()
    return case(
        (danger.is_(True) & Ticket.status.in_(sorted(OPEN_STATUSES)), 0),
        else_=1,
    )


def _scoped(agency_id: str) -> Any:
    return (
        select(Ticket)
        .join(TicketDestination, TicketDestination.ticket_id == Ticket.id)
        .where(TicketDestination.agency_id == agency_id)
    )


def _apply(query: Any, f: TicketFilter) -> Any:
    if f.statuses is not None:
        query = query.where(Ticket.status.in_(list(f.statuses)))
    if f.report_type is not None:
        query = query.where(Ticket.report_type == f.report_type)
    if f.commune_insee is not None:
        query = query.where(Ticket.commune_insee == f.commune_insee)
    if f.since is not None:
        query = query.where(Ticket.created_at >= f.since)
    if f.until is not None:
        query = query.where(Ticket.created_at < f.until)
    if f.references is not None:
        query = query.where(Ticket.reference.in_(list(f.references)))
    return query


async def list_for_agency(
    sessions: Sessions, agency_id: str, f: TicketFilter, *, danger_first: bool = False
) -> tuple[list[Ticket], int]:
    """(page of tickets newest first, total matching); ``danger_first``: the open tickets where
    someone may be in danger now before all others (the dashboard's triage order)."""
    query = _apply(_scoped(agency_id), f)
    async with sessions() as session:
        total = int(
            (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
        )
        order = [Ticket.created_at.desc(), Ticket.id.desc()]
        if danger_first:
            order.insert(0, _open_danger_first())
        page = query.order_by(*order)
        page = page.limit(max(0, min(f.limit, 1000))).offset(max(0, f.offset))
        tickets = list((await session.execute(page)).scalars().all())
    return tickets, total


async def get_for_agency(sessions: Sessions, agency_id: str, reference: str) -> Ticket | None:
    return await lifecycle.ticket_for_agency(sessions, agency_id, reference)


def commune_label(insee: str | None) -> str:
    if not insee or insee == "-":
        return "Commune inconnue"
    commune = routing.get_engine().commune(insee)
    return f"{commune.name} ({insee})" if commune else insee
