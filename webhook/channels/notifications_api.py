"""Notifications for the web widget, which has no push: status changes and agency answers are
kept by the outbox worker (``citizen_messages``) and handed out once to the widget that asks."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from sqlalchemy import update

from webhook.replies import Reply
from webhook.store.db import CitizenMessage, utcnow

router = APIRouter()

SENDER_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


class NotificationsResponse(BaseModel):
    messages: list[Reply]


@router.get("/api/v1/notifications", response_model=NotificationsResponse)
async def notifications(
    request: Request,
    sender: str = Query(min_length=1, max_length=64, pattern=SENDER_PATTERN),
) -> NotificationsResponse:
    """Messages waiting for this widget conversation, oldest first; each is returned once."""
    statement = (
        update(CitizenMessage)
        .where(
            CitizenMessage.channel == "web",
            CitizenMessage.recipient == sender,
            CitizenMessage.fetched_at.is_(None),
        )
        .values(fetched_at=utcnow())
        .returning(CitizenMessage.created_at, CitizenMessage.id, CitizenMessage.text)
        .execution_options(synchronize_session=False)
    )
    async with request.app.state.sessions() as session, session.begin():
        rows = (await session.execute(statement)).all()
    # created_at is the time of the change (not of the delivery): the order of the changes
    return NotificationsResponse(messages=[Reply(text=text) for _, _, text in sorted(rows)])
