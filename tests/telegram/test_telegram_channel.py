"""Telegram channel without Rasa: python-telegram-bot inside the real gateway app, talking to a
local fake Bot API over HTTP. Webhook secret, duplicates, callbacks, push, polling mode."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

import pytest
from fake_bot_api import FakeBotAPI, callback_update, free_port, sticker_update, text_update
from telegram_support import SECRET, TOKEN

from webhook import replies
from webhook.channels.telegram_channel import (
    MAX_CALLBACK_DATA,
    ButtonStore,
    RecentIds,
    TelegramChannel,
    TelegramConfigError,
    check_settings,
    split_text,
)
from webhook.config import Settings
from webhook.store.state import MemoryStateBackend

TEXT_ONLY = replies.message("telegram_text_only")
EXPIRED = replies.message("telegram_button_expired")


def keyboard(call: Any) -> list[dict[str, Any]]:
    markup = call.params.get("reply_markup") or {}
    return [button for row in markup.get("inline_keyboard", []) for button in row]


async def test_wrong_or_missing_secret_is_rejected(
    fake_api: FakeBotAPI, telegram_settings: Settings, running_app: Any
) -> None:
    async with running_app(telegram_settings) as gw:
        assert await gw.post_update(sticker_update(1, 501), secret="not-the-secret") == 403
        assert await gw.post_update(sticker_update(2, 502), secret=None) == 403
        assert await gw.post_update(sticker_update(3, 502), secret=SECRET + "x") == 403
        assert await gw.post_update(sticker_update(4, 503)) == 200
        await fake_api.await_for("sendMessage", chat_id=503)
        await fake_api.await_quiet()
    assert fake_api.calls_of("sendMessage", chat_id=501) == []
    assert fake_api.calls_of("sendMessage", chat_id=502) == []


async def test_malformed_update_is_refused(
    fake_api: FakeBotAPI, telegram_settings: Settings, running_app: Any
) -> None:
    async with running_app(telegram_settings) as gw:
        response = await gw.client.post(
            "/telegram/webhook",
            content=b"{not json",
            headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
        )
        assert response.status_code == 400
        assert await gw.post_update({"no_update_id": True}) == 400
        huge = text_update(5, 640, "x" * 1_100_000)
        assert await gw.post_update(huge) == 413
        await fake_api.await_quiet(0.3)
    assert fake_api.calls_of("sendMessage") == []


async def test_duplicate_update_is_processed_once(
    fake_api: FakeBotAPI, telegram_settings: Settings, running_app: Any
) -> None:
    async with running_app(telegram_settings) as gw:
        update = sticker_update(77, 610)
        assert await gw.post_update(update) == 200
        assert await gw.post_update(update) == 200  # Telegram delivering it again
        await fake_api.await_for("sendMessage", chat_id=610)
        await fake_api.await_quiet()
        assert len(fake_api.calls_of("sendMessage", chat_id=610)) == 1
        assert await gw.post_update(sticker_update(78, 610)) == 200  # a new update is processed
        await fake_api.await_for("sendMessage", count=2, chat_id=610)
    sent = fake_api.calls_of("sendMessage", chat_id=610)
    assert sent[0].params["text"] == TEXT_ONLY
    assert "parse_mode" not in sent[0].params
    assert [b["text"] for b in keyboard(sent[0])] == [replies.message("menu_button")]


async def test_unknown_or_expired_button_is_answered_politely(
    fake_api: FakeBotAPI, telegram_settings: Settings, running_app: Any
) -> None:
    async with running_app(telegram_settings) as gw:
        assert await gw.post_update(callback_update(90, 620, "k-unknown-key", 55, "qx")) == 200
        answers = await fake_api.await_for("answerCallbackQuery")
        sent = await fake_api.await_for("sendMessage", chat_id=620)
    assert answers[0].params["callback_query_id"] == "qx"
    assert answers[0].params["text"] == EXPIRED
    assert sent[0].params["text"] == EXPIRED
    assert keyboard(sent[0])


async def test_push_sends_plain_text_and_a_short_key_for_a_long_payload(
    fake_api: FakeBotAPI, telegram_settings: Settings, running_app: Any
) -> None:
    long_payload = "/choisir_commune" + json.dumps(
        {"commune_insee": "insee:39478", "commune": "Saint-Claude", "source": "statut"}
    )
    assert len(long_payload.encode()) > MAX_CALLBACK_DATA
    text = (
        "Votre signalement 39-2026-000001 est <b>en cours</b> de traitement. <script>x()</script>"
    )
    async with running_app(telegram_settings) as gw:
        notifiers = gw.app.state.notifiers
        assert notifiers.can_push("telegram")
        delivered = await notifiers.send(
            "telegram",
            "4242",
            replies.Reply(
                text=text, buttons=[replies.Button(title="Suivre", payload=long_payload)]
            ),
        )
        assert delivered is True
        sent = fake_api.calls_of("sendMessage", chat_id=4242)
        assert len(sent) == 1
        assert sent[0].params["text"] == text  # as typed: no HTML interpretation
        assert "parse_mode" not in sent[0].params
        (button,) = keyboard(sent[0])
        assert button["text"] == "Suivre"
        assert len(button["callback_data"].encode()) <= MAX_CALLBACK_DATA
        # The key resolves to the full payload on the server side.
        channel: TelegramChannel = gw.app.state.telegram
        stored = await channel.buttons.get(4242, button["callback_data"])
        assert stored is not None
        assert stored.payload == long_payload

        # Pressing it: the query is answered and the keyboard removed; a second tap on the same
        # keyboard is answered too but does not send the choice again.
        message_id = 9001
        await gw.post_update(callback_update(200, 4242, button["callback_data"], message_id))
        await fake_api.await_for("answerCallbackQuery", count=1)
        edits = await fake_api.await_for("editMessageReplyMarkup", chat_id=4242)
        await fake_api.await_for("sendMessage", count=2, chat_id=4242)  # the turn's reply
        await fake_api.await_quiet()
        replies_after_first = len(fake_api.calls_of("sendMessage", chat_id=4242))
        await gw.post_update(callback_update(201, 4242, button["callback_data"], message_id))
        await fake_api.await_for("answerCallbackQuery", count=2)
        await fake_api.await_quiet()
    assert edits[0].params["message_id"] == message_id
    assert "reply_markup" not in edits[0].params or not edits[0].params["reply_markup"]
    assert len(fake_api.calls_of("sendMessage", chat_id=4242)) == replies_after_first
    answers = fake_api.calls_of("answerCallbackQuery")
    assert [a.params["callback_query_id"] for a in answers] == ["q200", "q201"]


async def test_webhook_is_registered_with_the_secret(
    fake_api: FakeBotAPI, telegram_settings: Settings, running_app: Any
) -> None:
    settings = replace(telegram_settings, telegram_webhook_url="https://mairie.example/tg")
    async with running_app(settings):
        (call,) = fake_api.calls_of("setWebhook")
    assert call.params["url"] == "https://mairie.example/tg"
    assert call.params["secret_token"] == SECRET
    assert call.params["allowed_updates"] == ["message", "callback_query"]
    assert fake_api.calls_of("getMe")


async def test_polling_mode_fetches_updates(
    fake_api: FakeBotAPI, telegram_settings: Settings, running_app: Any
) -> None:
    settings = replace(telegram_settings, telegram_mode="polling", telegram_secret="")
    async with running_app(settings) as gw:
        fake_api.queue_update(sticker_update(500, 630))
        sent = await fake_api.await_for("sendMessage", chat_id=630)
        # no webhook route in polling mode
        assert await gw.post_update(sticker_update(501, 631)) == 404
    assert sent[0].params["text"] == TEXT_ONLY
    assert fake_api.calls_of("deleteWebhook")
    offsets = [c.params.get("offset") for c in fake_api.calls_of("getUpdates")]
    assert 501 in offsets  # the update was acknowledged to the API


async def test_no_token_means_no_telegram(tmp_path: Any, running_app: Any) -> None:
    settings = replace(
        Settings(),
        var_dir=tmp_path,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}",
    )
    async with running_app(settings) as gw:
        assert not gw.app.state.notifiers.can_push("telegram")
        assert await gw.post_update(text_update(1, 1, "Bonjour")) == 404


def test_settings_are_checked() -> None:
    base = replace(Settings(), telegram_token=TOKEN)
    with pytest.raises(TelegramConfigError, match="SECRET"):
        check_settings(replace(base, telegram_mode="webhook", telegram_secret=""))
    with pytest.raises(TelegramConfigError, match="SECRET"):
        check_settings(replace(base, telegram_mode="webhook", telegram_secret="has space"))
    with pytest.raises(TelegramConfigError, match="MODE"):
        check_settings(replace(base, telegram_mode="push", telegram_secret=SECRET))
    check_settings(replace(base, telegram_mode="polling"))
    check_settings(replace(base, telegram_mode="webhook", telegram_secret=SECRET))


async def test_button_store_expires_and_stays_bounded() -> None:
    """The map lives in the gateways' shared state (here the one-process backend): keys expire,
    one keyboard is answered once, and the backend keeps at most ``max_entries``."""
    now = [0.0]
    backend = MemoryStateBackend(clock=lambda: now[0], max_entries=6)
    store = ButtonStore(backend, ttl=60)
    group = store.new_group()
    key = await store.put(1, group, "A", "/a")
    other = await store.put(1, group, "B", "/b")
    first = await store.take(1, key)
    assert first is not None and first.payload == "/a" and not first.used
    again = await store.take(1, other)
    assert again is not None and again.used  # same keyboard: already answered
    assert await store.take(2, key) is None  # another chat's key is unknown here
    late = await store.put(1, store.new_group(), "C", "/c")
    now[0] = 61
    assert await store.take(1, late) is None  # expired
    keys = [await store.put(1, store.new_group(), str(i), f"/{i}") for i in range(8)]
    assert await store.take(1, keys[0]) is None  # the least recently stored were dropped
    assert await store.take(1, keys[-1]) is not None


def test_recent_ids_are_bounded() -> None:
    ids = RecentIds(size=3)
    assert ids.add(1) and not ids.add(1)
    for i in (2, 3, 4):
        assert ids.add(i)
    assert ids.add(1)  # forgotten after 3 newer ones


def test_split_text_respects_telegram_limit() -> None:
    text = ("Ligne de texte assez longue pour remplir. " * 40 + "\n") * 5
    parts = split_text(text, limit=500)
    assert all(0 < len(p) <= 500 for p in parts)
    assert " ".join(" ".join(parts).split()) == " ".join(text.split())
    assert split_text("") == []
    assert split_text("x" * 1200, limit=500) == ["x" * 500, "x" * 500, "x" * 200]


async def test_gateway_starts_while_telegram_is_unreachable_and_connects_later(
    telegram_settings: Settings, running_app: Any
) -> None:
    late_api = FakeBotAPI(TOKEN, free_port())  # nothing listens there yet
    settings = replace(telegram_settings, telegram_base_url=late_api.base_url)
    async with running_app(settings) as gw:
        channel: TelegramChannel = gw.app.state.telegram
        assert not channel.ready
        assert not gw.app.state.notifiers.can_push("telegram")
        assert await gw.post_update(sticker_update(1, 650)) == 503  # Telegram retries later
        await asyncio.to_thread(late_api.start)
        try:
            for _ in range(100):
                if channel.ready:
                    break
                await asyncio.sleep(0.1)
            assert channel.ready
            assert await gw.post_update(sticker_update(1, 650)) == 200
            sent = await late_api.await_for("sendMessage", chat_id=650)
        finally:
            await asyncio.to_thread(late_api.stop)
    assert sent[0].params["text"] == TEXT_ONLY


async def test_agency_status_change_is_pushed_to_the_telegram_chat(
    fake_api: FakeBotAPI, telegram_settings: Settings, running_app: Any
) -> None:
    """Ticket filed from Telegram → an agency acknowledges it → the outbox pushes the notice."""
    from webhook.store import lifecycle, tickets

    async with running_app(telegram_settings) as gw:
        ticket, _ = await tickets.file_report(
            gw.app.state.sessions,
            tickets.NewReport(
                report_type="incivilite",
                commune_insee="39198",
                fields={"description": "tapage nocturne"},
                channel="telegram",
                conversation_id="telegram-777",
            ),
        )
        await lifecycle.acknowledge(gw.app.state.sessions, ticket.id, "agent-test")
        calls = await fake_api.await_for("sendMessage", count=1, chat_id=777, timeout=60)
        await fake_api.await_quiet(2.0)
    texts = [str(c.params.get("text", "")) for c in fake_api.calls_of("sendMessage", chat_id=777)]
    assert calls and any(ticket.reference in text for text in texts), texts
    assert any("pris en compte" in text for text in texts), texts
    assert all("tapage" not in text for text in texts)  # the notice carries no report content
