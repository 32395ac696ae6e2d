"""Channel-neutral conversation turn: hygiene, safety check, Rasa, fallbacks.

Every channel (web widget, Telegram, ...) calls :func:`handle_turn` and renders the replies it
returns in its own way. Nothing here knows about HTTP or Telegram.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from actions import safety
from webhook import replies
from webhook.rasa_client import RasaClient, RasaUnavailable

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Turn:
    """One incoming message: typed text, or the payload of a button."""

    channel: str
    sender: str
    text: str | None = None
    payload: str | None = None
    language: str = "fr"

    @property
    def conversation_id(self) -> str:
        return f"{self.channel}-{self.sender}"


@dataclass
class TurnResult:
    messages: list[replies.Reply] = field(default_factory=list)
    # what went wrong, if anything: None, "too_long", "rasa_unavailable"
    problem: str | None = None


def _menu_button(language: str) -> replies.Button:
    return replies.Button(title=replies.message("menu_button", language), payload="/aide_menu")


async def handle_turn(turn: Turn, rasa: RasaClient, *, max_message_chars: int) -> TurnResult:
    """Process one message and return what to show, the emergency numbers first if needed."""
    language = turn.language
    message = turn.payload if turn.payload is not None else (turn.text or "")
    if turn.payload is None:
        if len(message) > max_message_chars:
            return TurnResult(
                [
                    replies.Reply(
                        text=replies.message("message_too_long", language, limit=max_message_chars)
                    )
                ],
                problem="too_long",
            )
        message = message.strip()
        if not message:
            return TurnResult(
                [
                    replies.Reply(
                        text=replies.message("empty_message", language),
                        buttons=[_menu_button(language)],
                    )
                ]
            )
    # Safety first (SPEC §3): every typed message is checked for immediate danger before
    # anything else, independently of the classifier; the emergency numbers come first.
    first: list[replies.Reply] = []
    if turn.payload is None:
        assessment = safety.assess(message, language)
        if assessment.immediate_danger:
            logger.info("immediate danger detected: rules=%s", ",".join(assessment.matched))
            emergency = safety.emergency_message(assessment, language)
            # The conversation goes on right below (Rasa's reply), so no extra buttons here.
            first.append(replies.Reply(text=emergency["text"]))
    metadata: dict[str, Any] = {"channel": turn.channel, "language": language}
    try:
        items = await rasa.send(turn.conversation_id, message, metadata=metadata)
    except RasaUnavailable:
        return TurnResult(
            [*first, replies.Reply(text=replies.message("assistant_unavailable", language))],
            problem="rasa_unavailable",
        )
    messages = replies.from_rasa(items)
    if not messages:
        # Rasa answered nothing (e.g. a failing custom action): never leave the citizen
        # without an answer.
        logger.warning("Rasa returned no message for a %s conversation", turn.channel)
        messages = [
            replies.Reply(
                text=replies.message("no_reply", language), buttons=[_menu_button(language)]
            )
        ]
    return TurnResult([*first, *messages])
