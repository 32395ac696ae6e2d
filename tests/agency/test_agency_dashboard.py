"""Agency dashboard through the real app, on SQLite and on real PostgreSQL: login, isolation
between agencies (404), CSRF, cookies, roles (observer: aggregates only), admin pages."""

from __future__ import annotations

import httpx
from agency_support import (
    AGENCY_X,
    AGENCY_Y,
    OBSERVER_AGENCY,
    PASSWORD,
    PERSONAL_TEXT,
    csrf,
    login,
    seed,
)
from fastapi import FastAPI
from sqlalchemy import select

from webhook.agency import auth
from webhook.store import tickets
from webhook.store.db import Agent, ApiToken, TicketEvent

Gateway = tuple[FastAPI, httpx.AsyncClient]
AGENTS = (
    ("agent-dole", AGENCY_X, "agent"),
    ("agent-digne", AGENCY_Y, "agent"),
)


async def status_of(app: FastAPI, reference: str) -> str:
    ticket = await tickets.get_by_reference(app.state.sessions, reference)
    assert ticket is not None
    return ticket.status


async def test_password_is_kdf_hashed_and_wrong_password_refused(gateway: Gateway) -> None:
    app, client = gateway
    await seed(app, agents=AGENTS[:1])
    async with app.state.sessions() as session:
        agent = (await session.execute(select(Agent))).scalar_one()
    assert agent.password_hash.startswith("scrypt$15$8$3$")
    assert PASSWORD not in agent.password_hash
    assert auth.verify_password(PASSWORD, agent.password_hash)
    assert not auth.verify_password(PASSWORD + "x", agent.password_hash)

    refused = await login(client, "agent-dole", "mauvais mot de passe")
    assert refused.status_code == 401
    assert "Identifiant ou mot de passe incorrect" in refused.text
    assert auth.SESSION_COOKIE not in refused.cookies
    unknown = await login(client, "personne", PASSWORD)
    assert unknown.status_code == 401
    listing = await client.get("/agence/tickets")
    assert listing.status_code == 303 and listing.headers["location"] == "/agence/login"

    accepted = await login(client, "agent-dole")
    assert accepted.status_code == 303
    assert (await client.get("/agence/tickets")).status_code == 200


async def test_agency_sees_lists_and_updates_only_its_tickets(gateway: Gateway) -> None:
    app, client = gateway
    data = await seed(app, agents=AGENTS)
    assert (await login(client, "agent-dole")).status_code == 303

    listing = await client.get("/agence/tickets")
    assert listing.status_code == 200
    for reference in data.x_tickets:
        assert reference in listing.text
    assert data.y_tickets[0] not in listing.text
    assert "2 signalements" in listing.text

    other = data.y_tickets[0]
    page = await client.get(f"/agence/tickets/{other}")
    assert page.status_code == 404
    assert PERSONAL_TEXT not in page.text
    assert (await client.get("/agence/tickets/39-2026-999999")).status_code == 404

    own = await client.get(f"/agence/tickets/{data.x_tickets[0]}")
    assert own.status_code == 200 and PERSONAL_TEXT in own.text
    token = csrf(own.text)
    for path, form in (
        ("prise-en-compte", {}),
        ("statut", {"status": "closed"}),
        ("reponse", {"text": "Bonjour"}),
    ):
        response = await client.post(
            f"/agence/tickets/{other}/{path}", data={"csrf_token": token, **form}
        )
        assert response.status_code == 404, path
    assert await status_of(app, other) == "received"
    ticket = await tickets.get_by_reference(app.state.sessions, other)
    assert ticket is not None and [e.kind for e in ticket.events] == ["status"]

    # Filters: by status, type, commune (name or INSEE) and date.
    assert data.x_tickets[0] in (await client.get("/agence/tickets?commune=Dole")).text
    assert "0 signalement." in (await client.get("/agence/tickets?commune=04070")).text
    assert "0 signalement." in (await client.get("/agence/tickets?type=arnaque")).text
    assert "0 signalement." in (await client.get("/agence/tickets?statut=closed")).text
    assert "2 signalements" in (await client.get("/agence/tickets?statut=open")).text
    assert "0 signalement." in (await client.get("/agence/tickets?au=2000-01-01")).text
    assert "2 signalements" in (await client.get("/agence/tickets?du=2000-01-01")).text
    odd = await client.get("/agence/tickets?statut=zzz&du=pas-une-date")
    assert odd.status_code == 200 and "Statut inconnu" in odd.text


async def test_acknowledge_change_status_and_answer(gateway: Gateway) -> None:
    app, client = gateway
    data = await seed(app, agents=AGENTS[:1])
    await login(client, "agent-dole")
    reference = data.x_tickets[0]
    page = await client.get(f"/agence/tickets/{reference}")
    token = csrf(page.text)

    ack = await client.post(
        f"/agence/tickets/{reference}/prise-en-compte", data={"csrf_token": token}
    )
    assert ack.status_code == 303
    assert ack.headers["location"] == f"/agence/tickets/{reference}?ok=ack"
    assert await status_of(app, reference) == "acknowledged"

    moved = await client.post(
        f"/agence/tickets/{reference}/statut",
        data={"csrf_token": token, "status": "in_progress", "note": "Patrouille prévue"},
    )
    assert moved.status_code == 303 and await status_of(app, reference) == "in_progress"
    illegal = await client.post(
        f"/agence/tickets/{reference}/statut", data={"csrf_token": token, "status": "received"}
    )
    assert illegal.status_code == 409 and await status_of(app, reference) == "in_progress"

    answered = await client.post(
        f"/agence/tickets/{reference}/reponse",
        data={"csrf_token": token, "text": "Merci, nous passons ce soir."},
    )
    assert answered.status_code == 303
    empty = await client.post(
        f"/agence/tickets/{reference}/reponse", data={"csrf_token": token, "text": "  "}
    )
    assert empty.status_code == 422

    async with app.state.sessions() as session:
        events = (
            (await session.execute(select(TicketEvent).order_by(TicketEvent.id))).scalars().all()
        )
    mine = [e for e in events if e.actor == "agent:agent-dole"]
    assert [(e.kind, e.status_to) for e in mine] == [
        ("status", "acknowledged"),
        ("status", "in_progress"),
        ("answer", "in_progress"),
    ]
    detail = await client.get(f"/agence/tickets/{reference}?ok=answer")
    assert "Merci, nous passons ce soir." in detail.text
    assert "Patrouille prévue" in detail.text
    assert "La réponse est enregistrée" in detail.text


async def test_post_without_valid_csrf_token_is_rejected(gateway: Gateway) -> None:
    app, client = gateway
    data = await seed(app, agents=AGENTS[:1])
    reference = data.x_tickets[0]
    # Login form: the token must match its cookie.
    no_token = await client.post(
        "/agence/login", data={"username": "agent-dole", "password": PASSWORD}
    )
    assert no_token.status_code == 403
    assert auth.SESSION_COOKIE not in no_token.cookies

    await login(client, "agent-dole")
    for form in ({}, {"csrf_token": "faux"}):
        response = await client.post(f"/agence/tickets/{reference}/prise-en-compte", data=form)
        assert response.status_code == 403
        assert "Le formulaire a expiré" in response.text
    assert await status_of(app, reference) == "received"
    # The token of another session is not valid in this one.
    other = httpx.AsyncClient(transport=client._transport, base_url=str(client.base_url))
    async with other:
        await login(other, "agent-dole")
        foreign = csrf((await other.get(f"/agence/tickets/{reference}")).text)
    response = await client.post(
        f"/agence/tickets/{reference}/prise-en-compte", data={"csrf_token": foreign}
    )
    assert response.status_code == 403 and await status_of(app, reference) == "received"


async def test_cookies_are_httponly_strict_and_pages_have_a_csp(gateway: Gateway) -> None:
    app, client = gateway
    await seed(app, agents=AGENTS[:1])
    response = await login(client, "agent-dole")
    cookie = next(
        v
        for k, v in response.headers.multi_items()
        if k == "set-cookie" and v.startswith(auth.SESSION_COOKIE)
    )
    lowered = cookie.lower()
    assert "httponly" in lowered and "samesite=strict" in lowered and "path=/agence" in lowered
    assert "secure" not in lowered.replace("samesite", "")
    page = await client.get("/agence/tickets")
    csp = page.headers["content-security-policy"]
    assert "script-src 'none'" in csp and "<script" not in page.text
    assert page.headers["cache-control"] == "no-store"


async def test_login_is_locked_after_repeated_failures(gateway: Gateway) -> None:
    app, client = gateway
    await seed(app, agents=AGENTS[:1])
    for _ in range(5):
        assert (await login(client, "agent-dole", "mauvais mot de passe")).status_code == 401
    locked = await login(client, "agent-dole")
    assert locked.status_code == 429 and "Retry-After" in locked.headers
    assert auth.SESSION_COOKIE not in locked.cookies


async def test_observer_sees_aggregates_only(gateway: Gateway) -> None:
    app, client = gateway
    data = await seed(app, agents=(("observateur", OBSERVER_AGENCY, "observer"),))
    home = await login(client, "observateur")
    assert home.status_code == 303
    # the former statistics page leads to the cellule de veille of the observer's territory
    former = await client.get("/agence/statistiques")
    assert former.status_code == 303 and former.headers["location"] == "/agence/veille"
    stats = await client.get("/agence/veille")
    assert stats.status_code == 200
    assert "Cellule de veille — Jura (39)" in stats.text
    for secret in (PERSONAL_TEXT, "place du marché", *data.x_tickets):
        assert secret not in stats.text
    for path in ("/agence/tickets", f"/agence/tickets/{data.x_tickets[0]}", "/agence/admin"):
        response = await client.get(path)
        assert response.status_code == 403, path
        assert PERSONAL_TEXT not in response.text
    token = csrf(stats.text)
    response = await client.post(
        f"/agence/tickets/{data.x_tickets[0]}/prise-en-compte", data={"csrf_token": token}
    )
    assert response.status_code == 403 and await status_of(app, data.x_tickets[0]) == "received"


async def test_admin_manages_agents_tokens_and_channels(gateway: Gateway) -> None:
    app, client = gateway
    await seed(app, agents=(("admin-dole", AGENCY_X, "agency_admin"), AGENTS[0]))
    await login(client, "admin-dole")
    page = await client.get("/agence/admin")
    assert page.status_code == 200 and "agent-dole" in page.text
    token = csrf(page.text)

    created = await client.post(
        "/agence/admin/jetons", data={"csrf_token": token, "name": "logiciel métier"}
    )
    assert created.status_code == 201
    clear = created.text.split('<code class="secret-value">')[1].split("</code>")[0]
    assert clear.startswith("tq_")
    async with app.state.sessions() as session:
        rows = (
            (await session.execute(select(ApiToken).where(ApiToken.name == "logiciel métier")))
            .scalars()
            .all()
        )
    assert len(rows) == 1 and rows[0].token_hash == auth.hash_token(clear)
    assert clear not in (await client.get("/agence/admin")).text  # shown once only
    api = await client.get("/api/v1/agency/tickets", headers={"Authorization": f"Bearer {clear}"})
    assert api.status_code == 200 and api.json()["total"] == 2
    revoked = await client.post(
        f"/agence/admin/jetons/{rows[0].id}/revoquer", data={"csrf_token": token}
    )
    assert revoked.status_code == 303
    api = await client.get("/api/v1/agency/tickets", headers={"Authorization": f"Bearer {clear}"})
    assert api.status_code == 401

    new_agent = await client.post(
        "/agence/admin/agents",
        data={"csrf_token": token, "username": "agent-2", "password": "x", "role": "agent"},
    )
    assert new_agent.status_code == 422 and "12 caractères" in new_agent.text
    new_agent = await client.post(
        "/agence/admin/agents",
        data={"csrf_token": token, "username": "agent-2", "password": PASSWORD, "role": "agent"},
    )
    assert new_agent.status_code == 303
    channel = await client.post(
        "/agence/admin/canaux",
        data={"csrf_token": token, "kind": "webhook", "target": "https://example.invalid/hook"},
    )
    assert channel.status_code == 201 and "Clé de signature" in channel.text
    channels = await auth.list_channels(app.state.sessions, AGENCY_X)
    assert [(c.kind, c.target) for c in channels] == [("webhook", "https://example.invalid/hook")]

    # A plain agent has no admin page; another agency's admin cannot touch these rows.
    other = httpx.AsyncClient(transport=client._transport, base_url=str(client.base_url))
    async with other:
        await login(other, "agent-dole")
        assert (await other.get("/agence/admin")).status_code == 403
    await auth.create_agent(app.state.sessions, AGENCY_Y, "admin-digne", PASSWORD, "agency_admin")
    foreign = httpx.AsyncClient(transport=client._transport, base_url=str(client.base_url))
    async with foreign:
        await login(foreign, "admin-digne")
        admin_page = await foreign.get("/agence/admin")
        assert "agent-dole" not in admin_page.text
        response = await foreign.post(
            f"/agence/admin/canaux/{channels[0].id}/desactiver",
            data={"csrf_token": csrf(admin_page.text)},
        )
        assert response.status_code == 404
    assert (await auth.list_channels(app.state.sessions, AGENCY_X))[0].active


async def test_admins_see_the_agencies_of_their_departement_nobody_receives_for(
    gateway: Gateway,
) -> None:
    """Issue 13: operators see a warning list of agencies without a delivery channel."""
    app, client = gateway
    await seed(
        app,
        agents=(
            ("admin-dole", AGENCY_X, "agency_admin"),
            ("admin-digne", AGENCY_Y, "agency_admin"),
        ),
    )
    ticket, _ = await tickets.file_report(
        app.state.sessions,
        tickets.NewReport(
            report_type="personne_vulnerable",
            commune_insee="39300",
            fields={"danger_now": "non", "personne": "personne_agee", "lieu_vie": "domicile"},
        ),
    )
    assert any(d.rule_id == tickets.FALLBACK_RULE_ID for d in ticket.destinations)
    await login(client, "admin-dole")
    page = await client.get("/agence/admin")
    assert page.status_code == 200
    assert "Agences sans moyen de réception" in page.text
    assert "Équivalent CIPPAV (adultes vulnérables) du Jura" in page.text
    # another département's administrator is not concerned
    await client.post("/agence/logout", data={"csrf_token": csrf(page.text)})
    await login(client, "admin-digne")
    other = await client.get("/agence/admin")
    assert other.status_code == 200 and "Agences sans moyen de réception" not in other.text
