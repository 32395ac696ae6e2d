"""FastAPI gateway: assembles the rooms' routers, the middleware and the lifespan (database,
Rasa client, conversation services, Telegram, outbox worker, veille worker). No route is defined
here."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from webhook.agency import api as agency_api
from webhook.agency import auth, dashboard, open311
from webhook.channels import hardening, internal_api, notifications_api, telegram_channel, web
from webhook.channels.cors import ChatCORS
from webhook.config import Settings
from webhook.conversation import turn
from webhook.conversation.admission import Admission
from webhook.conversation.rasa_client import RasaClient
from webhook.conversation.ratelimit import SharedLimiter
from webhook.delivery import notify, outbox
from webhook.delivery.base import OutboxConfig
from webhook.store import retention, tickets
from webhook.store import state as shared_state
from webhook.store.db import create_engine, migrate, session_factory
from webhook.veille import api as veille_api
from webhook.veille import config as veille_config
from webhook.veille import figures as veille_figures
from webhook.veille import pages as veille_pages
from webhook.veille import worker as veille_worker

logger = logging.getLogger(__name__)

# how often a gateway deletes expired shared state (idle conversations, full buckets, ...)
STATE_SWEEP_SECONDS = 600.0


async def _sweep_state(backend: shared_state.StateBackend, idle_seconds: float) -> None:
    while True:
        await asyncio.sleep(STATE_SWEEP_SECONDS)
        try:
            removed = await backend.expire(idle_seconds)
        except Exception as exc:  # noqa: BLE001 - the sweep runs again later
            logger.warning("shared state sweep failed: %s", type(exc).__name__)
        else:
            if any(removed.values()):
                logger.info("shared state expired: %s", removed)


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
        app.state.demo = await veille_figures.is_demo(app.state.sessions)
        app.state.rasa = RasaClient(settings.rasa_urls or settings.rasa_url, settings.rasa_timeout)
        app.state.notifiers = notify.Notifiers()
        # The gateways' shared state (webhook.store.state): conversation states, rate limits,
        # Telegram buttons, login delays — in the database, or Redis when configured
        policy = retention.RetentionPolicy.load()
        idle_seconds = policy.conversation_state_hours * 3600
        app.state.state_backend = shared_state.backend_for(
            engine, settings.redis_url, conversation_ttl=idle_seconds
        )
        key = auth.load_secret_key(settings)  # the same on every instance (see .env.example)
        # Conversation states (guided mode, language), Rasa's health, rate limit, ticket store
        app.state.conversations = turn.Services(
            store=turn.ConversationStore(
                app.state.state_backend,
                idle_seconds=idle_seconds,
                max_per_owner=settings.limits.max_conversations_per_address,
            ),
            limiter=SharedLimiter(
                app.state.state_backend,
                "sender",
                settings.rate_limit_burst,
                settings.rate_limit_per_minute,
            ),
            sessions=app.state.sessions,
            admission=Admission(settings.limits, key, app.state.state_backend),
        )
        auth.context(app.state).throttle.backend = app.state.state_backend
        app.state.state_sweeper = asyncio.create_task(
            _sweep_state(app.state.state_backend, idle_seconds)
        )
        turn.attach(app.state.rasa, app.state.conversations)  # also used by Telegram
        app.state.telegram = await telegram_channel.start(
            settings, app.state.rasa, app.state.notifiers, app.state
        )
        app.state.outbox = None
        outbox_config = OutboxConfig.from_env(settings.gateway_url)
        if outbox_config.mode == "embedded":
            app.state.outbox = outbox.OutboxWorker(
                app.state.sessions, outbox_config, app.state.notifiers
            )
            app.state.outbox.start()
        # Cellule de veille: alerts evaluated within seconds of each filing, delivered by the outbox
        app.state.veille = None
        if veille_worker.mode_from_env() == "embedded":
            app.state.veille = veille_worker.VeilleWorker(
                app.state.sessions,
                on_alert=app.state.outbox.wake if app.state.outbox is not None else None,
            )
            app.state.veille.start()
        try:
            yield
        finally:
            if app.state.veille is not None:
                await app.state.veille.stop()
            if app.state.outbox is not None:
                await app.state.outbox.stop()
            if app.state.telegram is not None:
                await app.state.telegram.stop()
            app.state.state_sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await app.state.state_sweeper
            await app.state.rasa.aclose()
            await app.state.state_backend.close()
            await engine.dispose()

    app = FastAPI(
        title="Tranquillité gateway",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    # the sub-kind of every filed report, kept for the cellule de veille
    tickets.subtype_of = veille_config.get_config().ticket_subtype
    app.add_middleware(ChatCORS, paths=web.CORS_PATHS, allow_origins=settings.cors_origins)
    app.include_router(telegram_channel.router)
    app.include_router(notifications_api.router)
    app.include_router(dashboard.router)
    app.include_router(agency_api.router)
    app.include_router(veille_pages.router)
    app.include_router(veille_api.router)
    app.include_router(open311.router)
    app.middleware("http")(web.security_headers)
    if web.STATIC_DIR.is_dir():
        app.mount("/static", StaticFiles(directory=web.STATIC_DIR), name="static")
    app.include_router(web.router)
    app.include_router(internal_api.router)
    hardening.install(app, settings)
    return app
