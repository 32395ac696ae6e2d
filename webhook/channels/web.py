"""Web channel: the chat page (``/``), the chat API used by the widget (``POST /api/v1/chat``)
and the security headers of the chat page. The widget and the page are in ``static/``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, Field, model_validator

from webhook import replies
from webhook.conversation import turn
from webhook.conversation.ratelimit import retry_after_header
from webhook.security import clients, pow

STATIC_DIR = Path(__file__).parent / "static"
CHAT_PATH = "/api/v1/chat"
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
