"""Request body limits per route, enforced before anything parses the body.

An ASGI middleware, outermost of the gateway's own: a declared ``Content-Length`` above the
route's limit is answered 413 at once, without reading a byte nor running the route; a body sent
without a length (chunked) goes through Starlette's ``RequestBodyLimitMiddleware`` with the
route's limit, which stops the request with 413 as soon as it passes the limit. So no route —
authenticated or not — ever holds more than its limit in memory, and a huge body cannot block
the event loop while it is parsed (authentication comes after the body is read in FastAPI).

The 413 speaks the route's language (:func:`too_large_handler`): the chat's reply model (a polite
French text the widget shows), Open311's error list (its routes' own error format), or
``{"detail": ...}``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
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


def _body(path: str) -> bytes:
    if path.startswith("/open311/"):
        payload: object = [{"code": 413, "description": "requête trop volumineuse"}]
    elif path.startswith("/api/v1/chat"):
        payload = {"messages": [{"text": TOO_LARGE_TEXT, "buttons": []}], "language": "fr"}
    else:
        payload = {"detail": "corps de requête trop volumineux"}
    return json.dumps(payload, ensure_ascii=False).encode()


def too_large(path: str) -> Response:
    return Response(
        _body(path),
        status_code=413,
        media_type="application/json",
        headers={"Cache-Control": "no-store", "Connection": "close"},
    )


async def too_large_handler(request: Request, exc: Exception) -> Response:
    """Exception handler for status 413 (a body that passed its limit while a route read it)."""
    return too_large(request.url.path)


class BodyLimit:
    """``rules``: path prefixes and their limit in bytes, the longest prefix wins;
    ``default_bytes`` for every other path."""

    def __init__(self, app: ASGIApp, rules: Sequence[Rule], default_bytes: int) -> None:
        self.app = app
        self.rules = sorted(rules, key=lambda r: len(r.prefix), reverse=True)
        self.default_bytes = default_bytes
        self._limited = {
            limit: RequestBodyLimitMiddleware(app, limit)
            for limit in {default_bytes, *(r.max_bytes for r in rules)}
        }

    def limit_for(self, path: str) -> int:
        for rule in self.rules:
            if path.startswith(rule.prefix):
                return rule.max_bytes
        return self.default_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await too_large(scope["path"])(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self._limited[limit](scope, receive, tracking_send)
        except Exception as exc:
            # a route that reads its body itself (not through FastAPI's parameters) gets the
            # limit's error, possibly wrapped by a middleware's task group
            if started or not _is_too_large(exc):
                raise
            await too_large(scope["path"])(scope, receive, send)


def _is_too_large(exc: BaseException) -> bool:
    grouped = getattr(exc, "exceptions", None)  # an exception group (task groups)
    if isinstance(grouped, tuple) and grouped:
        return all(isinstance(e, BaseException) and _is_too_large(e) for e in grouped)
    return isinstance(exc, HTTPException) and exc.status_code == 413


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
