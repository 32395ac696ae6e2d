"""Finding 4 — logout deleted the cookie but the session stayed valid (a stateless signed cookie
for 8 hours): a copied cookie still read tickets and posted answers after logout. Sessions are
now kept on the server: logout, deactivation and a new password end them."""

from __future__ import annotations

import httpx
from agency_support import AGENCY_X, PASSWORD, csrf, login, seed
from security_support import Gateway

from webhook.agency import auth


def copy_of(client: httpx.AsyncClient, gateway: Gateway) -> httpx.AsyncClient:
    """Another browser holding a copy of ``client``'s session cookie (stolen or shared)."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=gateway.app, client=("203.0.113.9", 4000)),
        base_url="http://gateway",
        headers={"Cookie": f"{auth.SESSION_COOKIE}={client.cookies[auth.SESSION_COOKIE]}"},
    )


async def test_logout_ends_the_session_for_every_copy_of_the_cookie(gateway: Gateway) -> None:
    data = await seed(gateway.app, agents=(("agent-dole", AGENCY_X, "agent"),))
    agent = gateway.client()
    assert (await login(agent, "agent-dole")).status_code == 303
    reference = data.x_tickets[0]
    async with copy_of(agent, gateway) as thief:
        assert (await thief.get(f"/agence/tickets/{reference}")).status_code == 200

        page = await agent.get("/agence/tickets")
        logged_out = await agent.post("/agence/logout", data={"csrf_token": csrf(page.text)})
        assert logged_out.status_code == 303

        after = await thief.get(f"/agence/tickets/{reference}")
        assert after.status_code == 303 and after.headers["location"] == "/agence/login"
        answer = await thief.post(
            f"/agence/tickets/{reference}/reponse",
            data={"csrf_token": csrf(page.text), "text": "réponse d'un voleur de cookie"},
        )
        assert answer.status_code == 303 and answer.headers["location"] == "/agence/login"


async def test_deactivation_and_new_password_end_open_sessions(gateway: Gateway) -> None:
    await seed(
        gateway.app,
        agents=(("admin-dole", AGENCY_X, "agency_admin"), ("agent-dole", AGENCY_X, "agent")),
    )
    admin, agent = gateway.client("198.51.100.1"), gateway.client("198.51.100.2")
    await login(admin, "admin-dole")
    await login(agent, "agent-dole")
    assert (await agent.get("/agence/tickets")).status_code == 200
    agents = {a.username: a for a in await auth.list_agents(gateway.app.state.sessions, AGENCY_X)}
    page = await admin.get("/agence/admin")
    done = await admin.post(
        f"/agence/admin/agents/{agents['agent-dole'].id}/desactiver",
        data={"csrf_token": csrf(page.text)},
    )
    assert done.status_code == 303
    assert (await agent.get("/agence/tickets")).status_code == 303  # out at once
    # back in service, then a new password: the sessions opened before it end
    await auth.set_agent_active(gateway.app.state.sessions, AGENCY_X, agents["agent-dole"].id, True)
    assert (await login(agent, "agent-dole")).status_code == 303
    await auth.set_password(gateway.app.state.sessions, agents["agent-dole"].id, PASSWORD + "!")
    assert (await agent.get("/agence/tickets")).status_code == 303
