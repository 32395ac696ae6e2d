"""Support for the security tests: the real app, clients from given addresses, a complete guided
report, filing through the internal API as the action server does."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
from agency_support import reset_database
from fastapi import FastAPI
from sqlalchemy import func, select

from webhook.app import create_app
from webhook.config import Settings
from webhook.store.db import Ticket

INTERNAL_TOKEN = "internal-token-for-security-tests"
SECRET_KEY = "clé de test suffisamment longue pour signer les sessions"


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there: Rasa is down


def settings_for(database_url: str, var_dir: Path, **changes: Any) -> Settings:
    return replace(
        Settings(
            var_dir=var_dir,
            database_url=database_url,
            rasa_url=closed_port_url(),
            rasa_timeout=2.0,
            internal_token=INTERNAL_TOKEN,
            secret_key=SECRET_KEY,
        ),
        **changes,
    )


@dataclass
class Gateway:
    app: FastAPI
    clients: dict[str, httpx.AsyncClient] = field(default_factory=dict)

    def client(self, address: str = "198.51.100.20") -> httpx.AsyncClient:
        """A client whose connection comes from ``address`` (as the ASGI server reports it)."""
        if address not in self.clients:
            self.clients[address] = httpx.AsyncClient(
                transport=httpx.ASGITransport(
                    app=self.app, client=(address, 40000), raise_app_exceptions=False
                ),
                base_url="http://gateway",
            )
        return self.clients[address]

    async def chat(
        self,
        sender: str,
        *,
        text: str | None = None,
        payload: str | None = None,
        address: str = "198.51.100.20",
        **extra: Any,
    ) -> httpx.Response:
        body: dict[str, Any] = {"sender": sender, **extra}
        if text is not None:
            body["text"] = text
        if payload is not None:
            body["payload"] = payload
        return await self.client(address).post("/api/v1/chat", json=body)

    async def ticket_count(self) -> int:
        async with self.app.state.sessions() as session:
            return int(
                (await session.execute(select(func.count()).select_from(Ticket))).scalar_one()
            )

    async def close(self) -> None:
        for client in self.clients.values():
            await client.aclose()


@asynccontextmanager
async def start_gateway(
    database_url: str, var_dir: Path, *, reset: bool = True, **changes: Any
) -> AsyncIterator[Gateway]:
    if reset:
        await reset_database(database_url)
    app = create_app(settings_for(database_url, var_dir, **changes))
    async with app.router.lifespan_context(app):
        gw = Gateway(app)
        try:
            yield gw
        finally:
            await gw.close()


def texts(response: httpx.Response) -> list[str]:
    return [m["text"] for m in response.json()["messages"]]


def button(response: httpx.Response, title: str) -> str:
    for message in response.json()["messages"]:
        for b in message["buttons"]:
            if b["title"] == title:
                return str(b["payload"])
    raise AssertionError(f"no button {title!r} in {texts(response)}")


async def guided_to_summary(
    gw: Gateway, sender: str, *, address: str = "198.51.100.20", place: str = "Place du marché"
) -> httpx.Response:
    """An incivilité reported with the guided mode, up to its summary (Rasa is down)."""
    await gw.chat(sender, payload="/mode_guide", address=address)
    q0 = await gw.chat(sender, payload="/guide:type:incivilite", address=address)
    q1 = await gw.chat(sender, payload=button(q0, "Passer"), address=address)
    await gw.chat(sender, payload=button(q1, "Bruit"), address=address)
    q3 = await gw.chat(sender, text=place, address=address)
    await gw.chat(sender, payload=button(q3, "Tous les jours"), address=address)
    contact = await gw.chat(sender, text="lons le saunier", address=address)
    summary = await gw.chat(sender, payload=button(contact, "Non, rester anonyme"), address=address)
    assert "/guide:send" in str(summary.json()), texts(summary)
    return summary


def internal_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {INTERNAL_TOKEN}"}


def report_body(conversation_id: str, description: str = "tags sur le mur") -> dict[str, Any]:
    """A report as the action server files it (POST /internal/v1/reports)."""
    return {
        "report_type": "incivilite",
        "commune_insee": "39198",
        "fields": {"description": description},
        "conversation_id": conversation_id,
        "channel": "web",
        "language": "fr",
        "idempotency_key": f"{conversation_id}:summary-shown-at-1",
    }
