"""JSON API for agencies (``/api/v1/agency/``), authenticated by a per-agency API token
(``Authorization: Bearer tq_...``): list, read, acknowledge, change the status of and answer the
tickets routed to the token's agency. A ticket routed to another agency answers 404 like an
unknown one. Observer tokens read the cellule de veille's figures (:mod:`webhook.veille.api`,
which also serves ``/api/v1/agency/statistics``)."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request
from pydantic import BaseModel, Field

from reports import reference
from webhook.agency import auth, queries
from webhook.agency.auth import Principal
from webhook.agency.queries import ReportType
from webhook.store import lifecycle
from webhook.store.db import Ticket

logger = logging.getLogger(__name__)

router = APIRouter(
    prefix="/api/v1/agency",
    tags=["agency"],
    responses={
        401: {"description": "Jeton d'API manquant ou invalide"},
        403: {"description": "Rôle du jeton insuffisant"},
        404: {"description": "Signalement introuvable (ou adressé à une autre agence)"},
        409: {"description": "Changement de statut impossible depuis le statut actuel"},
    },
)

Status = Literal[
    "received",
    "transmitted",
    "acknowledged",
    "in_progress",
    "closed",
    "redirected",
    "rejected_duplicate",
]
AgencyStatus = Literal["acknowledged", "in_progress", "closed", "redirected", "rejected_duplicate"]
Reference = Annotated[str, Path(max_length=32, pattern=rf"^{reference.PATTERN}$")]


class Destination(BaseModel):
    agency_id: str
    agency_name: str
    role: str
    rule_id: str


class Event(BaseModel):
    at: dt.datetime
    actor: str
    kind: str
    status_from: str | None
    status_to: str
    note: str | None


class TicketOut(BaseModel):
    reference: str
    report_type: str
    status: str
    open311_status: Literal["open", "closed"]
    commune_insee: str | None
    language: str
    channel: str
    anonymous: bool
    created_at: dt.datetime
    updated_at: dt.datetime
    purged: bool
    fields: dict[str, str]
    destinations: list[Destination]
    rule_ids: list[str]
    referrals: list[str]
    history: list[Event]


class TicketPage(BaseModel):
    total: int
    tickets: list[TicketOut]


class StatusChange(BaseModel):
    status: AgencyStatus
    note: str | None = Field(default=None, max_length=4000)


class AnswerIn(BaseModel):
    text: str = Field(min_length=1, max_length=4000)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def ticket_out(ticket: Ticket) -> TicketOut:
    return TicketOut(
        reference=ticket.reference,
        report_type=ticket.report_type,
        status=ticket.status,
        open311_status="closed" if ticket.status in queries.OPEN311_CLOSED else "open",
        commune_insee=ticket.commune_insee,
        language=ticket.language,
        channel=ticket.channel,
        anonymous=ticket.anonymous,
        created_at=_aware(ticket.created_at),
        updated_at=_aware(ticket.updated_at),
        purged=ticket.purged_at is not None,
        fields={str(k): str(v) for k, v in (ticket.fields or {}).items()},
        destinations=[
            Destination(
                agency_id=d.agency_id, agency_name=d.agency_name, role=d.role, rule_id=d.rule_id
            )
            for d in ticket.destinations
        ],
        rule_ids=[str(r) for r in ticket.decision.get("rule_ids", [])],
        referrals=[str(r) for r in ticket.decision.get("referrals", [])],
        history=[
            Event(
                at=_aware(e.at),
                actor=e.actor,
                kind=e.kind,
                status_from=e.status_from,
                status_to=e.status_to,
                note=e.note,
            )
            for e in ticket.events
        ],
    )


async def token_principal(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> Principal:
    token = None
    if authorization and authorization[:7].lower() == "bearer ":
        token = authorization[7:].strip()
    principal = await auth.authenticate_token(request.app.state.sessions, token)
    if principal is None:
        raise HTTPException(
            status_code=401,
            detail="jeton d'API manquant ou invalide",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return principal


async def worker(principal: Annotated[Principal, Depends(token_principal)]) -> Principal:
    if not principal.can_work_tickets:
        raise HTTPException(
            status_code=403, detail="ce jeton donne accès aux statistiques seulement"
        )
    return principal


Worker = Annotated[Principal, Depends(worker)]


async def _ticket(request: Request, principal: Principal, reference: str) -> Ticket:
    ticket = await queries.get_for_agency(
        request.app.state.sessions, principal.agency_id, reference
    )
    if ticket is None:
        raise HTTPException(status_code=404, detail="signalement introuvable")
    return ticket


@router.get("/tickets", response_model=TicketPage)
async def list_tickets(
    request: Request,
    principal: Worker,
    status: Annotated[Status | None, Query()] = None,
    report_type: Annotated[ReportType | None, Query()] = None,
    commune_insee: Annotated[str | None, Query(pattern=r"^[0-9][0-9AB][0-9]{3}$")] = None,
    since: Annotated[dt.date | None, Query()] = None,
    until: Annotated[dt.date | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> TicketPage:
    """Les signalements adressés à l'agence du jeton, les plus récents d'abord."""

    def day(value: dt.date | None, extra: int = 0) -> dt.datetime | None:
        if value is None:
            return None
        try:
            return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC) + dt.timedelta(
                days=extra
            )
        except OverflowError:
            return None

    tickets, total = await queries.list_for_agency(
        request.app.state.sessions,
        principal.agency_id,
        queries.TicketFilter(
            statuses={status} if status else None,
            report_type=report_type,
            commune_insee=commune_insee,
            since=day(since),
            until=day(until, 1),
            limit=limit,
            offset=offset,
        ),
    )
    return TicketPage(total=total, tickets=[ticket_out(t) for t in tickets])


@router.get("/tickets/{reference}", response_model=TicketOut)
async def get_ticket(request: Request, principal: Worker, reference: Reference) -> TicketOut:
    return ticket_out(await _ticket(request, principal, reference))


async def _change(request: Request, principal: Principal, reference: str, apply: Any) -> TicketOut:
    ticket = await _ticket(request, principal, reference)
    try:
        updated = await apply(ticket.id)
    except lifecycle.TransitionError as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from exc
    logger.info("agency api: ticket %s changed by %s", ticket.reference, principal.actor)
    return ticket_out(updated)


@router.post("/tickets/{reference}/acknowledge", response_model=TicketOut)
async def acknowledge(request: Request, principal: Worker, reference: Reference) -> TicketOut:
    sessions = request.app.state.sessions
    return await _change(
        request,
        principal,
        reference,
        lambda ticket_id: lifecycle.acknowledge(sessions, ticket_id, principal.actor),
    )


@router.post("/tickets/{reference}/status", response_model=TicketOut)
async def change_status(
    request: Request, principal: Worker, reference: Reference, body: StatusChange
) -> TicketOut:
    sessions = request.app.state.sessions
    return await _change(
        request,
        principal,
        reference,
        lambda ticket_id: lifecycle.change_status(
            sessions, ticket_id, body.status, principal.actor, body.note
        ),
    )


@router.post("/tickets/{reference}/answer", response_model=TicketOut)
async def answer(
    request: Request, principal: Worker, reference: Reference, body: AnswerIn
) -> TicketOut:
    sessions = request.app.state.sessions
    return await _change(
        request,
        principal,
        reference,
        lambda ticket_id: lifecycle.answer(sessions, ticket_id, principal.actor, body.text),
    )
