"""CORS for the chat API only, so a town-hall site on another origin can embed the widget.

Starlette's CORSMiddleware applied to one path prefix: the internal API, the agencies' API and
the dashboard never answer cross-origin requests. No credentials (the widget sends no cookie),
POST with a JSON body only.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send


class ChatCORS:
    def __init__(self, app: ASGIApp, paths: Sequence[str], allow_origins: Sequence[str]) -> None:
        self.app = app
        self.paths = tuple(paths)
        self.cors = CORSMiddleware(
            app,
            allow_origins=list(allow_origins),
            allow_methods=["POST"],
            allow_headers=["Content-Type", "Accept"],
            expose_headers=["Retry-After"],
            allow_credentials=False,
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in self.paths:
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)
