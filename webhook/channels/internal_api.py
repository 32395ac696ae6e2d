"""Service routes: the health probe (``/health``) and the internal API through which the action
server files reports and reads them back (``/internal/v1/reports``, Bearer internal token)."""

from __future__ import annotations

import hmac
import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import text

from webhook.store import tickets

logger = logging.getLogger(__name__)

router = APIRouter()


class ReportIn(BaseModel):
    report_type: str
    commune_insee: str | None = Field(default=None, pattern=r"^[0-9][0-9AB][0-9]{3}$")
    fields: dict[str, str] = Field(default_factory=dict)
    conversation_id: str | None = Field(default=None, max_length=128)
    channel: str = "web"
    language: str = Field(default="fr", max_length=8)
    anonymous: bool = True
    idempotency_key: str | None = Field(default=None, max_length=200)
    # the safety check fired during the conversation; the routing flags themselves are
    # computed by the gateway from the fields (reports.flags), the same way for every channel
    danger_signal: bool = False


@router.get("/health")
async def health(request: Request) -> JSONResponse:
    database_ok = True
    try:
        async with request.app.state.db_engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception:  # noqa: BLE001 - any failure means "database down" for a probe
        logger.warning("health: database check failed")
        database_ok = False
    rasa_ok = await request.app.state.rasa.is_ready()
    status = "ok" if database_ok and rasa_ok else "degraded"
    return JSONResponse(
        {"status": status, "database": database_ok, "rasa": rasa_ok},
        status_code=200 if database_ok else 503,
    )


async def require_internal(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
) -> None:
    internal_token = request.app.state.settings.internal_token
    expected = f"Bearer {internal_token}"
    if (
        not internal_token
        or not authorization
        or not hmac.compare_digest(authorization.encode(), expected.encode())
    ):
        raise HTTPException(status_code=401, detail="invalid internal token")


@router.post("/internal/v1/reports", status_code=201, dependencies=[Depends(require_internal)])
async def file_report(body: ReportIn, request: Request) -> JSONResponse:
    channel = body.channel
    try:
        ticket, created = await tickets.file_report(
            request.app.state.sessions,
            tickets.NewReport(
                report_type=body.report_type,
                commune_insee=body.commune_insee,
                fields=body.fields,
                channel=channel,
                language=body.language,
                conversation_id=body.conversation_id,
                anonymous=body.anonymous,
                idempotency_key=body.idempotency_key,
                danger_signal=body.danger_signal,
            ),
        )
    except tickets.InvalidReport as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from exc
    if created and getattr(request.app.state, "outbox", None) is not None:
        request.app.state.outbox.wake()  # deliver now rather than at the next poll
    return JSONResponse(tickets.ticket_summary(ticket), status_code=201 if created else 200)


@router.get("/internal/v1/reports/{reference}", dependencies=[Depends(require_internal)])
async def get_report(reference: str, request: Request) -> JSONResponse:
    ticket = await tickets.get_by_reference(request.app.state.sessions, reference)
    if ticket is None:
        raise HTTPException(status_code=404, detail="unknown reference")
    return JSONResponse(tickets.ticket_summary(ticket))
