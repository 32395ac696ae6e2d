"""FastAPI gateway: assembles the rooms' routers, the middleware and the lifespan (database,
Rasa client, conversation services, Telegram, outbox worker, veille worker). No route is defined
here."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from webhook.agency import api as agency_api
from webhook.agency import dashboard, open311
from webhook.channels import hardening, internal_api, notifications_api, telegram_channel, web
from webhook.channels.cors import ChatCORS
from webhook.config import Settings
from webhook.conversation import turn
from webhook.conversation.admission import Admission
from webhook.conversation.rasa_client import RasaClient
from webhook.conversation.ratelimit import TokenBucketLimiter
from webhook.delivery import notify, outbox
from webhook.delivery.base import OutboxConfig
from webhook.store import tickets
from webhook.store.db import create_engine, migrate, session_factory
from webhook.veille import api as veille_api
from webhook.veille import config as veille_config
from webhook.veille import figures as veille_figures
from webhook.veille import pages as veille_pages
from webhook.veille import worker as veille_worker

logger = logging.getLogger(__name__)


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
        # Conversation states (guided mode, language), Rasa's health, rate limit, ticket store
        app.state.conversations = turn.Services(
            store=turn.ConversationStore(
                max_per_owner=settings.limits.max_conversations_per_address
            ),
            limiter=TokenBucketLimiter(settings.rate_limit_burst, settings.rate_limit_per_minute),
            sessions=app.state.sessions,
            admission=Admission(settings.limits, settings.secret_key.encode() or None),
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
