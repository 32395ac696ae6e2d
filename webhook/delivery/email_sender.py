"""E-mail delivery of a ticket to an agency (SMTP, standard library, in a thread).

What goes by e-mail: the reference, report type, commune, date, the routing rule and a link to
the dashboard. Nothing else — no free text, no form fields, no contact details of the citizen:
e-mail is not end-to-end protected and is often forwarded; the agent opens the ticket in the
dashboard (authenticated) to read it.
"""

from __future__ import annotations

import asyncio
import smtplib
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from webhook.delivery.base import DeliveryError, OutboxConfig, commune_label, dashboard_link
from webhook.store.db import AgencyChannel, OutboxMessage, Ticket
from webhook.store.lifecycle import REPORT_TYPE_LABELS


def build_message(
    config: OutboxConfig, channel: AgencyChannel, ticket: Ticket, row: OutboxMessage
) -> EmailMessage:
    label = REPORT_TYPE_LABELS.get(ticket.report_type, ticket.report_type)
    destination = next((d for d in ticket.destinations if d.agency_id == row.agency_id), None)
    message = EmailMessage()
    message["Subject"] = f"[Tranquillité] Nouveau signalement {ticket.reference} : {label}"
    message["From"] = config.smtp_from
    message["To"] = channel.target
    message["Date"] = format_datetime(ticket.created_at)
    message["Message-ID"] = make_msgid(domain="tranquillite.invalid")
    # receivers (and ticketing tools) dedupe on this header: same value on every retry
    message["X-Tranquillite-Idempotency-Key"] = row.idempotency_key
    message["X-Tranquillite-Reference"] = ticket.reference
    lines = [
        "Bonjour,",
        "",
        "Un signalement a été orienté vers votre service par Tranquillité.",
        "",
        f"Référence : {ticket.reference}",
        f"Type : {label}",
        f"Commune : {commune_label(ticket)}",
        f"Reçu le : {ticket.created_at:%d/%m/%Y à %H:%M} (UTC)",
    ]
    if destination is not None:
        role = "destinataire principal" if destination.role == "primary" else destination.role
        lines.append(f"Votre rôle : {role} (règle {destination.rule_id})")
    lines += [
        "",
        "Le contenu du signalement n'est pas envoyé par courriel pour protéger les personnes.",
        f"Consultez-le dans le tableau de bord : {dashboard_link(config, ticket)}",
        "",
        "Message automatique, merci de ne pas y répondre.",
    ]
    message.set_content("\n".join(lines))
    return message


def send_message(config: OutboxConfig, message: EmailMessage) -> None:
    """Send a built message over SMTP (blocking: call it in a thread)."""
    _send_sync(config, message)


def _send_sync(config: OutboxConfig, message: EmailMessage) -> None:
    with smtplib.SMTP(config.smtp_host, config.smtp_port, timeout=config.delivery_timeout) as smtp:
        if config.smtp_starttls:
            smtp.starttls()
        if config.smtp_user:
            smtp.login(config.smtp_user, config.smtp_password)
        smtp.send_message(message)


async def send(
    config: OutboxConfig, channel: AgencyChannel, ticket: Ticket, row: OutboxMessage
) -> None:
    if not config.smtp_host or not config.smtp_from:
        raise DeliveryError("SMTP not configured (TRANQUILLITE_SMTP_HOST, TRANQUILLITE_SMTP_FROM)")
    await asyncio.to_thread(_send_sync, config, build_message(config, channel, ticket, row))
