"""Finding 11 — Telegram updates were answered 200 before they were stored: a crash lost them and
Telegram does not send them again. And Rasa kept every conversation's text in memory for the
life of the process, out of reach of ``purge``. Now an update is stored before the 200, processed
once, and processed again after a crash; Rasa keeps conversations in its SQL tracker store, which
``purge`` empties of conversations idle for longer than the retention policy says."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import sqlite3
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from fake_bot_api import FakeBotAPI, free_port, sticker_update
from security_support import settings_for
from telegram_support import SECRET, SECRET_HEADER, TOKEN

from webhook.config import PROJECT_ROOT
from webhook.ops.supervisor import Stack
from webhook.store.db import create_engine, migrate


def _start(
    tmp_path: Path, database: str, fake_api: FakeBotAPI, name: str
) -> tuple[str, subprocess.Popen[bytes]]:
    settings = replace(settings_for(database, tmp_path), gateway_port=free_port())
    env = {
        **os.environ,
        "TRANQUILLITE_DATABASE_URL": database,
        "TRANQUILLITE_VAR_DIR": str(tmp_path),
        "TRANQUILLITE_RASA_URL": settings.rasa_url,
        "TRANQUILLITE_OUTBOX_WORKER": "off",
        "TRANQUILLITE_TELEGRAM_TOKEN": TOKEN,
        "TRANQUILLITE_TELEGRAM_SECRET": SECRET,
        "TRANQUILLITE_TELEGRAM_BASE_URL": fake_api.base_url,
        "TRANQUILLITE_TELEGRAM_MODE": "webhook",
    }
    log = (tmp_path / f"{name}.log").open("wb")
    # the gateway's command line exactly as `tranquillite run` builds it
    command = Stack.build(settings, tmp_path / "model.tar.gz").process("gateway").command
    process = subprocess.Popen(
        command, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    log.close()
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, (tmp_path / f"{name}.log").read_text()
        try:
            if httpx.get(f"{settings.gateway_url}/health", timeout=5).status_code in (200, 503):
                return settings.gateway_url, process
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "gateway not ready"
        time.sleep(0.2)


def _rows(path: Path) -> list[tuple[int, object, object]]:
    with sqlite3.connect(path) as connection:
        return list(
            connection.execute("SELECT update_id, payload, processed_at FROM telegram_updates")
        )


@pytest.fixture
def fake_api() -> FakeBotAPI:
    api = FakeBotAPI(TOKEN, free_port())
    api.start()
    yield api  # type: ignore[misc]
    api.stop()


def test_an_update_answered_200_survives_a_crash_and_is_processed_once(
    tmp_path: Path, fake_api: FakeBotAPI
) -> None:
    path = tmp_path / "telegram.db"
    database = f"sqlite+aiosqlite:///{path}"

    async def prepare() -> None:
        engine = create_engine(database)
        await migrate(engine)
        await engine.dispose()

    asyncio.run(prepare())
    fake_api.send_delay = 120.0  # the bot's answer hangs: the gateway dies before it is done
    url, first = _start(tmp_path, database, fake_api, "first")
    update = sticker_update(4242, 777)
    headers = {SECRET_HEADER: SECRET}
    try:
        assert (
            httpx.post(f"{url}/telegram/webhook", json=update, headers=headers).status_code == 200
        )
        assert [r[0] for r in _rows(path)] == [4242]  # stored before the 200
        time.sleep(1.0)  # being processed, stuck on sendMessage
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    assert fake_api.calls_of("sendMessage", chat_id=777) == []

    fake_api.send_delay = 0.0
    url, second = _start(tmp_path, database, fake_api, "second")
    try:
        fake_api.wait_for("sendMessage", chat_id=777, timeout=30)  # processed after the restart
        # Telegram delivering it once more: already stored, not processed again
        assert (
            httpx.post(f"{url}/telegram/webhook", json=update, headers=headers).status_code == 200
        )
        fake_api.wait_quiet(1.0)
        assert len(fake_api.calls_of("sendMessage", chat_id=777)) == 1
        deadline = time.monotonic() + 10
        while _rows(path)[0][2] is None:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert _rows(path)[0][1] is None  # the message's content is gone once processed
    finally:
        second.terminate()
        second.wait(timeout=20)


@pytest.mark.e2e
def test_rasa_conversations_are_in_a_store_that_purge_empties(stack: Stack) -> None:
    from webhook.store.retention import purge_conversations

    sender = "tracker-purge-e2e"
    with httpx.Client(base_url=stack.settings.gateway_url, timeout=120.0) as client:
        response = client.post(
            "/api/v1/chat",
            json={"sender": sender, "text": "Mon voisin fait du bruit toutes les nuits"},
        )
        assert response.status_code == 200
    tracker = stack.settings.var_dir / "rasa_tracker.db"
    assert tracker.is_file(), "Rasa keeps conversations in memory only"
    tracker_url = f"sqlite+aiosqlite:///{tracker}"
    conversation = f"web-{sender}"

    def texts() -> list[str]:
        with sqlite3.connect(tracker) as connection:
            return [
                str(row[0])
                for row in connection.execute(
                    "SELECT data FROM events WHERE sender_id = ?", (conversation,)
                )
            ]

    assert any("toutes les nuits" in data for data in texts())
    # not idle long enough: kept
    assert asyncio.run(purge_conversations(tracker_url, 7)) == 0 or texts()
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=8)
    purged = asyncio.run(purge_conversations(tracker_url, 7, now=later))
    assert purged >= 1 and texts() == []
