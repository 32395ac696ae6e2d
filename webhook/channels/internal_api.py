"""Service routes: the health probe (``/health``) and the internal API through which the action
server files reports and reads them back (``/internal/v1/reports``, Bearer internal token).

The internal routes check the token before they read a byte of the body, and are not in the
public OpenAPI document. A citizen's status question reaches a ticket only through
:func:`webhook.store.tickets.get_for_citizen`: the conversation that filed it, or its tracking
code — never the sequential reference alone."""

from __future__ import annotations

import hmac
import logging
from dataclasses import replace
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import text

from reports import reference as references
from webhook.conversation import turn
from webhook.conversation.ratelimit import retry_after_header
from webhook.store import tickets

logger = logging.getLogger(__name__)

BaseModelT = TypeVar("BaseModelT", bound=BaseModel)

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


class StatusQuery(BaseModel):
    """A citizen's status question, as the action server read it from the conversation."""

    conversation_id: str = Field(min_length=1, max_length=128)
    reference: str | None = Field(default=None, pattern=rf"^{references.PATTERN}$")
    tracking_code: str | None = Field(default=None, max_length=32)


@router.get("/health", include_in_schema=False)
async def health(request: Request) -> JSONResponse:
    database_ok = True
    try:
        async with request.app.state.db_engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception:  # noqa: BLE001 - any failure means "database down" for a probe
        logger.warning("health: database check failed")
        database_ok = False
    # the gateways' shared state (Redis when configured; else the database above): no turn
    # can run without it
    backend = getattr(request.app.state, "state_backend", None)
    state_ok = await backend.ping() if backend is not None else True
    if not state_ok:
        logger.warning("health: shared state check failed")
    rasa_ok = await request.app.state.rasa.is_ready()
    status = "ok" if database_ok and state_ok and rasa_ok else "degraded"
    return JSONResponse(
        {"status": status, "database": database_ok, "state": state_ok, "rasa": rasa_ok},
        status_code=200 if database_ok and state_ok else 503,
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


async def _body(request: Request, model: type[BaseModelT]) -> BaseModelT:
    """The JSON body, read only now (after the token was checked), as ``model``."""
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as exc:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", ""))} for e in exc.errors()
        ]
        raise HTTPException(status_code=422, detail=errors[:20]) from None


NO_STORE = {"Cache-Control": "no-store"}


@router.post(
    "/internal/v1/reports",
    status_code=201,
    dependencies=[Depends(require_internal)],
    include_in_schema=False,
)
async def file_report(request: Request) -> JSONResponse:
    body = await _body(request, ReportIn)
    state = request.app.state
    report = tickets.NewReport(
        report_type=body.report_type,
        commune_insee=body.commune_insee,
        fields=body.fields,
        channel=body.channel,
        language=body.language,
        conversation_id=body.conversation_id,
        anonymous=body.anonymous,
        idempotency_key=body.idempotency_key,
        danger_signal=body.danger_signal,
    )
    conversation = None
    services: turn.Services | None = getattr(state, "conversations", None)
    if body.conversation_id:
        # the key comes from the report itself: the same report from the same conversation on
        # the same day is one ticket, whatever restarted in between
        report = replace(report, idempotency_key=tickets.conversation_key(report))
        if services is not None:
            # the conversation's last saved state (its running turn may be on another gateway)
            conversation = await services.store.peek(body.conversation_id)
    existing = (
        await tickets.get_by_idempotency_key(state.sessions, report.idempotency_key)
        if report.idempotency_key
        else None
    )
    admission = services.admission if services is not None else None
    if existing is None and admission is not None:
        credits = conversation.filing_credits if conversation is not None else 0
        refusal = await admission.filing(
            body.conversation_id,
            conversation.client if conversation is not None else None,
            conversation,
        )
        if services is not None and body.conversation_id and conversation is not None:
            if refusal is not None:  # the turn says why to the citizen
                await services.store.note(
                    body.conversation_id,
                    refusal={"scope": refusal.scope, "retry_after": refusal.retry_after},
                )
            elif conversation.filing_credits != credits:
                await services.store.note(
                    body.conversation_id, credits_used=credits - conversation.filing_credits
                )
        if refusal is not None:
            logger.info("internal api: filing refused (%s limit)", refusal.scope)
            headers = dict(NO_STORE)
            if refusal.retry_after:
                headers["Retry-After"] = retry_after_header(refusal.retry_after)
            return JSONResponse(
                {"detail": "filing refused", "limit": refusal.scope},
                status_code=429,
                headers=headers,
            )
    try:
        ticket, created = await tickets.file_report(state.sessions, report)
    except tickets.InvalidReport as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from exc
    if created and getattr(state, "outbox", None) is not None:
        state.outbox.wake()  # deliver now rather than at the next poll
    # the tracking code goes back to the conversation that filed the ticket, and only to it
    own = bool(body.conversation_id) and ticket.conversation_id == body.conversation_id
    summary = tickets.ticket_summary(ticket, with_tracking_code=own)
    if own and services is not None and summary.get("tracking_code"):
        await services.store.note(
            str(body.conversation_id),
            filed={"reference": summary["reference"], "tracking_code": summary["tracking_code"]},
        )
    return JSONResponse(summary, status_code=201 if created else 200, headers=NO_STORE)


@router.post(
    "/internal/v1/reports/status",
    dependencies=[Depends(require_internal)],
    include_in_schema=False,
)
async def report_status(request: Request) -> JSONResponse:
    """A citizen's status question: 404 for an unknown reference, a wrong code, or a reference
    that another conversation filed (the same answer, so that nothing can be learnt)."""
    query = await _body(request, StatusQuery)
    ticket = await tickets.get_for_citizen(
        request.app.state.sessions,
        conversation_id=query.conversation_id,
        reference=query.reference,
        tracking_code=query.tracking_code,
    )
    if ticket is None:
        raise HTTPException(status_code=404, detail="unknown report", headers=NO_STORE)
    return JSONResponse(tickets.ticket_summary(ticket), headers=NO_STORE)
