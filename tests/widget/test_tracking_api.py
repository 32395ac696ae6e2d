"""What the widget fetches to show a report's news in the citizen's conversation (issue 13):
``POST /api/v1/tracking`` (status and updates of the report whose tracking code is given) next to
``POST /api/v1/notifications`` (each new update once). The real gateway app with its embedded
outbox worker, on SQLite and on real PostgreSQL, behind httpx's ASGI transport.

Privacy: only the holder of the tracking code sees a report's news — never with its reference
alone, never an agent's name, an internal event or the report's content."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from reports import tracking
from webhook import replies
from webhook.app import create_app
from webhook.channels import web
from webhook.config import Settings
from webhook.store import lifecycle, tickets
from webhook.store.db import Base, Ticket, create_engine, migrate

ORIGIN = "https://mairie.example"
PERSONAL = "Jean Martin 06 12 34 56 78, 3 rue des Arènes"
AGENT = "agent:brigadier.dupont"


async def _reset(url: str) -> None:
    engine = create_engine(url)
    try:
        await migrate(engine)
        if url.startswith("postgresql"):
            names = ", ".join(t.name for t in Base.metadata.sorted_tables)
            async with engine.begin() as conn:
                await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def gateway(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    monkeypatch.setenv("TRANQUILLITE_OUTBOX_WORKER", "embedded")
    monkeypatch.setenv("TRANQUILLITE_OUTBOX_POLL_SECONDS", "0.1")
    monkeypatch.setenv("TRANQUILLITE_VEILLE_WORKER", "off")
    monkeypatch.delenv("TRANQUILLITE_TELEGRAM_TOKEN", raising=False)
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'tracking.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    await _reset(url)
    settings = Settings(
        var_dir=tmp_path,
        database_url=url,
        rasa_url="http://127.0.0.1:9",
        cors_origins=(ORIGIN,),
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield app, client


async def _file(app: FastAPI, conversation: str = "web-widget42") -> Ticket:
    ticket, _ = await tickets.file_report(
        app.state.sessions,
        tickets.NewReport(
            report_type="incivilite",
            commune_insee="39198",
            fields={"description": f"{PERSONAL} — tapage toutes les nuits"},
            channel="web",
            conversation_id=conversation,
        ),
    )
    return ticket


def _code(ticket: Ticket) -> str:
    assert ticket.tracking_code
    return tracking.display(ticket.tracking_code)


async def _follow(client: httpx.AsyncClient, code: str) -> httpx.Response:
    return await client.post(web.TRACKING_PATH, json={"tracking_code": code})


async def _notifications(client: httpx.AsyncClient, code: str, count: int) -> list[str]:
    texts: list[str] = []
    deadline = time.monotonic() + 20
    while len(texts) < count:
        assert time.monotonic() < deadline, f"only {texts} arrived"
        response = await client.post(web.NOTIFICATIONS_PATH, json={"tracking_codes": [code]})
        assert response.status_code == 200
        texts += [m["text"] for m in response.json()["messages"]]
        await asyncio.sleep(0.1)
    return texts


async def test_holder_of_the_code_gets_status_and_answers_as_notified(
    gateway: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = gateway
    ticket = await _file(app)
    code = _code(ticket)

    fresh = await _follow(client, code)
    assert fresh.status_code == 200
    assert fresh.headers["cache-control"] == "no-store"
    body = fresh.json()
    assert body["reference"] == ticket.reference
    assert body["status"] in ("received", "transmitted")
    assert body["status_label"] == lifecycle.STATUS_LABELS[body["status"]]
    # the filing itself is no news: the citizen was there
    assert all(u["kind"] != "status" or "reçu" not in u["text"] for u in body["updates"])

    deadline = time.monotonic() + 20
    while body["status"] != "transmitted":  # the outbox put it on the agency's dashboard
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.1)
        body = (await _follow(client, code)).json()
    await lifecycle.change_status(
        app.state.sessions, ticket.id, "acknowledged", AGENT, "Une patrouille passera ce soir."
    )
    await lifecycle.answer(app.state.sessions, ticket.id, AGENT, "Merci, c'est noté.")
    # the embedded outbox worker delivers the dashboard copy (received → transmitted) and keeps
    # the citizen's notices for the widget
    notified = await _notifications(client, code, 3)

    followed = await _follow(client, code.lower().replace("-", " "))  # as typed, leniently
    assert followed.status_code == 200
    body = followed.json()
    assert body["status"] == "acknowledged"
    assert body["status_label"] == "pris en compte"
    updates = [u["text"] for u in body["updates"]]
    # the same words as the notifications: the widget shows each piece of news once
    assert sorted(updates) == sorted(notified)
    answer = replies.message(
        "ticket_answer", "fr", reference=ticket.reference, text="Merci, c'est noté."
    )
    assert answer in updates
    assert any(u.endswith("Une patrouille passera ce soir.") for u in updates)
    assert [u["kind"] for u in body["updates"]].count("answer") == 1
    raw = followed.text
    # nothing the citizen was not told: no agent, no delivery event, no report content
    for secret in ("brigadier", "agent:", "system:", "delivered", PERSONAL, "Jean Martin"):
        assert secret not in raw
    # following a report does not use up its notifications (another device still gets them)
    again = await client.post(web.NOTIFICATIONS_PATH, json={"tracking_codes": [code]})
    assert again.json()["messages"] == []


async def test_only_the_tracking_code_opens_a_report(
    gateway: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = gateway
    ticket = await _file(app)
    other = await _file(app, "web-someone-else")
    unknown = await _follow(client, "K7QM-4XPA-9HWT")
    assert unknown.status_code == 404
    # the reference alone, a conversation's sender id, a near miss: the same answer
    for attempt in (
        ticket.reference,
        "web-widget42",
        "widget42",
        _code(ticket)[:-1] + ("0" if _code(ticket)[-1] != "0" else "1"),
        "",
        "x" * 32,
    ):
        response = await _follow(client, attempt)
        if attempt == "":
            assert response.status_code == 422
            continue
        assert response.status_code == 404, attempt
        assert response.json() == unknown.json()
    assert (await _follow(client, _code(other))).json()["reference"] == other.reference
    too_long = await _follow(client, "K7QM-4XPA-9HWT" + " " * 40)
    assert too_long.status_code == 422
    no_body = await client.post(web.TRACKING_PATH, content=b"{")
    assert no_body.status_code == 422
    # the code goes in the body, never in a URL
    assert (await client.get(web.TRACKING_PATH)).status_code == 405


@pytest.mark.parametrize("path", [web.NOTIFICATIONS_PATH, web.TRACKING_PATH])
async def test_a_town_hall_site_may_ask_for_news(
    gateway: tuple[FastAPI, httpx.AsyncClient], path: str
) -> None:
    """The widget embedded on a town hall's site (another origin) polls for news: CORS for the
    configured origins, and for the citizen's API only."""
    _app, client = gateway
    preflight = await client.options(
        path,
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    refused = await client.options(
        path,
        headers={"Origin": "https://ailleurs.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in refused.headers
    agency = await client.options(
        "/api/v1/agency/tickets",
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in agency.headers
