"""Synthetic reports for ``tranquillite veille-demo`` and ``tranquillite bench-veille``: a
plausible mix of report types and sub-kinds, spread over the communes of a département by
population, with seasons (holiday declarations in summer, scams before the end of the year) and
hours of the day; planted waves. Nothing here is a real report: descriptions say so, and no
personal data is made up."""

from __future__ import annotations

import bisect
import datetime as dt
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import reports
import routing
from reports.clock import PARIS
from webhook.agency import territory as territories
from webhook.store.db import ReferenceCounter, Ticket, TicketDestination
from webhook.store.tickets import epci_of, format_reference
from webhook.veille.config import VeilleConfig

Sessions = async_sessionmaker[AsyncSession]
DESCRIPTION = "Signalement de démonstration, fictif."

# Share of each report type (rough orders of magnitude of a département's reports).
TYPE_MIX: dict[str, float] = {
    "incivilite": 0.28,
    "arnaque": 0.22,
    "vol_cambriolage": 0.15,
    "absence_vacances": 0.12,
    "harcelement": 0.06,
    "drogue_trafic": 0.04,
    "violences_conjugales": 0.04,
    "personne_vulnerable": 0.03,
    "enfant_en_danger": 0.02,
    "autre": 0.04,
}
# Seasons: a multiplier per month (January = index 0).
SEASONS: dict[str, tuple[float, ...]] = {
    "absence_vacances": (0.4, 0.6, 0.5, 0.8, 0.8, 1.2, 3.0, 3.2, 0.7, 0.6, 0.5, 1.4),
    "arnaque": (1.1, 0.9, 0.9, 0.9, 0.9, 0.8, 0.8, 0.8, 1.0, 1.1, 1.3, 1.4),
    "incivilite": (0.7, 0.7, 0.9, 1.0, 1.1, 1.3, 1.4, 1.3, 1.0, 0.9, 0.8, 0.8),
}


@dataclass(frozen=True)
class Wave:
    """Reports of one kind converging on one commune (or on a few communes of an EPCI)."""

    communes: tuple[str, ...]
    report_type: str
    subtype: str
    start: dt.datetime
    days: float
    count: int


class Generator:
    def __init__(self, departement: str, config: VeilleConfig, seed: int) -> None:
        self.departement = departement
        self.config = config
        self.rnd = random.Random(f"{seed}-{departement}")  # noqa: S311 - synthetic data
        communes = territories.departement_communes(departement)
        if not communes:
            raise ValueError(f"no commune in département {departement!r}")
        self.communes = [c.insee for c in communes]
        weights = [max(50, c.population or 50) for c in communes]
        self._cumulative = [sum(weights[: i + 1]) for i in range(len(weights))]
        self._types = list(TYPE_MIX)
        self._type_cumulative = [
            sum(list(TYPE_MIX.values())[: i + 1]) for i in range(len(TYPE_MIX))
        ]
        self._resident = 0

    def commune(self) -> str:
        point = self.rnd.random() * self._cumulative[-1]
        return self.communes[bisect.bisect_left(self._cumulative, point)]

    def report_type(self, month: int) -> str:
        while True:
            point = self.rnd.random() * self._type_cumulative[-1]
            report_type = self._types[bisect.bisect_left(self._type_cumulative, point)]
            season = SEASONS.get(report_type)
            if season is None or self.rnd.random() < season[month - 1] / max(season):
                return report_type

    def subtype(self, report_type: str) -> str | None:
        question = self.config.subtype_questions.get(report_type)
        if question is None:
            return None
        choices = [c.id for c in reports.model().questions[question].choices]
        if self.rnd.random() < 0.05:
            return None  # not answered (e.g. filed through Open311 without it)
        return self.rnd.choice(choices)

    def moment(self, start: dt.datetime, end: dt.datetime) -> dt.datetime:
        """A time in [start, end), mostly by day (Paris)."""
        span = (end - start).total_seconds()
        for _ in range(20):
            moment = start + dt.timedelta(seconds=self.rnd.random() * span)
            hour = moment.astimezone(PARIS).hour
            if 7 <= hour <= 22 or self.rnd.random() < 0.25:
                return moment
        return moment

    def resident(self) -> str:
        self._resident += 1
        return f"demo-{self.departement}-{self._resident}"

    def row(
        self,
        moment: dt.datetime,
        commune: str | None = None,
        report_type: str | None = None,
        subtype: str | None = None,
    ) -> dict[str, Any]:
        report_type = report_type or self.report_type(moment.astimezone(PARIS).month)
        fields = {"description": DESCRIPTION}
        answer = subtype if subtype is not None else self.subtype(report_type)
        if answer:
            fields[self.config.subtype_questions[report_type]] = answer
        commune = commune or self.commune()
        return {
            "report_type": report_type,
            "departement": self.departement,
            "commune_insee": commune,
            "epci_siren": epci_of(commune),
            "fields": fields,
            "subtype": self.config.ticket_subtype(report_type, fields),
            "created_at": moment,
            "conversation_id": self.resident(),
            "channel": self.rnd.choice(("web", "web", "telegram", "open311")),
        }

    def background(
        self, start: dt.datetime, end: dt.datetime, count: int
    ) -> Iterator[dict[str, Any]]:
        for _ in range(count):
            yield self.row(self.moment(start, end))

    def wave(self, wave: Wave) -> Iterator[dict[str, Any]]:
        end = wave.start + dt.timedelta(days=wave.days)
        for n in range(wave.count):
            yield self.row(
                self.moment(wave.start, end),
                commune=wave.communes[n % len(wave.communes)],
                report_type=wave.report_type,
                subtype=wave.subtype,
            )


async def insert_rows(
    sessions: Sessions,
    rows: Sequence[dict[str, Any]],
    *,
    destinations: bool = True,
    status_of: Any = None,
    chunk: int = 2000,
) -> int:
    """Insert synthetic tickets (references numbered per département and year, counters kept
    in step so that a later report gets the next number), with their routing destinations."""
    engine = routing.get_engine()
    ordered = sorted(rows, key=lambda r: r["created_at"])
    async with sessions() as session:
        counters = {
            (c.departement, c.year): c.value
            for c in (await session.execute(select(ReferenceCounter))).scalars()
        }
    inserted = 0
    for begin in range(0, len(ordered), chunk):
        part = ordered[begin : begin + chunk]
        payload = []
        for row in part:
            year = row["created_at"].astimezone(dt.UTC).year
            number = counters.get((row["departement"], year), 0) + 1
            counters[(row["departement"], year)] = number
            status = status_of(row) if status_of is not None else "received"
            payload.append(
                {
                    **row,
                    "reference": format_reference(row["departement"], year, number),
                    "decision": {},
                    "language": "fr",
                    "anonymous": True,
                    "status": status,
                    "updated_at": row["created_at"],
                }
            )
        async with sessions() as session, session.begin():
            ids = (
                (await session.execute(insert(Ticket).returning(Ticket.id), payload))
                .scalars()
                .all()
            )
            if destinations:
                links = []
                for ticket_id, row in zip(ids, part, strict=True):
                    decision = engine.decide(row["report_type"], row["commune_insee"])
                    links += [
                        {
                            "ticket_id": ticket_id,
                            "agency_id": d.agency_id,
                            "agency_name": d.agency_name,
                            "role": d.role,
                            "rule_id": d.rule_id,
                            "visible_at": row["created_at"],
                        }
                        for d in decision.destinations
                    ]
                if links:
                    await session.execute(insert(TicketDestination), links)
        inserted += len(part)
    async with sessions() as session, session.begin():
        dialect = session.get_bind().dialect.name
        insert_fn = postgresql.insert if dialect == "postgresql" else sqlite.insert
        for (departement, year), value in counters.items():
            statement = insert_fn(ReferenceCounter).values(
                departement=departement, year=year, value=value
            )
            await session.execute(
                statement.on_conflict_do_update(
                    index_elements=["departement", "year"], set_={"value": value}
                )
            )
    return inserted
