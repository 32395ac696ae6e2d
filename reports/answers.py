"""Reading and checking the citizen's answers, the same way in every channel.

An answer is a button's value (a choice id, SKIP) or typed text: "tous les jours", "oui merci",
"le 3 août", "06 12 34 56 78". :func:`read_answer` returns the value to store, or the reason it
was not understood (a key of reports/texts.yml ``problems``); nothing that does not answer the
question is stored.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from reports import dates
from reports.model import SKIP, Question, model
from routing.normalize import fold

MAX_TEXT = 2000
# Scammers' traces: French phone numbers, IBANs, web addresses.
PHONE_RE = re.compile(r"(?<!\d)(?:\+33\s?|0)[1-9](?:[\s.-]?\d{2}){4}(?!\d)")
# The citizen's own number to be called back: any country's (a tourist's "+44 (0)20 7946 0958"),
# 8 digits or more with spaces, dots, dashes or brackets between; PHONE_RE above stays French
# only, so that amounts and references in a scam's story are not taken for phone numbers.
CONTACT_PHONE_RE = re.compile(r"(?<!\d)\+?(?:\d[\s.\-()]{0,3}){8,15}(?!\d)")
IBAN_RE = re.compile(r"\b[A-Z]{2}\d{2}(?:\s?[A-Z0-9]{4}){3,7}(?:\s?[A-Z0-9]{1,4})?\b")
URL_RE = re.compile(r"\b(?:https?://|www\.)\S+|\b[\w-]+\.(?:com|fr|net|org|info|xyz|top|site)\b")
AGE_RE = re.compile(r"\b(\d{1,2})\s?(?:ans?|years?(?: old)?|yo|jahre?|anni|anos|jaar)\b")
# Typed answers to an optional free-text question that mean "nothing to say".
_NOTHING = frozenset(
    {
        "non", "rien", "aucun", "aucune", "pas de", "no", "none", "nothing", "nein",
        "je n en ai pas", "j en ai pas", "jen ai pas", "je n ai rien", "non rien",
        "pas de numero", "i have none", "i don t have any", "rien du tout", "je n en ai aucun",
        "je n en ai aucune", "j en ai aucun", "j en ai aucune", "je ne l ai pas", "je l ai pas",
        "j ai rien", "je n ai pas", "j ai pas", "j ai aucun", "j ai aucune", "je n ai aucun",
        "je n ai aucune", "nan", "nope", "i have nothing", "i don t have", "nothing at all",
        "keine", "nee", "niente", "nada", "non merci", "pas besoin", "ca ira", "no thanks",
        "non finalement", "finalement non", "non en fait", "en fait non", "no actually",
        "actually no",
        "no thank you", "nein danke", "nee dank u", "no grazie", "no gracias",
    }
)  # fmt: skip


# Words that only acknowledge ("oui merci", "ok d'accord", "thanks"): no answer to a question
# that asks for words (a place, a description), whatever was said before it in the same reply.
_ACKNOWLEDGEMENTS = frozenset(
    {
        "oui", "ouais", "ok", "okay", "okey", "merci", "beaucoup", "bcp", "d", "accord",
        "daccord", "dac", "bien", "tres", "super", "parfait", "entendu", "compris", "c", "est",
        "ca", "cool", "top", "vous", "a", "yes", "yeah", "yep", "thanks", "thank", "you", "much",
        "ja", "danke", "si", "grazie", "gracias", "bedankt", "dank", "u",
    }
)  # fmt: skip


_YES_WORDS = frozenset(
    {"oui", "ouais", "ok", "okay", "okey", "accord", "daccord", "dac", "yes", "yeah", "yep", "ja"}
)


def _acknowledges_only(text: str) -> bool:
    words = fold(text).split()
    return bool(words) and all(w in _ACKNOWLEDGEMENTS for w in words)


# Words that may open such an answer: "non, j'en ai pas", "bah non rien".
_NOTHING_OPENERS = frozenset(
    {"non", "no", "nan", "bah", "ben", "euh", "alors", "helas", "desole", "desolee"}
)


# What is no fact about the report, typed at a choice question: not understanding, refusing, a
# question to the bot. Such words are not added to the description.
_NOT_A_FACT = re.compile(
    r"\b(comprends? pas|compris|pige pas|pourquoi|c est a dire|c est quoi|quoi|veux pas|veut pas"
    r"|prefere pas|pas repondre|sais plus|sais pas|rappelle plus|souviens plus|understand|why"
    r"|what do you mean|don t want|rather not|not sure|no idea)\b"
)
# words of letters an answer needs to tell something more
NOTE_MIN_WORDS = 4


def tells_more(text: str) -> bool:
    """Typed words that answer no choice but tell facts: kept, not refused."""
    folded = fold(text)
    words = [w for w in folded.split() if any(ch.isalpha() for ch in w)]
    return len(words) >= NOTE_MIN_WORDS and "?" not in text and not _NOT_A_FACT.search(folded)


def refused(report_type: str, answer: Answer, description: Any) -> tuple[str, str | None]:
    """What to say of an answer that was not accepted (a key of reports/texts.yml
    ``problems``) and the description to store then (None: unchanged): the answer's ``note``
    added on a new line when the report has a description, else the plain problem."""
    problem = answer.problem or "empty"
    if answer.note is None:
        return problem, None
    if "description" not in model().forms[report_type].questions:
        return problem.removesuffix("_noted"), None
    return problem, add_to_description(description, answer.note)


def add_to_description(description: Any, text: str) -> str:
    """The report's description with words told later added on a new line (a skipped or
    missing description is replaced)."""
    before = "" if description in (None, "", SKIP) else str(description)
    told = text.strip()
    return (before + "\n" + told if before else told)[:MAX_TEXT]


def _says_nothing(question: Question, text: str) -> bool:
    """A typed answer that means "skip" (its button's label, "rien", "jen ai pas", "non j'en ai
    pas")."""
    folded = fold(text)
    labels = {fold(label) for label in question.skip_labels.values()}
    if folded in _NOTHING or folded in labels:
        return True
    words = folded.split()
    while len(words) > 1 and words[0] in _NOTHING_OPENERS:
        words = words[1:]
    rest = " ".join(words)
    return rest != folded and (rest in _NOTHING or rest in labels)


# A "no" that opens an answer about the scammer's traces, and words that still describe one
# ("non, il appelait en numéro masqué" is kept: the police want to know)
_TRACE_WORDS = re.compile(
    r"\b(numeros?|num|tel|telephone|portable|masque|site|lien|liens|mail|email|adresse|iban|rib"
    r"|compte|whatsapp|facebook|instagram|snap|telegram|sms|appel|appele|appelait|number|link"
    r"|website|account|hidden)\b"
)


def _denies_traces(text: str) -> bool:
    words = fold(text).split()
    return (
        bool(words)
        and words[0] in _NOTHING_OPENERS | {"pas", "aucun", "aucune", "rien", "nope"}
        and not _TRACE_WORDS.search(" ".join(words))
    )


@dataclass
class Answer:
    value: Any = None
    problem: str | None = None  # why it was not accepted: reports/texts.yml `problems`
    values: dict[str, Any] = field(default_factory=dict)  # other answers read from it
    # answers it changes even when already given ("non" to "À quel numéro ?": not contacted)
    replaces: dict[str, Any] = field(default_factory=dict)
    # words that answer no choice but tell the report more ("je suis sa fille, elle a donné ses
    # codes hier" to "a-t-elle été visée plusieurs fois ?"): added to its description
    # (:func:`refused`), the question asked again (problem ``*_noted``)
    note: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def read_choice(question: Question, text: str) -> str | None:
    """The choice a typed answer means (whole-word match of an id, label or synonym), or None.

    The longest match wins ("pas du tout" before "tout").
    """
    norm = fold(text or "")
    if not norm:
        return None
    best: tuple[int, str] | None = None
    for choice in question.choices:
        candidates = (
            fold(choice.id.replace("_", " ")),
            *choice.synonyms,
            *(fold(label) for label in choice.labels.values()),
        )
        for synonym in candidates:
            if synonym and re.search(rf"(?<!\w){re.escape(synonym)}(?!\w)", norm):
                if best is None or len(synonym) > best[0]:
                    best = (len(synonym), choice.id)
    return best[1] if best else None


def read_confirmation(text: str) -> str | None:
    """The answer a typed message gives to a report's summary (model.yml ``confirmation``):
    "envoyer", "modifier", "annuler" or None when it is unclear (nothing, or yes and no together).

    Whole-word matches; a match inside a longer match does not count ("n'envoyez pas" is not
    "envoyez"); "modifier" wins over the others: it files nothing and loses nothing.
    """

    norm = fold(text or "")
    spans: list[tuple[int, int, str]] = []
    for choice in model().confirmation:
        if any(symbol in (text or "") for symbol in choice.symbols):
            spans.append((-1, -1, choice.id))
        candidates = (fold(choice.id), *choice.synonyms, *(fold(x) for x in choice.labels.values()))
        for synonym in set(candidates):
            for match in re.finditer(rf"(?<!\w){re.escape(synonym)}(?!\w)", norm):
                spans.append((match.start(), match.end(), choice.id))
    kept = {
        cid
        for start, end, cid in spans
        if not any(s <= start and end <= e and (e - s) > (end - start) for s, e, _ in spans)
    }
    if "modifier" in kept:
        return "modifier"
    if kept == {"envoyer"} and _AMENDS_RE.search(norm):
        return "modifier"  # "en fait si, envoyez-moi un SMS au ...": a correction, not a yes
    return kept.pop() if len(kept) == 1 else None


# A "yes" to the summary that goes on to correct something: it changes an answer, it does not
# send ("en fait si, vous pouvez m'envoyer un SMS", "oui mais le matin seulement").
_AMENDS_RE = re.compile(
    r"(?<!\w)(en fait|finalement|plutot|je prefere|oui mais|si mais|ah si|actually|in fact|"
    r"i meant|yes but)(?!\w)"
)


# Words that cancel a report whatever question is pending ("non laissez tomber, il va voir mes
# messages"); a bare "non" is not one of them: it answers yes/no questions.
_CANCEL_RE = re.compile(
    r"(?<!\w)(laissez tomber|laisse tomber|annuler|annulez|annule|j abandonne|abandonner|"
    r"on arrete tout|cancel|forget it)(?!\w)"
)


def reads_as_cancel(text: str) -> bool:
    """A typed message that cancels the report: an explicit cancel word, and nothing that says
    "send" or "change" (see :func:`read_confirmation`)."""
    if (text or "").rstrip().endswith("?"):
        return False  # a question about something cancelled is no cancel
    return bool(_CANCEL_RE.search(fold(text or ""))) and read_confirmation(text) == "annuler"


def age_choice(question: Question, text: str) -> str | None:
    """The age bracket of an age written in the text ("8 ans", "14 year old", "8")."""
    norm = fold(text or "")
    match = AGE_RE.search(norm) or re.fullmatch(r"(\d{1,2})", norm)
    if not match:
        return None
    age = int(match.group(1))
    for choice in question.choices:
        if choice.ages and choice.ages[0] <= age <= choice.ages[1]:
            return choice.id
    return None


def find_traces(text: str) -> list[str]:
    """Phone numbers, IBANs and web addresses written in a message."""
    found: list[str] = []
    for pattern in (PHONE_RE, IBAN_RE, URL_RE):
        for match in pattern.finditer(text or ""):
            value = match.group(0).strip(".,;)")
            if value not in found:
                found.append(value)
    return found


def read_answer(
    question: Question,
    text: str = "",
    *,
    value: str | None = None,
    intent: str | None = None,
    optional: bool | None = None,
    today: dt.date,
    earlier: str | None = None,
) -> Answer:
    """Read the answer to ``question``: a button's ``value`` or a typed ``text``.

    ``intent``: the chat's understanding of a short answer (affirm/deny) for yes/no questions.
    ``optional``: whether the question may be skipped for this report type.
    ``earlier``: the citizen's message just before (typed, else None), for what the question
    ``keeps`` of it.
    """
    optional = question.optional if optional is None else optional
    in_dialogue = value is None  # words given by a channel (Open311) cannot be asked more
    if value is not None:
        if value == SKIP:
            return Answer(SKIP) if optional else Answer(problem="empty")
        if question.choice(value):
            return Answer(value)
        # not a choice id: a value given as words by a channel (Open311), read like typed text
        text = value
    cleaned = " ".join((text or "").split())[:MAX_TEXT]
    if question.kind in ("choice", "yesno"):
        found = read_choice(question, cleaned)
        if found is None and question.extract == "age":
            found = age_choice(question, cleaned)
        if found is None and question.kind == "yesno":
            found = {"affirm": "oui", "deny": "non"}.get(intent or "") or told_choice(
                question, cleaned
            )
        if (
            found is not None
            and question.free_text
            and question.extract != "age"
            and any(ch.isdigit() for ch in cleaned)
        ):
            return Answer(cleaned)  # "depuis 2 mois" says more than "Quelques semaines"
        if found is not None:
            return Answer(found, values=_told_along(question, found, cleaned))
        if question.free_text and len(fold(cleaned)) >= 2:
            return Answer(cleaned)
        if optional and _says_nothing(question, cleaned):
            return Answer(SKIP)
        problem = "yesno" if question.kind == "yesno" else "choice"
        if in_dialogue and tells_more(cleaned):
            return Answer(problem=problem + "_noted", note=cleaned)
        return Answer(problem=problem)
    if question.kind == "date":
        if question.extract == "dates":
            start, end = dates.parse_period(cleaned, today)
            if start is None:
                return Answer(problem="date")
            return Answer(start.isoformat(), values={"date_retour": end.isoformat()} if end else {})
        day = dates.parse_date(cleaned, today)
        return Answer(day.isoformat()) if day else Answer(problem="date")
    if question.kind == "commune":
        return Answer(problem="commune")  # resolved by reports.communes, not here
    if not fold(cleaned):
        return Answer(problem="empty")
    if (optional or question.if_none) and _says_nothing(question, cleaned):
        return Answer(SKIP, replaces=dict(question.if_none))
    if _acknowledges_only(cleaned):
        # "oui merci" is not a place nor a description; a yes to "Par quel moyen peut-on vous
        # recontacter ?" asks to be told what to write, not that it was not understood
        if not _YES_WORDS & set(fold(cleaned).split()):
            return Answer(problem="empty")
        return Answer(problem="phone" if question.expects == "phone" else "write_it")
    if question.extract == "traces":
        traces = find_traces(cleaned)
        if not traces and optional and _denies_traces(cleaned):
            return Answer(SKIP)  # "non c'est la première fois": no traces, a comment
        return Answer(", ".join(traces) if traces else cleaned)
    if question.expects and not holds_expected(question, cleaned):
        return Answer(problem=question.expects)  # "non il dort": no way to reach anyone
    if question.expects == "contact" and in_dialogue and not _reachable(cleaned):
        # "par SMS le matin": no number to send it to; asked once (told twice: kept as told)
        told_before = kept_from(question, earlier or "")
        if told_before is None or _reachable(earlier or ""):
            return Answer(problem="contact_number")
        return Answer(f"{cleaned}, {told_before}")
    kept = kept_from(question, earlier or "") if not _keeps(question, cleaned) else None
    return Answer(f"{cleaned}, {kept}" if kept else cleaned)


def _reachable(text: str) -> bool:
    """A phone number or an e-mail address."""
    return bool(CONTACT_PHONE_RE.search(text)) or "@" in text


# words that open a moment with it: "plutôt le soir", "seulement après 18 h"
_MOMENT_LEADS = frozenset(
    {"le", "la", "l", "les", "en", "de", "des", "du", "au", "a", "vers", "plutot", "seulement"}
    | {"uniquement", "surtout", "sauf", "pas", "jamais", "preference", "partir", "only", "in"}
    | {"the", "around", "after", "before", "not", "never", "mostly", "preferably", "par", "by"}
)
MAX_KEPT_WORDS = 30


def _keeps(question: Question, text: str) -> bool:
    folded = fold(text)
    return any(p.search(folded) for p in question.keeps)


def kept_from(question: Question, earlier: str) -> str | None:
    """What ``question`` keeps of the message before its answer: "oui appelez-moi plutôt le
    soir" to "Souhaitez-vous être recontacté ?" keeps "plutôt le soir" for "À quel numéro ?",
    so that a number typed alone next is stored with it. None when it holds nothing kept."""
    words = earlier.split()[:MAX_KEPT_WORDS]
    if not question.keeps or not words or earlier.lstrip().startswith("/"):
        return None
    for i in range(len(words)):
        rest = fold(" ".join(words[i:]))
        if any(p.match(rest) for p in question.keeps):
            while i > 0 and (
                fold(words[i - 1]) in _MOMENT_LEADS or fold(words[i - 1])[:1].isdigit()
            ):
                i -= 1
            return " ".join(words[i:]).strip(" ,.;:!") or None
    return None


def _told_along(question: Question, choice: str, text: str) -> dict[str, str]:
    """The answers of the questions this choice opens that the same message already holds:
    "yes by text please, +44 7700 900123" to "Souhaitez-vous être recontacté ?" gives the number
    too, instead of asking "À quel numéro ?" next."""
    told: dict[str, str] = {}
    for other in model().questions.values():
        if choice not in other.ask_if.get(question.id, ()) or other.expects is None:
            continue
        if holds_expected(other, text):
            number = CONTACT_PHONE_RE.search(text) if other.expects == "phone" else None
            told[other.id] = text[number.start() :] if number else text  # from the number on
    return told


def told_choice(question: Question, text: str) -> str | None:
    """The choice a yes/no question's cues read in a told answer, the same cues that read it in
    a story: "il a crevé mes pneus" to "Y a-t-il eu des menaces, des coups ou des
    dégradations ?" is a yes."""
    folded = fold(text)
    for choice in question.choices:
        if any(cue.search(folded) for cue in choice.cues):
            return choice.id
    return None


def holds_expected(question: Question, text: str) -> bool:
    """Whether a typed message holds what the question waits for — a phone number (``expects:
    phone``), a way to be reached (``expects: contact``: a number, a moment, a means), a trace
    (a number, an IBAN, a site) — whatever else it says: such a message answers the question and
    tells no new topic, however sure the classifier is ("c'est le 06 11 22 33 44 mais pas après
    20h" was taken for a holiday absence) — or the facts a yes/no question asks about (its cues:
    "il a crevé mes pneus" to "des dégradations ?"). Not a date: "on m'a cambriolé hier" at
    "Quand partez-vous ?" holds one and tells another story."""
    cleaned = text.strip()
    if question.kind == "yesno" and told_choice(question, cleaned):
        return True  # "il m'insulte et il a crevé mes pneus" tells the yes asked for
    if question.expects == "phone":
        return bool(CONTACT_PHONE_RE.search(cleaned))
    if question.expects == "contact":
        folded = fold(cleaned)
        return _reachable(cleaned) or any(p.search(folded) for p in question.holds)
    if question.extract == "traces":
        return bool(find_traces(cleaned))
    return False


# ---------------------------------------------------------------- which questions remain


def applicable(report_type: str, answers: dict[str, Any]) -> list[str]:
    """The questions of a form that apply given the answers so far (``ask_if``)."""
    m = model()
    result = []
    for qid in m.forms[report_type].questions:
        condition = m.questions[qid].ask_if
        if condition and not all(answers.get(k) in allowed for k, allowed in condition.items()):
            continue
        result.append(qid)
    return result


def next_missing(report_type: str, answers: dict[str, Any]) -> str | None:
    """The next question to ask: the first applicable one without an answer."""
    for qid in applicable(report_type, answers):
        if answers.get(qid) in (None, ""):
            return qid
    return None


def validate(report_type: str, answers: dict[str, Any]) -> list[str]:
    """Problems of a complete set of answers given at once (Open311, internal API): unknown
    questions and values that no question accepts. Empty when the answers are acceptable."""
    m = model()
    form = m.forms[report_type]
    problems = []
    for qid, value in answers.items():
        if qid not in form.questions or qid == "commune":
            problems.append(f"{qid}: not a question of {report_type}")
            continue
        question = m.questions[qid]
        if value == SKIP:
            if not m.is_optional(report_type, qid):
                problems.append(f"{qid}: cannot be skipped")
            continue
        if question.has_buttons and not question.free_text and not question.choice(value):
            problems.append(f"{qid}: unknown value")
        if question.kind == "date":
            try:
                dt.date.fromisoformat(str(value))
            except ValueError:
                problems.append(f"{qid}: not a date (YYYY-MM-DD)")
    return problems
