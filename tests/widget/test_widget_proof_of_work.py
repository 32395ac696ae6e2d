"""The widget with a deployment that asks for a proof of work before filing (issue 14): it solves
the gateway's challenge in the background (WebCrypto), sends the solution with a later message,
files the guided report, and keeps the report's tracking code in the browser.

Its own gateway (uvicorn, as `tranquillite run` starts it), Rasa absent: the guided mode answers."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page
from widget_support import CHAT_PATH, DESKTOP, answer_until_summary

from webhook.config import PROJECT_ROOT, Settings
from webhook.ops.supervisor import Stack

BOT = "[role=log] .tq-msg--bot"
TIMEOUT_MS = 30_000
BITS = 12


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def pow_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    var_dir = tmp_path_factory.mktemp("pow")
    database = f"sqlite+aiosqlite:///{var_dir / 'pow.db'}"  # migrated by the gateway at start
    settings = replace(
        Settings(),
        host="127.0.0.1",
        gateway_port=_free_port(),
        var_dir=var_dir,
        database_url=database,
        rasa_url=f"http://127.0.0.1:{_free_port()}",
    )
    command = Stack.build(settings, var_dir / "model.tar.gz").process("gateway").command
    env = {
        **os.environ,
        "TRANQUILLITE_DATABASE_URL": database,
        "TRANQUILLITE_VAR_DIR": str(var_dir),
        "TRANQUILLITE_RASA_URL": settings.rasa_url,
        "TRANQUILLITE_OUTBOX_WORKER": "off",
        "TRANQUILLITE_FILING_POW_BITS": str(BITS),
    }
    with (var_dir / "gateway.log").open("wb") as log:
        process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (var_dir / "gateway.log").read_text()
            try:
                if httpx.get(f"{settings.gateway_url}/health", timeout=5).status_code in (
                    200,
                    503,
                ):
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "gateway not ready"
            time.sleep(0.2)
        yield settings.gateway_url
    finally:
        process.terminate()
        process.wait(timeout=20)


def _tap(page: Page, title: str) -> None:
    before = page.locator(BOT).count()
    page.locator("[role=log] .tq-choice:not([disabled])", has_text=title).last.click()
    _wait_reply(page, before)


def _type(page: Page, text: str) -> None:
    before = page.locator(BOT).count()
    page.locator("#tq-input").fill(text)
    page.locator("#tq-input").press("Enter")
    _wait_reply(page, before)


def _wait_reply(page: Page, before: int) -> None:
    page.wait_for_function(
        "(n) => document.querySelectorAll('[role=log] .tq-msg--bot').length > n",
        arg=before,
        timeout=TIMEOUT_MS,
    )
    page.wait_for_function(
        "() => !document.querySelector('.tq-root.tq-is-busy')", timeout=TIMEOUT_MS
    )


def test_widget_solves_the_challenge_and_files(open_page: Any, pow_gateway: str) -> None:
    rec = open_page(DESKTOP)
    page = rec.page
    page.goto(pow_gateway + CHAT_PATH)
    page.locator(BOT).first.wait_for()  # Rasa is down: the guided menu is offered
    _tap(page, "Bruit, déchets, dégradations")
    _tap(page, "Passer")
    _tap(page, "Bruit")
    _type(page, "Place du marché")
    _tap(page, "Tous les jours")
    _type(page, "lons le saunier")
    answer_until_summary(page, _tap)
    _tap(page, "Envoyer le signalement")
    confirmation = page.locator(BOT).last.inner_text()
    assert "numéro de suivi" in confirmation, confirmation
    proofs = [body["proof"] for body in rec.chat_bodies if body.get("proof")]
    assert proofs and all(p.count(":") == 1 for p in proofs)
    kept = json.loads(page.evaluate("() => localStorage.getItem('tq-tickets')") or "[]")
    assert kept and kept[0]["tracking_code"] in confirmation
    assert not rec.page_errors and not rec.csp_violations
