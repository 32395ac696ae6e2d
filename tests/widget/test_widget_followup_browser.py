"""Replies that reach people (issue 13): an agency's answer, typed by an agent in the dashboard,
appears in the citizen's conversation in the widget — in the conversation that filed the report
(the widget polls the gateway) and in a new conversation where the citizen types their tracking
code. Real Chromium, a real gateway (guided mode, embedded outbox worker), nothing requested from
another host."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from typing import Any

import pytest
from playwright.sync_api import Page, Route
from widget_support import DESKTOP, PHONE, RecordedPage, answer_until_summary

from webhook.agency import auth
from webhook.store import tickets
from webhook.store.db import create_engine, session_factory

pytestmark = pytest.mark.browser

BOT = "[role=log] .tq-msg--bot"
NOTICE = "[role=log] .tq-msg--notice"
TIMEOUT_MS = 30_000
PASSWORD = "mot de passe de l'agent 2026"
ANSWER = "Une patrouille passera ce soir vers 22 h. Merci de votre signalement."
HOST_PATH = "/__tq_followup_host__.html"


def _wait_reply(page: Page, before: int) -> None:
    page.wait_for_function(
        "(n) => document.querySelectorAll('[role=log] .tq-msg--bot:not(.tq-msg--notice)')"
        ".length > n",
        arg=before,
        timeout=TIMEOUT_MS,
    )
    page.wait_for_function(
        "() => !document.querySelector('.tq-root.tq-is-busy')", timeout=TIMEOUT_MS
    )


def _replies(page: Page) -> int:
    return page.locator(f"{BOT}:not(.tq-msg--notice)").count()


def tap(page: Page, title: str) -> None:
    before = _replies(page)
    page.locator("[role=log] .tq-choice:not([disabled])", has_text=title).last.click()
    _wait_reply(page, before)


def type_text(page: Page, text: str) -> None:
    before = _replies(page)
    page.locator("#tq-input").fill(text)
    page.locator("#tq-input").press("Enter")
    _wait_reply(page, before)


def file_guided_report(page: Page) -> dict[str, str]:
    """A noise report in Lons-le-Saunier through the guided mode; the report the widget keeps."""
    before = _replies(page)
    page.locator(".tq-quick").get_by_role("button", name="Mode guidé").click()
    _wait_reply(page, before)
    tap(page, "Bruit, déchets, dégradations")
    tap(page, "Passer")
    tap(page, "Bruit")
    type_text(page, "Parking de la gare")
    tap(page, "Tous les jours")
    type_text(page, "Lons-le-Saunier")
    answer_until_summary(page, tap)
    tap(page, "Envoyer le signalement")
    kept = json.loads(page.evaluate("() => localStorage.getItem('tq-tickets')") or "[]")
    assert len(kept) == 1, kept
    return dict(kept[0])


def _run(coroutine: Any) -> Any:
    """Run a coroutine in a thread of its own (Playwright's sync API owns this one's loop)."""
    result: list[Any] = []
    worker = threading.Thread(target=lambda: result.append(asyncio.run(coroutine)))
    worker.start()
    worker.join()
    return result[0]


async def _agent_for(database: str, reference: str, username: str) -> str:
    """An agent of the agency the report was routed to (its primary destination)."""
    engine = create_engine(database)
    try:
        sessions = session_factory(engine)
        ticket = await tickets.get_by_reference(sessions, reference)
        assert ticket is not None
        agency = next(d.agency_id for d in ticket.destinations if d.role == "primary")
        await auth.create_agent(sessions, agency, username, PASSWORD, "agent", "Agent Test")
        return agency
    finally:
        await engine.dispose()


def answer_in_dashboard(page: Page, base: str, reference: str, username: str) -> None:
    page.goto(f"{base}/agence/login")
    page.locator("#username").fill(username)
    page.locator("#password").fill(PASSWORD)
    page.locator("#password").press("Enter")
    page.wait_for_url(f"{base}/agence/tickets")
    page.goto(f"{base}/agence/tickets/{reference}")
    page.locator("#answer").fill(ANSWER)
    page.get_by_role("button", name="Envoyer la réponse").click()
    page.wait_for_url(re.compile(r".*\?ok=answer$"))


def open_embedding_page(rec: RecordedPage, base: str) -> None:
    """A page of the gateway's origin with the widget shown in it and asking for news every
    two seconds (``data-tranquillite-poll``), as a town hall may configure it."""
    html = f"""<!doctype html><html lang="fr"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Mairie</title>
<style>#zone {{ height: 44rem; }}</style></head>
<body><main><h1>Mairie de Lons-le-Saunier</h1><div id="zone"></div></main>
<script src="{base}/static/widget.js" data-tranquillite-container="#zone"
 data-tranquillite-poll="2" defer></script></body></html>"""

    def fulfil(route: Route) -> None:
        route.fulfill(status=200, content_type="text/html; charset=utf-8", body=html)

    rec.page.route(f"{base}{HOST_PATH}", fulfil)
    rec.page.goto(f"{base}{HOST_PATH}")
    rec.page.locator(BOT).first.wait_for()


def notices_with(page: Page, text: str) -> int:
    return int(
        page.evaluate(
            """(t) => [...document.querySelectorAll('[role=log] .tq-msg--notice')]
                .filter(n => n.textContent.includes(t)).length""",
            text,
        )
    )


def assert_clean(rec: RecordedPage, expected_404: bool = False) -> None:
    assert rec.page_errors == [], rec.page_errors
    assert rec.csp_violations == [], rec.csp_violations
    assert rec.non_local_requests() == [], rec.non_local_requests()
    assert rec.blocked == [], rec.blocked
    # the browser logs the 404 of an unknown tracking code; nothing else may be logged
    errors = [e for e in rec.console_errors if not (expected_404 and "404" in e)]
    assert errors == [], rec.console_errors


def test_an_agency_answer_reaches_the_citizen_conversation(
    open_page: Any, guided_gateway: tuple[str, str]
) -> None:
    base, database = guided_gateway
    citizen = open_page(DESKTOP)
    open_embedding_page(citizen, base)
    page = citizen.page
    kept = file_guided_report(page)
    reference, code = kept["reference"], kept["tracking_code"]
    filed = page.locator(f"{BOT}:not(.tq-msg--notice)").last
    assert reference in filed.inner_text() and code in filed.inner_text()

    # an officer answers in the agencies' dashboard
    _run(_agent_for(database, reference, "agent.suivi"))
    officer = open_page(DESKTOP)
    answer_in_dashboard(officer.page, base, reference, "agent.suivi")

    # the answer appears in the citizen's conversation, marked as news of their report
    page.wait_for_function(
        """(t) => [...document.querySelectorAll('[role=log] .tq-msg--notice')]
            .some(n => n.textContent.includes(t))""",
        arg=ANSWER,
        timeout=TIMEOUT_MS,
    )
    notice = page.locator(NOTICE, has_text=ANSWER)
    assert "Suivi de votre signalement" in notice.inner_text()
    assert reference in notice.inner_text()
    # the status change (received → transmitted) was told as well, each piece of news once
    page.wait_for_function(
        """() => [...document.querySelectorAll('[role=log] .tq-msg--notice')]
            .some(n => n.textContent.includes('transmis'))""",
        timeout=TIMEOUT_MS,
    )
    page.wait_for_timeout(4_500)  # two more polls
    assert notices_with(page, ANSWER) == 1
    assert notices_with(page, "transmis") == 1
    # the news is inside the live region: screen readers announce it
    assert notice.evaluate("n => !!n.closest('[role=log][aria-live=polite]')")
    # it stays in the conversation after a reload of the page
    page.reload()
    page.locator(NOTICE).first.wait_for()
    assert notices_with(page, ANSWER) == 1
    polls = [u for u in citizen.requests if u.endswith("/api/v1/notifications")]
    assert len(polls) >= 2
    assert_clean(citizen)

    # the citizen comes back later, elsewhere, with their tracking code (the full chat page,
    # on a phone): the state of the report and the answer are shown in the new conversation
    back = open_page(PHONE)
    back.page.goto(base + "/")
    back.page.locator(BOT).first.wait_for()
    type_text(back.page, f"Bonjour, où en est mon signalement {code.lower()} ?")
    back.page.wait_for_function(
        """(t) => [...document.querySelectorAll('[role=log] .tq-msg--notice')]
            .some(n => n.textContent.includes(t))""",
        arg=ANSWER,
        timeout=TIMEOUT_MS,
    )
    status_line = back.page.locator(NOTICE).first.inner_text()
    assert reference in status_line and "transmis" in status_line
    assert notices_with(back.page, ANSWER) == 1
    followed = json.loads(back.page.evaluate("() => localStorage.getItem('tq-tickets')"))
    assert followed == [{"reference": reference, "tracking_code": code}]
    # the reference is never broken across two lines
    spans = back.page.locator(".tq-nowrap", has_text=reference)
    assert spans.count() >= 1
    assert all(
        spans.nth(i).evaluate("s => s.getClientRects().length") == 1 for i in range(spans.count())
    )
    assert_clean(back)


def test_a_reference_alone_shows_nothing(open_page: Any, guided_gateway: tuple[str, str]) -> None:
    """A code of no report (or a reference typed instead of a code) opens nothing and the widget
    follows nothing."""
    base, _ = guided_gateway
    rec = open_page(DESKTOP)
    rec.page.goto(base + "/")
    rec.page.locator(BOT).first.wait_for()
    type_text(rec.page, "où en est mon signalement K7QM-4XPA-9HW2 ou 39-2026-000001 ?")
    rec.page.wait_for_timeout(1_500)
    assert rec.page.locator(NOTICE).count() == 0
    assert rec.page.evaluate("() => localStorage.getItem('tq-tickets')") in (None, "[]")
    assert any(u.endswith("/api/v1/tracking") for u in rec.requests)
    assert_clean(rec, expected_404=True)
