"""Finding 7 — a guided report sent again after a lost answer, or after a gateway restart, was
filed twice: the idempotency key lived in memory only. The key now comes from the report itself
(conversation, content, day), kept with the ticket in the database; "Envoyer" with no report
open shows again the confirmation of what the conversation filed."""

from __future__ import annotations

from pathlib import Path

from security_support import (
    guided_to_summary,
    internal_headers,
    report_body,
    start_gateway,
    texts,
)


async def test_sent_again_after_a_restart_is_the_same_ticket(
    database_url: str, tmp_path: Path
) -> None:
    # three reports in a row from one sender: more than the default per-sender burst, whose
    # bucket is kept across the restart like the conversation
    burst = {"rate_limit_burst": 40}
    async with start_gateway(database_url, tmp_path, **burst) as gw:
        await guided_to_summary(gw, "mme-martin")
        first = await gw.chat("mme-martin", payload="/guide:send")
        reference = first.json()["tickets"][0]["reference"]
        # ... the answer is lost on the way, and the gateway restarts

    async with start_gateway(database_url, tmp_path, reset=False, **burst) as gw:
        again = await gw.chat("mme-martin", payload="/guide:send")  # "Réessayer"
        assert again.status_code == 200
        assert reference in "\n".join(texts(again))  # the confirmation, not the menu
        assert again.json()["tickets"][0]["reference"] == reference
        # she does the whole report again, with the same answers
        await guided_to_summary(gw, "mme-martin")
        redone = await gw.chat("mme-martin", payload="/guide:send")
        assert redone.json()["tickets"][0]["reference"] == reference
        assert await gw.ticket_count() == 1
        # another report from the same conversation is another ticket
        await guided_to_summary(gw, "mme-martin", place="Parking de la gare")
        other = await gw.chat("mme-martin", payload="/guide:send")
        assert other.json()["tickets"][0]["reference"] != reference
        assert await gw.ticket_count() == 2


async def test_the_action_servers_retry_after_a_restart_is_the_same_ticket(
    database_url: str, tmp_path: Path
) -> None:
    """Rasa's action server keys a filing by the time the summary was shown; a restart of Rasa
    (a new summary) gave a new key. The gateway keys conversational filings by content."""
    async with start_gateway(database_url, tmp_path) as gw:
        body = report_body("web-m-durand")
        first = await gw.client().post(
            "/internal/v1/reports", json=body, headers=internal_headers()
        )
        body["idempotency_key"] = "web-m-durand:summary-shown-again-after-a-restart"
        second = await gw.client().post(
            "/internal/v1/reports", json=body, headers=internal_headers()
        )
        assert first.status_code == 201 and second.status_code == 200
        assert first.json()["reference"] == second.json()["reference"]
        assert await gw.ticket_count() == 1
