"""Durable Telegram updates (webhook mode): stored before Telegram is answered, processed once.

Telegram sends an update again only when the webhook does not answer 2xx; once it got 200 the
update is ours. So the webhook writes it to ``telegram_updates`` first (its ``update_id`` is the
primary key: an update delivered twice is stored once and processed once), answers 200, and
marks it processed when the bot is done with it — the message text is removed then. At start,
the gateway processes again what was stored but not processed (a crash, a restart): at most
``MAX_ATTEMPTS`` times, after which the update is dropped, its text removed, and the drop logged.

Processed rows keep only the id and dates, for ``KEEP_PROCESSED`` (Telegram redelivers for at
most a day), then they are deleted.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import delete, null, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from webhook.store.db import TelegramUpdate, utcnow

logger = logging.getLogger(__name__)

Sessions = async_sessionmaker[AsyncSession]
MAX_ATTEMPTS = 3
KEEP_PROCESSED = dt.timedelta(days=7)
REPLAY_BATCH = 500


async def record(sessions: Sessions, update_id: int, payload: dict[str, Any]) -> bool:
    """Store a received update; False when it was already stored (a redelivery)."""
    async with sessions() as session, session.begin():
        dialect = session.get_bind().dialect.name
        insert_fn = postgresql.insert if dialect == "postgresql" else sqlite.insert
        result = await session.execute(
            insert_fn(TelegramUpdate)
            .values(update_id=update_id, payload=payload, received_at=utcnow(), attempts=1)
            .on_conflict_do_nothing(index_elements=["update_id"])
            .returning(TelegramUpdate.update_id)
        )
        # RETURNING, not rowcount: psycopg reports -1 for an INSERT ... ON CONFLICT
        return result.first() is not None


async def done(sessions: Sessions, update_id: int) -> None:
    """The bot is done with the update: mark it and forget its content."""
    async with sessions() as session, session.begin():
        await session.execute(
            update(TelegramUpdate)
            .where(TelegramUpdate.update_id == update_id)
            .values(processed_at=utcnow(), payload=null())
        )


async def unprocessed(sessions: Sessions) -> list[tuple[int, dict[str, Any]]]:
    """Updates stored but never processed, oldest first, each counted as one more attempt;
    those that already had ``MAX_ATTEMPTS`` are dropped (text removed, logged)."""
    now = utcnow()
    async with sessions() as session, session.begin():
        rows = (
            await session.execute(
                select(TelegramUpdate.update_id, TelegramUpdate.payload, TelegramUpdate.attempts)
                .where(TelegramUpdate.processed_at.is_(None))
                .order_by(TelegramUpdate.update_id)
                .limit(REPLAY_BATCH)
            )
        ).all()
        replay: list[tuple[int, dict[str, Any]]] = []
        dropped: list[int] = []
        for update_id, payload, attempts in rows:
            if attempts >= MAX_ATTEMPTS or not isinstance(payload, dict):
                dropped.append(int(update_id))
            else:
                replay.append((int(update_id), payload))
        if dropped:
            await session.execute(
                update(TelegramUpdate)
                .where(TelegramUpdate.update_id.in_(dropped))
                .values(processed_at=now, payload=null())
            )
            logger.error(
                "Telegram updates dropped after %d attempts: %d", MAX_ATTEMPTS, len(dropped)
            )
        if replay:
            await session.execute(
                update(TelegramUpdate)
                .where(TelegramUpdate.update_id.in_([u for u, _ in replay]))
                .values(attempts=TelegramUpdate.attempts + 1)
            )
        await session.execute(
            delete(TelegramUpdate).where(
                TelegramUpdate.processed_at.is_not(None),
                TelegramUpdate.processed_at < now - KEEP_PROCESSED,
            )
        )
    return replay
