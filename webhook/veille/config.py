"""Settings of the cellule de veille (``veille.yml``), checked against the report model and the
routing data when loaded: an unknown type or question fails at start-up, not in a page."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

import reports
import routing
from webhook.store.lifecycle import REPORT_TYPE_LABELS

CONFIG_PATH = Path(__file__).parent / "veille.yml"
NO_SUBTYPE = "non_precise"


class ConfigError(Exception):
    """veille.yml is invalid."""


@dataclass(frozen=True)
class Category:
    """What is counted: a report type, or one sub-kind of it (``subtype``)."""

    report_type: str
    subtype: str = ""

    @property
    def id(self) -> str:
        """``arnaque`` or ``arnaque:faux_conseiller`` (the CSV's report_type column)."""
        return f"{self.report_type}:{self.subtype}" if self.subtype else self.report_type

    @classmethod
    def parse(cls, text: str) -> Category:
        report_type, _, subtype = text.partition(":")
        return cls(report_type, subtype)


@dataclass(frozen=True)
class AlertSettings:
    excluded_types: frozenset[str]
    window_days: int
    baseline_weeks: int
    floor: float
    min_history_weeks: float
    p_value_max: float
    min_reports: int
    min_residents: int
    end_p_value: float
    poll_seconds: float
    sweep_seconds: float
    # how long the figures of a wave going on may wait for the reports that joined it
    refresh_seconds: float = 0.0


@dataclass(frozen=True)
class VeilleConfig:
    small_count_max: int
    weeks: int
    max_export_weeks: int
    departement_only_types: frozenset[str]
    # report type → question id of its sub-kind
    subtype_questions: dict[str, str]
    alerts: AlertSettings
    texts: dict[str, Any] = field(default_factory=dict)

    # -- categories
    def subtypes(self, report_type: str) -> tuple[str, ...]:
        """The sub-kinds of a type: the question's choices, then "non précisé"."""
        question = self.subtype_questions.get(report_type)
        if question is None:
            return ()
        choices = reports.model().questions[question].choices
        return (*(c.id for c in choices), NO_SUBTYPE)

    def subtype_of(self, report_type: str, value: str | None) -> str:
        """The sub-kind of a ticket from its answer (unknown or missing: "non précisé")."""
        known = self.subtypes(report_type)
        return value if value in known and value != NO_SUBTYPE else NO_SUBTYPE

    def ticket_subtype(self, report_type: str, fields: dict[str, str]) -> str | None:
        """The sub-kind a ticket keeps (``tickets.subtype``): its answer to the type's sub-kind
        question when it is one of the choices, else None ("non précisé")."""
        question = self.subtype_questions.get(report_type)
        if question is None:
            return None
        value = fields.get(question)
        return value if value in self.subtypes(report_type) and value != NO_SUBTYPE else None

    def categories(self) -> tuple[Category, ...]:
        out: list[Category] = []
        for report_type in routing.REPORT_TYPES:
            out.append(Category(report_type))
            out.extend(Category(report_type, s) for s in self.subtypes(report_type))
        return tuple(out)

    def local_types(self) -> tuple[str, ...]:
        """Types counted per commune and EPCI."""
        return tuple(t for t in routing.REPORT_TYPES if t not in self.departement_only_types)

    # -- labels
    def type_label(self, report_type: str) -> str:
        return REPORT_TYPE_LABELS.get(report_type, report_type)

    def subtype_label(self, report_type: str, subtype: str) -> str:
        if not subtype:
            return ""
        if subtype == NO_SUBTYPE:
            return str(self.texts["no_subtype"])
        question = self.subtype_questions[report_type]
        for choice in reports.model().questions[question].choices:
            if choice.id == subtype:
                return str(choice.label("fr"))
        return subtype

    def category_label(self, category: Category) -> str:
        label = self.type_label(category.report_type)
        if category.subtype:
            return f"{label} — {self.subtype_label(category.report_type, category.subtype)}"
        return label


def _number(node: dict[str, Any], key: str, kind: type, low: float, high: float) -> Any:
    value = node.get(key)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise ConfigError(f"{CONFIG_PATH.name}: {key} must be a number")
    if not low <= value <= high:
        raise ConfigError(f"{CONFIG_PATH.name}: {key} must be between {low} and {high}")
    return kind(value)


def _types(values: Any, key: str) -> frozenset[str]:
    if not isinstance(values, list) or not all(v in routing.REPORT_TYPES for v in values):
        raise ConfigError(f"{CONFIG_PATH.name}: {key} must list report types of routing")
    return frozenset(values)


def load(path: Path = CONFIG_PATH) -> VeilleConfig:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ConfigError(f"{path.name}: a mapping is expected")
    figures = data.get("figures") or {}
    alerts = data.get("alerts") or {}
    subtypes = data.get("subtypes") or {}
    questions = reports.model().questions
    for report_type, question in subtypes.items():
        if report_type not in routing.REPORT_TYPES:
            raise ConfigError(f"{path.name}: subtypes: unknown report type {report_type!r}")
        if question not in questions or not questions[question].choices:
            raise ConfigError(f"{path.name}: subtypes: {question!r} is no choice question")
        if question not in reports.model().forms[report_type].questions:
            raise ConfigError(f"{path.name}: {question!r} is not asked for {report_type}")
    texts = data.get("texts") or {}
    for key in ("no_subtype", "explanation", "explanation_small"):
        if not isinstance(texts.get(key), str):
            raise ConfigError(f"{path.name}: texts.{key} is missing")
    if set(texts.get("type_phrases") or {}) != set(routing.REPORT_TYPES):
        raise ConfigError(f"{path.name}: texts.type_phrases must name every report type")
    if set(texts.get("area_phrases") or {}) != {"commune", "epci", "departement"}:
        raise ConfigError(f"{path.name}: texts.area_phrases: commune, epci, departement")
    poll = _number(alerts, "poll_seconds", float, 0.1, 60)
    return VeilleConfig(
        small_count_max=_number(data, "small_count_max", int, 1, 1000),
        weeks=_number(figures, "weeks", int, 2, 104),
        max_export_weeks=_number(figures, "max_export_weeks", int, 1, 520),
        departement_only_types=_types(data.get("departement_only_types") or [], "dep-only"),
        subtype_questions={str(k): str(v) for k, v in subtypes.items()},
        alerts=AlertSettings(
            excluded_types=_types(alerts.get("excluded_types") or [], "excluded_types"),
            window_days=_number(alerts, "window_days", int, 1, 90),
            baseline_weeks=_number(alerts, "baseline_weeks", int, 1, 104),
            floor=_number(alerts, "floor", float, 0.001, 100),
            min_history_weeks=_number(alerts, "min_history_weeks", float, 0, 104),
            p_value_max=_number(alerts, "p_value_max", float, 1e-12, 0.5),
            min_reports=_number(alerts, "min_reports", int, 1, 1000),
            min_residents=_number(alerts, "min_residents", int, 1, 1000),
            end_p_value=_number(alerts, "end_p_value", float, 1e-12, 1),
            poll_seconds=poll,
            sweep_seconds=_number(alerts, "sweep_seconds", float, 1, 86400),
            refresh_seconds=_number(alerts, "refresh_seconds", float, 0, 60),
        ),
        texts=dict(texts),
    )


@functools.cache
def get_config() -> VeilleConfig:
    return load()
