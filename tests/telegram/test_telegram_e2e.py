"""End to end on Telegram: python-telegram-bot in the real gateway (uvicorn) → real Rasa server
and action server (``stack``) → ticket filed; the Bot API is the local fake that records what the
bot sends."""

from __future__ import annotations

import itertools
import json
import re
import sqlite3
import time
from dataclasses import replace
from typing import Any

import pytest
from fake_bot_api import Call, FakeBotAPI, callback_update, text_update
from telegram_support import SECRET, TOKEN

from webhook import replies
from webhook.channels.telegram_channel import MAX_CALLBACK_DATA
from webhook.config import Settings
from webhook.ops.supervisor import Stack

pytestmark = pytest.mark.e2e

REFERENCE_RE = re.compile(r"\b(\d{2,3}|2A|2B)-\d{4}-\d{6}\b")
HTML_DESCRIPTION = "Des dépôts sauvages de sacs poubelle <script>alert(1)</script>"


def buttons(call: Call) -> list[dict[str, Any]]:
    markup = call.params.get("reply_markup") or {}
    return [button for row in markup.get("inline_keyboard", []) for button in row]


class TelegramUser:
    """A citizen in a private chat with the bot; each action returns the bot's answers."""

    def __init__(self, api: FakeBotAPI, gateway: Any, chat_id: int) -> None:
        self.api = api
        self.gateway = gateway
        self.chat_id = chat_id
        self.update_ids = itertools.count(chat_id * 1000)
        self.last_update: dict[str, Any] | None = None

    def _answers(self, update: dict[str, Any]) -> list[Call]:
        before = len(self.api.calls_of("sendMessage", chat_id=self.chat_id))
        assert self.gateway.post_update(update) == 200
        self.last_update = update
        self.api.wait_for("sendMessage", count=before + 1, chat_id=self.chat_id, timeout=90)
        self.api.wait_quiet(0.8)
        return self.api.calls_of("sendMessage", chat_id=self.chat_id)[before:]

    def say(self, text: str) -> list[Call]:
        return self._answers(text_update(next(self.update_ids), self.chat_id, text))

    def press(self, message: Call, title_part: str) -> list[Call]:
        button = next(b for b in buttons(message) if title_part in b["text"])
        assert len(button["callback_data"].encode()) <= MAX_CALLBACK_DATA
        update_id = next(self.update_ids)
        answers = self._answers(
            callback_update(
                update_id, self.chat_id, button["callback_data"], message.result["message_id"]
            )
        )
        answered = [
            c
            for c in self.api.calls_of("answerCallbackQuery")
            if c.params["callback_query_id"] == f"q{update_id}"
        ]
        assert len(answered) == 1, "every callback query is answered"
        return answers


def text_of(calls: list[Call]) -> str:
    return "\n".join(c.params["text"] for c in calls)


def with_buttons(calls: list[Call]) -> Call:
    return next(c for c in calls if buttons(c))


def test_whole_report_on_telegram(stack: Stack, fake_api: FakeBotAPI, gateway_process: Any) -> None:
    gateway = gateway_process(
        TRANQUILLITE_RASA_URL=stack.settings.rasa_url,
        TRANQUILLITE_TELEGRAM_TOKEN=TOKEN,
        TRANQUILLITE_TELEGRAM_SECRET=SECRET,
        TRANQUILLITE_TELEGRAM_BASE_URL=fake_api.base_url,
        TRANQUILLITE_TELEGRAM_MODE="webhook",
    )
    user = TelegramUser(fake_api, gateway, chat_id=880001)

    greeting = user.say("/start")
    assert "Bonjour" in text_of(greeting)
    asked = user.press(with_buttons(greeting), "Bruit, dépôts sauvages")
    assert fake_api.calls_of("editMessageReplyMarkup", chat_id=user.chat_id)  # keyboard removed
    assert asked, "the bot asks for the description"
    assert "Où" in text_of(user.say(HTML_DESCRIPTION))
    assert "Depuis quand" in text_of(user.say("derrière le stade"))

    asked_commune = user.say("depuis un mois")
    assert "commune" in text_of(asked_commune).lower()
    # Telegram delivers the same update again: it is not processed a second time (else "depuis
    # un mois" would also be taken as the answer to the commune question).
    sent_before = len(fake_api.calls_of("sendMessage", chat_id=user.chat_id))
    assert user.last_update is not None
    assert gateway.post_update(user.last_update) == 200
    time.sleep(3)
    assert len(fake_api.calls_of("sendMessage", chat_id=user.chat_id)) == sent_before

    choices = user.say("Saint-Claude")
    contact = user.press(with_buttons(choices), "(39")
    assert "recontacte" in text_of(contact)
    summary = user.press(with_buttons(contact), "Non, rester anonyme")
    summary_text = text_of(summary)
    assert "Saint-Claude (39)" in summary_text
    assert HTML_DESCRIPTION in summary_text  # shown as typed: plain text
    assert all("parse_mode" not in c.params for c in fake_api.calls_of("sendMessage"))

    # A forged webhook call (bad secret) saying "oui" is rejected and files nothing.
    forged = text_update(next(user.update_ids), user.chat_id, "oui")
    assert gateway.post_update(forged, secret="wrong-secret") == 403
    time.sleep(3)
    assert not REFERENCE_RE.search(text_of(fake_api.calls_of("sendMessage", chat_id=user.chat_id)))

    filed = text_of(user.press(with_buttons(summary), "Oui, envoyer"))
    match = REFERENCE_RE.search(filed)
    assert match, filed
    reference = match.group(0)
    assert reference.startswith("39-")

    db_path = stack.settings.database_url.split("///", 1)[1]
    with sqlite3.connect(db_path) as conn:
        row = conn.execute(
            "SELECT report_type, commune_insee, channel, conversation_id FROM tickets "
            "WHERE reference = ?",
            (reference,),
        ).fetchone()
    assert row == ("incivilite", "39478", "telegram", f"telegram-{user.chat_id}")


async def test_pushed_button_with_a_long_payload_reaches_rasa(
    stack: Stack, fake_api: FakeBotAPI, telegram_settings: Settings, running_app: Any
) -> None:
    settings = replace(telegram_settings, rasa_url=stack.settings.rasa_url, rasa_timeout=60)
    long_payload = "/aide_menu" + json.dumps(
        {"url": "https://www.service-public.fr/particuliers/vosdroits/F1435"}
    )
    assert len(long_payload.encode()) > MAX_CALLBACK_DATA
    chat_id = 880002
    async with running_app(settings) as gw:
        await gw.app.state.notifiers.send(
            "telegram",
            str(chat_id),
            replies.Reply(
                text="Votre signalement a été transmis.",
                buttons=[replies.Button(title="Faire un autre signalement", payload=long_payload)],
            ),
        )
        (pushed,) = fake_api.calls_of("sendMessage", chat_id=chat_id)
        (button,) = buttons(pushed)
        assert len(button["callback_data"].encode()) <= MAX_CALLBACK_DATA
        update = callback_update(1, chat_id, button["callback_data"], pushed.result["message_id"])
        assert await gw.post_update(update) == 200
        answers = await fake_api.await_for("answerCallbackQuery")
        menu = await fake_api.await_for("sendMessage", count=2, chat_id=chat_id, timeout=90)
    assert answers[0].params["callback_query_id"] == "q1"
    assert "Choisissez le sujet" in menu[1].params["text"]
    assert buttons(menu[1])
