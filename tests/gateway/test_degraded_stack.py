"""Degraded mode on the real stack: the Rasa server is stopped in the middle of a conversation,
the gateway serves the guided mode and files the report; when Rasa is back, free text goes to
Rasa again. Uses its own stack (the session ``stack`` is shared with other tests)."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from chat_support import free_port

from webhook import replies
from webhook.config import Settings
from webhook.ops.supervisor import Stack

pytestmark = pytest.mark.e2e

REFERENCE_RE = re.compile(r"\b(\d[0-9AB]|FR)-\d{4}-\d{6}\b")


@pytest.fixture(scope="module")
def own_stack(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    var_dir = tmp_path_factory.mktemp("var-degraded")
    rasa_port = free_port()
    settings = replace(
        Settings.from_env(),
        host="127.0.0.1",
        gateway_port=free_port(),
        rasa_port=rasa_port,
        actions_port=free_port(),
        var_dir=var_dir,
        database_url=f"sqlite+aiosqlite:///{var_dir / 'degraded.db'}",
        rasa_url=f"http://127.0.0.1:{rasa_port}",
        internal_token="",
    )
    running = Stack.build(settings, trained_model)
    running.start(timeout=600.0)  # a loaded 2-core machine can be slow to load the model
    try:
        yield running
    finally:
        running.stop()


def chat(client: httpx.Client, sender: str, **body: str) -> dict[str, Any]:
    response = client.post("/api/v1/chat", json={"sender": sender, **body})
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def texts(data: dict[str, Any]) -> list[str]:
    return [m["text"] for m in data["messages"]]


def payload_of(data: dict[str, Any], title: str) -> str:
    for message in data["messages"]:
        for button in message["buttons"]:
            if button["title"] == title:
                return str(button["payload"])
    raise AssertionError((title, data))


def wait_for_rasa(stack: Stack, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=5.0) as client:
        while time.monotonic() < deadline:
            assert stack.process("rasa").alive(), "Rasa exited; see its log"
            try:
                if client.get(f"{stack.settings.rasa_url}/").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1.0)
        else:
            raise AssertionError("Rasa did not come back")
        # first inference builds the TensorFlow graphs: not on the citizen's time
        client.post(
            f"{stack.settings.rasa_url}/webhooks/rest/webhook",
            json={"sender": f"warmup-{secrets.token_hex(4)}", "message": "bonjour"},
            timeout=180.0,
        )


def test_rasa_stopped_mid_conversation_report_still_filed(own_stack: Stack) -> None:
    sender = secrets.token_hex(16)
    gateway = own_stack.settings.gateway_url
    headers = {"Authorization": f"Bearer {own_stack.settings.internal_token}"}
    with httpx.Client(base_url=gateway, timeout=60.0) as client:
        hello = chat(client, sender, payload="/greet")
        assert replies.message("g_degraded") not in texts(hello)
        first = chat(client, sender, text="Mon voisin fait un bruit infernal toutes les nuits")
        assert replies.message("g_degraded") not in texts(first)  # Rasa answered

        own_stack.process("rasa").stop()  # only the Rasa server; gateway and actions stay up
        assert not own_stack.process("rasa").alive()

        down = chat(client, sender, text="Il met la musique très fort jusqu'à trois heures")
        assert texts(down)[0] == replies.message("g_degraded")
        assert client.get("/health").json()["rasa"] is False
        # the message written while Rasa was down is the description: it says the problem
        # (noise), so the guided mode goes on with the place
        q2 = chat(client, sender, payload="/guide:type:incivilite")
        assert "Où exactement" in texts(q2)[0]
        q3 = chat(client, sender, text="Résidence les Tilleuls")
        q4 = chat(client, sender, payload=payload_of(q3, "Tous les jours"))
        contact = chat(client, sender, text="Forcalquier")
        summary = chat(client, sender, payload=payload_of(contact, "Non, rester anonyme"))
        assert "Il met la musique très fort jusqu'à trois heures" in texts(summary)[0]
        assert q2 and q4
        filed = chat(client, sender, payload="/guide:send")
        match = REFERENCE_RE.search(texts(filed)[0])
        assert match, texts(filed)
        reference = match.group(0)
        assert reference.startswith("04-")

        # the action server's status lookup: the conversation that filed it may follow it
        ticket = client.post(
            "/internal/v1/reports/status",
            json={"conversation_id": f"web-{sender}", "reference": reference},
            headers=headers,
        )
        assert ticket.status_code == 200
        body = ticket.json()
        assert body["report_type"] == "incivilite"
        assert body["commune_insee"] == "04088"
        assert body["destinations"], body

        # Rasa comes back: the next free text goes to Rasa again.
        own_stack.process("rasa").start()
        wait_for_rasa(own_stack)
        time.sleep(1.5)  # past the first backoff
        back = chat(client, sender, text="Bonjour, j'ai une autre question")
        assert texts(back)[0] == replies.message("g_rasa_back")
        assert replies.message("g_degraded") not in texts(back)
        assert len(texts(back)) >= 2  # Rasa's own answer follows
        assert client.get("/health").json()["rasa"] is True
