"""Webhook delivery of a ticket to an agency: JSON POST signed with the agency's HMAC key.

Headers: ``X-Tranquillite-Signature: sha256=<hex HMAC-SHA256 of the raw body>`` and
``Idempotency-Key`` (the same on every retry: the receiver dedupes). The body carries the ticket
with its form fields (the agency's own system needs the content); a purged ticket is never sent.

The endpoint is chosen by an agency admin, so it is checked at every delivery
(:mod:`webhook.security.netguard`): https only, and the connection goes only to a public address
of the name — never to the gateway's own machine, its private network or a cloud metadata
service. Failures are recorded coarsely (refused, unreachable, HTTP status): the history is no
oracle to map what answers where.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from typing import Any

import httpx

from webhook.delivery.base import DeliveryError, OutboxConfig, commune_label, dashboard_link
from webhook.security import netguard
from webhook.store.db import AgencyChannel, OutboxMessage, Ticket, utcnow
from webhook.store.lifecycle import REPORT_TYPE_LABELS

SIGNATURE_HEADER = "X-Tranquillite-Signature"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, body), signature)


def _iso(value: dt.datetime) -> str:
    """ISO 8601 in UTC (SQLite gives back naive UTC datetimes)."""
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()


def build_payload(config: OutboxConfig, ticket: Ticket, row: OutboxMessage) -> dict[str, Any]:
    return {
        "event": "ticket.routed",
        "idempotency_key": row.idempotency_key,
        "agency_id": row.agency_id,
        "sent_at": utcnow().isoformat(),
        "ticket": {
            "reference": ticket.reference,
            "report_type": ticket.report_type,
            "report_type_label": REPORT_TYPE_LABELS.get(ticket.report_type, ticket.report_type),
            "status": ticket.status,
            "departement": ticket.departement,
            "commune_insee": ticket.commune_insee,
            "commune": commune_label(ticket),
            "language": ticket.language,
            "channel": ticket.channel,
            "anonymous": ticket.anonymous,
            "fields": dict(ticket.fields),
            "destinations": [
                {"agency_id": d.agency_id, "role": d.role, "rule_id": d.rule_id}
                for d in ticket.destinations
            ],
            "referrals": ticket.decision.get("referrals", []),
            "created_at": _iso(ticket.created_at),
            "dashboard_url": dashboard_link(config, ticket),
        },
    }


async def send(
    client: httpx.AsyncClient,
    config: OutboxConfig,
    channel: AgencyChannel,
    ticket: Ticket,
    row: OutboxMessage,
) -> None:
    if not channel.secret:
        raise DeliveryError("webhook channel has no HMAC secret")
    body = json.dumps(
        build_payload(config, ticket, row), ensure_ascii=False, separators=(",", ":")
    ).encode()
    await post_signed(client, config, channel.target, channel.secret, body, row.idempotency_key)


async def post_signed(
    client: httpx.AsyncClient,
    config: OutboxConfig,
    target: str,
    secret: str,
    body: bytes,
    idempotency_key: str,
) -> None:
    """POST a JSON body signed with ``secret`` to a checked destination (tickets and the
    cellule de veille's alerts)."""
    try:
        config.webhook_policy.check_url(target)
    except netguard.TargetRefused:
        raise DeliveryError("destination refused") from None
    try:
        response = await client.post(
            target,
            content=body,
            headers={
                "Content-Type": "application/json; charset=utf-8",
                SIGNATURE_HEADER: sign(secret, body),
                "Idempotency-Key": idempotency_key,
                "User-Agent": "Tranquillite-Outbox/1",
            },
        )
    except httpx.TransportError as exc:
        if isinstance(exc.__cause__, netguard.AddressRefused):
            raise DeliveryError("destination refused") from None
        raise DeliveryError("destination unreachable") from None
    if not 200 <= response.status_code < 300:
        raise DeliveryError(f"HTTP {response.status_code}")
