"""Finding 10 (low) — no HSTS even with secure cookies; no ``Cache-Control: no-store`` on the
agency JSON and Open311; ``/openapi.json`` documented ``/internal/v1/*``; the test-only
``axe.min.js`` was served publicly; Open311 kept bidi override characters; an agency token could
file unlimited reports for other agencies; "create agent" revealed other agencies' usernames;
the SQLite file was created 0644. (Observer statistics with exact counts of 1: issue 15.)"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from agency_support import AGENCY_X, AGENCY_Y, csrf, login, seed
from security_support import Gateway, start_gateway

from webhook.agency import auth
from webhook.store import tickets

OPEN311 = "/open311/v2/requests.json"


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """Headers, limits and text cleaning do not depend on the database: SQLite is enough."""
    return f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"


async def test_hsts_when_served_over_https(database_url: str, tmp_path: Path) -> None:
    async with start_gateway(database_url, tmp_path, cookie_secure=True) as gw:
        page = await gw.client().get("/agence/login")
        assert page.headers["strict-transport-security"].startswith("max-age=31536000")
        assert "strict-transport-security" in (await gw.client().get("/")).headers
    async with start_gateway(database_url, tmp_path) as gw:  # plain http (development)
        assert "strict-transport-security" not in (await gw.client().get("/agence/login")).headers


async def test_agency_and_open311_answers_are_never_cached(gateway: Gateway) -> None:
    data = await seed(gateway.app)
    client = gateway.client()
    bearer = {"Authorization": f"Bearer {data.tokens['x']}"}
    for path, headers in (
        ("/api/v1/agency/tickets", bearer),
        (f"/api/v1/agency/tickets/{data.x_tickets[0]}", bearer),
        ("/api/v1/agency/tickets", {}),  # the 401 as well
        (OPEN311, {"X-Api-Key": data.tokens["x"]}),
        (f"/open311/v2/requests/{data.x_tickets[0]}.json", {"X-Api-Key": data.tokens["x"]}),
        ("/open311/v2/services.json", {}),
    ):
        response = await client.get(path, headers=headers)
        assert response.headers.get("cache-control") == "no-store", path


async def test_openapi_document_and_static_files_show_only_public_things(
    gateway: Gateway,
) -> None:
    client = gateway.client()
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert not [p for p in paths if p.startswith("/internal")]
    assert "/api/v1/chat" in paths and "/open311/v2/requests.json" in paths
    assert (await client.get("/static/vendor/axe.min.js")).status_code == 404
    assert (await client.get("/static/widget.js")).status_code == 200


async def test_open311_text_loses_bidi_overrides(gateway: Gateway) -> None:
    data = await seed(gateway.app)
    filed = await gateway.client().post(
        OPEN311,
        data={
            "service_code": "incivilite",
            "attribute[commune]": "39198",
            # U+202E shows "rappelez le 87 65 43 21 60" reversed to the agent
            "description": "Tags \u202e06 12 34 56 78\u202c sur le mur\u2066 de l'école",
        },
        headers={"X-Api-Key": data.tokens["x"]},
    )
    assert filed.status_code == 201
    ticket = await tickets.get_by_reference(
        gateway.app.state.sessions, filed.json()[0]["service_request_id"]
    )
    assert ticket is not None
    assert ticket.fields["description"] == "Tags 06 12 34 56 78 sur le mur de l'école"
    assert ticket.events[0].actor.startswith(f"{AGENCY_X}/token:")  # who filed it


async def test_an_agency_token_files_a_bounded_number_of_reports(gateway: Gateway) -> None:
    data = await seed(gateway.app)
    burst = 30  # the default (TRANQUILLITE_LIMIT_FILINGS_PER_TOKEN)
    statuses = []
    for n in range(burst + 5):
        response = await gateway.client().post(
            OPEN311,
            data={
                "service_code": "enfant_en_danger",  # routed to the CRIP, not to this agency
                "attribute[commune]": "39198",
                "description": f"signalement {n}",
            },
            headers={"X-Api-Key": data.tokens["x"]},
        )
        statuses.append(response.status_code)
    assert statuses[:burst] == [201] * burst and set(statuses[burst:]) == {429}
    assert response.json()[0]["code"] == 429 and "Retry-After" in response.headers
    # another agency's token is not held back by this one
    other = await gateway.client().post(
        OPEN311,
        data={"service_code": "incivilite", "attribute[commune]": "04070", "description": "x"},
        headers={"X-Api-Key": data.tokens["y"]},
    )
    assert other.status_code == 201


async def test_creating_an_agent_reveals_no_other_agencys_username(gateway: Gateway) -> None:
    await seed(
        gateway.app,
        agents=(("agent-dole", AGENCY_X, "agent"), ("admin-digne", AGENCY_Y, "agency_admin")),
    )
    admin = gateway.client()
    await login(admin, "admin-digne")
    token = csrf((await admin.get("/agence/admin")).text)
    created = await admin.post(
        "/agence/admin/agents",
        data={
            "csrf_token": token,
            "username": "agent-dole",  # taken in Dole's agency
            "password": "mot de passe de test 2026",
            "role": "agent",
        },
    )
    assert created.status_code == 303 and "déjà utilisé" not in created.text
    names = {a.username for a in await auth.list_agents(gateway.app.state.sessions, AGENCY_Y)}
    assert f"agent-dole.{AGENCY_Y}" in names
    # nor can a name be made to look like another agency's
    squat = await admin.post(
        "/agence/admin/agents",
        data={
            "csrf_token": token,
            "username": f"chef.{AGENCY_X}",
            "password": "mot de passe de test 2026",
            "role": "agent",
        },
    )
    assert squat.status_code == 303
    names = {a.username for a in await auth.list_agents(gateway.app.state.sessions, AGENCY_Y)}
    assert f"chef.{AGENCY_X}.{AGENCY_Y}" in names


async def test_sqlite_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    database = tmp_path / "tickets.db"
    async with start_gateway(f"sqlite+aiosqlite:///{database}", tmp_path) as gw:
        await gw.chat("quelqu-un", payload="/mode_guide")
    for path in (database, Path(f"{database}-wal")):
        if path.exists():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
