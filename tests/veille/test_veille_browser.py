"""The observers' pages in a real browser (Debian's Chromium through Playwright) against the real
gateway started as its own process on a demo database: keyboard only, axe-core (serious and
critical violations), nothing requested from another host, no CSP violation, the charts drawn
(their bars are in the screenshots), usable at 360 px."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
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
from PIL import Image
from playwright.sync_api import Browser, Page, sync_playwright

from webhook.agency import auth
from webhook.agency import territory as territories
from webhook.store.db import create_engine, session_factory
from webhook.veille import demo

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("TQ_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run"]
AXE_JS = Path(__file__).resolve().parents[1] / "widget" / "vendor" / "axe.min.js"
PASSWORD = "mot de passe du navigateur 2026"
ACCENT = (0, 0, 145)  # the bars of the charts (#000091)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def prepare(url: str) -> None:
    engine = create_engine(url)
    try:
        await demo.fill(engine, rate=3.0, evaluate_every=dt.timedelta(days=7))
        sessions = session_factory(engine)
        for name, territory in (
            ("navigateur-04", None),
            ("navigateur-forcalquier", "commune:04088"),
        ):
            agent = await auth.create_agent(sessions, "04-prefecture", name, PASSWORD, "observer")
            if territory:
                await territories.set_agent_territory(sessions, agent.id, territory)
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def gateway_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("veille-browser")
    url = f"sqlite+aiosqlite:///{tmp / 'demo.db'}"
    # its own thread: the test session may already run an event loop
    worker = threading.Thread(target=asyncio.run, args=(prepare(url),))
    worker.start()
    worker.join()
    port = free_port()
    env = {
        **os.environ,
        "TRANQUILLITE_DATABASE_URL": url,
        "TRANQUILLITE_VAR_DIR": str(tmp),
        "TRANQUILLITE_SECRET_KEY": "clé de test du navigateur, assez longue pour signer",
        "TRANQUILLITE_OUTBOX_WORKER": "off",
        "TRANQUILLITE_VEILLE_WORKER": "off",
        "TRANQUILLITE_RASA_URL": "http://127.0.0.1:9",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "webhook.app:create_app",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env=env,
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
                pytest.fail("the gateway did not start", pytrace=False)
            time.sleep(0.3)
        yield base
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


def axe(page: Page) -> list[dict[str, Any]]:
    page.evaluate(AXE_JS.read_text() + "\n;undefined")
    found = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
            .map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.slice(0, 3)
            .map(n => n.target.join(' '))}))"""
    )
    return [v for v in found if v["impact"] in ("serious", "critical")]


def keyboard_login(page: Page, base: str, username: str) -> None:
    page.goto(f"{base}/agence/login")
    page.keyboard.press("Tab")  # skip link
    for _ in range(10):
        if page.evaluate("document.activeElement && document.activeElement.id") == "username":
            break
        page.keyboard.press("Tab")
    page.keyboard.type(username)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/agence/veille")


def tab_to(page: Page, text: str, limit: int = 150) -> None:
    """Press Tab until a link or button whose text contains ``text`` has the focus."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            """() => { const e = document.activeElement;
                return e && ['A', 'BUTTON'].includes(e.tagName) ? e.innerText : ''; }"""
        )
        if text in (focused or ""):
            return
    pytest.fail(f"{text!r} cannot be reached with the keyboard")


def accent_pixels(png: bytes) -> int:
    image = Image.open(io.BytesIO(png)).convert("RGB")
    small = image.resize((image.width // 2, image.height // 2))
    return sum(
        1
        for pixel in small.get_flattened_data()
        if all(abs(a - b) < 24 for a, b in zip(pixel, ACCENT, strict=True))
    )


def test_an_observer_works_the_veille_with_the_keyboard(
    browser: Browser, gateway_url: str, tmp_path: Path
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="fr-FR")
    page = context.new_page()
    watched = Watched(page)
    keyboard_login(page, gateway_url, "navigateur-04")
    assert "Données de démonstration" in page.inner_text("body")
    assert page.locator("h1").inner_text().startswith("Cellule de veille — Alpes-de-Haute-Provence")
    # every chart is drawn, with its caption and its table
    images = page.locator("figure img")
    assert images.count() >= 5
    page.wait_for_function(
        "Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"
    )
    assert page.locator("figure figcaption").count() == images.count()
    assert page.locator("table.weeks").count() == images.count()
    assert axe(page) == []
    shot = page.screenshot(full_page=True, path=str(tmp_path / "veille-desktop.png"))
    assert accent_pixels(shot) > 500, "no chart bar in the screenshot"

    # keyboard: the commune table, sorted by a type
    tab_to(page, "Tableau par commune")
    page.keyboard.press("Enter")
    page.wait_for_url("**/agence/veille/communes")
    assert axe(page) == []
    tab_to(page, "Arnaque")
    page.keyboard.press("Enter")
    page.wait_for_url("**tri=arnaque**")
    assert page.locator('th[aria-sort="descending"]').count() == 1

    # keyboard: an alert, acknowledged
    page.goto(f"{gateway_url}/agence/veille/alertes?statut=open")
    assert axe(page) == []
    tab_to(page, " — ")
    page.keyboard.press("Enter")
    page.wait_for_url("**/agence/veille/alertes/*")
    assert axe(page) == []
    tab_to(page, "Prendre en compte")
    page.keyboard.press("Enter")
    page.wait_for_url("**ok=ack")
    assert "L'alerte est prise en compte." in page.inner_text("body")
    page.screenshot(full_page=True, path=str(tmp_path / "veille-alert.png"))

    assert watched.foreign == [] and watched.errors == []
    context.close()


def test_a_clspd_reads_its_commune_on_a_phone(
    browser: Browser, gateway_url: str, tmp_path: Path
) -> None:
    context = browser.new_context(viewport={"width": 360, "height": 740}, locale="fr-FR")
    page = context.new_page()
    watched = Watched(page)
    keyboard_login(page, gateway_url, "navigateur-forcalquier")
    assert page.locator("h1").inner_text() == "Cellule de veille — Forcalquier"
    assert "Manosque" not in page.inner_text("body")
    page.wait_for_function(
        "Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"
    )
    # nothing wider than the screen but the scrollable table regions
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    wide = page.evaluate(
        """() => Array.from(document.querySelectorAll('body *')).filter(e => {
            const r = e.getBoundingClientRect();
            return r.right > document.documentElement.clientWidth + 1
                && !e.closest('.table-scroll');
        }).slice(0, 8).map(e => e.tagName + '.' + e.className)"""
    )
    assert overflow <= 0, wide
    assert axe(page) == []
    shot = page.screenshot(full_page=True, path=str(tmp_path / "veille-360.png"))
    assert accent_pixels(shot) > 50
    assert watched.foreign == [] and watched.errors == []
    context.close()
