"""Notifications for the web widget, which has no push: status changes and agency answers are
kept by the outbox worker (``citizen_messages``) and handed out once to the widget that asks.

They are bound to a secret only the citizen holds: the tracking code of each report, given to
the conversation that filed it (``ChatResponse.tickets``). The codes travel in a POST body —
never in a URL, where proxies and access logs would keep them — and a sender id, which anyone
can make up or read in a log, opens nothing.
"""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import select, update

from reports import tracking
from webhook.replies import Reply
from webhook.store.db import CitizenMessage, Ticket, utcnow

router = APIRouter()

MAX_CODES = 20


class NotificationsQuery(BaseModel):
    tracking_codes: list[str] = Field(
        min_length=1,
        max_length=MAX_CODES,
        description="Codes de suivi des signalements de cette conversation (ex. K7QM-4XPA-9HWT)",
    )


class Notification(Reply):
    reference: str


class NotificationsResponse(BaseModel):
    messages: list[Notification]


@router.post(
    "/api/v1/notifications",
    response_model=NotificationsResponse,
    responses={
        413: {"description": "Corps de requête trop volumineux (plus de 4 Kio)"},
        422: {"description": "Requête invalide"},
    },
)
async def notifications(body: NotificationsQuery, request: Request) -> JSONResponse:
    """Messages waiting for the reports of these tracking codes, oldest first; each is returned
    once. An unknown code is simply not found."""
    codes = sorted({c for c in (tracking.normalise(raw[:32]) for raw in body.tracking_codes) if c})
    rows: list[tuple[dt.datetime, int, str, str]] = []
    if codes:
        tickets = select(Ticket.id).where(Ticket.tracking_code.in_(codes)).scalar_subquery()
        statement = (
            update(CitizenMessage)
            .where(
                CitizenMessage.channel == "web",
                CitizenMessage.ticket_id.in_(tickets),
                CitizenMessage.fetched_at.is_(None),
            )
            .values(fetched_at=utcnow())
            .returning(
                CitizenMessage.created_at,
                CitizenMessage.id,
                CitizenMessage.text,
                CitizenMessage.ticket_id,
            )
            .execution_options(synchronize_session=False)
        )
        async with request.app.state.sessions() as session, session.begin():
            fetched = (await session.execute(statement)).all()
            ids = {int(row[3]) for row in fetched}
            references = dict(
                (
                    await session.execute(
                        select(Ticket.id, Ticket.reference).where(Ticket.id.in_(ids))
                    )
                ).all()
            )
        rows = [(at, mid, text, references[tid]) for at, mid, text, tid in fetched]
    # created_at is the time of the change (not of the delivery): the order of the changes
    ordered = sorted(rows, key=lambda r: (r[0], r[1]))
    response = NotificationsResponse(
        messages=[Notification(text=text, reference=ref) for _, _, text, ref in ordered]
    )
    return JSONResponse(response.model_dump(), headers={"Cache-Control": "no-store"})
