"""Support for the agency and Open311 tests: the real gateway app (lifespan run, real SQLite or
PostgreSQL database) behind httpx.ASGITransport, seeded agents, tokens and tickets."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from fastapi import FastAPI
from sqlalchemy import text

from webhook.agency import auth
from webhook.app import create_app
from webhook.config import Settings
from webhook.store import tickets
from webhook.store.db import Base, Ticket, create_engine, migrate

PASSWORD = "mot de passe de test 2026"
# Dole (39198): incivilités go to the police municipale of Dole; Digne (04070): to Digne's.
AGENCY_X = "39-pm-dole"
AGENCY_Y = "04-pm-digne"
OBSERVER_AGENCY = "39-prefecture"
PERSONAL_TEXT = "Jean Martin 06 12 34 56 78, 3 rue des Arènes"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


async def reset_database(url: str) -> None:
    engine = create_engine(url)
    try:
        await migrate(engine)
        if url.startswith("postgresql"):
            names = ", ".join(t.name for t in Base.metadata.sorted_tables)
            async with engine.begin() as conn:
                await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    finally:
        await engine.dispose()


@asynccontextmanager
async def running_app(
    database_url: str, var_dir: Path, *, cookie_secure: bool = False
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    await reset_database(database_url)
    settings = Settings(
        var_dir=var_dir,
        database_url=database_url,
        rasa_url="http://127.0.0.1:9",
        secret_key="clé de test suffisamment longue pour signer les sessions",
        cookie_secure=cookie_secure,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="https://testserver" if cookie_secure else "http://testserver",
        ) as client:
            yield app, client


@dataclass
class Seed:
    x_tickets: list[str] = field(default_factory=list)
    y_tickets: list[str] = field(default_factory=list)
    tokens: dict[str, str] = field(default_factory=dict)


async def file(app: FastAPI, commune: str, n: int, report_type: str = "incivilite") -> Ticket:
    ticket, _ = await tickets.file_report(
        app.state.sessions,
        tickets.NewReport(
            report_type=report_type,
            commune_insee=commune,
            fields={"description": f"{PERSONAL_TEXT} — bruit {n}", "lieu": "place du marché"},
            channel="web",
            conversation_id=f"web-citizen{n}",
        ),
    )
    return ticket


async def seed(app: FastAPI, *, agents: tuple[tuple[str, str, str], ...] = ()) -> Seed:
    sessions = app.state.sessions
    result = Seed()
    for username, agency, role in agents:
        await auth.create_agent(sessions, agency, username, PASSWORD, role, username)
    for n in range(2):
        result.x_tickets.append((await file(app, "39198", n)).reference)
    result.y_tickets.append((await file(app, "04070", 10)).reference)
    for name, agency, role in (
        ("x", AGENCY_X, "agent"),
        ("y", AGENCY_Y, "agent"),
        ("observer", OBSERVER_AGENCY, "observer"),
    ):
        _, clear = await auth.create_api_token(sessions, agency, f"outil {name}", role)
        result.tokens[name] = clear
    return result


def csrf(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1)


async def login(
    client: httpx.AsyncClient, username: str, password: str = PASSWORD
) -> httpx.Response:
    page = await client.get("/agence/login")
    assert page.status_code == 200
    return await client.post(
        "/agence/login",
        data={"username": username, "password": password, "csrf_token": csrf(page.text)},
    )
