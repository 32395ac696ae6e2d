"""The routing flags of a report (routing.FLAGS), computed from its answers — in one place for
every channel and for `triage`.

For each flag, in order: the report type may fix it (model.yml `forms.<type>.flags`); else an
answer whose choice `sets` it decides (true wins over false); else the cues of reports/cues.yml
on the description decide (e.g. "frappé" → offence, "12 ans" → minor). Danger also comes from a
danger signal raised by the safety check on the citizen's words (answer ``danger_signal``);
danger is never guessed from cues.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

import routing
import safety
from reports.answers import applicable
from reports.model import ModelError, model
from routing.normalize import fold

CUES_FILE = Path(__file__).with_name("cues.yml")
DANGER_SIGNAL = "danger_signal"  # answer set by a channel when the safety check fired
TEXT_QUESTIONS = ("description",)


def _compile(patterns: Iterable[str], where: str) -> tuple[re.Pattern[str], ...]:
    compiled = []
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise ModelError(f"{CUES_FILE.name}: {where}: pattern must be a string")
        try:
            compiled.append(re.compile(rf"\b(?:{pattern})\b"))
        except re.error as exc:
            raise ModelError(
                f"{CUES_FILE.name}: {where}: invalid pattern {pattern!r}: {exc}"
            ) from exc
    return tuple(compiled)


@dataclass(frozen=True)
class Cues:
    age: re.Pattern[str]
    age_not_after: re.Pattern[str]
    minor_below: int
    senior_from: int
    flags: Mapping[str, tuple[tuple[re.Pattern[str], ...], tuple[re.Pattern[str], ...]]]

    def flag(self, name: str, folded: str) -> bool:
        if name not in self.flags:
            return False
        positive, negative = self.flags[name]
        if any(p.search(folded) for p in negative):
            return False
        return any(p.search(folded) for p in positive)

    def ages(self, folded: str) -> list[int]:
        found = []
        for match in self.age.finditer(folded):
            before = " ".join(folded[: match.start()].split()[-3:])
            if self.age_not_after.search(before):
                continue
            found.append(int(match.group(1)))
        return found


@lru_cache(maxsize=1)
def cues() -> Cues:
    """The cues of reports/cues.yml (validated: a broken file fails with a clear error)."""
    data = yaml.safe_load(CUES_FILE.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("version") != 1:
        raise ModelError(f"{CUES_FILE.name}: expected a mapping with version: 1")
    age = data.get("age") or {}
    flags: dict[str, tuple[tuple[re.Pattern[str], ...], tuple[re.Pattern[str], ...]]] = {}
    for name, spec in (data.get("flags") or {}).items():
        if name not in routing.FLAGS or name == "danger":
            raise ModelError(
                f"{CUES_FILE.name}: flags.{name} is not a routing flag taken from cues"
            )
        if not isinstance(spec, dict) or not spec.get("any"):
            raise ModelError(f"{CUES_FILE.name}: flags.{name} needs a non-empty `any` list")
        flags[name] = (
            _compile(spec["any"], f"flags.{name}.any"),
            _compile(spec.get("unless") or [], f"flags.{name}.unless"),
        )
    try:
        return Cues(
            age=re.compile(rf"\b(?:{age['pattern']})\b"),
            age_not_after=re.compile(rf"\b(?:{age['not_after']})$"),
            minor_below=int(age["minor_below"]),
            senior_from=int(age["senior_from"]),
            flags=flags,
        )
    except (KeyError, TypeError, ValueError, re.error) as exc:
        raise ModelError(f"{CUES_FILE.name}: invalid `age` section: {exc}") from exc


def text_flags(text: str) -> dict[str, bool]:
    """Flags that the cues find in a free text (ages included); only true values are given."""
    c = cues()
    folded = fold(text or "")
    found = {name: True for name in c.flags if c.flag(name, folded)}
    ages = c.ages(folded)
    if any(a < c.minor_below for a in ages):
        found["minor"] = True
    if any(a >= c.senior_from for a in ages):
        found["senior"] = True
    return found


def flags(report_type: str, answers: Mapping[str, Any]) -> dict[str, bool]:
    """The routing flags of a report from its answers (choice ids, texts, SKIP)."""
    m = model()
    form = m.forms[report_type]
    decided: dict[str, bool] = {}
    for qid in applicable(report_type, dict(answers)):
        question = m.questions[qid]
        choice = question.choice(answers.get(qid))
        if choice is None:
            continue
        for name, value in choice.sets.items():
            decided[name] = decided.get(name, False) or value
    decided.update(form.flags)
    if str(answers.get(DANGER_SIGNAL) or "") in ("oui", "true", "True", "1"):
        decided["danger"] = True
    text = " \n".join(str(answers.get(q) or "") for q in TEXT_QUESTIONS if q in form.questions)
    from_text = text_flags(text)
    result = {}
    for name in routing.FLAGS:
        if name in decided:
            result[name] = decided[name]
        elif name == "danger":
            result[name] = bool(text.strip()) and safety.assess(text).immediate_danger
        else:
            result[name] = from_text.get(name, False)
    return result
