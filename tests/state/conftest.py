"""Shared-state backends on real parts: a SQLite file, the real PostgreSQL server, the real Redis
server; each test gets two backend objects on the same storage (two gateways)."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

TESTS = Path(__file__).resolve().parents[1]
for support in ("state", "gateway", "agency", "telegram", "security"):
    if str(TESTS / support) not in sys.path:
        sys.path.insert(0, str(TESTS / support))

from state_support import Clock  # noqa: E402

from webhook.store.db import Base, create_engine, migrate  # noqa: E402
from webhook.store.state import (  # noqa: E402
    MemoryStateBackend,
    RedisStateBackend,
    SqlStateBackend,
    StateBackend,
)

REDIS_URL = os.environ.get("TRANQUILLITE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(
    params=[
        "memory",
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.postgres),
        pytest.param("redis", marks=pytest.mark.redis),
    ]
)
async def pair(
    request: pytest.FixtureRequest, tmp_path: Path, clock: Clock
) -> AsyncIterator[tuple[StateBackend, StateBackend]]:
    """Two backends on one storage, as two gateway processes would have them."""
    kind = request.param
    if kind == "memory":
        one = MemoryStateBackend(clock)
        yield one, one
        return
    if kind == "redis":
        prefix = f"tqtest:{uuid.uuid4().hex[:8]}:"
        a = RedisStateBackend(REDIS_URL, prefix=prefix, clock=clock)
        b = RedisStateBackend(REDIS_URL, prefix=prefix, clock=clock)
        try:
            yield a, b
        finally:
            keys = [k async for k in a.redis.scan_iter(match=prefix + "*")]
            if keys:
                await a.redis.delete(*keys)
            await a.close()
            await b.close()
        return
    if kind == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'state.db'}"
    else:
        url = str(request.getfixturevalue("postgres_url"))
    first, second = create_engine(url), create_engine(url)
    await migrate(first)
    if kind == "postgresql":
        names = ", ".join(t.name for t in Base.metadata.sorted_tables)
        async with first.begin() as connection:
            await connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    a, b = SqlStateBackend(first, clock), SqlStateBackend(second, clock)
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()
        await first.dispose()
        await second.dispose()
