"""The real gateway on SQLite and on real PostgreSQL, for the Open311 tests.

They share the agency tests' support module (tests/agency/agency_support.py)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "agency"))

from agency_support import running_app


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def gateway(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    monkeypatch.setenv("TRANQUILLITE_OUTBOX_WORKER", "off")
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'open311.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    async with running_app(url, tmp_path) as running:
        yield running
