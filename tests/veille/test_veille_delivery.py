"""End to end in the real gateway (embedded veille and outbox workers, real clock): a wave of
reports filed through the filing service raises an alert within seconds, delivered through the
outbox by e-mail (real SMTP server) and signed webhook (real HTTP receiver) to the channels of
the territories that cover it — and to no other."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from agency_support import running_app
from sqlalchemy import select
from store_support import RECEIVER_SECRET, MailBox, Receiver
from veille_support import FORCALQUIER, PERSONAL_TEXT

from webhook.store import tickets
from webhook.store.db import OutboxMessage, VeilleAlert, VeilleChannel


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
async def test_a_wave_is_delivered_to_the_observers_of_its_area_within_a_minute(
    database: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    smtp_server: tuple[MailBox, int],
    receiver: Receiver,
) -> None:
    box, port = smtp_server
    monkeypatch.setenv("TRANQUILLITE_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("TRANQUILLITE_SMTP_PORT", str(port))
    monkeypatch.setenv("TRANQUILLITE_SMTP_FROM", "tranquillite@prefecture.example")
    # the test receiver is a plain-http server on this machine: the operator allows it
    monkeypatch.setenv("TRANQUILLITE_WEBHOOK_ALLOW_HTTP", "1")
    monkeypatch.setenv("TRANQUILLITE_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8")
    monkeypatch.setenv("TRANQUILLITE_VEILLE_WORKER", "embedded")
    monkeypatch.setenv("TRANQUILLITE_OUTBOX_WORKER", "embedded")
    url = (
        f"sqlite+aiosqlite:///{tmp_path / 'delivery.db'}"
        if database == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    async with running_app(url, tmp_path) as (app, _client):
        sessions = app.state.sessions
        async with sessions() as session, session.begin():
            session.add_all(
                [
                    VeilleChannel(
                        agency_id="04-prefecture",
                        territory="commune:04088",
                        kind="email",
                        target="clspd@forcalquier.example",
                        active=True,
                    ),
                    VeilleChannel(
                        agency_id="04-prefecture",
                        territory="departement:04",
                        kind="webhook",
                        target=receiver.url,
                        secret=RECEIVER_SECRET,
                        active=True,
                    ),
                    VeilleChannel(
                        agency_id="04-prefecture",
                        territory="commune:04070",
                        kind="email",
                        target="clspd@digne.example",
                        active=True,
                    ),
                ]
            )
        started = time.monotonic()
        for n in range(5):
            await tickets.file_report(
                sessions,
                tickets.NewReport(
                    report_type="arnaque",
                    commune_insee=FORCALQUIER,
                    fields={"type_arnaque": "faux_conseiller", "description": PERSONAL_TEXT},
                    channel="web",
                    conversation_id=f"web-habitant-{n}",
                ),
            )
        rows: list[OutboxMessage] = []
        while time.monotonic() - started < 60:
            async with sessions() as session:
                rows = list(
                    (
                        await session.execute(
                            select(OutboxMessage).where(OutboxMessage.alert_id.is_not(None))
                        )
                    ).scalars()
                )
            if len(rows) == 2 and all(r.status == "delivered" for r in rows):
                break
            await asyncio.sleep(0.2)
        elapsed = time.monotonic() - started
        async with sessions() as session:
            alerts = (await session.execute(select(VeilleAlert))).scalars().all()
    assert elapsed < 60, "no alert delivered within a minute of the reports"
    assert len(alerts) == 1
    alert = alerts[0]
    assert [(r.kind, r.status) for r in sorted(rows, key=lambda r: r.kind)] == [
        ("email", "delivered"),
        ("webhook", "delivered"),
    ]
    # the e-mail: to Forcalquier's CLSPD only, the sentence, a link, nothing personal
    assert [recipients for recipients, _ in box.messages] == [["clspd@forcalquier.example"]]
    message = box.messages[0][1]
    assert "Alerte de veille" in str(message["Subject"])
    body = message.get_payload(decode=True).decode("utf-8")
    assert (
        "Moins de 11 signalements d'arnaque (faux conseiller bancaire) à Forcalquier en 7 jours, "
        "contre 0,2 attendu." in body
    )
    assert f"/agence/veille/alertes/{alert.id}" in body
    assert "Jean Martin" not in body and "04-2026-" not in body
    # the signed webhook of the département's channel, once
    assert receiver.rejected_signatures == 0 and receiver.keys == [f"veille:{alert.id}:2"]
    document = receiver.requests[0]["body"]
    assert document["event"] == "veille.alert"
    assert document["alert"]["area"] == {"kind": "commune", "code": "04088", "name": "Forcalquier"}
    assert (
        document["alert"]["count"] == "< 11" and document["alert"]["subtype"] == "faux_conseiller"
    )
    assert "Jean Martin" not in str(document)
