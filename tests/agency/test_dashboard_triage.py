"""Dashboard triage (issue 13) through the real app, on SQLite and on real PostgreSQL: open
tickets where someone may be in danger now come first and are marked in words; times are Paris
time, in the list, the detail page and the date filters; every field has its French label from
the report model (reports.label / reports.display — no raw ``danger_now: oui``); the history
speaks French (no ``system:outbox``); each ticket has a one-line preview."""

from __future__ import annotations

import re
from html import unescape

import httpx
from agency_support import login
from fastapi import FastAPI
from triage_data import seed_triage

import reports
from webhook.store.db import Ticket

Gateway = tuple[FastAPI, httpx.AsyncClient]


async def _seed(app: FastAPI) -> dict[str, Ticket]:
    return await seed_triage(app.state.sessions)


def _listed(html: str) -> list[str]:
    return re.findall(r'<a class="ticket-ref" href="/agence/tickets/([^"]+)"', html)


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


async def test_open_danger_tickets_come_first_and_are_marked(gateway: Gateway) -> None:
    app, client = gateway
    filed = await _seed(app)
    await login(client, "agent-police")
    page = await client.get("/agence/tickets")
    assert page.status_code == 200
    order = _listed(page.text)
    ref = {name: t.reference for name, t in filed.items()}
    # open danger first (newest first), then everything else newest first — the closed
    # burglary, in danger when it was filed, is no longer at the top
    assert order == [
        ref["child"], ref["violence"],
        ref["burglary_closed"], ref["dealing"], ref["old_theft"],
    ]  # fmt: skip
    items = page.text.split('<li class="ticket')[1:]
    marked = [ref_ for ref_, item in zip(order, items, strict=True) if "Danger immédiat" in item]
    assert marked == [ref["child"], ref["violence"], ref["burglary_closed"]]
    assert all('class="badge-danger"' in item for item in items[:2])
    # a filter keeps the triage order
    only_open = _listed((await client.get("/agence/tickets?statut=open")).text)
    assert only_open == [ref["child"], ref["violence"], ref["dealing"], ref["old_theft"]]


async def test_times_are_paris_time_and_filters_read_paris_days(gateway: Gateway) -> None:
    app, client = gateway
    filed = await _seed(app)
    await login(client, "agent-police")
    text = _text((await client.get("/agence/tickets")).text)
    assert "UTC" not in text
    assert "reçu le 14/07/2026 à 12:05" in text  # summer time: UTC+2
    assert "reçu le 01/12/2026 à 10:00" in text  # winter time: UTC+1
    # 14 July 22:30 UTC is 15 July in Paris
    assert "reçu le 15/07/2026 à 00:30" in text
    violence = filed["violence"].reference
    on_15 = _listed((await client.get("/agence/tickets?du=2026-07-15&au=2026-07-15")).text)
    assert on_15 == [violence]
    on_14 = _listed((await client.get("/agence/tickets?du=2026-07-14&au=2026-07-14")).text)
    assert on_14 == [filed["old_theft"].reference]
    detail = _text((await client.get(f"/agence/tickets/{violence}")).text)
    assert "15/07/2026 à 00:30 (heure de Paris)" in detail
    assert "UTC" not in detail


async def test_fields_and_history_in_french_words(gateway: Gateway) -> None:
    app, client = gateway
    filed = await _seed(app)
    await login(client, "agent-police")
    for name, ticket in filed.items():
        html = (await client.get(f"/agence/tickets/{ticket.reference}")).text
        text = _text(html)
        for key, value in ticket.fields.items():
            label, shown = reports.label(key), reports.display(key, value)
            assert label != key, key  # every field of a report is a question of the model
            assert f"<dt>{label}</dt>" in unescape(html), (name, key)
            assert f"<dt>{key}</dt>" not in html, (name, key)
            assert unescape(shown) in text, (name, key)
        assert "danger_now" not in text and "en_cours" not in text
        # the history: who and what in words, never the outbox's ids
        assert "system:" not in text and "delivered to" not in text and "citizen:" not in text
        assert "Envoi automatique" in text
        assert "Transmis (tableau de bord) à Commissariat de police de Dole" in text
        assert "Le déclarant (discussion du site)" in text
        assert "discussion du site, en français" in text
    child = _text((await client.get(f"/agence/tickets/{filed['child'].reference}")).text)
    assert "Danger immédiat Oui" in child  # the question's label and the choice's label
    assert "Âge de l'enfant 6 à 10 ans" in child
    assert "Danger immédiat : quelqu'un peut être en danger en ce moment" in child
    closed = _text((await client.get(f"/agence/tickets/{filed['burglary_closed'].reference}")).text)
    assert "Statut : transmis → clos — Agent « agent-police »" in closed
    assert "Interpellation." in closed


async def test_one_line_preview(gateway: Gateway) -> None:
    app, client = gateway
    filed = await _seed(app)
    await login(client, "agent-police")
    html = (await client.get("/agence/tickets")).text
    previews = [unescape(p) for p in re.findall(r'<p class="ticket-preview">(.*?)</p>', html, re.S)]
    assert len(previews) == len(filed)
    assert all("\n" not in p and len(p) <= 160 for p in previews)
    theft = next(p for p in previews if p.startswith("On m'a volé mon vélo"))
    assert theft.endswith("…")  # long descriptions are cut
    # no description: the answers in words
    assert "hall du bâtiment B · Le soir" in previews
