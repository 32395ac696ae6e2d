"""Finding 8 — Open311's api_key in query strings and the sender ids of
/api/v1/notifications?sender= ended up in access logs and proxies; the notifications endpoint
handed another citizen's messages to whoever guessed the id, and consumed them. Now the key may
come in a header (the query parameter stays for GeoReport clients) and is masked in any access
log; notifications are fetched with the report's tracking code, in a POST body."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn
from agency_support import seed
from security_support import Gateway, internal_headers, report_body, settings_for

from webhook.app import create_app
from webhook.delivery.base import OutboxConfig
from webhook.delivery.outbox import OutboxWorker
from webhook.store import lifecycle, tickets
from webhook.store.db import create_engine, migrate, session_factory


async def test_open311_key_in_a_header(gateway: Gateway) -> None:
    data = await seed(gateway.app)
    client = gateway.client()
    for headers in (
        {"X-Api-Key": data.tokens["x"]},
        {"Authorization": f"Bearer {data.tokens['x']}"},
    ):
        listed = await client.get("/open311/v2/requests.json", headers=headers)
        assert listed.status_code == 200
        assert {r["service_request_id"] for r in listed.json()} == set(data.x_tickets)
    assert listed.headers["cache-control"] == "no-store"


def test_keys_in_query_strings_never_reach_the_access_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """uvicorn with its access log on (as an operator might run it): the line has no key."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'log.db'}"

    async def prepare() -> str:
        engine = create_engine(url)
        await migrate(engine)
        from webhook.agency import auth

        _, clear = await auth.create_api_token(session_factory(engine), "39-pm-dole", "outil")
        await engine.dispose()
        return clear

    key = asyncio.run(prepare())
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = create_app(settings_for(url, tmp_path))
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, access_log=True, log_config=None, log_level="info"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    caplog.set_level(logging.INFO, logger="uvicorn.access")
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        response = httpx.get(
            f"http://127.0.0.1:{port}/open311/v2/requests.json",
            params={"api_key": key, "status": "open"},
        )
        assert response.status_code == 200
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    lines = [r.getMessage() for r in caplog.records if r.name == "uvicorn.access"]
    assert any("/open311/v2/requests.json" in line for line in lines)
    assert not any(key in line or key[3:20] in line for line in lines)


async def test_notifications_need_the_reports_tracking_code(gateway: Gateway) -> None:
    filed = await gateway.client().post(
        "/internal/v1/reports", json=report_body("web-widget42"), headers=internal_headers()
    )
    reference, code = filed.json()["reference"], filed.json()["tracking_code"]
    sessions = gateway.app.state.sessions
    ticket = await tickets.get_by_reference(sessions, reference)
    assert ticket is not None
    await lifecycle.acknowledge(sessions, ticket.id, "agent:alice")
    await OutboxWorker(sessions, OutboxConfig()).drain()  # the citizen's notice is kept

    client = gateway.client("203.0.113.77")
    # whoever knows (or made up) the sender id gets nothing, and consumes nothing
    by_sender = await client.get("/api/v1/notifications", params={"sender": "widget42"})
    assert by_sender.status_code in (404, 405) and "pris en compte" not in by_sender.text
    guessed = await client.post(
        "/api/v1/notifications", json={"tracking_codes": ["K7QM-4XPA-9HW2"]}
    )
    assert guessed.status_code == 200 and guessed.json()["messages"] == []

    mine = await gateway.client().post("/api/v1/notifications", json={"tracking_codes": [code]})
    assert mine.headers["cache-control"] == "no-store"
    messages = mine.json()["messages"]
    assert [m["reference"] for m in messages] == [reference] * len(messages)
    assert any("pris en compte" in m["text"] for m in messages)
