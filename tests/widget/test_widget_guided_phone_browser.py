"""Guided mode for seniors on a small phone (issue 13): at 360×640, touch only, every question of
a guided report and at least three of its answer buttons are visible without scrolling, the text
box does not take the focus after a tap (no virtual keyboard over the buttons), the message box
is on the first screen, and the reference number and tracking code are never broken across two
lines. Checked with bounding boxes in real Chromium against a real gateway (guided mode);
screenshots of each step are saved under var/screenshots/ (not committed)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page
from widget_support import RecordedPage

from webhook.config import PROJECT_ROOT

pytestmark = pytest.mark.browser

SMALL_PHONE = {"width": 360, "height": 640}
SCREENSHOTS = PROJECT_ROOT / "var" / "screenshots"
TIMEOUT_MS = 30_000
REPLIES = "[role=log] .tq-msg--bot:not(.tq-msg--notice)"
MIN_BUTTONS = 3
REFERENCE_RE = re.compile(r"\b\d[0-9AB]-\d{4}-\d{6}\b")
CODE_RE = re.compile(r"\b[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}\b")
AXE_JS = Path(__file__).parent / "vendor" / "axe.min.js"

# What the screen shows of the question waiting for an answer: boxes in viewport pixels.
LAYOUT_JS = """() => {
  const box = (el) => { const r = el.getBoundingClientRect();
    return {top: r.top, bottom: r.bottom, left: r.left, right: r.right, height: r.height}; };
  const log = document.querySelector('[role=log]');
  const asking = [...log.querySelectorAll('.tq-msg--bot')]
    .filter(m => m.querySelector('.tq-choice:not([disabled])')).pop();
  const active = document.activeElement;
  return {
    scrollY: window.scrollY,
    overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth,
    log: box(log),
    input: box(document.querySelector('#tq-input')),
    send: box(document.querySelector('.tq-send')),
    question: asking && asking.querySelector('.tq-bubble') ?
      box(asking.querySelector('.tq-bubble')) : null,
    questionText: asking && asking.querySelector('.tq-bubble') ?
      asking.querySelector('.tq-bubble').innerText : '',
    buttons: asking ? [...asking.querySelectorAll('.tq-choice:not([disabled])')].map(box) : [],
    activeId: active ? active.id : '',
    activeTag: active ? active.tagName : '',
  };
}"""


def _wait_reply(page: Page, before: int) -> None:
    page.wait_for_function(
        "([sel, n]) => document.querySelectorAll(sel).length > n",
        arg=[REPLIES, before],
        timeout=TIMEOUT_MS,
    )
    page.wait_for_function(
        "() => !document.querySelector('.tq-root.tq-is-busy')", timeout=TIMEOUT_MS
    )


def tap(page: Page, title: str) -> None:
    before = page.locator(REPLIES).count()
    page.locator("[role=log] .tq-choice:not([disabled])", has_text=title).last.tap()
    _wait_reply(page, before)


def tap_quick(page: Page, name: str) -> None:
    before = page.locator(REPLIES).count()
    page.locator(".tq-quick").get_by_role("button", name=name).tap()
    _wait_reply(page, before)


def type_answer(page: Page, text: str) -> None:
    before = page.locator(REPLIES).count()
    page.locator("#tq-input").tap()
    page.locator("#tq-input").fill(text)
    page.locator(".tq-send").tap()
    _wait_reply(page, before)


def inside(inner: dict[str, float], outer: dict[str, float], slack: float = 1.0) -> bool:
    return inner["top"] >= outer["top"] - slack and inner["bottom"] <= outer["bottom"] + slack


def check_question_visible(page: Page, step: str, *, tapped: bool) -> dict[str, Any]:
    """The question waiting for an answer and its first three buttons are on screen, inside the
    conversation's visible area, with no scrolling of the page; the message box is on the
    first screen; no keyboard was opened by a tap."""
    layout: dict[str, Any] = page.evaluate(LAYOUT_JS)
    screen = {"top": 0.0, "bottom": float(SMALL_PHONE["height"])}
    visible = {
        "top": max(layout["log"]["top"], screen["top"]),
        "bottom": min(layout["log"]["bottom"], screen["bottom"]),
    }
    assert layout["scrollY"] == 0, (step, layout["scrollY"])
    assert layout["overflow"] <= 0, (step, layout["overflow"])
    assert layout["question"] is not None, (step, "no question with answer buttons")
    buttons = layout["buttons"]
    # a question to answer with a button shows at least three of them (fewer only when it has
    # fewer: a question answered in words offers "Passer" or "Retour")
    assert buttons, step
    for n, button in enumerate(buttons[:MIN_BUTTONS]):
        assert inside(button, visible), (step, f"button {n + 1} not visible", button, visible)
        assert button["height"] >= 44, (step, button)
    question = layout["question"]
    if question["height"] + sum(b["height"] for b in buttons[:MIN_BUTTONS]) < (
        visible["bottom"] - visible["top"] - 40
    ):
        assert inside(question, visible), (step, "question not visible", question, visible)
    else:
        # a summary longer than the screen: its last lines (the question itself) are shown
        # right above the buttons, its beginning is reached by scrolling up
        assert question["bottom"] > visible["top"] + 40, (step, question, visible)
    # the message box and its send button are on the first screen, not screens below
    assert layout["input"]["bottom"] <= SMALL_PHONE["height"], (step, layout["input"])
    assert layout["send"]["bottom"] <= SMALL_PHONE["height"], (step, layout["send"])
    if tapped:
        # a tap never puts the focus in the text box: no virtual keyboard over the buttons
        assert layout["activeId"] != "tq-input", (step, layout["activeTag"])
    return layout


def axe(page: Page) -> list[dict[str, Any]]:
    """Serious and critical violations found by the vendored axe-core."""
    page.evaluate(AXE_JS.read_text() + "\n;undefined")
    found = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
            .map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.slice(0, 3)
            .map(n => n.target.join(' '))}))"""
    )
    return [v for v in found if v["impact"] in ("serious", "critical")]


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"guided-360x640-{name}.png"))


def assert_one_line(page: Page, pattern: re.Pattern[str], text: str) -> str:
    match = pattern.search(text)
    assert match, text
    value = match.group(0)
    spans = page.locator("[role=log] .tq-nowrap", has_text=value)
    assert spans.count() >= 1, value
    for i in range(spans.count()):
        lines = spans.nth(i).evaluate("s => s.getClientRects().length")
        assert lines == 1, (value, lines)
    return value


def test_guided_report_at_360x640_touch_only(
    open_page: Any, guided_gateway: tuple[str, str]
) -> None:
    base, _ = guided_gateway
    rec: RecordedPage = open_page(SMALL_PHONE, has_touch=True, is_mobile=True)
    page = rec.page
    page.goto(base + "/")
    page.locator(REPLIES).first.wait_for()
    # the whole conversation is on the first screen: message box included
    first = page.evaluate(LAYOUT_JS)
    assert first["input"]["bottom"] <= SMALL_PHONE["height"], first
    assert first["log"]["top"] < SMALL_PHONE["height"] / 3, first
    shot(page, "0-accueil")

    tap_quick(page, "Mode guidé")
    assert len(check_question_visible(page, "menu", tapped=True)["buttons"]) >= 10
    shot(page, "1-menu")
    bad = axe(page)
    assert bad == [], json.dumps(bad, indent=2, ensure_ascii=False)

    steps: list[tuple[str, str]] = [
        ("tap", "Bruit, déchets, dégradations"),
        ("tap", "Passer"),
        ("tap", "Bruit"),
        ("type", "Parking de la gare"),
        ("tap", "Tous les jours"),
        ("type", "Lons-le-Saunier"),
    ]
    counts: list[int] = []
    for n, (how, answer) in enumerate(steps, start=2):
        if how == "tap":
            tap(page, answer)
        else:
            type_answer(page, answer)
        layout = check_question_visible(page, answer, tapped=how == "tap")
        counts.append(len(layout["buttons"]))
        shot(page, f"{n}-{re.sub(r'[^a-z]+', '-', answer.lower()).strip('-')}")
    # questions the form may add before its summary (how to be contacted...): the first answer
    n = len(steps) + 2
    while "Voulez-vous l'envoyer" not in layout["questionText"]:
        assert n < 14, layout["questionText"]
        first = page.locator("[role=log] .tq-choice:not([disabled])").first
        title = first.inner_text().strip()
        tap(page, title)
        layout = check_question_visible(page, title, tapped=True)
        counts.append(len(layout["buttons"]))
        shot(page, f"{n}-{re.sub(r'[^a-z]+', '-', title.lower()).strip('-')}")
        n += 1
    # choice questions (the problem, how often) and the summary had three buttons or more
    assert sum(1 for c in counts if c >= MIN_BUTTONS) >= 3, counts

    tap(page, "Envoyer le signalement")
    filed = page.locator(REPLIES).last.inner_text()
    shot(page, f"{n}-envoye")
    reference = assert_one_line(page, REFERENCE_RE, filed)
    code = assert_one_line(page, CODE_RE, filed)
    assert reference.startswith("39-") and code
    # the start of the confirmation is on screen, with its reference
    ref_box = page.locator("[role=log] .tq-nowrap", has_text=reference).first.bounding_box()
    assert ref_box is not None
    assert 0 <= ref_box["y"] and ref_box["y"] + ref_box["height"] <= SMALL_PHONE["height"]
    assert page.evaluate("() => document.activeElement.id") != "tq-input"
    assert page.evaluate("() => window.scrollY") == 0
    bad = axe(page)
    assert bad == [], json.dumps(bad, indent=2, ensure_ascii=False)
    assert rec.page_errors == [] and rec.csp_violations == [], rec.page_errors
    assert rec.non_local_requests() == [] and rec.blocked == []
