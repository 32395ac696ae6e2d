"""Constants and helpers shared by the widget browser tests (imported by conftest and tests)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import BrowserContext, Page

CHROMIUM = os.environ.get("TQ_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 360, "height": 740}
# The full-page chat as residents get it: the gateway serves webhook/channels/static/chat.html
# at "/".
CHAT_PATH = "/"


def is_local_url(url: str) -> bool:
    """True for URLs that never leave this machine (loopback hosts, data:, blob:, about:)."""
    parts = urlsplit(url)
    if parts.scheme in {"data", "blob", "about"}:
        return True
    return (parts.hostname or "") in LOCAL_HOSTS or (parts.hostname or "").startswith("127.")


@dataclass
class RecordedPage:
    """A page plus everything it asked the network for and every error it raised."""

    page: Page
    context: BrowserContext
    requests: list[str] = field(default_factory=list)
    chat_bodies: list[dict[str, Any]] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)

    def non_local_requests(self) -> list[str]:
        return [u for u in self.requests if not is_local_url(u)]

    def payloads(self) -> list[str | None]:
        return [b.get("payload") for b in self.chat_bodies]


SEND_REPORT = "Envoyer le signalement"
ENABLED_CHOICE = "[role=log] .tq-choice:not([disabled])"


def answer_until_summary(page: Page, tap: Callable[[Page, str], None], limit: int = 5) -> None:
    """Answer, with the first button offered, the questions a guided form asks after those a
    test answers itself (how to be contacted, for one), until its summary offers to send."""
    for _ in range(limit):
        if page.locator(ENABLED_CHOICE, has_text=SEND_REPORT).count():
            return
        tap(page, page.locator(ENABLED_CHOICE).first.inner_text().strip())
    assert page.locator(ENABLED_CHOICE, has_text=SEND_REPORT).count(), "no summary"
