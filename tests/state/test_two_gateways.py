"""Two gateway instances (two ``create_app()``, lifespans run) on one database, as behind a load
balancer: whichever instance a request reaches, the conversation, the Telegram buttons, the rate
limits and the action server's filings are the same."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from fake_bot_api import FakeBotAPI, callback_update, free_port
from security_support import (
    Gateway,
    guided_to_summary,
    internal_headers,
    report_body,
    settings_for,
    texts,
)
from sqlalchemy import text as sql
from sqlalchemy.exc import DBAPIError
from telegram_support import SECRET, SECRET_HEADER, TOKEN

from webhook import replies
from webhook.app import create_app
from webhook.config import Settings

REDIS_URL = os.environ.get("TRANQUILLITE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture(
    params=[
        "database",
        pytest.param("redis", marks=pytest.mark.redis),
    ]
)
def shared(request: pytest.FixtureRequest, database_url: str) -> dict[str, str]:
    """Where the gateways share their state: the database, or Redis beside it."""
    return {
        "database_url": database_url,
        "redis_url": REDIS_URL if request.param == "redis" else "",
    }


@asynccontextmanager
async def two_gateways(settings: Settings) -> AsyncIterator[tuple[Gateway, Gateway]]:
    async with AsyncExitStack() as stack:
        gateways = []
        for _ in range(2):
            app = create_app(settings)
            await stack.enter_async_context(app.router.lifespan_context(app))
            gateways.append(Gateway(app))
        # the PostgreSQL database is shared by the session: start from an empty one. The two
        # gateways' background workers are already running and may hold a row of the outbox:
        # PostgreSQL then ends one side of the deadlock, and the cleaning is done again.
        for attempt in range(5):
            try:
                async with gateways[0].app.state.db_engine.begin() as connection:
                    for table in (
                        "conversation_states",
                        "conversation_notes",
                        "rate_buckets",
                        "state_entries",
                        "ticket_events",
                        "ticket_destinations",
                        "veille_queue",
                        "outbox",
                        "tickets",
                    ):
                        await connection.execute(sql(f"DELETE FROM {table}"))
                break
            except DBAPIError as exc:
                if "deadlock" not in str(exc).lower() or attempt == 4:
                    raise
                await asyncio.sleep(0.2)
        try:
            yield gateways[0], gateways[1]
        finally:
            for gateway in gateways:
                await gateway.close()


class Alternating:
    """One citizen whose every message reaches the other gateway (a round-robin balancer)."""

    def __init__(self, first: Gateway, second: Gateway) -> None:
        self.gateways = [first, second]
        self.sent = 0
        self.app = first.app

    async def chat(self, sender: str, **body: Any) -> httpx.Response:
        gateway = self.gateways[self.sent % 2]
        self.sent += 1
        return await gateway.chat(sender, **body)

    async def ticket_count(self) -> int:
        return await self.gateways[0].ticket_count()


async def test_a_guided_report_started_on_one_gateway_is_filed_on_the_other(
    shared: dict[str, str], tmp_path: Path
) -> None:
    citizen = f"partagee-{uuid.uuid4().hex[:8]}"  # Redis keeps its keys between runs
    settings = settings_for(shared["database_url"], tmp_path, redis_url=shared["redis_url"])
    async with two_gateways(settings) as (a, b):
        both = Alternating(a, b)
        summary = await guided_to_summary(both, citizen)  # type: ignore[arg-type]
        assert both.sent == 8  # four messages on each gateway, each one a step further
        said = "\n".join(texts(summary))
        assert "Place du marché" in said and "Bruit" in said
        filed = await a.chat(citizen, payload="/guide:send")
        assert filed.status_code == 200
        (ticket,) = filed.json()["tickets"]
        assert ticket["reference"] and ticket["tracking_code"]
        assert await b.ticket_count() == 1
        # "Envoyer" once more on the other gateway: the same report, not a second one
        again = await b.chat(citizen, payload="/guide:send")
        assert again.json()["tickets"][0]["reference"] == ticket["reference"]
        assert await a.ticket_count() == 1


async def test_the_rate_limit_is_shared(shared: dict[str, str], tmp_path: Path) -> None:
    settings = settings_for(
        shared["database_url"],
        tmp_path,
        rate_limit_burst=3,
        rate_limit_per_minute=1,
        redis_url=shared["redis_url"],
    )
    presse, voisin = f"presse-{uuid.uuid4().hex[:8]}", f"voisin-{uuid.uuid4().hex[:8]}"
    async with two_gateways(settings) as (a, b):
        statuses = [
            (await gw.chat(presse, payload="/mode_guide")).status_code for gw in (a, b, a, b, a)
        ]
        assert statuses == [200, 200, 200, 429, 429]  # 3 in all, not 3 per gateway
        refused = await b.chat(presse, payload="/mode_guide")
        assert int(refused.headers["Retry-After"]) > 30
        assert (await b.chat(voisin, payload="/mode_guide")).status_code == 200  # per sender


class RasaStandIn:
    """Rasa's REST channel on a real port; on a message, it files the report through the
    *other* gateway's internal API, as the action server behind a load balancer may."""

    def __init__(self, on_message: Callable[[dict[str, Any]], None]) -> None:
        self.on_message = on_message
        self.port = free_port()
        handler = self._handler()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(self, data: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._send(b'"Hello from Rasa: 3.6.21"')

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stand_in.on_message(body)
                reply = [{"recipient_id": body["sender"], "text": "Votre signalement est envoyé."}]
                self._send(json.dumps(reply).encode())

        return Handler


async def test_the_action_servers_filing_on_the_other_gateway_reaches_the_running_turn(
    shared: dict[str, str], tmp_path: Path
) -> None:
    citizen = f"action-{uuid.uuid4().hex[:8]}"
    loop = asyncio.get_running_loop()
    gateways: list[Gateway] = []
    filings: list[int] = []

    def file_through_b(body: dict[str, Any]) -> None:
        if body["message"] != "/affirm":
            return
        response = asyncio.run_coroutine_threadsafe(
            gateways[1]
            .client()
            .post(
                "/internal/v1/reports",
                json=report_body(body["sender"]),  # Rasa's sender: the conversation id
                headers=internal_headers(),
            ),
            loop,
        ).result(timeout=60)
        filings.append(response.status_code)

    rasa = RasaStandIn(file_through_b)
    rasa.thread.start()
    try:
        settings = settings_for(
            shared["database_url"], tmp_path, rasa_url=rasa.url, redis_url=shared["redis_url"]
        )
        async with two_gateways(settings) as (a, b):
            gateways.extend([a, b])
            first = await a.chat(citizen, text="des tags sur le mur de l'école")
            assert first.status_code == 200 and not first.json()["tickets"]
            confirmed = await a.chat(citizen, payload="/affirm")  # runs on a, filed on b
            assert filings == [201]
            (ticket,) = confirmed.json()["tickets"]
            assert ticket["reference"].startswith("39-") and ticket["tracking_code"]
            # reported once: the next turn (on the other gateway) has nothing more
            later = await b.chat(citizen, text="merci")
            assert later.json()["tickets"] == []
    finally:
        rasa.server.shutdown()
        rasa.server.server_close()


async def test_a_telegram_button_sent_by_one_gateway_works_on_the_other(
    fake_api: FakeBotAPI, tmp_path: Path
) -> None:
    settings = replace(
        settings_for(f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}", tmp_path),
        telegram_token=TOKEN,
        telegram_secret=SECRET,
        telegram_base_url=fake_api.base_url,
        telegram_mode="webhook",
    )
    async with two_gateways(settings) as (a, b):
        delivered = await a.app.state.notifiers.send(
            "telegram",
            "4242",
            replies.Reply(
                text="Voulez-vous faire un signalement ?",
                buttons=[replies.Button(title="Signaler", payload="/mode_guide")],
            ),
        )
        assert delivered is True
        (sent,) = fake_api.calls_of("sendMessage", chat_id=4242)
        markup = sent.params["reply_markup"]
        markup = json.loads(markup) if isinstance(markup, str) else markup
        key = markup["inline_keyboard"][0][0]["callback_data"]

        async def tap(gateway: Gateway, update_id: int) -> None:
            response = await gateway.client().post(
                "/telegram/webhook",
                json=callback_update(update_id, 4242, key, message_id=77),
                headers={SECRET_HEADER: SECRET},
            )
            assert response.status_code == 200

        await tap(b, 501)  # the tap reaches the other gateway
        (answer,) = await fake_api.await_for("answerCallbackQuery", count=1)
        assert not answer.params.get("text")  # not "this button has expired"
        replies_sent = await fake_api.await_for("sendMessage", count=2, chat_id=4242)
        assert "Mode guidé" in str(replies_sent[1].params["text"])  # the button's choice ran
        await fake_api.await_quiet()
        sent_after_first_tap = len(fake_api.calls_of("sendMessage", chat_id=4242))
        # a second tap on the same keyboard, on the first gateway: answered, nothing sent
        await tap(a, 502)
        await fake_api.await_for("answerCallbackQuery", count=2)
        await fake_api.await_quiet()
        assert len(fake_api.calls_of("sendMessage", chat_id=4242)) == sent_after_first_tap


@pytest.fixture
def fake_api() -> Any:
    api = FakeBotAPI(TOKEN, free_port())
    api.start()
    try:
        yield api
    finally:
        api.stop()
