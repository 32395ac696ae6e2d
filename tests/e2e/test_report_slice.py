"""End to end: gateway HTTP API → real Rasa server (trained model) → real action server →
gateway internal API → ticket stored in SQLite."""

from __future__ import annotations

import re
import sqlite3
import uuid

import httpx
import pytest

from webhook.ops.supervisor import Stack

pytestmark = pytest.mark.e2e

REFERENCE_RE = re.compile(r"\b(\d{2,3}|2A|2B)-\d{4}-\d{6}\b")


def say(
    client: httpx.Client, sender: str, text: str | None = None, payload: str | None = None
) -> list[dict]:
    body: dict[str, str] = {"sender": sender}
    if payload is not None:
        body["payload"] = payload
    else:
        body["text"] = text or ""
    response = client.post("/api/v1/chat", json=body)
    assert response.status_code == 200, response.text
    messages = response.json()["messages"]
    assert messages, f"no reply to {body}"
    return messages


def joined(messages: list[dict]) -> str:
    return "\n".join(m.get("text", "") for m in messages)


def test_greeting_in_french(stack: Stack) -> None:
    with httpx.Client(base_url=stack.settings.gateway_url, timeout=60) as client:
        messages = say(client, uuid.uuid4().hex, "Bonjour")
    text = joined(messages)
    assert "Bonjour" in text
    assert "17" in text and "112" in text  # emergency numbers are always at hand
    assert any(m.get("buttons") for m in messages)


def test_incivilite_report_is_filed_with_a_reference(stack: Stack) -> None:
    sender = uuid.uuid4().hex
    with httpx.Client(base_url=stack.settings.gateway_url, timeout=60) as client:
        say(client, sender, "Bonjour")
        reply = joined(
            say(client, sender, "Mes voisins mettent la musique à fond et crient toutes les nuits")
        )
        assert "Où" in reply  # the description was taken from the first message: asks the place
        # the kind of problem (noise) and how often (every night) were in the first message:
        # they are not asked again
        reply = joined(say(client, sender, "Dans mon immeuble, 12 rue des Arènes"))
        assert "commune" in reply.lower(), reply
        assert "Depuis quand" not in reply
        asked = joined(say(client, sender, "Dole"))
        assert "recontacte" in asked, asked  # every report asks whether to contact the citizen
        messages = say(client, sender, "non merci, je préfère rester anonyme")
        summary = joined(messages)
        assert "Dole (39)" in summary
        assert "12 rue des Arènes" in summary
        assert "Non, rester anonyme" in summary
        titles = [b["title"] for m in messages for b in m.get("buttons", [])]
        assert titles == ["Oui, envoyer", "Modifier une réponse", "Non, ne pas envoyer"]
        filed = joined(say(client, sender, "oui merci"))  # typed: read like the button

    match = REFERENCE_RE.search(filed)
    assert match, filed
    reference = match.group(0)
    assert reference.startswith("39-")

    db_path = stack.settings.database_url.split("///", 1)[1]
    with sqlite3.connect(db_path) as conn:
        row = conn.execute(
            "SELECT report_type, commune_insee, status, channel, fields FROM tickets "
            "WHERE reference = ?",
            (reference,),
        ).fetchone()
        destinations = conn.execute(
            "SELECT d.agency_id, d.role, d.rule_id FROM ticket_destinations d "
            "JOIN tickets t ON t.id = d.ticket_id WHERE t.reference = ?",
            (reference,),
        ).fetchall()
    assert row is not None
    report_type, commune_insee, status, channel, fields = row
    assert (report_type, commune_insee, channel) == ("incivilite", "39198", "web")
    # "transmitted" as soon as the embedded outbox worker has delivered it
    assert status in ("received", "transmitted")
    assert "musique" in fields
    assert destinations, "the routing decision names at least one agency"
    assert any(role == "primary" for _, role, _ in destinations)


def incivilite_up_to_the_commune(client: httpx.Client, sender: str, *answers: str) -> None:
    """Starts an incivilité report by its button and answers what, where and how often."""
    say(client, sender, payload="/incivilite")
    for answer in answers:
        say(client, sender, answer)


def test_ambiguous_commune_asks_which_one(stack: Stack) -> None:
    sender = uuid.uuid4().hex
    with httpx.Client(base_url=stack.settings.gateway_url, timeout=60) as client:
        incivilite_up_to_the_commune(
            client,
            sender,
            "Des dépôts sauvages de sacs poubelle",  # the kind of problem is read from it
            "derrière le stade",
            "depuis un mois",
        )
        messages = say(client, sender, "Saint-Claude")
        buttons = [b for m in messages for b in m.get("buttons", [])]
        # Saint-Claude exists in the Jura (39) and in Guadeloupe (971)
        assert len(buttons) >= 2, joined(messages)
        # the buttons ask the question: "Dans quelle commune ?" is not repeated after them
        assert "Plusieurs communes" in joined(messages)
        assert "Dans quelle commune" not in joined(messages), joined(messages)
        jura = next(b for b in buttons if "(39" in b["title"])
        say(client, sender, payload=jura["payload"])
        summary = joined(say(client, sender, "non"))
        assert "Saint-Claude (39)" in summary


def test_unknown_commune_is_asked_once_then_accepted(stack: Stack) -> None:
    sender = uuid.uuid4().hex
    with httpx.Client(base_url=stack.settings.gateway_url, timeout=60) as client:
        incivilite_up_to_the_commune(
            client,
            sender,
            "Des tags sur le mur de la salle des fêtes",
            "place de la mairie",
            "tous les week-ends",
        )
        messages = joined(say(client, sender, "Zorglubville-sur-Mer"))
        assert "Je ne trouve pas la commune" in messages, messages
        assert "Dans quelle commune" not in messages, messages
        say(client, sender, "39100 Dole")
        summary = joined(say(client, sender, "non"))
        assert "Dole (39)" in summary, summary
