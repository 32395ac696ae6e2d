"""Custom actions of the Rasa action server (runs in .venv-rasa, Python 3.10).

The action server validates the forms and files reports. It never touches the ticket store: it
calls the gateway's internal API (the single writer) and imports only the pure ``routing`` and
``safety`` packages and the report model ``reports`` (questions, answers, flags, fields).
"""

from __future__ import annotations

import abc
import asyncio
import json
import logging
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

import reports
import routing
import safety
from reports import communes, confirmation, otv, reference, tracking
from reports.model import CHAT_LANGUAGES
from routing.normalize import fold
from safety.messages import helpline_lines

logger = logging.getLogger(__name__)

REPORT_TYPES = frozenset(routing.REPORT_TYPES)
# Load the reference data and the form spec when the action server starts, not on the first
# citizen's message; a broken data file stops the server at start-up with a clear error.
routing.get_engine()
reports.model()
otv.rules()
INSEE_PAYLOAD_PREFIX = "insee:"
# the intent of a homonym's button: /choisir_commune{"commune_insee": "insee:<code>"}
CHOOSE_COMMUNE = "/choisir_commune"
MAX_FIELD_CHARS = 2000
# Intents that never answer a form's question: the form steps aside and a rule answers them.
INTERRUPTING_INTENTS = frozenset(
    {
        "annuler",
        "parler_humain",
        "aide_menu",
        "statut_ticket",
        "hors_sujet",
        "corriger",
        "set_language",
    }
)
# Danger categories that tell the writer's own distress, not a danger to someone now: never
# taken as a "yes" to the form's "is someone in danger right now?".
DISTRESS_CATEGORIES = frozenset({"distress"})
TOPIC_CHANGE_CONFIDENCE = 0.85
# Questions any wording may answer: another topic is taken from them only when the message says
# it changes the story ("en fait c'est plus grave, on m'a volé...") or tells a long, sure one.
FREE_ANSWER_QUESTIONS = frozenset({"description", "commune", "personne", "lieu"})
NEW_TOPIC_MARKERS = re.compile(
    r"(?<!\w)(en fait|en realite|finalement|plutot|autre chose|plus grave|c est pas ca|"
    r"ce n est pas ca|je me suis trompe|actually|in fact|something else)(?!\w)"
)
NEW_TOPIC_WORDS = 10
# A question to the bot at a free question is an aside only when the classifier is this sure.
ASIDE_QUESTION_CONFIDENCE = 0.9
NEW_TOPIC_CONFIDENCE = 0.99
# An answer to a free-text question interrupts the form only when the classifier is this sure.
FREE_TEXT_INTERRUPT_CONFIDENCE = 0.7
# Slots that describe a report; reset together after filing or cancelling.
REPORT_SLOTS = (
    "report_type",
    *reports.model().all_question_ids(),
    "commune_insee",
    "commune_name",
    "danger_signal",
    "reask_count",
)


@lru_cache(maxsize=1)
def texts() -> dict[str, Any]:
    with (Path(__file__).parent / "report_texts.yml").open(encoding="utf-8") as fh:
        data: dict[str, Any] = yaml.safe_load(fh)
    return data


def text(section: str, key: str, language: str, **values: Any) -> str:
    table = texts()[section].get(language) or texts()[section]["fr"]
    template = table.get(key) or texts()[section]["fr"][key]
    return str(template).format(**values)


def gateway_url() -> str:
    return os.environ.get("TRANQUILLITE_GATEWAY_URL", "http://127.0.0.1:8080").rstrip("/")


def internal_token() -> str:
    return os.environ.get("TRANQUILLITE_INTERNAL_TOKEN", "")


def language_of(tracker: Tracker) -> str:
    slot = tracker.get_slot("language")
    if slot in CHAT_LANGUAGES:
        return str(slot)
    metadata = tracker.latest_message.get("metadata") or {}
    language = metadata.get("language")
    return language if language in CHAT_LANGUAGES else "fr"


def _entity(
    tracker: Tracker, name: str, entities: list[dict[str, Any]] | None = None
) -> str | None:
    if entities is None:
        entities = tracker.latest_message.get("entities") or []
    for entity in entities:
        if entity.get("entity") == name and entity.get("value") is not None:
            return str(entity["value"])
    return None


def resolve_commune(
    query: str,
    dispatcher: CollectingDispatcher,
    language: str,
    asked: bool = True,
    offered: list[routing.Commune] | None = None,
) -> dict[str, Any]:
    """Commune slots for a name, postal code or INSEE code; asks when it is ambiguous.

    ``asked=False``: a place the classifier spotted in a message that was not an answer to the
    commune question; when it is no commune, nothing is said (the question comes in its turn).
    ``offered``: the homonyms the bot's last message offered on buttons: a typed postal code or
    département tells one apart ("celle du Jura"); the same name typed again gets the buttons
    again with what the numbers in brackets are.
    """
    engine = routing.get_engine()
    empty: dict[str, Any] = {"commune": None, "commune_insee": None, "commune_name": None}
    query = query.strip()[:120]
    if not query:
        return empty
    if query.startswith(INSEE_PAYLOAD_PREFIX):
        commune = engine.commune(query[len(INSEE_PAYLOAD_PREFIX) :])
        candidates = [commune] if commune else []
    else:
        candidates = list(communes.resolve_among(query, offered or []).communes)
    again = bool(offered) and len(candidates) > 1
    if len(candidates) == 1:
        commune = candidates[0]
        return {
            "commune": commune.name,
            "commune_insee": commune.insee,
            "commune_name": communes.display_name(commune),
        }
    if not asked:
        # a name spotted in a story that is no single commune: nothing said now; several
        # communes of that name are asked with buttons when the commune question comes
        # (AskCommune), not beside the next question
        return empty
    if candidates:
        buttons = _commune_buttons(candidates)
        if again:
            # the same name typed again: what the numbers in brackets are, and other ways to say it
            text = reports.problem_text("commune_homonyms", language)
            dispatcher.utter_message(text=text, buttons=buttons)
        else:
            dispatcher.utter_message(response="utter_commune_ambiguous", buttons=buttons)
    elif offered:
        # "non", "aucune", "je sais pas" typed at the homonyms' buttons: not a commune named
        # « non », but none of these (or no choice yet): how to name another, the buttons again
        text = reports.problem_text("commune_not_offered", language)
        dispatcher.utter_message(text=text, buttons=_commune_buttons(offered))
    else:
        dispatcher.utter_message(response="utter_commune_not_found", commune=query[:80])
    # The question has just been asked in other words: the form does not repeat it.
    return {**empty, "commune_prompted": True}


def _commune_buttons(candidates: list[routing.Commune]) -> list[dict[str, str]]:
    return [
        {
            "title": communes.button_title(c),
            "payload": CHOOSE_COMMUNE
            + json.dumps({"commune_insee": INSEE_PAYLOAD_PREFIX + c.insee}, separators=(",", ":")),
        }
        for c in candidates[: communes.MAX_CHOICES]
    ]


def _offered_communes(tracker: Tracker) -> list[routing.Commune]:
    """The homonyms offered on buttons by the bot's messages just before the latest user
    message (none when that message was not the answer to them)."""
    engine = routing.get_engine()
    offered: list[routing.Commune] = []
    seen_user = False
    for event in reversed(tracker.events):
        kind = event.get("event")
        if kind == "user":
            if seen_user:
                break
            seen_user = True
        elif kind == "bot" and seen_user:
            for button in (event.get("data") or {}).get("buttons") or []:
                payload = str(button.get("payload") or "")
                if not payload.startswith(CHOOSE_COMMUNE):
                    continue
                try:
                    value = json.loads(payload[len(CHOOSE_COMMUNE) :])["commune_insee"]
                except (ValueError, KeyError, TypeError):
                    continue
                commune = engine.commune(str(value).removeprefix(INSEE_PAYLOAD_PREFIX))
                if commune is not None and commune not in offered:
                    offered.append(commune)
            if offered:
                break
    return offered


def _one_commune(name: str, dispatcher: CollectingDispatcher, language: str) -> dict[str, Any]:
    """The commune slots of a name spotted outside the commune question, when it is one
    commune; nothing otherwise (the commune question comes in its turn)."""
    resolved = resolve_commune(name, dispatcher, language, asked=False)
    return resolved if resolved.get("commune_insee") else {}


class ReportFormValidation(FormValidationAction, metaclass=abc.ABCMeta):
    """Validation of one report form (subclassed once per report type, see below)."""

    report_type = ""

    @abc.abstractmethod
    def name(self) -> str:
        """validate_<report type>_form"""

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        model = reports.model()
        form = model.forms[self.report_type]
        language = language_of(tracker)
        latest = tracker.latest_message or {}
        message = str(latest.get("text") or "")
        intent_info = latest.get("intent") or {}
        intent = intent_info.get("name")
        confidence = float(intent_info.get("confidence") or 0.0)
        is_payload = message.startswith("/")
        requested = tracker.get_slot("requested_slot")
        # The first run of this form: a new report, a change of topic, or a correction after
        # the summary (Rasa has already set active_loop when it calls us, so it cannot tell).
        starting = requested is None or tracker.get_slot("report_type") != self.report_type
        values: dict[str, Any] = {slot: tracker.get_slot(slot) for slot in REPORT_SLOTS}
        updates: dict[str, Any] = {}

        if starting:
            previous = tracker.get_slot("report_type")
            if previous and previous != self.report_type:
                # A change of topic: the answers about the former report are dropped, the
                # commune is kept (only missing facts are asked).
                kept = {"commune", "commune_insee", "commune_name", "danger_signal"}
                if is_payload:
                    kept.add("description")  # the topic was corrected with a button
                for slot in REPORT_SLOTS:
                    if slot not in kept:
                        updates[slot] = None
                values.update(updates)
            updates["report_type"] = self.report_type
            if not is_payload and message.strip() and intent in REPORT_TYPES:
                updates["description"] = message.strip()[:MAX_FIELD_CHARS]
                self._say_topic(dispatcher, latest, language)
            elif is_payload and not values.get("description"):
                # The type was picked from the low-confidence buttons: the message that was not
                # understood well enough is the description.
                unclear = _previous_unclear_message(tracker)
                if unclear:
                    # its facts too, from its own entities ("j'habite à Manosque" was asked)
                    story, entities = unclear
                    updates["description"] = story[:MAX_FIELD_CHARS]
                    updates.update(
                        self._spotted(story, tracker, values, dispatcher, language, entities)
                    )
            elif is_payload and previous and previous != self.report_type and values["description"]:
                # The topic was corrected with a button: the story already told is read again
                # for the new topic's facts ("il m'insulte": the victim is the writer)
                story = str(values["description"])
                entities = _user_entities(tracker, story)
                updates.update(
                    self._spotted(story, tracker, values, dispatcher, language, entities)
                )
            if not is_payload:
                updates.update(self._spotted(message, tracker, values, dispatcher, language))
        else:
            if message.startswith(_CORRECTION_PAYLOAD):
                # an answer to change chosen in the middle of the form ("pardon, je me suis
                # trompé"): forgotten, and the form asks the first missing answer again
                field = _entity(tracker, "champ")
                if field not in form.questions:
                    return [SlotSet("requested_slot", requested)]
                forget = forget_answer(field)
                merged = {**values, **{e["name"]: e["value"] for e in forget}}
                first_missing = reports.next_missing(self.report_type, merged)
                return [*forget, SlotSet("requested_slot", first_missing)]
            # "non en fait c'était un faux policier" corrects an earlier answer: no interruption
            # ("corriger" would ask which answer to change), no change of topic
            corrected = (
                reports.corrections(
                    self.report_type, message, values, reports.today(), asking=requested
                )
                if requested in form.questions and not is_payload
                else {}
            )
            if not corrected and self._interrupts(intent, confidence, requested, message, tracker):
                return []  # the form steps aside: a rule answers, then the form resumes
            other_topic = intent in REPORT_TYPES and intent != self.report_type
            tapped_topic = is_payload and _entity(tracker, "reponse") is None
            asked = model.questions.get(requested or "")
            # "sur whatsapp et par sms" answers "where?" (online) although it sounds like a scam;
            # a phone number answers "À quel numéro ?" whatever words come with it
            fits = bool(
                asked
                and (
                    (asked.choices and reports.read_choice(asked, message))
                    or (not is_payload and reports.holds_expected(asked, message))
                )
            )
            danger_now = bool(message) and not is_payload and _danger_in_answer(message, language)
            # a cry for help mid-form ("il est derrière moi, il a sorti un couteau") is no new
            # topic: the numbers, then the same question (the report goes on)
            typed_topic = (
                confidence >= TOPIC_CHANGE_CONFIDENCE
                and not danger_now
                and (
                    (not fits and requested not in FREE_ANSWER_QUESTIONS)
                    or _tells_new_topic(message, confidence)
                )
            )
            if other_topic and (tapped_topic or typed_topic) and not corrected:
                return []  # change of topic: the rule of the other report type takes over
            if danger_now and requested not in ("description", "danger_now"):
                # A cry for help (or distress) is not the answer to the question asked: it is
                # kept with the description and the question is asked again after the emergency
                # numbers — with those that fit this report (3919, 119...) if not shown yet.
                updates["description"] = reports.add_to_description(
                    values.get("description"), message
                )
                updates["reask_count"] = float((tracker.get_slot("reask_count") or 0) + 1)
                _fitting_numbers(dispatcher, message, language, form.danger_category, latest)
                spotted = _entity(tracker, "commune_insee") or _entity(tracker, "commune")
                if requested == "commune" and spotted:
                    # "il est là, il va me frapper, on est à Dole": the commune is kept
                    updates.update(_one_commune(spotted, dispatcher, language))
            elif corrected:
                # "non en fait c'était un faux policier": an earlier answer is corrected and
                # said back; the question asked is asked again (its "non" answered nothing)
                said = reports.correction_text(corrected, language, before=values)
                updates.update(corrected)
                dispatcher.utter_message(text=said)
            elif requested in form.questions:
                updates.update(
                    self._answer(requested, message, intent, tracker, dispatcher, language)
                )
                if requested not in updates or updates.get(requested) is None:
                    updates["reask_count"] = float((tracker.get_slot("reask_count") or 0) + 1)
                else:
                    updates["reask_count"] = 0.0
                    told = (
                        _spotted_commune(tracker, message, after_a_only=True)
                        if requested != "commune" and not is_payload
                        else None
                    )
                    if told and not values.get("commune_insee") and "commune" in form.questions:
                        # "chez elle, 3 impasse des Tilleuls à Sisteron" to "Où vit cette
                        # personne ?": the commune is not asked next (one commune only)
                        updates.update(_one_commune(told, dispatcher, language))
                    if requested == "danger_now" and updates[requested] == "oui":
                        # "yes, in danger now" (typed or tapped): the numbers that fit this
                        # report, in this very reply, before the next question
                        updates["danger_signal"] = True
                        _fitting_numbers(
                            dispatcher,
                            "" if is_payload else message,
                            language,
                            form.danger_category,
                            latest,
                        )
                    if requested == "description" and updates[requested] != reports.SKIP:
                        # what the description says is not asked again (as in the guided mode)
                        found = reports.extract(self.report_type, message, reports.today())
                        for qid, value in found.items():
                            if qid not in updates and not values.get(qid):
                                updates[qid] = value

        # Safety on every turn (SPEC §3): a danger written in the middle of a form is recorded
        # (routing uses it) and, when the gateway has not shown them already, the emergency
        # numbers are given before the next question.
        if message and not is_payload:
            assessment = safety.assess(message, language)
            if assessment.immediate_danger and (starting or not assessment.model_alone):
                # The danger model alone (no rule) gets the numbers shown, but it does not
                # answer for the citizen: the form's own question ("in danger now?", "is it
                # happening now?") decides the ticket's danger, as in the guided mode.
                if not assessment.model_alone:
                    updates["danger_signal"] = True
                distress_only = set(assessment.categories) <= DISTRESS_CATEGORIES
                if (
                    not assessment.model_alone
                    and "danger_now" in form.questions
                    and not values.get("danger_now")
                    and not updates.get("danger_now")
                    and not distress_only
                ):
                    updates["danger_now"] = "oui"
                metadata = latest.get("metadata") or {}
                if not metadata.get("safety_checked"):
                    dispatcher.utter_message(
                        text=safety.emergency_message(assessment, language)["text"]
                    )

        merged = {**values, **updates}
        self._check_absence(merged, updates, dispatcher, language)
        merged = {**values, **updates}
        for said in reports.advice(updates, language):  # "call your bank now..."
            dispatcher.utter_message(text=said)
        next_slot = reports.next_missing(self.report_type, merged)
        updates.setdefault("commune_prompted", False)
        events: list[EventType] = [SlotSet(k, v) for k, v in updates.items()]
        events.append(SlotSet("requested_slot", next_slot))
        return events

    def _say_topic(
        self, dispatcher: CollectingDispatcher, latest: dict[str, Any], language: str
    ) -> None:
        """The topic understood, in one short sentence, with a word of support where it fits,
        and the next likeliest topics as buttons: a wrong guess is corrected in one tap."""
        ranking = latest.get("intent_ranking") or []
        others = reports.alternatives(
            self.report_type,
            ((str(r.get("name")), float(r.get("confidence") or 0.0)) for r in ranking),
        )
        sentence = text(
            "texts",
            "topic_understood",
            language,
            report_type=text("report_types", self.report_type, language),
        )
        support = texts()["texts"].get(language, {}).get("support", {}).get(self.report_type)
        if support:
            sentence = f"{support} {sentence}"
        buttons = [
            {"title": text("report_types", name, language), "payload": f"/{name}"}
            for name in others
        ]
        dispatcher.utter_message(text=sentence, buttons=buttons)

    @staticmethod
    def _interrupts(
        intent: str | None,
        confidence: float,
        requested: str | None,
        message: str,
        tracker: Tracker,
    ) -> bool:
        """Does this message interrupt the form (cancel, help, status...) or answer it?"""
        if intent not in INTERRUPTING_INTENTS or _entity(tracker, "reponse"):
            return False
        if message.startswith("/"):
            return True  # a button or the gateway's language switch
        question = reports.model().questions.get(requested or "")
        if question is not None and question.choices and reports.read_choice(question, message):
            return False  # "je préfère rester anonyme" answers the question it was asked
        free_text = question is not None and (question.kind == "text" or question.free_text)
        if intent == "statut_ticket" and not reference.find(message):
            return False  # asking about a ticket needs its reference
        if free_text and intent == "hors_sujet":
            # any wording answers a free question, except a question to the bot ("c'est quoi
            # les horaires de la mairie ?"): answered by its rule, then the form asks again
            return confidence >= ASIDE_QUESTION_CONFIDENCE and _is_question(message)
        return not (free_text and confidence < FREE_TEXT_INTERRUPT_CONFIDENCE)

    # -------------------------------------------------------------- reading the answer

    def _answer(
        self,
        slot: str,
        message: str,
        intent: str | None,
        tracker: Tracker,
        dispatcher: CollectingDispatcher,
        language: str,
    ) -> dict[str, Any]:
        question = reports.model().questions[slot]
        if question.kind == "commune":
            query = _entity(tracker, "commune_insee") or message
            if query.startswith("/") and not query.startswith(CHOOSE_COMMUNE):
                return {}
            spotted = _entity(tracker, "commune")
            if spotted and not query.startswith("/") and not communes.resolve(query).communes:
                query = spotted  # "c'est à Forcalquier": the commune inside the sentence
            return resolve_commune(query, dispatcher, language, offered=_offered_communes(tracker))
        answer = reports.read_answer(
            question,
            message,
            value=_entity(tracker, "reponse"),
            intent=intent,
            optional=reports.model().is_optional(self.report_type, slot),
            today=reports.today(),
            earlier=_previous_user_text(tracker) if question.keeps else None,
        )
        if answer.problem:
            problem, description = reports.refused(
                self.report_type, answer, tracker.get_slot("description")
            )
            dispatcher.utter_message(text=reports.problem_text(problem, language))
            # facts typed at a choice question are kept with the description, not lost
            return {slot: None} if description is None else {slot: None, "description": description}
        return {slot: answer.value, **answer.values, **answer.replaces}

    def _spotted(
        self,
        message: str,
        tracker: Tracker,
        values: dict[str, Any],
        dispatcher: CollectingDispatcher,
        language: str,
        entities: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Facts already written in the first message: not asked again (``entities``: that
        message's, by default the latest message's)."""
        model = reports.model()
        form_questions = set(model.forms[self.report_type].questions)
        found: dict[str, Any] = {}
        commune = _entity(tracker, "commune_insee", entities) or _spotted_commune(
            tracker, message, entities, report_type=self.report_type
        )
        if commune and not values.get("commune_insee"):
            found.update(_one_commune(commune, dispatcher, language))
        victim = _entity(tracker, "victime", entities)
        if "victime" in form_questions and victim:
            choice = reports.read_choice(model.questions["victime"], victim)
            if choice:
                found["victime"] = choice
        age = _entity(tracker, "age", entities)
        if "age_enfant" in form_questions and age:
            bracket = reports.read_answer(
                model.questions["age_enfant"], age, today=reports.today()
            ).value
            if bracket:
                found["age_enfant"] = bracket
        for qid, value in reports.extract(self.report_type, message, reports.today()).items():
            if qid not in found and not values.get(qid):
                found[qid] = value
        return found

    # -------------------------------------------------------------- OTV rules

    def _check_absence(
        self,
        merged: dict[str, Any],
        updates: dict[str, Any],
        dispatcher: CollectingDispatcher,
        language: str,
    ) -> None:
        if self.report_type != "absence_vacances":
            return
        watched = {"commune_insee", "residence", "date_depart", "date_retour"}
        if not watched & set(updates):
            return
        for key, params in otv.problems(merged, reports.today()):
            dispatcher.utter_message(text=reports.problem_text(key, language, **params))
            # the answers that break the rule are asked again
            for qid in otv.answers_to_forget(key):
                updates[qid] = None


QUESTION_OPENERS = re.compile(
    r"^(c est quoi|qu est ce|est ce que|comment|pourquoi|quand est ce|quel|quels|quelle|"
    r"quelles|ou est|ou sont|combien|a quelle heure|what|how|why|when|where|which|is it|are)\b"
)


def _is_question(message: str) -> bool:
    """A question asked to the bot (a question mark, or a question's first words)."""
    return message.rstrip().endswith("?") or bool(QUESTION_OPENERS.search(fold(message)))


def _tells_new_topic(message: str, confidence: float) -> bool:
    """A message at a free question that tells another story, not the answer."""
    norm = fold(message)
    if NEW_TOPIC_MARKERS.search(norm):
        return True
    return confidence >= NEW_TOPIC_CONFIDENCE and len(norm.split()) >= NEW_TOPIC_WORDS


# a name right after a street word is the street's, not a commune ("8 chemin des Vignes")
_AFTER_STREET = re.compile(
    r"(?:rue|avenue|boulevard|chemin|place|impasse|allée|allee|route|quai|cours|square|"
    r"résidence|residence|lotissement)\s+(?:des|du|de la|de l'|de l’|de|d'|d’|la|le|les)?\s*$",
    re.IGNORECASE,
)
_BEFORE_COMMUNE = re.compile(
    r"(?:\bà|\ba|\bin|\bsur|\bde|\bnear|\bprès de|\bpres de|\bà côté de|\ba cote de)\s+$",
    re.IGNORECASE,
)
# in an answer to another question, only "à", "in": "la mère de Marie" names no commune
_AT_COMMUNE = re.compile(r"(?:\bà|\ba|\bin)\s+$", re.IGNORECASE)
# a commune after a street address is where it happened or where the home is ("au 8 chemin
# des Oliviers à Forcalquier"): preferred to any other name of the message
_AFTER_ADDRESS = re.compile(
    r"\b\d{1,4}\s*(?:bis|ter)?,?\s+(?:rue|avenue|av\.?|boulevard|bd|chemin|place|impasse|allée"
    r"|allee|route|quai|cours|square|lotissement|montée|montee|traverse)\b[^.;!?,\n]{0,60}?"
    r"(?:\bà|\ba|,)\s+$",
    re.IGNORECASE,
)
# where a holiday absence goes is not where the home is ("nous partons chez nos enfants à
# Lyon"): never taken as the commune of an absence (the question is asked instead)
_DESTINATION = re.compile(
    r"\b(?:chez (?:nos|mes|ses|leurs|les|notre|ma|mon|sa|son|leur) [\w'’-]+(?: [\w'’-]+)?"
    r"|(?:partons|partir|pars|part|partent|partirons|allons|aller|vais|va|vont|irons"
    r"|descendons|montons|rejoignons|rejoindre)(?: [\w'’-]+){0,4}"
    r"|en vacances|en voyage|en séjour|en sejour|destination)\s+(?:à|a|en|au|pour|vers)\s+$",
    re.IGNORECASE,
)


def _spotted_commune(
    tracker: Tracker,
    message: str,
    entities: list[dict[str, Any]] | None = None,
    after_a_only: bool = False,
    report_type: str | None = None,
) -> str | None:
    """The commune a message names: not a street's name; the one after an address first, then
    one after "à" (``entities``: the message's, by default the latest message's;
    ``after_a_only``: only a name after "à", "in"...: in an answer to another question, "chez
    elle, 3 impasse des Tilleuls à Sisteron"). In a holiday absence, never where the family
    goes ("chez nos enfants à Lyon")."""
    names: list[tuple[int, str]] = []
    if entities is None:
        entities = tracker.latest_message.get("entities") or []
    for entity in entities:
        if entity.get("entity") != "commune" or not entity.get("value"):
            continue
        start = entity.get("start")
        before = message[:start] if isinstance(start, int) else ""
        if before and _AFTER_STREET.search(before):
            continue
        if report_type == "absence_vacances" and before and _DESTINATION.search(before):
            continue
        before_commune = _AT_COMMUNE if after_a_only else _BEFORE_COMMUNE
        rank = (
            2
            if before and _AFTER_ADDRESS.search(before)
            else int(bool(before and before_commune.search(before)))
        )
        names.append((rank, str(entity["value"])))
    best = max((rank for rank, _ in names), default=0)
    if after_a_only and best == 0:
        return None
    return next((name for rank, name in names if rank == best), None)


def _previous_user_event(tracker: Tracker) -> dict[str, Any] | None:
    """The user message before the latest one."""
    users = [e for e in tracker.events if e.get("event") == "user"]
    return users[-2] if len(users) >= 2 else None


def _previous_user_text(tracker: Tracker) -> str:
    """The text of the user message before the latest one ("" if none)."""
    previous = _previous_user_event(tracker)
    return str(previous.get("text") or "") if previous else ""


def _user_entities(tracker: Tracker, story: str) -> list[dict[str, Any]]:
    """The entities NLU found in the citizen's message that is ``story`` (the description)."""
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            text_ = str(event.get("text") or "").strip()[:MAX_FIELD_CHARS]
            if text_ == story:
                return list((event.get("parse_data") or {}).get("entities") or [])
    return []


def _previous_unclear_message(tracker: Tracker) -> tuple[str, list[dict[str, Any]]] | None:
    """Text and entities of the user message before the latest one, if NLU found it too
    unclear."""
    previous = _previous_user_event(tracker)
    if previous is None:
        return None
    parse = previous.get("parse_data") or {}
    intent = (parse.get("intent") or {}).get("name")
    text_ = str(previous.get("text") or "")
    if intent == "nlu_fallback" and text_ and not text_.startswith("/"):
        return text_, list(parse.get("entities") or [])
    return None


# One validation action per report type: validate_<type>_form.
VALIDATORS = {
    report_type: type(
        f"Validate{''.join(p.title() for p in report_type.split('_'))}Form",
        (ReportFormValidation,),
        {
            "report_type": report_type,
            "name": lambda self: f"validate_{self.report_type}_form",
        },
    )
    for report_type in routing.REPORT_TYPES
}


class AskCommune(Action, metaclass=abc.ABCMeta):
    """Asks a form's commune question, unless the validation has just asked it another way
    (several communes of that name, with buttons; or a name not found)."""

    form_name = ""

    @abc.abstractmethod
    def name(self) -> str:
        """action_ask_<form>_commune"""

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        if not tracker.get_slot("commune_prompted"):
            spotted = _commune_of_description(tracker)
            language = language_of(tracker)
            if not (
                spotted and resolve_commune(spotted, dispatcher, language).get("commune_prompted")
            ):
                dispatcher.utter_message(response=f"utter_ask_{self.form_name}_commune")
        return [SlotSet("commune_prompted", False)]


def _commune_of_description(tracker: Tracker) -> str | None:
    """The commune named in the report's description, when it was not taken at once (several
    communes of that name): "au marché de Poligny" asks "which Poligny?" with buttons."""
    description = str(tracker.get_slot("description") or "").strip()
    if not description:
        return None
    for event in reversed(tracker.events):
        if event.get("event") == "user" and str(event.get("text") or "").strip() == description:
            entities = (event.get("parse_data") or {}).get("entities") or []
            return _spotted_commune(
                tracker, description, entities, report_type=tracker.get_slot("report_type")
            )
    return None


# One per form that asks for a commune: action_ask_<form>_commune (see scripts/gen_forms.py).
COMMUNE_ASKERS = {
    form_name: type(
        f"Ask{''.join(p.title() for p in form_name.split('_'))}Commune",
        (AskCommune,),
        {"form_name": form_name, "name": lambda self: f"action_ask_{self.form_name}_commune"},
    )
    for form_name in [
        *(f.name for f in reports.model().forms.values()),
        "rappel_form",
    ]
}


def answered_slots(tracker: Tracker) -> list[tuple[str, Any]]:
    report_type = tracker.get_slot("report_type")
    if report_type not in REPORT_TYPES:
        return []
    values = {slot: tracker.get_slot(slot) for slot in REPORT_SLOTS}
    slots = reports.applicable(report_type, values)
    return [(slot, values[slot]) for slot in slots if values.get(slot) not in (None, "")]


def summary_lines(tracker: Tracker, language: str) -> str:
    report_type = tracker.get_slot("report_type")
    type_name = text("report_types", str(report_type), language) if report_type else ""
    lines = [f"• {text('labels', 'report_type', language)} : {type_name}"]
    for slot, value in answered_slots(tracker):
        label = reports.label(slot, language)
        if slot == "commune":
            value = tracker.get_slot("commune_name") or value
        lines.append(f"• {label} : {reports.display(slot, value, language)}")
    return "\n".join(lines)


def confirmation_buttons(language: str) -> list[dict[str, str]]:
    """The summary's three answers; a button sends its own words, read like typed ones."""
    return [
        {"title": choice.label(language), "payload": choice.label(language)}
        for choice in reports.model().confirmation
    ]


class ActionAskSummaryAnswer(Action):
    """The question of confirm_form: the summary of the report, then "shall I send it?"; after an
    unclear answer, only the question again (the validation has said it did not understand)."""

    def name(self) -> str:
        return "action_ask_summary_answer"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        language = language_of(tracker)
        if _correction_offered(tracker, since_user=True):
            return []  # the answers to change were just offered: that is the question now
        if tracker.get_slot("confirm_reask"):
            dispatcher.utter_message(
                text=text("texts", "confirm_again", language),
                buttons=confirmation_buttons(language),
            )
            return []
        dispatcher.utter_message(
            text=text("texts", "summary", language, summary=summary_lines(tracker, language)),
            buttons=confirmation_buttons(language),
        )
        return []


# Button payloads of older conversations (before the summary was a form) keep working.
_CONFIRMATION_PAYLOADS = {"/affirm": "envoyer", "/deny": "annuler", "/corriger": "modifier"}
# Intents used when no wording of the model matches and the classifier is this sure.
_CONFIRMATION_INTENTS = {
    "affirm": "envoyer",
    "deny": "annuler",
    "annuler": "annuler",
    "corriger": "modifier",
}
CONFIRMATION_INTENT_CONFIDENCE = 0.9
# Requests answered at the summary before it is asked again (rules in bot/data/rules.yml).
CONFIRMATION_INTERRUPTIONS = frozenset(
    {"parler_humain", "aide_menu", "statut_ticket", "demande_rappel"}
)


class ValidateConfirmForm(FormValidationAction):
    """Reads the answer to the summary: a button, any usual wording (model.yml ``confirmation``),
    else a very confident intent; anything unclear is asked again — never taken as a yes."""

    def name(self) -> str:
        return "validate_confirm_form"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        if tracker.get_slot("requested_slot") != "summary_answer":
            return []  # the form's first run: nothing has been answered yet
        latest = tracker.latest_message or {}
        message = str(latest.get("text") or "").strip()
        intent_info = latest.get("intent") or {}
        language = language_of(tracker)
        is_payload = message.startswith("/")
        correcting = _correction_offered(tracker, since_user=False)
        # the answer to change, tapped or (while the answers to change are offered) typed
        field = _entity(tracker, "champ") if message.startswith(_CORRECTION_PAYLOAD) else None
        if field is None and correcting and not is_payload:
            field = _field_named(message, tracker, language)
        if field in reports.model().questions:
            return [
                SlotSet("summary_answer", CORRECT_PREFIX + field),
                SlotSet("confirm_reask", False),
            ]
        answer = _CONFIRMATION_PAYLOADS.get(message.split("{")[0]) or reports.read_confirmation(
            message
        )
        confidence = float(intent_info.get("confidence") or 0.0)
        if answer is None and confidence >= CONFIRMATION_INTENT_CONFIDENCE:
            answer = _CONFIRMATION_INTENTS.get(str(intent_info.get("name")))
        if answer != "envoyer" and not is_payload:
            # "non c'est à Dole pas à Lons": another commune named at the summary is a correction
            commune = _other_commune(tracker, dispatcher, language)
            if commune:
                return [
                    *[SlotSet(k, v) for k, v in commune.items()],
                    SlotSet("summary_answer", None),
                    SlotSet("confirm_reask", False),
                ]
        if answer == "modifier":
            # the answers to change are offered while the summary stays open: a typed "send it"
            # or a field's name is then read here too, nothing is dropped
            choose_correction(dispatcher, tracker)
            return [SlotSet("summary_answer", None), SlotSet("confirm_reask", False)]
        if correcting and answer == "annuler":
            # "non" to "which answer do you want to change?": the summary again, with its buttons
            return [SlotSet("summary_answer", None), SlotSet("confirm_reask", False)]
        if (
            answer is None
            and intent_info.get("name") in CONFIRMATION_INTERRUPTIONS
            and (message.startswith("/") or confidence >= FREE_TEXT_INTERRUPT_CONFIDENCE)
        ):
            return []  # "talk to someone", the menu, a status: a rule answers, then the summary
        if answer is None:
            if not _danger_shown(latest):
                dispatcher.utter_message(text=text("texts", "confirm_unclear", language))
            return [SlotSet("summary_answer", None), SlotSet("confirm_reask", True)]
        return [SlotSet("summary_answer", answer), SlotSet("confirm_reask", False)]


def _danger_in_answer(message: str, language: str) -> bool:
    """A danger written instead of the answer to a form's question: the rules decide; the
    danger model alone does not judge answers (a place, a time), as in the gateway."""
    assessment = safety.assess(message, language)
    return assessment.immediate_danger and not assessment.model_alone


CORRECT_PREFIX = "modifier:"
_CORRECTION_PAYLOAD = "/modifier_champ"


def _correction_offered(tracker: Tracker, since_user: bool) -> bool:
    """The bot's last message offered the answers to change (buttons /modifier_champ): since the
    latest user message (``since_user``), or just before it."""
    seen_user = False
    for event in reversed(tracker.events):
        kind = event.get("event")
        if kind == "user":
            if since_user or seen_user:
                return False
            seen_user = True
            continue
        if kind == "bot" and (since_user or seen_user):
            buttons = (event.get("data") or {}).get("buttons") or []
            return any(str(b.get("payload", "")).startswith(_CORRECTION_PAYLOAD) for b in buttons)
    return False


def _field_named(message: str, tracker: Tracker, language: str) -> str | None:
    """The one answer of the report a typed message names ("la commune", "le lieu")."""
    report_type = tracker.get_slot("report_type")
    if report_type not in REPORT_TYPES:
        return None
    norm = fold(message)
    named = set()
    for slot in reports.applicable(report_type, {s: tracker.get_slot(s) for s in REPORT_SLOTS}):
        for name in {fold(reports.label(slot, language)), fold(slot.replace("_", " "))}:
            if name and re.search(rf"(?<!\w){re.escape(name)}(?!\w)", norm):
                named.add(slot)
    return named.pop() if len(named) == 1 else None


def _other_commune(
    tracker: Tracker, dispatcher: CollectingDispatcher, language: str
) -> dict[str, Any] | None:
    """The commune slots of the one commune a message names, when it is not the report's."""
    current = tracker.get_slot("commune_insee")
    if not current:
        return None
    # "pas à Lons" names the current commune (Lons-le-Saunier) by a part of its name
    current_name = fold(str(tracker.get_slot("commune_name") or tracker.get_slot("commune") or ""))
    found: dict[str, dict[str, Any]] = {}
    for entity in tracker.latest_message.get("entities") or []:
        if entity.get("entity") not in ("commune", "commune_insee") or not entity.get("value"):
            continue
        if fold(str(entity["value"])) in current_name:
            continue
        resolved = resolve_commune(str(entity["value"]), dispatcher, language, asked=False)
        insee = resolved.get("commune_insee")
        if insee and insee != current:
            found[str(insee)] = resolved
    return next(iter(found.values())) if len(found) == 1 else None


def _fitting_numbers(
    dispatcher: CollectingDispatcher,
    message: str,
    language: str,
    category: str,
    latest: dict[str, Any],
) -> None:
    """The numbers that fit the report (its form's danger category: 119 for a child, 3919 for
    domestic violence...) in this very reply: all of them when the gateway showed none, else
    only those its emergency message for ``message`` did not list."""
    wanted = safety.helplines_for(category)
    if not _danger_shown(latest):
        dispatcher.utter_message(
            text=safety.emergency_message(safety.confirmed(category), language)["text"]
        )
        return
    shown = set(safety.assess(message, language).helplines) if message else set()
    if not shown:  # a tapped "yes" to the gateway's question: its lines are help_call's
        shown = set(safety.helplines_for("help_call"))
    missing = [line for line in wanted if line not in shown]
    if missing:
        dispatcher.utter_message(text=helpline_lines(missing, language))


def _danger_shown(latest: dict[str, Any]) -> bool:
    """The gateway has just answered this message with the emergency numbers."""
    return bool((latest.get("metadata") or {}).get("danger_shown"))


class ActionAfterConfirmation(Action):
    """What the summary's answer asks: file the report, offer to change an answer, or file
    nothing (and say so)."""

    def name(self) -> str:
        return "action_after_confirmation"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        answer = tracker.get_slot("summary_answer")
        events: list[EventType] = [SlotSet("summary_answer", None), SlotSet("confirm_reask", False)]
        if answer == "envoyer":
            return events + await file_report(dispatcher, tracker)
        if answer == "modifier":
            return events + choose_correction(dispatcher, tracker)
        if answer and answer.startswith(CORRECT_PREFIX):
            # the answer to change: forgotten, and the report's form asks it again
            field = answer[len(CORRECT_PREFIX) :]
            report_type = tracker.get_slot("report_type")
            if report_type in REPORT_TYPES:
                return [
                    *events,
                    *forget_answer(field),
                    FollowupAction(reports.model().forms[report_type].name),
                ]
        dispatcher.utter_message(response="utter_report_not_filed")
        return [
            *events,
            *[SlotSet(slot, None) for slot in REPORT_SLOTS],
            SlotSet("filing_pending", False),
        ]


class ActionChooseCorrection(Action):
    def name(self) -> str:
        return "action_choose_correction"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        return choose_correction(dispatcher, tracker)


def choose_correction(dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType]:
    """Buttons: one per answer of the report, to change it."""
    language = language_of(tracker)
    report_type = tracker.get_slot("report_type")
    if report_type not in REPORT_TYPES:
        dispatcher.utter_message(response="utter_menu")
        return []
    buttons = []
    for slot in reports.applicable(report_type, {s: tracker.get_slot(s) for s in REPORT_SLOTS}):
        buttons.append(
            {
                "title": reports.label(slot, language),
                "payload": "/modifier_champ" + json.dumps({"champ": slot}, separators=(",", ":")),
            }
        )
    dispatcher.utter_message(text=text("texts", "choose_correction", language), buttons=buttons)
    return []


class ActionCorrectReport(Action):
    """Forget one answer; the form (activated next by a rule) asks it again."""

    def name(self) -> str:
        return "action_correct_report"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        field = _entity(tracker, "champ")
        if field not in reports.model().questions:
            return []
        return forget_answer(field)


def forget_answer(field: str) -> list[EventType]:
    """Events that forget one answer (and those that depend on it)."""
    events: list[EventType] = [SlotSet(field, None)]
    if field == "commune":
        events += [SlotSet("commune_insee", None), SlotSet("commune_name", None)]
    if field == "date_depart":
        events.append(SlotSet("date_retour", None))
    return events


class ActionFileReport(Action):
    """Sends the confirmed report to the gateway, which routes it and stores the ticket."""

    def name(self) -> str:
        return "action_file_report"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        return await file_report(dispatcher, tracker)


async def file_report(dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType]:
    """Send the confirmed report to the gateway; say the reference, who receives it, what
    happens next and the helplines of the routing decision."""
    language = language_of(tracker)
    report_type = tracker.get_slot("report_type")
    if report_type not in REPORT_TYPES:
        dispatcher.utter_message(response="utter_default")
        return [SlotSet("filing_pending", False)]
    values = {slot: tracker.get_slot(slot) for slot in REPORT_SLOTS}
    metadata = tracker.latest_message.get("metadata") or {}
    body = {
        "report_type": report_type,
        "commune_insee": tracker.get_slot("commune_insee"),
        "fields": reports.ticket_fields(report_type, values),
        "danger_signal": bool(values.get("danger_signal")),
        "conversation_id": tracker.sender_id,
        "language": language,
        "channel": metadata.get("channel", "web"),
        # idempotency: one report per conversation and form completion
        "idempotency_key": f"{tracker.sender_id}:{_form_completion_marker(tracker)}",
    }
    ticket = await _post_report(body)
    if ticket is None:
        # the gateway says why when it refused the filing (too many reports, proof of work)
        dispatcher.utter_message(response="utter_report_filing_failed")
        return [SlotSet("filing_pending", True)]
    dispatcher.utter_message(text=confirmation.filed_text(ticket, language))
    return [
        *[SlotSet(slot, None) for slot in REPORT_SLOTS],
        SlotSet("filing_pending", False),
        SlotSet("ticket_reference", ticket["reference"]),
    ]


def _form_completion_marker(tracker: Tracker) -> str:
    """Timestamp of the last summary asked: a retry of the same report reuses it."""
    for event in reversed(tracker.events):
        if event.get("event") == "action" and event.get("name") == "action_ask_summary_answer":
            return str(event.get("timestamp"))
    return "none"


class ActionResetReport(Action):
    def name(self) -> str:
        return "action_reset_report"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        return [*[SlotSet(slot, None) for slot in REPORT_SLOTS], SlotSet("filing_pending", False)]


class ActionParlerHumain(Action):
    """Hours and phone of the competent unit (from the reference data), never invented."""

    def name(self) -> str:
        return "action_parler_humain"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        language = language_of(tracker)
        insee = tracker.get_slot("commune_insee")
        engine = routing.get_engine()
        agency_ids = engine.force_agencies(insee) if insee else ()
        if not agency_ids:
            dispatcher.utter_message(text=text("texts", "human_no_commune", language))
            _offer_callback(dispatcher, language)
            return []
        for agency_id in agency_ids:
            agency = engine.agency(agency_id)
            if agency.phone:
                phone = text("texts", "human_unit_phone", language, phone=agency.phone)
                hours = (
                    text("texts", "human_unit_hours", language, hours=agency.hours)
                    if agency.hours
                    else ""
                )
                dispatcher.utter_message(
                    text=text(
                        "texts", "human_unit", language, name=agency.name, phone=phone, hours=hours
                    )
                )
            else:
                dispatcher.utter_message(
                    text=text(
                        "texts",
                        "human_unknown_contact",
                        language,
                        name=agency.name,
                        commune=tracker.get_slot("commune_name") or "",
                    )
                )
        _offer_callback(dispatcher, language)
        return []


def _offer_callback(dispatcher: CollectingDispatcher, language: str) -> None:
    dispatcher.utter_message(
        text=text("texts", "callback_offer", language),
        buttons=[
            {"title": text("texts", "callback_button", language), "payload": "/demande_rappel"}
        ],
    )


class ValidateRappelForm(FormValidationAction):
    """Callback request: the commune (resolved by routing) and a phone number."""

    def name(self) -> str:
        return "validate_rappel_form"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        language = language_of(tracker)
        latest = tracker.latest_message or {}
        message = str(latest.get("text") or "")
        intent = (latest.get("intent") or {}).get("name")
        requested = tracker.get_slot("requested_slot")
        starting = requested is None
        updates: dict[str, Any] = {}
        if not starting:
            if intent in INTERRUPTING_INTENTS:
                return []
            if requested == "commune":
                query = _entity(tracker, "commune_insee") or message
                updates.update(resolve_commune(query, dispatcher, language))
            elif requested == "telephone_rappel":
                phones = reports.answers.PHONE_RE.findall(message)
                if phones:
                    updates["telephone_rappel"] = phones[0]
                else:
                    dispatcher.utter_message(text=text("texts", "callback_bad_phone", language))
                    updates["telephone_rappel"] = None
        values = {
            "commune": tracker.get_slot("commune"),
            "telephone_rappel": tracker.get_slot("telephone_rappel"),
            **updates,
        }
        next_slot = next((s for s in ("commune", "telephone_rappel") if not values.get(s)), None)
        updates.setdefault("commune_prompted", False)
        return [*[SlotSet(k, v) for k, v in updates.items()], SlotSet("requested_slot", next_slot)]


class ActionFileCallback(Action):
    """Files the callback request as a report for the competent unit."""

    def name(self) -> str:
        return "action_file_callback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        language = language_of(tracker)
        current = tracker.get_slot("report_type")
        metadata = tracker.latest_message.get("metadata") or {}
        body = {
            "report_type": current if current in REPORT_TYPES else "autre",
            "commune_insee": tracker.get_slot("commune_insee"),
            "fields": {"demande": "rappel", "telephone": str(tracker.get_slot("telephone_rappel"))},
            "conversation_id": tracker.sender_id,
            "language": language,
            "channel": metadata.get("channel", "web"),
            "anonymous": False,
            "idempotency_key": f"{tracker.sender_id}:rappel:{_last_user_timestamp(tracker)}",
        }
        ticket = await _post_report(body)
        if ticket is None:
            dispatcher.utter_message(response="utter_report_filing_failed")
            return [SlotSet("telephone_rappel", None)]
        destinations = ", ".join(d["agency_name"] for d in ticket.get("destinations", []))
        dispatcher.utter_message(
            response="utter_callback_filed",
            reference=ticket["reference"],
            destinations=destinations or "Le service compétent",
        )
        _tell_tracking_code(dispatcher, ticket, language)
        return [SlotSet("telephone_rappel", None), SlotSet("ticket_reference", ticket["reference"])]


def _tell_tracking_code(
    dispatcher: CollectingDispatcher, ticket: dict[str, Any], language: str
) -> None:
    """The citizen's secret tracking code, given once, to the conversation that filed."""
    code = ticket.get("tracking_code")
    if code:
        dispatcher.utter_message(text=text("texts", "tracking_code", language, code=code))


def _last_user_timestamp(tracker: Tracker) -> str:
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            return str(event.get("timestamp"))
    return "none"


# A filing is idempotent (its key, and the gateway's conversation_key): when the request was cut
# on its way (a gateway killed behind the load balancer answers 502, a connection drops), it is
# sent again, a little later, before the citizen is told it failed.
FILING_ATTEMPTS = 3
FILING_RETRY_DELAYS = (0.5, 1.5)
RETRIED_STATUSES = frozenset({502, 503, 504})


class _Retry(Exception):
    """This attempt's request was cut: the filing may be sent again."""


async def _post_report(body: dict[str, Any]) -> dict[str, Any] | None:
    for attempt in range(FILING_ATTEMPTS):
        if attempt:
            await asyncio.sleep(FILING_RETRY_DELAYS[min(attempt, len(FILING_RETRY_DELAYS)) - 1])
        try:
            return await _post_report_once(body)
        except _Retry as exc:
            logger.warning("filing attempt %d cut: %s", attempt + 1, exc)
        except RuntimeError as exc:  # our own words: the status, never the report
            logger.warning("filing failed: %s", exc)
            return None
        except aiohttp.ClientResponseError as exc:
            logger.warning("filing failed: %s", type(exc).__name__)
            return None
    logger.warning("filing failed after %d attempts", FILING_ATTEMPTS)
    return None


async def _post_report_once(body: dict[str, Any]) -> dict[str, Any]:
    timeout = aiohttp.ClientTimeout(total=10)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.post(
                f"{gateway_url()}/internal/v1/reports",
                json=body,
                headers={"Authorization": f"Bearer {internal_token()}"},
            ) as response:
                if response.status in RETRIED_STATUSES:
                    raise _Retry(f"gateway answered HTTP {response.status}")
                if response.status not in (200, 201):
                    raise RuntimeError(f"gateway answered HTTP {response.status}")
                ticket: dict[str, Any] = await response.json()
                return ticket
    except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError) as exc:
        raise _Retry(type(exc).__name__) from exc


class ActionStatutTicket(Action):
    """The status of a ticket, from the gateway: a report this conversation filed (by its
    reference), or any report whose tracking code the citizen gives. References are
    sequential: a reference alone never opens another conversation's report, and the answer is
    then the same as for a reference that does not exist."""

    def name(self) -> str:
        return "action_statut_ticket"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        language = language_of(tracker)
        message = str(tracker.latest_message.get("text") or "")
        found = reference.find(message)
        code = tracking.find(message)
        ticket_ref = found or (None if code else tracker.get_slot("ticket_reference"))
        if not ticket_ref and not code:
            dispatcher.utter_message(text=text("texts", "status_ask", language))
            return []
        query = {"conversation_id": tracker.sender_id, "reference": ticket_ref}
        if code:
            query["tracking_code"] = code
        try:
            timeout = aiohttp.ClientTimeout(total=10)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                async with session.post(
                    f"{gateway_url()}/internal/v1/reports/status",
                    json=query,
                    headers={"Authorization": f"Bearer {internal_token()}"},
                ) as response:
                    if response.status == 404:
                        dispatcher.utter_message(
                            text=text("texts", "status_code_unknown", language)
                            if code
                            else text("texts", "status_unknown", language, reference=ticket_ref)
                        )
                        return []
                    if response.status != 200:
                        raise RuntimeError(f"gateway answered HTTP {response.status}")
                    ticket = await response.json()
        except (aiohttp.ClientError, RuntimeError, TimeoutError) as exc:
            logger.warning("status lookup failed: %s", type(exc).__name__)
            dispatcher.utter_message(text=text("texts", "status_unavailable", language))
            return []
        dispatcher.utter_message(
            text=text(
                "texts",
                "status_found",
                language,
                reference=ticket.get("reference", ticket_ref),
                report_type=text("report_types", str(ticket.get("report_type")), language),
                status=text("statuses", str(ticket.get("status")), language),
            )
        )
        return []


class ActionLowConfidence(Action):
    """Low NLU confidence: offer the two or three likeliest report types instead of guessing.

    (Rasa's own action_default_fallback stays in charge of low dialogue confidence: it answers
    utter_default and forgets the message, so it cannot loop.)
    """

    def name(self) -> str:
        return "action_low_confidence"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        language = language_of(tracker)
        ranking = tracker.latest_message.get("intent_ranking") or []
        likely = [r["name"] for r in ranking if r.get("name") in REPORT_TYPES][:3]
        if not likely:
            dispatcher.utter_message(response="utter_default")
            return []
        buttons = [
            {"title": text("report_types", name, language), "payload": f"/{name}"}
            for name in likely
        ]
        buttons.append(
            {"title": text("texts", "fallback_other", language), "payload": "/aide_menu"}
        )
        dispatcher.utter_message(text=text("texts", "fallback_choose", language), buttons=buttons)
        return []


__all__ = [
    "VALIDATORS",
    "ActionAfterConfirmation",
    "ActionAskSummaryAnswer",
    "ActionChooseCorrection",
    "ActionCorrectReport",
    "ActionFileCallback",
    "ActionFileReport",
    "ActionLowConfidence",
    "ActionParlerHumain",
    "ActionResetReport",
    "ActionStatutTicket",
    "ReportFormValidation",
    "ValidateConfirmForm",
    "ValidateRappelForm",
]
