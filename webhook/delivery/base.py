"""What the outbox and its senders share: the delivery configuration, the delivery error, and
the ticket facts every agency message shows (commune label, dashboard link).

The outbox (:mod:`webhook.delivery.outbox`) imports the senders
(:mod:`webhook.delivery.email_sender`, :mod:`webhook.delivery.webhook_sender`); the senders import
this module, never the outbox.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field

import routing
from webhook.config import env_number
from webhook.security.netguard import TargetPolicy
from webhook.store.db import Ticket


@dataclass(frozen=True)
class OutboxConfig:
    # "embedded": the gateway runs the worker; "off": run `tranquillite outbox-worker` instead
    mode: str = "embedded"
    poll_seconds: float = 1.0
    batch_size: int = 20
    lease_seconds: float = 120.0
    max_attempts: int = 8
    backoff_base: float = 30.0
    backoff_max: float = 3600.0
    delivery_timeout: float = 30.0
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_from: str = ""
    smtp_starttls: bool = False
    smtp_user: str = ""
    smtp_password: str = ""
    # base URL of the agency dashboard, for links in e-mails and webhooks
    dashboard_url: str = "http://127.0.0.1:8080/agence"
    # where webhooks may go: https, public addresses (operators may allow networks, or http)
    webhook_policy: TargetPolicy = field(default_factory=TargetPolicy)

    @classmethod
    def from_env(cls, gateway_url: str = "http://127.0.0.1:8080") -> OutboxConfig:
        env = os.environ.get
        mode = env("TRANQUILLITE_OUTBOX_WORKER", "embedded") or "embedded"
        if mode not in ("embedded", "off"):
            raise SystemExit(f"TRANQUILLITE_OUTBOX_WORKER must be embedded or off, got {mode!r}")
        return cls(
            mode=mode,
            poll_seconds=env_number("TRANQUILLITE_OUTBOX_POLL_SECONDS", 1.0, float),
            batch_size=env_number("TRANQUILLITE_OUTBOX_BATCH", 20, int),
            lease_seconds=env_number("TRANQUILLITE_OUTBOX_LEASE_SECONDS", 120.0, float),
            max_attempts=env_number("TRANQUILLITE_OUTBOX_MAX_ATTEMPTS", 8, int),
            backoff_base=env_number("TRANQUILLITE_OUTBOX_BACKOFF_SECONDS", 30.0, float),
            backoff_max=env_number("TRANQUILLITE_OUTBOX_BACKOFF_MAX_SECONDS", 3600.0, float),
            delivery_timeout=env_number("TRANQUILLITE_OUTBOX_TIMEOUT_SECONDS", 30.0, float),
            smtp_host=env("TRANQUILLITE_SMTP_HOST", ""),
            smtp_port=env_number("TRANQUILLITE_SMTP_PORT", 25, int),
            smtp_from=env("TRANQUILLITE_SMTP_FROM", ""),
            smtp_starttls=env("TRANQUILLITE_SMTP_STARTTLS", "0") in ("1", "true"),
            smtp_user=env("TRANQUILLITE_SMTP_USER", ""),
            smtp_password=env("TRANQUILLITE_SMTP_PASSWORD", ""),
            dashboard_url=(
                env("TRANQUILLITE_DASHBOARD_URL", "") or f"{gateway_url.rstrip('/')}/agence"
            ),
            webhook_policy=TargetPolicy.from_env(),
        )

    def backoff(self, attempts: int) -> float:
        """Seconds before the next attempt after ``attempts`` failed ones (full jitter on the
        upper half: [d/2, d])."""
        delay = min(self.backoff_max, self.backoff_base * 2 ** max(0, attempts - 1))
        return delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 - jitter, not security


class DeliveryError(Exception):
    """A delivery failed; ``str()`` is safe to store (no personal data)."""


def dashboard_link(config: OutboxConfig, ticket: Ticket) -> str:
    return f"{config.dashboard_url.rstrip('/')}/tickets/{ticket.reference}"


def commune_label(ticket: Ticket) -> str:
    if not ticket.commune_insee:
        return "commune non précisée"
    commune = routing.get_engine().commune(ticket.commune_insee)
    name = commune.name if commune is not None else "?"
    return f"{name} ({ticket.commune_insee})"
