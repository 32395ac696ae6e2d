"""Telegram channel: python-telegram-bot inside the gateway (webhook or polling).

Every message goes through the channel-neutral :func:`webhook.conversation.turn.handle_turn`; the
replies (text + buttons) are rendered as plain-text messages (no ``parse_mode``: HTML typed by a
citizen is never interpreted) with an inline keyboard. Rasa payloads can exceed the 64 bytes
Telegram allows in ``callback_data``, so each button carries a short random key that this module
maps back to the payload (per chat, bounded, with a time to live).

Webhook mode (production): Telegram calls ``POST /telegram/webhook`` with the secret token in
``X-Telegram-Bot-Api-Secret-Token``; the route checks it, stores the update
(:mod:`webhook.channels.telegram_updates`), answers 200 and leaves the update to the PTB
``Application`` (update queue); the update is marked processed when the bot is done with it, and
the gateway processes again at start what a crash left unprocessed. A given ``update_id`` is
processed once. Polling mode (local use): PTB's ``Updater`` fetches updates with
``getUpdates``. Updates of one chat are processed in order, different chats concurrently
(:class:`ChatOrderedProcessor`).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import secrets
from collections import deque
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response
from sqlalchemy.exc import SQLAlchemyError
from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Update,
)
from telegram.error import InvalidToken, TelegramError
from telegram.ext import (
    Application,
    BaseUpdateProcessor,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from webhook import replies
from webhook.channels import telegram_updates
from webhook.config import Settings
from webhook.conversation import turn
from webhook.conversation.rasa_client import RasaClient
from webhook.delivery import notify
from webhook.store.state import MemoryStateBackend, StateBackend

logger = logging.getLogger(__name__)

CHANNEL = "telegram"
ALLOWED_UPDATES = ["message", "callback_query"]
MAX_TEXT = 4096  # Telegram's limit for one message
MAX_CALLBACK_DATA = 64  # bytes
MAX_UPDATE_BYTES = 1_000_000
SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
MODES = ("webhook", "polling")
# Commands a Telegram user may send, mapped to the Rasa payload they stand for.
COMMANDS = {"start": "/greet", "aide": "/aide_menu", "menu": "/aide_menu", "help": "/aide_menu"}

TelegramApp = Application[Any, Any, Any, Any, Any, Any]
DONE_GROUP = 99


class TelegramConfigError(ValueError):
    """The Telegram settings are inconsistent."""


def check_settings(settings: Settings) -> None:
    if settings.telegram_mode not in MODES:
        raise TelegramConfigError(
            f"TRANQUILLITE_TELEGRAM_MODE must be one of {', '.join(MODES)}, "
            f"got {settings.telegram_mode!r}"
        )
    if settings.telegram_mode == "webhook" and not SECRET_RE.fullmatch(settings.telegram_secret):
        raise TelegramConfigError(
            "TRANQUILLITE_TELEGRAM_SECRET is required in webhook mode "
            "(1-256 characters among A-Z a-z 0-9 _ -)"
        )


@dataclass
class _Button:
    title: str
    payload: str
    group: str
    used: bool = False


class ButtonStore:
    """Short callback keys → button payloads, per chat, expiring after ``ttl`` seconds, in the
    gateways' shared state (:mod:`webhook.store.state`): a button sent by one gateway instance
    works when the tap reaches another, or the same one after a restart.

    The keys of one keyboard form a group: once one of its buttons is pressed, the whole
    keyboard is used (a double tap does not send the choice twice, whichever gateway gets it).
    """

    def __init__(self, backend: StateBackend | None = None, *, ttl: float = 7 * 24 * 3600) -> None:
        self.backend = backend or MemoryStateBackend()
        self._ttl = ttl

    def new_group(self) -> str:
        return secrets.token_hex(4)

    async def put(self, chat_id: int, group: str, title: str, payload: str) -> str:
        key = "k" + secrets.token_urlsafe(9)
        await self.backend.put(
            f"tg_button:{chat_id}:{key}", {"t": title, "p": payload, "g": group}, self._ttl
        )
        return key

    async def get(self, chat_id: int, key: str) -> _Button | None:
        """The button for ``key`` (unknown or expired: None), without pressing it."""
        value = await self.backend.get(f"tg_button:{chat_id}:{key}")
        if not isinstance(value, dict):
            return None
        return _Button(str(value["t"]), str(value["p"]), str(value["g"]))

    async def take(self, chat_id: int, key: str) -> _Button | None:
        """The button for ``key`` (marking its keyboard used), or None if unknown/expired;
        ``used`` is set when its keyboard was already pressed."""
        button = await self.get(chat_id, key)
        if button is None:
            return None
        first = await self.backend.add(f"tg_group:{chat_id}:{button.group}", 1, self._ttl)
        button.used = not first
        return button


class RecentIds:
    """The last ``size`` update ids seen by this process (bounded memory): a shortcut before the
    durable, shared record of updates (:mod:`webhook.channels.telegram_updates`)."""

    def __init__(self, size: int = 10_000) -> None:
        self._order: deque[int] = deque()
        self._seen: set[int] = set()
        self._size = size

    def __contains__(self, update_id: object) -> bool:
        return update_id in self._seen

    def add(self, update_id: int) -> bool:
        """Remember ``update_id``; False when it was already seen."""
        if update_id in self._seen:
            return False
        self._seen.add(update_id)
        self._order.append(update_id)
        if len(self._order) > self._size:
            self._seen.discard(self._order.popleft())
        return True


class ChatOrderedProcessor(BaseUpdateProcessor):
    """Concurrent across chats, in order within a chat (one lock per chat, FIFO)."""

    def __init__(self, max_concurrent_updates: int) -> None:
        super().__init__(max_concurrent_updates)
        self._locks: dict[int, tuple[asyncio.Lock, int]] = {}

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        chat = update.effective_chat if isinstance(update, Update) else None
        if chat is None:
            await coroutine
            return
        lock, users = self._locks.get(chat.id, (asyncio.Lock(), 0))
        self._locks[chat.id] = (lock, users + 1)
        try:
            async with lock:
                await coroutine
        finally:
            lock, users = self._locks[chat.id]
            if users <= 1:
                del self._locks[chat.id]
            else:
                self._locks[chat.id] = (lock, users - 1)

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Cut ``text`` into Telegram-sized parts, at a line break or a space when possible."""
    parts: list[str] = []
    while len(text) > limit:
        cut = text.rfind("\n", 0, limit)
        if cut < limit // 2:
            cut = text.rfind(" ", 0, limit)
        if cut < limit // 2:
            cut = limit
        parts.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    if text:
        parts.append(text)
    return parts


class TelegramChannel:
    def __init__(
        self,
        settings: Settings,
        rasa: RasaClient,
        notifiers: notify.Notifiers,
        state: Any = None,
    ) -> None:
        check_settings(settings)
        self.settings = settings
        # the gateway's app.state: its ``conversations`` (turn.Services) are shared
        # with the web chat, read at each turn
        self._state = state
        self.mode = settings.telegram_mode
        self._rasa = rasa
        self._notifiers = notifiers
        conversations = getattr(state, "conversations", None)
        self.buttons = ButtonStore(conversations.store.backend if conversations else None)
        self.recent_updates = RecentIds()
        self.ready = False
        self._retry_task: asyncio.Task[None] | None = None
        root = settings.telegram_base_url.rstrip("/")
        builder = (
            Application.builder()
            .token(settings.telegram_token)
            .base_url(f"{root}/bot")
            .base_file_url(f"{root}/file/bot")
            .concurrent_updates(ChatOrderedProcessor(64))
        )
        if self.mode == "webhook":
            builder = builder.updater(None)
        self.application: TelegramApp = builder.build()
        app = self.application
        private = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE
        app.add_handler(CommandHandler(list(COMMANDS), self._on_command, filters=private))
        app.add_handler(MessageHandler(private & filters.TEXT, self._on_text))
        app.add_handler(MessageHandler(private & ~filters.TEXT, self._on_other))
        app.add_handler(CallbackQueryHandler(self._on_callback))
        # a later group: runs after the handler above, even when it failed
        app.add_handler(TypeHandler(Update, self._on_processed), group=DONE_GROUP)
        app.add_error_handler(self._on_error)

    # --- life cycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect to the Bot API; on a network failure keep retrying in the background."""
        # httpx logs request URLs at INFO level, and Bot API URLs contain the bot token.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        try:
            await self._start_once()
        except InvalidToken:
            raise
        except TelegramError as exc:
            logger.warning("Telegram not reachable at start (%s); retrying", type(exc).__name__)
            self._retry_task = asyncio.create_task(self._retry_start())

    async def _retry_start(self) -> None:
        delay = 2.0
        while True:
            await asyncio.sleep(delay)
            try:
                await self._start_once()
            except InvalidToken:
                logger.error("Telegram rejected the bot token; the channel stays off")
                return
            except TelegramError as exc:
                logger.warning("Telegram still not reachable (%s)", type(exc).__name__)
                delay = min(delay * 2, 60.0)
            else:
                return

    async def _start_once(self) -> None:
        app = self.application
        await app.initialize()
        if self.mode == "polling":
            assert app.updater is not None
            await app.updater.start_polling(allowed_updates=ALLOWED_UPDATES)
        elif self.settings.telegram_webhook_url:
            await app.bot.set_webhook(
                url=self.settings.telegram_webhook_url,
                secret_token=self.settings.telegram_secret,
                allowed_updates=ALLOWED_UPDATES,
            )
        await app.start()
        self._notifiers.register(CHANNEL, self.push)
        self.ready = True
        logger.info("Telegram channel started (%s mode)", self.mode)
        if self.mode == "webhook":
            await self._replay()

    def _sessions(self) -> Any:
        return getattr(self._state, "sessions", None)

    async def _replay(self) -> None:
        """Process the updates a crash or a restart left stored but unprocessed."""
        sessions = self._sessions()
        if sessions is None:
            return
        try:
            pending = await telegram_updates.unprocessed(sessions)
        except SQLAlchemyError as exc:
            logger.error("Telegram updates not replayed: %s", type(exc).__name__)
            return
        for update_id, payload in pending:
            self.recent_updates.add(update_id)
            await self.application.update_queue.put(Update.de_json(payload, self.application.bot))
        if pending:
            logger.info(
                "Telegram: %d stored update(s) processed again after a restart", len(pending)
            )

    async def _on_processed(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        sessions = self._sessions()
        if sessions is None or self.mode != "webhook":
            return
        try:
            await telegram_updates.done(sessions, update.update_id)
        except SQLAlchemyError as exc:
            logger.error(
                "Telegram update %s not marked processed: %s", update.update_id, type(exc).__name__
            )

    async def stop(self) -> None:
        if self._retry_task is not None:
            self._retry_task.cancel()
            try:
                await self._retry_task
            except asyncio.CancelledError:
                pass
        self._notifiers.unregister(CHANNEL)
        app = self.application
        if self.ready:
            self.ready = False
            if app.updater is not None and app.updater.running:
                await app.updater.stop()
            if app.running:
                await app.stop()
        await app.shutdown()

    # --- webhook ----------------------------------------------------------------------------

    def secret_ok(self, header: str | None) -> bool:
        expected = self.settings.telegram_secret.encode()
        return header is not None and hmac.compare_digest(header.encode(), expected)

    async def accept(self, data: dict[str, Any]) -> bool:
        """Store then queue an update received by the webhook; False when it is a duplicate.
        Raises SQLAlchemyError when it cannot be stored (the webhook then answers 503 and
        Telegram delivers it again)."""
        update = Update.de_json(data, self.application.bot)
        if update.update_id in self.recent_updates:
            logger.info("duplicate Telegram update ignored")
            return False
        sessions = self._sessions()
        if sessions is not None and not await telegram_updates.record(
            sessions, update.update_id, data
        ):
            self.recent_updates.add(update.update_id)
            logger.info("duplicate Telegram update ignored")
            return False
        self.recent_updates.add(update.update_id)
        await self.application.update_queue.put(update)
        return True

    # --- rendering --------------------------------------------------------------------------

    async def _markup(
        self, chat_id: int, buttons: list[replies.Button]
    ) -> InlineKeyboardMarkup | None:
        if not buttons:
            return None
        group = self.buttons.new_group()
        rows = []
        for button in buttons:
            key = await self.buttons.put(chat_id, group, button.title, button.payload)
            assert len(key.encode()) <= MAX_CALLBACK_DATA
            rows.append([InlineKeyboardButton(button.title, callback_data=key)])
        return InlineKeyboardMarkup(rows)

    async def send_replies(self, chat_id: int, messages: list[replies.Reply]) -> None:
        """Send replies in order, as plain text (never parsed as HTML or Markdown)."""
        for reply in messages:
            parts = split_text(reply.text) or (
                [replies.message("telegram_choose")] if reply.buttons else []
            )
            for index, part in enumerate(parts):
                last = index == len(parts) - 1
                await self.application.bot.send_message(
                    chat_id=chat_id,
                    text=part,
                    reply_markup=await self._markup(chat_id, reply.buttons) if last else None,
                    link_preview_options=LinkPreviewOptions(is_disabled=True),
                )

    async def push(self, recipient: str, reply: replies.Reply) -> None:
        """Push sender registered in ``app.state.notifiers`` (recipient: the chat id)."""
        await self.send_replies(int(recipient), [reply])

    # --- handlers ---------------------------------------------------------------------------

    async def _turn(
        self,
        update: Update,
        chat_id: int,
        *,
        text: str | None = None,
        payload: str | None = None,
    ) -> None:
        user = update.effective_user
        try:
            result = await turn.handle_turn(
                turn.Turn(
                    channel=CHANNEL,
                    sender=str(chat_id),
                    text=text,
                    payload=payload,
                    # Telegram's interface language: a hint for a new conversation only
                    language=(user.language_code if user and user.language_code else "fr"),
                ),
                self._rasa,
                max_message_chars=self.settings.max_message_chars,
                services=getattr(self._state, "conversations", None),
            )
            messages = result.messages
        except Exception as exc:  # noqa: BLE001 - never leave the citizen without an answer
            logger.error("Telegram turn failed: %s", type(exc).__name__)
            messages = [
                replies.Reply(text=replies.message("no_reply"), buttons=[self._menu_button()])
            ]
        await self.send_replies(chat_id, messages)

    async def _on_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None or update.effective_chat is None:
            return
        text = message.text or ""
        if text.startswith("/"):
            # An unknown /command is read as words: typed text never triggers a Rasa intent.
            text = text.lstrip("/")
        await self._turn(update, update.effective_chat.id, text=text)

    async def _on_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None or update.effective_chat is None or not message.text:
            return
        command = message.text.split()[0].lstrip("/").split("@")[0].lower()
        await self._turn(update, update.effective_chat.id, payload=COMMANDS.get(command, "/greet"))

    async def _on_other(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat = update.effective_chat
        if chat is None:
            return
        await self.send_replies(chat.id, [self._text_only_reply()])

    async def _on_callback(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None:
            return
        chat = update.effective_chat
        button = await self.buttons.take(chat.id, query.data) if chat and query.data else None
        if chat is None or button is None:
            expired = replies.message("telegram_button_expired")
            await query.answer(text=expired)
            if chat is not None:
                await self.send_replies(
                    chat.id, [replies.Reply(text=expired, buttons=[self._menu_button()])]
                )
            return
        await query.answer()
        if button.used:
            return  # a second tap on a keyboard already answered
        try:
            # The choice is made: take the keyboard away so it cannot be pressed again.
            await query.edit_message_reply_markup(reply_markup=None)
        except TelegramError as exc:
            logger.info("could not remove a used keyboard (%s)", type(exc).__name__)
        await self._turn(update, chat.id, payload=button.payload)

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        error = context.error
        update_id = update.update_id if isinstance(update, Update) else None
        # Type only: an exception message could quote the citizen's text.
        logger.error(
            "Telegram update %s failed: %s", update_id, type(error).__name__ if error else "?"
        )

    @staticmethod
    def _menu_button() -> replies.Button:
        return replies.Button(title=replies.message("menu_button"), payload="/aide_menu")

    def _text_only_reply(self) -> replies.Reply:
        return replies.Reply(
            text=replies.message("telegram_text_only"), buttons=[self._menu_button()]
        )


async def start(
    settings: Settings, rasa: RasaClient, notifiers: notify.Notifiers, state: Any = None
) -> TelegramChannel | None:
    """Start the Telegram channel if a bot token is configured (``state``: the app's state)."""
    if not settings.telegram_token:
        return None
    channel = TelegramChannel(settings, rasa, notifiers, state)
    await channel.start()
    return channel


router = APIRouter()


@router.post("/telegram/webhook", include_in_schema=False)
async def telegram_webhook(
    request: Request,
    x_telegram_bot_api_secret_token: Annotated[str | None, Header()] = None,
) -> Response:
    channel: TelegramChannel | None = getattr(request.app.state, "telegram", None)
    if channel is None or channel.mode != "webhook":
        return Response(status_code=404)
    if not channel.secret_ok(x_telegram_bot_api_secret_token):
        logger.warning("Telegram webhook call with a wrong or missing secret token")
        return Response(status_code=403)
    if not channel.ready:
        return Response(status_code=503)  # Telegram delivers the update again later
    declared = request.headers.get("content-length", "0")
    if not declared.isdigit() or int(declared) > MAX_UPDATE_BYTES:
        return Response(status_code=413)
    body = await request.body()
    if len(body) > MAX_UPDATE_BYTES:
        return Response(status_code=413)
    try:
        data = json.loads(body)
        if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
            raise ValueError("not an update")
        await channel.accept(data)
    except (ValueError, TypeError, KeyError, AttributeError):
        return Response(status_code=400)
    except SQLAlchemyError as exc:
        # not stored: not ours yet, Telegram delivers it again later
        logger.error("Telegram update not stored: %s", type(exc).__name__)
        return Response(status_code=503)
    return Response(status_code=200)
