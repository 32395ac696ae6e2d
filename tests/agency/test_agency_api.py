"""Agency JSON API (Bearer token) on SQLite and real PostgreSQL: isolation (404), roles, tokens
stored hashed."""

from __future__ import annotations

import httpx
from agency_support import PERSONAL_TEXT, seed
from fastapi import FastAPI
from sqlalchemy import select

from webhook.agency import auth
from webhook.store import tickets
from webhook.store.db import ApiToken

Gateway = tuple[FastAPI, httpx.AsyncClient]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_token_reads_lists_and_updates_only_its_agency(gateway: Gateway) -> None:
    app, client = gateway
    data = await seed(app)
    x = bearer(data.tokens["x"])
    listing = await client.get("/api/v1/agency/tickets", headers=x)
    assert listing.status_code == 200
    assert {t["reference"] for t in listing.json()["tickets"]} == set(data.x_tickets)
    other = data.y_tickets[0]
    assert (await client.get(f"/api/v1/agency/tickets/{other}", headers=x)).status_code == 404
    for path, body in (
        ("acknowledge", None),
        ("status", {"status": "closed"}),
        ("answer", {"text": "bonjour"}),
    ):
        response = await client.post(f"/api/v1/agency/tickets/{other}/{path}", headers=x, json=body)
        assert response.status_code == 404, path
    ticket = await tickets.get_by_reference(app.state.sessions, other)
    assert ticket is not None and ticket.status == "received" and len(ticket.events) == 1

    own = data.x_tickets[0]
    done = await client.post(f"/api/v1/agency/tickets/{own}/acknowledge", headers=x)
    assert done.status_code == 200 and done.json()["status"] == "acknowledged"
    closed = await client.post(
        f"/api/v1/agency/tickets/{own}/status", headers=x, json={"status": "closed"}
    )
    assert closed.json()["open311_status"] == "closed"
    illegal = await client.post(
        f"/api/v1/agency/tickets/{own}/status", headers=x, json={"status": "acknowledged"}
    )
    assert illegal.status_code == 409
    y = bearer(data.tokens["y"])
    assert (await client.get(f"/api/v1/agency/tickets/{own}", headers=y)).status_code == 404


async def test_missing_bad_or_observer_tokens(gateway: Gateway) -> None:
    app, client = gateway
    data = await seed(app)
    assert (await client.get("/api/v1/agency/tickets")).status_code == 401
    assert (
        await client.get("/api/v1/agency/tickets", headers=bearer("tq_faux"))
    ).status_code == 401
    observer = bearer(data.tokens["observer"])
    response = await client.get(f"/api/v1/agency/tickets/{data.x_tickets[0]}", headers=observer)
    assert response.status_code == 403 and PERSONAL_TEXT not in response.text
    stats = await client.get("/api/v1/agency/statistics", headers=observer)
    # the cellule de veille's figures of the observer's territory (complete weeks only)
    assert stats.status_code == 200
    assert stats.json()["territory"] == {"kind": "departement", "code": "39", "name": "Jura (39)"}
    assert PERSONAL_TEXT not in stats.text and data.x_tickets[0] not in stats.text
    x = bearer(data.tokens["x"])
    assert (await client.get("/api/v1/agency/statistics", headers=x)).status_code == 403


async def test_tokens_are_stored_hashed(gateway: Gateway) -> None:
    app, _client = gateway
    data = await seed(app)
    async with app.state.sessions() as session:
        rows = (await session.execute(select(ApiToken))).scalars().all()
    stored = " ".join(
        str(getattr(row, column.name)) for row in rows for column in ApiToken.__table__.columns
    )
    for clear in data.tokens.values():
        assert clear not in stored
        assert clear[3:] not in stored  # not even without the mark
        assert auth.hash_token(clear) in stored
    assert all(len(row.token_hash) == 64 and len(row.token_prefix) == 12 for row in rows)
