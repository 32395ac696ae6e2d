"""Guided mode: a report made with big buttons, one plain question per turn, without Rasa.

For seniors and anyone who prefers buttons, for German, Dutch, Italian and Spanish speakers, and
whenever Rasa is down (degraded mode). The questions, their buttons, the answers understood when
they are typed ("tous les jours", "oui"), the date and OTV checks, the routing flags and the ticket
fields all come from the report model (``reports``): the same answers give the same ticket as in
the chat, on Telegram or through Open311.

The state machine is pure: :func:`handle` takes the state of one conversation and a button
payload or a typed text, updates the state and returns the replies. Filing is left to the caller
(the gateway, single writer of the ticket store): when :attr:`Outcome.file` is set, it files
:func:`build_report` and answers with :func:`filed` or :func:`filing_failed`.

Every question offers "Retour" (back one question) and "Parler à quelqu'un" (the contact of the
competent unit from the routing data, never invented). The menu offers "Écrire librement" to go
back to the assistant that understands free text (when it is available).

Payloads (all under 64 bytes, as Telegram's callback data must be)::

    /mode_guide             enter the guided mode (re-asks the current question if a report is open)
    /guide:menu             the menu of report types
    /guide:type:<type>      start a report of that type
    /guide:a:<qid>:<value>  answer question <qid> (a choice id, __skip__, or an INSEE code for
                            the commune)
    /guide:h:<insee>        commune chosen for "Parler à quelqu'un"
    /guide:back  /guide:human  /guide:quit  /guide:send  /guide:cancel
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import reports
import routing
import safety
from reports import communes, confirmation, otv
from reports.model import SKIP, Question
from routing.normalize import fold
from webhook import replies
from webhook.replies import Button, Reply
from webhook.store.tickets import NewReport, conversation_key

logger = logging.getLogger(__name__)

ENTER = "/mode_guide"
PREFIX = "/guide:"
P_MENU = "/guide:menu"
P_BACK = "/guide:back"
P_HUMAN = "/guide:human"
P_QUIT = "/guide:quit"
P_SEND = "/guide:send"
P_CANCEL = "/guide:cancel"
P_TYPE = "/guide:type:"
P_ANSWER = "/guide:a:"
P_HUMAN_COMMUNE = "/guide:h:"
# Payloads of the other parts of the product that mean the same thing in the guided mode.
RASA_MENU = ("/aide_menu", "/greet")
RASA_HUMAN = "/parler_humain"

REPORT_TYPES: tuple[str, ...] = tuple(routing.REPORT_TYPES)
MAX_TEXT_CHARS = 2000
MIN_TEXT_CHARS = 2
MIN_DESCRIPTION_CHARS = 3
MAX_COMMUNE_BUTTONS = communes.MAX_CHOICES
UNKNOWN_COMMUNE = "commune_inconnue"

Step = Literal["menu", "question", "summary", "done", "human"]


def _question(qid: str) -> Question:
    return reports.model().questions[qid]


# ----------------------------------------------------------------------------- state
@dataclass
class GuidedState:
    step: Step = "menu"
    report_type: str | None = None
    question: str | None = None
    answers: dict[str, str] = field(default_factory=dict)
    # each step back removes what one answer added (the answer and what was read from it)
    history: list[list[str]] = field(default_factory=list)
    commune_tries: int = 0
    # free text written before a report type was chosen (e.g. while Rasa was down): it becomes
    # the description of the next report, so nothing the citizen wrote is lost
    pending_description: str | None = None
    last_commune: str | None = None
    # the homonyms last offered on buttons (INSEE codes): a typed postal code or département
    # tells one apart ("celle du Jura")
    commune_choices: list[str] = field(default_factory=list)
    # the last typed answer (None after a tap): what a question keeps of the message before it
    # ("oui, plutôt le soir" then the number alone)
    last_typed: str | None = None
    # where "Parler à quelqu'un" returns to
    human_return: Step = "menu"
    human_tries: int = 0
    # "Écrire librement" is offered only when the free-text assistant is available
    free_writing: bool = True

    @property
    def in_report(self) -> bool:
        return self.step in ("question", "summary") or (
            self.step == "human" and self.human_return in ("question", "summary")
        )


@dataclass
class Outcome:
    replies: list[Reply] = field(default_factory=list)
    file: bool = False  # the caller files build_report(state) and answers filed()/filing_failed()
    leave: bool = False  # back to the free-text assistant
    # "Envoyer" with no report open: the caller shows the confirmation of the report this
    # conversation filed last, when there is one (the first answer was lost)
    confirm_again: bool = False


def is_guided_payload(payload: str) -> bool:
    return payload == ENTER or payload.startswith(PREFIX)


# ----------------------------------------------------------------------------- texts
def _t(key: str, lang: str, **values: Any) -> str:
    return replies.message(key, lang, **values)


def type_label(report_type: str, lang: str) -> str:
    return _t(f"g_t_{report_type}", lang)


def _back_button(lang: str) -> Button:
    return Button(title=_t("g_btn_back", lang), payload=P_BACK)


def _human_button(lang: str) -> Button:
    return Button(title=_t("g_btn_human", lang), payload=P_HUMAN)


def _nav(lang: str) -> list[Button]:
    return [_back_button(lang), _human_button(lang)]


def _optional(state: GuidedState, qid: str) -> bool:
    assert state.report_type is not None
    return reports.model().is_optional(state.report_type, qid)


# ----------------------------------------------------------------------------- replies
def menu_reply(state: GuidedState, lang: str, text_key: str = "g_menu") -> Reply:
    buttons = [Button(title=type_label(t, lang), payload=P_TYPE + t) for t in REPORT_TYPES]
    buttons.append(_human_button(lang))
    if state.free_writing:
        buttons.append(Button(title=_t("g_btn_free", lang), payload=P_QUIT))
    return Reply(text=_t(text_key, lang), buttons=buttons)


def _question_reply(state: GuidedState, lang: str, prefix: str | None = None) -> Reply:
    assert state.report_type is not None and state.question is not None
    question = _question(state.question)
    text = reports.model().ask_text(state.report_type, question.id, lang, short=True)
    if prefix:
        text = f"{prefix}\n{text}"
    buttons = [
        Button(title=c.label(lang), payload=f"{P_ANSWER}{question.id}:{c.id}")
        for c in question.choices
    ]
    if _optional(state, question.id):
        buttons.append(
            Button(title=question.skip_label(lang), payload=f"{P_ANSWER}{question.id}:{SKIP}")
        )
    if question.kind == "commune" and state.commune_tries > 0:
        buttons.append(
            Button(
                title=_t("g_o_commune_inconnue", lang),
                payload=f"{P_ANSWER}commune:{UNKNOWN_COMMUNE}",
            )
        )
    return Reply(text=text, buttons=[*buttons, *_nav(lang)])


def _answer_label(qid: str, value: str, lang: str) -> str:
    if _question(qid).kind == "commune":
        if value == UNKNOWN_COMMUNE:
            return _t("g_o_commune_inconnue", lang)
        commune = routing.get_engine().commune(value)
        return communes.display_name(commune) if commune else value
    return reports.display(qid, value, lang)


def summary_reply(state: GuidedState, lang: str) -> Reply:
    assert state.report_type is not None
    lines = [f"• {_t('g_f_report_type', lang)} : {type_label(state.report_type, lang)}"]
    for qid in reports.applicable(state.report_type, state.answers):
        value = state.answers.get(qid)
        if value is None:
            continue
        lines.append(f"• {reports.label(qid, lang)} : {_answer_label(qid, value, lang)}")
    return Reply(
        text=_t("g_summary", lang, summary="\n".join(lines)),
        buttons=[
            Button(title=_t("g_btn_send", lang), payload=P_SEND),
            _back_button(lang),
            Button(title=_t("g_btn_cancel", lang), payload=P_CANCEL),
            _human_button(lang),
        ],
    )


def _emergency(report_type: str, lang: str) -> Reply:
    category = reports.model().forms[report_type].danger_category
    message = safety.emergency_message(safety.confirmed(category, lang), lang)
    # The report goes on right below: the emergency reply's own buttons are not needed.
    return Reply(text=message["text"])


# ----------------------------------------------------------------------------- transitions
def start(state: GuidedState, lang: str, intro_key: str | None = "g_intro") -> list[Reply]:
    """Enter the guided mode: the menu (or the open report's current question)."""
    out: list[Reply] = []
    if intro_key:
        out.append(Reply(text=_t(intro_key, lang)))
    out.extend(current(state, lang))
    return out


def current(state: GuidedState, lang: str) -> list[Reply]:
    """What to show for the current step (used to re-ask)."""
    if state.step == "question":
        return [_question_reply(state, lang)]
    if state.step == "summary":
        return [summary_reply(state, lang)]
    if state.step == "human":
        return [_human_question(lang)]
    state.step = "menu"
    return [menu_reply(state, lang)]


def _to_menu(state: GuidedState) -> None:
    state.step = "menu"
    state.report_type = None
    state.question = None
    state.answers = {}
    state.history = []
    state.commune_tries = 0


def _start_type(state: GuidedState, report_type: str, lang: str) -> list[Reply]:
    _to_menu(state)
    state.report_type = report_type
    if state.pending_description and "description" in reports.model().forms[report_type].questions:
        description = state.pending_description
        state.pending_description = None
        return _record(state, "description", description, lang)
    return _advance(state, lang)


def _advance(state: GuidedState, lang: str, prefix: list[Reply] | None = None) -> list[Reply]:
    assert state.report_type is not None
    out = list(prefix or [])
    qid = reports.next_missing(state.report_type, state.answers)
    if qid is None:
        state.step = "summary"
        state.question = None
        out.append(summary_reply(state, lang))
        return out
    state.step = "question"
    state.question = qid
    out.append(_question_reply(state, lang))
    return out


def _record(
    state: GuidedState,
    qid: str,
    value: str,
    lang: str,
    also: Mapping[str, str] | None = None,
    replace: Mapping[str, str] | None = None,
) -> list[Reply]:
    """Store an answer (and what it also says, and what it changes: "non" to "your number?"
    means not to be contacted), check the OTV rules, ask the next question."""
    assert state.report_type is not None
    added = [qid]
    state.answers[qid] = value
    for other, other_value in (replace or {}).items():
        state.answers[other] = other_value
    for other, other_value in (also or {}).items():
        if state.answers.get(other) in (None, ""):
            state.answers[other] = other_value
            added.append(other)
    if qid == "description" and value != SKIP:
        today = reports.today()
        for other, other_value in reports.extract(state.report_type, value, today).items():
            if state.answers.get(other) in (None, "") and other != "description":
                state.answers[other] = other_value
                added.append(other)
    state.history.append(added)
    prefix: list[Reply] = []
    question = _question(qid)
    choice = question.choice(value)
    if choice is not None and choice.sets.get("danger"):
        prefix.append(_emergency(state.report_type, lang))
    # what to do at once ("call your bank now"), for this answer and those read with it
    prefix.extend(
        Reply(text=said) for said in reports.advice({q: state.answers[q] for q in added}, lang)
    )
    if question.kind == "commune":
        state.commune_tries = 0
        state.commune_choices = []
        if value != UNKNOWN_COMMUNE:
            state.last_commune = value
    if state.report_type == "absence_vacances":
        prefix.extend(_check_absence(state, lang))
    return _advance(state, lang, prefix)


def _check_absence(state: GuidedState, lang: str) -> list[Reply]:
    """OTV rules of the competent force: what breaks one is said and asked again."""
    answers = dict(state.answers)
    if answers.get("commune") == UNKNOWN_COMMUNE:
        answers.pop("commune")
    out = []
    forget: set[str] = set()
    for key, params in otv.problems(answers, reports.today()):
        out.append(Reply(text=reports.problem_text(key, lang, **params)))
        forget.update(otv.answers_to_forget(key))
    for qid in forget:
        state.answers.pop(qid, None)
    if forget:
        state.history = [[q for q in step if q not in forget] for step in state.history]
        state.history = [step for step in state.history if step]
    return out


def _back(state: GuidedState, lang: str) -> list[Reply]:
    if state.step == "human":
        state.step = state.human_return
        return current(state, lang)
    if state.step in ("question", "summary") and state.history:
        last = state.history.pop()
        for qid in last:
            state.answers.pop(qid, None)
        # answers given before the one we go back to stay; later ones cannot exist
        state.step = "question"
        state.question = last[0]
        state.commune_tries = 0
        return [_question_reply(state, lang)]
    _to_menu(state)
    return [menu_reply(state, lang)]


def _match_title(text: str, buttons: list[Button]) -> str | None:
    wanted = fold(text)
    if not wanted:
        return None
    for button in buttons:
        if fold(button.title) == wanted:
            return button.payload
    return None


def _commune_button(commune: routing.Commune, payload_prefix: str) -> Button:
    return Button(title=communes.button_title(commune), payload=f"{payload_prefix}{commune.insee}")


def _answer_commune(state: GuidedState, text: str, lang: str) -> list[Reply]:
    engine = routing.get_engine()
    offered = [c for c in map(engine.commune, state.commune_choices) if c is not None]
    state.commune_choices = []
    found = communes.resolve_among(text, offered)
    if found.found is not None:
        return _record(state, "commune", found.found.insee, lang)
    state.commune_tries += 1
    if found.ambiguous or offered:
        # several communes of that name; or, typed at the homonyms' buttons, an answer that
        # names none of them ("non", "aucune"): how to name another, the buttons again
        shown = (found.communes if found.ambiguous else tuple(offered))[:MAX_COMMUNE_BUTTONS]
        state.commune_choices = [c.insee for c in shown]
        buttons = [_commune_button(c, f"{P_ANSWER}commune:") for c in shown]
        buttons.append(
            Button(
                title=_t("g_o_commune_inconnue", lang),
                payload=f"{P_ANSWER}commune:{UNKNOWN_COMMUNE}",
            )
        )
        if not found.ambiguous:
            text_shown = reports.problem_text("commune_not_offered", lang)
        elif offered:
            # the same name typed again: what the numbers in brackets are, other ways to say it
            text_shown = reports.problem_text("commune_homonyms", lang)
        else:
            text_shown = _t("g_commune_ambiguous", lang)
        return [Reply(text=text_shown, buttons=[*buttons, *_nav(lang)])]
    return [_question_reply(state, lang, prefix=_t("g_commune_not_found", lang))]


def _answer_text(state: GuidedState, text: str, lang: str) -> Outcome:
    assert state.report_type is not None and state.question is not None
    question = _question(state.question)
    earlier, state.last_typed = state.last_typed, " ".join(text.split())[:MAX_TEXT_CHARS]
    shown = _question_reply(state, lang)
    payload = _match_title(text, shown.buttons)
    if payload is not None:
        return _handle_payload(state, payload, lang)
    if question.id not in ("description", "danger_now") and _cry_for_help(text, lang):
        # "j'en peux plus", "il a sorti un couteau": the turn has given the emergency numbers
        # first; this is no answer — nothing is stored, the same question waits
        return Outcome([_question_reply(state, lang)])
    if question.kind == "commune":
        return Outcome(_answer_commune(state, text, lang))
    value = " ".join(text.split())[:MAX_TEXT_CHARS]
    minimum = MIN_DESCRIPTION_CHARS if question.id == "description" else MIN_TEXT_CHARS
    if question.kind == "text" and len(value) < minimum:
        return Outcome([_question_reply(state, lang, prefix=_t("g_text_too_short", lang))])
    corrected = reports.corrections(
        state.report_type, value, state.answers, reports.today(), asking=question.id
    )
    if corrected:
        # "non en fait c'était un faux policier": an earlier answer is corrected and said back,
        # then the next question (as in the chat, actions/report_actions.py)
        said = reports.correction_text(corrected, lang, before=state.answers)
        state.answers.update(corrected)
        return Outcome(_advance(state, lang, [Reply(text=said)]))
    answer = reports.read_answer(
        question,
        value,
        optional=_optional(state, question.id),
        today=reports.today(),
        earlier=earlier if question.keeps else None,
    )
    if not answer.ok:
        key, description = reports.refused(
            state.report_type, answer, state.answers.get("description")
        )
        if description is not None:  # facts typed at a choice question: kept, not lost
            state.answers["description"] = description
        problem = reports.problem_text(key, lang)
        return Outcome([_question_reply(state, lang, prefix=problem)])
    return Outcome(
        _record(
            state, question.id, str(answer.value), lang, also=answer.values, replace=answer.replaces
        )
    )


def _cry_for_help(text: str, lang: str) -> bool:
    """A danger or distress written instead of an answer (the rules decide; the danger model
    alone does not judge answers, as in the chat)."""
    assessment = safety.assess(text, lang)
    return assessment.immediate_danger and not assessment.model_alone


def _answer_payload(state: GuidedState, qid: str, value: str, lang: str) -> list[Reply]:
    if state.step != "question" or state.question != qid or state.report_type is None:
        # a button of an earlier question: show the current step again
        return current(state, lang)
    question = _question(qid)
    if question.kind == "commune":
        if value == UNKNOWN_COMMUNE or routing.get_engine().commune(value) is not None:
            return _record(state, qid, value, lang)
        return current(state, lang)
    if question.choice(value) is not None or (value == SKIP and _optional(state, qid)):
        return _record(state, qid, value, lang)
    return current(state, lang)


# ----------------------------------------------------------------------------- human contact
def _human_question(lang: str) -> Reply:
    return Reply(text=_t("g_human_commune", lang), buttons=_nav(lang))


def _human_contacts(state: GuidedState, insee: str | None, lang: str) -> Reply:
    """Contacts of the competent units of the commune, from the routing data only."""
    engine = routing.get_engine()
    lines: list[str] = []
    agency_ids: list[str] = []
    if insee is not None and engine.commune(insee) is not None:
        if state.report_type is not None and state.in_report:
            decision = engine.decide(state.report_type, insee)
            agency_ids.extend(d.agency_id for d in decision.primary)
        agency_ids.extend(a for a in engine.force_agencies(insee) if a not in agency_ids)
    for agency_id in agency_ids:
        agency = engine.agency(agency_id)
        lines.append(_t("g_human_unit", lang, name=agency.name))
        if agency.phone:
            lines.append(_t("g_human_phone", lang, phone=agency.phone))
        else:
            lines.append(_t("g_human_no_phone", lang))
        if agency.hours:
            lines.append(_t("g_human_hours", lang, hours=agency.hours))
        if agency.address:
            lines.append(_t("g_human_address", lang, address=agency.address))
        lines.append("")
    if not agency_ids:
        lines.append(_t("g_human_unknown", lang))
    lines.append(_t("g_human_emergency", lang))
    return Reply(text="\n".join(lines).strip())


def _human(state: GuidedState, lang: str) -> list[Reply]:
    insee = state.answers.get("commune") or state.last_commune
    if insee and insee != UNKNOWN_COMMUNE:
        return [_human_contacts(state, insee, lang), *current(state, lang)]
    if state.step != "human":
        state.human_return = state.step
    state.step = "human"
    state.human_tries = 0
    return [_human_question(lang)]


def _human_done(state: GuidedState, insee: str | None, lang: str) -> list[Reply]:
    state.step = state.human_return
    if insee:
        state.last_commune = insee
    return [_human_contacts(state, insee, lang), *current(state, lang)]


def _human_text(state: GuidedState, text: str, lang: str) -> Outcome:
    payload = _match_title(text, _human_question(lang).buttons)
    if payload is not None:
        return _handle_payload(state, payload, lang)
    found = communes.resolve(text)
    if found.found is not None:
        return Outcome(_human_done(state, found.found.insee, lang))
    state.human_tries += 1
    if found.ambiguous:
        buttons = [
            _commune_button(c, P_HUMAN_COMMUNE) for c in found.communes[:MAX_COMMUNE_BUTTONS]
        ]
        return Outcome(
            [Reply(text=_t("g_commune_ambiguous", lang), buttons=[*buttons, *_nav(lang)])]
        )
    if state.human_tries >= 2:
        return Outcome(_human_done(state, None, lang))
    text_key = f"{_t('g_commune_not_found_short', lang)}\n{_t('g_human_commune', lang)}"
    return Outcome([Reply(text=text_key, buttons=_nav(lang))])


# ----------------------------------------------------------------------------- entry point
def handle(
    state: GuidedState, lang: str, *, payload: str | None = None, text: str | None = None
) -> Outcome:
    """One citizen turn in the guided mode."""
    if payload is not None:
        state.last_typed = None  # a tap: the next answer keeps nothing of an older one
        return _handle_payload(state, payload, lang)
    return _handle_text(state, text or "", lang)


def _handle_payload(state: GuidedState, payload: str, lang: str) -> Outcome:
    if payload == ENTER:
        return Outcome(start(state, lang) if not state.in_report else current(state, lang))
    if payload == P_MENU or payload in RASA_MENU:
        if state.step == "human":
            state.step = state.human_return
        _to_menu(state)  # like the assistant's "Menu": the open report is left
        return Outcome([menu_reply(state, lang)])
    if payload == P_QUIT:
        return Outcome([Reply(text=_t("g_free_writing", lang))], leave=True)
    if payload in (P_HUMAN, RASA_HUMAN):
        return Outcome(_human(state, lang))
    if payload == P_BACK:
        return Outcome(_back(state, lang))
    if payload == P_CANCEL:
        _to_menu(state)
        return Outcome([Reply(text=_t("g_cancelled", lang)), menu_reply(state, lang)])
    if payload == P_SEND:
        if state.step == "summary":
            return Outcome(file=True)
        return Outcome(current(state, lang), confirm_again=not state.in_report)
    if payload.startswith(P_TYPE):
        report_type = payload[len(P_TYPE) :]
        if report_type in REPORT_TYPES:
            return Outcome(_start_type(state, report_type, lang))
        return Outcome(current(state, lang))
    if payload.startswith(P_ANSWER):
        qid, _, value = payload[len(P_ANSWER) :].partition(":")
        return Outcome(_answer_payload(state, qid, value, lang))
    if payload.startswith(P_HUMAN_COMMUNE):
        insee = payload[len(P_HUMAN_COMMUNE) :]
        if state.step == "human" and routing.get_engine().commune(insee) is not None:
            return Outcome(_human_done(state, insee, lang))
        return Outcome(current(state, lang))
    # A report button of the free-text assistant ("/arnaque") starts that report here.
    if payload.startswith("/") and payload[1:] in REPORT_TYPES and not state.in_report:
        return Outcome(_start_type(state, payload[1:], lang))
    return Outcome(current(state, lang))


def _handle_text(state: GuidedState, text: str, lang: str) -> Outcome:
    if state.step == "question":
        return _answer_text(state, text, lang)
    if state.step == "human":
        return _human_text(state, text, lang)
    if state.step == "summary":
        payload = _match_title(text, summary_reply(state, lang).buttons)
        if payload is not None:
            return _handle_payload(state, payload, lang)
        return Outcome([Reply(text=_t("g_use_buttons", lang)), summary_reply(state, lang)])
    # menu or done: a report type typed by name, else keep the text as the description
    menu = menu_reply(state, lang)
    payload = _match_title(text, menu.buttons)
    if payload is not None:
        return _handle_payload(state, payload, lang)
    value = text.strip()[:MAX_TEXT_CHARS]
    if len(value) >= MIN_DESCRIPTION_CHARS:
        state.pending_description = value
        return Outcome([menu_reply(state, lang, text_key="g_menu_after_text")])
    return Outcome([Reply(text=_t("g_use_buttons", lang)), menu])


# ----------------------------------------------------------------------------- filing
def build_report(
    state: GuidedState, *, conversation_id: str, channel: str, language: str
) -> NewReport:
    """The report to file: the ticket fields and flags of the report model. Its idempotency
    key comes from the report itself (:func:`webhook.store.tickets.conversation_key`), not from
    memory: sent again after a lost answer or a restart, it is the same ticket."""
    assert state.step == "summary" and state.report_type is not None
    commune = state.answers.get("commune")
    report = NewReport(
        report_type=state.report_type,
        commune_insee=None if commune in (None, UNKNOWN_COMMUNE) else commune,
        fields=reports.ticket_fields(state.report_type, state.answers),
        channel=channel,
        language=language,
        conversation_id=conversation_id,
    )
    return replace(report, idempotency_key=conversation_key(report))


def filed(state: GuidedState, summary: Mapping[str, Any], lang: str) -> list[Reply]:
    """Replies once the report is filed (``summary``: tickets.ticket_summary)."""
    text = confirmation.filed_text(summary, lang)
    _to_menu(state)
    state.step = "done"
    buttons = [Button(title=_t("g_btn_new", lang), payload=P_MENU), _human_button(lang)]
    if state.free_writing:
        buttons.append(Button(title=_t("g_btn_free", lang), payload=P_QUIT))
    return [Reply(text=text, buttons=buttons)]


def filing_failed(state: GuidedState, lang: str) -> list[Reply]:
    """The ticket store did not answer: the summary stays, "Envoyer" tries again."""
    return [Reply(text=_t("g_filing_failed", lang)), summary_reply(state, lang)]


def wants_guided(text: str) -> bool:
    """A typed request for the guided mode ("je préfère les boutons", "mode simple")."""
    if len(text) > 80:  # a description that mentions a button is not a request
        return False
    folded = fold(text)
    return any(marker in folded for marker in _GUIDED_MARKERS)


_GUIDED_MARKERS = (
    "bouton",
    "mode guide",
    "mode simple",
    "menu simple",
    "plus simple",
    "questions simples",
    "je n arrive pas a ecrire",
    "j ecris mal",
    "button",
    "guided mode",
    "simple mode",
    "knopfe",
    "knoppen",
    "pulsanti",
    "botones",
)
