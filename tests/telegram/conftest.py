"""Fixtures for the Telegram channel: a fake Bot API server and gateways wired to it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from fake_bot_api import FakeBotAPI, free_port
from fastapi import FastAPI
from telegram_support import SECRET, SECRET_HEADER, TOKEN

from webhook.app import create_app
from webhook.config import PROJECT_ROOT, Settings


@pytest.fixture
def fake_api() -> Iterator[FakeBotAPI]:
    api = FakeBotAPI(TOKEN, free_port())
    api.start()
    try:
        yield api
    finally:
        api.stop()


def closed_port_url() -> str:
    """A URL where nothing listens (Rasa down)."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def telegram_settings(fake_api: FakeBotAPI, tmp_path: Path) -> Settings:
    return replace(
        Settings(),
        var_dir=tmp_path,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}",
        rasa_url=closed_port_url(),
        rasa_timeout=5.0,
        telegram_token=TOKEN,
        telegram_secret=SECRET,
        telegram_base_url=fake_api.base_url,
        telegram_mode="webhook",
    )


@dataclass
class RunningApp:
    app: FastAPI
    client: httpx.AsyncClient

    async def post_update(self, update: dict[str, Any], secret: str | None = SECRET) -> int:
        headers = {SECRET_HEADER: secret} if secret is not None else {}
        response = await self.client.post("/telegram/webhook", json=update, headers=headers)
        return response.status_code


@pytest.fixture
def running_app() -> Callable[[Settings], Any]:
    """``async with running_app(settings) as gw``: the real app, lifespan run, in this loop."""

    @asynccontextmanager
    async def run(settings: Settings) -> AsyncIterator[RunningApp]:
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
                yield RunningApp(app, client)

    return run


@dataclass
class GatewayProcess:
    """The gateway as `tranquillite run` starts it: uvicorn in its own process."""

    url: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def post_update(self, update: dict[str, Any], secret: str | None = SECRET) -> int:
        headers = {SECRET_HEADER: secret} if secret is not None else {}
        response = httpx.post(
            f"{self.url}/telegram/webhook", json=update, headers=headers, timeout=10
        )
        return response.status_code


@pytest.fixture
def gateway_process(tmp_path: Path) -> Iterator[Callable[..., GatewayProcess]]:
    started: list[GatewayProcess] = []

    def start(**env: str) -> GatewayProcess:
        port = free_port()
        log_path = tmp_path / f"gateway-{port}.log"
        full_env = {
            **os.environ,
            "TRANQUILLITE_HOST": "127.0.0.1",
            "TRANQUILLITE_GATEWAY_PORT": str(port),
            "TRANQUILLITE_VAR_DIR": str(tmp_path),
            "TRANQUILLITE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / f'gw-{port}.db'}",
            **env,
        }
        with log_path.open("wb") as log:
            popen = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "webhook.app:create_app",
                    "--factory",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--no-access-log",
                ],
                cwd=PROJECT_ROOT,
                env=full_env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        gateway = GatewayProcess(f"http://127.0.0.1:{port}", popen, log_path)
        started.append(gateway)
        deadline = time.monotonic() + 60
        while True:
            if popen.poll() is not None:
                raise AssertionError(f"gateway exited: {log_path.read_text()}")
            try:
                if httpx.get(f"{gateway.url}/health", timeout=5).status_code == 200:
                    return gateway
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"gateway not ready: {log_path.read_text()}")
            time.sleep(0.2)

    yield start
    for gateway in started:
        gateway.popen.terminate()
        try:
            gateway.popen.wait(timeout=15)
        except subprocess.TimeoutExpired:
            gateway.popen.kill()
            gateway.popen.wait(timeout=5)
