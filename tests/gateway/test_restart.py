"""Issue 16, "What it must show": the embedded default keeps conversations across a restart.

The real stack (gateway, Rasa with the trained model, action server; SQLite) is started, a
free-text report and a guided report are taken half-way, the whole stack is stopped and started
again on the same data, and both continue where they were: the free-text one from Rasa's SQL
tracker store, the guided one from the gateway's conversation state in the database."""

from __future__ import annotations

import re
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from webhook.config import Settings
from webhook.ops.supervisor import Stack

pytestmark = pytest.mark.e2e

REFERENCE_RE = re.compile(r"\b(\d{2,3}|2A|2B)-\d{4}-\d{6}\b")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def own_stack(trained_model: Path, tmp_path: Path) -> Iterator[Stack]:
    """A stack of its own (the session's is shared and never restarted)."""
    rasa_port = _free_port()
    settings = replace(
        Settings.from_env(),
        host="127.0.0.1",
        gateway_port=_free_port(),
        rasa_port=rasa_port,
        actions_port=_free_port(),
        var_dir=tmp_path,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'restart.db'}",
        rasa_url=f"http://127.0.0.1:{rasa_port}",
        rasa_urls=(),
        redis_url="",
        internal_token="",
    )
    stack = Stack.build(settings, trained_model)
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


def say(
    client: httpx.Client, sender: str, text: str | None = None, payload: str | None = None
) -> list[dict[str, Any]]:
    body: dict[str, str] = {"sender": sender}
    if payload is not None:
        body["payload"] = payload
    else:
        body["text"] = text or ""
    response = client.post("/api/v1/chat", json=body)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["messages"], f"no reply to {body}"
    return list(data["messages"])


def joined(messages: list[dict[str, Any]]) -> str:
    return "\n".join(m.get("text", "") for m in messages)


def payload_of(messages: list[dict[str, Any]], title: str) -> str:
    for message in messages:
        for button in message.get("buttons", []):
            if button["title"] == title:
                return str(button["payload"])
    raise AssertionError(f"no button {title!r} in {joined(messages)}")


def test_a_free_text_and_a_guided_report_continue_after_the_whole_stack_restarts(
    own_stack: Stack,
) -> None:
    free, guided = f"libre-{uuid.uuid4().hex[:8]}", f"guide-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=own_stack.settings.gateway_url, timeout=60) as client:
        say(client, free, "Bonjour")
        asked = joined(
            say(client, free, "Mes voisins mettent la musique à fond et crient toutes les nuits")
        )
        assert "Où" in asked, asked
        asked = joined(say(client, free, "Dans mon immeuble, 12 rue des Arènes"))
        assert "commune" in asked.lower(), asked

        say(client, guided, payload="/mode_guide")
        q0 = say(client, guided, payload="/guide:type:incivilite")
        q1 = say(client, guided, payload=payload_of(q0, "Passer"))
        place = joined(say(client, guided, payload=payload_of(q1, "Bruit")))
        assert "Où" in place, place

    own_stack.stop()  # gateway, Rasa and the action server: every process
    assert own_stack.check_alive() is not None
    own_stack.start()

    with httpx.Client(base_url=own_stack.settings.gateway_url, timeout=60) as client:
        # the free-text report: Rasa's tracker kept its form, the commune is the next answer
        asked = joined(say(client, free, "Dole"))
        assert "recontacte" in asked, asked
        summary = joined(say(client, free, "non merci, je préfère rester anonyme"))
        assert "Dole (39)" in summary and "12 rue des Arènes" in summary, summary
        assert "musique" in summary.lower() or "bruit" in summary.lower(), summary
        filed = joined(say(client, free, "oui merci"))
        free_reference = REFERENCE_RE.search(filed)
        assert free_reference, filed

        # the guided report: the gateway's state kept its answers, the place is the next one
        when = say(client, guided, "Place du marché")
        contact = say(client, guided, payload=payload_of(when, "Tous les jours"))
        contact = say(client, guided, "lons le saunier")
        summary_messages = say(client, guided, payload=payload_of(contact, "Non, rester anonyme"))
        summary = joined(summary_messages)
        assert "Place du marché" in summary and "Bruit" in summary, summary
        response = client.post(
            "/api/v1/chat",
            json={"sender": guided, "payload": "/guide:send"},
        )
        (ticket,) = response.json()["tickets"]

    db = own_stack.settings.database_url.split("///", 1)[1]
    with sqlite3.connect(db) as connection:
        rows = dict(
            connection.execute(
                "SELECT conversation_id, reference FROM tickets WHERE conversation_id IN (?, ?)",
                (f"web-{free}", f"web-{guided}"),
            ).fetchall()
        )
    assert rows == {f"web-{free}": free_reference.group(0), f"web-{guided}": ticket["reference"]}
