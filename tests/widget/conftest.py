"""Playwright fixtures for the chat widget browser tests.

Needs Debian's Chromium (``scripts/install_browser.sh``) and the Python package ``playwright``
(no ``playwright install``: we drive /usr/bin/chromium). The tests expect a fixture named
``chat_base_url`` (provided by tests/conftest.py): the root URL of a running gateway, e.g.
``http://127.0.0.1:8000``, that serves ``/static/*`` (webhook/channels/static) and
``POST /api/v1/chat``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Request, Route, sync_playwright
from widget_support import (
    CHAT_PATH,
    CHROMIUM,
    CHROMIUM_ARGS,
    DESKTOP,
    RecordedPage,
    is_local_url,
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "browser: drives headless Chromium (run scripts/install_browser.sh first)"
    )


@pytest.fixture(scope="module")
def tq_browser() -> Iterator[Browser]:
    # one browser per test module: Playwright's sync API keeps an event loop running in this
    # thread while it is started, and the asynchronous tests of other modules (tests/agency,
    # tests/widget/test_tracking_api.py) need the thread's loop free
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/install_browser.sh", pytrace=False)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def open_page(tq_browser: Browser) -> Iterator[Any]:
    """Factory: ``open_page(viewport=...)`` returns a fresh RecordedPage in its own context.

    Every request is recorded; any request to a non-local host is recorded AND aborted, so a
    regression can never reach the outside world from a test run.
    """
    contexts: list[BrowserContext] = []

    def _open(viewport: dict[str, int] | None = None, **context_args: Any) -> RecordedPage:
        context = tq_browser.new_context(
            viewport=viewport or DESKTOP,
            locale="fr-FR",
            service_workers="block",
            **context_args,
        )
        contexts.append(context)
        context.set_default_timeout(30_000)
        page = context.new_page()
        rec = RecordedPage(page=page, context=context)

        def on_request(req: Request) -> None:
            rec.requests.append(req.url)
            if req.method == "POST" and urlsplit(req.url).path.endswith("/api/v1/chat"):
                try:
                    rec.chat_bodies.append(json.loads(req.post_data or "{}"))
                except ValueError:
                    rec.chat_bodies.append({"_unparsable": req.post_data})

        def guard(route: Route) -> None:
            if is_local_url(route.request.url):
                route.fallback()
            else:
                rec.blocked.append(route.request.url)
                route.abort("blockedbyclient")

        page.on("request", on_request)
        page.on("websocket", lambda ws: rec.requests.append(ws.url))
        page.on("pageerror", lambda exc: rec.page_errors.append(str(exc)))
        page.on(
            "console",
            lambda msg: rec.console_errors.append(msg.text) if msg.type == "error" else None,
        )
        page.on(
            "console",
            lambda msg: (
                rec.csp_violations.append(msg.text)
                if "Content Security Policy" in msg.text
                else None
            ),
        )
        context.route("**/*", guard)
        return rec

    yield _open
    for context in contexts:
        context.close()


@pytest.fixture
def chat_page(open_page: Any, chat_base_url: str) -> RecordedPage:
    """The full-page chat (chat.html, served at CHAT_PATH) at desktop size, greeting received."""
    rec = open_page(DESKTOP)
    rec.page.goto(chat_base_url.rstrip("/") + CHAT_PATH)
    rec.page.locator("[role=log] .tq-msg--bot").first.wait_for()
    return rec


@pytest.fixture(scope="module")
def guided_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A gateway of its own (uvicorn), Rasa absent — the guided mode answers, as in degraded mode
    — with its embedded outbox worker polling fast: reports are filed, put on the agencies'
    dashboard and their news kept for the widget within a second.

    Yields (base URL, database URL)."""
    tmp = tmp_path_factory.mktemp("guided-gateway")
    database = f"sqlite+aiosqlite:///{tmp / 'widget.db'}"  # migrated by the gateway at start
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    env = {
        **os.environ,
        "TRANQUILLITE_DATABASE_URL": database,
        "TRANQUILLITE_VAR_DIR": str(tmp),
        "TRANQUILLITE_RASA_URL": "http://127.0.0.1:9",
        "TRANQUILLITE_SECRET_KEY": "clé de test du widget, assez longue pour signer",
        "TRANQUILLITE_OUTBOX_WORKER": "embedded",
        "TRANQUILLITE_OUTBOX_POLL_SECONDS": "0.2",
        "TRANQUILLITE_VEILLE_WORKER": "off",
        # town halls' pages on other origins (other ports of this machine) embed the widget
        "TRANQUILLITE_CORS_ORIGINS": "*",
    }
    env.pop("TRANQUILLITE_TELEGRAM_TOKEN", None)
    base = f"http://127.0.0.1:{port}"
    with (tmp / "gateway.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "webhook.app:create_app",
             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (tmp / "gateway.log").read_text()
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code in (200, 503):
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "gateway not ready"
            time.sleep(0.2)
        yield base, database
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture
def screenshot_dir() -> Path | None:
    """Set TQ_SCREENSHOT_DIR to keep screenshots of the widget (for a human to look at)."""
    value = os.environ.get("TQ_SCREENSHOT_DIR")
    if not value:
        return None
    path = Path(value)
    path.mkdir(parents=True, exist_ok=True)
    return path
