"""Convergence alerts (SPEC §7): "alerter lorsque des faisceaux de faits convergent".

For each area (commune, EPCI part; the département for the types counted only there) × report
type (and sub-kind), at time ``now``:

- **count**: reports of the last ``window_days`` (7) days, ``(now - 7 days, now]``;
- **expected**: the area's own rate over the ``baseline_weeks`` (12) weeks before the window,
  per window — at least ``floor`` (0.2). A département whose service opened less than
  ``min_history_weeks`` ago has no usable baseline yet: its areas are "new" and get the floor; an
  area with a shorter history than 12 weeks uses the weeks it has;
- **alert** when P(X >= count) < ``p_value_max`` (0.001) for X ~ Poisson(expected), with at least
  ``min_reports`` (3) reports from at least ``min_residents`` (2) different residents (a
  resident is a conversation; a report without one counts as its own resident);
- **one alert per wave**: while an alert of the same key is going on, new reports update it (its
  figures, its tickets); the wave ends at the first evaluation with fewer than ``min_reports``
  reports or a p-value of at least ``end_p_value`` (0.01); the next wave is a new alert;
- **the most precise alert explains a wave**: keys are evaluated from the most precise (commune
  × sub-kind) to the widest (EPCI × type); a wider key is raised only if its reports outside the
  waves already going on under it would raise it on their own.

Evaluated when a report is filed (the worker reads ``veille_queue``), for the ticket's keys; the
worker also re-checks the waves going on (``sweep``); ``recompute`` evaluates every key of a
département in one pass over its tickets. A new alert is delivered through the outbox to the
e-mail and webhook channels of the territories that cover its area.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import routing
from webhook.agency import territory as territories
from webhook.store.db import (
    OutboxMessage,
    Ticket,
    VeilleAlert,
    VeilleAlertTicket,
    VeilleChannel,
    utcnow,
)
from webhook.veille import figures
from webhook.veille.config import NO_SUBTYPE, VeilleConfig
from webhook.veille.figures import NOT_COUNTED_STATUSES, Geography, utc
from webhook.veille.poisson import upper_tail

logger = logging.getLogger(__name__)

Sessions = async_sessionmaker[AsyncSession]
STATUSES: tuple[str, ...] = ("open", "acknowledged", "closed")
STATUS_LABELS = {"open": "nouvelle", "acknowledged": "prise en compte", "closed": "close"}
_PRECISION = {"commune": 0, "epci": 1, "departement": 2}


class AlertError(Exception):
    """An alert cannot change that way (message in French, safe to show)."""


@dataclass(frozen=True, order=True)
class AlertKey:
    departement: str
    area_kind: str
    area_code: str
    report_type: str
    subtype: str = ""  # "" for the whole type

    @classmethod
    def of(cls, alert: VeilleAlert) -> AlertKey:
        return cls(
            alert.departement, alert.area_kind, alert.area_code, alert.report_type, alert.subtype
        )

    @property
    def precision(self) -> tuple[int, int]:
        """Sort key: most precise first (area, then sub-kind before type)."""
        return _PRECISION[self.area_kind], 0 if self.subtype else 1

    def within(self, other: AlertKey, geo: Geography) -> bool:
        """Whether this key is narrower than ``other`` (same type; area and category inside)."""
        if self == other or self.report_type != other.report_type:
            return False
        if other.subtype and self.subtype != other.subtype:
            return False
        if self.area_kind == other.area_kind:
            return self.area_code == other.area_code and bool(self.subtype) > bool(other.subtype)
        if other.area_kind == "departement":
            return True
        return (
            other.area_kind == "epci"
            and self.area_kind == "commune"
            and geo.epci_of.get(self.area_code) == other.area_code
        )


def keys_for(
    geo: Geography, config: VeilleConfig, commune: str, report_type: str, answer: str | None
) -> list[AlertKey]:
    """The keys a ticket of ``report_type`` in ``commune`` is evaluated under."""
    if report_type in config.alerts.excluded_types:
        return []
    dep = geo.departement
    if report_type in config.departement_only_types:
        return [AlertKey(dep, "departement", dep, report_type)]
    subtypes = [""]
    if report_type in config.subtype_questions:
        subtype = config.subtype_of(report_type, answer)
        if subtype != NO_SUBTYPE:
            subtypes.insert(0, subtype)
    areas = [("commune", commune)]
    if geo.epci_of.get(commune):
        areas.append(("epci", str(geo.epci_of[commune])))
    return sorted(
        (AlertKey(dep, kind, code, report_type, s) for kind, code in areas for s in subtypes),
        key=lambda k: k.precision,
    )


# ------------------------------------------------------------------------------ evaluation


@dataclass
class Observation:
    """What the tickets say about a key at ``now``."""

    key: AlertKey
    now: dt.datetime
    window_start: dt.datetime
    # (ticket id, resident) of the window's reports
    tickets: list[tuple[int, str]] = field(default_factory=list)
    baseline_count: int = 0
    baseline_weeks: float = 0.0


@dataclass(frozen=True)
class Evaluation:
    count: int
    residents: int
    expected: float
    floor_used: bool
    p_value: float
    raises: bool
    ends: bool


def assess(
    observation: Observation, config: VeilleConfig, excluded: frozenset[int] = frozenset()
) -> Evaluation:
    """The alert decision for an observation (``excluded``: tickets already explained by a
    narrower wave)."""
    settings = config.alerts
    tickets = [(i, r) for i, r in observation.tickets if i not in excluded]
    count = len(tickets)
    residents = len({r for _, r in tickets})
    rate = None
    if observation.baseline_weeks >= settings.min_history_weeks and observation.baseline_weeks > 0:
        rate = observation.baseline_count / observation.baseline_weeks * settings.window_days / 7
    expected = max(rate or 0.0, settings.floor)
    floor_used = rate is None or rate < settings.floor
    p_value = upper_tail(count, expected)
    raises = (
        count >= settings.min_reports
        and residents >= settings.min_residents
        and p_value < settings.p_value_max
    )
    ends = count < settings.min_reports or p_value >= settings.end_p_value
    return Evaluation(count, residents, expected, floor_used, p_value, raises, ends)


def resident_of(ticket_id: int, conversation_id: str | None) -> str:
    return f"c:{conversation_id}" if conversation_id else f"t:{ticket_id}"


class History:
    """When each département's service opened (its first ticket), cached per process."""

    def __init__(self) -> None:
        self._starts: dict[str, dt.datetime | None] = {}

    async def start(self, session: AsyncSession, departement: str) -> dt.datetime | None:
        if self._starts.get(departement) is None:
            first = await session.scalar(
                select(func.min(Ticket.created_at)).where(Ticket.departement == departement)
            )
            self._starts[departement] = utc(first) if first is not None else None
        return self._starts[departement]

    def forget(self) -> None:
        self._starts.clear()


def _baseline_span(
    config: VeilleConfig, window_start: dt.datetime, opened: dt.datetime | None
) -> tuple[dt.datetime, float]:
    start = window_start - dt.timedelta(weeks=config.alerts.baseline_weeks)
    if opened is not None and opened > start:
        start = opened
    weeks = max(0.0, (window_start - start).total_seconds() / (7 * 86400))
    return start, weeks


def _area_filter(geo: Geography, key: AlertKey) -> Any:
    if key.area_kind == "commune":
        return Ticket.commune_insee == key.area_code
    if key.area_kind == "epci":
        return Ticket.commune_insee.in_(geo.epcis.get(key.area_code, ()))
    return Ticket.departement == key.departement


async def observe(
    session: AsyncSession,
    key: AlertKey,
    now: dt.datetime,
    config: VeilleConfig,
    history: History,
) -> Observation:
    """An observation of one key from two indexed queries."""
    geo = figures.geography(key.departement)
    window_start = now - dt.timedelta(days=config.alerts.window_days)
    question = config.subtype_questions.get(key.report_type)
    answer = Ticket.fields[question].as_string() if question else None
    common = [
        _area_filter(geo, key),
        Ticket.report_type == key.report_type,
        Ticket.status.not_in(NOT_COUNTED_STATUSES),
    ]
    columns: list[Any] = [Ticket.id, Ticket.conversation_id]
    if answer is not None:
        columns.append(answer)
    rows = (
        await session.execute(
            select(*columns).where(
                *common, Ticket.created_at > window_start, Ticket.created_at <= now
            )
        )
    ).all()
    observation = Observation(key=key, now=now, window_start=window_start)
    for row in rows:
        if key.subtype and config.subtype_of(key.report_type, row[2]) != key.subtype:
            continue
        observation.tickets.append((int(row[0]), resident_of(int(row[0]), row[1])))
    baseline_start, observation.baseline_weeks = _baseline_span(
        config, window_start, await history.start(session, key.departement)
    )
    baseline = [*common, Ticket.created_at >= baseline_start, Ticket.created_at <= window_start]
    if key.subtype and answer is not None:
        grouped = await session.execute(
            select(answer, func.count()).where(*baseline).group_by(answer)
        )
        observation.baseline_count = sum(
            int(n)
            for value, n in grouped.all()
            if config.subtype_of(key.report_type, value) == key.subtype
        )
    else:
        observation.baseline_count = int(
            await session.scalar(select(func.count()).select_from(Ticket).where(*baseline)) or 0
        )
    return observation


# ------------------------------------------------------------------------------ waves


@dataclass
class Outcome:
    created: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    ended: list[int] = field(default_factory=list)

    def merge(self, other: Outcome) -> None:
        self.created += other.created
        self.updated += other.updated
        self.ended += other.ended


async def _ongoing(
    session: AsyncSession, departement: str, report_types: Iterable[str]
) -> dict[AlertKey, tuple[VeilleAlert, set[int]]]:
    alerts = (
        (
            await session.execute(
                select(VeilleAlert).where(
                    VeilleAlert.departement == departement,
                    VeilleAlert.report_type.in_(sorted(set(report_types))),
                    VeilleAlert.ended_at.is_(None),
                )
            )
        )
        .scalars()
        .all()
    )
    out: dict[AlertKey, tuple[VeilleAlert, set[int]]] = {}
    for alert in alerts:
        ids = (
            await session.execute(
                select(VeilleAlertTicket.ticket_id).where(VeilleAlertTicket.alert_id == alert.id)
            )
        ).scalars()
        out[AlertKey.of(alert)] = (alert, {int(i) for i in ids})
    return out


def _set_figures(
    alert: VeilleAlert, observation: Observation, evaluation: Evaluation, now: dt.datetime
) -> None:
    alert.window_start = observation.window_start
    alert.window_end = now
    alert.count = evaluation.count
    alert.residents = evaluation.residents
    alert.baseline_count = observation.baseline_count
    alert.baseline_weeks = round(observation.baseline_weeks, 4)
    alert.expected = evaluation.expected
    alert.p_value = evaluation.p_value
    alert.floor_used = evaluation.floor_used
    alert.peak_count = max(alert.peak_count or 0, evaluation.count)
    alert.updated_at = now


async def settle(
    session: AsyncSession,
    observations: Sequence[Observation],
    now: dt.datetime,
    config: VeilleConfig,
    *,
    deliver: bool = True,
) -> Outcome:
    """Apply observations of one département (in the caller's transaction): raise, update or
    end waves; queue the deliveries of the new alerts."""
    outcome = Outcome()
    if not observations:
        return outcome
    departement = observations[0].key.departement
    geo = figures.geography(departement)
    current = await _ongoing(session, departement, {o.key.report_type for o in observations})
    for observation in sorted(observations, key=lambda o: (o.key.precision, o.key)):
        key = observation.key
        full = assess(observation, config)
        found = current.get(key)
        if found is not None:
            alert, linked = found
            if full.raises:
                _set_figures(alert, observation, full, now)
                await _link(session, alert, observation, linked)
                outcome.updated.append(alert.id)
            elif full.ends:
                alert.ended_at = now
                alert.updated_at = now
                del current[key]
                outcome.ended.append(alert.id)
            continue
        narrower: set[int] = set()
        for other, (_alert, ids) in current.items():
            if other.within(key, geo):
                narrower |= ids
        if not full.raises or not assess(observation, config, frozenset(narrower)).raises:
            continue
        alert = VeilleAlert(
            departement=key.departement,
            area_kind=key.area_kind,
            area_code=key.area_code,
            report_type=key.report_type,
            subtype=key.subtype,
            status="open",
            raised_at=now,
            peak_count=0,
        )
        _set_figures(alert, observation, full, now)
        session.add(alert)
        await session.flush()
        linked = set()
        await _link(session, alert, observation, linked)
        current[key] = (alert, linked)
        outcome.created.append(alert.id)
        if deliver:
            await enqueue_deliveries(session, alert, config)
        logger.info(
            "veille alert %s raised: %s %s %s %s",
            alert.id,
            key.area_kind,
            key.area_code,
            key.report_type,
            key.subtype or "-",
        )
    return outcome


async def _link(
    session: AsyncSession, alert: VeilleAlert, observation: Observation, linked: set[int]
) -> None:
    for ticket_id, _resident in observation.tickets:
        if ticket_id not in linked:
            session.add(VeilleAlertTicket(alert_id=alert.id, ticket_id=ticket_id))
            linked.add(ticket_id)
    await session.flush()


# ------------------------------------------------------------------------------ entry points


async def evaluate_tickets(
    sessions: Sessions,
    ticket_ids: Sequence[int],
    now: dt.datetime,
    config: VeilleConfig,
    history: History | None = None,
) -> Outcome:
    """Evaluate the keys of filed tickets (one transaction)."""
    history = history or History()
    outcome = Outcome()
    async with sessions() as session, session.begin():
        await evaluate_in(session, ticket_ids, now, config, history, outcome)
    return outcome


async def evaluate_in(
    session: AsyncSession,
    ticket_ids: Sequence[int],
    now: dt.datetime,
    config: VeilleConfig,
    history: History,
    outcome: Outcome,
) -> None:
    if not ticket_ids:
        return
    questions = sorted(set(config.subtype_questions.values()))
    rows = (
        await session.execute(
            select(
                Ticket.commune_insee,
                Ticket.report_type,
                *(Ticket.fields[q].as_string() for q in questions),
            ).where(Ticket.id.in_(list(ticket_ids)), Ticket.commune_insee.is_not(None))
        )
    ).all()
    engine = routing.get_engine()
    by_departement: dict[str, set[AlertKey]] = {}
    for row in rows:
        commune = engine.commune(row[0])
        if commune is None:
            continue
        geo = figures.geography(commune.departement)
        if commune.insee not in geo.epci_of:
            continue
        question = config.subtype_questions.get(row[1])
        answer = row[2 + questions.index(question)] if question else None
        for key in keys_for(geo, config, commune.insee, row[1], answer):
            by_departement.setdefault(key.departement, set()).add(key)
    for keys in by_departement.values():
        observations = [await observe(session, key, now, config, history) for key in sorted(keys)]
        outcome.merge(await settle(session, observations, now, config))


async def sweep(
    sessions: Sessions,
    now: dt.datetime,
    config: VeilleConfig,
    history: History | None = None,
) -> Outcome:
    """Re-check every wave going on at ``now`` (ends the waves that are over)."""
    history = history or History()
    outcome = Outcome()
    async with sessions() as session, session.begin():
        keys = [
            AlertKey.of(a)
            for a in (
                await session.execute(select(VeilleAlert).where(VeilleAlert.ended_at.is_(None)))
            ).scalars()
        ]
        by_departement: dict[str, list[AlertKey]] = {}
        for key in keys:
            by_departement.setdefault(key.departement, []).append(key)
        for dep_keys in by_departement.values():
            observations = [await observe(session, k, now, config, history) for k in dep_keys]
            outcome.merge(await settle(session, observations, now, config))
    return outcome


async def recompute(
    sessions: Sessions,
    departement: str,
    now: dt.datetime,
    config: VeilleConfig,
    *,
    deliver: bool = True,
) -> Outcome:
    """Evaluate every key of a département at ``now`` from one pass over its tickets of the last
    window and baseline (same decisions as the per-report evaluation)."""
    geo = figures.geography(departement)
    window_start = now - dt.timedelta(days=config.alerts.window_days)
    questions = sorted(set(config.subtype_questions.values()))
    history = History()
    outcome = Outcome()
    async with sessions() as session, session.begin():
        opened = await history.start(session, departement)
        baseline_start, baseline_weeks = _baseline_span(config, window_start, opened)
        query = (
            select(
                Ticket.id,
                Ticket.created_at,
                Ticket.commune_insee,
                Ticket.report_type,
                Ticket.conversation_id,
                *(Ticket.fields[q].as_string() for q in questions),
            )
            .where(
                Ticket.departement == departement,
                Ticket.commune_insee.is_not(None),
                Ticket.created_at >= baseline_start,
                Ticket.created_at <= now,
                Ticket.status.not_in(NOT_COUNTED_STATUSES),
            )
            .execution_options(yield_per=5000)
        )
        observations: dict[AlertKey, Observation] = {}
        engine = routing.get_engine()
        result = await session.stream(query)
        async for partition in result.partitions():
            for row in partition:
                commune = engine.commune(row[2])
                if commune is None or commune.insee not in geo.epci_of:
                    continue
                question = config.subtype_questions.get(row[3])
                answer = row[5 + questions.index(question)] if question else None
                in_window = utc(row[1]) > window_start
                for key in keys_for(geo, config, commune.insee, row[3], answer):
                    observation = observations.get(key)
                    if observation is None:
                        observation = observations[key] = Observation(
                            key=key,
                            now=now,
                            window_start=window_start,
                            baseline_weeks=baseline_weeks,
                        )
                    if in_window:
                        observation.tickets.append((int(row[0]), resident_of(int(row[0]), row[4])))
                    else:
                        observation.baseline_count += 1
        # waves going on under keys without any report now end
        ongoing = await _ongoing_keys(session, departement)
        for key in ongoing - observations.keys():
            observations[key] = Observation(
                key=key, now=now, window_start=window_start, baseline_weeks=baseline_weeks
            )
        interesting = [
            o
            for o in observations.values()
            if len(o.tickets) >= config.alerts.min_reports or o.key in ongoing
        ]
        outcome.merge(await settle(session, interesting, now, config, deliver=deliver))
    return outcome


async def _ongoing_keys(session: AsyncSession, departement: str) -> set[AlertKey]:
    return {
        AlertKey.of(a)
        for a in (
            await session.execute(
                select(VeilleAlert).where(
                    VeilleAlert.departement == departement, VeilleAlert.ended_at.is_(None)
                )
            )
        ).scalars()
    }


# ------------------------------------------------------------------------------ deliveries


async def enqueue_deliveries(
    session: AsyncSession, alert: VeilleAlert, config: VeilleConfig
) -> list[OutboxMessage]:
    """One outbox row per active channel whose territory covers the alert's area (in the
    transaction that raises the alert)."""
    from webhook.veille import present

    channels = (
        (await session.execute(select(VeilleChannel).where(VeilleChannel.active.is_(True))))
        .scalars()
        .all()
    )
    demo = await figures.is_demo_in(session)
    rows: list[OutboxMessage] = []
    for channel in channels:
        try:
            territory = territories.parse(channel.territory)
        except territories.TerritoryError:
            continue
        if not territory.covers(alert.area_kind, alert.area_code, alert.departement):
            continue
        document = present.alert_document(alert, config, demo=demo)
        rows.append(
            OutboxMessage(
                ticket_id=None,
                alert_id=alert.id,
                agency_id=channel.agency_id,
                kind=channel.kind,
                idempotency_key=f"veille:{alert.id}:{channel.id}",
                payload={
                    "veille_channel_id": channel.id,
                    "subject": present.alert_subject(alert, config, demo=demo),
                    "text": present.alert_email_text(alert, config, demo=demo),
                    "document": document,
                },
                status="pending",
                attempts=0,
                next_attempt_at=utcnow(),
            )
        )
    session.add_all(rows)
    return rows


# ------------------------------------------------------------------------------ observers' actions


async def acknowledge(
    sessions: Sessions, alert_id: int, actor: str, now: dt.datetime | None = None
) -> VeilleAlert:
    async with sessions() as session, session.begin():
        alert = await session.get(VeilleAlert, alert_id, with_for_update=True)
        if alert is None:
            raise AlertError("Alerte introuvable.")
        if alert.status != "open":
            raise AlertError("Cette alerte est déjà prise en compte ou close.")
        alert.status = "acknowledged"
        alert.acknowledged_at = now or utcnow()
        alert.acknowledged_by = actor[:100]
    logger.info("veille alert %s acknowledged by %s", alert_id, actor)
    return alert


async def close(
    sessions: Sessions, alert_id: int, actor: str, note: str, now: dt.datetime | None = None
) -> VeilleAlert:
    note = note.strip()
    if not note:
        raise AlertError("Indiquez en une phrase ce qui a été fait ou décidé.")
    async with sessions() as session, session.begin():
        alert = await session.get(VeilleAlert, alert_id, with_for_update=True)
        if alert is None:
            raise AlertError("Alerte introuvable.")
        if alert.status == "closed":
            raise AlertError("Cette alerte est déjà close.")
        moment = now or utcnow()
        if alert.acknowledged_at is None:
            alert.acknowledged_at = moment
            alert.acknowledged_by = actor[:100]
        alert.status = "closed"
        alert.closed_at = moment
        alert.closed_by = actor[:100]
        alert.note = note[:2000]
    logger.info("veille alert %s closed by %s", alert_id, actor)
    return alert
