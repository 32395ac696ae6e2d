"""Finding 9 — 5xx: ``{"text": NaN}`` on every JSON route (the 422 handler could not serialise
NaN), ticket ids of 2^63 or 5,000 digits and ``au=9999-12-31`` on the dashboard. No input
gives a server error now: a 422 never echoes the input, the dashboard reads ids and dates
within range."""

from __future__ import annotations

import pytest
from agency_support import AGENCY_X, csrf, login, seed
from security_support import Gateway, internal_headers

NAN_BODIES = [
    ("/api/v1/chat", '{"sender": "abc", "text": NaN}', {}),
    ("/api/v1/chat", '{"sender": "abc", "payload": Infinity}', {}),
    ("/api/v1/notifications", '{"tracking_codes": [NaN]}', {}),
    ("/internal/v1/reports", '{"report_type": "incivilite", "fields": {"a": NaN}}', "internal"),
    ("/internal/v1/reports/status", '{"conversation_id": NaN}', "internal"),
    ("/api/v1/agency/tickets/39-2026-000001/status", '{"status": NaN}', "token"),
    ("/api/v1/agency/tickets/39-2026-000001/answer", '{"text": -Infinity}', "token"),
]


@pytest.mark.parametrize(("path", "body", "auth"), NAN_BODIES)
async def test_nan_and_infinity_are_a_422_not_a_500(
    gateway: Gateway, path: str, body: str, auth: str
) -> None:
    data = await seed(gateway.app)
    headers = {"Content-Type": "application/json"}
    if auth == "internal":
        headers.update(internal_headers())
    elif auth == "token":
        headers["Authorization"] = f"Bearer {data.tokens['x']}"
    response = await gateway.client().post(path, content=body, headers=headers)
    assert response.status_code == 422, response.text
    assert "NaN" not in response.text and "Infinity" not in response.text


async def test_dashboard_ids_and_dates_at_the_edges(gateway: Gateway) -> None:
    await seed(gateway.app, agents=(("admin-dole", AGENCY_X, "agency_admin"),))
    client = gateway.client()
    assert (await login(client, "admin-dole")).status_code == 303
    for query in (
        "au=9999-12-31",
        "du=0001-01-01&au=9999-12-31",
        "du=9999-12-31",
        "au=10000-01-01",
    ):
        listing = await client.get(f"/agence/tickets?{query}")
        assert listing.status_code == 200, query
    token = csrf((await client.get("/agence/admin")).text)
    for item in (str(2**63), str(2**64 + 1), "9" * 5000, "-1", "0"):
        for path in (
            f"/agence/admin/agents/{item}/activer",
            f"/agence/admin/agents/{item}/desactiver",
            f"/agence/admin/jetons/{item}/revoquer",
            f"/agence/admin/canaux/{item}/activer",
        ):
            response = await client.post(path, data={"csrf_token": token})
            assert response.status_code == 404, (path[:60], response.status_code)
    for reference in ("9" * 5000, "39-2026-" + "9" * 40):
        for suffix in ("", "/statut", "/prise-en-compte", "/reponse"):
            method = client.get if not suffix else client.post
            kwargs = {} if not suffix else {"data": {"csrf_token": token, "status": "closed"}}
            response = await method(f"/agence/tickets/{reference}{suffix}", **kwargs)
            assert response.status_code < 500, (suffix, response.status_code)


TEXT_BODIES = [
    ("/api/v1/agency/tickets/{x}/answer", '{"text": "merci\\u0000 de votre appel"}', "token"),
    ("/api/v1/agency/tickets/{x}/answer", '{"text": "réponse \\ud800 coupée"}', "token"),
    (
        "/api/v1/agency/tickets/{x}/status",
        '{"status": "acknowledged", "note": "a\\u0000b"}',
        "token",
    ),
    (
        "/internal/v1/reports",
        '{"report_type": "incivilite", "commune_insee": "39198", "conversation_id": "web-n\\u0000",'
        ' "language": "f\\u0000", "fields": {"description": "tags\\u0000 \\udfff"}}',
        "internal",
    ),
]


@pytest.mark.parametrize(("path", "body", "auth"), TEXT_BODIES)
async def test_nul_and_lone_surrogates_are_stored_cleaned_not_a_500(
    gateway: Gateway, path: str, body: str, auth: str
) -> None:
    """PostgreSQL refuses NUL in text (found by schemathesis on PostgreSQL): the text is cleaned
    before it is written. A lone surrogate is no text: a 422."""
    data = await seed(gateway.app)
    headers = {"Content-Type": "application/json"}
    if auth == "internal":
        headers.update(internal_headers())
    else:
        headers["Authorization"] = f"Bearer {data.tokens['x']}"
    path = path.format(x=data.x_tickets[0])
    response = await gateway.client().post(path, content=body, headers=headers)
    if "\\ud" in body:
        assert response.status_code == 422  # not text at all: refused by the validation
    else:
        assert response.status_code in (200, 201), response.text
        assert "\\u0000" not in response.text


async def test_dashboard_forms_with_nul_characters(gateway: Gateway) -> None:
    await seed(gateway.app, agents=(("agent-dole", AGENCY_X, "agent"),))
    client = gateway.client()
    page = await client.get("/agence/login")
    response = await client.post(
        "/agence/login",
        data={"username": "agent\x00-dole", "password": "x\x00", "csrf_token": csrf(page.text)},
    )
    assert response.status_code == 401
