"""Ticket lifecycle: status transitions, agency answers, append-only history, citizen notices.

Every change appends a :class:`TicketEvent` (who, when, from, to) and, when the citizen can be
reached in their channel, a "citizen" outbox row, both in the same transaction as the change.

Statuses (SPEC §5)::

    received ──(deliveries done, outbox)──► transmitted ─► acknowledged ─► in_progress ─► closed
        └──────────── an agency may act before the delivery is confirmed ───────┘
    any open status ─► redirected | rejected_duplicate | closed;   closed ─► in_progress (reopen)

``received → transmitted`` is done by the outbox worker only (:func:`mark_transmitted`);
agencies cannot set ``received`` or ``transmitted``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from reports import reference
from webhook import replies
from webhook.store.db import OutboxMessage, Ticket, TicketDestination, TicketEvent, utcnow
from webhook.store.text import storable

STATUSES = (
    "received",
    "transmitted",
    "acknowledged",
    "in_progress",
    "closed",
    "redirected",
    "rejected_duplicate",
)
FINAL_STATUSES = frozenset({"closed", "redirected", "rejected_duplicate"})
# Statuses an agency may set (received/transmitted are the system's).
AGENCY_STATUSES = frozenset(STATUSES) - {"received", "transmitted"}

TRANSITIONS: dict[str, frozenset[str]] = {
    "received": frozenset(AGENCY_STATUSES | {"transmitted"}),
    "transmitted": AGENCY_STATUSES,
    "acknowledged": frozenset({"in_progress", "closed", "redirected", "rejected_duplicate"}),
    "in_progress": frozenset({"closed", "redirected", "rejected_duplicate"}),
    "closed": frozenset({"in_progress"}),
    "redirected": frozenset(),
    "rejected_duplicate": frozenset(),
}
# French display names of the report types (SPEC §2), for agency-facing texts.
REPORT_TYPE_LABELS: dict[str, str] = {
    "harcelement": "Harcèlement",
    "enfant_en_danger": "Enfant en danger",
    "violences_conjugales": "Violences conjugales",
    "arnaque": "Arnaque ou tentative d'arnaque",
    "personne_vulnerable": "Personne vulnérable en danger",
    "absence_vacances": "Opération Tranquillité Vacances",
    "incivilite": "Incivilité",
    "vol_cambriolage": "Vol ou cambriolage",
    "drogue_trafic": "Trafic de stupéfiants",
    "autre": "Autre signalement",
}
STATUS_LABELS: dict[str, str] = {
    "received": "reçu",
    "transmitted": "transmis",
    "acknowledged": "pris en compte",
    "in_progress": "en cours de traitement",
    "closed": "clos",
    "redirected": "réorienté",
    "rejected_duplicate": "doublon",
}
# Channels where a citizen can be told of a change (push, or kept for the web widget).
CITIZEN_CHANNELS = frozenset({"web", "telegram"})
MAX_NOTE_CHARS = 4000
REFERENCE_RE = reference.FULL_RE

Sessions = async_sessionmaker[AsyncSession]


class TransitionError(Exception):
    """An illegal status change (unknown status, forbidden transition, missing ticket)."""


class TicketNotFound(TransitionError):
    pass


def citizen_recipient(ticket: Ticket) -> str | None:
    """The id to push to in the ticket's channel (the conversation id without its channel
    prefix), or None when the citizen cannot be reached (API/Open311 filings, no conversation)."""
    if ticket.channel not in CITIZEN_CHANNELS or not ticket.conversation_id:
        return None
    prefix = f"{ticket.channel}-"
    conversation = ticket.conversation_id
    return conversation[len(prefix) :] if conversation.startswith(prefix) else conversation


def enqueue_citizen_notice(
    session: AsyncSession, ticket: Ticket, event: TicketEvent, text: str
) -> OutboxMessage | None:
    """Queue ``text`` for the citizen of ``ticket`` (same transaction as ``event``)."""
    recipient = citizen_recipient(ticket)
    if recipient is None:
        return None
    message = OutboxMessage(
        ticket_id=ticket.id,
        agency_id=None,
        kind="citizen",
        channel=ticket.channel,
        idempotency_key=f"citizen:{ticket.reference}:{event.id}",
        payload={"channel": ticket.channel, "recipient": recipient, "text": text},
        status="pending",
        attempts=0,
        next_attempt_at=utcnow(),
    )
    session.add(message)
    return message


def status_notice(ticket: Ticket, new_status: str, note: str | None) -> str:
    text = replies.message(
        f"ticket_status_{new_status}", ticket.language, reference=ticket.reference
    )
    if note:
        text += "\n" + replies.message("ticket_status_note", ticket.language, note=note)
    return text


async def _lock_ticket(session: AsyncSession, ticket_id: int) -> Ticket:
    """Take the ticket's write lock first (row lock on PostgreSQL, database write lock on
    SQLite), then read it: concurrent changes of one ticket are serialised."""
    result = await session.execute(
        update(Ticket).where(Ticket.id == ticket_id).values(updated_at=utcnow())
    )
    if getattr(result, "rowcount", 0) != 1:
        raise TicketNotFound(f"ticket {ticket_id} does not exist")
    ticket = (
        await session.execute(
            select(Ticket).where(Ticket.id == ticket_id).execution_options(populate_existing=True)
        )
    ).scalar_one()
    return ticket


async def apply_status(
    session: AsyncSession,
    ticket: Ticket,
    new_status: str,
    actor: str,
    note: str | None = None,
    *,
    allow_system: bool = False,
) -> TicketEvent:
    """Change the status of a ticket locked by the caller's transaction; history + notice."""
    if new_status not in STATUSES:
        raise TransitionError(f"unknown status {new_status!r}")
    if new_status in ("received", "transmitted") and not allow_system:
        raise TransitionError(f"status {new_status!r} is set by the system only")
    if new_status not in TRANSITIONS[ticket.status]:
        raise TransitionError(f"cannot go from {ticket.status!r} to {new_status!r}")
    if note is not None:
        note = storable(note).strip()[:MAX_NOTE_CHARS] or None
    event = TicketEvent(
        ticket_id=ticket.id,
        actor=actor[:100],
        status_from=ticket.status,
        status_to=new_status,
        note=note,
        kind="status",
        visible_to_citizen=True,
    )
    ticket.status = new_status
    ticket.updated_at = utcnow()
    session.add(event)
    await session.flush()
    enqueue_citizen_notice(session, ticket, event, status_notice(ticket, new_status, note))
    return event


async def _reload(session: AsyncSession, ticket_id: int) -> Ticket:
    result = await session.execute(
        select(Ticket).where(Ticket.id == ticket_id).execution_options(populate_existing=True)
    )
    return result.scalar_one()


async def change_status(
    sessions: Sessions, ticket_id: int, new_status: str, actor: str, note: str | None = None
) -> Ticket:
    """An agency changes the status of a ticket. Raises :class:`TransitionError`."""
    async with sessions() as session:
        async with session.begin():
            ticket = await _lock_ticket(session, ticket_id)
            await apply_status(session, ticket, new_status, actor, note)
        return await _reload(session, ticket_id)


async def acknowledge(sessions: Sessions, ticket_id: int, actor: str) -> Ticket:
    return await change_status(sessions, ticket_id, "acknowledged", actor)


async def answer(sessions: Sessions, ticket_id: int, actor: str, text: str) -> Ticket:
    """The agency's answer to the citizen: kept in the history and sent in their channel.
    The status does not change."""
    text = storable(text).strip()[:MAX_NOTE_CHARS]
    if not text:
        raise TransitionError("an answer cannot be empty")
    async with sessions() as session:
        async with session.begin():
            ticket = await _lock_ticket(session, ticket_id)
            event = TicketEvent(
                ticket_id=ticket.id,
                actor=actor[:100],
                status_from=ticket.status,
                status_to=ticket.status,
                note=text,
                kind="answer",
                visible_to_citizen=True,
            )
            session.add(event)
            await session.flush()
            enqueue_citizen_notice(
                session,
                ticket,
                event,
                replies.message(
                    "ticket_answer", ticket.language, reference=ticket.reference, text=text
                ),
            )
        return await _reload(session, ticket_id)


async def mark_transmitted(session: AsyncSession, ticket_id: int) -> bool:
    """received → transmitted once every agency delivery of the ticket is done (delivered or
    given up) and at least one was delivered. Called by the outbox worker in its transaction."""
    ticket = await _lock_ticket(session, ticket_id)
    if ticket.status != "received":
        return False
    counts = dict(
        (
            await session.execute(
                select(OutboxMessage.status, func.count())
                .where(OutboxMessage.ticket_id == ticket_id, OutboxMessage.kind != "citizen")
                .group_by(OutboxMessage.status)
            )
        ).all()
    )
    if counts.get("pending", 0) or not counts.get("delivered", 0):
        return False
    await apply_status(session, ticket, "transmitted", "system:outbox", allow_system=True)
    return True


async def tickets_for_agency(
    sessions: Sessions,
    agency_id: str,
    *,
    status: str | None = None,
    report_type: str | None = None,
    commune_insee: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[Ticket]:
    """Tickets routed to ``agency_id``, newest first, with optional filters."""
    query = (
        select(Ticket)
        .join(TicketDestination, TicketDestination.ticket_id == Ticket.id)
        .where(TicketDestination.agency_id == agency_id)
    )
    if status is not None:
        query = query.where(Ticket.status == status)
    if report_type is not None:
        query = query.where(Ticket.report_type == report_type)
    if commune_insee is not None:
        query = query.where(Ticket.commune_insee == commune_insee)
    query = (
        query.order_by(Ticket.created_at.desc(), Ticket.id.desc())
        .limit(max(0, min(limit, 500)))
        .offset(max(0, offset))
    )
    async with sessions() as session:
        return list((await session.execute(query)).scalars().all())


# ids are SQL INTEGER (32-bit on PostgreSQL)
MAX_ROW_ID = 2**31


async def ticket_for_agency(
    sessions: Sessions, agency_id: str, ticket_id_or_reference: int | str
) -> Ticket | None:
    """The ticket if it is routed to ``agency_id``, else None (the caller answers 404).

    Accepts the numeric id (int or decimal string) or the human reference. An id out of the
    column's range (2^63, 5,000 digits) is simply not found."""
    key: Any = ticket_id_or_reference
    if isinstance(key, str):
        if key.isdecimal():
            if len(key) > 10:
                return None
            column: Any = Ticket.id
            key = int(key)
        elif REFERENCE_RE.match(key):
            column = Ticket.reference
        else:
            return None
    elif isinstance(key, int) and not isinstance(key, bool):
        column = Ticket.id
    else:
        return None
    if column is Ticket.id and not 0 < key < MAX_ROW_ID:
        return None
    query = (
        select(Ticket)
        .join(TicketDestination, TicketDestination.ticket_id == Ticket.id)
        .where(TicketDestination.agency_id == agency_id, column == key)
    )
    async with sessions() as session:
        return (await session.execute(query)).scalar_one_or_none()


def citizen_history(ticket: Ticket) -> list[dict[str, Any]]:
    """The history a citizen may see (status changes and answers, no agent names)."""
    return [
        {
            "at": e.at.isoformat(),
            "kind": e.kind,
            "status": e.status_to,
            "note": e.note if e.kind == "answer" else None,
        }
        for e in ticket.events
        if e.visible_to_citizen
    ]
