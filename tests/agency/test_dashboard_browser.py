"""The agencies' dashboard in a real browser (Debian's Chromium through Playwright) against the
real gateway started as its own process (issue 13): an officer on a 390 px phone and on a
desktop sees the tickets where someone may be in danger first, marked in words; the page never
scrolls sideways; each ticket has a one-line preview; times are Paris time; axe-core finds no
serious or critical violation; nothing is requested from another host. Screenshots are saved
under var/screenshots/ (not committed)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from triage_data import PASSWORD, seed_triage

from webhook.config import PROJECT_ROOT
from webhook.store.db import create_engine, migrate, session_factory

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("TQ_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run"]
AXE_JS = Path(__file__).resolve().parents[1] / "widget" / "vendor" / "axe.min.js"
SCREENSHOTS = PROJECT_ROOT / "var" / "screenshots"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _prepare(url: str) -> dict[str, str]:
    engine = create_engine(url)
    try:
        await migrate(engine)
        filed = await seed_triage(session_factory(engine))
        return {name: ticket.reference for name, ticket in filed.items()}
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """(base URL, references by name) of a gateway on a database seeded with triage_data."""
    tmp = tmp_path_factory.mktemp("dashboard-browser")
    url = f"sqlite+aiosqlite:///{tmp / 'dashboard.db'}"
    references: dict[str, str] = {}
    # its own thread: the test session may already run an event loop
    worker = threading.Thread(target=lambda: references.update(asyncio.run(_prepare(url))))
    worker.start()
    worker.join()
    assert references, "the database was not seeded"
    port = _free_port()
    env = {
        **os.environ,
        "TRANQUILLITE_DATABASE_URL": url,
        "TRANQUILLITE_VAR_DIR": str(tmp),
        "TRANQUILLITE_SECRET_KEY": "clé de test du tableau de bord, assez longue pour signer",
        "TRANQUILLITE_OUTBOX_WORKER": "off",
        "TRANQUILLITE_VEILLE_WORKER": "off",
        "TRANQUILLITE_RASA_URL": "http://127.0.0.1:9",
    }
    with (tmp / "gateway.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "webhook.app:create_app",
             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/agence/login", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail(
                    "the gateway did not start:\n" + (tmp / "gateway.log").read_text(),
                    pytrace=False,
                )
            time.sleep(0.3)
        yield base, references
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/install_browser.sh", pytrace=False)
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


class Watched:
    """A page whose requests to another host are recorded and refused, and whose errors are
    kept."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.foreign: list[str] = []
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))

        def guard(route: Any) -> None:
            host = urlsplit(route.request.url).hostname or ""
            if route.request.url.startswith(("data:", "blob:", "about:")) or host == "127.0.0.1":
                route.fallback()
            else:
                self.foreign.append(route.request.url)
                route.abort("blockedbyclient")

        page.context.route("**/*", guard)

    def assert_clean(self) -> None:
        assert self.foreign == [], self.foreign
        assert self.errors == [], self.errors


def axe(page: Page) -> list[dict[str, Any]]:
    page.evaluate(AXE_JS.read_text() + "\n;undefined")
    found = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
            .map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.slice(0, 3)
            .map(n => n.target.join(' '))}))"""
    )
    return [v for v in found if v["impact"] in ("serious", "critical")]


def horizontal_overflow(page: Page) -> int:
    return int(
        page.evaluate(
            "() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
            " - document.documentElement.clientWidth"
        )
    )


def login(page: Page, base: str) -> None:
    page.goto(f"{base}/agence/login")
    page.locator("#username").fill("agent-police")
    page.locator("#password").fill(PASSWORD)
    page.locator("#password").press("Enter")
    page.wait_for_url(f"{base}/agence/tickets")


def cards(page: Page) -> list[dict[str, Any]]:
    return list(
        page.locator("ol.ticket-list > li").evaluate_all(
            """items => items.map(li => {
                const badge = li.querySelector('.badge-danger');
                const preview = li.querySelector('.ticket-preview');
                const style = getComputedStyle(preview);
                return {
                    reference: li.querySelector('.ticket-ref .ref').textContent.trim(),
                    badge: badge ? badge.innerText.trim() : null,
                    badgeVisible: !!badge && badge.getBoundingClientRect().height > 0,
                    previewHeight: preview.getBoundingClientRect().height,
                    lineHeight: parseFloat(style.lineHeight) || 24,
                    previewCut: preview.scrollWidth > preview.clientWidth,
                    right: li.getBoundingClientRect().right,
                };
            })"""
        )
    )


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_danger_first_marked_in_words_and_usable_on_a_phone(
    browser: Browser, dashboard: tuple[str, dict[str, str]], size: str
) -> None:
    base, ref = dashboard
    viewport = PHONE if size == "phone" else DESKTOP
    context = browser.new_context(viewport=viewport, locale="fr-FR")
    page = context.new_page()
    watched = Watched(page)
    try:
        login(page, base)
        listed = cards(page)
        # the open tickets where someone may be in danger now come first, with a visible
        # "Danger immédiat" in words (not a colour alone), then the others newest first
        assert [c["reference"] for c in listed] == [
            ref["child"], ref["violence"],
            ref["burglary_closed"], ref["dealing"], ref["old_theft"],
        ]  # fmt: skip
        assert [c["badge"] for c in listed[:2]] == ["⚠ DANGER IMMÉDIAT"] * 2
        assert all(c["badgeVisible"] for c in listed[:2])
        assert listed[3]["badge"] is None and listed[4]["badge"] is None
        # one line of preview each; a long description is cut, not wrapped
        for card in listed:
            assert card["previewHeight"] <= 1.5 * card["lineHeight"], card
            assert card["right"] <= viewport["width"], card
        assert any(c["previewCut"] for c in listed) or size == "desktop"
        assert horizontal_overflow(page) <= 0
        body = page.locator("main").inner_text()
        assert "UTC" not in body and "Heures de Paris" in body
        assert axe(page) == []
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"dashboard-list-{size}.png"), full_page=True)

        # the first ticket, opened from the list: its danger, its fields in French words, its
        # history without internal terms
        page.locator("ol.ticket-list .ticket-ref").first.click()
        page.wait_for_url(f"{base}/agence/tickets/{ref['child']}")
        main = page.locator("main").inner_text()
        assert "Danger immédiat :" in main
        assert "Danger immédiat\nOui" in main or "Danger immédiat Oui" in main.replace("\n", " ")
        for raw in ("danger_now", "age_enfant", "system:outbox", "citizen:web", "UTC"):
            assert raw not in main, raw
        assert "Envoi automatique" in main
        assert horizontal_overflow(page) <= 0
        assert axe(page) == []
        page.screenshot(path=str(SCREENSHOTS / f"dashboard-ticket-{size}.png"), full_page=True)
        watched.assert_clean()
    finally:
        context.close()
