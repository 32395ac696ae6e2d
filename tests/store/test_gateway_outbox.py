"""The real gateway (uvicorn, real HTTP) with its embedded outbox worker: a report filed through
the internal API reaches the agency's webhook, and the web citizen fetches the status changes
once through POST /api/v1/notifications with the report's tracking code. On SQLite and
PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest
import uvicorn
from sqlalchemy.ext.asyncio import AsyncEngine
from store_support import RECEIVER_SECRET, Receiver, add_channel, database_url, free_port

from webhook.app import create_app
from webhook.config import Settings
from webhook.store import lifecycle, tickets
from webhook.store.db import session_factory

TOKEN = "internal-test-token"


@pytest.fixture
async def gateway(
    db_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.setenv("TRANQUILLITE_OUTBOX_WORKER", "embedded")
    monkeypatch.setenv("TRANQUILLITE_OUTBOX_POLL_SECONDS", "0.1")
    monkeypatch.delenv("TRANQUILLITE_TELEGRAM_TOKEN", raising=False)
    # the test receiver is a plain-http server on this machine: the operator allows it
    monkeypatch.setenv("TRANQUILLITE_WEBHOOK_ALLOW_HTTP", "1")
    monkeypatch.setenv("TRANQUILLITE_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8")
    port = free_port()
    settings = replace(
        Settings.from_env(),
        gateway_port=port,
        database_url=database_url(db_engine),
        internal_token=TOKEN,
        auto_migrate=False,
        rasa_url=f"http://127.0.0.1:{free_port()}",
    )
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
        )
    )
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and not task.done(), "gateway did not start"
        await asyncio.sleep(0.05)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=20) as client:
            yield client
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 20)


async def fetch(client: httpx.AsyncClient, code: str) -> httpx.Response:
    return await client.post("/api/v1/notifications", json={"tracking_codes": [code]})


async def fetch_until(client: httpx.AsyncClient, code: str, count: int) -> list[str]:
    texts: list[str] = []
    deadline = time.monotonic() + 20
    while len(texts) < count:
        assert time.monotonic() < deadline, f"only {texts} arrived"
        response = await fetch(client, code)
        assert response.status_code == 200
        texts += [m["text"] for m in response.json()["messages"]]
        await asyncio.sleep(0.1)
    return texts


async def test_filed_report_is_delivered_and_citizen_notified(
    db_engine: AsyncEngine, gateway: httpx.AsyncClient, receiver: Receiver
) -> None:
    sessions = session_factory(db_engine)
    probe, _ = await tickets.file_report(
        sessions, tickets.NewReport("incivilite", "39198", {"description": "x"}, channel="api")
    )
    agency = probe.destinations[0].agency_id
    await add_channel(db_engine, agency, "webhook", receiver.url, RECEIVER_SECRET)

    body = {
        "report_type": "incivilite",
        "commune_insee": "39198",
        "fields": {"description": "tags sur le mur de l'école"},
        "conversation_id": "web-widget42",
        "channel": "web",
        "idempotency_key": "web-widget42:1",
    }
    response = await gateway.post(
        "/internal/v1/reports", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert response.status_code == 201, response.text
    reference = response.json()["reference"]
    code = response.json()["tracking_code"]  # given to the conversation that filed

    texts = await fetch_until(gateway, code, 1)
    assert texts == [f"Votre signalement {reference} a été transmis au service compétent."]
    assert receiver.keys == [f"webhook:{reference}:{agency}:1"]
    # each message is handed out once; another code sees nothing
    again = await fetch(gateway, code)
    assert again.json() == {"messages": []}
    other = await fetch(gateway, "K7QM-4XPA-9HW2")
    assert other.json() == {"messages": []}

    ticket = await tickets.get_by_reference(sessions, reference)
    assert ticket is not None and ticket.status == "transmitted"
    await lifecycle.acknowledge(sessions, ticket.id, "agent:alice")
    await lifecycle.answer(sessions, ticket.id, "agent:alice", "Une patrouille passera demain.")
    texts = await fetch_until(gateway, code, 2)
    assert "pris en compte" in texts[0]
    assert texts[1].endswith("Une patrouille passera demain.")

    bad = await gateway.post("/api/v1/notifications", json={"tracking_codes": []})
    assert bad.status_code == 422
