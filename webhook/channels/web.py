"""Web channel: the chat page (``/``), the chat API used by the widget (``POST /api/v1/chat``),
the follow-up of a report by its tracking code (``POST /api/v1/tracking``) and the security
headers of the chat page. The widget and the page are in ``static/``.

The widget follows the reports of its conversation with their tracking codes: the codes it was
given when they were filed (``ChatResponse.tickets``) and a code the citizen types when they come
back. ``POST /api/v1/notifications`` hands it each new status change or answer once;
``POST /api/v1/tracking`` gives the whole citizen-visible history of one report to the holder of
its code. Codes travel in POST bodies, never in URLs; the reference alone opens nothing."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, Field, model_validator

from reports import tracking
from webhook import replies
from webhook.conversation import turn
from webhook.conversation.ratelimit import retry_after_header
from webhook.security import clients, pow
from webhook.store import lifecycle, tickets
from webhook.store.db import Ticket

STATIC_DIR = Path(__file__).parent / "static"
CHAT_PATH = "/api/v1/chat"
NOTIFICATIONS_PATH = "/api/v1/notifications"
TRACKING_PATH = "/api/v1/tracking"
# the citizen-facing API the widget calls, from a town hall's site too (CORS, webhook.app)
CORS_PATHS = (CHAT_PATH, NOTIFICATIONS_PATH, TRACKING_PATH)
# the latest updates of a report given back to the holder of its code
MAX_UPDATES = 50
SENDER_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

router = APIRouter()


class ChatRequest(BaseModel):
    sender: str = Field(min_length=1, max_length=64, pattern=SENDER_RE.pattern)
    text: str | None = None
    payload: str | None = Field(default=None, max_length=512)
    # "<challenge>:<solution>" when the gateway asked for a proof of work (ChatResponse.challenge)
    proof: str | None = Field(default=None, max_length=pow.MAX_PROOF_CHARS)

    @model_validator(mode="after")
    def _text_or_payload(self) -> ChatRequest:
        if self.text is None and self.payload is None:
            raise ValueError("either text or payload is required")
        return self


class FiledTicket(BaseModel):
    """A report filed in this turn: its reference and the citizen's secret tracking code (the
    widget keeps it to follow the report and fetch its notifications)."""

    reference: str
    tracking_code: str | None = None


class ProofChallenge(BaseModel):
    """Proof of work to do before this conversation may file (when the deployment asks)."""

    challenge: str
    difficulty: int
    expires_in: int


class ChatResponse(BaseModel):
    messages: list[replies.Reply]
    # language of the replies (ISO 639-1), for the widget's lang attribute
    language: str = "fr"
    tickets: list[FiledTicket] = Field(default_factory=list)
    challenge: ProofChallenge | None = None


# API answers that no cache (browser, proxy) may keep: they hold tickets, tokens, messages
NO_STORE_PREFIXES = ("/api/", "/open311/", "/internal/", "/agence", "/telegram/")
HSTS = "max-age=31536000; includeSubDomains"


async def security_headers(request: Request, call_next: Any) -> Any:
    """HTTP middleware: no sniffing, no referrer, no caching of API answers, HSTS when the
    gateway is served over https (secure cookies); a strict CSP on the chat page."""
    response = await call_next(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    path = request.url.path
    if path.startswith(NO_STORE_PREFIXES):
        response.headers["Cache-Control"] = "no-store"
    if request.app.state.settings.cookie_secure:
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    if request.url.path in ("/", "/static/chat.html"):
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; "
            "script-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; "
            "object-src 'none'; frame-ancestors 'none'",
        )
    return response


@router.get("/", include_in_schema=False)
async def chat_page() -> FileResponse:
    page = STATIC_DIR / "chat.html"
    if not page.is_file():
        raise HTTPException(status_code=404, detail="chat page not installed")
    return FileResponse(page, media_type="text/html; charset=utf-8")


def client_key(request: Request) -> str:
    """The per-address key of the request's client (behind trusted proxies only)."""
    resolver: clients.ClientResolver = request.app.state.client_resolver
    return clients.address_key(resolver.client(request))


@router.post(
    CHAT_PATH,
    response_model=ChatResponse,
    responses={
        413: {"model": ChatResponse, "description": "Message trop long"},
        429: {"model": ChatResponse, "description": "Trop de messages ou de signalements"},
    },
)
async def chat(body: ChatRequest, request: Request) -> JSONResponse:
    state = request.app.state
    result = await turn.handle_turn(
        turn.Turn(
            channel="web",
            sender=body.sender,
            text=body.text,
            payload=body.payload,
            client=client_key(request),
            proof=body.proof,
        ),
        state.rasa,
        max_message_chars=state.settings.max_message_chars,
        services=state.conversations,
    )
    # Rasa down is not an error for the citizen: the guided mode answered (degraded mode).
    status = {"too_long": 413, "rate_limited": 429, "filing_limited": 429}.get(
        result.problem or "", 200
    )
    headers = {"Cache-Control": "no-store"}
    if result.retry_after is not None:
        headers["Retry-After"] = retry_after_header(result.retry_after)
    response = ChatResponse(
        messages=result.messages,
        language=result.language,
        tickets=[FiledTicket(**t) for t in result.tickets],
        challenge=(
            ProofChallenge(
                challenge=result.challenge.challenge,
                difficulty=result.challenge.difficulty,
                expires_in=result.challenge.expires_in,
            )
            if result.challenge is not None
            else None
        ),
    )
    return JSONResponse(response.model_dump(), status_code=status, headers=headers)


class TrackingQuery(BaseModel):
    tracking_code: str = Field(
        min_length=1,
        max_length=32,
        description="Code de suivi du signalement (ex. K7QM-4XPA-9HWT)",
    )


class TicketUpdate(BaseModel):
    """A status change or an answer of the agency, worded as the citizen was told it (the same
    text as the notification of ``POST /api/v1/notifications``)."""

    at: str
    kind: str
    text: str


class TrackingResponse(BaseModel):
    reference: str
    status: str
    # the status in French words, for the widget (whose own texts are French)
    status_label: str
    updates: list[TicketUpdate]


class TrackingNotFound(BaseModel):
    detail: str


def citizen_updates(ticket: Ticket) -> list[TicketUpdate]:
    """The history a citizen may see, oldest first: status changes (with the agency's note for
    them) and answers, in the words of the notices they were sent; no agent, no internal event,
    not the filing itself (the citizen was there)."""
    updates: list[TicketUpdate] = []
    for event in ticket.events:
        if not event.visible_to_citizen:
            continue
        if event.kind == "answer" and event.note:
            text = replies.message(
                "ticket_answer", ticket.language, reference=ticket.reference, text=event.note
            )
        elif event.kind == "status" and event.status_from is not None:
            if event.status_to not in lifecycle.STATUSES or event.status_to == "received":
                continue
            text = lifecycle.status_notice(ticket, event.status_to, event.note)
        else:
            continue
        updates.append(TicketUpdate(at=event.at.isoformat(), kind=event.kind, text=text))
    return updates[-MAX_UPDATES:]


@router.post(
    TRACKING_PATH,
    response_model=TrackingResponse,
    responses={
        404: {"model": TrackingNotFound, "description": "Code de suivi inconnu"},
        413: {"description": "Corps de requête trop volumineux (plus de 1 Kio)"},
        422: {"description": "Requête invalide"},
    },
)
async def follow_report(body: TrackingQuery, request: Request) -> JSONResponse:
    """The status and the updates of the report whose tracking code is given. A wrong code and
    a code of no report get the same 404: nothing can be learnt from the answer."""
    headers = {"Cache-Control": "no-store"}
    code = tracking.normalise(body.tracking_code)
    ticket = (
        await tickets.get_for_citizen(
            request.app.state.sessions, conversation_id=None, tracking_code=code
        )
        if code
        else None
    )
    if ticket is None:
        return JSONResponse({"detail": "unknown tracking code"}, status_code=404, headers=headers)
    response = TrackingResponse(
        reference=ticket.reference,
        status=ticket.status,
        status_label=lifecycle.STATUS_LABELS.get(ticket.status, ticket.status),
        updates=citizen_updates(ticket),
    )
    return JSONResponse(response.model_dump(), headers=headers)
