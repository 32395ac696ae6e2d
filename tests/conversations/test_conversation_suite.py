"""Issue 13, "What it must show": scripted conversations through the real stack.

The conversations are data (``conversations.yml`` beside this file): typed text or a button to
tap, turn after turn, with what each reply must show. Every report type's path to its summary is
combined with every usual answer to the summary (send, change an answer, do not send), and
handwritten conversations cover unclear answers, changes of mind, corrections, cancelling,
danger and distress in the middle of a form, the form's danger question, typos, long first
messages and English-speaking tourists.

Each conversation goes through the gateway (``POST /api/v1/chat``), the trained Rasa model and the
action server; after each turn the ticket store (the stack's SQLite file) says what was filed.
At the end the suite counts, over every conversation run, and writes to
``var/conversation_suite.json``:

* ``reports_dropped_after_confirmation`` — the summary answered with a "send it" wording, and
  neither a ticket filed nor the question asked again;
* ``danger_without_emergency_numbers`` — a turn where someone is in danger (a cry for help, a
  "yes" to the form's danger question — typed or tapped —, distress) whose very reply lacks the
  emergency numbers that fit;
* ``answers_stored_for_another_question`` — a message that answers nothing (a cancel word, a cry
  for help, distress, an unclear answer) taken as the answer to the question asked: the form went
  on to another question, or the text is found in a ticket's field or in the summary's answers.

Run: ``.venv/bin/python -m pytest tests/conversations -q -x``. The conversations run a few at a
time (``TRANQUILLITE_CONVERSATION_WORKERS``, default 2); to replay them against a stack that is
already running, set ``TRANQUILLITE_CONVERSATIONS_GATEWAY`` (its URL) and
``TRANQUILLITE_CONVERSATIONS_DB`` (its SQLite file).
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import os
import re
import sqlite3
import time
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

import reports
import safety
from reports import tracking
from routing.normalize import fold

pytestmark = pytest.mark.e2e

HERE = Path(__file__).parent
PROJECT = HERE.parent.parent
SUITE_FILE = HERE / "conversations.yml"
RESULTS_FILE = PROJECT / "var" / "conversation_suite.json"
REFERENCE_RE = re.compile(r"\b(?:\d{2,3}|2A|2B)-\d{4}-\d{6}\b")
# Roles of a turn (what the citizen means by it).
ROLES = ("answer", "send", "change", "cancel", "unclear", "danger", "distress", "aside")
# Turns that answer no question unless the script says so (``answers: true``).
NOT_ANSWERS = ("cancel", "unclear", "danger", "distress", "aside")
DANGER_ROLES = ("danger", "distress")
DEFAULT_DANGER_NUMBERS = ("17", "112")
DEFAULT_DISTRESS_NUMBERS = ("17", "112", "114", "15", "3114")
# Fields whose value may legitimately keep any message (the citizen's own account).
FREE_ACCOUNT_FIELDS = frozenset({"description"})
MAX_RECOVERIES = 6
# Words of provisional agencies that must never reach a citizen (issue 13, 6).
PLACEHOLDERS = ("a configurer", "non identifie", "placeholder")


# ----------------------------------------------------------------------------- the bot's words


def _head(text: str) -> str:
    """The fixed beginning of a text of the product: up to its first placeholder or line."""
    return re.split(r"\{|\n", text)[0].strip()


def _yaml(path: str) -> Any:
    return yaml.safe_load((PROJECT / path).read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def markers() -> dict[str, tuple[str, ...]]:
    """What tells a reply's kind, read from the product's own texts (French and English)."""
    actions = _yaml("actions/report_texts.yml")["texts"]
    filed = _yaml("reports/texts.yml")["filed"]
    problems = _yaml("reports/texts.yml")["problems"]
    responses = _yaml("bot/domain/base.yml")["responses"]
    safety_texts = _yaml("safety/messages.yml")["languages"]
    langs = ("fr", "en")

    def response(name: str) -> tuple[str, ...]:
        return tuple(_head(variant["text"]) for variant in responses[name])

    return {
        "summary": tuple(_head(actions[lang]["summary"]) for lang in langs),
        "summary_again": tuple(_head(actions[lang]["confirm_again"]) for lang in langs),
        "correction": tuple(_head(actions[lang]["choose_correction"]) for lang in langs),
        "topic": tuple(_head(actions[lang]["topic_understood"]) for lang in langs),
        "cancelled": response("utter_cancelled"),
        "not_filed": response("utter_report_not_filed"),
        "commune_not_found": response("utter_commune_not_found"),
        "commune_choice": response("utter_commune_ambiguous")
        + tuple(
            _head(problems[lang][key])
            for key in ("commune_homonyms", "commune_not_offered")
            for lang in langs
        ),
        "filed": tuple(_head(filed["reference"][lang]) for lang in langs),
        "not_emergency": tuple(_head(filed["not_emergency"][lang]) for lang in langs),
        "sent_to": tuple(
            _head(filed[key][lang]) for key in ("sent_to", "national") for lang in langs
        ),
        "next_step": tuple(_head(filed["next_step"][lang]) for lang in langs)
        + tuple(
            _head(text)
            for lang in langs
            for text in (filed["next_step_by_type"].get(lang) or {}).values()
        ),
        "danger_question": tuple(safety_texts[lang]["ask_danger"] for lang in langs),
        "emergency": tuple(
            _head(safety_texts[lang][key]) for lang in langs for key in ("intro", "intro_suicidal")
        ),
    }


@lru_cache(maxsize=1)
def question_texts() -> tuple[tuple[str, str], ...]:
    """(wording, question id) of every form question in French and English, longest first."""
    model = reports.model()
    found = {
        (model.ask_text(report_type, qid, lang), qid)
        for report_type, form in model.forms.items()
        for qid in form.questions
        for lang in ("fr", "en")
    }
    return tuple(sorted(found, key=lambda item: (-len(item[0]), item[1])))


def detect(text: str) -> dict[str, int]:
    """The kinds of the messages in a reply, each with where it starts: form questions (their
    id), "summary", "summary_again", "correction", "cancelled", "filed", "emergency"..."""
    found: dict[str, int] = {}
    spans: list[tuple[int, int]] = []
    for wording, qid in question_texts():
        start = text.find(wording)
        while start >= 0:
            end = start + len(wording)
            if not any(s <= start and end <= e for s, e in spans):
                spans.append((start, end))
                found[qid] = max(found.get(qid, -1), start)
            start = text.find(wording, start + 1)
    for kind, heads in markers().items():
        for head in heads:
            start = text.find(head)
            if start >= 0:
                found[kind] = max(found.get(kind, -1), start)
    return found


FORM_KINDS = ("summary", "summary_again", "correction", "commune_not_found", "commune_choice")


def awaited(kinds: dict[str, int]) -> str | None:
    """The question the bot now waits for: "summary", a form question's id, "correction"..."""
    if "summary" in kinds or "summary_again" in kinds:
        return "summary"
    if "correction" in kinds:  # the answers to change, as buttons, come first
        return "correction"
    questions = {k: v for k, v in kinds.items() if k in reports.model().questions}
    if questions:
        return max(questions, key=lambda k: questions[k])
    if "commune_not_found" in kinds or "commune_choice" in kinds:
        return "commune"
    return None


def has_number(text: str, number: str) -> bool:
    return re.search(rf"(?<![\w.,/-]){re.escape(number)}(?![\w/-])", text) is not None


def summary_answers(text: str) -> dict[str, str]:
    """The answers listed in a summary ("• Label : value"), by label."""
    answers: dict[str, str] = {}
    in_summary = False
    for line in text.splitlines():
        if any(line.startswith(head) for head in markers()["summary"]):
            in_summary = True
            continue
        if in_summary and line.startswith("• ") and " : " in line:
            label, value = line[2:].split(" : ", 1)
            answers[label.strip()] = value.strip()
        elif in_summary and not line.startswith("• "):
            in_summary = False
    return answers


# ----------------------------------------------------------------------------- the data


@dataclass
class Step:
    """One turn of the citizen: typed text, a button to tap (by its title) or a raw payload."""

    say: str | None = None
    tap: str | None = None
    payload: str | None = None
    # candidates: the first one the danger model is unsure about (the gateway asks then)
    say_uncertain: list[str] | None = None
    role: str = "answer"
    expect: dict[str, Any] = field(default_factory=dict)
    # sent only when the bot waits for this ("summary", a question id...)
    if_asks: str | None = None
    # a not-answer role that does answer the question (e.g. danger_now answered "oui, il tape")
    answers: bool | None = None

    @property
    def shown(self) -> str:
        if self.tap is not None:
            return f"[tap] {self.tap}"
        if self.payload is not None:
            return f"[payload] {self.payload}"
        if self.say_uncertain is not None:
            return f"[uncertain] {self.say_uncertain[0]}"
        return str(self.say)

    @property
    def is_answer(self) -> bool:
        if self.answers is not None:
            return self.answers
        return self.role not in NOT_ANSWERS


@dataclass
class Conversation:
    id: str
    steps: list[Step]
    ticket: dict[str, Any] | None = None
    tickets: int | None = None  # expected number of tickets (default: the sends that file)
    never_asks: tuple[str, ...] = ()
    answers: dict[str, str] = field(default_factory=dict)  # to go on after a wrong question
    about: str = ""
    xfail: str | None = None


_DATE_RE = re.compile(r"\{(date|iso|day)([+-]\d+)\}")


def expand(text: str) -> str:
    """Dates relative to today in Paris: {date+12} -> 13/12/2026, {iso+12} -> 2026-12-13,
    {day+12} -> "13 décembre"."""
    months = (
        "janvier février mars avril mai juin juillet août septembre octobre novembre décembre"
    ).split()

    def repl(match: re.Match[str]) -> str:
        day = reports.today() + dt.timedelta(days=int(match.group(2)))
        if match.group(1) == "iso":
            return day.isoformat()
        if match.group(1) == "day":
            return f"{day.day} {months[day.month - 1]}"
        return day.strftime("%d/%m/%Y")

    return _DATE_RE.sub(repl, text)


STEP_KEYS = frozenset(
    {"say", "tap", "payload", "say_uncertain", "role", "expect", "if_asks", "answers"}
)
EXPECT_KEYS = frozenset(
    {
        "asks",
        "kinds",
        "not_kinds",
        "contains",
        "contains_any",
        "not_contains",
        "numbers",
        "numbers_any",
        "buttons",
        "not_buttons",
        "filed",
        "asks_again",
    }
)


def _step(raw: dict[str, Any] | str) -> Step:
    if isinstance(raw, str):
        return Step(say=raw)
    unknown = set(raw) - STEP_KEYS
    assert not unknown, f"unknown keys {unknown} in {raw}"
    step = Step(**raw)
    assert step.role in ROLES, f"unknown role {step.role!r} in {raw}"
    sources = [step.say, step.tap, step.payload, step.say_uncertain]
    assert sources.count(None) == 3, f"one of say/tap/payload/say_uncertain: {raw}"
    unknown = set(step.expect) - EXPECT_KEYS
    assert not unknown, f"unknown expectations {unknown} in {raw}"
    return step


def _steps(raw_turns: list[Any], paths: dict[str, Any]) -> list[Step]:
    """The turns of a conversation; ``{path: <type>}`` stands for that path's turns."""
    steps: list[Step] = []
    for raw in raw_turns:
        if isinstance(raw, dict) and "path" in raw:
            steps.extend(_step(s) for s in paths[raw["path"]]["turns"])
        else:
            steps.append(_step(raw))
    return steps


CONVERSATION_KEYS = frozenset(
    {"id", "about", "turns", "ticket", "tickets", "never_asks", "answers"}
)


def _conversation(
    raw: dict[str, Any], paths: dict[str, Any], id_: str | None = None
) -> Conversation:
    unknown = set(raw) - CONVERSATION_KEYS
    assert not unknown, f"unknown keys {unknown} in conversation {id_ or raw.get('id')}"
    return Conversation(
        id=id_ or raw["id"],
        steps=_steps(raw["turns"], paths),
        ticket=raw.get("ticket"),
        tickets=raw.get("tickets"),
        never_asks=tuple(raw.get("never_asks") or ()),
        answers=dict(raw.get("answers") or {}),
        about=raw.get("about", ""),
    )


def _slug(text: str) -> str:
    words = {"👍": "pouce", "👌": "ok-main", "✅": "coche"}
    slug = re.sub(r"[^a-z0-9]+", "-", fold(words.get(text, text))).strip("-")
    return slug or "x"


@lru_cache(maxsize=1)
def load_suite() -> tuple[list[Conversation], list[dict[str, str]]]:
    data = yaml.safe_load(SUITE_FILE.read_text(encoding="utf-8"))
    conversations: list[Conversation] = []
    # every report type's path to its summary x every usual answer to the summary
    for type_id, path in data["paths"].items():
        for kind, wordings in data["summary_answers"].items():
            for wording in wordings:
                answer = _step(wording)
                turns = [*path["turns"], {**wording, "role": kind}]
                ticket: dict[str, Any] | None = dict(path["ticket"])
                if kind == "change":
                    other = path["other_commune"]
                    turns += [
                        {"tap": "Commune", "expect": {"asks": "commune"}},
                        {
                            "say": other["say"],
                            "expect": {"asks": "summary", "contains": [other["shown"]]},
                        },
                        {"tap": "Oui, envoyer", "role": "send"},
                    ]
                    ticket = {**ticket, "commune_insee": other["insee"]}
                elif kind == "cancel":
                    ticket = None
                conversation = _conversation(
                    {
                        "turns": turns,
                        "ticket": ticket,
                        "tickets": 0 if ticket is None else 1,
                        "answers": path.get("answers"),
                        "about": f"{type_id}: the summary answered {answer.shown!r} ({kind})",
                    },
                    data["paths"],
                    id_=f"summary-{type_id}-{kind}-{_slug(answer.shown)}",
                )
                conversations.append(conversation)
    for raw in data["conversations"]:
        conversations.append(_conversation(raw, data["paths"]))
    ids = [c.id for c in conversations]
    duplicates = {i for i in ids if ids.count(i) > 1}
    assert not duplicates, f"duplicate conversation ids: {duplicates}"
    known = list(data.get("known_failures") or [])
    for conversation in conversations:
        for failure in known:
            if fnmatch.fnmatchcase(conversation.id, failure["match"]):
                conversation.xfail = failure["reason"]
    return conversations, known


# ----------------------------------------------------------------------------- running one


@dataclass
class Outcome:
    id: str
    about: str = ""
    problems: list[str] = field(default_factory=list)
    transcript: list[dict[str, Any]] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    confirmations: int = 0  # "send it" answers given at the summary
    dropped: int = 0
    danger_turns: int = 0
    danger_missing: int = 0
    stored_non_answers: int = 0
    false_alarms: int = 0  # emergency numbers on a turn not scripted as danger (information)
    seconds: float = 0.0

    def report(self) -> str:
        lines = [f"conversation {self.id} ({self.about})"]
        lines += [f"  PROBLEM {p}" for p in self.problems]
        lines.append("  transcript:")
        for turn in self.transcript:
            lines.append(f"    [{turn['turn']}] > {turn['sent']}")
            for reply_line in turn["reply"].splitlines():
                lines.append(f"          {reply_line}")
            if turn.get("buttons"):
                lines.append(f"          [{' | '.join(turn['buttons'])}]")
            if turn.get("filed"):
                lines.append(f"          FILED {turn['filed']}")
        return "\n".join(lines)


class Store:
    """The stack's ticket store, read only."""

    def __init__(self, path: str) -> None:
        self.path = path

    def tickets(self, conversation_id: str) -> list[dict[str, Any]]:
        with sqlite3.connect(self.path, timeout=30) as conn:
            rows = conn.execute(
                "SELECT reference, report_type, commune_insee, fields, decision, language, "
                "tracking_code FROM tickets WHERE conversation_id = ? ORDER BY id",
                (conversation_id,),
            ).fetchall()
        return [
            {
                "reference": r[0],
                "report_type": r[1],
                "commune_insee": r[2],
                "fields": json.loads(r[3]) if isinstance(r[3], str) else r[3],
                "decision": json.loads(r[4]) if isinstance(r[4], str) else r[4],
                "language": r[5],
                "tracking_code": r[6],
            }
            for r in rows
        ]


def _button(messages: list[dict[str, Any]], title: str) -> dict[str, str] | None:
    buttons = [b for m in messages for b in (m.get("buttons") or [])]
    exact = [b for b in buttons if b["title"] == title]
    if exact:
        return exact[0]
    if len(title) < 8:  # "Oui" must never tap "Oui, quelqu'un est en danger"
        return None
    for test in (lambda t: t.startswith(title), lambda t: fold(title) in fold(t)):
        found = [b for b in buttons if test(b["title"])]
        if found:
            return found[0]
    return None


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


class Runner:
    def __init__(self, conversation: Conversation, client: httpx.Client, store: Store) -> None:
        self.c = conversation
        self.client = client
        self.store = store
        self.sender = uuid.uuid4().hex
        self.conversation_id = f"web-{self.sender}"
        self.outcome = Outcome(conversation.id, conversation.about)
        self.messages: list[dict[str, Any]] = []
        self.pending: str | None = None  # what the bot waits for
        self.non_answers: list[tuple[int, str]] = []  # (turn, text) of messages meant as no answer
        self.counted_stored: set[int] = set()
        self.turn_no = 0
        self.in_step = True
        self.recovered: set[str] = set()

    def problem(self, text: str) -> None:
        self.outcome.problems.append(f"turn {self.turn_no}: {text}")

    # ------------------------------------------------------------------ one message
    def send(self, body: dict[str, str], shown: str) -> tuple[str, dict[str, int], int]:
        before = len(self.store.tickets(self.conversation_id))
        response = self.client.post("/api/v1/chat", json={"sender": self.sender, **body})
        if response.status_code != 200:
            self.problem(f"HTTP {response.status_code} for {shown!r}: {response.text[:200]}")
            data: dict[str, Any] = {"messages": []}
        else:
            data = response.json()
        self.messages = list(data.get("messages") or [])
        text = "\n".join(str(m.get("text") or "") for m in self.messages)
        tickets = self.store.tickets(self.conversation_id)
        filed_now = len(tickets) - before
        self.outcome.transcript.append(
            {
                "turn": self.turn_no,
                "sent": shown,
                "reply": text,
                "buttons": [b["title"] for m in self.messages for b in (m.get("buttons") or [])],
                "filed": [t["reference"] for t in tickets[before:]],
            }
        )
        if filed_now:
            self.check_filed(text, data, tickets[before:])
        return text, detect(text), filed_now

    def check_filed(self, text: str, data: dict[str, Any], new: list[dict[str, Any]]) -> None:
        for ticket in new:
            self.outcome.references.append(ticket["reference"])
            if ticket["reference"] not in text:
                self.problem(f"filed {ticket['reference']} but the reply does not say it")
            code = ticket["tracking_code"]
            if code and tracking.display(code) not in text:
                self.problem("the reply does not give the tracking code")
            listed = [t.get("reference") for t in data.get("tickets") or []]
            if ticket["reference"] not in listed:
                self.problem(f"the chat API's `tickets` does not list {ticket['reference']}")
        for kind, what in (
            ("not_emergency", "that it is not an emergency service"),
            ("sent_to", "who receives it"),
            ("next_step", "what happens next"),
        ):
            if not any(head in text for head in markers()[kind]):
                self.problem(f"the confirmation does not say {what}")
        for placeholder in PLACEHOLDERS:
            if placeholder in fold(text):
                self.problem(f"an internal placeholder reaches the citizen: {placeholder!r}")

    # ------------------------------------------------------------------ one scripted turn
    def play(self, step: Step) -> None:
        if step.if_asks is not None and self.pending != step.if_asks:
            self.outcome.transcript.append(
                {"turn": self.turn_no, "sent": f"(skipped: {step.shown})", "reply": ""}
            )
            return
        if step.tap is not None:
            button = _button(self.messages, expand(step.tap))
            if button is None:
                titles = [b["title"] for m in self.messages for b in (m.get("buttons") or [])]
                self.problem(f"no button {step.tap!r} to tap (buttons: {titles})")
                raise _Stop
            body = {"payload": button["payload"]}
            shown = f"[tap] {button['title']}"
        elif step.payload is not None:
            body, shown = {"payload": step.payload}, f"[payload] {step.payload}"
        elif step.say_uncertain is not None:
            said = next((t for t in step.say_uncertain if _uncertain(t)), "")
            if not said:
                self.problem(
                    "test data: none of the say_uncertain candidates is in the danger model's "
                    "uncertain band any more; add one that is"
                )
                raise _Stop
            body, shown = {"text": said}, said
        else:
            said = expand(str(step.say))
            body, shown = {"text": said}, said
        pending_before = self.pending
        self.in_step = not self.outcome.problems  # nothing went off script before this turn
        text, kinds, filed_now = self.send(body, shown)
        text, kinds, filed_now = self.recover(step, text, kinds, filed_now)
        if body.get("payload") not in DANGER_PAYLOADS:
            # (the answer to the gateway's danger question leaves the form's question open)
            self.pending = awaited(kinds)
        self.check_expectations(step, text, kinds, filed_now)
        if step.expect.get("asks_again") and (
            pending_before is None or awaited(kinds) != pending_before
        ):
            self.problem(f"expected {pending_before!r} asked again, it asked {awaited(kinds)!r}")
        self.check_role(step, body, text, kinds, filed_now, pending_before)

    def recover(
        self, step: Step, text: str, kinds: dict[str, int], filed_now: int
    ) -> tuple[str, dict[str, int], int]:
        """A question that should not have been asked (already said, or not the one expected):
        noted, answered from the conversation's ``answers``, and the script goes on."""
        wanted = _as_list(step.expect.get("asks"))
        for _ in range(MAX_RECOVERIES):
            asked = awaited(kinds)
            if (
                asked is None
                or asked in wanted
                or any(w in kinds for w in wanted)  # e.g. "commune_choice" (awaits "commune")
                or asked not in self.c.answers
                or asked in self.recovered
            ):
                return text, kinds, filed_now
            self.recovered.add(asked)
            if asked in self.c.never_asks or wanted:
                already = "already said" if asked in self.c.never_asks else "not expected"
                self.problem(
                    f"asked {asked!r} ({already}; expected {wanted or 'nothing more'}); "
                    f"answered {self.c.answers[asked]!r} to go on"
                )
            else:
                return text, kinds, filed_now
            said = expand(self.c.answers[asked])
            text, kinds, more = self.send({"text": said}, f"(recovery) {said}")
            filed_now += more
        return text, kinds, filed_now

    def check_expectations(
        self, step: Step, text: str, kinds: dict[str, int], filed_now: int
    ) -> None:
        expect = step.expect
        folded = fold(text)
        wanted = _as_list(expect.get("asks"))
        if wanted:
            asked = awaited(kinds)
            if not any(w == asked or w in kinds for w in wanted):
                self.problem(f"expected the bot to ask {wanted}, it asked {asked!r}")
        for needle in _as_list(expect.get("contains")):
            if fold(expand(str(needle))) not in folded:
                self.problem(f"the reply does not contain {needle!r}")
        any_of = _as_list(expect.get("contains_any"))
        if any_of and not any(fold(expand(str(n))) in folded for n in any_of):
            self.problem(f"the reply contains none of {any_of}")
        for needle in _as_list(expect.get("not_contains")):
            if fold(expand(str(needle))) in folded:
                self.problem(f"the reply contains {needle!r}")
        for kind in _as_list(expect.get("kinds")):
            if kind not in kinds:
                self.problem(f"the reply does not show {kind!r}")
        for kind in _as_list(expect.get("not_kinds")):
            if kind in kinds:
                self.problem(f"the reply shows {kind!r}")
        for title in _as_list(expect.get("buttons")):
            if _button(self.messages, title) is None:
                self.problem(f"no button {title!r}")
        offered = [b["title"] for m in self.messages for b in (m.get("buttons") or [])]
        for title in _as_list(expect.get("not_buttons")):
            if title in offered:
                self.problem(f"the button {title!r} is offered")
        default_filed = step.role == "send"
        filed = expect.get("filed", default_filed)
        if filed is True and filed_now != 1:
            self.problem(f"expected one report filed in this turn, {filed_now} filed")
        if filed is False and filed_now:
            self.problem(f"{filed_now} report(s) filed in this turn, none expected")

    def check_role(
        self,
        step: Step,
        body: dict[str, str],
        text: str,
        kinds: dict[str, int],
        filed_now: int,
        pending_before: str | None,
    ) -> None:
        role = step.role
        if role == "send" and pending_before in ("summary", "correction"):
            # "send it" while the report waits for its summary's answer (or for the answer to
            # change): filed, or the same question again — anything else drops the report
            self.outcome.confirmations += 1
            if not filed_now and self.pending not in ("summary", "correction"):
                self.outcome.dropped += 1
                self.problem("DROPPED: the report was confirmed and nothing was filed")
        if role in ("cancel", "unclear", "change") and filed_now:
            self.problem(f"a report was filed on a {role!r} answer")
        if role == "cancel" and not any(k in kinds for k in ("cancelled", "not_filed")):
            self.problem("a cancel is not acknowledged (nothing says it is cancelled)")
        if role == "unclear" and pending_before == "summary" and self.pending != "summary":
            self.problem("an unclear answer to the summary is not asked again")
        if role == "change" and "correction" not in kinds and self.pending != "summary":
            self.problem("'change an answer' does not offer the answers to change")
        if role in DANGER_ROLES:
            self.check_danger(step, text)
        elif "emergency" in kinds and "text" in body:
            self.outcome.false_alarms += 1
        # A message meant as no answer tells something only when the script and the bot were
        # still in step (the bot asked what the script expected so far): out of step, a "non"
        # meant for the summary may well answer the question the bot did ask.
        if not step.is_answer and "text" in body and self.in_step:
            said = body["text"]
            self.non_answers.append((self.turn_no, said))
            moved_on = (
                pending_before is not None
                and pending_before in reports.model().questions
                and self.pending is not None
                and self.pending != pending_before
                and self.pending != "correction"
                # a new topic starts a new form: nothing was stored for the old question
                and not any(k in kinds for k in ("cancelled", "not_filed", "topic"))
            )
            if moved_on:
                self.stored(
                    self.turn_no,
                    f"{said!r} ({role}) was taken as the answer to {pending_before!r}: "
                    f"the bot went on to {self.pending!r}",
                )
        if "summary" in kinds:
            answers = summary_answers(text)
            for turn, said in self.non_answers:
                if len(fold(said)) < 4:
                    continue
                for label, value in answers.items():
                    if label in self._free_labels():
                        continue
                    if fold(said) in fold(value):
                        self.stored(turn, f"{said!r} shown in the summary as {label!r}")

    @staticmethod
    @lru_cache(maxsize=1)
    def _free_labels() -> frozenset[str]:
        labels = {"Sujet", "Subject"}
        for qid in FREE_ACCOUNT_FIELDS:
            for lang in ("fr", "en"):
                labels.add(reports.label(qid, lang))
        return frozenset(labels)

    def stored(self, turn: int, what: str) -> None:
        if turn in self.counted_stored:
            return
        self.counted_stored.add(turn)
        self.outcome.stored_non_answers += 1
        self.problem(f"STORED A NON-ANSWER (turn {turn}): {what}")

    def check_danger(self, step: Step, text: str) -> None:
        self.outcome.danger_turns += 1
        default = DEFAULT_DANGER_NUMBERS if step.role == "danger" else ()
        required = [str(n) for n in _as_list(step.expect.get("numbers", default))]
        any_of = [str(n) for n in _as_list(step.expect.get("numbers_any"))]
        if step.role == "distress" and not any_of and not required:
            any_of = list(DEFAULT_DISTRESS_NUMBERS)
        missing = [n for n in required if not has_number(text, n)]
        if any_of and not any(has_number(text, n) for n in any_of):
            missing.append(" or ".join(any_of))
        if missing:
            self.outcome.danger_missing += 1
            self.problem(
                f"DANGER WITHOUT NUMBERS: {step.role} turn, the reply lacks {', '.join(missing)}"
            )

    # ------------------------------------------------------------------ the whole conversation
    def run(self) -> Outcome:
        started = time.monotonic()
        try:
            for number, step in enumerate(self.c.steps, 1):
                self.turn_no = number
                self.play(step)
        except _Stop:
            pass
        except httpx.HTTPError as exc:
            self.problem(f"HTTP error {type(exc).__name__}: {exc}")
        self.turn_no = len(self.c.steps)
        self.check_tickets()
        self.outcome.seconds = round(time.monotonic() - started, 1)
        return self.outcome

    def check_tickets(self) -> None:
        tickets = self.store.tickets(self.conversation_id)
        expected = self.c.tickets
        if expected is None:
            expected = sum(
                1
                for s in self.c.steps
                if s.role == "send" and s.expect.get("filed", True) is True and not s.if_asks
            )
        if len(tickets) != expected:
            self.outcome.problems.append(
                f"end: {len(tickets)} ticket(s) filed by the conversation, {expected} expected"
            )
        for ticket in tickets:
            for turn, said in self.non_answers:
                if len(fold(said)) < 4:
                    continue
                for qid, value in (ticket["fields"] or {}).items():
                    if qid not in FREE_ACCOUNT_FIELDS and fold(said) in fold(str(value)):
                        self.stored(turn, f"{said!r} stored in {ticket['reference']} as {qid!r}")
        if self.c.ticket and tickets:
            self.check_ticket(tickets[-1], self.c.ticket)

    def check_ticket(self, ticket: dict[str, Any], want: dict[str, Any]) -> None:
        where = f"end: ticket {ticket['reference']}"
        for key in ("report_type", "commune_insee", "language"):
            if key in want and ticket[key] != want[key]:
                self.outcome.problems.append(f"{where}: {key} {ticket[key]!r}, not {want[key]!r}")
        fields = ticket["fields"] or {}
        for qid, value in (want.get("fields") or {}).items():
            accepted = [expand(str(v)) for v in _as_list(value)]  # a list: any of them
            if fields.get(qid) not in accepted:
                self.outcome.problems.append(
                    f"{where}: field {qid} = {fields.get(qid)!r}, expected "
                    + " or ".join(repr(v) for v in accepted)
                )
        for qid, value in (want.get("fields_contain") or {}).items():
            if fold(expand(str(value))) not in fold(str(fields.get(qid, ""))):
                self.outcome.problems.append(
                    f"{where}: field {qid} = {fields.get(qid)!r}, expected to contain {value!r}"
                )
        for qid in want.get("fields_absent") or ():
            if qid in fields:
                self.outcome.problems.append(f"{where}: field {qid} = {fields[qid]!r} (absent)")
        flags = (ticket["decision"] or {}).get("flags") or {}
        for flag, value in (want.get("flags") or {}).items():
            if flags.get(flag) != value:
                self.outcome.problems.append(
                    f"{where}: routing flag {flag} = {flags.get(flag)!r}, expected {value!r}"
                )


DANGER_PAYLOADS = ("/danger_now_yes", "/danger_now_no")


def _uncertain(text: str) -> bool:
    """The gateway will ask whether someone is in danger (same safety package and model)."""
    assessment = safety.assess(text, "fr")
    return assessment.uncertain and not assessment.immediate_danger


class _Stop(Exception):
    """The script cannot go on (a button to tap is missing)."""


# ----------------------------------------------------------------------------- the suite

CONVERSATIONS, KNOWN_FAILURES = load_suite()


def _params() -> Iterable[Any]:
    for conversation in CONVERSATIONS:
        marks = []
        if conversation.xfail:
            marks.append(pytest.mark.xfail(strict=True, reason=conversation.xfail))
        yield pytest.param(conversation.id, id=conversation.id, marks=marks)


def _counts(outcomes: Iterable[Outcome]) -> dict[str, int]:
    outcomes = list(outcomes)
    return {
        "reports_dropped_after_confirmation": sum(o.dropped for o in outcomes),
        "danger_without_emergency_numbers": sum(o.danger_missing for o in outcomes),
        "answers_stored_for_another_question": sum(o.stored_non_answers for o in outcomes),
    }


@pytest.fixture(scope="session")
def conversation_outcomes(request: pytest.FixtureRequest) -> dict[str, Outcome]:
    """Every selected conversation, run a few at a time through the real stack."""
    selected = [
        item.callspec.params["conversation_id"]
        for item in request.session.items
        if getattr(item, "originalname", "") == "test_conversation"
    ]
    by_id = {c.id: c for c in CONVERSATIONS}
    if not selected:  # the counts alone: over every conversation
        selected = list(by_id)
    url = os.environ.get("TRANQUILLITE_CONVERSATIONS_GATEWAY")
    db = os.environ.get("TRANQUILLITE_CONVERSATIONS_DB")
    if not (url and db):
        stack = request.getfixturevalue("stack")
        url = stack.settings.gateway_url
        db = stack.settings.database_url.split("///", 1)[1]
    store = Store(db)
    workers = max(1, int(os.environ.get("TRANQUILLITE_CONVERSATION_WORKERS", "2")))

    def run(conversation_id: str) -> Outcome:
        with httpx.Client(base_url=url, timeout=120) as client:
            return Runner(by_id[conversation_id], client, store).run()

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        outcomes = dict(zip(selected, pool.map(run, selected), strict=True))
    counts = _counts(outcomes.values())
    failed = [o for o in outcomes.values() if o.problems]
    summary = {
        "conversations": len(outcomes),
        "turns": sum(len(o.transcript) for o in outcomes.values()),
        "seconds": round(time.monotonic() - started, 1),
        **counts,
        "information": {
            "summary_confirmations": sum(o.confirmations for o in outcomes.values()),
            "danger_turns": sum(o.danger_turns for o in outcomes.values()),
            "false_alarms": sum(o.false_alarms for o in outcomes.values()),
            "conversations_failing": len(failed),
            "known_failures": [c.id for c in CONVERSATIONS if c.xfail and c.id in outcomes],
        },
        "failures": [
            {"id": o.id, "about": o.about, "problems": o.problems, "transcript": o.transcript}
            for o in failed
        ],
    }
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text(json.dumps(summary, ensure_ascii=False, indent=1), encoding="utf-8")
    request.config.conversation_suite_summary = summary  # type: ignore[attr-defined]
    return outcomes


@pytest.mark.parametrize("conversation_id", list(_params()))
def test_conversation(conversation_id: str, conversation_outcomes: dict[str, Outcome]) -> None:
    outcome = conversation_outcomes[conversation_id]
    assert not outcome.problems, outcome.report()


COUNTS_XFAIL = next((f["reason"] for f in KNOWN_FAILURES if f["match"] == "counts"), None)


@pytest.mark.xfail(COUNTS_XFAIL is not None, strict=True, reason=COUNTS_XFAIL or "")
def test_counts(conversation_outcomes: dict[str, Outcome]) -> None:
    """The three figures of issue 13, over every conversation run."""
    counts = _counts(conversation_outcomes.values())
    print(json.dumps(counts, indent=1))
    assert counts == dict.fromkeys(counts, 0), counts


def test_the_suite_is_large_enough() -> None:
    assert len(CONVERSATIONS) >= 150
