"""Shared state of the gateways: what one gateway process keeps between two requests, kept
outside it so that any gateway instance serves any request and a restart loses nothing.

Three kinds of state, one backend for all:

- **conversations** — the gateway's state of a conversation (language, mode, guided-mode
  answers, ...) as JSON, loaded at the start of a turn and saved at its end, under a
  per-conversation *lease* (a lock with a short expiry, renewed while the turn runs) that works
  across processes: two gateways never interleave the turns of one conversation, and a gateway
  killed mid-turn holds it for at most ``LOCK_TTL`` seconds. The action server's filings for the
  running turn (reached through the internal API, possibly on another gateway) are *notes* the
  turn collects after Rasa answered;
- **token buckets** — rate limits (per sender, per address, global), each hit one atomic
  statement, so several gateways share one limit;
- **entries** — small values with an expiry: proof-of-work challenges used once, Telegram's
  button map, login-failure counters.

Backends: :class:`SqlStateBackend` in the ticket store's database (the embedded default:
SQLite, nothing else to install; PostgreSQL in production) — tables ``conversation_states``,
``conversation_notes``, ``rate_buckets``, ``state_entries`` (migration 0007);
:class:`RedisStateBackend` when ``TRANQUILLITE_REDIS_URL`` is set; :class:`MemoryStateBackend`
for one process alone (a gateway object built without a database). Expired rows are deleted by
:meth:`StateBackend.expire` (the gateway runs it periodically, ``tranquillite purge`` too);
Redis expires its keys itself.

Keys that hold a client's address (buckets, owners of conversations) are stored hashed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import logging
import secrets
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, delete, event, func, insert, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from webhook.store.db import ConversationNote, ConversationStateRow, RateBucket, StateEntry

logger = logging.getLogger(__name__)

Clock = Callable[[], float]
# a turn's lease on its conversation: renewed every LOCK_TTL / 3 while the turn runs
LOCK_TTL = 10.0
# how long a turn waits for the lease of a conversation another turn holds
LOCK_WAIT = 60.0
# notes of a turn older than this are dropped (a turn lasts seconds)
NOTES_TTL = 3600.0


def _sqlite_state_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class StateBusy(Exception):
    """The conversation's lease could not be taken within ``LOCK_WAIT``."""


@dataclass(frozen=True)
class BucketDecision:
    allowed: bool
    retry_after: float = 0.0  # seconds until one token is available (0 when allowed)


def hashed(key: str) -> str:
    """A stored form of a key that may name a client (an address): SHA-256, 32 hex digits."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


@dataclass
class Lease:
    """A turn's hold on its conversation; ``released`` once the save gave it back."""

    token: str
    released: bool = False
    # the conversation's saved state, read with the lease (None: none, or idle too long)
    stored: StoredConversation | None = None


@dataclass
class StoredConversation:
    data: dict[str, Any]
    updated_at: float


class StateBackend(ABC):
    """Where gateways keep what must outlive a request. All times are wall-clock seconds
    (``clock``: ``time.time``), comparable between processes."""

    name = "abstract"

    def __init__(self, clock: Clock = time.time) -> None:
        self.clock = clock

    # -- conversations ------------------------------------------------------------------------
    @abstractmethod
    async def load(self, conversation_id: str, idle_seconds: float) -> StoredConversation | None:
        """The saved state of a conversation active within ``idle_seconds``, else None."""

    @abstractmethod
    async def save(
        self,
        conversation_id: str,
        data: dict[str, Any],
        *,
        owner: str | None,
        in_report: bool,
        token: str,
        release: bool = False,
    ) -> bool:
        """Save under the lease ``token`` (and give the lease back when ``release``); False
        when the lease was lost (not saved)."""

    @abstractmethod
    async def acquire(self, conversation_id: str, ttl: float) -> str | None:
        """Take the conversation's lease if free (or expired): its token, else None."""

    async def acquire_load(
        self, conversation_id: str, ttl: float, idle_seconds: float
    ) -> tuple[str | None, StoredConversation | None]:
        """:meth:`acquire`, and when taken the state :meth:`load` gives."""
        token = await self.acquire(conversation_id, ttl)
        if token is None:
            return None, None
        return token, await self.load(conversation_id, idle_seconds)

    @abstractmethod
    async def renew(self, conversation_id: str, token: str, ttl: float) -> bool: ...

    @abstractmethod
    async def release(self, conversation_id: str, token: str) -> None: ...

    @abstractmethod
    async def add_note(self, conversation_id: str, note: dict[str, Any]) -> None:
        """Something for the conversation's running turn (e.g. a filing by the action server)."""

    @abstractmethod
    async def take_notes(self, conversation_id: str) -> list[dict[str, Any]]:
        """The notes added since the last call, oldest first (then forgotten)."""

    @abstractmethod
    async def evict(
        self, owner: str | None, max_per_owner: int, max_total: int, idle_seconds: float
    ) -> int:
        """Bound the number of conversations: an owner's oldest beyond ``max_per_owner``, then
        the oldest not in a report beyond ``max_total`` (never one whose lease is held)."""

    @abstractmethod
    async def conversation_count(self, idle_seconds: float) -> int: ...

    # -- token buckets -------------------------------------------------------------------------
    @abstractmethod
    async def hit(self, key: str, burst: float, per_second: float) -> BucketDecision:
        """Take one token from the bucket ``key`` (``burst`` tokens, refilled at
        ``per_second``) if it has one."""

    @abstractmethod
    async def refund(self, key: str, burst: float) -> None:
        """Give back a token taken by :meth:`hit` (a later check of the same request failed)."""

    async def hit_all(self, buckets: list[tuple[str, float, float]]) -> tuple[int, BucketDecision]:
        """One token from each bucket ``(key, burst, per_second)``, or from none: (-1, allowed)
        or (the index of the first empty one, its decision) — the tokens taken before it are
        given back."""
        for index, (key, burst, per_second) in enumerate(buckets):
            decision = await self.hit(key, burst, per_second)
            if not decision.allowed:
                for earlier, earlier_burst, _ in buckets[:index]:
                    await self.refund(earlier, earlier_burst)
                return index, decision
        return -1, BucketDecision(True)

    # -- entries -------------------------------------------------------------------------------
    @abstractmethod
    async def put(self, key: str, value: Any, ttl: float) -> None: ...

    @abstractmethod
    async def get(self, key: str) -> Any | None: ...

    @abstractmethod
    async def add(self, key: str, value: Any, ttl: float) -> bool:
        """Store only if absent (or expired): True when stored — "first time" across gateways."""

    @abstractmethod
    async def incr(self, key: str, value: Any, ttl: float) -> int:
        """Add one to the entry's count (from 0 when absent or expired), set its value; the
        new count."""

    @abstractmethod
    async def count(self, key: str) -> int: ...

    @abstractmethod
    async def delete(self, key: str) -> None: ...

    # -- housekeeping --------------------------------------------------------------------------
    @abstractmethod
    async def expire(self, idle_seconds: float, *, dry_run: bool = False) -> dict[str, int]:
        """Delete conversations idle for longer than ``idle_seconds`` (not leased), old notes,
        full buckets and expired entries; how many of each."""

    async def close(self) -> None:
        return None

    async def ping(self) -> bool:
        """Whether the storage answers (the database's own check is the gateway's)."""
        return True

    # -- the lease, as a context manager -------------------------------------------------------
    @contextlib.asynccontextmanager
    async def leased(
        self,
        conversation_id: str,
        ttl: float = LOCK_TTL,
        wait: float = LOCK_WAIT,
        idle_seconds: float | None = None,
    ) -> AsyncIterator[Lease]:
        """Hold the conversation's lease (renewed in the background) for the block; with
        ``idle_seconds``, the lease carries the saved state (read with it)."""
        deadline = time.monotonic() + wait
        delay = 0.01
        while True:
            if idle_seconds is None:
                token, stored = await self.acquire(conversation_id, ttl), None
            else:
                token, stored = await self.acquire_load(conversation_id, ttl, idle_seconds)
            if token is not None:
                break
            if time.monotonic() > deadline:
                raise StateBusy(conversation_id)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.25)

        lease = Lease(token, stored=stored)

        async def keep() -> None:
            while True:
                await asyncio.sleep(ttl / 3)
                if not await self.renew(conversation_id, token, ttl):
                    if not lease.released:
                        logger.warning("a conversation's lease was lost during a turn")
                    return

        keeper = asyncio.create_task(keep())
        try:
            yield lease
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await keeper
            if not lease.released:
                await self.release(conversation_id, token)


# ============================================================================ memory
@dataclass
class _MemConversation:
    data: dict[str, Any] | None = None
    owner: str | None = None
    in_report: bool = False
    updated_at: float = 0.0
    token: str | None = None
    locked_until: float = 0.0


class MemoryStateBackend(StateBackend):
    """One process alone: dictionaries, bounded (``max_entries`` buckets and entries, least
    recently used dropped first)."""

    name = "memory"

    def __init__(self, clock: Clock = time.time, max_entries: int = 100_000) -> None:
        super().__init__(clock)
        self.max_entries = max_entries
        self._conversations: OrderedDict[str, _MemConversation] = OrderedDict()
        self._notes: dict[str, list[tuple[float, dict[str, Any]]]] = {}
        # tokens, updated, full again at
        self._buckets: OrderedDict[str, tuple[float, float, float]] = OrderedDict()
        self._entries: OrderedDict[str, tuple[Any, int, float]] = OrderedDict()

    def _bound(self, items: OrderedDict[str, Any]) -> None:
        while len(items) > self.max_entries:
            items.popitem(last=False)

    async def load(self, conversation_id: str, idle_seconds: float) -> StoredConversation | None:
        row = self._conversations.get(conversation_id)
        if row is None or row.data is None or self.clock() - row.updated_at > idle_seconds:
            return None
        return StoredConversation(json.loads(json.dumps(row.data)), row.updated_at)

    async def save(
        self,
        conversation_id: str,
        data: dict[str, Any],
        *,
        owner: str | None,
        in_report: bool,
        token: str,
        release: bool = False,
    ) -> bool:
        row = self._conversations.get(conversation_id)
        if row is None or row.token != token:
            return False
        if release:
            row.token = None
        row.data = json.loads(json.dumps(data))
        row.owner = hashed(owner) if owner else None
        row.in_report = in_report
        row.updated_at = self.clock()
        self._conversations.move_to_end(conversation_id)
        return True

    async def acquire(self, conversation_id: str, ttl: float) -> str | None:
        now = self.clock()
        row = self._conversations.setdefault(conversation_id, _MemConversation(updated_at=now))
        if row.token is not None and row.locked_until >= now:
            return None
        row.token = secrets.token_hex(16)
        row.locked_until = now + ttl
        return row.token

    async def renew(self, conversation_id: str, token: str, ttl: float) -> bool:
        row = self._conversations.get(conversation_id)
        if row is None or row.token != token:
            return False
        row.locked_until = self.clock() + ttl
        return True

    async def release(self, conversation_id: str, token: str) -> None:
        row = self._conversations.get(conversation_id)
        if row is not None and row.token == token:
            row.token = None
            if row.data is None:
                del self._conversations[conversation_id]

    async def add_note(self, conversation_id: str, note: dict[str, Any]) -> None:
        self._notes.setdefault(conversation_id, []).append((self.clock(), note))

    async def take_notes(self, conversation_id: str) -> list[dict[str, Any]]:
        since = self.clock() - NOTES_TTL
        return [n for t, n in self._notes.pop(conversation_id, []) if t >= since]

    def _held(self, row: _MemConversation, now: float) -> bool:
        return row.token is not None and row.locked_until >= now

    async def evict(
        self, owner: str | None, max_per_owner: int, max_total: int, idle_seconds: float
    ) -> int:
        now = self.clock()
        removed = 0
        live = [
            (cid, row)
            for cid, row in self._conversations.items()
            if row.data is not None and now - row.updated_at <= idle_seconds
        ]
        if owner:
            mine = sorted((r.updated_at, cid) for cid, r in live if r.owner == hashed(owner))
            for _, cid in mine[: max(0, len(mine) - max_per_owner)]:
                if not self._held(self._conversations[cid], now):
                    del self._conversations[cid]
                    removed += 1
        live = [(cid, row) for cid, row in live if cid in self._conversations]
        extra = len(live) - max_total
        if extra > 0:
            for _, cid in sorted((r.updated_at, cid) for cid, r in live if not r.in_report):
                if extra <= 0:
                    break
                if not self._held(self._conversations[cid], now):
                    del self._conversations[cid]
                    removed += 1
                    extra -= 1
        return removed

    async def conversation_count(self, idle_seconds: float) -> int:
        now = self.clock()
        return sum(
            1
            for r in self._conversations.values()
            if r.data is not None and now - r.updated_at <= idle_seconds
        )

    async def hit(self, key: str, burst: float, per_second: float) -> BucketDecision:
        now = self.clock()
        tokens, updated, _ = self._buckets.get(key, (burst, now, now))
        tokens = min(burst, tokens + max(0.0, now - updated) * per_second)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        self._buckets[key] = (tokens, max(updated, now), now + (burst - tokens) / per_second)
        self._buckets.move_to_end(key)
        self._bound(self._buckets)
        return BucketDecision(True) if allowed else BucketDecision(False, (1 - tokens) / per_second)

    async def refund(self, key: str, burst: float) -> None:
        if key in self._buckets:
            tokens, updated, full_at = self._buckets[key]
            self._buckets[key] = (min(burst, tokens + 1.0), updated, full_at)

    def _entry(self, key: str) -> tuple[Any, int, float] | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[2] < self.clock():
            del self._entries[key]
            return None
        return entry

    async def put(self, key: str, value: Any, ttl: float) -> None:
        self._entries[key] = (value, 0, self.clock() + ttl)
        self._entries.move_to_end(key)
        self._bound(self._entries)

    async def get(self, key: str) -> Any | None:
        entry = self._entry(key)
        return None if entry is None else entry[0]

    async def add(self, key: str, value: Any, ttl: float) -> bool:
        if self._entry(key) is not None:
            return False
        await self.put(key, value, ttl)
        return True

    async def incr(self, key: str, value: Any, ttl: float) -> int:
        entry = self._entry(key)
        count = (entry[1] if entry is not None else 0) + 1
        self._entries[key] = (value, count, self.clock() + ttl)
        self._entries.move_to_end(key)
        self._bound(self._entries)
        return count

    async def count(self, key: str) -> int:
        entry = self._entry(key)
        return 0 if entry is None else entry[1]

    async def delete(self, key: str) -> None:
        self._entries.pop(key, None)

    async def expire(self, idle_seconds: float, *, dry_run: bool = False) -> dict[str, int]:
        now = self.clock()
        idle = [
            cid
            for cid, r in self._conversations.items()
            if now - r.updated_at > idle_seconds and not self._held(r, now)
        ]
        expired = [k for k, (_, _, until) in self._entries.items() if until < now]
        full = [k for k, (_, _, full_at) in self._buckets.items() if full_at < now]
        old_notes = [
            cid for cid, notes in self._notes.items() if all(t < now - NOTES_TTL for t, _ in notes)
        ]
        if not dry_run:
            for cid in idle:
                del self._conversations[cid]
            for k in expired:
                del self._entries[k]
            for k in full:
                del self._buckets[k]
            for cid in old_notes:
                del self._notes[cid]
        return {
            "conversations": len(idle),
            "notes": len(old_notes),
            "buckets": len(full),
            "entries": len(expired),
        }


# ============================================================================ SQL
class SqlStateBackend(StateBackend):
    """The ticket store's database (SQLite or PostgreSQL): every operation is one short
    transaction of one or two statements; no transaction stays open during a turn (the lease
    is a row's ``lock_token`` / ``locked_until``, taken and released by compare-and-set)."""

    name = "sql"

    def __init__(self, engine: AsyncEngine, clock: Clock = time.time) -> None:
        super().__init__(clock)
        self.dialect = engine.dialect.name
        self._insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        self._own_engine = self.dialect == "sqlite"
        if self._own_engine:
            # Its own connections, with synchronous=NORMAL: in WAL mode a commit no longer
            # waits for the disk (a crash of the process loses nothing; a power cut may lose
            # the last state saves, never a ticket, whose connections stay FULL)
            # One connection: this process's state writes queue in the pool rather than in
            # SQLite's busy handler (which sleeps up to 100 ms between tries)
            self.engine = create_async_engine(
                engine.url,
                connect_args={"timeout": 30},
                hide_parameters=True,
                pool_size=1,
                max_overflow=0,
                pool_timeout=60,
            )
            event.listen(self.engine.sync_engine, "connect", _sqlite_state_pragmas)
        else:
            self.engine = engine

    def _least(self, a: Any, b: Any) -> Any:
        return func.least(a, b) if self.dialect == "postgresql" else func.min(a, b)

    def _greatest(self, a: Any, b: Any) -> Any:
        return func.greatest(a, b) if self.dialect == "postgresql" else func.max(a, b)

    @contextlib.asynccontextmanager
    async def _tx(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.begin() as connection:
            if self.dialect == "postgresql":
                # a commit does not wait for the WAL flush: a crash of PostgreSQL itself may
                # lose the last fraction of a second of shared state, never a ticket
                await connection.execute(text("SET LOCAL synchronous_commit TO OFF"))
            yield connection

    async def close(self) -> None:
        if self._own_engine:
            await self.engine.dispose()

    # -- conversations
    async def load(self, conversation_id: str, idle_seconds: float) -> StoredConversation | None:
        table = ConversationStateRow
        async with self._tx() as c:
            row = (
                await c.execute(
                    select(table.data, table.updated_at).where(
                        table.conversation_id == conversation_id, table.version > 0
                    )
                )
            ).first()
        if row is None or row.data is None or self.clock() - row.updated_at > idle_seconds:
            return None
        return StoredConversation(json.loads(row.data), float(row.updated_at))

    async def save(
        self,
        conversation_id: str,
        data: dict[str, Any],
        *,
        owner: str | None,
        in_report: bool,
        token: str,
        release: bool = False,
    ) -> bool:
        table = ConversationStateRow
        values: dict[str, Any] = {
            "data": json.dumps(data, ensure_ascii=False, separators=(",", ":")),
            "version": table.version + 1,
            "owner": hashed(owner) if owner else None,
            "in_report": in_report,
            "updated_at": self.clock(),
        }
        if release:
            values.update(lock_token=None, locked_until=None)
        async with self._tx() as c:
            result = await c.execute(
                update(table)
                .where(table.conversation_id == conversation_id, table.lock_token == token)
                .values(**values)
            )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def acquire(self, conversation_id: str, ttl: float) -> str | None:
        token, _ = await self.acquire_load(conversation_id, ttl, None)
        return token

    async def acquire_load(
        self, conversation_id: str, ttl: float, idle_seconds: float | None
    ) -> tuple[str | None, StoredConversation | None]:
        """One statement when the row exists: the lease taken and the state read back."""
        table = ConversationStateRow
        token = secrets.token_hex(16)
        now = self.clock()
        async with self._tx() as c:
            taken = (
                await c.execute(
                    update(table)
                    .where(
                        table.conversation_id == conversation_id,
                        or_(table.lock_token.is_(None), table.locked_until < now),
                    )
                    .values(lock_token=token, locked_until=now + ttl)
                    .returning(table.data, table.version, table.updated_at)
                )
            ).first()
            if taken is not None:
                stored = None
                if (
                    idle_seconds is not None
                    and taken.version > 0
                    and taken.data is not None
                    and now - taken.updated_at <= idle_seconds
                ):
                    stored = StoredConversation(json.loads(taken.data), float(taken.updated_at))
                return token, stored
            created = await c.execute(
                self._insert(table)
                .values(
                    conversation_id=conversation_id,
                    version=0,
                    in_report=False,
                    updated_at=now,
                    lock_token=token,
                    locked_until=now + ttl,
                )
                .on_conflict_do_nothing(index_elements=["conversation_id"])
                .returning(table.conversation_id)
            )
            # RETURNING, not rowcount: psycopg reports -1 for an INSERT ... ON CONFLICT
            return (token if created.first() is not None else None), None

    async def renew(self, conversation_id: str, token: str, ttl: float) -> bool:
        table = ConversationStateRow
        async with self._tx() as c:
            result = await c.execute(
                update(table)
                .where(table.conversation_id == conversation_id, table.lock_token == token)
                .values(locked_until=self.clock() + ttl)
            )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def release(self, conversation_id: str, token: str) -> None:
        table = ConversationStateRow
        async with self._tx() as c:
            # a row made only for the lease (never saved) goes with it
            await c.execute(
                delete(table).where(
                    table.conversation_id == conversation_id,
                    table.lock_token == token,
                    table.version == 0,
                )
            )
            await c.execute(
                update(table)
                .where(table.conversation_id == conversation_id, table.lock_token == token)
                .values(lock_token=None, locked_until=None)
            )

    async def add_note(self, conversation_id: str, note: dict[str, Any]) -> None:
        async with self._tx() as c:
            await c.execute(
                insert(ConversationNote).values(
                    conversation_id=conversation_id,
                    note=json.dumps(note, separators=(",", ":")),
                    created_at=self.clock(),
                )
            )

    async def take_notes(self, conversation_id: str) -> list[dict[str, Any]]:
        table = ConversationNote
        async with self._tx() as c:
            rows = (
                await c.execute(
                    select(table.id, table.note, table.created_at)
                    .where(table.conversation_id == conversation_id)
                    .order_by(table.id)
                )
            ).all()
            if not rows:
                return []
            await c.execute(delete(table).where(table.id.in_([r.id for r in rows])))
        since = self.clock() - NOTES_TTL
        return [json.loads(r.note) for r in rows if r.created_at >= since]

    async def evict(
        self, owner: str | None, max_per_owner: int, max_total: int, idle_seconds: float
    ) -> int:
        table = ConversationStateRow
        now = self.clock()
        free = or_(table.lock_token.is_(None), table.locked_until < now)
        live = and_(table.version > 0, table.updated_at >= now - idle_seconds)
        removed = 0
        async with self._tx() as c:
            if owner:
                beyond = (
                    select(table.conversation_id)
                    .where(table.owner == hashed(owner), live)
                    .order_by(table.updated_at.desc())
                    .offset(max_per_owner)
                )
                ids = list((await c.execute(beyond)).scalars())
                if ids:
                    result = await c.execute(
                        delete(table).where(table.conversation_id.in_(ids), free)
                    )
                    removed += result.rowcount  # type: ignore[attr-defined]
            total = (await c.execute(select(func.count()).where(live))).scalar_one()
            if total > max_total:
                oldest = (
                    select(table.conversation_id)
                    .where(live, table.in_report.is_(False), free)
                    .order_by(table.updated_at)
                    .limit(total - max_total)
                )
                ids = list((await c.execute(oldest)).scalars())
                if ids:
                    result = await c.execute(delete(table).where(table.conversation_id.in_(ids)))
                    removed += result.rowcount  # type: ignore[attr-defined]
        return removed

    async def conversation_count(self, idle_seconds: float) -> int:
        table = ConversationStateRow
        async with self._tx() as c:
            return int(
                (
                    await c.execute(
                        select(func.count()).where(
                            table.version > 0, table.updated_at >= self.clock() - idle_seconds
                        )
                    )
                ).scalar_one()
            )

    # -- buckets
    async def hit(self, key: str, burst: float, per_second: float) -> BucketDecision:
        _index, decision = await self.hit_all([(key, burst, per_second)])
        return decision

    async def hit_all(self, buckets: list[tuple[str, float, float]]) -> tuple[int, BucketDecision]:
        """In one transaction (one commit for all the buckets of a request)."""
        now = self.clock()
        async with self._tx() as c:
            for index, (key, burst, per_second) in enumerate(buckets):
                row = (await c.execute(self._hit(key, burst, per_second, now))).one()
                if not row.allowed:
                    for earlier, earlier_burst, _ in buckets[:index]:
                        await c.execute(self._refund(earlier, earlier_burst))
                    return index, BucketDecision(False, (1.0 - float(row.tokens)) / per_second)
        return -1, BucketDecision(True)

    def _hit(self, key: str, burst: float, per_second: float, now: float) -> Any:
        b = RateBucket
        stored = hashed(key)
        elapsed = self._greatest(0.0, now - b.updated)
        available = self._least(float(burst), b.tokens + elapsed * per_second)
        left = case((available >= 1.0, available - 1.0), else_=available)
        statement = (
            self._insert(b)
            .values(
                key=stored,
                tokens=float(burst) - 1.0,
                updated=now,
                allowed=True,
                full_at=now + 1.0 / per_second,
            )
            .on_conflict_do_update(
                index_elements=["key"],
                set_={
                    "tokens": left,
                    "allowed": available >= 1.0,
                    "updated": self._greatest(b.updated, now),
                    "full_at": now + (float(burst) - left) / per_second,
                },
            )
            .returning(b.tokens, b.allowed)
        )
        return statement

    def _refund(self, key: str, burst: float) -> Any:
        b = RateBucket
        return (
            update(b)
            .where(b.key == hashed(key))
            .values(tokens=self._least(float(burst), b.tokens + 1.0))
        )

    async def refund(self, key: str, burst: float) -> None:
        async with self._tx() as c:
            await c.execute(self._refund(key, burst))

    # -- entries
    async def put(self, key: str, value: Any, ttl: float) -> None:
        e = StateEntry
        raw = json.dumps(value, separators=(",", ":"))
        until = self.clock() + ttl
        async with self._tx() as c:
            await c.execute(
                self._insert(e)
                .values(key=key, value=raw, count=0, expires_at=until)
                .on_conflict_do_update(
                    index_elements=["key"], set_={"value": raw, "count": 0, "expires_at": until}
                )
            )

    async def get(self, key: str) -> Any | None:
        e = StateEntry
        async with self._tx() as c:
            raw = (
                await c.execute(select(e.value).where(e.key == key, e.expires_at >= self.clock()))
            ).scalar_one_or_none()
        return None if raw is None else json.loads(raw)

    async def add(self, key: str, value: Any, ttl: float) -> bool:
        e = StateEntry
        now = self.clock()
        raw = json.dumps(value, separators=(",", ":"))
        async with self._tx() as c:
            result = await c.execute(
                self._insert(e)
                .values(key=key, value=raw, count=0, expires_at=now + ttl)
                .on_conflict_do_update(
                    index_elements=["key"],
                    set_={"value": raw, "count": 0, "expires_at": now + ttl},
                    where=e.expires_at < now,
                )
                .returning(e.key)
            )
            return result.first() is not None

    async def incr(self, key: str, value: Any, ttl: float) -> int:
        e = StateEntry
        now = self.clock()
        raw = json.dumps(value, separators=(",", ":"))
        async with self._tx() as c:
            row = (
                await c.execute(
                    self._insert(e)
                    .values(key=key, value=raw, count=1, expires_at=now + ttl)
                    .on_conflict_do_update(
                        index_elements=["key"],
                        set_={
                            "value": raw,
                            "count": case((e.expires_at < now, 1), else_=e.count + 1),
                            "expires_at": now + ttl,
                        },
                    )
                    .returning(e.count)
                )
            ).one()
        return int(row[0])

    async def count(self, key: str) -> int:
        e = StateEntry
        async with self._tx() as c:
            value = (
                await c.execute(select(e.count).where(e.key == key, e.expires_at >= self.clock()))
            ).scalar_one_or_none()
        return int(value or 0)

    async def delete(self, key: str) -> None:
        async with self._tx() as c:
            await c.execute(delete(StateEntry).where(StateEntry.key == key))

    async def expire(self, idle_seconds: float, *, dry_run: bool = False) -> dict[str, int]:
        now = self.clock()
        s, n, b, e = ConversationStateRow, ConversationNote, RateBucket, StateEntry
        conditions = {
            "conversations": (
                s,
                and_(
                    s.updated_at < now - idle_seconds,
                    or_(s.lock_token.is_(None), s.locked_until < now),
                ),
            ),
            "notes": (n, n.created_at < now - NOTES_TTL),
            "buckets": (b, b.full_at < now),
            "entries": (e, e.expires_at < now),
        }
        counts: dict[str, int] = {}
        async with self._tx() as c:
            for name, (table, condition) in conditions.items():
                if dry_run:
                    counting = select(func.count()).select_from(table).where(condition)
                    counts[name] = int((await c.execute(counting)).scalar_one())
                else:
                    result = await c.execute(delete(table).where(condition))
                    counts[name] = int(result.rowcount)  # type: ignore[attr-defined]
        return counts


# ============================================================================ Redis
_BUCKET = """
local burst = tonumber(ARGV[1]); local rate = tonumber(ARGV[2]); local now = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 't', 'u')
local tokens = tonumber(state[1]); local updated = tonumber(state[2])
if tokens == nil then tokens = burst; updated = now end
tokens = math.min(burst, tokens + math.max(0, now - updated) * rate)
local allowed = 0
if tokens >= 1 then tokens = tokens - 1; allowed = 1 end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'u', tostring(math.max(updated, now)))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return {allowed, tostring(tokens)}
"""
_REFUND = """
local tokens = tonumber(redis.call('HGET', KEYS[1], 't'))
if tokens ~= nil then
  redis.call('HSET', KEYS[1], 't', tostring(math.min(tonumber(ARGV[1]), tokens + 1)))
end
return 1
"""
_IF_OWNER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  if ARGV[2] == '' then return redis.call('DEL', KEYS[1]) end
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_SAVE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
if ARGV[4] ~= '' then redis.call('DEL', KEYS[1]) end
return 1
"""
_ADD = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'c', 0)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""
_INCR = """
local count = redis.call('HINCRBY', KEYS[1], 'c', 1)
redis.call('HSET', KEYS[1], 'v', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return count
"""


class RedisStateBackend(StateBackend):
    """Redis (``TRANQUILLITE_REDIS_URL``): conversations are keys that expire when idle, the
    lease a ``SET NX PX`` key released by its holder only, buckets and counters Lua scripts
    (atomic). Nothing to purge: every key has an expiry. Conversations are bounded by their
    idle expiry only (Redis' ``maxmemory`` is the deployment's bound)."""

    name = "redis"

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "tq:",
        clock: Clock = time.time,
        conversation_ttl: float = 6 * 3600,
    ) -> None:
        super().__init__(clock)
        import redis.asyncio as redis_asyncio

        self.url = url
        self.prefix = prefix
        self.conversation_ttl = conversation_ttl
        self.redis = redis_asyncio.Redis.from_url(url, decode_responses=True)
        self._bucket = self.redis.register_script(_BUCKET)
        self._refund = self.redis.register_script(_REFUND)
        self._if_owner = self.redis.register_script(_IF_OWNER)
        self._save = self.redis.register_script(_SAVE)
        self._incr = self.redis.register_script(_INCR)
        self._add = self.redis.register_script(_ADD)

    def _k(self, kind: str, key: str) -> str:
        return f"{self.prefix}{kind}:{key}"

    async def load(self, conversation_id: str, idle_seconds: float) -> StoredConversation | None:
        raw = await self.redis.get(self._k("conv", conversation_id))
        if raw is None:
            return None
        stored = json.loads(raw)
        if self.clock() - float(stored["u"]) > idle_seconds:
            return None
        return StoredConversation(stored["d"], float(stored["u"]))

    async def save(
        self,
        conversation_id: str,
        data: dict[str, Any],
        *,
        owner: str | None,
        in_report: bool,
        token: str,
        release: bool = False,
    ) -> bool:
        raw = json.dumps({"d": data, "u": self.clock(), "r": in_report}, separators=(",", ":"))
        saved = await self._save(
            keys=[self._k("lock", conversation_id), self._k("conv", conversation_id)],
            args=[token, raw, int(self.conversation_ttl * 1000), "1" if release else ""],
        )
        return bool(saved)

    async def acquire(self, conversation_id: str, ttl: float) -> str | None:
        token = secrets.token_hex(16)
        ok = await self.redis.set(
            self._k("lock", conversation_id), token, nx=True, px=int(ttl * 1000)
        )
        return token if ok else None

    async def renew(self, conversation_id: str, token: str, ttl: float) -> bool:
        return bool(
            await self._if_owner(
                keys=[self._k("lock", conversation_id)], args=[token, int(ttl * 1000)]
            )
        )

    async def release(self, conversation_id: str, token: str) -> None:
        await self._if_owner(keys=[self._k("lock", conversation_id)], args=[token, ""])

    async def add_note(self, conversation_id: str, note: dict[str, Any]) -> None:
        key = self._k("notes", conversation_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(key, json.dumps(note, separators=(",", ":")))
            pipe.pexpire(key, int(NOTES_TTL * 1000))
            await pipe.execute()

    async def take_notes(self, conversation_id: str) -> list[dict[str, Any]]:
        key = self._k("notes", conversation_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.lrange(key, 0, -1)
            pipe.delete(key)
            raw, _ = await pipe.execute()
        return [json.loads(item) for item in raw]

    async def evict(
        self, owner: str | None, max_per_owner: int, max_total: int, idle_seconds: float
    ) -> int:
        return 0  # conversations expire when idle; Redis' maxmemory bounds the rest

    async def conversation_count(self, idle_seconds: float) -> int:
        count = 0
        async for _ in self.redis.scan_iter(match=self._k("conv", "*"), count=1000):
            count += 1
        return count

    async def hit(self, key: str, burst: float, per_second: float) -> BucketDecision:
        allowed, tokens = await self._bucket(
            keys=[self._k("bucket", hashed(key))], args=[burst, per_second, self.clock()]
        )
        if int(allowed):
            return BucketDecision(True)
        return BucketDecision(False, (1.0 - float(tokens)) / per_second)

    async def refund(self, key: str, burst: float) -> None:
        await self._refund(keys=[self._k("bucket", hashed(key))], args=[burst])

    async def put(self, key: str, value: Any, ttl: float) -> None:
        k = self._k("entry", key)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(k)
            pipe.hset(k, mapping={"v": json.dumps(value), "c": 0})
            pipe.pexpire(k, max(1, int(ttl * 1000)))
            await pipe.execute()

    async def get(self, key: str) -> Any | None:
        raw = await self.redis.hget(self._k("entry", key), "v")
        return None if raw is None else json.loads(raw)

    async def add(self, key: str, value: Any, ttl: float) -> bool:
        created = await self._add(
            keys=[self._k("entry", key)], args=[json.dumps(value), max(1, int(ttl * 1000))]
        )
        return bool(created)

    async def incr(self, key: str, value: Any, ttl: float) -> int:
        return int(
            await self._incr(
                keys=[self._k("entry", key)], args=[json.dumps(value), max(1, int(ttl * 1000))]
            )
        )

    async def count(self, key: str) -> int:
        raw = await self.redis.hget(self._k("entry", key), "c")
        return int(raw or 0)

    async def delete(self, key: str) -> None:
        await self.redis.delete(self._k("entry", key))

    async def expire(self, idle_seconds: float, *, dry_run: bool = False) -> dict[str, int]:
        return {}  # every key has its own expiry

    async def close(self) -> None:
        await self.redis.aclose()

    async def ping(self) -> bool:
        try:
            return bool(await asyncio.wait_for(self.redis.ping(), timeout=2.0))
        except Exception:  # noqa: BLE001 - any failure means "down" for a probe
            return False


# ============================================================================ outages
def _outage_errors() -> tuple[type[BaseException], ...]:
    """What a storage outage raises: the database's errors, the network's, Redis'."""
    from sqlalchemy.exc import SQLAlchemyError

    errors: list[type[BaseException]] = [SQLAlchemyError, OSError, TimeoutError]
    try:
        from redis.exceptions import RedisError
    except ImportError:  # pragma: no cover - redis is a pinned dependency of the gateway
        pass
    else:
        errors.append(RedisError)
    return tuple(errors)


_MEMORY_TOKEN = "mem:"  # noqa: S105 - a prefix of lease tokens, not a secret


class ResilientStateBackend(StateBackend):
    """The shared backend, and this process' memory while it does not answer.

    The database (or Redis) down must not stop a citizen half-way through a report (SPEC: the
    report is kept, the citizen is told): while the shared storage fails, this gateway keeps
    conversations, buckets and entries in its own memory (:class:`MemoryStateBackend`, as before
    the state was shared), and tries the storage again ``retry_seconds`` later. A conversation
    that went on in memory during the outage is read from memory at its next turn and written
    back to the shared storage by that turn's save. What an outage costs: another gateway does
    not see those conversations until they are saved back, and limits are counted per process
    meanwhile. Every state saved in the shared storage is also copied in memory (the most
    recent ``max_mirrored``), so that an outage continues a conversation where this gateway
    last saw it."""

    def __init__(
        self,
        primary: StateBackend,
        *,
        retry_seconds: float = 5.0,
        max_mirrored: int = 20_000,
        clock: Clock = time.time,
    ) -> None:
        super().__init__(clock)
        self.primary = primary
        self.max_mirrored = max_mirrored
        self.memory = MemoryStateBackend(clock)
        self.retry_seconds = retry_seconds
        self.name = primary.name
        self._down_until = 0.0
        # conversations whose latest state is in memory (saved during an outage)
        self._in_memory: set[str] = set()
        self._errors = _outage_errors()

    def _mirror(
        self, conversation_id: str, data: dict[str, Any], owner: str | None, in_report: bool
    ) -> None:
        """Keep a copy of a state saved in the shared storage: an outage then continues the
        conversation where this gateway last saw it (the most recent ``max_mirrored``)."""
        rows = self.memory._conversations
        row = rows.get(conversation_id) or _MemConversation()
        row.data = json.loads(json.dumps(data))
        row.owner = hashed(owner) if owner else None
        row.in_report = in_report
        row.updated_at = self.clock()
        row.token = None
        rows[conversation_id] = row
        rows.move_to_end(conversation_id)
        excess = len(rows) - self.max_mirrored
        if excess > 0:
            for old in list(itertools.islice(rows, excess)):
                if old not in self._in_memory and rows[old].token is None:
                    del rows[old]

    @property
    def degraded(self) -> bool:
        return time.monotonic() < self._down_until

    def _failed(self, exc: BaseException) -> None:
        if not self.degraded:
            logger.error(
                "shared state unavailable (%s): conversations go on in this gateway's memory",
                type(exc).__name__,
            )
        self._down_until = time.monotonic() + self.retry_seconds

    async def _try(self, call: Callable[[StateBackend], Any]) -> Any:
        """``call`` on the shared storage, on memory while it is down or when it fails."""
        if not self.degraded:
            try:
                return await call(self.primary)
            except self._errors as exc:
                self._failed(exc)
        return await call(self.memory)

    # -- conversations ------------------------------------------------------------------------
    async def load(self, conversation_id: str, idle_seconds: float) -> StoredConversation | None:
        if conversation_id in self._in_memory:
            return await self.memory.load(conversation_id, idle_seconds)
        return await self._try(lambda b: b.load(conversation_id, idle_seconds))  # type: ignore[no-any-return]

    async def _memory_acquire(self, conversation_id: str, ttl: float) -> str | None:
        token = await self.memory.acquire(conversation_id, ttl)
        return None if token is None else _MEMORY_TOKEN + token

    async def acquire(self, conversation_id: str, ttl: float) -> str | None:
        if not self.degraded:
            try:
                token = await self.primary.acquire(conversation_id, ttl)
            except self._errors as exc:
                self._failed(exc)
            else:
                return token
        return await self._memory_acquire(conversation_id, ttl)

    async def acquire_load(
        self, conversation_id: str, ttl: float, idle_seconds: float
    ) -> tuple[str | None, StoredConversation | None]:
        if conversation_id not in self._in_memory and not self.degraded:
            try:
                return await self.primary.acquire_load(conversation_id, ttl, idle_seconds)
            except self._errors as exc:
                self._failed(exc)
        token = await self.acquire(conversation_id, ttl)
        if token is None:
            return None, None
        return token, await self.load(conversation_id, idle_seconds)

    async def save(
        self,
        conversation_id: str,
        data: dict[str, Any],
        *,
        owner: str | None,
        in_report: bool,
        token: str,
        release: bool = False,
    ) -> bool:
        if not token.startswith(_MEMORY_TOKEN):
            try:
                saved = await self.primary.save(
                    conversation_id,
                    data,
                    owner=owner,
                    in_report=in_report,
                    token=token,
                    release=release,
                )
            except self._errors as exc:
                self._failed(exc)
            else:
                if saved:  # back in (or still in) the shared storage; a copy for an outage
                    self._in_memory.discard(conversation_id)
                    self._mirror(conversation_id, data, owner, in_report)
                return saved  # type: ignore[no-any-return]
            # the storage failed under this turn: keep the state in memory
            memory_token = await self.memory.acquire(conversation_id, LOCK_TTL)
            if memory_token is None:
                return False
            token = _MEMORY_TOKEN + memory_token
            release = True
        saved = await self.memory.save(
            conversation_id,
            data,
            owner=owner,
            in_report=in_report,
            token=token.removeprefix(_MEMORY_TOKEN),
            release=release,
        )
        if saved:
            self._in_memory.add(conversation_id)
        return saved

    async def renew(self, conversation_id: str, token: str, ttl: float) -> bool:
        if token.startswith(_MEMORY_TOKEN):
            return await self.memory.renew(conversation_id, token.removeprefix(_MEMORY_TOKEN), ttl)
        try:
            return await self.primary.renew(conversation_id, token, ttl)
        except self._errors as exc:
            self._failed(exc)
            return True  # the turn goes on; its save falls back to memory

    async def release(self, conversation_id: str, token: str) -> None:
        if token.startswith(_MEMORY_TOKEN):
            await self.memory.release(conversation_id, token.removeprefix(_MEMORY_TOKEN))
            return
        try:
            await self.primary.release(conversation_id, token)
        except self._errors as exc:
            self._failed(exc)
        if conversation_id in self._in_memory:
            row = self.memory._conversations.get(conversation_id)
            if row is not None:
                row.token = None

    async def add_note(self, conversation_id: str, note: dict[str, Any]) -> None:
        await self._try(lambda b: b.add_note(conversation_id, note))

    async def take_notes(self, conversation_id: str) -> list[dict[str, Any]]:
        notes: list[dict[str, Any]] = await self.memory.take_notes(conversation_id)
        if not self.degraded:
            try:
                notes += await self.primary.take_notes(conversation_id)
            except self._errors as exc:
                self._failed(exc)
        return notes

    async def evict(
        self, owner: str | None, max_per_owner: int, max_total: int, idle_seconds: float
    ) -> int:
        return await self._try(  # type: ignore[no-any-return]
            lambda b: b.evict(owner, max_per_owner, max_total, idle_seconds)
        )

    async def conversation_count(self, idle_seconds: float) -> int:
        return await self._try(lambda b: b.conversation_count(idle_seconds))  # type: ignore[no-any-return]

    # -- token buckets and entries -------------------------------------------------------------
    async def hit(self, key: str, burst: float, per_second: float) -> BucketDecision:
        return await self._try(lambda b: b.hit(key, burst, per_second))  # type: ignore[no-any-return]

    async def refund(self, key: str, burst: float) -> None:
        await self._try(lambda b: b.refund(key, burst))

    async def hit_all(self, buckets: list[tuple[str, float, float]]) -> tuple[int, BucketDecision]:
        return await self._try(lambda b: b.hit_all(buckets))  # type: ignore[no-any-return]

    async def put(self, key: str, value: Any, ttl: float) -> None:
        await self._try(lambda b: b.put(key, value, ttl))

    async def get(self, key: str) -> Any | None:
        return await self._try(lambda b: b.get(key))

    async def add(self, key: str, value: Any, ttl: float) -> bool:
        return await self._try(lambda b: b.add(key, value, ttl))  # type: ignore[no-any-return]

    async def incr(self, key: str, value: Any, ttl: float) -> int:
        return await self._try(lambda b: b.incr(key, value, ttl))  # type: ignore[no-any-return]

    async def count(self, key: str) -> int:
        return await self._try(lambda b: b.count(key))  # type: ignore[no-any-return]

    async def delete(self, key: str) -> None:
        await self._try(lambda b: b.delete(key))

    async def expire(self, idle_seconds: float, *, dry_run: bool = False) -> dict[str, int]:
        await self.memory.expire(idle_seconds, dry_run=dry_run)
        self._in_memory &= set(self.memory._conversations)
        return await self.primary.expire(idle_seconds, dry_run=dry_run)

    async def close(self) -> None:
        await self.primary.close()

    async def ping(self) -> bool:
        try:
            return await self.primary.ping()
        except self._errors:
            return False


def backend_for(
    engine: AsyncEngine | None, redis_url: str = "", *, conversation_ttl: float = 6 * 3600
) -> StateBackend:
    """Redis when configured, else the database when there is one, else memory; a shared one
    falls back on this process' memory while it does not answer (:class:`ResilientStateBackend`)."""
    if redis_url:
        return ResilientStateBackend(
            RedisStateBackend(redis_url, conversation_ttl=conversation_ttl)
        )
    if engine is not None:
        return ResilientStateBackend(SqlStateBackend(engine))
    return MemoryStateBackend()


__all__ = [
    "LOCK_TTL",
    "LOCK_WAIT",
    "BucketDecision",
    "MemoryStateBackend",
    "RedisStateBackend",
    "ResilientStateBackend",
    "SqlStateBackend",
    "StateBackend",
    "StateBusy",
    "StoredConversation",
    "backend_for",
    "hashed",
]
