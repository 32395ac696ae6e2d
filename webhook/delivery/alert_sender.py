"""Delivery of a cellule de veille alert to a territory's channel (e-mail or signed webhook).

The alert's texts and document were written when it was raised (the outbox row's payload:
``subject``, ``text``, ``document``; no personal data, small counts already hidden); this module
only adds the link to the alert's page and sends them, like a ticket's delivery: SMTP, or a JSON
POST signed with the channel's HMAC key (``X-Tranquillite-Signature``) with an
``Idempotency-Key``, to a destination checked like a ticket's webhook (https, public addresses:
:mod:`webhook.security.netguard`).
"""

from __future__ import annotations

import asyncio
import json
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

import httpx

from webhook.delivery import email_sender, webhook_sender
from webhook.delivery.base import DeliveryError, OutboxConfig
from webhook.store.db import OutboxMessage, VeilleChannel, utcnow


def alert_link(config: OutboxConfig, alert_id: int) -> str:
    return f"{config.dashboard_url.rstrip('/')}/veille/alertes/{alert_id}"


def build_message(config: OutboxConfig, channel: VeilleChannel, row: OutboxMessage) -> EmailMessage:
    assert row.alert_id is not None
    message = EmailMessage()
    message["Subject"] = str(row.payload.get("subject", "[Tranquillité] Alerte de veille"))
    message["From"] = config.smtp_from
    message["To"] = channel.target
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = make_msgid(domain="tranquillite.invalid")
    message["X-Tranquillite-Idempotency-Key"] = row.idempotency_key
    message["X-Tranquillite-Alert"] = str(row.alert_id)
    text = str(row.payload.get("text", ""))
    text += (
        f"\n\nConsultez l'alerte dans l'espace des agences : {alert_link(config, row.alert_id)}"
        "\n\nMessage automatique, merci de ne pas y répondre."
    )
    message.set_content(text)
    return message


def build_payload(config: OutboxConfig, row: OutboxMessage) -> dict[str, Any]:
    assert row.alert_id is not None
    document = dict(row.payload.get("document") or {})
    document["url"] = alert_link(config, row.alert_id)
    return {
        "event": "veille.alert",
        "idempotency_key": row.idempotency_key,
        "sent_at": utcnow().isoformat(),
        "alert": document,
    }


async def send(
    client: httpx.AsyncClient,
    config: OutboxConfig,
    channel: VeilleChannel | None,
    row: OutboxMessage,
) -> None:
    if channel is None or not channel.active:
        raise DeliveryError("veille channel removed or inactive")
    if row.kind == "email":
        if not config.smtp_host or not config.smtp_from:
            raise DeliveryError(
                "SMTP not configured (TRANQUILLITE_SMTP_HOST, TRANQUILLITE_SMTP_FROM)"
            )
        message = build_message(config, channel, row)
        await asyncio.to_thread(email_sender.send_message, config, message)
        return
    if row.kind != "webhook":
        raise DeliveryError(f"unknown kind {row.kind}")
    if not channel.secret:
        raise DeliveryError("webhook channel has no HMAC secret")
    body = json.dumps(build_payload(config, row), ensure_ascii=False, separators=(",", ":"))
    await webhook_sender.post_signed(
        client, config, channel.target, channel.secret, body.encode(), row.idempotency_key
    )
