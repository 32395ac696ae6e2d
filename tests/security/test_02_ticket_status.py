"""Finding 2 — anyone could learn any ticket's type and status: "où en est 04-2026-000011 ?" in a
new conversation answered with it, and references are sequential. Now a citizen follows only a
report their conversation filed, or one whose unguessable tracking code they give; a reference
alone opens nothing, with the same answer as a reference that does not exist."""

from __future__ import annotations

import httpx
import pytest
from security_support import Gateway, internal_headers, report_body

from reports import tracking
from webhook.ops.supervisor import Stack


async def status(gw: Gateway, conversation: str, **query: str) -> httpx.Response:
    return await gw.client().post(
        "/internal/v1/reports/status",
        json={"conversation_id": conversation, **query},
        headers=internal_headers(),
    )


async def test_reference_alone_opens_only_the_filing_conversations_report(
    gateway: Gateway,
) -> None:
    filed = await gateway.client().post(
        "/internal/v1/reports", json=report_body("web-alice"), headers=internal_headers()
    )
    assert filed.status_code == 201
    reference = filed.json()["reference"]
    code = filed.json()["tracking_code"]  # given to the conversation that filed it
    assert tracking.normalise(code) is not None

    # the action server's old way in: a sequential reference, nothing else
    old = await gateway.client().get(
        f"/internal/v1/reports/{reference}", headers=internal_headers()
    )
    assert old.status_code in (404, 405) and "incivilite" not in old.text

    mine = await status(gateway, "web-alice", reference=reference)
    assert mine.status_code == 200 and mine.json()["status"] == "received"
    assert "tracking_code" not in mine.json()  # never echoed by a status answer

    stranger = await status(gateway, "web-mallory", reference=reference)
    unknown = await status(gateway, "web-mallory", reference="39-2026-999999")
    assert stranger.status_code == unknown.status_code == 404
    assert stranger.json() == unknown.json()  # nothing to tell them apart

    with_code = await status(gateway, "web-bob", tracking_code=code.lower().replace("-", " "))
    assert with_code.status_code == 200 and with_code.json()["reference"] == reference
    both = await status(gateway, "web-bob", reference=reference, tracking_code=code)
    assert both.status_code == 200
    wrong = await status(gateway, "web-bob", reference="39-2026-999999", tracking_code=code)
    assert wrong.status_code == 404
    guessed = await status(gateway, "web-bob", reference=reference, tracking_code="K7QM-4XPA-9HW2")
    assert guessed.status_code == 404


async def test_guided_confirmation_gives_the_tracking_code(gateway: Gateway) -> None:
    from security_support import guided_to_summary, texts

    await guided_to_summary(gateway, "carole")
    filed = await gateway.chat("carole", payload="/guide:send")
    ticket = filed.json()["tickets"][0]
    assert ticket["tracking_code"] in "\n".join(texts(filed))
    assert ticket["reference"] in "\n".join(texts(filed))


# ------------------------------------------------------------------ through the real stack
def _say(client: httpx.Client, sender: str, **body: str) -> list[str]:
    response = client.post("/api/v1/chat", json={"sender": sender, **body})
    assert response.status_code == 200, response.text
    return [m["text"] for m in response.json()["messages"]]


@pytest.mark.e2e
def test_where_is_my_report_in_a_new_conversation_needs_the_tracking_code(stack: Stack) -> None:
    """The attack as it was made: a report is filed, then another conversation asks Rasa
    "où en est <reference> ?"; the action server answers only with the tracking code."""
    with httpx.Client(base_url=stack.settings.gateway_url, timeout=120.0) as client:
        sender = "filer-status-e2e"
        steps = [
            {"payload": "/guide:type:incivilite"},
            {"title": "Passer"},
            {"title": "Bruit"},
            {"text": "Place du marché"},
            {"title": "Tous les jours"},
            {"text": "lons le saunier"},
            {"title": "Non, rester anonyme"},
        ]
        last = client.post("/api/v1/chat", json={"sender": sender, "payload": "/mode_guide"})
        for step in steps:
            if "title" in step:
                payload = next(
                    b["payload"]
                    for m in last.json()["messages"]
                    for b in m["buttons"]
                    if b["title"] == step["title"]
                )
                last = client.post("/api/v1/chat", json={"sender": sender, "payload": payload})
            else:
                last = client.post("/api/v1/chat", json={"sender": sender, **step})
        filed = client.post("/api/v1/chat", json={"sender": sender, "payload": "/guide:send"})
        ticket = filed.json()["tickets"][0]
        reference, code = ticket["reference"], ticket["tracking_code"]

        status_label = "reçu"  # the status a just-filed report has (reçu / transmis)
        stranger = "\n".join(_say(client, "stranger-status-e2e", text=f"où en est {reference} ?"))
        assert reference in stranger or "code de suivi" in stranger
        assert "Incivilité" not in stranger and f"est : {status_label}" not in stranger
        assert "transmis au service" not in stranger

        with_code = "\n".join(
            _say(client, "stranger-status-e2e", text=f"où en est mon signalement {code} ?")
        )
        assert f"Votre signalement {reference}" in with_code
        assert "Incivilité" in with_code
