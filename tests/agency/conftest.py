"""The real gateway on SQLite and on real PostgreSQL (see agency_support)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from agency_support import running_app
from fastapi import FastAPI


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def gateway(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    monkeypatch.setenv("TRANQUILLITE_OUTBOX_WORKER", "off")
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'agency.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    async with running_app(url, tmp_path) as running:
        yield running
