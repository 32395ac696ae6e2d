"""Browser tests of the embeddable chat widget (webhook/channels/static/widget.js) in real Chromium.

They run against whatever serves ``chat_base_url`` (the real gateway + Rasa stack in CI) and
never depend on the bot's wording: they wait for "a new bot message" or "an enabled reply
button". Only the API contract of the widget is assumed (POST /api/v1/chat, /greet on open,
/aide_menu for "Menu", /parler_humain for "Parler à un humain").
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, Route
from widget_support import CHAT_PATH, DESKTOP, PHONE, RecordedPage, answer_until_summary

pytestmark = pytest.mark.browser

BOT = "[role=log] .tq-msg--bot"
USER = "[role=log] .tq-msg--user"
ENABLED_CHOICE = "[role=log] .tq-choice:not([disabled])"
REPLY_TIMEOUT_MS = 45_000
XSS = "<script>window.__pwned=1</script><img src=x onerror=window.__pwned=2>"
HOST_PATH = "/__tq_widget_test_host__.html"


# ----------------------------------------------------------------------------- helpers
def base(url: str) -> str:
    return url.rstrip("/")


def bot_count(page: Page) -> int:
    return page.locator(BOT).count()


def wait_for_new_bot_message(page: Page, before: int) -> None:
    page.wait_for_function(
        "(n) => document.querySelectorAll('[role=log] .tq-msg--bot').length > n",
        arg=before,
        timeout=REPLY_TIMEOUT_MS,
    )
    wait_idle(page)


def wait_idle(page: Page) -> None:
    page.wait_for_function(
        "() => !document.querySelector('.tq-root.tq-is-busy')", timeout=REPLY_TIMEOUT_MS
    )


def press_until(page: Page, predicate: str, key: str = "Tab", max_presses: int = 60) -> bool:
    """Press ``key`` until the JS ``predicate`` (run on document.activeElement) is true."""
    check = f"() => {{ const el = document.activeElement; return !!el && ({predicate}); }}"
    for _ in range(max_presses):
        page.keyboard.press(key)
        if page.evaluate(check):
            return True
    return False


def active(page: Page) -> dict[str, Any]:
    return page.evaluate(
        """() => { const el = document.activeElement;
                   return el ? {tag: el.tagName, id: el.id, cls: String(el.className),
                                text: (el.textContent || '').trim()} : {}; }"""
    )


def send_text(page: Page, text: str) -> None:
    before = bot_count(page)
    page.locator("#tq-input").fill(text)
    page.locator("#tq-input").press("Enter")
    wait_for_new_bot_message(page, before)


def horizontal_overflow(page: Page) -> int:
    return page.evaluate(
        "() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
        " - document.documentElement.clientWidth"
    )


AXE_JS = Path(__file__).parent / "vendor" / "axe.min.js"


def run_axe(rec: RecordedPage, url: str, include: str | None = None) -> list[dict[str, Any]]:
    """Run the vendored axe-core (a test tool: the gateway does not serve it) in the page and
    return serious/critical violations. Evaluated through the DevTools protocol, so the page's
    CSP stays as strict as in production."""
    rec.page.evaluate(AXE_JS.read_text() + "\n;undefined")
    violations = rec.page.evaluate(
        """async (include) => {
            const context = include ? {include: [include]} : document;
            const r = await axe.run(context, {resultTypes: ['violations']});
            return r.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ') + ' :: ' + n.failureSummary),
            }));
        }""",
        include,
    )
    return [v for v in violations if v["impact"] in ("serious", "critical")]


def luminance(css_rgb: str) -> float:
    r, g, b = (int(x) for x in re.findall(r"\d+", css_rgb)[:3])

    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.03928 else ((s + 0.055) / 1.055) ** 2.4

    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast_ratio(fg: str, bg: str) -> float:
    a, b = sorted((luminance(fg), luminance(bg)), reverse=True)
    return (a + 0.05) / (b + 0.05)


def host_page_html(url: str, with_widget: bool = True) -> str:
    script = f'<script src="{base(url)}/static/widget.js" defer></script>' if with_widget else ""
    return f"""<!doctype html><html lang="fr"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Mairie de Testville</title>
<style>body{{font-family:Georgia,serif;font-size:15px;color:#333;margin:12px}}
h1{{color:#7a0000}} .host-note{{line-height:1.2}}</style></head>
<body><header><p class="host-note">Site officiel de la commune de Testville</p></header>
<main><h1>Mairie de Testville</h1><p class="host-note">Horaires, démarches, actualités.</p>
<button id="host-button" type="button">Bouton de la page</button></main>{script}</body></html>"""


def open_host_page(rec: RecordedPage, url: str, with_widget: bool = True) -> None:
    """A stand-in town-hall page on the gateway's origin that embeds the widget."""
    html = host_page_html(url, with_widget)

    def fulfil(route: Route) -> None:
        route.fulfill(status=200, content_type="text/html; charset=utf-8", body=html)

    rec.page.route(f"{base(url)}{HOST_PATH}", fulfil)
    rec.page.goto(f"{base(url)}{HOST_PATH}")
    if with_widget:
        rec.page.locator(".tq-launcher").wait_for(state="visible")


def assert_clean(rec: RecordedPage) -> None:
    assert rec.page_errors == [], rec.page_errors
    assert rec.csp_violations == [], rec.csp_violations
    assert rec.non_local_requests() == [], rec.non_local_requests()
    assert rec.blocked == [], rec.blocked


# ----------------------------------------------------------------------------- tests
def test_page_loads_without_any_third_party_request(
    chat_page: RecordedPage, chat_base_url: str
) -> None:
    page = chat_page.page
    send_text(page, "Bonjour")
    # Everything the page asked for stayed on this machine, with no script error or CSP breach.
    assert_clean(chat_page)
    assert any(u.endswith("/static/widget.js") for u in chat_page.requests)
    assert any("/static/widget.css" in u for u in chat_page.requests)
    # The widget's assets are served with the right MIME types (nosniff would block others).
    for asset, expected in (("widget.js", "javascript"), ("widget.css", "text/css")):
        resp = chat_page.context.request.get(f"{base(chat_base_url)}/static/{asset}")
        assert resp.ok, asset
        assert expected in resp.headers.get("content-type", ""), resp.headers
    # French page, French widget, official emergency numbers shown.
    assert page.evaluate("() => document.documentElement.lang") == "fr"
    assert page.locator(".tq-root").get_attribute("lang") == "fr"
    body_text = re.sub(r"\s+", " ", page.locator("body").inner_text())
    assert "En cas d'urgence : 17 ou 112, 114 par SMS" in body_text
    # The greeting was asked for exactly once, with a well-formed random sender id.
    assert chat_page.payloads().count("/greet") == 1
    senders = {b["sender"] for b in chat_page.chat_bodies}
    assert len(senders) == 1
    assert re.fullmatch(r"[0-9a-f]{32}", senders.pop())


def test_keyboard_only_conversation(chat_page: RecordedPage) -> None:
    page = chat_page.page
    log = page.locator("[role=log]")
    assert log.get_attribute("aria-live") == "polite"

    # Tab (never the mouse) to the labelled message field.
    assert press_until(page, "el.id === 'tq-input'"), active(page)
    assert page.locator("label[for=tq-input]").inner_text().strip()
    page.keyboard.type("Bonjour")
    before = bot_count(page)
    page.keyboard.press("Enter")
    wait_for_new_bot_message(page, before)
    assert page.locator(USER).last.inner_text().strip().endswith("Bonjour")
    assert page.locator("#tq-input").input_value() == ""
    assert log.locator(".tq-msg--bot").count() > before  # the reply is inside the live region

    # No reply button offered for free text? Ask for the menu, from the keyboard as well.
    if page.locator(ENABLED_CHOICE).count() == 0:
        assert press_until(
            page, "el.closest('.tq-quick') && el.textContent.trim() === 'Menu'", "Shift+Tab"
        ), active(page)
        before = bot_count(page)
        page.keyboard.press("Enter")
        wait_for_new_bot_message(page, before)
    assert page.locator(ENABLED_CHOICE).count() > 0, "the bot offered no reply button"

    # Tab to a reply button and activate it with Enter.
    assert press_until(page, "el.matches('[role=log] .tq-choice') && !el.disabled", "Shift+Tab"), (
        active(page)
    )
    chosen = page.evaluate_handle("() => document.activeElement")
    title = chosen.evaluate("b => b.textContent.trim()")
    before = bot_count(page)
    payloads_before = len(chat_page.chat_bodies)
    page.keyboard.press("Enter")
    wait_for_new_bot_message(page, before)
    assert len(chat_page.chat_bodies) == payloads_before + 1
    assert "payload" in chat_page.chat_bodies[-1]
    assert page.locator(USER).last.inner_text().strip().endswith(title)
    # The answered button is now disabled and the focus went back to the message field.
    assert chosen.evaluate("b => b.disabled") is True
    assert active(page)["id"] == "tq-input"
    assert_clean(chat_page)


@pytest.mark.parametrize("variant", ["default", "contrast-large", "phone"])
def test_axe_reports_no_serious_or_critical_violation(
    open_page: Any, chat_base_url: str, variant: str
) -> None:
    rec = open_page(PHONE if variant == "phone" else DESKTOP)
    rec.page.goto(base(chat_base_url) + CHAT_PATH)
    rec.page.locator(BOT).first.wait_for()
    send_text(rec.page, "Bonjour")  # user + bot messages, older buttons disabled
    if variant == "contrast-large":
        rec.page.locator("#tq-large-toggle").click()
        rec.page.locator("#tq-contrast-toggle").click()
    bad = run_axe(rec, chat_base_url)
    assert bad == [], json.dumps(bad, indent=2, ensure_ascii=False)


def test_axe_embedded_dialog(open_page: Any, chat_base_url: str) -> None:
    rec = open_page(DESKTOP)
    open_host_page(rec, chat_base_url)
    rec.page.locator(".tq-launcher").click()
    rec.page.locator(BOT).first.wait_for()
    bad = run_axe(rec, chat_base_url, include=".tq-root")
    assert bad == [], json.dumps(bad, indent=2, ensure_ascii=False)


def test_typed_markup_is_shown_as_text(chat_page: RecordedPage) -> None:
    page = chat_page.page
    page.locator("#tq-input").fill(XSS)
    page.locator("#tq-input").press("Enter")
    wait_idle(page)
    assert page.evaluate("() => typeof window.__pwned") == "undefined"
    assert page.locator(".tq-root img, .tq-root script").count() == 0
    # Either it was sent (shown as the user's message) or it is still in the field, as text.
    shown = page.locator(USER).last.inner_text() if page.locator(USER).count() else ""
    kept = page.locator("#tq-input").input_value()
    assert XSS in shown or kept == XSS
    if XSS in shown:
        assert chat_page.chat_bodies[-1].get("text") == XSS
    page.wait_for_timeout(300)  # give a would-be onerror handler a chance to run
    assert page.evaluate("() => typeof window.__pwned") == "undefined"


def test_bot_text_is_rendered_safely(chat_page: RecordedPage, chat_base_url: str) -> None:
    """Whatever the gateway returns is text: markup stays literal, only http(s) URLs link."""
    page = chat_page.page
    hostile = {
        "messages": [
            {
                "text": "Ligne 1\nLigne 2 <img src=x onerror=window.__pwned=3> "
                "javascript:window.__pwned=4 voir https://example.org/a?b=1.",
                "buttons": [{"title": "<b>gras</b>", "payload": "/x"}],
            }
        ]
    }

    def fake(route: Route) -> None:
        route.fulfill(status=200, content_type="application/json", body=json.dumps(hostile))

    page.route(f"{base(chat_base_url)}/api/v1/chat", fake)
    send_text(page, "test")
    bubble = page.locator(BOT).last.locator(".tq-bubble")
    assert bubble.locator("br").count() == 1
    assert bubble.locator("img, script").count() == 0
    assert "<img src=x onerror=window.__pwned=3>" in bubble.inner_text()
    links = bubble.locator("a")
    assert links.count() == 1
    assert links.first.get_attribute("href") == "https://example.org/a?b=1"
    assert "noopener" in (links.first.get_attribute("rel") or "")
    assert page.locator(BOT).last.locator(".tq-choice").inner_text() == "<b>gras</b>"
    assert page.locator(".tq-root b").count() == 0
    assert page.evaluate("() => typeof window.__pwned") == "undefined"


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (413, {"messages": [{"text": "Votre message est trop long."}]}),
        (429, {"detail": "Too Many Requests"}),
        (503, {"detail": "Upstream unavailable"}),
        (0, None),  # network failure
    ],
)
def test_failure_keeps_typed_text_and_retry_works(
    chat_page: RecordedPage, chat_base_url: str, status: int, body: dict[str, Any] | None
) -> None:
    page = chat_page.page
    failures = {"left": 1}

    def flaky(route: Route) -> None:
        if route.request.method == "POST" and failures["left"] > 0:
            failures["left"] -= 1
            if status == 0:
                route.abort("connectionrefused")
            else:
                route.fulfill(status=status, content_type="application/json", body=json.dumps(body))
        else:
            route.fallback()

    page.route(f"{base(chat_base_url)}/api/v1/chat", flaky)
    typed = "Mon voisin reçoit des appels suspects"
    users_before = page.locator(USER).count()
    page.locator("#tq-input").fill(typed)
    page.locator("#tq-input").press("Enter")
    alert = page.locator(".tq-root [role=alert]")
    alert.wait_for(state="visible")
    wait_idle(page)
    message = alert.inner_text()
    assert message.strip()
    for raw in ("Too Many Requests", "Upstream unavailable", "detail"):
        assert raw not in message
    assert "perdu" in message  # tells the user nothing is lost
    assert page.locator("#tq-input").input_value() == typed  # nothing lost
    assert page.locator(USER).count() == users_before  # no phantom "sent" message
    # Retry (keyboard) now reaches the real gateway.
    before = bot_count(page)
    retry = alert.get_by_role("button", name="Réessayer")
    retry.focus()
    page.keyboard.press("Enter")
    wait_for_new_bot_message(page, before)
    assert alert.is_hidden()
    assert page.locator("#tq-input").input_value() == ""
    assert page.locator(USER).last.inner_text().strip().endswith(typed)


def test_character_limit(chat_page: RecordedPage) -> None:
    page = chat_page.page
    field = page.locator("#tq-input")
    sent_before = len(chat_page.chat_bodies)
    field.fill("a" * 2001)
    assert field.get_attribute("aria-invalid") == "true"
    assert "2001" in page.locator("#tq-counter").inner_text()
    field.press("Enter")
    alert = page.locator(".tq-root [role=alert]")
    alert.wait_for(state="visible")
    assert "2000" in alert.inner_text()
    assert len(field.input_value()) == 2001  # the text is kept
    assert len(chat_page.chat_bodies) == sent_before  # and not sent
    field.fill("a" * 2000)
    assert field.get_attribute("aria-invalid") == "false"


def test_toggles_change_computed_styles_and_are_remembered(chat_page: RecordedPage) -> None:
    page = chat_page.page

    def styles() -> dict[str, str]:
        return page.evaluate(
            """() => {
                const bubble = getComputedStyle(document.querySelector('.tq-msg--bot .tq-bubble'));
                const panel = getComputedStyle(document.querySelector('.tq-panel'));
                const input = getComputedStyle(document.querySelector('#tq-input'));
                return {font: bubble.fontSize, inputFont: input.fontSize, color: bubble.color,
                        panelBg: panel.backgroundColor, inputBg: input.backgroundColor};
            }"""
        )

    large = page.get_by_role("button", name="Texte agrandi")
    contrast = page.get_by_role("button", name="Contraste élevé")
    assert large.get_attribute("aria-pressed") == "false"
    assert contrast.get_attribute("aria-pressed") == "false"
    initial = styles()
    assert float(initial["font"].rstrip("px")) >= 18  # readable base font

    large.click()
    bigger = styles()
    assert large.get_attribute("aria-pressed") == "true"
    assert float(bigger["font"].rstrip("px")) >= 1.15 * float(initial["font"].rstrip("px"))
    assert float(bigger["inputFont"].rstrip("px")) > float(initial["inputFont"].rstrip("px"))

    contrast.click()
    high = styles()
    assert contrast.get_attribute("aria-pressed") == "true"
    assert high["panelBg"] != initial["panelBg"]
    assert high["color"] != initial["color"]
    assert contrast_ratio(high["color"], high["panelBg"]) >= 7  # AAA in high-contrast mode

    page.reload()
    page.locator(BOT).first.wait_for()
    assert styles() == high  # remembered (localStorage)
    contrast = page.get_by_role("button", name="Contraste élevé")
    assert contrast.get_attribute("aria-pressed") == "true"

    page.get_by_role("button", name="Texte agrandi").click()
    page.get_by_role("button", name="Contraste élevé").click()
    assert styles() == initial


def test_reload_keeps_conversation_and_new_conversation_resets(chat_page: RecordedPage) -> None:
    page = chat_page.page
    sender = page.evaluate("() => sessionStorage.getItem('tq-sender')")
    send_text(page, "Bonjour")
    messages = page.locator("[role=log] .tq-msg").count()

    page.reload()
    page.locator(BOT).first.wait_for()
    assert page.locator("[role=log] .tq-msg").count() == messages
    assert page.evaluate("() => sessionStorage.getItem('tq-sender')") == sender
    assert chat_page.payloads().count("/greet") == 1  # no second greeting after a reload

    page.get_by_role("button", name="Nouvelle conversation").click()
    page.get_by_role("button", name="Oui, recommencer").click()
    page.locator(BOT).first.wait_for()
    wait_idle(page)
    new_sender = page.evaluate("() => sessionStorage.getItem('tq-sender')")
    assert new_sender != sender
    assert page.locator(USER).count() == 0
    assert chat_page.payloads().count("/greet") == 2
    assert chat_page.chat_bodies[-1]["sender"] == new_sender


def test_quick_actions_are_always_there(chat_page: RecordedPage) -> None:
    page = chat_page.page
    human = page.locator(".tq-quick").get_by_role("button", name="Parler à un humain")
    menu = page.locator(".tq-quick").get_by_role("button", name="Menu")
    assert human.is_visible()
    assert menu.is_visible()
    before = bot_count(page)
    human.click()
    wait_for_new_bot_message(page, before)
    assert chat_page.chat_bodies[-1]["payload"] == "/parler_humain"
    assert page.locator(USER).last.inner_text().strip().endswith("Parler à un humain")
    assert human.is_visible()
    assert menu.is_visible()
    before = bot_count(page)
    menu.click()
    wait_for_new_bot_message(page, before)
    assert chat_page.chat_bodies[-1]["payload"] == "/aide_menu"


def test_embedded_launcher_dialog_and_escape(open_page: Any, chat_base_url: str) -> None:
    rec = open_page(DESKTOP)
    open_host_page(rec, chat_base_url)
    page = rec.page
    launcher = page.locator(".tq-launcher")
    panel = page.locator(".tq-panel")
    assert "Signaler" in launcher.inner_text()
    assert launcher.get_attribute("aria-expanded") == "false"
    assert panel.is_hidden()
    assert rec.chat_bodies == []  # nothing sent before the resident opens the chat

    assert press_until(page, "el.classList.contains('tq-launcher')"), active(page)
    page.keyboard.press("Enter")
    panel.wait_for(state="visible")
    assert panel.get_attribute("role") == "dialog"
    title_id = panel.get_attribute("aria-labelledby")
    assert title_id
    assert page.locator(f"#{title_id}").inner_text().strip()
    assert launcher.get_attribute("aria-expanded") == "true"
    assert page.evaluate("() => !!document.activeElement.closest('.tq-panel')")
    page.locator(BOT).first.wait_for()
    assert rec.payloads() == ["/greet"]

    page.keyboard.press("Escape")
    panel.wait_for(state="hidden")
    assert page.evaluate("() => document.activeElement.classList.contains('tq-launcher')")
    assert launcher.get_attribute("aria-expanded") == "false"
    assert_clean(rec)


def test_embedding_does_not_change_the_host_page_styles(open_page: Any, chat_base_url: str) -> None:
    probe = """() => ['body', 'h1', 'p.host-note', '#host-button', 'header'].map(sel => {
        const s = getComputedStyle(document.querySelector(sel));
        return [sel, s.fontFamily, s.fontSize, s.color, s.margin, s.padding, s.lineHeight,
                s.backgroundColor, s.boxSizing, s.borderTopWidth, s.display];
    })"""
    plain = open_page(DESKTOP)
    open_host_page(plain, chat_base_url, with_widget=False)
    expected = plain.page.evaluate(probe)

    rec = open_page(DESKTOP)
    open_host_page(rec, chat_base_url)
    rec.page.locator(".tq-launcher").click()
    rec.page.locator(BOT).first.wait_for()
    assert rec.page.evaluate(probe) == expected


def _check_touch_targets(page: Page) -> None:
    small = page.evaluate(
        """() => [...document.querySelectorAll('.tq-root button, .tq-root textarea')]
            .filter(el => el.offsetParent !== null)
            .map(el => { const r = el.getBoundingClientRect();
                         return {text: el.textContent.trim() || el.id, w: r.width, h: r.height}; })
            .filter(r => r.w < 44 || r.h < 44)"""
    )
    assert small == [], small


def test_phone_360_chat_page_fits_without_horizontal_scroll(
    open_page: Any, chat_base_url: str, screenshot_dir: Path | None
) -> None:
    rec = open_page(PHONE)
    page = rec.page
    page.goto(base(chat_base_url) + CHAT_PATH)
    page.locator(BOT).first.wait_for()
    assert horizontal_overflow(page) <= 0
    send_text(page, "x" * 400)  # one very long unbroken word
    send_text(page, "https://example.org/" + "chemin/" * 40)
    assert horizontal_overflow(page) <= 0
    box = page.locator(".tq-panel").bounding_box()
    assert box is not None
    assert box["x"] >= 0
    assert box["x"] + box["width"] <= PHONE["width"]
    _check_touch_targets(page)
    if screenshot_dir:
        page.locator(".tq-panel").scroll_into_view_if_needed()
        page.screenshot(path=str(screenshot_dir / "chat-360.png"))
    assert_clean(rec)


def test_phone_360_embedded_panel_is_full_screen(
    open_page: Any, chat_base_url: str, screenshot_dir: Path | None
) -> None:
    rec = open_page(PHONE)
    open_host_page(rec, chat_base_url)
    page = rec.page
    page.locator(".tq-launcher").click()
    page.locator(BOT).first.wait_for()
    box = page.locator(".tq-panel").bounding_box()
    assert box is not None
    assert abs(box["x"]) < 1 and abs(box["y"]) < 1
    assert abs(box["width"] - PHONE["width"]) < 1
    assert abs(box["height"] - PHONE["height"]) < 1
    assert page.locator(".tq-panel").get_attribute("aria-modal") == "true"
    assert horizontal_overflow(page) <= 0
    _check_touch_targets(page)
    # Focus stays inside the full-screen dialog.
    for _ in range(25):
        page.keyboard.press("Tab")
        assert page.evaluate("() => !!document.activeElement.closest('.tq-panel')"), active(page)
    if screenshot_dir:
        page.screenshot(path=str(screenshot_dir / "embedded-360.png"))


def test_desktop_screenshots(
    open_page: Any, chat_base_url: str, screenshot_dir: Path | None
) -> None:
    """Desktop layout sanity: readable 18 px base, touch targets, optional screenshots."""
    rec = open_page(DESKTOP)
    page = rec.page
    page.goto(base(chat_base_url) + CHAT_PATH)
    page.locator(BOT).first.wait_for()
    size = page.evaluate("() => getComputedStyle(document.querySelector('.tq-root')).fontSize")
    assert size == "18px"
    _check_touch_targets(page)
    assert horizontal_overflow(page) <= 0
    if screenshot_dir:
        page.screenshot(path=str(screenshot_dir / "chat-desktop.png"), full_page=True)
        open_host_page(rec, chat_base_url)
        page.locator(".tq-launcher").click()
        page.locator(BOT).first.wait_for()
        page.screenshot(path=str(screenshot_dir / "embedded-desktop.png"))


# ----------------------------------------------------------------------------- guided mode
REFERENCE_RE = re.compile(r"\b\d[0-9AB]-\d{4}-\d{6}\b|\bFR-\d{4}-\d{6}\b")


def choose_with_keyboard(page: Page, title: str) -> None:
    """Tab (or Shift+Tab) to the enabled reply button ``title`` and press Enter."""
    predicate = (
        "el.classList.contains('tq-choice') && !el.disabled && "
        f"el.textContent.trim() === {json.dumps(title)}"
    )
    found = press_until(page, predicate, "Shift+Tab") or press_until(page, predicate)
    assert found, (title, active(page))
    before = bot_count(page)
    page.keyboard.press("Enter")
    wait_for_new_bot_message(page, before)


def type_with_keyboard(page: Page, text: str) -> None:
    if not page.evaluate(
        "() => document.activeElement && document.activeElement.id === 'tq-input'"
    ):
        assert press_until(page, "el.id === 'tq-input'"), active(page)
    page.keyboard.type(text)
    before = bot_count(page)
    page.keyboard.press("Enter")
    wait_for_new_bot_message(page, before)


def last_bot_text(page: Page) -> str:
    return page.locator(BOT).last.inner_text()


def test_guided_report_with_the_keyboard_only(chat_page: RecordedPage) -> None:
    page = chat_page.page
    # The "Mode guidé" quick action, reached with Tab.
    assert press_until(page, "el.closest('.tq-quick') && el.textContent.trim() === 'Mode guidé'"), (
        active(page)
    )
    before = bot_count(page)
    page.keyboard.press("Enter")
    wait_for_new_bot_message(page, before)
    assert chat_page.chat_bodies[-1]["payload"] == "/mode_guide"
    menu = page.locator("[role=log] .tq-choices--guided").last
    assert menu.get_by_role("button", name="Parler à quelqu'un").count() == 1
    heights = menu.locator(".tq-choice").evaluate_all(
        "els => els.map(e => e.getBoundingClientRect().height)"
    )
    assert len(heights) >= 12 and min(heights) >= 52  # big buttons

    choose_with_keyboard(page, "Bruit, déchets, dégradations")
    assert "Décrivez le problème" in last_bot_text(page)
    choose_with_keyboard(page, "Passer")
    assert "Quel est le problème" in last_bot_text(page)
    choose_with_keyboard(page, "Tags, dégradations")
    choose_with_keyboard(page, "Retour")  # back one question, then answer again
    assert "Quel est le problème" in last_bot_text(page)
    choose_with_keyboard(page, "Bruit")
    type_with_keyboard(page, "Parking de la gare " + XSS)
    choose_with_keyboard(page, "Tous les jours")
    type_with_keyboard(page, "Lons-le-Saunier")
    # questions asked after those (how to be contacted...): the first answer, with the keyboard
    answer_until_summary(page, choose_with_keyboard)
    summary = last_bot_text(page)
    assert "Lons-le-Saunier (39)" in summary and "Tous les jours" in summary
    assert XSS in summary  # the markup typed by the citizen is shown as text
    assert page.evaluate("() => typeof window.__pwned") == "undefined"
    choose_with_keyboard(page, "Envoyer le signalement")
    filed = last_bot_text(page)
    match = REFERENCE_RE.search(filed)
    assert match and match.group(0).startswith("39-"), filed
    assert page.evaluate("() => typeof window.__pwned") == "undefined"
    assert_clean(chat_page)


def test_axe_guided_mode(chat_page: RecordedPage, chat_base_url: str) -> None:
    page = chat_page.page
    before = bot_count(page)
    page.locator(".tq-quick").get_by_role("button", name="Mode guidé").click()
    wait_for_new_bot_message(page, before)
    choose_with_keyboard(page, "Arnaque")
    assert run_axe(chat_page, chat_base_url) == []
    page.get_by_role("button", name="Contraste élevé").click()
    page.get_by_role("button", name="Texte agrandi").click()
    assert run_axe(chat_page, chat_base_url) == []


def test_phone_360_guided_menu_fits(open_page: Any, chat_base_url: str) -> None:
    rec = open_page(PHONE)
    page = rec.page
    page.goto(base(chat_base_url) + CHAT_PATH)
    page.locator(BOT).first.wait_for()
    before = bot_count(page)
    page.locator(".tq-quick").get_by_role("button", name="Mode guidé").click()
    wait_for_new_bot_message(page, before)
    assert horizontal_overflow(page) <= 0
    _check_touch_targets(page)
    widths = (
        page.locator("[role=log] .tq-choices--guided")
        .last.locator(".tq-choice")
        .evaluate_all("els => els.map(e => e.getBoundingClientRect().width)")
    )
    log_width = page.locator("[role=log]").bounding_box()["width"]  # type: ignore[index]
    assert min(widths) >= 0.6 * log_width  # one big button per line on a phone
    assert_clean(rec)


@pytest.fixture
def town_hall_site(chat_base_url: str) -> Iterator[str]:
    """A real web server on another origin (another port) serving a page that embeds the
    widget with one script tag, as a town hall's site would."""
    html = host_page_html(chat_base_url).encode()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/mairie.html" else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(html)))
            self.end_headers()
            self.wfile.write(html)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_page_on_another_origin_embeds_the_widget_with_one_script_tag(
    open_page: Any, chat_base_url: str, town_hall_site: str
) -> None:
    assert host_page_html(chat_base_url).count("<script") == 1
    assert urlsplit(town_hall_site).port != urlsplit(base(chat_base_url)).port
    rec = open_page(DESKTOP)
    page = rec.page
    page.goto(f"{town_hall_site}/mairie.html")
    assert page.evaluate("() => location.origin") == town_hall_site
    page.locator(".tq-launcher").click()
    page.locator(BOT).first.wait_for()  # the greeting crossed origins (CORS)
    before = bot_count(page)
    page.locator(".tq-quick").get_by_role("button", name="Mode guidé").click()
    wait_for_new_bot_message(page, before)
    assert page.locator("[role=log] .tq-choices--guided").count() == 1
    chat_urls = [u for u in rec.requests if u.endswith("/api/v1/chat")]
    assert chat_urls and all(u.startswith(base(chat_base_url)) for u in chat_urls)
    assert rec.console_errors == [], rec.console_errors
    assert_clean(rec)
