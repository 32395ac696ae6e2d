"""Logs never contain message text or contact details: a full conversation through the real
stack (gateway, Rasa with the trained model, action server), with a name, a phone number and an
address, then every log file of the stack is read."""

from __future__ import annotations

import re
import time
import uuid

import httpx
import pytest

from webhook.ops.supervisor import Stack

pytestmark = pytest.mark.e2e

NAME = "Gaspard Quintanilla"
PHONE = "06 47 83 91 25"
STREET = "rue Xavier-Bichat-Ollivier"
REFERENCE_RE = re.compile(r"\b39-\d{4}-\d{6}\b")


def say(client: httpx.Client, sender: str, text: str) -> str:
    response = client.post("/api/v1/chat", json={"sender": sender, "text": text})
    assert response.status_code == 200, response.text
    return "\n".join(m.get("text", "") for m in response.json()["messages"])


def test_no_personal_data_in_any_log(stack: Stack) -> None:
    sender = uuid.uuid4().hex
    with httpx.Client(base_url=stack.settings.gateway_url, timeout=60) as client:
        say(client, sender, "Bonjour")
        first = client.post(
            "/api/v1/chat",
            json={
                "sender": sender,
                "text": f"Mon voisin {NAME} met la musique à fond toutes les nuits, "
                f"vous pouvez me rappeler au {PHONE}",
            },
        ).json()["messages"]
        payloads = [b["payload"] for m in first for b in m.get("buttons", [])]
        if "/incivilite" in payloads:  # a mixed message: the bot asks which subject it is
            client.post("/api/v1/chat", json={"sender": sender, "payload": "/incivilite"})
        say(client, sender, f"Au 17 {STREET}, devant chez {NAME}")
        say(client, sender, f"toutes les nuits, appelez {PHONE}")
        say(client, sender, "Dole")
        asked = say(client, sender, "oui, par téléphone")  # to be contacted: how?
        assert "numéro" in asked, asked
        say(client, sender, f"{PHONE}, le soir après 18 h")  # personal: never logged either
        filed = say(client, sender, "oui")
    match = REFERENCE_RE.search(filed)
    assert match, filed
    time.sleep(2)  # let the outbox deliver and every process flush its log

    log_dir = stack.settings.var_dir / "log"
    logs = {p.name: p.read_text(encoding="utf-8", errors="replace") for p in log_dir.glob("*.log")}
    assert {"gateway.log", "rasa.log", "actions.log"} <= set(logs)
    assert logs["rasa.log"].strip(), "Rasa wrote nothing: the check would prove nothing"
    digits = PHONE.replace(" ", "")
    for name, text in logs.items():
        flat = text.replace(" ", "")
        for secret in ("Quintanilla", "Gaspard", "Bichat", "Ollivier", "musique à fond"):
            assert secret not in text, f"{secret!r} found in {name}"
        assert digits not in flat, f"phone number found in {name}"
