"""Figures of the cellule de veille: counts per complete week × area (commune, EPCI, département)
× category (report type, sub-kind), protected as a whole per département and week
(:mod:`webhook.veille.disclosure`), then cut to an observer's territory.

- Every output (pages, charts, CSV, API) reads the same protected week tables, so two outputs
  never hide different cells of one week, whatever the territory or the period asked.
- An EPCI is the part of the EPCI inside the département (see :mod:`webhook.agency.territory`);
  the département's figure is the sum of its EPCIs (and of its communes outside any EPCI), an
  EPCI's the sum of its communes, a type's the sum of its sub-kinds (with "non précisé").
- Types of ``departement_only_types`` (children, domestic violence, vulnerable adults) have only
  a département figure: no commune or EPCI cell exists for them.
- What is read of a ticket: date, commune, type, status and the sub-kind answer — never its text.
  Reports an agency marked as duplicates are not counted.
"""

from __future__ import annotations

import datetime as dt
import functools
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import routing
from webhook.agency import territory as territories
from webhook.agency.territory import Territory
from webhook.store.db import StoreMeta, Ticket
from webhook.veille.config import Category, VeilleConfig
from webhook.veille.disclosure import Key, Protection, Relation, protect
from webhook.veille.weeks import Week

Sessions = async_sessionmaker[AsyncSession]
AREA_KINDS: tuple[str, ...] = ("commune", "epci", "departement")
NOT_COUNTED_STATUSES: tuple[str, ...] = ("rejected_duplicate",)


# ------------------------------------------------------------------------------ geography


@dataclass(frozen=True)
class Geography:
    """The communes of a département and the parts of EPCIs they make."""

    departement: str
    # commune INSEE → EPCI SIREN (None: no EPCI)
    epci_of: dict[str, str | None]
    # EPCI SIREN → its communes in the département
    epcis: dict[str, tuple[str, ...]]

    def parent(self, kind: str, code: str) -> tuple[str, str] | None:
        """The area one level up (commune → EPCI or département, EPCI → département)."""
        if kind == "commune":
            epci = self.epci_of.get(code)
            return ("epci", epci) if epci else ("departement", self.departement)
        if kind == "epci":
            return ("departement", self.departement)
        return None

    def name(self, kind: str, code: str) -> str:
        return territories.area_label(kind, code, self.departement)


@functools.cache
def geography(departement: str) -> Geography:
    communes = territories.departement_communes(departement)
    epcis: dict[str, list[str]] = {}
    for commune in communes:
        if commune.epci_siren:
            epcis.setdefault(commune.epci_siren, []).append(commune.insee)
    return Geography(
        departement=departement,
        epci_of={c.insee: c.epci_siren for c in communes},
        epcis={k: tuple(v) for k, v in sorted(epcis.items())},
    )


# ------------------------------------------------------------------------------ cells


def ticket_cells(
    geo: Geography, config: VeilleConfig, commune: str, report_type: str, subtype: str | None
) -> list[Key]:
    """The cells a ticket counts in. Sub-kinds are counted from the EPCI up (a commune outside
    any EPCI counts its own): per commune they would almost always be below 11, hidden, and
    their complements would hide the useful figures around them."""
    if report_type in config.departement_only_types:
        areas = [("departement", geo.departement)]
    else:
        areas = [("commune", commune)]
        parent = geo.parent("commune", commune)
        while parent is not None:
            areas.append(parent)
            parent = geo.parent(*parent)
    cells: list[Key] = [(kind, code, report_type) for kind, code in areas]
    if report_type in config.subtype_questions:
        category = f"{report_type}:{config.subtype_of(report_type, subtype)}"
        detailed = areas if len(areas) < 3 else areas[1:]
        cells += [(kind, code, category) for kind, code in detailed]
    return cells


def subtype_levels(geo: Geography, kind: str, code: str) -> bool:
    """Whether sub-kinds are counted for an area (EPCIs, the département, communes outside
    any EPCI)."""
    return kind != "commune" or not geo.epci_of.get(code)


def relations(geo: Geography, keys: Iterable[Key]) -> list[Relation]:
    """The additive relations between the non-zero cells ``keys``: an area's total is the sum
    of the areas below it, a type's total the sum of its sub-kinds — two relations for a cell
    that is both. A relation over communes lists its zero communes too (a commune's cell is in
    no other relation): the last resort of the secondary suppression."""
    parts: dict[tuple[str, Key], set[Key]] = {}
    for key in keys:
        kind, code, category = key
        report_type, _, subtype = category.partition(":")
        if subtype:
            parts.setdefault(("category", (kind, code, report_type)), set()).add(key)
        parent = geo.parent(kind, code)
        if parent is not None and kind != "departement":
            parts.setdefault(("area", (*parent, category)), set()).add(key)
    out = []
    for (dimension, total), members in sorted(parts.items()):
        zeros: tuple[Key, ...] = ()
        if dimension == "area":
            kind, code, category = total
            communes = (
                geo.epcis.get(code, ())
                if kind == "epci"
                else tuple(c for c, epci in geo.epci_of.items() if not epci)
            )
            if ":" not in category or kind == "departement":
                zeros = tuple(
                    cell
                    for commune in communes
                    if (cell := ("commune", commune, category)) not in members
                )
        out.append(Relation(total, tuple(sorted(members)), zeros))
    return out


@dataclass
class WeekTable:
    """One département's protected figures for one complete week."""

    week: Week
    departement: str
    protection: Protection

    def shown(self, kind: str, code: str, category: str) -> int | str:
        return self.protection.shown((kind, code, category))

    def listed(self, kind: str, code: str, category: str) -> bool:
        """Whether a cell is listed (a row of a CSV, a line of a table): not zero, or hidden —
        a hidden zero must look like the small counts beside it."""
        key = (kind, code, category)
        return bool(self.protection.values.get(key, 0)) or self.protection.is_hidden(key)

    def value_is_public(self, kind: str, code: str, category: str) -> bool:
        return not self.protection.is_hidden((kind, code, category))

    def nonzero(self) -> Iterable[Key]:
        return (k for k, v in self.protection.values.items() if v)


def protect_week(
    geo: Geography, week: Week, counts: Counter[Key], config: VeilleConfig
) -> WeekTable:
    values = {k: v for k, v in counts.items() if v}
    protection = protect(values, relations(geo, values), max_small=config.small_count_max)
    return WeekTable(week=week, departement=geo.departement, protection=protection)


# ------------------------------------------------------------------------------ reading


async def read_counts(
    sessions: Sessions,
    departement: str,
    weeks: Sequence[Week],
    config: VeilleConfig,
) -> dict[Week, Counter[Key]]:
    """Counts of every cell of ``weeks``: per week, one query grouped by commune, type and
    sub-kind (the database does the counting; Python spreads the groups over the areas)."""
    out: dict[Week, Counter[Key]] = {w: Counter() for w in weeks}
    geo = geography(departement)
    engine = routing.get_engine()
    columns: list[Any] = [Ticket.commune_insee, Ticket.report_type, Ticket.subtype]
    async with sessions() as session:
        for week in weeks:
            query = (
                select(*columns, func.count())
                .where(
                    Ticket.departement == departement,
                    Ticket.created_at >= week.start,
                    Ticket.created_at < week.end,
                    Ticket.commune_insee.is_not(None),
                    Ticket.status.not_in(NOT_COUNTED_STATUSES),
                )
                .group_by(*columns)
            )
            counter = out[week]
            for row in (await session.execute(query)).all():
                commune = engine.commune(row[0])
                if commune is None or commune.insee not in geo.epci_of:
                    continue
                for key in ticket_cells(geo, config, commune.insee, row[1], row[2]):
                    counter[key] += int(row[-1])
    return out


class FiguresCache:
    """Protected week tables, computed once and kept ``ttl`` seconds (complete weeks do not
    change, except when an agency marks a report as a duplicate)."""

    def __init__(self, config: VeilleConfig, ttl: float = 300.0, max_items: int = 2000) -> None:
        self.config = config
        self.ttl = ttl
        self.max_items = max_items
        self._items: dict[tuple[str, Week], tuple[float, WeekTable]] = {}

    async def weeks(
        self, sessions: Sessions, departement: str, weeks: Sequence[Week]
    ) -> list[WeekTable]:
        now = time.monotonic()
        missing = [
            w
            for w in weeks
            if (item := self._items.get((departement, w))) is None or now - item[0] > self.ttl
        ]
        if missing:
            counts = await read_counts(sessions, departement, missing, self.config)
            geo = geography(departement)
            if len(self._items) + len(missing) > self.max_items:
                self._items.clear()
            for week in missing:
                table = protect_week(geo, week, counts[week], self.config)
                self._items[(departement, week)] = (now, table)
        return [self._items[(departement, w)][1] for w in weeks]

    def clear(self) -> None:
        self._items.clear()


# ------------------------------------------------------------------------------ territory views


def own_area(territory: Territory) -> tuple[str, str]:
    return territory.kind, territory.code


def areas(territory: Territory, kind: str) -> list[str]:
    """Codes of the areas of ``kind`` inside the territory."""
    geo = geography(territory.departement)
    if kind == "departement":
        return [territory.departement] if territory.kind == "departement" else []
    if kind == "epci":
        if territory.kind == "departement":
            return list(geo.epcis)
        return [territory.code] if territory.kind == "epci" else []
    return sorted(territory.communes())


def categories(territory: Territory, config: VeilleConfig, kind: str) -> list[Category]:
    """What an observer of ``territory`` may see for areas of ``kind``."""
    local = kind != "departement"
    return [
        c
        for c in config.categories()
        if not (local and c.report_type in config.departement_only_types)
        and not (territory.kind != "departement" and c.report_type in config.departement_only_types)
    ]


async def is_demo(sessions: Sessions) -> bool:
    """Whether the database was filled by ``tranquillite veille-demo``."""
    async with sessions() as session:
        return await is_demo_in(session)


async def is_demo_in(session: AsyncSession) -> bool:
    row = await session.get(StoreMeta, "demo")
    return row is not None and row.value == "1"


def format_count(value: int | str) -> str:
    """French display of a shown value: thousands with a narrow space."""
    if isinstance(value, int):
        return f"{value:,}".replace(",", "\u202f")
    return value


def utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
