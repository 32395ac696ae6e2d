"""What the pages, the CSV export and the API show of the protected week tables for one
territory: series, commune tables (sorted on published values only: a sort on the true values
would order the hidden cells), week-on-week comparison, CSV rows."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from webhook.agency.territory import Territory
from webhook.veille import figures
from webhook.veille.config import Category, VeilleConfig
from webhook.veille.figures import WeekTable

CSV_COLUMNS = ("week", "area_code", "area_name", "report_type", "count")
DEMO_CSV_LINE = "# Données de démonstration, fictives (tranquillite veille-demo)"
LEVELS = {"commune": "Communes", "epci": "EPCI", "departement": "Département"}


def series(tables: Sequence[WeekTable], territory: Territory, category: str) -> list[int | str]:
    kind, code = figures.own_area(territory)
    return [t.shown(kind, code, category) for t in tables]


def has_reports(tables: Sequence[WeekTable], kind: str, code: str, category: str) -> bool:
    return any(t.listed(kind, code, category) for t in tables)


@dataclass(frozen=True)
class Comparison:
    category: Category
    label: str
    previous: int | str
    current: int | str
    change: str


def comparison(
    tables: Sequence[WeekTable], territory: Territory, config: VeilleConfig
) -> list[Comparison]:
    """The last two weeks side by side at the territory's level."""
    if len(tables) < 2:
        return []
    previous, current = tables[-2], tables[-1]
    kind, code = figures.own_area(territory)
    out: list[Comparison] = []
    for category in figures.categories(territory, config, kind):
        if not has_reports([previous, current], kind, code, category.id):
            continue
        a = previous.shown(kind, code, category.id)
        b = current.shown(kind, code, category.id)
        if isinstance(a, int) and isinstance(b, int):
            change = "=" if a == b else (f"+{b - a}" if b > a else f"−{a - b}")
        else:
            change = "non calculable"
        out.append(Comparison(category, config.category_label(category), a, b, change))
    return out


def _sort_rank(value: int | str) -> tuple[int, int]:
    """Published values in order: 0 < "< 11" < numbers; "secret" (at least 11, value unknown)
    last. Hidden cells tie: rows then follow their names, never their true values."""
    if isinstance(value, int):
        return (0, 0) if value == 0 else (2, value)
    return (1, 0) if value.startswith("<") else (3, 0)


@dataclass(frozen=True)
class AreaRow:
    code: str
    name: str
    values: dict[str, int | str]


def area_table(
    table: WeekTable,
    territory: Territory,
    config: VeilleConfig,
    kind: str,
    sort_by: str | None,
    descending: bool,
) -> tuple[list[Category], list[AreaRow], int]:
    """Rows of the areas of ``kind`` with at least one report in the week (and how many areas
    had none), sorted on the published values of ``sort_by`` then by name."""
    geo = figures.geography(territory.departement)
    categories = [c for c in figures.categories(territory, config, kind) if not c.subtype]
    rows: list[AreaRow] = []
    empty = 0
    for code in figures.areas(territory, kind):
        if not any(table.listed(kind, code, c.id) for c in categories):
            empty += 1
            continue
        values = {c.id: table.shown(kind, code, c.id) for c in categories}
        rows.append(AreaRow(code, geo.name(kind, code), values))
    rows.sort(key=lambda r: r.name)
    if sort_by in {c.id for c in categories}:
        rows.sort(key=lambda r: _sort_rank(r.values[str(sort_by)]), reverse=descending)
    return categories, rows, empty


def csv_text(
    tables: Sequence[WeekTable],
    territory: Territory,
    config: VeilleConfig,
    level: str,
    *,
    demo: bool,
) -> str:
    """``week,area_code,area_name,report_type,count`` for the areas of ``level`` in the
    territory; rows of zero are left out; a hidden count is "< 11" or "secret"."""
    geo = figures.geography(territory.departement)
    buffer = io.StringIO()
    if demo:
        buffer.write(DEMO_CSV_LINE + "\n")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    categories = figures.categories(territory, config, level)
    codes = figures.areas(territory, level)
    for table in tables:
        for code in codes:
            name = geo.name(level, code)
            for category in categories:
                if not table.listed(level, code, category.id):
                    continue
                shown = table.shown(level, code, category.id)
                writer.writerow((table.week.label, code, name, category.id, shown))
    return buffer.getvalue()


def cells(
    tables: Sequence[WeekTable], territory: Territory, config: VeilleConfig
) -> list[dict[str, Any]]:
    """The territory's own figures as JSON cells (API)."""
    kind, code = figures.own_area(territory)
    out: list[dict[str, Any]] = []
    for table in tables:
        for category in figures.categories(territory, config, kind):
            if table.listed(kind, code, category.id):
                out.append(
                    {
                        "week": table.week.label,
                        "report_type": category.id,
                        "count": table.shown(kind, code, category.id),
                    }
                )
    return out
