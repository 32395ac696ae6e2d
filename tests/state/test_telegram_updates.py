"""A Telegram update delivered twice (Telegram's retry, or two gateways behind a load balancer)
is recorded once, on SQLite and on PostgreSQL (whose driver reports no row count for an INSERT
... ON CONFLICT: before, every redelivery looked new there)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from webhook.channels import telegram_updates
from webhook.store.db import session_factory


async def test_an_update_is_recorded_once(db_engine: AsyncEngine) -> None:
    sessions = session_factory(db_engine)
    update = {"update_id": 7001, "message": {"text": "bonjour"}}
    assert await telegram_updates.record(sessions, 7001, update) is True
    assert await telegram_updates.record(sessions, 7001, update) is False
    assert [u for u, _ in await telegram_updates.unprocessed(sessions)] == [7001]
    await telegram_updates.done(sessions, 7001)
    assert await telegram_updates.record(sessions, 7001, update) is False  # still known
    assert await telegram_updates.unprocessed(sessions) == []
