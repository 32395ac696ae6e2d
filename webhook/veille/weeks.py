"""ISO weeks in Europe/Paris (Monday 00:00 to the next Monday 00:00, summer time included): the
unit of every figure of the cellule de veille."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from reports.clock import PARIS

_LABEL_RE = re.compile(r"^(\d{4})-W(\d{2})$")


@dataclass(frozen=True, order=True)
class Week:
    year: int
    number: int

    @classmethod
    def of(cls, moment: dt.datetime) -> Week:
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        year, number, _ = moment.astimezone(PARIS).isocalendar()
        return cls(year, number)

    @classmethod
    def parse(cls, label: str) -> Week:
        """``2026-W48``."""
        match = _LABEL_RE.fullmatch(label.strip())
        if match is None:
            raise ValueError(f"not an ISO week: {label!r}")
        week = cls(int(match[1]), int(match[2]))
        week.monday  # noqa: B018 - validates the week number
        return week

    @classmethod
    def last_complete(cls, now: dt.datetime) -> Week:
        """The last week that has ended at ``now``."""
        return cls.of(now).previous()

    @property
    def monday(self) -> dt.date:
        return dt.date.fromisocalendar(self.year, self.number, 1)

    @property
    def start(self) -> dt.datetime:
        """Monday 00:00 in Paris, as an aware UTC datetime."""
        monday = self.monday
        return dt.datetime(monday.year, monday.month, monday.day, tzinfo=PARIS).astimezone(dt.UTC)

    @property
    def end(self) -> dt.datetime:
        return self.next().start

    def previous(self) -> Week:
        return Week.of_date(self.monday - dt.timedelta(days=7))

    def next(self) -> Week:
        return Week.of_date(self.monday + dt.timedelta(days=7))

    @classmethod
    def of_date(cls, day: dt.date) -> Week:
        year, number, _ = day.isocalendar()
        return cls(year, number)

    @property
    def label(self) -> str:
        """``2026-W48`` (CSV, API)."""
        return f"{self.year}-W{self.number:02d}"

    @property
    def short(self) -> str:
        """``S48 (23/11)`` (pages and charts)."""
        return f"S{self.number:02d} ({self.monday:%d/%m})"

    @property
    def title(self) -> str:
        """``semaine 48 de 2026, du 23/11 au 29/11``."""
        sunday = self.monday + dt.timedelta(days=6)
        return f"semaine {self.number} de {self.year}, du {self.monday:%d/%m} au {sunday:%d/%m}"


def last_weeks(now: dt.datetime, count: int) -> list[Week]:
    """The ``count`` last complete weeks at ``now``, oldest first."""
    weeks = [Week.last_complete(now)]
    while len(weeks) < count:
        weeks.append(weeks[-1].previous())
    return weeks[::-1]


def weeks_between(first: dt.date, last: dt.date) -> list[Week]:
    """The weeks whose Monday lies in [first, last], oldest first."""
    week = Week.of_date(first)
    if week.monday < first:
        week = week.next()
    out: list[Week] = []
    while week.monday <= last:
        out.append(week)
        week = week.next()
    return out
