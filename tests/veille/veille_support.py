"""Support of the cellule de veille tests: tickets filed through the real filing path, then
moved to the moment a test needs (the veille reads ``created_at``: time travel without sleeping),
and helpers that read every figure a page, chart, CSV or API answer shows."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from webhook.app import create_app
from webhook.config import Settings
from webhook.store import tickets
from webhook.store.db import Ticket

Sessions = async_sessionmaker[AsyncSession]

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)  # a Friday
FORCALQUIER = "04088"  # EPCI 240400440 (CC Pays de Forcalquier - Montagne de Lure)
NIOZELLES = "04138"  # same EPCI as Forcalquier (CC Pays de Forcalquier - Montagne de Lure)
MANE = "04111"  # another EPCI
DIGNE = "04070"
DOLE = "39198"
PERSONAL_TEXT = "Jean Martin 06 12 34 56 78, 3 rue des Arènes"


async def file_at(
    sessions: Sessions,
    when: dt.datetime,
    *,
    commune: str = FORCALQUIER,
    report_type: str = "arnaque",
    resident: str | None = "r1",
    fields: dict[str, str] | None = None,
) -> Ticket:
    """File a report (real routing, outbox and veille queue rows), dated ``when``."""
    answers = {"description": f"{PERSONAL_TEXT} — appel de ma banque"}
    if report_type == "arnaque":
        answers["type_arnaque"] = "faux_conseiller"
    answers.update(fields or {})
    ticket, _ = await tickets.file_report(
        sessions,
        tickets.NewReport(
            report_type=report_type,
            commune_insee=commune,
            fields=answers,
            channel="web",
            conversation_id=f"web-{resident}" if resident else None,
        ),
    )
    async with sessions() as session, session.begin():
        await session.execute(
            update(Ticket).where(Ticket.id == ticket.id).values(created_at=when, updated_at=when)
        )
    return ticket


async def file_many(
    sessions: Sessions, moments: Iterable[dt.datetime], **kwargs: object
) -> list[Ticket]:
    out = []
    for n, when in enumerate(moments):
        options = dict(kwargs)
        options.setdefault("resident", f"r{n}")
        out.append(await file_at(sessions, when, **options))  # type: ignore[arg-type]
    return out


def small_numbers(values: Iterable[object]) -> list[str]:
    """The values among ``values`` that show a count from 1 to 10."""
    bad = []
    for value in values:
        text = str(value).strip()
        if re.fullmatch(r"\d+", text) and 1 <= int(text) <= 10:
            bad.append(text)
    return bad


def csv_counts(body: str) -> list[dict[str, str]]:
    lines = [line for line in body.splitlines() if not line.startswith("#")]
    return list(csv.DictReader(io.StringIO("\n".join(lines))))


def html_cells(html: str) -> list[str]:
    """The text of every <td> of a page (tags inside removed)."""
    return [
        re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", html, re.S)
    ]


def svg_values(svg: str) -> list[str]:
    """The value labels of a chart (``value-N`` groups)."""
    return [
        re.sub(r"<[^>]+>", "", m).strip()
        for m in re.findall(r'<g id="value-\d+">(.*?)</g>', svg, re.S)
    ]


def aware(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite gives naive UTC datetimes back."""
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


async def insert_tickets(sessions: Sessions, rows: list[dict[str, object]]) -> None:
    """Bulk rows of the ticket table (volume for figures; no outbox, no veille queue)."""
    base = {
        "decision": {},
        "language": "fr",
        "channel": "web",
        "anonymous": True,
        "status": "received",
    }
    async with sessions() as session, session.begin():
        result = await session.execute(select(func.coalesce(func.max(Ticket.id), 0)))
        start = int(result.scalar_one())
        payload = []
        for n, row in enumerate(rows, start=start + 1):
            item = {**base, **row}
            item.setdefault("reference", f"{item['departement']}-2026-9{n:05d}")
            item.setdefault("updated_at", item["created_at"])
            item.setdefault("fields", {})
            commune = item.get("commune_insee")
            # as filed (webhook.store.tickets)
            item.setdefault(
                "epci_siren", tickets.epci_of(commune if isinstance(commune, str) else None)
            )
            payload.append(item)
        await session.execute(insert(Ticket), payload)


@asynccontextmanager
async def running_gateway(
    database_url: str, var_dir: Path
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The real gateway on an existing database (kept as it is)."""
    settings = Settings(
        var_dir=var_dir,
        database_url=database_url,
        rasa_url="http://127.0.0.1:9",
        secret_key="clé de test suffisamment longue pour signer les sessions",
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield app, client
