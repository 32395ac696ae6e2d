"""Loading and checking reports/model.yml: the questions and forms of every report type.

Pure: standard library, PyYAML and the pure ``routing`` package (report types, flags, folding).
A broken model fails at load time with a message that names the faulty entry.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

import routing
from routing.normalize import fold

MODEL_FILE = Path(__file__).with_name("model.yml")
KINDS = frozenset({"text", "choice", "yesno", "date", "commune"})
# Languages of the report model: French first; the chat speaks fr and en, the guided mode all six.
LANGUAGES = ("fr", "en", "de", "nl", "it", "es")
CHAT_LANGUAGES = ("fr", "en")
EXTRACTORS = frozenset({"dates", "traces", "age", "when", "place", "address", "since", "repeated"})
# The value of an optional question the citizen chose to skip.
SKIP = "__skip__"


# The answers to a summary: file the report, change an answer, do not file it.
CONFIRMATION_CHOICES = ("envoyer", "modifier", "annuler")


class ModelError(ValueError):
    """reports/model.yml is invalid."""


def _texts(raw: Any, where: str, required: bool = True) -> dict[str, str]:
    if raw is None and not required:
        return {}
    if not isinstance(raw, dict) or "fr" not in raw:
        raise ModelError(f"{where}: a French text (fr) is required")
    unknown = set(raw) - set(LANGUAGES)
    if unknown:
        raise ModelError(f"{where}: unknown languages {sorted(unknown)}")
    return {str(k): str(v) for k, v in raw.items()}


def pick(texts: dict[str, str], language: str) -> str:
    """The text in ``language``, else English for the tourists' languages, else French."""
    if language in texts:
        return texts[language]
    if language not in CHAT_LANGUAGES and "en" in texts:
        return texts["en"]
    return texts["fr"]


def _flags(raw: Any, where: str) -> dict[str, bool]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ModelError(f"{where}: expected a mapping of routing flags")
    for name, value in raw.items():
        if name not in routing.FLAGS:
            raise ModelError(
                f"{where}: {name!r} is not a routing flag ({', '.join(routing.FLAGS)})"
            )
        if not isinstance(value, bool):
            raise ModelError(f"{where}.{name}: expected true or false")
    return {str(k): bool(v) for k, v in raw.items()}


@dataclass(frozen=True)
class Choice:
    id: str
    labels: dict[str, str]
    synonyms: tuple[str, ...]  # folded
    cues: tuple[re.Pattern[str], ...]
    sets: dict[str, bool]
    ages: tuple[int, int] | None = None
    # synonyms with no letter or digit (emoji such as 👍), matched as they are written
    symbols: tuple[str, ...] = ()

    def label(self, language: str) -> str:
        return pick(self.labels, language)


@dataclass(frozen=True)
class Question:
    id: str
    kind: str
    ask: dict[str, str]
    short: dict[str, str]
    labels: dict[str, str]
    choices: tuple[Choice, ...] = ()
    free_text: bool = False
    optional: bool = False
    skip_labels: dict[str, str] = field(default_factory=dict)
    ask_if: dict[str, tuple[str, ...]] = field(default_factory=dict)
    personal: bool = False
    extract: str | None = None
    # what to do at once after an answer (choice id -> text per language), in every channel
    advice: dict[str, dict[str, str]] = field(default_factory=dict)
    # the choice a story dated in the past gives ("hier", "la semaine dernière"), when no cue of
    # a choice before it matches: dated as the safety check dates it (safety.dated_in_the_past)
    if_past: str | None = None
    # "phone": a typed answer must hold a phone number; "contact": a way to be reached (a
    # number, an e-mail, or one of the ``holds`` patterns: a time, a means, a go-between)
    expects: str | None = None
    holds: tuple[re.Pattern[str], ...] = ()
    # what this question keeps of the answer just before it when its own answer lacks it (a
    # moment told with "oui" to "Souhaitez-vous être recontacté ?", kept with the number)
    keeps: tuple[re.Pattern[str], ...] = ()
    # what "no" / "none" typed to this question answers instead (question id -> choice id)
    if_none: dict[str, str] = field(default_factory=dict)

    def choice(self, value: Any) -> Choice | None:
        return next((c for c in self.choices if c.id == value), None)

    def label(self, language: str) -> str:
        return pick(self.labels, language)

    def skip_label(self, language: str) -> str:
        return pick(self.skip_labels or {"fr": "Passer", "en": "Skip"}, language)

    @property
    def has_buttons(self) -> bool:
        return self.kind in ("choice", "yesno")


@dataclass(frozen=True)
class Form:
    report_type: str
    questions: tuple[str, ...]
    optional: frozenset[str]
    ask: dict[str, dict[str, str]]
    flags: dict[str, bool]
    danger_category: str = "help_call"
    # the report types told in the same words, offered when the classifier's next ones are
    # unlikely (see alternatives())
    related: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The Rasa form of this report type."""
        return f"{self.report_type}_form"


@dataclass(frozen=True)
class Model:
    questions: dict[str, Question]
    forms: dict[str, Form]
    # fields that channels add beside the answers (Open311's address, a call-back number)
    channel_fields: dict[str, dict[str, str]] = field(default_factory=dict)
    # the answers to a report's summary (send / change an answer / do not send), every channel
    confirmation: tuple[Choice, ...] = ()

    def question(self, qid: str) -> Question:
        return self.questions[qid]

    def form(self, report_type: str) -> Form:
        return self.forms[report_type]

    def is_optional(self, report_type: str, qid: str) -> bool:
        return self.questions[qid].optional or qid in self.forms[report_type].optional

    def ask_text(self, report_type: str, qid: str, language: str, short: bool = False) -> str:
        """The question's wording: the type's own, else the chat's (``ask``) or the guided
        mode's (``short``), each falling back on the other."""
        question = self.questions[qid]
        override = self.forms[report_type].ask.get(qid)
        if override and (language in override or not short):
            return pick(override, language)
        first, second = (question.short, question.ask) if short else (question.ask, question.short)
        if language in first:
            return first[language]
        if language in second:
            return second[language]
        return pick(first or second, language)

    def question_in(self, text: str) -> str | None:
        """The question whose wording (any form, language, chat or guided) ``text`` contains —
        the longest wording wins — or None."""
        if not text:
            return None
        found = [(len(w), qid) for w, qid in self._wordings() if w in text]
        return max(found)[1] if found else None

    def _wordings(self) -> list[tuple[str, str]]:
        cached = self.__dict__.get("_wordings_cache")
        if cached is None:
            pairs = {
                (self.ask_text(rt, qid, lang, short=short), qid)
                for rt, form in self.forms.items()
                for qid in form.questions
                for lang in LANGUAGES
                for short in (False, True)
            }
            cached = sorted(pairs, key=lambda p: -len(p[0]))
            object.__setattr__(self, "_wordings_cache", cached)
        return cached

    def all_question_ids(self) -> list[str]:
        """Every question used by some form, in a stable order."""
        seen: dict[str, None] = {}
        for form in self.forms.values():
            for qid in form.questions:
                seen[qid] = None
        return list(seen)


def _choices(
    raw: Any,
    question_sets: dict[str, Any],
    where: str,
    question_cues: dict[str, Any] | None = None,
    question_ages: dict[str, Any] | None = None,
) -> tuple[Choice, ...]:
    """The choices of a question. ``question_sets``, ``question_cues`` and ``question_ages``
    (choice id → flags, patterns, [lowest, highest]) add to shared choices (``*yesno``) what
    only this question means by them: "on lui a vidé son compte" answers "was money taken?",
    not every yes/no question."""
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise ModelError(f"{where}.choices: expected a mapping")
    question_cues = question_cues or {}
    question_ages = question_ages or {}
    for name, overlay in (("cues", question_cues), ("ages", question_ages)):
        if not isinstance(overlay, dict) or set(overlay) - set(raw):
            raise ModelError(f"{where}.{name}: expected a mapping of its choices")
    choices = []
    for cid, spec in raw.items():
        cwhere = f"{where}.choices.{cid}"
        if not isinstance(spec, dict):
            raise ModelError(f"{cwhere}: expected a mapping")
        cues = []
        for pattern in [*(spec.get("cues") or ()), *(question_cues.get(cid) or ())]:
            try:
                cues.append(re.compile(rf"\b(?:{pattern})\b"))
            except re.error as exc:
                raise ModelError(f"{cwhere}.cues: invalid pattern {pattern!r}: {exc}") from exc
        ages = question_ages.get(cid, spec.get("ages"))
        if ages is not None and (
            not isinstance(ages, list)
            or len(ages) != 2
            or not all(isinstance(a, int) for a in ages)
        ):
            raise ModelError(f"{cwhere}.ages: expected [lowest, highest]")
        sets = {**_flags(spec.get("sets"), f"{cwhere}.sets")}
        sets.update(_flags(question_sets.get(cid), f"{where}.sets.{cid}"))
        choices.append(
            Choice(
                id=str(cid),
                labels=_texts(spec.get("label"), f"{cwhere}.label"),
                synonyms=tuple(s for s in (fold(str(x)) for x in spec.get("synonyms") or ()) if s),
                cues=tuple(cues),
                sets=sets,
                ages=(ages[0], ages[1]) if ages else None,
                symbols=tuple(str(x) for x in spec.get("synonyms") or () if not fold(str(x))),
            )
        )
    unknown = set(question_sets) - {c.id for c in choices}
    if unknown:
        raise ModelError(f"{where}.sets: unknown choices {sorted(unknown)}")
    return tuple(choices)


def _advice(raw: Any, choices: tuple[Choice, ...], where: str) -> dict[str, dict[str, str]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or set(raw) - {c.id for c in choices}:
        raise ModelError(f"{where}.advice: expected a mapping of its choices to texts")
    return {str(cid): _texts(texts, f"{where}.advice.{cid}") for cid, texts in raw.items()}


EXPECTS = ("phone", "contact")
# Other topics offered under the one understood, to change it in one tap: the classifier's next
# likeliest when at least this likely (on the held-out split, a right type ranked second or
# third had 0.019 or more), then the type's ``related`` ones: "Trafic de drogue" at 0.001 under
# a story of domestic violence was noise.
ALTERNATIVES = 2
ALTERNATIVE_FLOOR = 0.01


def _holds(raw: Any, expects: Any, where: str) -> tuple[re.Pattern[str], ...]:
    """The patterns (on folded text) of what an ``expects: contact`` answer holds."""
    if raw is None:
        if expects == "contact":
            raise ModelError(f"{where}: `expects: contact` needs `holds` patterns")
        return ()
    if expects != "contact" or not isinstance(raw, list):
        raise ModelError(f"{where}.holds: a list of patterns, with `expects: contact`")
    return _patterns(raw, f"{where}.holds")


def _patterns(raw: Any, where: str) -> tuple[re.Pattern[str], ...]:
    """Patterns on folded text, matched on whole words."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ModelError(f"{where}: a list of patterns")
    compiled = []
    for pattern in raw:
        try:
            compiled.append(re.compile(rf"\b(?:{pattern})\b"))
        except re.error as exc:
            raise ModelError(f"{where}: invalid pattern {pattern!r}: {exc}") from exc
    return tuple(compiled)


def _expects(raw: Any, where: str) -> str | None:
    if raw is not None and raw not in EXPECTS:
        raise ModelError(f"{where}.expects: expected one of {', '.join(EXPECTS)}")
    return None if raw is None else str(raw)


def _if_past(raw: Any, choices: tuple[Choice, ...], where: str) -> str | None:
    if raw is None:
        return None
    if str(raw) not in {c.id for c in choices}:
        raise ModelError(f"{where}.if_past: {raw!r} is not one of its choices")
    return str(raw)


def parse_model(data: Any) -> Model:
    if not isinstance(data, dict) or data.get("version") != 1:
        raise ModelError("model.yml: expected a mapping with version: 1")
    if not isinstance(data.get("questions"), dict) or not isinstance(data.get("forms"), dict):
        raise ModelError("model.yml needs `questions` and `forms`")
    questions: dict[str, Question] = {}
    for qid, raw in data["questions"].items():
        where = f"questions.{qid}"
        if not isinstance(raw, dict):
            raise ModelError(f"{where}: expected a mapping")
        kind = raw.get("kind")
        if kind not in KINDS:
            raise ModelError(f"{where}: unknown kind {kind!r}")
        choices = _choices(
            raw.get("choices"), raw.get("sets") or {}, where, raw.get("cues"), raw.get("ages")
        )
        if kind in ("choice", "yesno") and not choices:
            raise ModelError(f"{where}: a {kind} question needs choices")
        if kind not in ("choice", "yesno") and choices:
            raise ModelError(f"{where}: a {kind} question has no choices")
        extract = raw.get("extract")
        if extract is not None and extract not in EXTRACTORS:
            raise ModelError(f"{where}.extract: unknown extractor {extract!r}")
        ask = _texts(raw.get("ask"), f"{where}.ask", required=False)
        short = _texts(raw.get("short"), f"{where}.short", required=False)
        if not ask and not short:
            raise ModelError(f"{where}: `ask` or `short` is required")
        questions[str(qid)] = Question(
            id=str(qid),
            kind=str(kind),
            ask=ask,
            short=short,
            labels=_texts(raw.get("label"), f"{where}.label"),
            choices=choices,
            free_text=bool(raw.get("free_text", False)),
            optional=bool(raw.get("optional", False)),
            skip_labels=_texts(raw.get("skip_label"), f"{where}.skip_label", required=False),
            ask_if={str(k): tuple(map(str, v)) for k, v in (raw.get("ask_if") or {}).items()},
            personal=bool(raw.get("personal", False)),
            extract=extract,
            advice=_advice(raw.get("advice"), choices, where),
            if_past=_if_past(raw.get("if_past"), choices, where),
            expects=_expects(raw.get("expects"), where),
            holds=_holds(raw.get("holds"), raw.get("expects"), where),
            keeps=_patterns(raw.get("keeps"), f"{where}.keeps"),
            if_none={str(k): str(v) for k, v in (raw.get("if_none") or {}).items()},
        )
    for question in questions.values():
        for other, choice in question.if_none.items():
            if other not in questions or questions[other].choice(choice) is None:
                raise ModelError(
                    f"questions.{question.id}.if_none: {other}={choice!r} is no question's choice"
                )
        for other, values in question.ask_if.items():
            if other not in questions:
                raise ModelError(f"questions.{question.id}.ask_if: unknown question {other!r}")
            known = {c.id for c in questions[other].choices}
            if set(values) - known:
                raise ModelError(
                    f"questions.{question.id}.ask_if.{other}: unknown choices "
                    f"{sorted(set(values) - known)}"
                )
    forms: dict[str, Form] = {}
    for report_type, raw in data["forms"].items():
        where = f"forms.{report_type}"
        if report_type not in routing.REPORT_TYPES:
            raise ModelError(f"{where}: not a report type of SPEC §2")
        qids = tuple(raw.get("questions") or ())
        for qid in qids:
            if qid not in questions:
                raise ModelError(f"{where}: unknown question {qid!r}")
        if "commune" not in qids:
            raise ModelError(f"{where}: every report needs the commune")
        for qid in qids:
            for other in questions[qid].ask_if:
                if other not in qids or qids.index(other) > qids.index(qid):
                    raise ModelError(f"{where}: {qid!r} depends on {other!r}, asked before it")
        optional = frozenset(raw.get("optional") or ())
        if optional - set(qids):
            raise ModelError(f"{where}.optional: not questions of this form")
        form_ask = {
            str(q): _texts(t, f"{where}.ask.{q}") for q, t in (raw.get("ask") or {}).items()
        }
        if set(form_ask) - set(qids):
            raise ModelError(f"{where}.ask: not questions of this form")
        forms[str(report_type)] = Form(
            report_type=str(report_type),
            questions=qids,
            optional=optional,
            ask=form_ask,
            flags=_flags(raw.get("flags"), f"{where}.flags"),
            danger_category=str(raw.get("danger_category") or "help_call"),
            related=tuple(map(str, raw.get("related") or ())),
        )
    missing = set(routing.REPORT_TYPES) - set(forms)
    if missing:
        raise ModelError(f"no form for report types: {sorted(missing)}")
    for form in forms.values():
        if len(form.related) < ALTERNATIVES or not set(form.related) <= set(forms) - {
            form.report_type
        }:
            raise ModelError(
                f"forms.{form.report_type}.related: {ALTERNATIVES} other report types expected"
            )
    channel_fields = {
        str(k): _texts(v, f"channel_fields.{k}")
        for k, v in (data.get("channel_fields") or {}).items()
    }
    if set(channel_fields) & set(questions):
        raise ModelError("channel_fields: a question's id cannot be a channel field")
    confirmation = _choices(data.get("confirmation"), {}, "confirmation")
    if {c.id for c in confirmation} != set(CONFIRMATION_CHOICES):
        raise ModelError(f"confirmation: the choices are {', '.join(CONFIRMATION_CHOICES)}")
    return Model(questions, forms, channel_fields, confirmation)


@lru_cache(maxsize=1)
def model() -> Model:
    """The report model of reports/model.yml (loaded once)."""
    with MODEL_FILE.open(encoding="utf-8") as fh:
        return parse_model(yaml.safe_load(fh))


def alternatives(chosen: str, ranking: Iterable[tuple[str, float]]) -> list[str]:
    """The other report types offered under the one understood (``ALTERNATIVES`` of them): the
    classifier's next likeliest at or above ``ALTERNATIVE_FLOOR``, then ``chosen``'s related
    types. ``ranking``: (intent, confidence), likeliest first; intents that are no report type
    are passed over."""
    forms = model().forms
    likely = [
        name
        for name, confidence in ranking
        if name in forms and name != chosen and confidence >= ALTERNATIVE_FLOOR
    ]
    related = forms[chosen].related if chosen in forms else ()
    return list(dict.fromkeys([*likely, *related]))[:ALTERNATIVES]
