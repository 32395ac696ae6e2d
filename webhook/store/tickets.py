"""Filing reports as tickets: routing decision, human reference, history."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import reports
import routing
from reports import tracking
from webhook.store.db import (
    AgencyChannel,
    Agent,
    OutboxMessage,
    ReferenceCounter,
    Ticket,
    TicketDestination,
    TicketEvent,
    VeilleQueue,
    utcnow,
)
from webhook.store.text import storable

logger = logging.getLogger(__name__)

NATIONAL_DEPARTEMENT = "FR"
CHANNELS = frozenset({"web", "telegram", "api", "open311"})
MAX_FIELD_CHARS = 4000

# The sub-kind of a report (report type, fields → e.g. "faux_conseiller"), kept in its own column
# for the cellule de veille; set by webhook.veille when the gateway starts (the veille worker
# fills in what a filing without it left empty).
SubtypeOf = Callable[[str, dict[str, str]], str | None]
subtype_of: SubtypeOf | None = None


def epci_of(commune_insee: str | None) -> str | None:
    """The EPCI (SIREN) a ticket filed under ``commune_insee`` is counted in by the cellule de
    veille (``tickets.epci_siren``): its commune's, when the code is that of a current commune
    (not a former code nor a municipal arrondissement: the veille counts those under no EPCI)."""
    if commune_insee is None:
        return None
    commune = routing.get_engine().commune(commune_insee)
    if commune is None or commune.insee != commune_insee or commune.kind != "commune":
        return None
    return commune.epci_siren or None


async def align_epcis(sessions: async_sessionmaker[AsyncSession], departement: str) -> int:
    """Set ``tickets.epci_siren`` of a département's tickets from the routing reference data in
    use (after an update of that data moved communes between EPCIs); returns how many tickets
    changed. Their ``updated_at`` is kept: nothing happened to them."""
    changed = 0
    async with sessions() as session, session.begin():
        pairs = (
            await session.execute(
                select(Ticket.commune_insee, Ticket.epci_siren)
                .where(Ticket.departement == departement, Ticket.commune_insee.is_not(None))
                .distinct()
            )
        ).all()
        for commune_insee, epci in sorted(pairs, key=lambda p: (p[0], p[1] or "")):
            expected = epci_of(commune_insee)
            if expected == epci:
                continue
            result = await session.execute(
                update(Ticket)
                .where(
                    Ticket.departement == departement,
                    Ticket.commune_insee == commune_insee,
                    Ticket.epci_siren.is_(None) if epci is None else Ticket.epci_siren == epci,
                )
                .values(epci_siren=expected, updated_at=Ticket.updated_at)
                .execution_options(synchronize_session=False)
            )
            changed += int(getattr(result, "rowcount", 0) or 0)
    if changed:
        logger.info("%d ticket(s) of %s given the EPCI of their commune", changed, departement)
    return changed


class TicketError(Exception):
    """Base error of the ticket service."""


class InvalidReport(TicketError):
    pass


@dataclass(frozen=True)
class NewReport:
    report_type: str
    commune_insee: str | None
    fields: dict[str, str]
    channel: str = "web"
    language: str = "fr"
    conversation_id: str | None = None
    anonymous: bool = True
    idempotency_key: str | None = None
    # the safety check fired during the conversation (danger written in the middle of a form)
    danger_signal: bool = False
    # who filed it when not the citizen (an agency's API token): named in the history
    filed_by: str | None = None
    # extra flags for tools that file without answers (benchmarks); channels give none: the
    # flags of a report are computed here from its fields (reports.flags), whatever the channel
    flags: dict[str, bool] = field(default_factory=dict)

    def routing_flags(self) -> dict[str, bool]:
        answers: dict[str, Any] = dict(self.fields)
        if self.danger_signal:
            answers[reports.DANGER_SIGNAL] = "oui"
        computed = reports.flags(self.report_type, answers)
        return {name: computed[name] or bool(self.flags.get(name)) for name in computed}

    def validated(self) -> NewReport:
        if self.report_type not in routing.REPORT_TYPES:
            raise InvalidReport(f"unknown report type {self.report_type!r}")
        if self.channel not in CHANNELS:
            raise InvalidReport(f"unknown channel {self.channel!r}")
        if (
            self.commune_insee is not None
            and routing.get_engine().commune(self.commune_insee) is None
        ):
            raise InvalidReport(f"unknown commune {self.commune_insee!r}")
        text = {
            name: storable(value) if isinstance(value, str) else value
            for name, value in (
                ("conversation_id", self.conversation_id),
                ("idempotency_key", self.idempotency_key),
                ("language", self.language),
                ("filed_by", self.filed_by),
            )
        }
        return NewReport(**{**self.__dict__, **text, "fields": _storable_fields(self.fields)})


def _storable_fields(fields: dict[str, str]) -> dict[str, str]:
    """The fields as the ticket keeps them: short keys, bounded values, text a database
    accepts (webhook.store.text)."""
    return {
        storable(str(k))[:64]: storable(str(v))[:MAX_FIELD_CHARS]
        for k, v in fields.items()
        if v is not None
    }


def conversation_key(report: NewReport, today: dt.date | None = None) -> str:
    """The idempotency key of a report filed from a conversation (chat, guided mode, Telegram):
    the conversation, the report's content and the day in France. It is computed from what the
    report says, not kept in memory, so a retry after a lost answer or a restart of any process
    finds the ticket filed the first time instead of filing it again."""
    content = json.dumps(
        {
            "type": report.report_type,
            "commune": report.commune_insee,
            # as validated() keeps them
            "fields": dict(sorted(_storable_fields(report.fields).items())),
            "danger": report.danger_signal,
        },
        sort_keys=True,
        ensure_ascii=False,
    )
    digest = hashlib.sha256(storable(content).encode("utf-8")).hexdigest()[:32]
    day = (today or reports.today()).isoformat()
    conversation = hashlib.sha256(storable(report.conversation_id or "").encode()).hexdigest()[:16]
    return f"conversation:{conversation}:{day}:{digest}"


def format_reference(departement: str, year: int, number: int) -> str:
    return f"{departement}-{year}-{number:06d}"


async def _next_number(session: AsyncSession, departement: str, year: int) -> int:
    """Increment the counter of (département, year) inside the caller's transaction.

    The UPDATE takes a row lock (PostgreSQL) or the database write lock (SQLite), so concurrent
    transactions get distinct numbers.
    """
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    insert_fn = postgresql.insert if dialect == "postgresql" else sqlite.insert
    await session.execute(
        insert_fn(ReferenceCounter)
        .values(departement=departement, year=year, value=0)
        .on_conflict_do_nothing(index_elements=["departement", "year"])
    )
    result = await session.execute(
        update(ReferenceCounter)
        .where(ReferenceCounter.departement == departement, ReferenceCounter.year == year)
        .values(value=ReferenceCounter.value + 1)
        .returning(ReferenceCounter.value)
    )
    return int(result.scalar_one())


async def file_report(
    sessions: async_sessionmaker[AsyncSession], report: NewReport
) -> tuple[Ticket, bool]:
    """Route and store a report. Returns (ticket, created); a repeated idempotency key returns
    the ticket filed the first time."""
    report = report.validated()
    if report.idempotency_key:
        existing = await get_by_idempotency_key(sessions, report.idempotency_key)
        if existing is not None:
            return existing, False

    engine = routing.get_engine()
    decision = engine.decide(report.report_type, report.commune_insee, **report.routing_flags())
    commune = engine.commune(report.commune_insee) if report.commune_insee else None
    departement = commune.departement if commune else NATIONAL_DEPARTEMENT
    year = dt.datetime.now(dt.UTC).year

    try:
        async with sessions() as session, session.begin():
            number = await _next_number(session, departement, year)
            ticket = Ticket(
                reference=format_reference(departement, year, number),
                report_type=report.report_type,
                departement=departement,
                commune_insee=report.commune_insee,
                fields=dict(report.fields),
                decision=decision.to_dict(),
                language=report.language,
                channel=report.channel,
                conversation_id=report.conversation_id,
                # anonymous unless the citizen asked to be contacted and said how
                anonymous=report.anonymous and not reports.contact_wanted(report.fields),
                status="received",
                idempotency_key=report.idempotency_key,
                tracking_code=tracking.new_code(),
                subtype=subtype_of(report.report_type, report.fields) if subtype_of else None,
                epci_siren=epci_of(report.commune_insee),
            )
            ticket.destinations = [
                TicketDestination(
                    agency_id=d.agency_id,
                    agency_name=d.agency_name,
                    role=d.role,
                    rule_id=d.rule_id,
                )
                for d in decision.destinations
            ]
            # an agency nobody has set up to receive reports: the report also goes to one that
            # can (the competent force, else the préfecture)
            ticket.destinations += await _receiving_fallback(
                session, [d.agency_id for d in decision.destinations], commune
            )
            ticket.events = [
                TicketEvent(
                    actor=(report.filed_by or f"citizen:{report.channel}")[:100],
                    status_from=None,
                    status_to="received",
                )
            ]
            session.add(ticket)
            await session.flush()
            # Deliveries are queued in the same transaction: an accepted report is never lost.
            await enqueue_agency_deliveries(session, ticket)
            if ticket.commune_insee is not None:
                # the cellule de veille evaluates its alerts (webhook.veille.worker)
                session.add(VeilleQueue(ticket_id=ticket.id))
    except IntegrityError:
        # Two deliveries of the same report raced: the other one won, return it.
        if report.idempotency_key:
            existing = await get_by_idempotency_key(sessions, report.idempotency_key)
            if existing is not None:
                return existing, False
        raise
    logger.info(
        "ticket %s filed: type=%s channel=%s destinations=%s",
        ticket.reference,
        ticket.report_type,
        ticket.channel,
        ",".join(d.agency_id for d in ticket.destinations),
    )
    return ticket, True


FALLBACK_RULE_ID = "fallback_no_delivery_channel"


async def reachable_agencies(session: AsyncSession, agency_ids: list[str]) -> set[str]:
    """The agencies among ``agency_ids`` that someone receives reports for: an active agent
    account (the dashboard) or an active e-mail or webhook channel."""
    if not agency_ids:
        return set()
    with_agents = await session.execute(
        select(Agent.agency_id).where(Agent.agency_id.in_(agency_ids), Agent.active.is_(True))
    )
    with_channels = await session.execute(
        select(AgencyChannel.agency_id).where(
            AgencyChannel.agency_id.in_(agency_ids), AgencyChannel.active.is_(True)
        )
    )
    return {str(a) for a in with_agents.scalars()} | {str(a) for a in with_channels.scalars()}


def can_receive(agency: routing.Agency, reachable: set[str]) -> bool:
    """An agency that is neither a placeholder nor unidentified, or one set up in the database."""
    return agency.id in reachable or not agency.to_configure


async def _receiving_fallback(
    session: AsyncSession, agency_ids: list[str], commune: routing.Commune | None
) -> list[TicketDestination]:
    """Copies for an agency that can receive, when one of ``agency_ids`` cannot (a placeholder
    of the reference data that nobody has set up): the commune's competent force, else the
    département's préfecture — unless such an agency is already a destination."""
    engine = routing.get_engine()
    reachable = await reachable_agencies(session, agency_ids)
    stranded = [a for a in agency_ids if not can_receive(engine.agency(a), reachable)]
    if not stranded or commune is None:
        return []
    known = {x.id for x in engine.agencies()}
    candidates = [
        a
        for a in (*engine.force_agencies(commune.insee), f"{commune.departement}-prefecture")
        if a in known and not engine.agency(a).to_configure
    ]
    if any(a in agency_ids for a in candidates):
        return []  # the force (or the préfecture) already receives this report
    added = [
        TicketDestination(
            agency_id=agency.id, agency_name=agency.name, role="copy", rule_id=FALLBACK_RULE_ID
        )
        for agency in (engine.agency(a) for a in candidates[:1])
    ]
    if added:
        logger.warning(
            "agencies without a delivery channel: %s; copy to %s",
            ",".join(stranded),
            ",".join(d.agency_id for d in added),
        )
    return added


async def agencies_without_channel(
    sessions: async_sessionmaker[AsyncSession],
) -> list[dict[str, Any]]:
    """For operators: agencies that reports were routed to and that cannot receive them (a
    placeholder of the reference data nobody has set up), with their tickets' count and the
    latest one's time, most tickets first."""
    engine = routing.get_engine()
    known = {a.id for a in engine.agencies()}
    async with sessions() as session:
        rows = (
            await session.execute(
                select(
                    TicketDestination.agency_id,
                    func.max(TicketDestination.agency_name),
                    func.count(TicketDestination.id),
                    func.max(Ticket.created_at),
                )
                .join(Ticket, Ticket.id == TicketDestination.ticket_id)
                .group_by(TicketDestination.agency_id)
            )
        ).all()
        reachable = await reachable_agencies(session, [str(r[0]) for r in rows])
    found = [
        {"agency_id": agency_id, "agency_name": name, "tickets": int(count), "latest": latest}
        for agency_id, name, count, latest in rows
        if agency_id not in reachable
        and not (agency_id in known and not engine.agency(agency_id).to_configure)
    ]
    return sorted(found, key=lambda e: (-e["tickets"], e["agency_id"]))


async def enqueue_agency_deliveries(session: AsyncSession, ticket: Ticket) -> list[OutboxMessage]:
    """The outbox rows of a new ticket, one per destination agency and channel: dashboard always,
    plus each active e-mail or webhook channel of the agency. Called in the transaction that
    files the ticket; the outbox worker (:mod:`webhook.delivery.outbox`) delivers them."""
    agency_ids = sorted({d.agency_id for d in ticket.destinations})
    channels: list[AgencyChannel] = []
    if agency_ids:
        channels = list(
            (
                await session.execute(
                    select(AgencyChannel)
                    .where(AgencyChannel.agency_id.in_(agency_ids), AgencyChannel.active.is_(True))
                    .order_by(AgencyChannel.id)
                )
            )
            .scalars()
            .all()
        )
    now = utcnow()
    rows: list[OutboxMessage] = []
    for agency_id in agency_ids:
        rows.append(
            OutboxMessage(
                ticket_id=ticket.id,
                agency_id=agency_id,
                kind="dashboard",
                idempotency_key=f"dashboard:{ticket.reference}:{agency_id}",
                payload={"reference": ticket.reference},
                status="pending",
                attempts=0,
                next_attempt_at=now,
            )
        )
        for channel in channels:
            if channel.agency_id != agency_id or channel.kind not in ("email", "webhook"):
                continue
            rows.append(
                OutboxMessage(
                    ticket_id=ticket.id,
                    agency_id=agency_id,
                    kind=channel.kind,
                    idempotency_key=f"{channel.kind}:{ticket.reference}:{agency_id}:{channel.id}",
                    payload={"reference": ticket.reference, "channel_id": channel.id},
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                )
            )
    session.add_all(rows)
    return rows


async def _get_one(
    sessions: async_sessionmaker[AsyncSession], column: Any, value: str
) -> Ticket | None:
    async with sessions() as session:
        result = await session.execute(select(Ticket).where(column == value))
        return result.scalar_one_or_none()


async def get_by_idempotency_key(
    sessions: async_sessionmaker[AsyncSession], key: str
) -> Ticket | None:
    return await _get_one(sessions, Ticket.idempotency_key, key)


async def get_by_reference(
    sessions: async_sessionmaker[AsyncSession], reference: str
) -> Ticket | None:
    return await _get_one(sessions, Ticket.reference, reference)


async def latest_for_conversation(
    sessions: async_sessionmaker[AsyncSession], conversation_id: str, since: dt.datetime
) -> Ticket | None:
    """The last ticket a conversation filed since ``since`` (a confirmation asked for again)."""
    async with sessions() as session:
        result = await session.execute(
            select(Ticket)
            .where(Ticket.conversation_id == conversation_id, Ticket.created_at >= since)
            .order_by(Ticket.created_at.desc(), Ticket.id.desc())
            .limit(1)
        )
        return result.scalar_one_or_none()


async def get_for_citizen(
    sessions: async_sessionmaker[AsyncSession],
    *,
    conversation_id: str | None,
    reference: str | None = None,
    tracking_code: str | None = None,
) -> Ticket | None:
    """The ticket a citizen may follow: the one whose tracking code they give (and, when they
    also give a reference, that reference), or the one with that reference filed by their own
    conversation. Anything else is None, exactly like an unknown reference."""
    code = tracking.normalise(tracking_code) if tracking_code else None
    if code is not None:
        ticket = await _get_one(sessions, Ticket.tracking_code, code)
        if ticket is not None and (reference is None or ticket.reference == reference):
            return ticket
        return None
    if reference is None or not conversation_id:
        return None
    ticket = await get_by_reference(sessions, reference)
    if ticket is None or ticket.conversation_id != conversation_id:
        return None
    return ticket


def ticket_summary(ticket: Ticket, *, with_tracking_code: bool = False) -> dict[str, Any]:
    """What the citizen's side may see of a ticket (no personal data). The tracking code only
    goes to the conversation that filed the ticket (``with_tracking_code``)."""
    extra: dict[str, Any] = {}
    if with_tracking_code and ticket.tracking_code:
        extra["tracking_code"] = tracking.display(ticket.tracking_code)
    return {
        **extra,
        "reference": ticket.reference,
        "report_type": ticket.report_type,
        "status": ticket.status,
        "commune_insee": ticket.commune_insee,
        "destinations": [
            {
                "agency_id": d.agency_id,
                "agency_name": d.agency_name,
                "role": d.role,
                "rule_id": d.rule_id,
            }
            for d in ticket.destinations
        ],
        "referrals": ticket.decision.get("referrals", []),
        "created_at": ticket.created_at.isoformat(),
    }
