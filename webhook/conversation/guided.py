"""Guided mode: a report made with big buttons, one plain question per turn, without Rasa.

For seniors and anyone who prefers buttons, for German, Dutch, Italian and Spanish speakers, and
whenever Rasa is down (degraded mode). The state machine is pure: :func:`handle` takes the state
of one conversation and a button payload or a typed text, updates the state and returns the
replies. Filing is left to the caller (the gateway, single writer of the ticket store): when
:attr:`Outcome.file` is set, it files :func:`build_report` and answers with :func:`filed` or
:func:`filing_failed`.

Every question offers "Retour" (back one question) and "Parler à quelqu'un" (the contact of the
competent unit from the routing data, never invented). The menu offers "Écrire librement" to go
back to the assistant that understands free text (when it is available).

Payloads (all under 64 bytes, as Telegram's callback data must be)::

    /mode_guide             enter the guided mode (re-asks the current question if a report is open)
    /guide:menu             the menu of report types
    /guide:type:<type>      start a report of that type
    /guide:a:<qid>:<value>  answer question <qid> (an option id, or an INSEE code for the commune)
    /guide:h:<insee>        commune chosen for "Parler à quelqu'un"
    /guide:back  /guide:human  /guide:quit  /guide:send  /guide:cancel
"""

from __future__ import annotations

import logging
import secrets
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import routing
import safety
from webhook import replies
from webhook.replies import Button, Reply
from webhook.store.tickets import NewReport

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
MAX_COMMUNE_BUTTONS = 8
EMERGENCY_BASE = ("17", "112", "114")

Kind = Literal["choice", "text", "commune"]
Step = Literal["menu", "question", "summary", "done", "human"]


@dataclass(frozen=True)
class Question:
    id: str
    kind: Kind
    options: tuple[str, ...] = ()
    # text questions: an option that answers without typing ("Passer", "Ne pas me recontacter")
    skip_option: str | None = None
    min_chars: int = 2
    # ask only what is missing: skipped when this returns True for the answers so far
    skip_if: Callable[[Mapping[str, str]], bool] | None = None
    # the answer that means "danger now": the emergency numbers are given at once
    danger_option: str | None = None


YES_NO_DK = ("oui", "non", "nsp")
YES_NO = ("oui", "non")

_Q = Question
COMMUNE = _Q("commune", "commune")
DESCRIPTION = _Q("description", "text", min_chars=3)
DESCRIPTION_OPTIONAL = _Q("description", "text", skip_option="passer", min_chars=3)
DANGER = _Q("danger", "choice", YES_NO_DK, danger_option="oui")
LIEU = _Q("lieu", "text")

QUESTIONS: dict[str, tuple[Question, ...]] = {
    "harcelement": (
        _Q("victime", "choice", ("moi", "enfant", "autre_personne")),
        _Q("mineur", "choice", YES_NO_DK, skip_if=lambda a: a.get("victime") == "enfant"),
        _Q(
            "lieu_h",
            "choice",
            ("ecole", "internet", "rue", "domicile", "travail", "autre_lieu"),
        ),
        _Q("depuis", "choice", ("aujourdhui", "semaine", "mois", "longtemps")),
        COMMUNE,
        DESCRIPTION_OPTIONAL,
    ),
    "enfant_en_danger": (
        DANGER,
        DESCRIPTION,
        _Q("age_enfant", "choice", ("age_0_5", "age_6_10", "age_11_14", "age_15_17", "nsp")),
        COMMUNE,
        _Q(
            "relation",
            "choice",
            ("famille", "voisin", "professionnel", "autre_relation", "ne_pas_dire"),
        ),
    ),
    "violences_conjugales": (
        DANGER,
        COMMUNE,
        _Q("contact", "text", skip_option="aucun_contact"),
        DESCRIPTION_OPTIONAL,
    ),
    "arnaque": (
        _Q(
            "type_arnaque",
            "choice",
            (
                "faux_conseiller",
                "faux_policier",
                "faux_artisan",
                "sms_mail",
                "sentimentale",
                "coucou_maman",
                "autre_arnaque",
            ),
        ),
        _Q("argent_perdu", "choice", YES_NO_DK),
        _Q("senior", "choice", YES_NO_DK),
        COMMUNE,
        _Q("escroc", "text", skip_option="aucune_info"),
        DESCRIPTION_OPTIONAL,
    ),
    "personne_vulnerable": (
        DANGER,
        _Q("qui", "choice", ("personne_agee", "personne_handicapee", "autre_personne")),
        _Q("lieu_v", "choice", ("domicile", "etablissement", "autre_lieu")),
        DESCRIPTION,
        COMMUNE,
    ),
    "absence_vacances": (
        COMMUNE,
        _Q("adresse", "text", min_chars=5),
        _Q("depart", "text"),
        _Q("retour", "text"),
        _Q("joignable", "text", skip_option="ne_pas_dire"),
        _Q("alarme", "choice", YES_NO),
        _Q("cles", "choice", YES_NO),
        _Q("vehicule", "choice", YES_NO),
    ),
    "incivilite": (
        _Q(
            "type_incivilite",
            "choice",
            (
                "bruit",
                "dechets",
                "rodeo",
                "tags",
                "stationnement",
                "voisinage",
                "autre_incivilite",
            ),
        ),
        LIEU,
        _Q("frequence", "choice", ("une_fois", "plusieurs_fois", "tous_les_jours")),
        COMMUNE,
        DESCRIPTION_OPTIONAL,
    ),
    "vol_cambriolage": (
        _Q("en_cours", "choice", YES_NO, danger_option="oui"),
        _Q(
            "type_vol",
            "choice",
            ("cambriolage", "vol_vehicule", "vol_dans_vehicule", "vol_personne", "autre_vol"),
        ),
        _Q("quand", "text"),
        LIEU,
        COMMUNE,
        DESCRIPTION_OPTIONAL,
    ),
    "drogue_trafic": (
        LIEU,
        _Q("moment", "choice", ("journee", "soir", "nuit", "tout_le_temps")),
        COMMUNE,
        DESCRIPTION_OPTIONAL,
    ),
    "autre": (DESCRIPTION, COMMUNE),
}

# Helplines given with the emergency numbers when someone answers "danger now".
DANGER_HELPLINES: dict[str, tuple[str, ...]] = {
    "enfant_en_danger": (*EMERGENCY_BASE, "119"),
    "violences_conjugales": (*EMERGENCY_BASE, "3919"),
    "personne_vulnerable": (*EMERGENCY_BASE, "3977"),
}


def all_question_ids() -> set[str]:
    return {q.id for qs in QUESTIONS.values() for q in qs}


def all_option_ids() -> set[str]:
    ids = {o for qs in QUESTIONS.values() for q in qs for o in q.options}
    ids |= {q.skip_option for qs in QUESTIONS.values() for q in qs if q.skip_option}
    return ids | {"commune_inconnue"}


def _question(report_type: str, qid: str) -> Question:
    return next(q for q in QUESTIONS[report_type] if q.id == qid)


# ----------------------------------------------------------------------------- state
@dataclass
class GuidedState:
    step: Step = "menu"
    report_type: str | None = None
    question: str | None = None
    answers: dict[str, str] = field(default_factory=dict)
    history: list[str] = field(default_factory=list)
    commune_tries: int = 0
    # free text written before a report type was chosen (e.g. while Rasa was down): it becomes
    # the description of the next report, so nothing the citizen wrote is lost
    pending_description: str | None = None
    report_key: str = ""
    last_commune: str | None = None
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


def is_guided_payload(payload: str) -> bool:
    return payload == ENTER or payload.startswith(PREFIX)


# ----------------------------------------------------------------------------- texts
def _t(key: str, lang: str, **values: Any) -> str:
    return replies.message(key, lang, **values)


def option_label(option: str, lang: str) -> str:
    return _t(f"g_o_{option}", lang)


def type_label(report_type: str, lang: str) -> str:
    return _t(f"g_t_{report_type}", lang)


def fold(text: str) -> str:
    """Lower case, no accents, no punctuation at the ends: for matching typed answers."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    plain = plain.replace("’", "'")
    return " ".join(plain.split()).strip(" .!?,;:'\"")


def _back_button(lang: str) -> Button:
    return Button(title=_t("g_btn_back", lang), payload=P_BACK)


def _human_button(lang: str) -> Button:
    return Button(title=_t("g_btn_human", lang), payload=P_HUMAN)


def _nav(lang: str) -> list[Button]:
    return [_back_button(lang), _human_button(lang)]


# ----------------------------------------------------------------------------- replies
def menu_reply(state: GuidedState, lang: str, text_key: str = "g_menu") -> Reply:
    buttons = [Button(title=type_label(t, lang), payload=P_TYPE + t) for t in REPORT_TYPES]
    buttons.append(_human_button(lang))
    if state.free_writing:
        buttons.append(Button(title=_t("g_btn_free", lang), payload=P_QUIT))
    return Reply(text=_t(text_key, lang), buttons=buttons)


def _question_reply(state: GuidedState, lang: str, prefix: str | None = None) -> Reply:
    assert state.report_type is not None and state.question is not None
    question = _question(state.report_type, state.question)
    text = _t(f"g_q_{question.id}", lang)
    if prefix:
        text = f"{prefix}\n{text}"
    buttons = [
        Button(title=option_label(o, lang), payload=f"{P_ANSWER}{question.id}:{o}")
        for o in question.options
    ]
    if question.skip_option:
        buttons.append(
            Button(
                title=option_label(question.skip_option, lang),
                payload=f"{P_ANSWER}{question.id}:{question.skip_option}",
            )
        )
    if question.kind == "commune" and state.commune_tries > 0:
        buttons.append(
            Button(
                title=option_label("commune_inconnue", lang),
                payload=f"{P_ANSWER}commune:commune_inconnue",
            )
        )
    return Reply(text=text, buttons=[*buttons, *_nav(lang)])


def _answer_label(report_type: str, qid: str, value: str, lang: str) -> str:
    question = _question(report_type, qid)
    if question.kind == "commune":
        if value == "commune_inconnue":
            return option_label(value, lang)
        commune = routing.get_engine().commune(value)
        return f"{commune.name} ({commune.departement})" if commune else value
    if value in question.options or value == question.skip_option:
        return option_label(value, lang)
    return value


def summary_reply(state: GuidedState, lang: str) -> Reply:
    assert state.report_type is not None
    lines = [f"• {_t('g_f_report_type', lang)} : {type_label(state.report_type, lang)}"]
    for question in QUESTIONS[state.report_type]:
        value = state.answers.get(question.id)
        if value is None:
            continue
        label = _answer_label(state.report_type, question.id, value, lang)
        lines.append(f"• {_t('g_f_' + question.id, lang)} : {label}")
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
    lines = DANGER_HELPLINES.get(report_type, EMERGENCY_BASE)
    assessment = safety.DangerAssessment(immediate_danger=True, helplines=lines, language=lang)
    message = safety.emergency_message(assessment, lang)
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
    state.report_key = secrets.token_hex(8)
    if state.pending_description and any(q.id == "description" for q in QUESTIONS[report_type]):
        state.answers["description"] = state.pending_description
        state.pending_description = None
    return _advance(state, lang)


def _next_question(state: GuidedState) -> Question | None:
    assert state.report_type is not None
    for question in QUESTIONS[state.report_type]:
        if question.id in state.answers:
            continue
        if question.skip_if is not None and question.skip_if(state.answers):
            continue
        return question
    return None


def _advance(state: GuidedState, lang: str, prefix: list[Reply] | None = None) -> list[Reply]:
    out = list(prefix or [])
    question = _next_question(state)
    if question is None:
        state.step = "summary"
        state.question = None
        out.append(summary_reply(state, lang))
        return out
    state.step = "question"
    state.question = question.id
    out.append(_question_reply(state, lang))
    return out


def _record(state: GuidedState, question: Question, value: str, lang: str) -> list[Reply]:
    assert state.report_type is not None
    state.answers[question.id] = value
    state.history.append(question.id)
    prefix: list[Reply] = []
    if question.danger_option is not None and value == question.danger_option:
        prefix.append(_emergency(state.report_type, lang))
    if question.id == "argent_perdu" and value == "oui":
        prefix.append(Reply(text=_t("g_bank_steps", lang)))
    if question.kind == "commune":
        state.commune_tries = 0
        if value != "commune_inconnue":
            state.last_commune = value
    return _advance(state, lang, prefix)


def _back(state: GuidedState, lang: str) -> list[Reply]:
    if state.step == "human":
        state.step = state.human_return
        return current(state, lang)
    if state.step in ("question", "summary") and state.history:
        last = state.history.pop()
        state.answers.pop(last, None)
        # answers given before the one we go back to stay; later ones cannot exist
        state.step = "question"
        state.question = last
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


def _resolve_commune(query: str) -> list[routing.Commune]:
    try:
        result = routing.get_engine().resolve_commune(query[:100])
    except routing.RoutingError as exc:
        logger.warning("commune resolution failed: %s", type(exc).__name__)
        return []
    return list(result.candidates)


def _commune_button(commune: routing.Commune, payload_prefix: str) -> Button:
    postal = f", {commune.postal_codes[0]}" if commune.postal_codes else ""
    return Button(
        title=f"{commune.name} ({commune.departement}{postal})",
        payload=f"{payload_prefix}{commune.insee}",
    )


def _answer_commune(state: GuidedState, question: Question, text: str, lang: str) -> list[Reply]:
    candidates = _resolve_commune(text)
    if len(candidates) == 1:
        return _record(state, question, candidates[0].insee, lang)
    state.commune_tries += 1
    if candidates:
        buttons = [
            _commune_button(c, f"{P_ANSWER}commune:") for c in candidates[:MAX_COMMUNE_BUTTONS]
        ]
        buttons.append(
            Button(
                title=option_label("commune_inconnue", lang),
                payload=f"{P_ANSWER}commune:commune_inconnue",
            )
        )
        return [Reply(text=_t("g_commune_ambiguous", lang), buttons=[*buttons, *_nav(lang)])]
    reply = _question_reply(state, lang, prefix=_t("g_commune_not_found", lang))
    return [reply]


def _answer_text(state: GuidedState, text: str, lang: str) -> Outcome:
    assert state.report_type is not None and state.question is not None
    question = _question(state.report_type, state.question)
    shown = _question_reply(state, lang)
    payload = _match_title(text, shown.buttons)
    if payload is not None:
        return _handle_payload(state, payload, lang)
    if question.kind == "commune":
        return Outcome(_answer_commune(state, question, text, lang))
    if question.kind == "text":
        value = text.strip()[:MAX_TEXT_CHARS]
        if len(value) < question.min_chars:
            return Outcome([_question_reply(state, lang, prefix=_t("g_text_too_short", lang))])
        return Outcome(_record(state, question, value, lang))
    return Outcome([_question_reply(state, lang, prefix=_t("g_use_buttons", lang))])


def _answer_payload(state: GuidedState, qid: str, value: str, lang: str) -> list[Reply]:
    if state.step != "question" or state.question != qid or state.report_type is None:
        # a button of an earlier question: show the current step again
        return current(state, lang)
    question = _question(state.report_type, qid)
    if question.kind == "commune":
        if value == "commune_inconnue" or routing.get_engine().commune(value) is not None:
            return _record(state, question, value, lang)
        return current(state, lang)
    if value in question.options or value == question.skip_option:
        return _record(state, question, value, lang)
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
    if insee and insee != "commune_inconnue":
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
    candidates = _resolve_commune(text)
    if len(candidates) == 1:
        return Outcome(_human_done(state, candidates[0].insee, lang))
    state.human_tries += 1
    if candidates:
        buttons = [_commune_button(c, P_HUMAN_COMMUNE) for c in candidates[:MAX_COMMUNE_BUTTONS]]
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
        return Outcome(current(state, lang))
    if payload.startswith(P_TYPE):
        report_type = payload[len(P_TYPE) :]
        if report_type in QUESTIONS:
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
    if payload.startswith("/") and payload[1:] in QUESTIONS and not state.in_report:
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
    if len(value) >= DESCRIPTION.min_chars:
        state.pending_description = value
        return Outcome([menu_reply(state, lang, text_key="g_menu_after_text")])
    return Outcome([Reply(text=_t("g_use_buttons", lang)), menu])


# ----------------------------------------------------------------------------- filing
def report_flags(report_type: str, answers: Mapping[str, str]) -> dict[str, bool]:
    """Routing flags (routing.FLAGS) from the answers."""

    def yes(qid: str) -> bool:
        return answers.get(qid) == "oui"

    flags: dict[str, bool] = {}
    if report_type == "harcelement":
        flags["minor"] = answers.get("victime") == "enfant" or yes("mineur")
        flags["online"] = answers.get("lieu_h") == "internet"
    elif report_type == "enfant_en_danger":
        flags["minor"] = True
        flags["danger"] = yes("danger")
    elif report_type == "violences_conjugales":
        flags["danger"] = yes("danger")
    elif report_type == "arnaque":
        flags["money_lost"] = yes("argent_perdu")
        flags["senior"] = yes("senior")
        flags["online"] = answers.get("type_arnaque") in ("sms_mail", "sentimentale")
    elif report_type == "personne_vulnerable":
        flags["senior"] = True
        flags["danger"] = yes("danger")
    elif report_type == "incivilite":
        kind = answers.get("type_incivilite")
        flags["neighbour_conflict"] = kind == "voisinage"
        flags["offence"] = kind in ("rodeo", "tags")
        flags["repeated"] = answers.get("frequence") in ("plusieurs_fois", "tous_les_jours")
    elif report_type == "vol_cambriolage":
        flags["danger"] = yes("en_cours")
        flags["offence"] = True
    elif report_type == "drogue_trafic":
        flags["offence"] = True
    return flags


def build_report(
    state: GuidedState, *, conversation_id: str, channel: str, language: str
) -> NewReport:
    """The report to file, with the answers in French (the agencies' language)."""
    assert state.step == "summary" and state.report_type is not None
    fields: dict[str, str] = {}
    commune: str | None = None
    for question in QUESTIONS[state.report_type]:
        value = state.answers.get(question.id)
        if value is None:
            continue
        if question.kind == "commune":
            commune = None if value == "commune_inconnue" else value
            continue
        fields[question.id] = _answer_label(state.report_type, question.id, value, "fr")
    fields["saisie"] = "mode guidé"
    return NewReport(
        report_type=state.report_type,
        commune_insee=commune,
        fields=fields,
        channel=channel,
        language=language,
        conversation_id=conversation_id,
        idempotency_key=f"guided:{conversation_id}:{state.report_key}"[:200],
        flags=report_flags(state.report_type, state.answers),
    )


def _referral_lines(referrals: list[str], lang: str) -> list[str]:
    engine = routing.get_engine()
    lines: list[str] = []
    for helpline_id in referrals:
        try:
            helpline = engine.helpline(helpline_id)
        except (KeyError, routing.RoutingError):
            continue
        contact = helpline.number or helpline.url
        lines.append(f"• {helpline.name} : {contact}" if contact else f"• {helpline.name}")
    if lines:
        lines.insert(0, _t("g_referrals", lang))
    return lines


def filed(state: GuidedState, summary: Mapping[str, Any], lang: str) -> list[Reply]:
    """Replies once the report is filed (``summary``: tickets.ticket_summary)."""
    destinations = ", ".join(d["agency_name"] for d in summary.get("destinations", []))
    lines = [_t("g_filed", lang, reference=summary["reference"])]
    if destinations:
        lines.append(_t("g_filed_to", lang, destinations=destinations))
    else:
        lines.append(_t("g_filed_national", lang))
    lines.extend(_referral_lines(list(summary.get("referrals", [])), lang))
    _to_menu(state)
    state.step = "done"
    buttons = [Button(title=_t("g_btn_new", lang), payload=P_MENU), _human_button(lang)]
    if state.free_writing:
        buttons.append(Button(title=_t("g_btn_free", lang), payload=P_QUIT))
    return [Reply(text="\n".join(lines), buttons=buttons)]


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
    "je n'arrive pas a ecrire",
    "j'ecris mal",
    "button",
    "guided mode",
    "simple mode",
    "knopfe",
    "knoppen",
    "pulsanti",
    "botones",
)
