"""Shared fixtures: the real product stack (trained Rasa model, Rasa server, action server,
gateway) and real databases (SQLite file, PostgreSQL on 127.0.0.1:5432)."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from webhook.config import Settings
from webhook.ops import envsetup
from webhook.ops.supervisor import Stack
from webhook.store.db import Base, create_engine, migrate

POSTGRES_ADMIN_DSN = os.environ.get(
    "TRANQUILLITE_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test"
)

# Slow tests, listed with how they were measured in tests/slow_tests.txt (one place, rather than a
# decorator in each file), are marked `slow`: the fast tests run alone with
# `pytest -m "not e2e and not browser and not slow"` (README, Tests).
SLOW_TESTS = frozenset(
    line.strip()
    for line in (Path(__file__).parent / "slow_tests.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.nodeid.split("[", 1)[0] in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def trained_model() -> Path:
    """The real model for the current training data (trained once, then reused from var/)."""
    return envsetup.ensure_model()


@pytest.fixture(scope="session")
def stack(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    var_dir = tmp_path_factory.mktemp("var")
    settings = replace(
        Settings.from_env(),
        host="127.0.0.1",
        gateway_port=free_port(),
        rasa_port=(rasa_port := free_port()),
        actions_port=free_port(),
        var_dir=var_dir,
        database_url=f"sqlite+aiosqlite:///{var_dir / 'e2e.db'}",
        rasa_url=f"http://127.0.0.1:{rasa_port}",
        internal_token="",
    )
    # The whole end-to-end session is one address (127.0.0.1) playing hundreds of residents (the
    # conversation suite alone sends over a thousand messages, faster than the 20/s an address
    # refills: it met 429s on a fast machine), and
    # the widget tests embed the chat in a "town hall" page on another origin: the limits of one
    # address and the allowed origins are those of that test bench, not of production.
    running = Stack.build(
        settings,
        trained_model,
        gateway_env={
            "TRANQUILLITE_CORS_ORIGINS": "*",
            "TRANQUILLITE_LIMIT_MESSAGES_PER_ADDRESS": "100000,100000/s",
            "TRANQUILLITE_LIMIT_CONVERSATIONS_PER_ADDRESS": "100000,100000/h",
            "TRANQUILLITE_LIMIT_FILINGS_PER_ADDRESS": "100000,100000/h",
            "TRANQUILLITE_LIMIT_FILINGS_PER_CONVERSATION": "1000,1000/h",
        },
    )
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def chat_base_url(stack: Stack) -> str:
    return stack.settings.gateway_url


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh database on the real PostgreSQL server, dropped at the end of the session."""
    name = f"tranquillite_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A migrated, empty ticket store on SQLite and on real PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'tickets.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    engine = create_engine(url)
    await migrate(engine)
    if request.param == "postgresql":
        async with engine.begin() as conn:
            from sqlalchemy import text

            names = ", ".join(t.name for t in Base.metadata.sorted_tables)
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    try:
        yield engine
    finally:
        await engine.dispose()
