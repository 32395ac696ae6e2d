"""Channel-neutral conversation turn: hygiene, rate limit, language, safety, Rasa or guided mode.

Every channel (web widget, Telegram, ...) calls :func:`handle_turn` and renders the replies it
returns in its own way. Nothing here knows about HTTP or Telegram.

One turn:

1. admission: per-sender, per-address and global message limits, new conversations per address
   (:mod:`webhook.conversation.admission`); size limit, control characters removed;
2. the conversation's language (langdetect, switching only when sure);
3. safety first (SPEC §3): the emergency numbers, in that language, before anything else;
4. then either the guided mode (:mod:`webhook.conversation.guided`: buttons, no Rasa) — when
   the citizen asks for it, for German, Dutch, Italian and Spanish speakers, and whenever Rasa
   is down or too slow (degraded mode) — or Rasa's REST channel.

The state of a conversation (language, mode, guided-mode answers, ...) is kept outside the
process by :class:`ConversationStore` (:mod:`webhook.store.state`: the ticket store's database
by default, Redis when configured): loaded at the start of a turn and saved at its end (JSON of a
versioned dataclass), under a per-conversation lease that holds across processes, so two gateways
never interleave one conversation's turns, any gateway instance serves any turn, and a restart of
the gateway loses nothing. Idle states expire (``conversation_state_hours`` of the retention
policy).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import logging
import time
import unicodedata
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import reports
import safety
from reports import confirmation
from webhook import replies
from webhook.conversation import guided
from webhook.conversation import language as languages
from webhook.conversation.admission import Admission, Refusal
from webhook.conversation.rasa_client import RasaClient, RasaUnavailable
from webhook.conversation.ratelimit import SharedLimiter
from webhook.security.pow import Challenge
from webhook.store import state as state_backends
from webhook.store import tickets

logger = logging.getLogger(__name__)

Mode = Literal["rasa", "guided"]
GuidedReason = Literal["chosen", "language", "degraded"]


@dataclass(frozen=True)
class Turn:
    """One incoming message: typed text, or the payload of a button."""

    channel: str
    sender: str
    text: str | None = None
    payload: str | None = None
    # the channel's hint for a new conversation (e.g. Telegram's language_code); the language
    # of an ongoing conversation is the one detected on its messages
    language: str = "fr"
    # the client's address key (webhook.security.clients.address_key) for per-address limits;
    # None for channels without one (Telegram)
    client: str | None = None
    # a solved proof-of-work challenge (webhook.security.pow), when the deployment asks for one
    proof: str | None = None

    @property
    def conversation_id(self) -> str:
        return f"{self.channel}-{self.sender}"


@dataclass
class TurnResult:
    messages: list[replies.Reply] = field(default_factory=list)
    # what went wrong, if anything: None, "too_long", "rate_limited", "rasa_unavailable",
    # "filing_limited" (a report refused by the admission), "proof_required" (proof of work)
    problem: str | None = None
    # language of the replies (ISO 639-1)
    language: str = "fr"
    # the guided mode answered because Rasa is down or too slow
    degraded: bool = False
    # rate limited: seconds before the next message is accepted
    retry_after: float | None = None
    # reports filed in this turn: reference and tracking code, for the channel to keep
    tickets: list[dict[str, str]] = field(default_factory=list)
    # a proof-of-work challenge to solve before this conversation files (when switched on)
    challenge: Challenge | None = None


# An answer to a report's question this long may tell a new story (see the safety check in _turn).
ANSWER_STORY_WORDS = 12


# ----------------------------------------------------------------------------- state
@dataclass
class ConversationState:
    language: str = languages.DEFAULT_LANGUAGE
    mode: Mode = "rasa"
    guided_reason: GuidedReason | None = None
    # language Rasa was last told for this conversation (its tracker starts in French)
    rasa_language: str = languages.DEFAULT_LANGUAGE
    guided: guided.GuidedState = field(default_factory=guided.GuidedState)
    channel: str = "web"
    # the address key this conversation came from last (None: no address, e.g. Telegram)
    client: str | None = None
    # filings left to the conversation's last proof of work (when proof of work is on)
    filing_credits: int = 0
    # a filing of this turn refused by the admission (set by the internal API for Rasa's)
    filing_refusal: Refusal | None = None
    # reports filed by Rasa's action server during this turn (internal API)
    filed: list[dict[str, str]] = field(default_factory=list)
    # the "is someone in danger right now?" question was asked (once per conversation) and its
    # answer
    danger_asked: bool = False
    danger_confirmed: bool = False
    # the bot's last reply asked one of a report's questions (other than the description)
    bot_asked: bool = False
    # ... which one (a question id of reports/model.yml; None: the summary, another reply)
    asked_question: str | None = None
    # the question that came with "is someone in danger right now?" ({"text", "buttons"}), asked
    # again right after its answer: the answer's "Continuons." alone left the citizen looking
    # up for what to say next
    pending: dict[str, Any] | None = None


# The stored form of a ConversationState: {"v": STATE_VERSION, "state": {...}}. A field added
# later gets its default in states saved before; a state of another version starts afresh.
STATE_VERSION = 1
# what lives for one turn only (the internal API's notes, collected after Rasa answered)
_TURN_ONLY = frozenset({"filed", "filing_refusal"})


def state_to_json(state: ConversationState) -> dict[str, Any]:
    data = {
        f.name: getattr(state, f.name)
        for f in dataclasses.fields(state)
        if f.name not in _TURN_ONLY and f.name != "guided"
    }
    data["guided"] = dataclasses.asdict(state.guided)
    return {"v": STATE_VERSION, "state": data}


def state_from_json(raw: dict[str, Any]) -> ConversationState | None:
    """The state saved by :func:`state_to_json`; None for another version or a broken one."""
    if raw.get("v") != STATE_VERSION or not isinstance(raw.get("state"), dict):
        return None
    data = raw["state"]
    known = {f.name for f in dataclasses.fields(ConversationState)} - _TURN_ONLY - {"guided"}
    guided_known = {f.name for f in dataclasses.fields(guided.GuidedState)}
    saved_guided = data.get("guided") if isinstance(data.get("guided"), dict) else {}
    try:
        return ConversationState(
            **{k: v for k, v in data.items() if k in known},
            guided=guided.GuidedState(
                **{k: v for k, v in saved_guided.items() if k in guided_known}
            ),
        )
    except TypeError:
        return None


class NotAdmitted(Exception):
    """A new conversation refused by the admission (:class:`Refusal` in ``args[0]``)."""


class ConversationStore:
    """Conversation states in a :class:`webhook.store.state.StateBackend`, idle at most
    ``idle_seconds`` (an expired conversation starts again from the menu).

    At most ``max_conversations`` live at once and one address keeps at most ``max_per_owner``
    (beyond, its own oldest go, so a script rotating sender ids from one address cannot push out
    everyone else's); conversations in the middle of a guided report are never pushed out by
    the total bound. Both bounds are checked when a conversation starts."""

    def __init__(
        self,
        backend: state_backends.StateBackend | None = None,
        *,
        max_conversations: int = 100_000,
        idle_seconds: float = 6 * 3600,
        max_per_owner: int = 500,
    ) -> None:
        self.backend = backend or state_backends.MemoryStateBackend()
        self.max_conversations = max_conversations
        self.idle_seconds = idle_seconds
        self.max_per_owner = max_per_owner
        # turns of one conversation in this process queue here before taking the shared lease
        self._local: dict[str, tuple[asyncio.Lock, int]] = {}

    async def peek(self, conversation_id: str) -> ConversationState | None:
        """The last saved state of a live conversation (no lease: read only)."""
        stored = await self.backend.load(conversation_id, self.idle_seconds)
        return state_from_json(stored.data) if stored is not None else None

    @contextlib.asynccontextmanager
    async def _local_lock(self, conversation_id: str) -> AsyncIterator[None]:
        lock, users = self._local.get(conversation_id, (asyncio.Lock(), 0))
        self._local[conversation_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._local[conversation_id]
            if users <= 1:
                del self._local[conversation_id]
            else:
                self._local[conversation_id] = (lock, users - 1)

    @contextlib.asynccontextmanager
    async def open(
        self,
        conversation_id: str,
        default_language: str = "fr",
        owner: str | None = None,
        admit: Callable[[], Awaitable[Refusal | None]] | None = None,
    ) -> AsyncIterator[ConversationState]:
        """The conversation's state for one turn, saved when the block ends without an error
        (raises :class:`webhook.store.state.StateBusy` when another turn holds it too long).
        A new conversation starts only if ``admit`` returns no refusal (else
        :class:`NotAdmitted`, nothing saved)."""
        async with (
            self._local_lock(conversation_id),
            self.backend.leased(conversation_id, idle_seconds=self.idle_seconds) as lease,
        ):
            stored = lease.stored
            state = state_from_json(stored.data) if stored is not None else None
            if state is None:
                refusal = await admit() if admit is not None else None
                if refusal is not None:
                    raise NotAdmitted(refusal)
                state = ConversationState(language=languages.normalise(default_language))
                state.channel = conversation_id.split("-", 1)[0]
                await self.backend.evict(
                    owner, self.max_per_owner, self.max_conversations, self.idle_seconds
                )
            yield state
            saved = await self.backend.save(
                conversation_id,
                state_to_json(state),
                owner=state.client or owner,
                in_report=state.guided.in_report,
                token=lease.token,
                release=True,
            )
            lease.released = saved
            if not saved:
                logger.error("a conversation's state was not saved: its lease was lost")

    async def note(self, conversation_id: str, **note: Any) -> None:
        """Leave something for the conversation's running turn (``filed``: a ticket,
        ``refusal``: a refused filing, ``credits_used``: proof-of-work filings used)."""
        await self.backend.add_note(conversation_id, note)

    async def collect(self, conversation_id: str, state: ConversationState) -> None:
        """Apply the notes left for this turn (by the internal API, on any gateway)."""
        for note in await self.backend.take_notes(conversation_id):
            if isinstance(note.get("filed"), dict):
                state.filed.append({k: str(v) for k, v in note["filed"].items()})
            if isinstance(note.get("refusal"), dict):
                state.filing_refusal = Refusal(
                    str(note["refusal"].get("scope", "")),
                    float(note["refusal"].get("retry_after", 0.0)),
                )
            if isinstance(note.get("credits_used"), int):
                state.filing_credits -= note["credits_used"]

    async def count(self) -> int:
        return await self.backend.conversation_count(self.idle_seconds)


class RasaHealth:
    """Whether turns go to Rasa at all. :class:`RasaClient` keeps each instance's health and
    moves a conversation off a down instance; this is marked down when a message got no answer,
    and stays down (degraded mode) only while no instance is up: Rasa is then probed again with a
    growing delay (``initial_backoff`` doubling up to ``max_backoff``); the first instance that
    answers a probe brings turns back to Rasa."""

    def __init__(
        self,
        initial_backoff: float = 1.0,
        max_backoff: float = 30.0,
        probe_timeout: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.probe_timeout = probe_timeout
        self._clock = clock
        self.available = True
        self.backoff = initial_backoff
        self.next_probe = 0.0

    def mark_down(self) -> None:
        if self.available:
            logger.warning("Rasa did not answer a message: guided mode until an instance answers")
            self.backoff = self.initial_backoff
        self.available = False
        self.next_probe = self._clock() + self.backoff

    async def usable(self, rasa: RasaClient) -> bool:
        if self.available:
            return True
        if rasa.any_up():
            # one conversation's message failed on a live instance: the others go on with Rasa
            self.available = True
            self.backoff = self.initial_backoff
            return True
        now = self._clock()
        if now < self.next_probe:
            return False
        try:
            ok = await asyncio.wait_for(rasa.is_ready(), timeout=self.probe_timeout)
        except TimeoutError:
            ok = False
        if ok:
            logger.info("Rasa answers again: turns go back to Rasa")
            self.available = True
            self.backoff = self.initial_backoff
            return True
        self.backoff = min(self.backoff * 2, self.max_backoff)
        self.next_probe = now + self.backoff
        return False


@dataclass
class Services:
    """What a turn needs besides Rasa: one instance per gateway (app.state.conversations)."""

    store: ConversationStore = field(default_factory=ConversationStore)
    health: RasaHealth = field(default_factory=RasaHealth)
    limiter: SharedLimiter | None = None
    # the ticket store, to file guided-mode reports (the gateway is the single writer)
    sessions: async_sessionmaker[AsyncSession] | None = None
    # per-address and global limits of messages and filings, proof of work
    admission: Admission | None = None


# The services of each Rasa client (one per gateway app): a channel that calls handle_turn
# without ``services`` (e.g. Telegram, given app.state.rasa) shares the app's services.
_services_by_client: weakref.WeakKeyDictionary[RasaClient, Services] = weakref.WeakKeyDictionary()


def attach(rasa: RasaClient, services: Services) -> None:
    """Make ``services`` the ones used by turns that go to ``rasa`` without explicit services."""
    _services_by_client[rasa] = services


def services_for(rasa: RasaClient) -> Services:
    services = _services_by_client.get(rasa)
    if services is None:
        services = Services()
        _services_by_client[rasa] = services
    return services


# ----------------------------------------------------------------------------- hygiene
_DROP_CHARS = frozenset(
    [chr(c) for c in range(0x202A, 0x202F)]  # bidi embeddings and overrides
    + [chr(c) for c in range(0x2066, 0x206A)]  # bidi isolates
    + ["\ufeff", "\u200e", "\u200f"]  # byte order mark, direction marks
)


def clean_text(raw: str) -> str:
    """Typed text as stored and sent on: NFC, newlines unified, control characters, lone
    surrogates and bidi overrides removed, emoji kept. HTML stays text (never rendered)."""
    text = raw.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n")
    text = text.replace("\u2029", "\n")
    kept = []
    for ch in text:
        if ch in ("\n", "\t"):
            kept.append(" " if ch == "\t" else ch)
            continue
        category = unicodedata.category(ch)
        if category in ("Cc", "Cs") or ch in _DROP_CHARS:
            continue
        kept.append(ch)
    return unicodedata.normalize("NFC", "".join(kept)).strip()


def clean_typed_text(raw: str) -> str:
    """Typed text is never a command: "/affirm" or "/inform{...}" typed by hand would otherwise
    reach Rasa as an intent (buttons use the payload field, not text)."""
    return clean_text(raw).lstrip("/").strip()


# ----------------------------------------------------------------------------- the turn
def _menu_button(lang: str) -> replies.Button:
    return replies.Button(title=replies.message("menu_button", lang), payload="/aide_menu")


def _guided_button(lang: str) -> replies.Button:
    return replies.Button(title=replies.message("g_mode_button", lang), payload=guided.ENTER)


async def handle_turn(
    turn: Turn,
    rasa: RasaClient,
    *,
    max_message_chars: int,
    services: Services | None = None,
) -> TurnResult:
    """Process one message and return what to show, the emergency numbers first if needed.

    ``services`` (the gateway's :class:`Services`) carries the conversation states, Rasa's
    health, the rate limit and the ticket store; without it, the services attached to ``rasa``
    (:func:`attach`, done by the gateway at start) or, failing that, new ones for that client
    (which cannot file guided-mode reports).
    """
    services = services or services_for(rasa)
    conversation_id = turn.conversation_id
    admission = services.admission
    store = services.store

    async def limited(retry_after: float) -> TurnResult:
        known = await store.peek(conversation_id)
        lang = known.language if known is not None else languages.normalise(turn.language)
        return TurnResult(
            [replies.Reply(text=replies.message("rate_limited", lang))],
            problem="rate_limited",
            language=lang,
            retry_after=retry_after,
        )

    if services.limiter is not None:
        decision = await services.limiter.hit(conversation_id)
        if not decision.allowed:
            return await limited(decision.retry_after)
    admit = None
    if admission is not None:
        refusal = await admission.message(turn.client)
        if refusal is not None:
            logger.info("%s message refused: %s limit", turn.channel, refusal.scope)
            return await limited(refusal.retry_after)

        async def admit() -> Refusal | None:
            return await admission.new_conversation(turn.client)

    try:
        async with store.open(
            conversation_id, turn.language, owner=turn.client, admit=admit
        ) as state:
            if turn.client is not None:
                state.client = turn.client
            if admission is not None and turn.proof:
                await admission.accept_proof(conversation_id, state, turn.proof)
            result = await _turn(turn, rasa, state, services, max_message_chars)
            if admission is not None and turn.channel == "web" and admission.needs_proof(state):
                result.challenge = admission.pow.challenge(conversation_id)
            return result
    except NotAdmitted as refused:
        refusal = refused.args[0]
        logger.info("%s message refused: %s limit", turn.channel, refusal.scope)
        return await limited(refusal.retry_after)
    except state_backends.StateBusy:
        # another turn of this conversation holds it (a double send, a stuck gateway)
        logger.warning("%s turn refused: its conversation is busy", turn.channel)
        return await limited(1.0)


async def _turn(
    turn: Turn,
    rasa: RasaClient,
    state: ConversationState,
    services: Services,
    max_message_chars: int,
) -> TurnResult:
    payload: str | None = None
    text: str | None = None
    if turn.payload is not None:
        payload = clean_text(turn.payload)
        if not payload:
            payload = guided.ENTER if state.mode == "guided" else "/aide_menu"
    else:
        raw = turn.text or ""
        if len(raw) > max_message_chars:
            message = replies.message("message_too_long", state.language, limit=max_message_chars)
            return TurnResult(
                [replies.Reply(text=message)], problem="too_long", language=state.language
            )
        text = clean_typed_text(raw)
        if not text:
            empty = replies.message("empty_message", state.language)
            if state.mode == "guided":  # the open guided report is kept: ask again
                again = guided.current(state.guided, state.language)
                return TurnResult([replies.Reply(text=empty), *again], language=state.language)
            return TurnResult(
                [replies.Reply(text=empty, buttons=[_menu_button(state.language)])],
                language=state.language,
            )
    switched = False
    if text is not None and _detects_language(state):
        new_language = languages.next_language(text, state.language)
        switched = new_language != state.language
        state.language = new_language
    lang = state.language

    # Safety first (SPEC §3): every typed message is checked for immediate danger before
    # anything else, independently of the classifier and of the mode; the numbers come first.
    first: list[replies.Reply] = []
    if payload in (safety.DANGER_YES, safety.DANGER_NO):
        # the answer to "is someone in danger right now?": a yes gets the numbers at once
        state.danger_asked = True
        if payload == safety.DANGER_YES:
            logger.info("immediate danger confirmed by the citizen")
            state.danger_confirmed = True
            confirmed = safety.confirmed("help_call", lang)
            reply = replies.Reply(text=safety.emergency_message(confirmed, lang)["text"])
        else:
            reply = replies.Reply(text=safety.danger_denied(lang))
        follow = [replies.Reply.model_validate(state.pending)] if state.pending else []
        state.pending = None
        return TurnResult([reply, *follow], language=lang)
    if text is not None:
        assessment = safety.assess(text, lang)
        if state.bot_asked and (assessment.model_alone or assessment.uncertain):
            # An answer to one of a report's questions (a place, a time, a name...): the danger
            # model was trained on descriptions, not on such answers, and the rules still apply.
            # A long answer that it finds alarming may be a new story: ask, once in the
            # conversation (asked again after every long answer of a scam report, the question
            # wore the citizen out: "il a appelé avec un numéro en 01..." scores 0.52). A long
            # story whose rules' alarm the model turned into the question (overruled) is asked
            # every time: the rules found danger words in it.
            # An answer that holds what its question asked ("on laisse la petite Clio dans la
            # cour" to "Laissez-vous un véhicule sur place ?": "la petite" reads as a child to
            # the model) is an answer, not a new story: no question.
            if assessment.overruled or (
                assessment.immediate_danger
                and len(text.split()) >= ANSWER_STORY_WORDS
                and not state.danger_asked
                and not _answers_the_question(state.asked_question, text)
            ):
                state.danger_asked = True
                first.append(_danger_question(lang))
        elif assessment.immediate_danger:
            logger.info("immediate danger detected: rules=%s", ",".join(assessment.matched))
            emergency = safety.emergency_message(assessment, lang)
            # The conversation goes on right below, so no extra buttons here.
            first.append(replies.Reply(text=emergency["text"]))
        elif assessment.uncertain and not state.danger_asked:
            # the danger model is unsure: ask once, with buttons
            state.danger_asked = True
            first.append(_danger_question(lang))

    if (
        text is not None
        and not first
        and not state.bot_asked
        and state.mode != "guided"
        and not any(ch.isalnum() for ch in text)
        and not reports.read_confirmation(text)
    ):
        # "😡😡😡", "???": no words, and no question waits for a 👍: the classifier would guess
        # (an angry face was read as a goodbye); say so, offer the topics
        reply = replies.Reply(text=replies.message("no_words", lang), buttons=[_menu_button(lang)])
        return TurnResult([reply], language=lang)

    # only the emergency numbers count as shown (the danger question alone does not: the action
    # server then gives the numbers of a "yes" to the form's danger question itself)
    numbers_shown = any(not r.buttons for r in first)  # the question has buttons, not them
    result = await _route(turn, rasa, state, services, payload, text, switched, numbers_shown)
    # did the bot end on one of a report's questions (not the description), its summary or the
    # answers to change? The next message is then most likely its answer.
    last_question = (
        reports.model().question_in(result.messages[-1].text) if result.messages else None
    )
    state.bot_asked = _awaits_answer(result.messages)
    state.asked_question = last_question if state.bot_asked else None
    if last_question == "danger_now":
        # the report's own first question is "are you in danger right now?" (domestic
        # violence, a child, a vulnerable adult): the same question twice in one reply puzzled
        # residents; the form's "oui" gets the numbers of its category (3919, 119, 3977)
        first = [r for r in first if not _is_danger_question(r)]
    asked_now = any(_is_danger_question(r) for r in first)
    state.pending = result.messages[-1].model_dump() if asked_now and result.messages else None
    result.messages = [*first, *result.messages]
    result.language = state.language
    return result


CANCEL_PAYLOAD = "/annuler"
# Buttons of the bot's own questions outside a form's questions: the summary's answers (their
# payloads are their titles) and the answers to change after "Modifier".
_CORRECTION_PAYLOAD = "/modifier_champ"


def _awaits_answer(messages: list[replies.Reply]) -> bool:
    """The bot's reply ends on a question of a report (not its description), on the summary or
    on the choice of the answer to change: the next message most likely answers it."""
    if not messages:
        return False
    last = messages[-1]
    if reports.model().question_in(last.text) not in (None, "description"):
        return True
    confirmation = {
        label for choice in reports.model().confirmation for label in choice.labels.values()
    }
    return any(
        b.payload in confirmation or b.payload.startswith(_CORRECTION_PAYLOAD) for b in last.buttons
    )


def _answers_the_question(question_id: str | None, text: str) -> bool:
    """Whether a typed message holds what the report's question asked (a yes or no told in
    words, a phone number, a trace: :func:`reports.holds_expected`)."""
    question = reports.model().questions.get(question_id or "")
    return question is not None and reports.holds_expected(question, text)


def _is_danger_question(reply: replies.Reply) -> bool:
    return {b.payload for b in reply.buttons} == {safety.DANGER_YES, safety.DANGER_NO}


def _danger_question(lang: str) -> replies.Reply:
    question = safety.danger_question(lang)
    return replies.Reply(
        text=question["text"],
        buttons=[
            replies.Button(title=b["title"], payload=b["payload"]) for b in question["buttons"]
        ],
    )


def _detects_language(state: ConversationState) -> bool:
    """Free text tells the language, except answers made of names (a commune, an address, a
    phone number) to a report's questions: in the guided mode only its menu and descriptions
    count, in the chat everything but the answer to a question of a form (other than the
    description: "Moustiers-Sainte-Marie" typed by an English tourist turned the conversation
    into French)."""
    if state.mode != "guided":
        return state.asked_question is None
    g = state.guided
    return g.step in ("menu", "done") or (g.step == "question" and g.question == "description")


async def _route(
    turn: Turn,
    rasa: RasaClient,
    state: ConversationState,
    services: Services,
    payload: str | None,
    text: str | None,
    switched: bool,
    danger_shown: bool = False,
) -> TurnResult:
    lang = state.language
    health = services.health
    notice: list[replies.Reply] = []
    guided_payload = payload is not None and guided.is_guided_payload(payload)
    asks_guided = text is not None and guided.wants_guided(text)

    # Degraded guided mode, no report open: back to Rasa as soon as it answers again.
    if (
        state.mode == "guided"
        and state.guided_reason == "degraded"
        and not guided_payload
        and not state.guided.in_report
        and await health.usable(rasa)
    ):
        state.mode = "rasa"
        state.guided_reason = None
        notice.append(replies.Reply(text=replies.message("g_rasa_back", lang)))

    if state.mode == "guided":
        return await _guided_turn(turn, state, services, payload, text)
    if guided_payload or asks_guided:
        return await _enter_guided(turn, state, services, "chosen", payload, text, asks_guided)
    if switched and lang in languages.GUIDED_ONLY_LANGUAGES:
        return await _enter_guided(turn, state, services, "language", payload, text, False)
    if not await health.usable(rasa):
        return await _enter_guided(turn, state, services, "degraded", payload, text, False)

    message = payload if payload is not None else (text or "")
    if payload is None and text and state.bot_asked and reports.reads_as_cancel(text):
        # "non laissez tomber, il va voir mes messages" at a report's question: a cancel, even
        # when the classifier hears the report's own topic in it (the text is not kept)
        message = CANCEL_PAYLOAD
    # safety_checked: the gateway ran the danger check on this message (the action server
    # does not repeat the emergency numbers).
    metadata: dict[str, Any] = {
        "channel": turn.channel,
        "language": lang,
        "safety_checked": turn.payload is None,
        # the numbers (or the danger question) are already in this turn's replies
        "danger_shown": danger_shown,
    }
    try:
        rasa_language = "en" if lang == "en" else "fr"
        if rasa_language != state.rasa_language:
            # Tell Rasa first (its replies to this are not shown).
            await rasa.send(
                turn.conversation_id,
                "/set_language" + json.dumps({"language": rasa_language}),
                metadata=metadata,
            )
            state.rasa_language = rasa_language
        items = await rasa.send(turn.conversation_id, message, metadata=metadata)
    except RasaUnavailable:
        health.mark_down()
        result = await _enter_guided(turn, state, services, "degraded", payload, text, False)
        result.problem = "rasa_unavailable"
        return result
    # what the action server filed for this turn (internal API, maybe on another gateway)
    await services.store.collect(turn.conversation_id, state)
    refusal = state.filing_refusal
    state.filing_refusal = None
    filed, state.filed = state.filed, []
    messages = replies.from_rasa(items)
    if refusal is not None:
        # the action server's filing was refused (internal API): its text says it failed, this
        # says why and when to try again
        messages.append(replies.Reply(text=_refusal_text(refusal, lang)))
        return TurnResult(
            [*notice, *messages],
            problem=_refusal_problem(refusal),
            retry_after=refusal.retry_after or None,
        )
    said = "\n".join(m.text or "" for m in messages)
    earlier = [t for t in filed if t.get("reference") and t["reference"] not in said]
    if earlier:
        # filed in a turn whose answer never reached the citizen (its gateway died after the
        # filing): the reference now, and for a repeated "yes" to the summary nothing else (the
        # report is no longer in progress: Rasa would not understand the yes)
        given = [
            replies.Reply(
                text=confirmation.reference_text(t["reference"], t.get("tracking_code"), lang)
            )
            for t in earlier
        ]
        repeated_yes = reports.read_confirmation(text or payload or "") == "envoyer"
        messages = given if repeated_yes else [*given, *messages]
    if not messages:
        # Rasa answered nothing (e.g. a failing custom action): never leave the citizen
        # without an answer.
        logger.warning("Rasa returned no message for a %s conversation", turn.channel)
        messages = [
            replies.Reply(
                text=replies.message("no_reply", lang),
                buttons=[_menu_button(lang), _guided_button(lang)],
            )
        ]
    return TurnResult([*notice, *messages], tickets=filed)


def _refusal_problem(refusal: Refusal) -> str:
    return "proof_required" if refusal.scope == "proof" else "filing_limited"


def _refusal_text(refusal: Refusal, lang: str) -> str:
    if refusal.scope == "proof":
        return replies.message("filing_proof", lang)
    return replies.message("filing_limited", lang, minutes=refusal.minutes)


async def _enter_guided(
    turn: Turn,
    state: ConversationState,
    services: Services,
    reason: GuidedReason,
    payload: str | None,
    text: str | None,
    asked: bool,
) -> TurnResult:
    lang = state.language
    state.mode = "guided"
    state.guided_reason = reason
    state.guided.free_writing = services.health.available
    out: list[replies.Reply] = []
    if reason == "degraded":
        logger.info("degraded mode: guided mode served to a %s conversation", turn.channel)
        out.append(replies.Reply(text=replies.message("g_degraded", lang)))
    if text is not None and not asked and len(text) >= guided.MIN_DESCRIPTION_CHARS:
        # What the citizen wrote is kept: it becomes the description of the report.
        state.guided.pending_description = text[: guided.MAX_TEXT_CHARS]
    if payload is not None and payload != guided.ENTER:
        outcome = guided.handle(state.guided, lang, payload=payload)
        if reason != "degraded" and not state.guided.in_report:
            out.append(replies.Reply(text=replies.message("g_intro", lang)))
        result = await _apply(turn, state, services, outcome)
        result.messages = [*out, *result.messages]
        result.degraded = reason == "degraded"
        return result
    out.extend(
        guided.start(state.guided, lang, intro_key=None if reason == "degraded" else "g_intro")
    )
    return TurnResult(out, degraded=reason == "degraded")


async def _guided_turn(
    turn: Turn,
    state: ConversationState,
    services: Services,
    payload: str | None,
    text: str | None,
) -> TurnResult:
    state.guided.free_writing = services.health.available
    outcome = guided.handle(state.guided, state.language, payload=payload, text=text)
    result = await _apply(turn, state, services, outcome)
    result.degraded = state.guided_reason == "degraded"
    return result


async def _apply(
    turn: Turn, state: ConversationState, services: Services, outcome: guided.Outcome
) -> TurnResult:
    messages = list(outcome.replies)
    if outcome.leave:
        state.mode = "rasa"
        state.guided_reason = None
    if outcome.file:
        return await _file(turn, state, services, messages)
    if outcome.confirm_again and services.sessions is not None:
        # "Envoyer" again while no report is open: the answer to the first one was lost (a
        # timeout, a restart of the gateway). Show the confirmation of what this conversation
        # filed, if it filed something in the last hour.
        since = dt.datetime.now(dt.UTC) - CONFIRM_AGAIN_WINDOW
        try:
            ticket = await tickets.latest_for_conversation(
                services.sessions, turn.conversation_id, since
            )
        except (SQLAlchemyError, OSError) as exc:
            logger.error("guided mode: confirmation lookup failed: %s", type(exc).__name__)
            ticket = None
        if ticket is not None:
            summary = tickets.ticket_summary(ticket, with_tracking_code=True)
            return TurnResult(
                guided.filed(state.guided, summary, state.language), tickets=[_ticket(summary)]
            )
    return TurnResult(messages)


CONFIRM_AGAIN_WINDOW = dt.timedelta(hours=1)


def _ticket(summary: dict[str, Any]) -> dict[str, str]:
    ticket = {"reference": str(summary["reference"])}
    if summary.get("tracking_code"):
        ticket["tracking_code"] = str(summary["tracking_code"])
    return ticket


async def _file(
    turn: Turn, state: ConversationState, services: Services, before: list[replies.Reply]
) -> TurnResult:
    lang = state.language
    if services.sessions is None:
        logger.error("guided mode: no ticket store configured, report not filed")
        return TurnResult([*before, *guided.filing_failed(state.guided, lang)])
    report = guided.build_report(
        state.guided,
        conversation_id=turn.conversation_id,
        channel=turn.channel if turn.channel in tickets.CHANNELS else "web",
        language=lang,
    )
    try:
        # an idempotent retry (same report, same conversation, same day) is not a new filing
        ticket = await tickets.get_by_idempotency_key(
            services.sessions, report.idempotency_key or ""
        )
        if ticket is None and services.admission is not None:
            refusal = await services.admission.filing(turn.conversation_id, state.client, state)
            if refusal is not None:
                logger.info("guided mode: filing refused (%s limit)", refusal.scope)
                return TurnResult(
                    [
                        *before,
                        replies.Reply(text=_refusal_text(refusal, lang)),
                        guided.summary_reply(state.guided, lang),
                    ],
                    problem=_refusal_problem(refusal),
                    retry_after=refusal.retry_after or None,
                )
        if ticket is None:
            ticket, _created = await tickets.file_report(services.sessions, report)
    except (SQLAlchemyError, OSError, tickets.TicketError) as exc:
        logger.error("guided mode: filing failed: %s", type(exc).__name__)
        return TurnResult([*before, *guided.filing_failed(state.guided, lang)])
    summary = tickets.ticket_summary(ticket, with_tracking_code=True)
    return TurnResult(
        [*before, *guided.filed(state.guided, summary, lang)], tickets=[_ticket(summary)]
    )
