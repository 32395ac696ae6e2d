"""Dashboard login sessions kept on the server (``agent_sessions``).

The cookie holds a random token (256 bits); the database keeps its SHA-256, the agent, when it
was issued and last used, and when it was revoked. A session ends at logout (that very token),
when the agent is deactivated or changes password (every token of the agent), after
``idle_seconds`` without a request, or ``max_age`` seconds after login — whichever comes first.
A copied cookie is worth nothing once the session has ended, unlike a signed stateless cookie.

CSRF tokens are derived from the session (HMAC of its token hash with the gateway's key): they
die with it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from webhook.store.db import AgentSession, utcnow

Sessions = async_sessionmaker[AsyncSession]

MAX_AGE_SECONDS = 8 * 3600
IDLE_SECONDS = 3600
# last_seen_at is written at most this often (one write per minute, not per page)
TOUCH_SECONDS = 60
TOKEN_MARK = "tqs_"  # noqa: S105 - the visible mark of session tokens, not a secret


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class SessionRecord:
    id: int
    agent_id: int
    token_hash: str


class ServerSessions:
    def __init__(
        self,
        key: bytes,
        *,
        max_age: int = MAX_AGE_SECONDS,
        idle_seconds: int = IDLE_SECONDS,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self._csrf_key = hashlib.sha256(b"tranquillite-session-csrf|" + key).digest()
        self.max_age = max_age
        self.idle_seconds = idle_seconds
        self._clock = clock

    async def issue(self, db: Sessions, agent_id: int) -> tuple[str, SessionRecord]:
        """A new session for the agent: (cookie value, record)."""
        token = TOKEN_MARK + secrets.token_urlsafe(32)
        now = self._clock()
        row = AgentSession(
            token_hash=token_hash(token),
            agent_id=agent_id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + dt.timedelta(seconds=self.max_age),
        )
        async with db() as session, session.begin():
            session.add(row)
        return token, SessionRecord(row.id, agent_id, row.token_hash)

    async def read(self, db: Sessions, cookie: str | None) -> SessionRecord | None:
        """The live session of this cookie, or None (unknown, revoked, expired or idle)."""
        if not cookie or not cookie.startswith(TOKEN_MARK) or len(cookie) > 128:
            return None
        hashed = token_hash(cookie)
        now = self._clock()
        async with db() as session, session.begin():
            row = (
                await session.execute(select(AgentSession).where(AgentSession.token_hash == hashed))
            ).scalar_one_or_none()
            if row is None or row.revoked_at is not None:
                return None
            if _aware(row.expires_at) <= now:
                return None
            if (now - _aware(row.last_seen_at)).total_seconds() > self.idle_seconds:
                row.revoked_at = now  # idle: ended for good
                return None
            if (now - _aware(row.last_seen_at)).total_seconds() > TOUCH_SECONDS:
                row.last_seen_at = now
            return SessionRecord(row.id, row.agent_id, row.token_hash)

    async def revoke(self, db: Sessions, cookie: str | None) -> bool:
        """End the session of this cookie (logout)."""
        if not cookie:
            return False
        async with db() as session, session.begin():
            result = await session.execute(
                update(AgentSession)
                .where(
                    AgentSession.token_hash == token_hash(cookie),
                    AgentSession.revoked_at.is_(None),
                )
                .values(revoked_at=self._clock())
            )
        return bool(getattr(result, "rowcount", 0))

    def csrf_token(self, record: SessionRecord) -> str:
        return hmac.new(self._csrf_key, record.token_hash.encode(), hashlib.sha256).hexdigest()

    def check_csrf(self, record: SessionRecord, submitted: str | None) -> bool:
        return bool(submitted) and hmac.compare_digest(
            str(submitted).encode(), self.csrf_token(record).encode()
        )


async def revoke_agent_sessions(session: AsyncSession, agent_id: int) -> None:
    """End every session of an agent, inside the caller's transaction (deactivation, new
    password)."""
    await session.execute(
        update(AgentSession)
        .where(AgentSession.agent_id == agent_id, AgentSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
