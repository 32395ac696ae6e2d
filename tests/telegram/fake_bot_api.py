"""A local fake of the Telegram Bot API, for python-telegram-bot to talk to (its ``base_url``).

It implements the methods PTB calls (getMe, setWebhook, deleteWebhook, getWebhookInfo,
getUpdates, sendMessage, editMessageReplyMarkup, answerCallbackQuery, sendChatAction), records
every call with its decoded parameters, and serves updates queued by the test to ``getUpdates``.
It runs as a real HTTP server (Starlette + uvicorn) in a thread.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

BOT_USER = {
    "id": 7000001,
    "is_bot": True,
    "first_name": "Tranquillité",
    "username": "tranquillite_test_bot",
    "can_join_groups": False,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}
# Parameters PTB sends as plain strings (everything else is JSON-encoded).
STRING_PARAMS = {"text", "callback_query_id", "url", "secret_token", "inline_message_id"}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    at: float
    result: Any = None


class FakeBotAPI:
    def __init__(self, token: str, port: int) -> None:
        self.token = token
        self.port = port
        self.calls: list[Call] = []
        self._updates: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._message_ids = itertools.count(1000)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        # seconds sendMessage takes to answer (a slow or stuck Bot API)
        self.send_delay = 0.0

    # --- test side ----------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        app = Starlette(
            routes=[Route("/bot{token}/{method}", self._endpoint, methods=["GET", "POST"])]
        )
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake Bot API did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._server.force_exit = True  # a request held by send_delay does not hold us
            self._thread.join(timeout=10)

    def queue_update(self, update: dict[str, Any]) -> None:
        """Make ``update`` available to getUpdates (polling mode)."""
        with self._cond:
            self._updates.append(update)

    def calls_of(self, method: str, chat_id: int | None = None) -> list[Call]:
        with self._cond:
            return [
                c
                for c in self.calls
                if c.method == method and (chat_id is None or c.params.get("chat_id") == chat_id)
            ]

    def wait_for(
        self, method: str, count: int = 1, chat_id: int | None = None, timeout: float = 30.0
    ) -> list[Call]:
        """Wait until at least ``count`` calls of ``method`` were recorded; return them."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [
                    c
                    for c in self.calls
                    if c.method == method
                    and (chat_id is None or c.params.get("chat_id") == chat_id)
                ]
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"{method} called {len(found)} time(s), expected {count}; "
                        f"calls: {[c.method for c in self.calls]}"
                    )
                self._cond.wait(remaining)

    async def await_for(
        self, method: str, count: int = 1, chat_id: int | None = None, timeout: float = 30.0
    ) -> list[Call]:
        """:meth:`wait_for` for a test whose event loop runs the bot (does not block it)."""
        return await asyncio.to_thread(self.wait_for, method, count, chat_id, timeout)

    async def await_quiet(self, seconds: float = 0.5) -> None:
        await asyncio.to_thread(self.wait_quiet, seconds)

    def wait_quiet(self, seconds: float = 0.5, timeout: float = 30.0) -> None:
        """Wait until no call was recorded for ``seconds`` (the bot is done answering)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._cond:
                last = self.calls[-1].at if self.calls else 0.0
            if time.monotonic() - last >= seconds:
                return
            time.sleep(0.05)
        raise AssertionError("the bot kept calling the API")

    # --- server side --------------------------------------------------------------------

    async def _endpoint(self, request: Request) -> JSONResponse:
        if request.path_params["token"] != self.token:
            return JSONResponse(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status_code=401
            )
        method = request.path_params["method"]
        params = await self._params(request)
        handler = getattr(self, f"_m_{method}", None)
        result = await handler(params) if handler is not None else None
        with self._cond:
            self.calls.append(Call(method, params, time.monotonic(), result))
            self._cond.notify_all()
        if handler is None:
            return JSONResponse(
                {"ok": False, "error_code": 404, "description": "Not Found: method not found"},
                status_code=404,
            )
        return JSONResponse({"ok": True, "result": result})

    @staticmethod
    async def _params(request: Request) -> dict[str, Any]:
        body = (await request.body()).decode()
        if request.headers.get("content-type", "").startswith("application/json"):
            data: dict[str, Any] = json.loads(body or "{}")
            return data
        params: dict[str, Any] = {}
        for key, value in parse_qsl(body, keep_blank_values=True):
            if key in STRING_PARAMS:
                params[key] = value
            else:
                try:
                    params[key] = json.loads(value)
                except ValueError:
                    params[key] = value
        return params

    def _message(self, chat_id: Any, **fields: Any) -> dict[str, Any]:
        return {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": int(chat_id), "type": "private"},
            "from": BOT_USER,
            **{k: v for k, v in fields.items() if v is not None},
        }

    async def _m_getMe(self, params: dict[str, Any]) -> Any:
        return BOT_USER

    async def _m_setWebhook(self, params: dict[str, Any]) -> Any:
        return True

    async def _m_deleteWebhook(self, params: dict[str, Any]) -> Any:
        return True

    async def _m_getWebhookInfo(self, params: dict[str, Any]) -> Any:
        return {"url": "", "has_custom_certificate": False, "pending_update_count": 0}

    async def _m_sendChatAction(self, params: dict[str, Any]) -> Any:
        return True

    async def _m_answerCallbackQuery(self, params: dict[str, Any]) -> Any:
        return True

    async def _m_sendMessage(self, params: dict[str, Any]) -> Any:
        if self.send_delay:
            await asyncio.sleep(self.send_delay)
        return self._message(
            params["chat_id"], text=params["text"], reply_markup=params.get("reply_markup")
        )

    async def _m_editMessageReplyMarkup(self, params: dict[str, Any]) -> Any:
        message = self._message(params["chat_id"], text="…")
        message["message_id"] = params["message_id"]
        return message

    async def _m_getUpdates(self, params: dict[str, Any]) -> Any:
        offset = int(params.get("offset") or 0)
        wait = min(float(params.get("timeout") or 0), 0.5)
        deadline = time.monotonic() + wait
        while True:
            with self._cond:
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
                if self._updates or time.monotonic() >= deadline:
                    return list(self._updates)
            await asyncio.sleep(0.02)


# --- updates as Telegram sends them -------------------------------------------------------

_dates = itertools.count(int(time.time()))


def _user(chat_id: int) -> dict[str, Any]:
    return {"id": chat_id, "is_bot": False, "first_name": "Test", "language_code": "fr"}


def _chat(chat_id: int) -> dict[str, Any]:
    return {"id": chat_id, "type": "private", "first_name": "Test"}


def text_update(update_id: int, chat_id: int, text: str, message_id: int = 1) -> dict[str, Any]:
    message: dict[str, Any] = {
        "message_id": message_id,
        "date": next(_dates),
        "chat": _chat(chat_id),
        "from": _user(chat_id),
        "text": text,
    }
    if text.startswith("/"):
        command = text.split()[0]
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
    return {"update_id": update_id, "message": message}


def sticker_update(update_id: int, chat_id: int, message_id: int = 1) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": message_id,
            "date": next(_dates),
            "chat": _chat(chat_id),
            "from": _user(chat_id),
            "sticker": {
                "file_id": "CAACAgIAAxkBAAEB",
                "file_unique_id": "AgADBAAD",
                "type": "regular",
                "width": 512,
                "height": 512,
                "is_animated": False,
                "is_video": False,
            },
        },
    }


def callback_update(
    update_id: int, chat_id: int, data: str, message_id: int, query_id: str | None = None
) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "callback_query": {
            "id": query_id or f"q{update_id}",
            "from": _user(chat_id),
            "chat_instance": f"ci{chat_id}",
            "data": data,
            "message": {
                "message_id": message_id,
                "date": next(_dates),
                "chat": _chat(chat_id),
                "from": BOT_USER,
                "text": "…",
            },
        },
    }
