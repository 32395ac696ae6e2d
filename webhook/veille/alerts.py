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

Evaluated when a report is filed (the worker reads ``veille_queue``), for the ticket's keys: the
keys of one area and type are observed together (:func:`observe_all`: an EPCI part is read
through ``tickets.epci_siren``, once for its keys and those of its communes), residents are
counted only when the decision depends on them; the worker also re-checks the waves going on
(``sweep``); ``recompute`` evaluates every key of a département in one pass over its tickets. A
new alert is delivered through the outbox to the e-mail and webhook channels of the territories
that cover its area.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import String, and_, cast, func, literal, not_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm.attributes import flag_modified

import routing
from webhook.agency import territory as territories
from webhook.store import tickets
from webhook.store.db import (
    OutboxMessage,
    Ticket,
    VeilleAlert,
    VeilleChannel,
    utcnow,
)
from webhook.store.text import storable
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
    """What the tickets say about a key at ``now``: the window's reports and residents, the
    baseline's reports. From :func:`observe_all`, residents are not counted yet
    (``residents_known``): :func:`count_residents` counts them when they can change the decision
    (the reports alone would raise an alert), else they stay 0."""

    key: AlertKey
    now: dt.datetime
    window_start: dt.datetime
    count: int = 0
    residents: int = 0
    baseline_count: int = 0
    baseline_weeks: float = 0.0
    # the window's reports as (commune, sub-kind, their residents), when read in one pass
    # (recompute)
    window: list[tuple[str, str, list[str]]] | None = None
    # the window's reports per (commune, sub-kind as stored): their number (evaluation per key
    # on PostgreSQL; on SQLite the reports a residual leaves are counted by a query)
    groups: list[tuple[str | None, str | None, int]] | None = None
    residents_known: bool = True


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
    observation: Observation,
    config: VeilleConfig,
    count: int | None = None,
    residents: int | None = None,
) -> Evaluation:
    """The alert decision for an observation (``count``/``residents``: the window's reports not
    already explained by a narrower wave, when they differ from the observation's)."""
    settings = config.alerts
    count = observation.count if count is None else count
    residents = observation.residents if residents is None else residents
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


def _resident() -> Any:
    """A report's resident, as SQL: its conversation; a report without one is its own."""
    return func.coalesce(Ticket.conversation_id, literal("t:") + cast(Ticket.id, String))


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


def _area_filter(key: AlertKey) -> Any:
    if key.area_kind == "commune":
        return Ticket.commune_insee == key.area_code
    if key.area_kind == "epci":
        # the part of the EPCI in the département (tickets.epci_siren, set at filing)
        return and_(Ticket.epci_siren == key.area_code, Ticket.departement == key.departement)
    return Ticket.departement == key.departement


def _filters(key: AlertKey, config: VeilleConfig) -> list[Any]:
    """The reports of a key (any date)."""
    return list(_key_filters(key))


@functools.lru_cache(maxsize=4096)
def _key_filters(key: AlertKey) -> tuple[Any, ...]:
    # SQL expressions are immutable: built once per key, reused by every statement
    filters = [
        _area_filter(key),
        Ticket.report_type == key.report_type,
        Ticket.status.not_in(NOT_COUNTED_STATUSES),
    ]
    if key.subtype:
        filters.append(Ticket.subtype == key.subtype)
    return tuple(filters)


async def _read(session: AsyncSession, statement: Any) -> Any:
    """Rows of a statement that reads tickets only, as plain rows (no ORM loading; nothing of
    the session needs flushing before it)."""
    return await (await session.connection()).execute(statement)


def _in_window(observation: Observation) -> list[Any]:
    return [Ticket.created_at > observation.window_start, Ticket.created_at <= observation.now]


# Residents are counted among this many reports of a window at most, the first ones (deciding
# needs two; above this, the stored figure is a floor): counting distinct residents is the
# costly part of an evaluation at a peak.
RESIDENTS_SCAN = 100


def _residents_among(filters: list[Any]) -> Any:
    """Distinct residents among at most RESIDENTS_SCAN reports matching ``filters`` — a report
    without a conversation is its own resident (a scalar subquery)."""
    resident = _resident()
    # the first reports of the window, read in the order of the area's index (without an order,
    # PostgreSQL may scan the table from its start to find them)
    sample = (
        select(resident.label("resident"))
        .where(*filters)
        .order_by(Ticket.created_at)
        .limit(RESIDENTS_SCAN)
        .subquery()
    )
    return select(func.count(func.distinct(sample.c.resident))).scalar_subquery()


async def _residents(session: AsyncSession, *filters: list[Any]) -> list[int]:
    """The residents of each list of ``filters``, in one statement."""
    if not filters:
        return []
    row = (await _read(session, select(*(_residents_among(f) for f in filters)))).one()
    return [int(value or 0) for value in row]


def _residents_decide(count: int, expected: float, config: VeilleConfig) -> bool:
    """Whether the number of residents can change the decision on ``count`` reports (and is
    kept): only when the reports alone would raise an alert. Otherwise it is not counted."""
    settings = config.alerts
    return count >= settings.min_reports and upper_tail(count, expected) < settings.p_value_max


def _expected(observation: Observation, config: VeilleConfig) -> float:
    return assess(observation, config, residents=0).expected


@dataclass(frozen=True)
class _Scope:
    """The tickets read at once for keys of one département and type: an EPCI part (its keys and
    those of its communes), a commune, or the département."""

    departement: str
    report_type: str
    area_kind: str
    area_code: str

    @classmethod
    def of(cls, key: AlertKey, geo: Geography) -> _Scope:
        if key.area_kind == "commune" and geo.epci_of.get(key.area_code):
            return cls(key.departement, key.report_type, "epci", str(geo.epci_of[key.area_code]))
        return cls(key.departement, key.report_type, key.area_kind, key.area_code)

    def filters(self) -> list[Any]:
        """The reports of the scope's area and type: those of its widest key."""
        return list(
            _key_filters(
                AlertKey(self.departement, self.area_kind, self.area_code, self.report_type)
            )
        )


def _narrowest(scope: _Scope, keys: Sequence[AlertKey]) -> _Scope:
    """An EPCI scope whose keys are all of one commune reads that commune only (a sweep)."""
    if scope.area_kind == "epci" and len({(k.area_kind, k.area_code) for k in keys}) == 1:
        key = keys[0]
        if key.area_kind == "commune":
            return _Scope(scope.departement, scope.report_type, "commune", key.area_code)
    return scope


def _in_key(key: AlertKey, commune: str | None, subtype: str | None) -> bool:
    """Whether a report of the key's scope (commune, sub-kind as stored) is one of the key's."""
    if key.area_kind == "commune" and commune != key.area_code:
        return False
    return not key.subtype or subtype == key.subtype


async def observe_all(
    session: AsyncSession,
    keys: Iterable[AlertKey],
    now: dt.datetime,
    config: VeilleConfig,
    history: History,
) -> list[Observation]:
    """Observations of keys (of any départements), in the order of ``keys``. On PostgreSQL, one
    aggregate query per scope (an EPCI part with its communes, a commune, the département) ×
    type gives every key's window and baseline counts per commune and sub-kind: at a peak the
    cost is reading the reports of the last hours from the table, once. On SQLite, one
    statement counts each key's window and baseline on covering indexes (stepping through an
    index is cheap there, grouping is not). Residents are left to :func:`count_residents` (only
    the keys whose decision depends on them need them)."""
    keys = list(dict.fromkeys(keys))
    if session.get_bind().dialect.name != "postgresql":
        return await _observe_counted(session, keys, now, config, history)
    scopes: dict[_Scope, list[AlertKey]] = {}
    for key in keys:
        geo = figures.geography(key.departement)
        scopes.setdefault(_Scope.of(key, geo), []).append(key)
    found: dict[AlertKey, Observation] = {}
    for scope, members in scopes.items():
        for observation in await _observe_scope(
            session, _narrowest(scope, members), members, now, config, history
        ):
            found[observation.key] = observation
    return [found[key] for key in keys]


# keys counted per statement on SQLite (two counting subqueries each)
COUNTED_PER_STATEMENT = 100


async def _observe_counted(
    session: AsyncSession,
    keys: Sequence[AlertKey],
    now: dt.datetime,
    config: VeilleConfig,
    history: History,
) -> list[Observation]:
    window_start = now - dt.timedelta(days=config.alerts.window_days)
    spans = {
        departement: _baseline_span(config, window_start, await history.start(session, departement))
        for departement in sorted({k.departement for k in keys})
    }
    observations = []
    for begin in range(0, len(keys), COUNTED_PER_STATEMENT):
        part = keys[begin : begin + COUNTED_PER_STATEMENT]
        columns = []
        for key in part:
            baseline_start = spans[key.departement][0]
            for period in (
                (Ticket.created_at > window_start, Ticket.created_at <= now),
                (Ticket.created_at >= baseline_start, Ticket.created_at <= window_start),
            ):
                columns.append(
                    select(func.count())
                    .select_from(Ticket)
                    .where(*_filters(key, config), *period)
                    .scalar_subquery()
                )
        row = (await _read(session, select(*columns))).one()
        for n, key in enumerate(part):
            observations.append(
                Observation(
                    key=key,
                    now=now,
                    window_start=window_start,
                    count=int(row[2 * n] or 0),
                    baseline_count=int(row[2 * n + 1] or 0),
                    baseline_weeks=spans[key.departement][1],
                    residents_known=False,
                )
            )
    return observations


async def _observe_scope(
    session: AsyncSession,
    scope: _Scope,
    keys: Sequence[AlertKey],
    now: dt.datetime,
    config: VeilleConfig,
    history: History,
) -> list[Observation]:
    window_start = now - dt.timedelta(days=config.alerts.window_days)
    baseline_start, baseline_weeks = _baseline_span(
        config, window_start, await history.start(session, scope.departement)
    )
    in_window = Ticket.created_at > window_start
    in_baseline = and_(Ticket.created_at >= baseline_start, Ticket.created_at <= window_start)
    rows = (
        await _read(
            session,
            select(
                Ticket.commune_insee,
                Ticket.subtype,
                func.count().filter(in_window),
                func.count().filter(in_baseline),
            )
            .where(
                *scope.filters(),
                Ticket.created_at >= min(baseline_start, window_start),
                Ticket.created_at <= now,
            )
            .group_by(Ticket.commune_insee, Ticket.subtype),
        )
    ).all()
    observations = []
    for key in keys:
        observation = Observation(
            key=key,
            now=now,
            window_start=window_start,
            baseline_weeks=baseline_weeks,
            groups=[],
            residents_known=False,
        )
        assert observation.groups is not None
        for commune, subtype, window, baseline in rows:
            if _in_key(key, commune, subtype):
                observation.count += int(window or 0)
                observation.baseline_count += int(baseline or 0)
                if window:
                    observation.groups.append((commune, subtype, int(window)))
        observations.append(observation)
    return observations


async def count_residents(
    session: AsyncSession, observations: Iterable[Observation], config: VeilleConfig
) -> None:
    """Count the residents of observations whose decision depends on them (one statement)."""
    observations = list(observations)
    wanted = [
        o
        for o in observations
        if not o.residents_known and _residents_decide(o.count, _expected(o, config), config)
    ]
    values = await _residents(
        session, *([*_filters(o.key, config), *_in_window(o)] for o in wanted)
    )
    for observation, value in zip(wanted, values, strict=True):
        observation.residents = value
    for observation in observations:
        observation.residents_known = True


async def observe(
    session: AsyncSession,
    key: AlertKey,
    now: dt.datetime,
    config: VeilleConfig,
    history: History,
) -> Observation:
    """An observation of one key, residents counted (see :func:`observe_all`)."""
    observation = (await observe_all(session, [key], now, config, history))[0]
    await count_residents(session, [observation], config)
    return observation


# ------------------------------------------------------------------------------ waves


@dataclass
class Outcome:
    created: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    ended: list[int] = field(default_factory=list)
    # keys of waves going on that filed reports joined, their figures left for a refresh
    deferred: list[AlertKey] = field(default_factory=list)

    def merge(self, other: Outcome) -> None:
        self.created += other.created
        self.updated += other.updated
        self.ended += other.ended
        self.deferred += other.deferred


async def _ongoing(
    session: AsyncSession, departement: str, keys: Iterable[AlertKey] | None = None
) -> dict[AlertKey, VeilleAlert]:
    """The waves going on in a département (those of ``keys`` only, when given)."""
    wanted = None if keys is None else set(keys)
    query = select(VeilleAlert).where(*_ongoing_filters(departement, wanted))
    found = {AlertKey.of(a): a for a in (await session.execute(query)).scalars()}
    return found if wanted is None else {k: a for k, a in found.items() if k in wanted}


def _ongoing_filters(departement: str, keys: set[AlertKey] | None) -> list[Any]:
    """The waves going on in a département, narrowed to the types and areas of ``keys`` (the
    caller keeps those of ``keys`` exactly)."""
    filters = [VeilleAlert.departement == departement, VeilleAlert.ended_at.is_(None)]
    if keys is not None:
        filters += [
            VeilleAlert.report_type.in_(sorted({k.report_type for k in keys})),
            VeilleAlert.area_code.in_(sorted({k.area_code for k in keys})),
        ]
    return filters


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
    # every figure written, changed or not: the UPDATEs of an evaluation have one shape, sent
    # as one batch (and compiled once)
    for name in _FIGURES:
        flag_modified(alert, name)


_FIGURES = (
    "window_start",
    "window_end",
    "count",
    "residents",
    "baseline_count",
    "baseline_weeks",
    "expected",
    "p_value",
    "floor_used",
    "peak_count",
    "updated_at",
)


def alert_reports(
    alert: VeilleAlert, config: VeilleConfig, until: dt.datetime | None = None
) -> list[Any]:
    """The reports that make an alert up: those of its key from the start of its wave to its
    last evaluation, or to ``until`` (SQL conditions on ``tickets``)."""
    return [
        *_filters(AlertKey.of(alert), config),
        Ticket.created_at >= alert.wave_start,
        Ticket.created_at <= (until or alert.window_end),
    ]


class _Waves:
    """The waves going on that a settlement needs."""

    def __init__(
        self, session: AsyncSession, departement: str, geo: Geography, everything: bool
    ) -> None:
        self.session = session
        self.departement = departement
        self.geo = geo
        self.everything = everything
        self.current: dict[AlertKey, VeilleAlert] = {}
        # (report type, area kind, area code) → keys going on there
        self._by_area: dict[tuple[str, str, str], set[AlertKey]] = {}
        # (report type, area code) whose waves were read (kept up to date by add and remove)
        self._read: set[tuple[str, str]] = set()

    async def load(self, keys: Iterable[AlertKey]) -> None:
        for key, alert in (
            await _ongoing(self.session, self.departement, None if self.everything else keys)
        ).items():
            self.add(key, alert)

    def add(self, key: AlertKey, alert: VeilleAlert) -> None:
        self.current[key] = alert
        self._by_area.setdefault((key.report_type, key.area_kind, key.area_code), set()).add(key)

    def remove(self, key: AlertKey) -> None:
        del self.current[key]
        self._by_area.get((key.report_type, key.area_kind, key.area_code), set()).discard(key)

    def _areas(self, key: AlertKey) -> list[tuple[str, str]]:
        """The areas of the keys that can be narrower than ``key``."""
        if key.area_kind == "commune":
            return [("commune", key.area_code)]
        if key.area_kind == "epci":
            return [("epci", key.area_code)] + [
                ("commune", c) for c in self.geo.epcis.get(key.area_code, ())
            ]
        return []

    async def narrower(self, key: AlertKey) -> list[AlertKey]:
        areas = self._areas(key)
        unread = sorted(
            {code for _, code in areas} - {c for t, c in self._read if t == key.report_type}
        )
        if not self.everything and unread:
            # keys only, read as table rows (no alert objects, no ORM loading: an EPCI at a
            # peak has hundreds of waves below it)
            table = VeilleAlert.__table__.c
            await self.session.flush()  # the waves ended or raised so far (as an ORM query would)
            query = select(
                table.area_kind, table.area_code, table.report_type, table.subtype
            ).where(
                table.departement == self.departement,
                table.ended_at.is_(None),
                table.report_type == key.report_type,
                table.area_code.in_(unread),
            )
            for kind, code, report_type, subtype in (await self.session.execute(query)).all():
                other = AlertKey(self.departement, kind, code, report_type, subtype)
                self._by_area.setdefault((report_type, kind, code), set()).add(other)
            self._read.update((key.report_type, code) for code in unread)
        found: list[AlertKey] = []
        for kind, code in areas:
            for other in self._by_area.get((key.report_type, kind, code), ()):
                if other.within(key, self.geo):
                    found.append(other)
        return found


@dataclass(frozen=True)
class _Explained:
    """What the narrower waves going on explain: whole communes, whole sub-kinds (an EPCI's
    sub-kind wave), or a sub-kind in a commune."""

    communes: frozenset[str]
    subtypes: frozenset[str]
    pairs: frozenset[tuple[str, str]]

    @classmethod
    def of(cls, keys: Iterable[AlertKey]) -> _Explained:
        communes, subtypes, pairs = set(), set(), set()
        for key in keys:
            if key.area_kind == "commune":
                if key.subtype:
                    pairs.add((key.area_code, key.subtype))
                else:
                    communes.add(key.area_code)
            elif key.subtype:
                subtypes.add(key.subtype)
        return cls(frozenset(communes), frozenset(subtypes), frozenset(pairs))

    def covers(self, commune: str, subtype: str) -> bool:
        return (
            commune in self.communes or subtype in self.subtypes or (commune, subtype) in self.pairs
        )

    def condition(self) -> Any:
        """The reports explained, as SQL (never NULL: a report without a sub-kind is explained
        by its commune only, as in ``covers``). A (commune, sub-kind) pair is looked up as one
        string: a hashed list, not one comparison per pair and report."""
        terms: list[Any] = []
        stored = func.coalesce(Ticket.subtype, literal(""))
        if self.communes:
            terms.append(Ticket.commune_insee.in_(sorted(self.communes)))
        if self.subtypes:
            terms.append(stored.in_(sorted(self.subtypes)))
        if self.pairs:
            terms.append(
                (Ticket.commune_insee + literal(":") + stored).in_(
                    sorted(f"{c}:{s}" for c, s in self.pairs)
                )
            )
        return or_(*terms) if terms else None


async def _residual(
    session: AsyncSession,
    observation: Observation,
    explained: _Explained,
    config: VeilleConfig,
) -> tuple[int, int]:
    """(reports, residents) of the window that the narrower waves do not explain (residents
    counted only when they can change the decision)."""
    if observation.window is not None:
        left = [r for c, s, rs in observation.window if not explained.covers(c, s) for r in rs]
        return len(left), len(set(left))

    def filters() -> list[Any]:
        found = [*_filters(observation.key, config), *_in_window(observation)]
        condition = explained.condition()
        return found if condition is None else [*found, not_(condition)]

    if observation.groups is not None:
        count = sum(
            n for c, s, n in observation.groups if not explained.covers(str(c), s or NO_SUBTYPE)
        )
    else:
        count = int(
            await session.scalar(select(func.count()).select_from(Ticket).where(*filters())) or 0
        )
    if not _residents_decide(count, _expected(observation, config), config):
        return count, 0
    return count, (await _residents(session, filters()))[0]


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
    waves = _Waves(session, departement, geo, everything=len(observations) > 20)
    await waves.load(o.key for o in observations)
    deliveries = _Deliveries(session, config) if deliver else None
    # the residents of the waves going on, in one statement (a new wave's are counted last)
    await count_residents(session, (o for o in observations if o.key in waves.current), config)
    created: list[VeilleAlert] = []
    for observation in sorted(observations, key=lambda o: (o.key.precision, o.key)):
        key = observation.key
        alert = waves.current.get(key)
        if alert is not None:
            full = assess(observation, config)
            if full.raises:
                _set_figures(alert, observation, full, now)
                outcome.updated.append(alert.id)
            elif full.ends:
                alert.ended_at = now
                alert.updated_at = now
                waves.remove(key)
                outcome.ended.append(alert.id)
            continue
        # a new wave: its reports, then those the narrower waves do not explain, then its
        # residents (the decision needs all three; residents, the costly part, come last)
        if not _residents_decide(observation.count, _expected(observation, config), config):
            continue
        narrower = await waves.narrower(key)
        if narrower:
            # raised only if the reports that the narrower waves do not explain are a wave too
            count, residents = await _residual(
                session, observation, _Explained.of(narrower), config
            )
            if not assess(observation, config, count, residents).raises:
                continue
        await count_residents(session, [observation], config)
        full = assess(observation, config)
        if not full.raises:
            continue
        alert = VeilleAlert(
            departement=key.departement,
            area_kind=key.area_kind,
            area_code=key.area_code,
            report_type=key.report_type,
            subtype=key.subtype,
            status="open",
            raised_at=now,
            wave_start=observation.window_start,
            peak_count=0,
        )
        _set_figures(alert, observation, full, now)
        session.add(alert)
        waves.add(key, alert)
        created.append(alert)
    # one flush for every new alert (ids), then their deliveries
    await session.flush()
    for alert in created:
        outcome.created.append(alert.id)
        if deliveries is not None:
            await deliveries.enqueue(alert)
        logger.info(
            "veille alert %s raised: %s %s %s %s",
            alert.id,
            alert.area_kind,
            alert.area_code,
            alert.report_type,
            alert.subtype or "-",
        )
    return outcome


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
    *,
    defer_ongoing: bool = False,
) -> None:
    """Evaluate the keys of filed tickets in the caller's transaction. With ``defer_ongoing``
    (the worker, when ``refresh_seconds`` is set), a key whose wave is going on is not recounted:
    a report more cannot end a wave, so only its figures wait; the key goes to
    ``outcome.deferred`` for the worker's next refresh (:func:`refresh`)."""
    if not ticket_ids:
        return
    questions = sorted(set(config.subtype_questions.values()))
    rows = (
        await session.execute(
            select(
                Ticket.id,
                Ticket.commune_insee,
                Ticket.report_type,
                Ticket.subtype,
                Ticket.epci_siren,
                *(Ticket.fields[q].as_string() for q in questions),
            ).where(Ticket.id.in_(list(ticket_ids)), Ticket.commune_insee.is_not(None))
        )
    ).all()
    engine = routing.get_engine()
    by_departement: dict[str, list[list[AlertKey]]] = {}
    for row in rows:
        ticket_id, insee, report_type, subtype, epci = row[0], row[1], row[2], row[3], row[4]
        missing: dict[str, Any] = {}
        if subtype is None and report_type in config.subtype_questions:
            # filed without the sub-kind (a process that did not load the veille): fill it in
            answers = {q: row[5 + n] for n, q in enumerate(questions) if row[5 + n] is not None}
            subtype = config.ticket_subtype(report_type, answers)
            if subtype is not None:
                missing["subtype"] = subtype
        if epci is None and tickets.epci_of(insee) is not None:
            # filed without its EPCI (a process older than migration 0006): fill it in
            missing["epci_siren"] = tickets.epci_of(insee)
            if "subtype" not in missing:
                missing["updated_at"] = Ticket.updated_at  # a fact kept, not a change
        if missing:
            await session.execute(update(Ticket).where(Ticket.id == ticket_id).values(**missing))
        commune = engine.commune(insee)
        if commune is None:
            continue
        geo = figures.geography(commune.departement)
        if commune.insee not in geo.epci_of:
            continue
        ticket_keys = keys_for(geo, config, commune.insee, report_type, subtype)
        if ticket_keys:
            by_departement.setdefault(geo.departement, []).append(ticket_keys)
    for departement, per_ticket in by_departement.items():
        keys = {key for ticket_keys in per_ticket for key in ticket_keys}
        if defer_ongoing and config.alerts.refresh_seconds > 0:
            keys = await _to_evaluate(session, departement, per_ticket, outcome)
            if not keys:
                continue
        observations = await observe_all(session, sorted(keys), now, config, history)
        outcome.merge(await settle(session, observations, now, config))


async def _to_evaluate(
    session: AsyncSession,
    departement: str,
    per_ticket: list[list[AlertKey]],
    outcome: Outcome,
) -> set[AlertKey]:
    """The keys that filed reports (their keys, one list per report) can change the decision
    of, the others left for the worker's refresh (``outcome.deferred``):

    - a key whose wave is going on: a report more cannot end it, only its figures wait;
    - a key with a wave going on under it that explains the report (the report's narrower key):
      the reports it could raise on are those no narrower wave explains (:func:`settle`), and
      this report adds none, so its decision stays the last one."""
    geo = figures.geography(departement)
    ongoing = await _ongoing_keys(session, departement, {k for ks in per_ticket for k in ks})
    deferred: set[AlertKey] = set()
    wanted: set[AlertKey] = set()
    for ticket_keys in per_ticket:
        for key in ticket_keys:
            if key in ongoing:
                deferred.add(key)
            elif not any(other in ongoing and other.within(key, geo) for other in ticket_keys):
                wanted.add(key)
    outcome.deferred += sorted(deferred)
    return wanted


async def _ongoing_keys(
    session: AsyncSession, departement: str, keys: Iterable[AlertKey]
) -> set[AlertKey]:
    """Those of ``keys`` whose wave is going on (key columns only: one indexed statement)."""
    wanted = set(keys)
    query = select(
        VeilleAlert.area_kind, VeilleAlert.area_code, VeilleAlert.report_type, VeilleAlert.subtype
    ).where(*_ongoing_filters(departement, wanted))
    found = {AlertKey(departement, *row) for row in (await _read(session, query)).all()}
    return found & wanted


# Above this many waves going on in a département, a sweep reads its tickets in one pass
# (recompute) rather than a query per area and type.
SWEEP_IN_ONE_PASS = 50


async def sweep(
    sessions: Sessions,
    now: dt.datetime,
    config: VeilleConfig,
    history: History | None = None,
) -> Outcome:
    """Re-check every wave going on at ``now`` (ends the waves that are over)."""
    async with sessions() as session:
        rows = (
            await session.execute(
                select(
                    VeilleAlert.departement,
                    VeilleAlert.area_kind,
                    VeilleAlert.area_code,
                    VeilleAlert.report_type,
                    VeilleAlert.subtype,
                ).where(VeilleAlert.ended_at.is_(None))
            )
        ).all()
    return await refresh(sessions, [AlertKey(*row) for row in rows], now, config, history)


async def refresh(
    sessions: Sessions,
    keys: Iterable[AlertKey],
    now: dt.datetime,
    config: VeilleConfig,
    history: History | None = None,
) -> Outcome:
    """Evaluate ``keys`` at ``now`` (the waves the worker left waiting, or every wave going
    on): a département with many of them is recomputed in one pass over its tickets."""
    history = history or History()
    outcome = Outcome()
    by_departement: dict[str, list[AlertKey]] = {}
    for key in sorted(set(keys)):
        by_departement.setdefault(key.departement, []).append(key)
    for departement, group in sorted(by_departement.items()):
        if len(group) > SWEEP_IN_ONE_PASS:
            outcome.merge(await recompute(sessions, departement, now, config))
            continue
        async with sessions() as session, session.begin():
            observations = await observe_all(session, group, now, config, history)
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
    window and baseline (same decisions as the per-report evaluation): the baseline is counted
    by the database per commune, type and sub-kind; the window's reports are read once and
    grouped the same way, each group then added to the keys it belongs to."""
    geo = figures.geography(departement)
    window_start = now - dt.timedelta(days=config.alerts.window_days)
    history = History()
    outcome = Outcome()
    async with sessions() as session, session.begin():
        opened = await history.start(session, departement)
        baseline_start, baseline_weeks = _baseline_span(config, window_start, opened)
        counted = (
            Ticket.departement == departement,
            Ticket.commune_insee.is_not(None),
            Ticket.status.not_in(NOT_COUNTED_STATUSES),
        )
        group = (Ticket.commune_insee, Ticket.report_type, Ticket.subtype)
        baseline = await _read(
            session,
            select(*group, func.count())
            .where(
                *counted,
                Ticket.created_at >= baseline_start,
                Ticket.created_at <= window_start,
            )
            .group_by(*group),
        )
        # per (commune, type, sub-kind as stored): the baseline's reports, the window's residents
        before: dict[tuple[str, str, str | None], int] = {
            (str(commune), report_type, stored): int(count)
            for commune, report_type, stored, count in baseline.all()
        }
        residents_of: dict[tuple[str, str, str | None], list[str]] = {}
        window = (
            select(*group, _resident())
            .where(*counted, Ticket.created_at > window_start, Ticket.created_at <= now)
            .execution_options(yield_per=10000)
        )
        result = await session.stream(window)
        async for partition in result.partitions():
            for commune, report_type, stored, person in partition:
                residents_of.setdefault((str(commune), report_type, stored), []).append(person)
        observations: dict[AlertKey, Observation] = {}
        people: dict[AlertKey, set[str]] = {}
        engine = routing.get_engine()
        for group_key in before.keys() | residents_of.keys():
            code, report_type, stored = group_key
            residents = residents_of.get(group_key, [])
            commune = engine.commune(code)
            if commune is None or commune.insee not in geo.epci_of:
                continue
            subtype = config.subtype_of(report_type, stored)
            for key in keys_for(geo, config, commune.insee, report_type, stored):
                observation = observations.get(key)
                if observation is None:
                    observation = observations[key] = Observation(
                        key=key,
                        now=now,
                        window_start=window_start,
                        baseline_weeks=baseline_weeks,
                        window=[],
                    )
                    people[key] = set()
                observation.baseline_count += before.get(group_key, 0)
                if residents:
                    observation.count += len(residents)
                    people[key].update(residents)
                    assert observation.window is not None
                    observation.window.append((commune.insee, subtype, residents))
        for key, observation in observations.items():
            observation.residents = len(people[key])
        # waves going on under keys without any report now end
        ongoing = set(await _ongoing(session, departement))
        for key in ongoing - observations.keys():
            observations[key] = Observation(
                key=key,
                now=now,
                window_start=window_start,
                baseline_weeks=baseline_weeks,
                window=[],
            )
        interesting = [
            o
            for o in observations.values()
            if o.count >= config.alerts.min_reports or o.key in ongoing
        ]
        outcome.merge(await settle(session, interesting, now, config, deliver=deliver))
    return outcome


# ------------------------------------------------------------------------------ deliveries


class _Deliveries:
    """Outbox rows of new alerts: one per active channel whose territory covers the alert's
    area, written in the transaction that raises the alert (channels read once)."""

    def __init__(self, session: AsyncSession, config: VeilleConfig) -> None:
        self.session = session
        self.config = config
        self._channels: list[tuple[VeilleChannel, territories.Territory]] | None = None
        self._demo = False

    async def enqueue(self, alert: VeilleAlert) -> list[OutboxMessage]:
        from webhook.veille import present

        if self._channels is None:
            self._demo = await figures.is_demo_in(self.session)
            self._channels = []
            for channel in (
                await self.session.execute(
                    select(VeilleChannel).where(VeilleChannel.active.is_(True))
                )
            ).scalars():
                try:
                    self._channels.append((channel, territories.parse(channel.territory)))
                except territories.TerritoryError:
                    continue
        rows: list[OutboxMessage] = []
        for channel, territory in self._channels:
            if not territory.covers(alert.area_kind, alert.area_code, alert.departement):
                continue
            rows.append(
                OutboxMessage(
                    ticket_id=None,
                    alert_id=alert.id,
                    agency_id=channel.agency_id,
                    kind=channel.kind,
                    idempotency_key=f"veille:{alert.id}:{channel.id}",
                    payload={
                        "veille_channel_id": channel.id,
                        "subject": present.alert_subject(alert, self.config, demo=self._demo),
                        "text": present.alert_email_text(alert, self.config, demo=self._demo),
                        "document": present.alert_document(alert, self.config, demo=self._demo),
                    },
                    status="pending",
                    attempts=0,
                    next_attempt_at=utcnow(),
                )
            )
        self.session.add_all(rows)
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
    note = storable(note).strip()
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
