"""Opération Tranquillité Vacances: the registration rules of the competent force (data in
reports/otv_rules.yml), checked in every channel that takes an absence."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

import routing
from reports.model import ModelError

RULES_FILE = Path(__file__).with_name("otv_rules.yml")
_REQUIRED = {
    "residences",
    "min_absence_days",
    "max_absence_days",
    "min_days_before_departure",
    "max_days_before_departure",
    "label",
}


@lru_cache(maxsize=1)
def rules() -> dict[str, dict[str, Any]]:
    with RULES_FILE.open(encoding="utf-8") as fh:
        data: dict[str, dict[str, Any]] = yaml.safe_load(fh)
    for force, values in data.items():
        if not _REQUIRED <= set(values):
            raise ModelError(f"otv_rules.yml: {force} lacks {sorted(_REQUIRED - set(values))}")
    return data


def force_kinds(commune_insee: str | None) -> list[str]:
    """Kinds of the competent force(s) of a commune ("police_nationale", "gendarmerie")."""
    if not commune_insee:
        return []
    engine = routing.get_engine()
    kinds = []
    for agency_id in engine.force_agencies(commune_insee):
        kind = engine.agency(agency_id).kind
        if kind in rules() and kind not in kinds:
            kinds.append(kind)
    return kinds


def _date(value: Any) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def problems(answers: dict[str, Any], today: dt.date) -> list[tuple[str, dict[str, Any]]]:
    """Rule violations of an absence: (problem key of reports/texts.yml, values for the text;
    ``force`` is a key of otv_rules.yml, shown with its label by reports.texts.problem).

    Dates in the past and a return before the departure are refused everywhere; a commune split
    between police and gendarmerie must satisfy both forces' rules.
    """
    residence = answers.get("residence")
    departure = _date(answers.get("date_depart"))
    ret = _date(answers.get("date_retour"))
    found: list[tuple[str, dict[str, Any]]] = []
    if departure is not None and departure < today:
        found.append(("date_past", {}))
    if departure is not None and ret is not None and ret <= departure:
        found.append(("return_before_departure", {}))
    for kind in force_kinds(answers.get("commune_insee") or answers.get("commune")):
        rule = rules()[kind]
        force = kind
        if residence and residence not in rule["residences"]:
            found.append(("otv_residence", {"force": force}))
        if departure is not None and departure >= today:
            ahead = (departure - today).days
            if ahead < rule["min_days_before_departure"]:
                found.append(
                    ("otv_too_late", {"force": force, "days": rule["min_days_before_departure"]})
                )
            maximum = rule["max_days_before_departure"]
            if maximum is not None and ahead > maximum:
                found.append(("otv_too_early", {"force": force, "days": maximum}))
        if departure is not None and ret is not None and ret > departure:
            length = (ret - departure).days
            if length < rule["min_absence_days"]:
                found.append(("otv_too_short", {"force": force, "days": rule["min_absence_days"]}))
            if length > rule["max_absence_days"]:
                found.append(("otv_too_long", {"force": force, "days": rule["max_absence_days"]}))
    return found


def answers_to_forget(problem: str) -> tuple[str, ...]:
    """The answers that break a rule: forgotten, so that they are asked again."""
    if problem == "otv_residence":
        return ("residence",)
    if problem in ("date_past", "otv_too_late", "otv_too_early"):
        return ("date_depart", "date_retour")
    return ("date_retour",)
