"""Request body limits per route, enforced before anything parses the body.

An ASGI middleware, outermost in the gateway: a declared ``Content-Length`` above the route's
limit is answered 413 without reading a byte; a body sent without a length (chunked) is counted
as it arrives and the request is stopped with 413 as soon as it passes the limit. So no route —
authenticated or not — ever holds more than its limit in memory, and a huge body cannot block
the event loop while it is parsed.

The 413 speaks the route's language: the chat's reply model (a polite French text the widget
shows), Open311's error list, or ``{"detail": ...}``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

KIB = 1024
TOO_LARGE_TEXT = (
    "Votre message est trop volumineux pour être reçu. Raccourcissez-le puis envoyez-le à nouveau."
)


@dataclass(frozen=True)
class Rule:
    prefix: str
    max_bytes: int


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=f"corps de requête trop volumineux (> {limit} o)")
        self.limit = limit


def _body(path: str, limit: int) -> bytes:
    if path.startswith("/open311/"):
        payload: object = [{"code": 413, "description": f"requête trop volumineuse (> {limit} o)"}]
    elif path.startswith("/api/v1/chat"):
        payload = {"messages": [{"text": TOO_LARGE_TEXT, "buttons": []}], "language": "fr"}
    else:
        payload = {"detail": f"corps de requête trop volumineux (> {limit} o)"}
    return json.dumps(payload, ensure_ascii=False).encode()


class BodyLimit:
    """``rules``: path prefixes and their limit in bytes, the longest prefix wins;
    ``default_bytes`` for every other path."""

    def __init__(self, app: ASGIApp, rules: Sequence[Rule], default_bytes: int) -> None:
        self.app = app
        self.rules = sorted(rules, key=lambda r: len(r.prefix), reverse=True)
        self.default_bytes = default_bytes

    def limit_for(self, path: str) -> int:
        for rule in self.rules:
            if path.startswith(rule.prefix):
                return rule.max_bytes
        return self.default_bytes

    async def _refuse(self, scope: Scope, send: Send, limit: int) -> None:
        body = _body(scope["path"], limit)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                    (b"cache-control", b"no-store"),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await self._refuse(scope, send, limit)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            # raised through a layer that does not turn HTTP exceptions into responses
            if not started:
                await self._refuse(scope, send, limit)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def too_large_handler(request: Request, exc: Exception) -> Response:
    """Exception handler for :class:`BodyTooLarge` raised while a route reads its body (a body
    without Content-Length): the same answer as when the length was declared."""
    limit = exc.limit if isinstance(exc, BodyTooLarge) else 0
    return Response(
        _body(request.url.path, limit),
        status_code=413,
        media_type="application/json",
        headers={"Cache-Control": "no-store", "Connection": "close"},
    )
