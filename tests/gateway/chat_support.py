"""A stand-in Rasa REST channel (a real HTTP server on a local port) and the real gateway app.

The fake Rasa records every message it receives and answers ``rasa:<message>``; it can be
stopped (connection refused, as when the Rasa process dies), restarted on the same port, or
made slow (answers after ``delay`` seconds).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import text

from webhook.app import create_app
from webhook.config import Settings


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class FakeRasa:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.received: list[dict[str, Any]] = []
        self.delay = 0.0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def messages(self, sender: str | None = None) -> list[str]:
        return [r["message"] for r in self.received if sender is None or r["sender"] == sender]

    def start(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _json(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path == "/":
                    data = b"Hello from Rasa: 3.6.21"
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                else:
                    self._json(404, {})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                fake.received.append(body)
                if fake.delay:
                    time.sleep(fake.delay)
                message = body.get("message", "")
                self._json(
                    200,
                    [
                        {
                            "recipient_id": body.get("sender"),
                            "text": f"rasa:{message}",
                            "buttons": [{"title": "Menu", "payload": "/aide_menu"}],
                        }
                    ],
                )

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


@dataclass
class Gateway:
    app: FastAPI
    client: httpx.AsyncClient
    sender: str = "citizen1"
    history: list[dict[str, Any]] = field(default_factory=list)

    async def say(self, text: str, sender: str | None = None) -> httpx.Response:
        return await self._post({"sender": sender or self.sender, "text": text})

    async def tap(self, payload: str, sender: str | None = None) -> httpx.Response:
        return await self._post({"sender": sender or self.sender, "payload": payload})

    async def _post(self, body: dict[str, Any]) -> httpx.Response:
        response = await self.client.post("/api/v1/chat", json=body)
        self.history.append(response.json())
        return response


def texts(response: httpx.Response) -> list[str]:
    return [m["text"] for m in response.json()["messages"]]


def buttons(response: httpx.Response) -> list[dict[str, str]]:
    return [b for m in response.json()["messages"] for b in m["buttons"]]


def payloads(response: httpx.Response) -> list[str]:
    return [b["payload"] for b in buttons(response)]


def button_for(response: httpx.Response, title: str) -> str:
    for button in buttons(response):
        if button["title"] == title:
            return button["payload"]
    raise AssertionError(f"no button {title!r} in {[b['title'] for b in buttons(response)]}")


@asynccontextmanager
async def running_gateway(settings: Settings) -> AsyncIterator[Gateway]:
    """The real app with its lifespan (migrations, services), called over ASGI. Conversations
    are kept in the database across gateway restarts: each test starts with none in progress
    (the PostgreSQL database is shared by the whole session)."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        async with app.state.db_engine.begin() as connection:
            for table in ("conversation_states", "conversation_notes", "rate_buckets"):
                await connection.execute(text(f"DELETE FROM {table}"))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield Gateway(app, client)
