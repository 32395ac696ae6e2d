"""Finding 5 — login lockout locked the real agent out (the right password from another address
answered 429), one address's five failures locked everyone behind it (a proxy, a town hall), and
X-Forwarded-For was believed from 127.0.0.1 by default (uvicorn's own default), so a client chose
its address. Now failures slow the next attempts down progressively, per account and per address
(set higher, for shared addresses), a browser the agent already used is not slowed by failures
made elsewhere, and X-Forwarded-For counts only from the operator's trusted proxies."""

from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from agency_support import AGENCY_X, PASSWORD, csrf, login, seed
from security_support import Gateway, settings_for

from webhook.agency import auth
from webhook.config import PROJECT_ROOT
from webhook.ops.supervisor import Stack

DEVICE_COOKIE = "tq_appareil"  # webhook.agency.throttle

ATTACKER, AGENT_OFFICE = "203.0.113.50", "198.51.100.7"


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """Throttling is in the gateway's memory: SQLite is enough."""
    return f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def attempt(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await login(client, username, password)


async def test_failures_elsewhere_never_lock_the_agent_out(gateway: Gateway) -> None:
    await seed(gateway.app, agents=(("agent-dole", AGENCY_X, "agent"),))
    clock = Clock()
    auth.context(gateway.app.state).throttle.clock = clock
    office = gateway.client(AGENT_OFFICE)
    assert (await attempt(office, "agent-dole", PASSWORD)).status_code == 303  # a known browser
    assert DEVICE_COOKIE in str(office.cookies.jar)
    page = await office.get("/agence/tickets")
    await office.post("/agence/logout", data={"csrf_token": csrf(page.text)})

    attacker = gateway.client(ATTACKER)
    failures, delays = 0, []
    while failures < 30:
        response = await attempt(attacker, "agent-dole", "devine-le")
        if response.status_code == 429:
            wait = int(response.headers["Retry-After"])
            delays.append(wait)
            clock.now += wait  # the attacker waits as told
        else:
            assert response.status_code == 401
            failures += 1
    # progressive: the waits grow (1 s, 2 s, 4 s ...) up to a ceiling, never a permanent lock
    assert delays[:3] == [1, 2, 4] and max(delays) <= 15 * 60

    # the agent, from the browser they use, logs in at once with the right password
    assert (await attempt(office, "agent-dole", PASSWORD)).status_code == 303
    # from a browser never used before, the account's delay applies, then the login works
    other = gateway.client("198.51.100.99")
    slowed = await attempt(other, "agent-dole", PASSWORD)
    assert slowed.status_code == 429
    clock.now += int(slowed.headers["Retry-After"])
    assert (await attempt(other, "agent-dole", PASSWORD)).status_code == 303


async def test_one_users_failures_do_not_lock_others_behind_the_same_address(
    gateway: Gateway,
) -> None:
    await seed(
        gateway.app,
        agents=(("agent-dole", AGENCY_X, "agent"), ("collegue-dole", AGENCY_X, "agent")),
    )
    town_hall = gateway.client("198.51.100.30")  # one public address for the whole building
    for _ in range(5):
        assert (await attempt(town_hall, "agent-dole", "oublié")).status_code == 401
    colleague = gateway.client("198.51.100.30")
    colleague.cookies.clear()
    assert (await attempt(colleague, "collegue-dole", PASSWORD)).status_code == 303


def test_forwarded_for_counts_only_from_trusted_proxies() -> None:
    from webhook.security.clients import ClientResolver, parse_networks

    nobody = ClientResolver()
    assert nobody.resolve("127.0.0.1", ["203.0.113.1"]) == "127.0.0.1"
    proxy = ClientResolver(parse_networks(["10.0.0.0/8"]))
    assert proxy.resolve("10.0.0.2", ["198.51.100.4, 10.0.0.3"]) == "198.51.100.4"
    # what a client writes to the left of the chain proves nothing
    assert proxy.resolve("10.0.0.2", ["1.2.3.4, 198.51.100.4"]) == "198.51.100.4"
    assert proxy.resolve("203.0.113.9", ["198.51.100.4"]) == "203.0.113.9"  # not a proxy


def test_the_running_gateway_does_not_take_an_address_from_the_client(tmp_path: Path) -> None:
    """The gateway as `tranquillite run` starts it: 21 failed logins from 127.0.0.1, each under
    a new X-Forwarded-For and a new user name, count for 127.0.0.1, which is then slowed."""
    import asyncio

    database = f"sqlite+aiosqlite:///{tmp_path / 'login.db'}"
    settings = replace(settings_for(database, tmp_path), gateway_port=_free_port())

    async def prepare() -> None:
        from webhook.store.db import create_engine, migrate

        engine = create_engine(database)
        await migrate(engine)
        await engine.dispose()

    asyncio.run(prepare())
    env = {
        **os.environ,
        "TRANQUILLITE_DATABASE_URL": database,
        "TRANQUILLITE_VAR_DIR": str(tmp_path),
        "TRANQUILLITE_RASA_URL": settings.rasa_url,
        "TRANQUILLITE_OUTBOX_WORKER": "off",
    }
    log = (tmp_path / "gateway.log").open("wb")
    process = subprocess.Popen(
        _gateway_command(settings, tmp_path),
        cwd=PROJECT_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        with httpx.Client(base_url=settings.gateway_url, timeout=10) as client:
            _wait_ready(client, process)
            statuses = []
            for n in range(21):
                page = client.get("/agence/login")
                statuses.append(
                    client.post(
                        "/agence/login",
                        data={
                            "username": f"inconnu{n}",
                            "password": "faux mot de passe",
                            "csrf_token": re.search(
                                r'name="csrf_token" value="([^"]+)"', page.text
                            ).group(1),  # type: ignore[union-attr]
                        },
                        headers={"X-Forwarded-For": f"192.0.2.{n + 1}"},
                    ).status_code
                )
        assert statuses[:20] == [401] * 20
        assert statuses[20] == 429
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def _gateway_command(settings: Any, tmp_path: Path) -> list[str]:
    """The gateway's command line exactly as `tranquillite run` builds it."""
    return list(Stack.build(settings, tmp_path / "model.tar.gz").process("gateway").command)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(client: httpx.Client, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "the gateway exited"
        try:
            if client.get("/health").status_code in (200, 503):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("the gateway did not start")


def test_supervisor_starts_uvicorn_without_its_proxy_header_handling(tmp_path: Path) -> None:
    command = _gateway_command(settings_for("sqlite+aiosqlite:///x.db", tmp_path), tmp_path)
    assert "--no-proxy-headers" in command and "--no-access-log" in command
