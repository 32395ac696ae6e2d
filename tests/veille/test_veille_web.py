"""The cellule de veille through the real gateway, on SQLite and on real PostgreSQL: pages, charts,
CSV and API show no count from 1 to 10 and let none be recomputed from totals (checked against
counts computed here, independently); an observer sees its territory only and no ticket; an agent
sees the alerts of its own tickets with their references; alerts are acknowledged and closed."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from agency_support import PASSWORD, csrf, login, running_app
from fastapi import FastAPI
from sqlalchemy import select
from veille_data import DEPARTEMENT_ONLY, MANOSQUE, DataSet, build
from veille_support import (
    FORCALQUIER,
    NOW,
    PERSONAL_TEXT,
    csv_counts,
    file_at,
    html_cells,
    small_numbers,
    svg_values,
)

from webhook.agency import auth
from webhook.agency import territory as territories
from webhook.store.db import VeilleAlert
from webhook.veille.worker import VeilleWorker

Gateway = tuple[FastAPI, httpx.AsyncClient]
HIDDEN = ("< 11", "secret")
GENDARMERIE_FORCALQUIER = "gn-3004391"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def veille_app(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient, DataSet]]:
    monkeypatch.setenv("TRANQUILLITE_OUTBOX_WORKER", "off")
    monkeypatch.setenv("TRANQUILLITE_VEILLE_WORKER", "off")
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'veille.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    async with running_app(url, tmp_path) as (app, client):
        app.state.veille_clock = lambda: NOW
        data = await build(app.state.sessions)
        # a wave of fake bank advisers in Forcalquier these last days
        for n in range(8):
            await file_at(app.state.sessions, NOW - (n + 1) * 7 * _HOUR, resident=f"w{n}")
        await VeilleWorker(app.state.sessions, clock=lambda: NOW).drain()
        yield app, client, data


_HOUR = dt.timedelta(hours=1)


async def observer(
    app: FastAPI, client: httpx.AsyncClient, name: str, territory: str | None
) -> None:
    agent = await auth.create_agent(
        app.state.sessions, "04-prefecture", name, PASSWORD, "observer", name
    )
    if territory:
        await territories.set_agent_territory(app.state.sessions, agent.id, territory)
    assert (await login(client, name)).status_code == 303


async def token(
    app: FastAPI, territory: str | None, agency: str = "04-prefecture"
) -> dict[str, str]:
    created, clear = await auth.create_api_token(app.state.sessions, agency, "outil", "observer")
    if territory:
        await territories.set_token_territory(app.state.sessions, created.id, territory)
    return {"Authorization": f"Bearer {clear}"}


# ---------------------------------------------------------------------------------- small counts


async def test_no_output_shows_a_count_from_1_to_10(
    veille_app: tuple[FastAPI, httpx.AsyncClient, DataSet],
) -> None:
    app, client, data = veille_app
    await observer(app, client, "prefecture-04", None)
    page = await client.get("/agence/veille")
    assert page.status_code == 200
    cells = html_cells(page.text)
    assert cells and small_numbers(cells) == []
    assert "&lt; 11" in page.text and "secret" in page.text
    # the charts of the page: every value label is a published value
    for src in re.findall(r'<img src="([^"]+)"', page.text):
        chart = await client.get(src.replace("&amp;", "&"))
        assert chart.status_code == 200 and chart.headers["content-type"] == "image/svg+xml"
        assert "script" not in chart.text
        values = svg_values(chart.text)
        assert len(values) == 12 and small_numbers(values) == []
    # one week's commune and EPCI tables, sorted on every type
    for week in data.weeks[-3:]:
        for level in ("commune", "epci"):
            for sort in ("", "arnaque", "incivilite"):
                table = await client.get(
                    "/agence/veille/communes",
                    params={"semaine": week.label, "niveau": level, "tri": sort},
                )
                assert table.status_code == 200
                assert small_numbers(html_cells(table.text)) == []
    # exports and API
    for level in ("commune", "epci", "departement"):
        body = await client.get(
            "/agence/veille/export.csv",
            params={"du": data.weeks[0].monday.isoformat(), "niveau": level},
        )
        assert body.status_code == 200
        rows = csv_counts(body.text)
        assert rows and small_numbers(r["count"] for r in rows) == []
    headers = await token(app, None)
    alerts = await client.get(
        "/api/v1/veille/alerts", params={"departement": "04"}, headers=headers
    )
    assert alerts.status_code == 200 and alerts.json()
    for alert in alerts.json():
        assert small_numbers([alert["count"]]) == []
        assert re.search(r"\b([1-9]|10) signalements", alert["explanation"]) is None
    stats = await client.get("/api/v1/agency/statistics", headers=headers)
    assert stats.status_code == 200
    assert small_numbers(c["count"] for c in stats.json()["cells"]) == []
    alert_page = await client.get(f"/agence/veille/alertes/{alerts.json()[0]['id']}")
    assert small_numbers(re.findall(r"<dd>([^<]*)</dd>", alert_page.text)) == []


async def test_published_figures_are_true_and_no_hidden_one_can_be_recomputed(
    veille_app: tuple[FastAPI, httpx.AsyncClient, DataSet],
) -> None:
    app, client, data = veille_app
    headers = await token(app, None)
    published: dict[tuple[str, str, str, str], str] = {}
    for level in ("commune", "epci", "departement"):
        response = await client.get(
            "/api/v1/veille/stats.csv",
            params={"departement": "04", "from": data.weeks[0].monday.isoformat(), "by": level},
            headers=headers,
        )
        assert response.status_code == 200, response.text
        assert response.text.splitlines()[0] == "week,area_code,area_name,report_type,count"
        for row in csv_counts(response.text):
            published[(row["week"], level, row["area_code"], row["report_type"])] = row["count"]
    truth = data.truth("04")
    # every non-zero count is published, a published number is the true count, "< 11" is
    # never more than 10 (a zero hidden among small counts is the rare exception), "secret"
    # hides a count above 10
    assert set(published) >= {k for k, v in truth.items() if v}
    for key, shown in published.items():
        if shown == "< 11":
            assert truth[key] <= 10
        elif shown == "secret":
            assert truth[key] > 10
        else:
            assert int(shown) == truth[key] and int(shown) > 10
    assert all(truth[k] == 0 for k in set(published) - {k for k, v in truth.items() if v})
    assert any(v == "< 11" for v in published.values())
    assert any(v == "secret" for v in published.values())
    assert not _recomputable(published)


async def test_dates_out_of_range_or_reversed_are_refused_in_words(
    veille_app: tuple[FastAPI, httpx.AsyncClient, DataSet],
) -> None:
    app, client, data = veille_app
    headers = await token(app, None)
    first = data.weeks[0].monday.isoformat()
    for params, words in (
        # year 1 raised OverflowError (a 500), found by schemathesis
        ({"from": "0001-01-01", "to": "0001-01-01"}, "Date trop ancienne"),
        ({"from": "1999-12-31"}, "Date trop ancienne"),
        ({"from": first, "to": "1970-01-05"}, "Date trop ancienne"),
        ({"from": "2026-13-01"}, None),  # not a date: FastAPI's own 422
        ({"from": first, "to": data.weeks[0].monday.replace(year=2001).isoformat()}, "après"),
    ):
        response = await client.get(
            "/api/v1/veille/stats.csv",
            params={"departement": "04", "by": "epci", **params},
            headers=headers,
        )
        assert response.status_code == 422, (params, response.text)
        if words:
            assert words in response.text, response.text


def _recomputable(published: dict[tuple[str, str, str, str], str]) -> list[tuple[str, ...]]:
    """Hidden cells an observer could solve from the published cells and the known sums (an
    EPCI is the sum of its communes, the département of its EPCIs, a type of its sub-kinds)."""
    engine = territories.routing.get_engine()
    hidden = sorted(k for k, v in published.items() if v in HIDDEN)
    column = {k: i for i, k in enumerate(hidden)}

    def value(key: tuple[str, str, str, str]) -> float | None:
        shown = published.get(key)
        if shown is None:
            return 0.0
        return None if shown in HIDDEN else float(shown)

    equations: list[tuple[dict[tuple[str, str, str, str], int]]] = []
    weeks = {k[0] for k in published}
    categories = {k[3] for k in published}
    communes = [c for c in engine.communes() if c.departement == "04" and c.kind == "commune"]
    epcis = sorted({c.epci_siren for c in communes if c.epci_siren})
    for week in weeks:
        for category in categories:
            if category.split(":")[0] in DEPARTEMENT_ONLY:
                continue  # counted for the département only: no commune or EPCI figure
            for epci in epcis:
                if ":" in category:
                    break  # sub-kinds are counted from the EPCI up, not per commune
                members = {
                    (week, "commune", c.insee, category): 1
                    for c in communes
                    if c.epci_siren == epci
                }
                members[(week, "epci", epci, category)] = -1
                equations.append((members,))
            dep = {(week, "epci", e, category): 1 for e in epcis}
            dep[(week, "departement", "04", category)] = -1
            equations.append((dep,))
        for level, code in {(k[1], k[2]) for k in published if k[0] == week}:
            if level == "commune" and engine.commune(code).epci_siren:  # type: ignore[union-attr]
                continue  # no sub-kind per commune
            for report_type in {c.split(":")[0] for c in categories if ":" in c}:
                members = {
                    (week, level, code, c): 1 for c in categories if c.startswith(report_type + ":")
                }
                members[(week, level, code, report_type)] = -1
                equations.append((members,))
    rows = []
    for (members,) in equations:
        if not any(k in column for k in members):
            continue
        row = np.zeros(len(hidden))
        for key, coefficient in members.items():
            if key in column:
                row[column[key]] += coefficient
        rows.append(row)
    if not rows:
        return []
    matrix = np.array(rows)
    _, singular, vt = np.linalg.svd(matrix, full_matrices=False)
    rank = int(np.sum(singular > 1e-9 * singular[0]))
    norms = np.sum(vt[:rank] ** 2, axis=0)
    return [hidden[j] for j in np.nonzero(norms > 1 - 1e-9)[0]]


# ---------------------------------------------------------------------------------- territory


async def test_a_commune_observer_sees_its_commune_only_and_no_ticket(
    veille_app: tuple[FastAPI, httpx.AsyncClient, DataSet],
) -> None:
    app, client, _data = veille_app
    await observer(app, client, "clspd-forcalquier", f"commune:{FORCALQUIER}")
    page = await client.get("/agence/veille")
    assert page.status_code == 200
    assert "Cellule de veille — Forcalquier" in page.text
    assert "Manosque" not in page.text and "Violences conjugales" not in page.text
    # its alert is there (the wave of Forcalquier), explained in one sentence
    assert "Moins de 11 signalements d&#39;arnaque (faux conseiller bancaire) à Forcalquier" in (
        page.text
    )
    assert (await client.get("/agence/veille/communes")).status_code == 200
    export = await client.get("/agence/veille/export.csv", params={"niveau": "commune"})
    assert {r["area_code"] for r in csv_counts(export.text)} <= {FORCALQUIER}
    assert (
        await client.get("/agence/veille/export.csv", params={"niveau": "epci"})
    ).status_code == 403
    # nothing of a ticket: no list, no reference, no text
    async with app.state.sessions() as session:
        alert = (await session.execute(select(VeilleAlert))).scalars().first()
    assert alert is not None
    detail = await client.get(f"/agence/veille/alertes/{alert.id}")
    assert detail.status_code == 200
    assert "04-2026-" not in detail.text and PERSONAL_TEXT not in detail.text
    assert (await client.get("/agence/tickets")).status_code == 403
    for response in (page, detail, export):
        assert "Jean Martin" not in response.text

    headers = await token(app, f"commune:{FORCALQUIER}")
    assert (
        await client.get("/api/v1/veille/alerts", params={"departement": "39"}, headers=headers)
    ).status_code == 403
    assert (
        await client.get(
            "/api/v1/veille/stats.csv", params={"departement": "04", "by": "epci"}, headers=headers
        )
    ).status_code == 403
    listed = await client.get(
        "/api/v1/veille/alerts", params={"departement": "04"}, headers=headers
    )
    assert [a["area"]["code"] for a in listed.json()] == [FORCALQUIER]
    assert set(listed.json()[0]) >= {
        "id", "report_type", "subtype", "area", "window_start", "window_end", "count",
        "expected", "p_value", "status", "explanation",
    }  # fmt: skip
    assert (await client.get("/api/v1/agency/tickets", headers=headers)).status_code == 403


async def test_an_observer_of_another_commune_sees_nothing_of_forcalquier(
    veille_app: tuple[FastAPI, httpx.AsyncClient, DataSet],
) -> None:
    app, client, _data = veille_app
    await observer(app, client, "clspd-manosque", f"commune:{MANOSQUE}")
    page = await client.get("/agence/veille")
    assert "Cellule de veille — Manosque" in page.text and "Forcalquier" not in page.text
    async with app.state.sessions() as session:
        alert = (await session.execute(select(VeilleAlert))).scalars().first()
    assert alert is not None
    assert (await client.get(f"/agence/veille/alertes/{alert.id}")).status_code == 404
    form = await client.get("/agence/veille")
    refused = await client.post(
        f"/agence/veille/alertes/{alert.id}/prise-en-compte", data={"csrf_token": csrf(form.text)}
    )
    assert refused.status_code == 404
    headers = await token(app, f"commune:{MANOSQUE}")
    listed = await client.get(
        "/api/v1/veille/alerts", params={"departement": "04"}, headers=headers
    )
    assert listed.json() == []


async def test_an_agent_sees_the_alert_of_its_tickets_with_their_references(
    veille_app: tuple[FastAPI, httpx.AsyncClient, DataSet],
) -> None:
    app, client, _data = veille_app
    await auth.create_agent(
        app.state.sessions, GENDARMERIE_FORCALQUIER, "gendarme-forcalquier", PASSWORD, "agent"
    )
    await login(client, "gendarme-forcalquier")
    page = await client.get("/agence/veille")
    assert page.status_code == 200
    references = re.findall(r'href="/agence/tickets/(04-2026-\d+)"', page.text)
    assert len(set(references)) == 8
    # figures are the observers'
    assert (await client.get("/agence/veille/communes")).status_code == 403
    await client.post("/agence/logout", data={"csrf_token": csrf(page.text)})
    await auth.create_agent(app.state.sessions, "pn-61342", "policier-digne", PASSWORD, "agent")
    await login(client, "policier-digne")
    other = await client.get("/agence/veille")
    assert "Aucune alerte ne concerne vos signalements" in other.text
    async with app.state.sessions() as session:
        alert = (await session.execute(select(VeilleAlert))).scalars().first()
    assert alert is not None
    assert (await client.get(f"/agence/veille/alertes/{alert.id}")).status_code == 404


async def test_an_observer_acknowledges_then_closes_an_alert_with_a_note(
    veille_app: tuple[FastAPI, httpx.AsyncClient, DataSet],
) -> None:
    app, client, _data = veille_app
    await observer(app, client, "cispd-forcalquier", "epci:240400440")
    async with app.state.sessions() as session:
        alert = (await session.execute(select(VeilleAlert))).scalars().one()
    page = await client.get(f"/agence/veille/alertes/{alert.id}")
    token_value = csrf(page.text)
    assert (
        await client.post(f"/agence/veille/alertes/{alert.id}/prise-en-compte", data={})
    ).status_code == 403
    ack = await client.post(
        f"/agence/veille/alertes/{alert.id}/prise-en-compte", data={"csrf_token": token_value}
    )
    assert ack.status_code == 303
    empty = await client.post(
        f"/agence/veille/alertes/{alert.id}/cloture", data={"csrf_token": token_value, "note": " "}
    )
    assert empty.status_code == 409 and "Indiquez" in empty.text
    closed = await client.post(
        f"/agence/veille/alertes/{alert.id}/cloture",
        data={"csrf_token": token_value, "note": "Prévention faite\x00 au marché du lundi."},
    )
    assert closed.status_code == 303
    detail = await client.get(f"/agence/veille/alertes/{alert.id}")
    assert "close" in detail.text and "Prévention faite au marché du lundi." in detail.text
    headers = await token(app, "epci:240400440")
    listed = await client.get(
        "/api/v1/veille/alerts", params={"departement": "04", "status": "closed"}, headers=headers
    )
    assert [a["status"] for a in listed.json()] == ["closed"]


async def test_an_agency_admin_sets_territories_and_alert_channels(
    veille_app: tuple[FastAPI, httpx.AsyncClient, DataSet],
) -> None:
    app, client, _data = veille_app
    observer_agent = await auth.create_agent(
        app.state.sessions, "04-prefecture", "observateur-04", PASSWORD, "observer"
    )
    await auth.create_agent(
        app.state.sessions, "04-prefecture", "admin-prefecture", PASSWORD, "agency_admin"
    )
    await login(client, "admin-prefecture")
    page = await client.get("/agence/veille/territoires")
    assert page.status_code == 200 and "observateur-04" in page.text
    token_value = csrf(page.text)
    outside = await client.post(
        f"/agence/veille/territoires/agent/{observer_agent.id}",
        data={"csrf_token": token_value, "territory": "commune:39198"},
    )
    assert outside.status_code == 422 and "hors du département" in outside.text
    done = await client.post(
        f"/agence/veille/territoires/agent/{observer_agent.id}",
        data={"csrf_token": token_value, "territory": "commune:04088"},
    )
    assert done.status_code == 303
    stored = await territories.stored_territory(app.state.sessions, agent_id=observer_agent.id)
    assert stored == "commune:04088"
    webhook = await client.post(
        "/agence/veille/canaux",
        data={
            "csrf_token": token_value,
            "territory": "epci:240400440",
            "kind": "webhook",
            "target": "https://cispd.example/alertes",
        },
    )
    assert webhook.status_code == 201 and "Clé de signature" in webhook.text
    listing = await client.get("/agence/veille/territoires")
    assert "https://cispd.example/alertes" in listing.text
    assert re.search(r"<code>[A-Za-z0-9_-]{40,}</code>", listing.text) is None  # shown once


async def test_the_old_statistics_page_and_the_observer_home_lead_to_the_veille(
    veille_app: tuple[FastAPI, httpx.AsyncClient, DataSet],
) -> None:
    app, client, _data = veille_app
    await observer(app, client, "observateur-prefecture", None)
    home = await client.get("/agence/")
    assert home.status_code == 303 and home.headers["location"] == "/agence/veille"
    page = await client.get("/agence/veille")
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    assert "<script" not in page.text
    assert 'aria-current="page">Cellule de veille' in page.text
