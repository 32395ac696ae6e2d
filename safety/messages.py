"""Channel-neutral emergency reply built from messages.yml and helplines.yml."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, TypedDict

import yaml

from .detector import DangerAssessment
from .errors import SafetyDataError

MESSAGES_PATH = Path(__file__).with_name("messages.yml")
HELPLINES_PATH = Path(__file__).with_name("helplines.yml")
SUPPORTED_LANGUAGES: tuple[str, ...] = ("fr", "en", "de", "nl", "it", "es")
FALLBACK_HELPLINES: tuple[str, ...] = ("17", "112", "114")
SMS_LINE = "114"
_TEMPLATE_KEYS = (
    "intro",
    "intro_suicidal",
    "also",
    "line",
    "sms_suffix",
    "outro",
    "purposes",
    "ask_danger",
    "ask_danger_buttons",
    "ask_danger_no",
)
# The buttons of the "is someone in danger right now?" question (answered by the gateway).
DANGER_YES = "/danger_now_yes"
DANGER_NO = "/danger_now_no"


class Button(TypedDict):
    title: str
    payload: str


class Reply(TypedDict):
    text: str
    buttons: list[Button]


@dataclass(frozen=True)
class Helpline:
    """A helpline copied from the shared reference file, with its sources."""

    id: str
    number: str
    name: str
    emergency: bool
    purpose: str
    sources: tuple[str, ...]


def _read_yaml(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as handle:
            return yaml.safe_load(handle)
    except (OSError, yaml.YAMLError) as exc:
        raise SafetyDataError(f"cannot read {path}: {exc}") from exc


def parse_helplines(data: Any, source: str = "helplines.yml") -> dict[str, Helpline]:
    """Validate helplines.yml: unique ids, a number and at least one source url per entry."""
    if not isinstance(data, dict) or not isinstance(data.get("helplines"), list):
        raise SafetyDataError(f"{source}: expected a mapping with a 'helplines' list")
    result: dict[str, Helpline] = {}
    for i, raw in enumerate(data["helplines"]):
        try:
            line = Helpline(
                id=str(raw["id"]),
                number=str(raw["number"]),
                name=str(raw["name"]),
                emergency=bool(raw["emergency"]),
                purpose=str(raw["purpose"]),
                sources=tuple(str(u) for u in raw["sources"]),
            )
        except (KeyError, TypeError) as exc:
            raise SafetyDataError(f"{source}.helplines[{i}]: missing field {exc}") from exc
        if line.id in result or not line.number or not line.sources:
            raise SafetyDataError(f"{source}.helplines[{i}]: duplicate id or no number/source")
        if not all(u.startswith("https://") for u in line.sources):
            raise SafetyDataError(f"{source}.helplines[{i}]: every source must be an https url")
        result[line.id] = line
    return result


def parse_messages(
    data: Any, helplines: Mapping[str, Helpline], source: str = "messages.yml"
) -> dict[str, dict[str, Any]]:
    """Validate messages.yml: every language has every key and a purpose for every helpline."""
    if not isinstance(data, dict) or not isinstance(data.get("languages"), dict):
        raise SafetyDataError(f"{source}: expected a mapping with 'languages'")
    languages: dict[str, dict[str, Any]] = data["languages"]
    missing_langs = set(SUPPORTED_LANGUAGES) - set(languages)
    if missing_langs:
        raise SafetyDataError(f"{source}: missing languages {sorted(missing_langs)}")
    for lang, tpl in languages.items():
        missing = [k for k in _TEMPLATE_KEYS if k not in tpl]
        if missing:
            raise SafetyDataError(f"{source}.{lang}: missing keys {missing}")
        purposes = {str(k) for k in tpl["purposes"]}
        if purposes != set(helplines):
            raise SafetyDataError(
                f"{source}.{lang}.purposes must cover exactly the helplines {sorted(helplines)}"
            )
        if "{number}" not in tpl["line"] or "{purpose}" not in tpl["line"]:
            raise SafetyDataError(f"{source}.{lang}.line needs {{number}} and {{purpose}}")
    return languages


@lru_cache(maxsize=1)
def load_helplines() -> dict[str, Helpline]:
    """The packaged helplines, by id."""
    return parse_helplines(_read_yaml(HELPLINES_PATH), source=HELPLINES_PATH.name)


@lru_cache(maxsize=1)
def load_messages() -> dict[str, dict[str, Any]]:
    """The packaged reply templates, by language."""
    return parse_messages(_read_yaml(MESSAGES_PATH), load_helplines(), source=MESSAGES_PATH.name)


def _language(language: str | None) -> str:
    code = (language or "fr").lower().split("-")[0].split("_")[0]
    return code if code in SUPPORTED_LANGUAGES else "fr"


def emergency_message(assessment: DangerAssessment, language: str | None = "fr") -> Reply:
    """Emergency reply: numbers first (each with its purpose), then a line saying the report can
    go on here (a statement, not a question: the report's next question follows).

    Unsupported languages fall back to French. An assessment without helplines (e.g. the
    caller decided to show the message anyway) gets the police lines 17, 112, 114.
    """
    lang = _language(language)
    tpl = load_messages()[lang]
    helplines = load_helplines()
    ids = assessment.helplines or FALLBACK_HELPLINES
    unknown = [i for i in ids if i not in helplines]
    if unknown:
        raise SafetyDataError(f"helplines {unknown} are not in {HELPLINES_PATH.name}")

    suicidal_first = bool(assessment.categories) and ids[0] == "3114"
    lines = [tpl["intro_suicidal"] if suicidal_first else tpl["intro"]]
    for line_id in ids:
        number = helplines[line_id].number + (tpl["sms_suffix"] if line_id == SMS_LINE else "")
        lines.append(tpl["line"].format(number=number, purpose=tpl["purposes"][line_id]))
    lines.append("")
    lines.append(tpl["outro"])
    # no buttons, no question: the report goes on in the same reply (its next question), or
    # where it stopped at the citizen's next message
    return {"text": "\n".join(lines), "buttons": []}


def helpline_lines(ids: tuple[str, ...] | list[str], language: str | None = "fr") -> str:
    """The lines of ``ids`` alone (numbers and purposes) under a short "also" heading: added
    when the numbers of the message were shown already and the report calls for more (119 for a
    child, 3919 for domestic violence). Empty for no ids."""
    if not ids:
        return ""
    tpl = load_messages()[_language(language)]
    helplines = load_helplines()
    unknown = [i for i in ids if i not in helplines]
    if unknown:
        raise SafetyDataError(f"helplines {unknown} are not in {HELPLINES_PATH.name}")
    lines = [tpl["also"]]
    for line_id in ids:
        number = helplines[line_id].number + (tpl["sms_suffix"] if line_id == SMS_LINE else "")
        lines.append(tpl["line"].format(number=number, purpose=tpl["purposes"][line_id]))
    return "\n".join(lines)


def danger_question(language: str | None = "fr") -> Reply:
    """Asked once when the danger model is unsure (DangerAssessment.uncertain): a yes gets the
    emergency numbers first."""
    tpl = load_messages()[_language(language)]
    return {
        "text": tpl["ask_danger"],
        "buttons": [
            {"title": tpl["ask_danger_buttons"]["confirm"], "payload": DANGER_YES},
            {"title": tpl["ask_danger_buttons"]["refuse"], "payload": DANGER_NO},
        ],
    }


def danger_denied(language: str | None = "fr") -> str:
    return str(load_messages()[_language(language)]["ask_danger_no"])
