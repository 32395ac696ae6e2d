"""FastAPI gateway: chat API for the widget, internal API for the action server, health."""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field, model_validator
from sqlalchemy import text

import routing
from webhook import (
    agency_api,
    conversation,
    dashboard,
    notifications_api,
    notify,
    open311,
    outbox,
    replies,
    telegram_channel,
    tickets,
)
from webhook.config import Settings
from webhook.cors import ChatCORS
from webhook.db import create_engine, migrate, session_factory
from webhook.rasa_client import RasaClient
from webhook.ratelimit import TokenBucketLimiter, retry_after_header

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
SENDER_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


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


class ReportIn(BaseModel):
    report_type: str
    commune_insee: str | None = Field(default=None, pattern=r"^[0-9][0-9AB][0-9]{3}$")
    fields: dict[str, str] = Field(default_factory=dict)
    conversation_id: str | None = Field(default=None, max_length=128)
    channel: str = "web"
    language: str = Field(default="fr", max_length=8)
    anonymous: bool = True
    idempotency_key: str | None = Field(default=None, max_length=200)
    # routing flags read from the form's answers (minor, senior, danger, money_lost, ...)
    flags: dict[str, bool] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_flags(self) -> ReportIn:
        unknown = set(self.flags) - set(routing.FLAGS)
        if unknown:
            raise ValueError(f"unknown routing flags: {sorted(unknown)}")
        return self


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    if not logging.getLogger().handlers:
        # Under uvicorn alone nothing configures the root logger: the gateway's own INFO lines
        # (ticket filed, delivery done — never message text) go to its log file too.
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s - %(message)s"
        )
    # httpx logs every request URL at INFO: a Telegram URL carries the bot token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.database_url)
        if settings.auto_migrate:
            await migrate(engine)
        app.state.db_engine = engine
        app.state.sessions = session_factory(engine)
        app.state.rasa = RasaClient(settings.rasa_url, settings.rasa_timeout)
        app.state.notifiers = notify.Notifiers()
        # Conversation states (guided mode, language), Rasa's health, rate limit, ticket store
        app.state.conversations = conversation.Services(
            limiter=TokenBucketLimiter(settings.rate_limit_burst, settings.rate_limit_per_minute),
            sessions=app.state.sessions,
        )
        conversation.attach(app.state.rasa, app.state.conversations)  # also used by Telegram
        app.state.telegram = await telegram_channel.start(
            settings, app.state.rasa, app.state.notifiers, app.state
        )
        app.state.outbox = None
        outbox_config = outbox.OutboxConfig.from_env(settings.gateway_url)
        if outbox_config.mode == "embedded":
            app.state.outbox = outbox.OutboxWorker(
                app.state.sessions, outbox_config, app.state.notifiers
            )
            app.state.outbox.start()
        try:
            yield
        finally:
            if app.state.outbox is not None:
                await app.state.outbox.stop()
            if app.state.telegram is not None:
                await app.state.telegram.stop()
            await app.state.rasa.aclose()
            await engine.dispose()

    app = FastAPI(
        title="Tranquillité gateway",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.add_middleware(ChatCORS, paths=("/api/v1/chat",), allow_origins=settings.cors_origins)
    app.include_router(telegram_channel.router)
    app.include_router(notifications_api.router)
    app.include_router(dashboard.router)
    app.include_router(agency_api.router)
    app.include_router(open311.router)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Any:
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

    if STATIC_DIR.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    async def chat_page() -> FileResponse:
        page = STATIC_DIR / "chat.html"
        if not page.is_file():
            raise HTTPException(status_code=404, detail="chat page not installed")
        return FileResponse(page, media_type="text/html; charset=utf-8")

    @app.get("/health")
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

    @app.post("/api/v1/chat", response_model=ChatResponse)
    async def chat(body: ChatRequest, request: Request) -> JSONResponse:
        result = await conversation.handle_turn(
            conversation.Turn(
                channel="web", sender=body.sender, text=body.text, payload=body.payload
            ),
            request.app.state.rasa,
            max_message_chars=settings.max_message_chars,
            services=request.app.state.conversations,
        )
        # Rasa down is not an error for the citizen: the guided mode answered (degraded mode).
        status = {"too_long": 413, "rate_limited": 429}.get(result.problem or "", 200)
        headers = {}
        if result.retry_after is not None:
            headers["Retry-After"] = retry_after_header(result.retry_after)
        response = ChatResponse(messages=result.messages, language=result.language)
        return JSONResponse(response.model_dump(), status_code=status, headers=headers)

    async def require_internal(
        authorization: Annotated[str | None, Header()] = None,
    ) -> None:
        expected = f"Bearer {settings.internal_token}"
        if (
            not settings.internal_token
            or not authorization
            or not hmac.compare_digest(authorization.encode(), expected.encode())
        ):
            raise HTTPException(status_code=401, detail="invalid internal token")

    @app.post("/internal/v1/reports", status_code=201, dependencies=[Depends(require_internal)])
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
                    flags=body.flags,
                ),
            )
        except tickets.InvalidReport as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from exc
        if created and getattr(request.app.state, "outbox", None) is not None:
            request.app.state.outbox.wake()  # deliver now rather than at the next poll
        return JSONResponse(tickets.ticket_summary(ticket), status_code=201 if created else 200)

    @app.get("/internal/v1/reports/{reference}", dependencies=[Depends(require_internal)])
    async def get_report(reference: str, request: Request) -> JSONResponse:
        ticket = await tickets.get_by_reference(request.app.state.sessions, reference)
        if ticket is None:
            raise HTTPException(status_code=404, detail="unknown reference")
        return JSONResponse(tickets.ticket_summary(ticket))

    return app
