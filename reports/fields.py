"""Ticket fields: the answers of a report as an agency receives them, whatever the channel.

A ticket's ``fields`` map question ids to canonical values — a choice id, an ISO date or the
citizen's text — in the form's order; skipped and non-applicable questions are left out and the
commune is the ticket's own column. :func:`display` turns a value into words for people.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from reports import dates
from reports.answers import applicable
from reports.model import SKIP, model, pick

TEXTS_FILE = Path(__file__).with_name("texts.yml")
MAX_FIELD = 2000


def ticket_fields(report_type: str, answers: Mapping[str, Any]) -> dict[str, str]:
    """The fields of the ticket of a report with these answers."""
    result: dict[str, str] = {}
    for qid in applicable(report_type, dict(answers)):
        if qid == "commune":
            continue
        value = answers.get(qid)
        if value is None or value == "" or value == SKIP:
            continue
        result[qid] = str(value)[:MAX_FIELD]
    return result


# The answers through which a citizen asks to be contacted (and gives how), per question.
_CONTACT_ANSWERS = ("contact_tel", "contact_sur", "contact_absence")


def contact_wanted(answers: Mapping[str, Any]) -> bool:
    """Did the citizen ask to be contacted and say how? (otherwise the ticket is anonymous)"""
    if answers.get("recontact") == "anonyme":
        return False
    return any(answers.get(qid) not in (None, "", SKIP) for qid in _CONTACT_ANSWERS)


def display(qid: str, value: Any, language: str = "fr") -> str:
    """A field's value in words: a choice's label, a date written out, the text as written."""
    question = model().questions.get(qid)
    if value == SKIP:
        return "non précisé" if language == "fr" else "—"
    if question is None:
        return str(value)
    if question.has_buttons:
        choice = question.choice(value)
        if choice:
            return choice.label(language)
    if question.kind == "date":
        try:
            return dates.format_date(dt.date.fromisoformat(str(value)), language)
        except ValueError:
            return str(value)
    return str(value)


def label(qid: str, language: str = "fr") -> str:
    """A field's name in words (the key itself when it is no question of the model)."""
    m = model()
    question = m.questions.get(qid)
    if question is not None:
        return question.label(language)
    if qid in m.channel_fields:
        return pick(m.channel_fields[qid], language)
    return qid


@lru_cache(maxsize=1)
def _texts() -> dict[str, Any]:
    with TEXTS_FILE.open(encoding="utf-8") as fh:
        data: dict[str, Any] = yaml.safe_load(fh)
    return data


def problem_text(key: str, language: str, **values: Any) -> str:
    """Why an answer was refused, in the citizen's language (reports/texts.yml ``problems``)."""
    from reports.otv import rules

    table = _texts()["problems"]
    template = pick({lang: t[key] for lang, t in table.items() if key in t}, language)
    if "force" in values and values["force"] in rules():
        values = {**values, "force": pick(rules()[values["force"]]["label"], language)}
    return str(template).format(**values)


def advice(answers: Mapping[str, Any], language: str = "fr") -> list[str]:
    """What to do at once after these answers (reports/model.yml ``advice``), in the model's
    order: "if money was taken, call your bank now..." once ``argent_perdu`` is yes, whether it
    was tapped, typed or read from the story."""
    m = model()
    return [
        pick(m.questions[qid].advice[str(answers[qid])], language)
        for qid in m.questions
        if qid in answers and str(answers[qid]) in m.questions[qid].advice
    ]


def correction_text(
    answers: dict[str, Any], language: str = "fr", before: dict[str, Any] | None = None
) -> str:
    """Answers corrected in passing, said back in words (reports/texts.yml ``corrected``):
    "C'est corrigé (Type d'arnaque : Faux policier ou faux gendarme)."; answers told before
    their question (none of them in ``before``) are "noted" ("C'est noté (...)")."""
    said = ", ".join(
        f"{label(qid, language)} : {display(qid, v, language)}" for qid, v in answers.items()
    )
    ahead = before is not None and all(before.get(qid) in (None, "") for qid in answers)
    return str(pick(_texts()["noted" if ahead else "corrected"], language)).format(answers=said)
