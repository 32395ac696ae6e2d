"""Finding 3 — flooding: the token bucket was per sender id, which the client chooses. 40 guided
reports under 40 sender ids from one address were all filed in under 3 s; with the default
CORS any web page could make its visitors' browsers do it; 20,000 sender ids evicted every
conversation in progress. Now messages, new conversations and filings are limited per address
and globally (sized for shared addresses), filings also per conversation, CORS is closed by
default, and an optional proof of work can be required before filing."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from security_support import (
    Gateway,
    guided_to_summary,
    internal_headers,
    report_body,
    start_gateway,
    texts,
)

FLOODER = "203.0.113.66"
CITIZEN = "198.51.100.20"


def limits() -> Any:
    """The default limits (imported here: the code before issue 14 had none)."""
    from webhook.config import AbuseLimits

    return AbuseLimits()


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """The limits are in the gateway's memory: SQLite is enough."""
    return f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"


async def test_rotating_sender_ids_from_one_address_file_only_a_few_reports(
    gateway: Gateway,
) -> None:
    filed, refused = [], []
    for n in range(40):
        sender = f"flood{n}"
        try:
            await guided_to_summary(gateway, sender, address=FLOODER)
        except AssertionError:  # a message of the report was refused (per-address messages)
            refused.append(None)
            continue
        response = await gateway.chat(sender, payload="/guide:send", address=FLOODER)
        (filed if response.status_code == 200 else refused).append(response)
    assert len(filed) < 40 and refused  # before issue 14: all 40 filed
    burst = limits().filings_per_address.burst
    assert len(filed) == burst and len(refused) == 40 - burst
    assert await gateway.ticket_count() == burst
    last = next(r for r in refused if r is not None)
    assert last.status_code == 429 and int(last.headers["Retry-After"]) > 60
    said = "\n".join(texts(last))
    assert "réessayez dans" in said and "17 ou le 112" in said  # polite, and the emergency line
    assert "/guide:send" in str(last.json())  # the answers are kept: the summary is shown again

    # a resident elsewhere is not affected
    await guided_to_summary(gateway, "voisine", address=CITIZEN)
    ok = await gateway.chat("voisine", payload="/guide:send", address=CITIZEN)
    assert ok.status_code == 200 and ok.json()["tickets"]


async def test_filings_through_the_action_server_count_for_the_address(gateway: Gateway) -> None:
    """Rasa's filings come through the internal API: the conversation's address counts."""
    burst = 10  # the default (TRANQUILLITE_LIMIT_FILINGS_PER_ADDRESS)
    statuses = []
    for n in range(burst + 3):
        sender = f"rasa{n}"
        await gateway.chat(sender, text="Bonjour", address=FLOODER)  # the conversation exists
        response = await gateway.client().post(
            "/internal/v1/reports",
            json=report_body(f"web-{sender}", description=f"dépôt sauvage {n}"),
            headers=internal_headers(),
        )
        statuses.append(response.status_code)
    assert statuses == [201] * burst + [429] * 3
    assert await gateway.ticket_count() == burst == limits().filings_per_address.burst


async def test_a_flood_of_sender_ids_cannot_push_out_a_report_in_progress(
    gateway: Gateway,
) -> None:
    store = gateway.app.state.conversations.store
    store.max_conversations = 150  # a small gateway: the flood below is larger than it
    await guided_to_summary(gateway, "en-cours", address=CITIZEN)
    started = time.monotonic()
    answers = [
        (await gateway.chat(f"bot{n}", payload="/mode_guide", address=FLOODER)).status_code
        for n in range(400)
    ]
    elapsed = time.monotonic() - started
    filed = await gateway.chat("en-cours", payload="/guide:send", address=CITIZEN)
    assert filed.status_code == 200 and filed.json()["tickets"], texts(filed)
    # the burst, and what the bucket refilled while the flood ran (one every 6 s by default)
    rate = limits().conversations_per_address
    refilled = int(elapsed * rate.per_second)
    assert answers.count(200) <= rate.burst + refilled
    assert answers.count(429) >= 400 - rate.burst - refilled


async def test_other_sites_cannot_make_browsers_post_to_the_chat_by_default(
    gateway: Gateway,
) -> None:
    preflight = await gateway.client().options(
        "/api/v1/chat",
        headers={
            "Origin": "https://site-malveillant.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert "access-control-allow-origin" not in preflight.headers


async def test_optional_proof_of_work_before_filing(database_url: str, tmp_path: Path) -> None:
    from webhook.security import pow

    async with start_gateway(
        database_url, tmp_path, limits=replace(limits(), filing_pow_bits=10)
    ) as gw:
        summary = await guided_to_summary(gw, "avec-preuve")
        challenge = summary.json()["challenge"]
        assert challenge["difficulty"] == 10
        refused = await gw.chat("avec-preuve", payload="/guide:send")
        assert refused.status_code == 200 and not refused.json()["tickets"]
        assert await gw.ticket_count() == 0
        # another conversation's challenge is worth nothing here
        other = (await gw.chat("autre", payload="/mode_guide")).json()["challenge"]["challenge"]
        stolen = f"{other}:{pow.solve(other, 10)}"
        assert (await gw.chat("avec-preuve", payload="/guide:send", proof=stolen)).json()[
            "tickets"
        ] == []
        fresh = refused.json()["challenge"]["challenge"]
        proof = f"{fresh}:{pow.solve(fresh, 10)}"
        filed = await gw.chat("avec-preuve", payload="/guide:send", proof=proof)
        assert filed.json()["tickets"] and await gw.ticket_count() == 1
