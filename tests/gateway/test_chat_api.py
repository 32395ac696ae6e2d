"""Gateway input hygiene that never reaches Rasa, and its internal API."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from webhook.ops.supervisor import Stack

pytestmark = pytest.mark.e2e


@pytest.fixture
def client(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.settings.gateway_url, timeout=30) as http:
        yield http


def test_health_reports_database_and_rasa(client: httpx.Client) -> None:
    body = client.get("/health").json()
    assert body == {"status": "ok", "database": True, "state": True, "rasa": True}


def test_empty_message_gets_a_polite_answer(client: httpx.Client) -> None:
    response = client.post("/api/v1/chat", json={"sender": "abc", "text": "   "})
    assert response.status_code == 200
    message = response.json()["messages"][0]
    assert "vide" in message["text"]
    assert message["buttons"][0]["payload"] == "/aide_menu"


def test_a_message_without_words_is_not_guessed(client: httpx.Client) -> None:
    """An angry face alone was classified as a goodbye: with no question pending, a message
    without any word gets a polite "write a few words" and the topics; the SOS emoji is a cry
    for help (the numbers first); a 👍 still answers a pending summary (tests/conversations)."""
    sender = f"emoji-{uuid.uuid4().hex[:8]}"
    response = client.post("/api/v1/chat", json={"sender": sender, "text": "😡😡😡"})
    assert response.status_code == 200
    messages = response.json()["messages"]
    assert len(messages) == 1 and "sans mots" in messages[0]["text"], messages
    assert messages[0]["buttons"][0]["payload"] == "/aide_menu"
    sos = client.post("/api/v1/chat", json={"sender": f"{sender}-sos", "text": "🆘"}).json()
    assert "• 17" in sos["messages"][0]["text"], sos


def test_huge_message_is_refused_politely(client: httpx.Client) -> None:
    response = client.post("/api/v1/chat", json={"sender": "abc", "text": "a" * 5000})
    assert response.status_code == 413
    assert "trop long" in response.json()["messages"][0]["text"]


@pytest.mark.parametrize(
    "sender", ["", "a" * 65, "../etc", "<script>"], ids=["empty", "long", "path", "html"]
)
def test_invalid_sender_is_rejected(client: httpx.Client, sender: str) -> None:
    response = client.post("/api/v1/chat", json={"sender": sender, "text": "bonjour"})
    assert response.status_code == 422


def test_internal_api_requires_the_token(client: httpx.Client) -> None:
    body = {"report_type": "incivilite", "commune_insee": "39198", "fields": {"description": "x"}}
    assert client.post("/internal/v1/reports", json=body).status_code == 401
    bad = {"Authorization": "Bearer wrong"}
    assert client.post("/internal/v1/reports", json=body, headers=bad).status_code == 401


def test_internal_api_is_idempotent(client: httpx.Client, stack: Stack) -> None:
    headers = {"Authorization": f"Bearer {stack.settings.internal_token}"}
    body = {
        "report_type": "vol_cambriolage",
        "commune_insee": "04112",
        "fields": {"description": "vol de vélo dans le garage"},
        "idempotency_key": uuid.uuid4().hex,
    }
    first = client.post("/internal/v1/reports", json=body, headers=headers)
    second = client.post("/internal/v1/reports", json=body, headers=headers)
    assert first.status_code == 201 and second.status_code == 200
    assert first.json()["reference"] == second.json()["reference"]
    assert first.json()["reference"].startswith("04-")


def test_internal_api_rejects_unknown_report_type(client: httpx.Client, stack: Stack) -> None:
    headers = {"Authorization": f"Bearer {stack.settings.internal_token}"}
    body = {"report_type": "nope", "commune_insee": "39198", "fields": {}}
    assert client.post("/internal/v1/reports", json=body, headers=headers).status_code == 422
