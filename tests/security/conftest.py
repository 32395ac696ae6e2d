"""Fixtures of the security tests: the real gateway app (lifespan run, real SQLite or PostgreSQL
database) behind httpx.ASGITransport, reached from chosen client addresses.

They reuse the gateway and agency tests' support modules (tests/gateway/chat_support.py,
tests/agency/agency_support.py)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
for support in ("gateway", "agency", "telegram", "store"):
    if str(TESTS / support) not in sys.path:
        sys.path.insert(0, str(TESTS / support))

from security_support import Gateway, start_gateway  # noqa: E402
from store_support import Receiver, start_receiver  # noqa: E402


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
async def gateway(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Gateway]:
    """The gateway with Rasa unreachable (the guided mode answers), no outbox worker."""
    monkeypatch.setenv("TRANQUILLITE_OUTBOX_WORKER", "off")
    async with start_gateway(database_url, tmp_path) as gw:
        yield gw


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A local HTTP server that stands for an agency's system (records what it receives)."""
    state, stop = start_receiver()
    try:
        yield state
    finally:
        stop()
