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

STATIC_DIR = Path(__file__).parent / "static"
CHAT_PATH = "/api/v1/chat"
SENDER_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

router = APIRouter()


class ChatRequest(BaseModel):
    sender: str = Field(min_length=1, max_length=64, pattern=SENDER_RE.pattern)
    text: str | None = None
    payload: str | None = Field(default=None, max_length=512)

    @model_validator(mode="after")
    def _text_or_payload(self) -> ChatRequest:
        if self.text is None and self.payload is None:
            raise ValueError("either text or payload is required")
        return self


class ChatResponse(BaseModel):
    messages: list[replies.Reply]
    # language of the replies (ISO 639-1), for the widget's lang attribute
    language: str = "fr"


async def security_headers(request: Request, call_next: Any) -> Any:
    """HTTP middleware: no sniffing, no referrer; a strict CSP on the chat page."""
    response = await call_next(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
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


@router.post(CHAT_PATH, response_model=ChatResponse)
async def chat(body: ChatRequest, request: Request) -> JSONResponse:
    state = request.app.state
    result = await turn.handle_turn(
        turn.Turn(channel="web", sender=body.sender, text=body.text, payload=body.payload),
        state.rasa,
        max_message_chars=state.settings.max_message_chars,
        services=state.conversations,
    )
    # Rasa down is not an error for the citizen: the guided mode answered (degraded mode).
    status = {"too_long": 413, "rate_limited": 429}.get(result.problem or "", 200)
    headers = {}
    if result.retry_after is not None:
        headers["Retry-After"] = retry_after_header(result.retry_after)
    response = ChatResponse(messages=result.messages, language=result.language)
    return JSONResponse(response.model_dump(), status_code=status, headers=headers)
