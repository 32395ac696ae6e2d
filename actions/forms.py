"""The report forms of actions/forms.yml: reading answers, checking them, asking what is missing.

One validation action per report type (``validate_<type>_form``) is built from the spec. The
action reads the answer to the question asked (buttons, typed words, dates, a commune), picks up
facts the citizen already gave in an earlier message (only missing facts are asked), checks the
Opération Tranquillité Vacances rules of the competent force (actions/otv_rules.yml) and tells
Rasa which question comes next.

Pure helpers (spec loading, answer reading, OTV checks) do not import rasa_sdk, so they can be
tested without the Rasa environment.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

import routing
from actions import dates

FORMS_FILE = Path(__file__).parent / "forms.yml"
OTV_RULES_FILE = Path(__file__).parent / "otv_rules.yml"
SKIP = "__skip__"
KINDS = frozenset({"text", "choice", "yesno", "date", "commune"})
LANGUAGES = ("fr", "en")
MAX_TEXT = 2000
PHONE_RE = re.compile(r"(?<!\d)(?:\+33\s?|0)[1-9](?:[\s.-]?\d{2}){4}(?!\d)")
IBAN_RE = re.compile(r"\b[A-Z]{2}\d{2}(?:\s?[A-Z0-9]{4}){3,7}(?:\s?[A-Z0-9]{1,4})?\b")
URL_RE = re.compile(r"\b(?:https?://|www\.)\S+|\b[\w-]+\.(?:com|fr|net|org|info|xyz|top|site)\b")


class FormSpecError(ValueError):
    """forms.yml or otv_rules.yml is invalid (raised when the action server starts)."""


@dataclass(frozen=True)
class Choice:
    key: str
    labels: dict[str, str]
    synonyms: tuple[str, ...]


@dataclass(frozen=True)
class Question:
    slot: str
    kind: str
    ask: dict[str, str]
    summary: dict[str, str]
    choices: tuple[Choice, ...] = ()
    optional: bool = False
    skip_label: dict[str, str] = field(default_factory=dict)
    ask_if: dict[str, tuple[str, ...]] = field(default_factory=dict)
    personal: bool = False

    def choice(self, key: str) -> Choice | None:
        return next((c for c in self.choices if c.key == key), None)


@dataclass(frozen=True)
class FormSpec:
    report_type: str
    slots: tuple[str, ...]
    extract_only: tuple[str, ...]
    ask: dict[str, dict[str, str]]

    @property
    def name(self) -> str:
        return f"{self.report_type}_form"


@dataclass(frozen=True)
class Spec:
    questions: dict[str, Question]
    forms: dict[str, FormSpec]

    def form_slots(self) -> list[str]:
        """Every slot used by some form (for the summary, filing and resets)."""
        seen: dict[str, None] = {}
        for form in self.forms.values():
            for slot in (*form.slots, *form.extract_only):
                seen[slot] = None
        return list(seen)

    def ask_text(self, report_type: str, slot: str, language: str) -> str:
        override = self.forms[report_type].ask.get(slot)
        texts = override or self.questions[slot].ask
        return texts.get(language) or texts["fr"]


def _labels(raw: Any, where: str) -> dict[str, str]:
    if not isinstance(raw, dict) or "fr" not in raw:
        raise FormSpecError(f"{where}: a French text (fr) is required")
    return {str(k): str(v) for k, v in raw.items()}


def parse_spec(data: Any) -> Spec:
    if not isinstance(data, dict) or "questions" not in data or "forms" not in data:
        raise FormSpecError("forms.yml needs `questions` and `forms`")
    questions: dict[str, Question] = {}
    for slot, raw in data["questions"].items():
        where = f"questions.{slot}"
        kind = raw.get("kind")
        if kind not in KINDS:
            raise FormSpecError(f"{where}: unknown kind {kind!r}")
        choices = tuple(
            Choice(
                key=str(key),
                labels=_labels(value, f"{where}.choices.{key}"),
                synonyms=tuple(dates.normalise(s) for s in value.get("synonyms", [])),
            )
            for key, value in (raw.get("choices") or {}).items()
        )
        if kind in ("choice", "yesno") and not choices:
            raise FormSpecError(f"{where}: a {kind} question needs choices")
        questions[slot] = Question(
            slot=slot,
            kind=kind,
            ask=_labels(raw.get("ask"), f"{where}.ask"),
            summary=_labels(raw.get("summary"), f"{where}.summary"),
            choices=choices,
            optional=bool(raw.get("optional", False)),
            skip_label=_labels(raw["skip_label"], f"{where}.skip_label")
            if raw.get("skip_label")
            else {"fr": "Passer", "en": "Skip"},
            ask_if={k: tuple(v) for k, v in (raw.get("ask_if") or {}).items()},
            personal=bool(raw.get("personal", False)),
        )
    forms: dict[str, FormSpec] = {}
    for report_type, raw in data["forms"].items():
        if report_type not in routing.REPORT_TYPES:
            raise FormSpecError(f"forms.{report_type}: not a report type of SPEC §2")
        slots = tuple(raw.get("slots") or ())
        extract_only = tuple(raw.get("extract_only") or ())
        for slot in (*slots, *extract_only):
            if slot not in questions:
                raise FormSpecError(f"forms.{report_type}: unknown question {slot!r}")
        if "commune" not in slots:
            raise FormSpecError(f"forms.{report_type}: every report needs the commune")
        ask = {
            slot: _labels(text, f"forms.{report_type}.ask.{slot}")
            for slot, text in (raw.get("ask") or {}).items()
        }
        forms[report_type] = FormSpec(report_type, slots, extract_only, ask)
    missing = set(routing.REPORT_TYPES) - set(forms)
    if missing:
        raise FormSpecError(f"no form for report types: {sorted(missing)}")
    return Spec(questions, forms)


@lru_cache(maxsize=1)
def spec() -> Spec:
    with FORMS_FILE.open(encoding="utf-8") as fh:
        return parse_spec(yaml.safe_load(fh))


# ---------------------------------------------------------------- reading answers


def read_choice(question: Question, text: str) -> str | None:
    """The choice a typed answer means (whole-word synonym match), or None."""
    norm = dates.normalise(text)
    if not norm:
        return None
    best: tuple[int, str] | None = None
    for choice in question.choices:
        candidates = (
            dates.normalise(choice.key.replace("_", " ")),
            *choice.synonyms,
            *(dates.normalise(label) for label in choice.labels.values()),
        )
        for synonym in candidates:
            if not synonym:
                continue
            match = re.search(rf"(?<![\w]){re.escape(synonym)}(?![\w])", norm)
            if match and (best is None or len(synonym) > best[0]):
                best = (len(synonym), choice.key)
    return best[1] if best else None


def read_yesno(text: str, intent: str | None) -> str | None:
    question = spec().questions["danger_now"]
    from_text = read_choice(question, text)
    if from_text == "ne_sait_pas":
        return from_text
    if intent == "affirm":
        return "oui"
    if intent == "deny":
        return "non"
    return from_text


def find_traces(text: str) -> list[str]:
    """Phone numbers, IBANs and web addresses written in a message (scammer's traces)."""
    found: list[str] = []
    for pattern in (PHONE_RE, IBAN_RE, URL_RE):
        for match in pattern.finditer(text):
            value = match.group(0).strip(".,;)")
            if value not in found:
                found.append(value)
    return found


@dataclass
class Answer:
    value: Any = None
    # why it was not accepted: a key of actions/report_texts.yml `problems`
    problem: str | None = None
    values: dict[str, Any] = field(default_factory=dict)  # extra slots read from the answer


def read_answer(
    question: Question,
    text: str,
    intent: str | None,
    entity_value: str | None,
    today: dt.date,
) -> Answer:
    """Read the citizen's answer to ``question`` (typed ``text`` or a button's entity value)."""
    if entity_value == SKIP and question.optional:
        return Answer(SKIP)
    if question.kind == "choice":
        if entity_value and question.choice(entity_value):
            return Answer(entity_value)
        choice = read_choice(question, text)
        return Answer(choice) if choice else Answer(problem="choice")
    if question.kind == "yesno":
        if entity_value and question.choice(entity_value):
            return Answer(entity_value)
        value = read_yesno(text, intent)
        return Answer(value) if value else Answer(problem="yesno")
    if question.kind == "date":
        if question.slot == "date_depart":
            start, end = dates.parse_period(text, today)
            if start is None:
                return Answer(problem="date")
            extra = {"date_retour": end.isoformat()} if end else {}
            return Answer(start.isoformat(), values=extra)
        day = dates.parse_date(text, today)
        return Answer(day.isoformat()) if day else Answer(problem="date")
    cleaned = (text or "").strip()[:MAX_TEXT]
    if not cleaned or cleaned.startswith("/"):
        return Answer(problem="empty")
    if (
        question.kind == "text"
        and question.optional
        and read_choice(spec().questions["danger_now"], cleaned) == "non"
        and len(cleaned) <= 12
    ):
        return Answer(SKIP)
    return Answer(cleaned)


# ---------------------------------------------------------------- OTV rules


@lru_cache(maxsize=1)
def otv_rules() -> dict[str, dict[str, Any]]:
    with OTV_RULES_FILE.open(encoding="utf-8") as fh:
        data: dict[str, dict[str, Any]] = yaml.safe_load(fh)
    required = {
        "residences",
        "min_absence_days",
        "max_absence_days",
        "min_days_before_departure",
        "max_days_before_departure",
        "label",
    }
    for force, rules in data.items():
        if not required <= set(rules):
            raise FormSpecError(f"otv_rules.yml: {force} lacks {sorted(required - set(rules))}")
    return data


def force_kinds(commune_insee: str | None) -> list[str]:
    """Kinds of the competent force(s) of a commune ("police_nationale", "gendarmerie")."""
    if not commune_insee:
        return []
    engine = routing.get_engine()
    kinds = []
    for agency_id in engine.force_agencies(commune_insee):
        kind = engine.agency(agency_id).kind
        if kind in otv_rules() and kind not in kinds:
            kinds.append(kind)
    return kinds


def otv_problems(
    commune_insee: str | None,
    residence: str | None,
    departure: dt.date | None,
    ret: dt.date | None,
    today: dt.date,
) -> list[tuple[str, dict[str, Any]]]:
    """OTV rule violations: (problem key, values for the message). Split communes: all rules."""
    problems: list[tuple[str, dict[str, Any]]] = []
    if departure is not None and departure < today:
        problems.append(("date_past", {}))
    if departure is not None and ret is not None and ret <= departure:
        problems.append(("return_before_departure", {}))
    for kind in force_kinds(commune_insee):
        rules = otv_rules()[kind]
        force = rules["label"]["fr"]
        if residence and residence not in rules["residences"]:
            problems.append(("otv_residence", {"force": force}))
        if departure is not None and departure >= today:
            ahead = (departure - today).days
            if ahead < rules["min_days_before_departure"]:
                problems.append(
                    ("otv_too_late", {"force": force, "days": rules["min_days_before_departure"]})
                )
            maximum = rules["max_days_before_departure"]
            if maximum is not None and ahead > maximum:
                problems.append(("otv_too_early", {"force": force, "days": maximum}))
        if departure is not None and ret is not None and ret > departure:
            length = (ret - departure).days
            if length < rules["min_absence_days"]:
                problems.append(
                    ("otv_too_short", {"force": force, "days": rules["min_absence_days"]})
                )
            if length > rules["max_absence_days"]:
                problems.append(
                    ("otv_too_long", {"force": force, "days": rules["max_absence_days"]})
                )
    return problems


# ---------------------------------------------------------------- which questions remain


def applicable_slots(report_type: str, values: dict[str, Any]) -> list[str]:
    """The questions of a form that apply given the answers so far (``ask_if``)."""
    form = spec().forms[report_type]
    result = []
    for slot in form.slots:
        condition = spec().questions[slot].ask_if
        if condition and not all(values.get(k) in allowed for k, allowed in condition.items()):
            continue
        result.append(slot)
    return result


def next_missing(report_type: str, values: dict[str, Any]) -> str | None:
    for slot in applicable_slots(report_type, values):
        if values.get(slot) in (None, ""):
            return slot
    return None


def routing_flags(report_type: str, values: dict[str, Any]) -> dict[str, bool]:
    """Flags of routing.decide derived from the answers (see routing/rules.yml)."""
    victime = values.get("victime")
    lieu_type = values.get("lieu_type")
    return {
        "minor": report_type == "enfant_en_danger"
        or victime == "enfant"
        or values.get("mineur") == "oui",
        "senior": report_type == "personne_vulnerable" or values.get("victime_senior") == "oui",
        "danger": values.get("danger_now") == "oui" or bool(values.get("danger_signal")),
        "online": lieu_type == "en_ligne",
        "money_lost": values.get("argent_perdu") == "oui",
        "neighbour_conflict": report_type == "incivilite"
        and "voisin" in dates.normalise(str(values.get("description") or "")),
    }


def display_value(slot: str, value: Any, language: str = "fr") -> str:
    question = spec().questions.get(slot)
    if value == SKIP:
        return "—" if language != "fr" else "non précisé"
    if question is None:
        return str(value)
    if question.kind in ("choice", "yesno"):
        choice = question.choice(str(value))
        if choice:
            return choice.labels.get(language) or choice.labels["fr"]
    if question.kind == "date":
        try:
            return dates.format_date(dt.date.fromisoformat(str(value)), language)
        except ValueError:
            return str(value)
    return str(value)
