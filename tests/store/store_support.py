"""Real peers for the outbox: a local SMTP server (aiosmtpd) and a local HTTP receiver that
verifies the HMAC signature and dedupes by Idempotency-Key, like an agency's system would."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy.ext.asyncio import AsyncEngine

from webhook.store.db import AgencyChannel, session_factory

RECEIVER_SECRET = "s3cr3t-hmac-key-for-tests"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Receiver:
    """HTTP receiver state (shared with the server threads)."""

    secret: str = RECEIVER_SECRET
    delay: float = 0.0
    fail_first: int = 0
    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    rejected_signatures: int = 0
    truncated: int = 0  # requests cut off mid-body (the sender was killed while sending)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def keys(self) -> list[str]:
        with self.lock:
            return [r["key"] for r in self.requests if r["accepted"]]

    def handle(self, headers: Any, body: bytes) -> int:
        time.sleep(self.delay)
        expected = "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        signature = headers.get("X-Tranquillite-Signature", "")
        with self.lock:
            if not hmac.compare_digest(expected, signature):
                self.rejected_signatures += 1
                return 401
            failing = self.fail_first > 0
            if failing:
                self.fail_first -= 1
            self.requests.append(
                {
                    "key": headers.get("Idempotency-Key"),
                    "body": json.loads(body),
                    "at": time.monotonic(),
                    "accepted": not failing,
                }
            )
            return 503 if failing else 200


def start_receiver() -> tuple[Receiver, Callable[[], None]]:
    """Start the receiver on a free port; returns its state and a stop function."""
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            if len(body) < length:  # the sender died mid-request: no signature to check
                with state.lock:
                    state.truncated += 1
                return
            status = state.handle(self.headers, body)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/tickets"

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(5)

    return state, stop


class MailBox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 Message accepted for delivery"


def smtp_controller(box: MailBox) -> tuple[Controller, int]:
    port = free_port()
    return Controller(box, hostname="127.0.0.1", port=port), port


async def add_channel(
    engine: AsyncEngine, agency_id: str, kind: str, target: str, secret: str | None = None
) -> None:
    async with session_factory(engine)() as session, session.begin():
        session.add(
            AgencyChannel(agency_id=agency_id, kind=kind, target=target, secret=secret, active=True)
        )


def database_url(engine: AsyncEngine) -> str:
    return engine.url.render_as_string(hide_password=False)
