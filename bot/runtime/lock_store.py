"""Rasa's lock store when several Rasa instances share the tracker store: one Redis lease per
conversation, renewed while its holder lives.

Rasa's own ``RedisLockStore`` keeps a queue of *tickets* per conversation, each with a fixed
lifetime (``TICKET_LOCK_LIFETIME``), read and written back without a transaction. Two ways it
fails, both seen in the failover test (issue 16) on a loaded machine:

* a waiting message's own ticket expires while it waits behind a slow one; when the slow one
  finishes, nobody seems to wait, the lock is deleted, and the waiting message gets
  ``LockError`` — Rasa's REST channel then answers ``[]``, and the citizen is told the message
  could not be processed;
* when a dead instance's ticket and the ticket of the message moved to another instance expire
  in the same one-second poll, the queue is empty and no ticket is ever served: the message
  waits forever;
* and the read-modify-write of the queue races between instances (the "known race").

Here a conversation's lock is one Redis key set atomically (``SET NX PX``) to a random token.
Its holder renews it every third of its lifetime while the message is processed, and releases
it only if the token is still its own (compare-and-delete in one Lua script). A waiter polls
(20 ms, doubling to 250 ms), never expires while it waits, and gives up with Rasa's
``LockError`` only after ``max_wait_seconds``. A killed instance stops renewing: its locks
expire after ``TICKET_LOCK_LIFETIME`` (the endpoint's ``lease_seconds``), and the moved
conversations go on. Order between messages of one conversation is the gateway's concern: it
sends them one at a time (its own lease per conversation, webhook.store.state).

Endpoints (``webhook.ops.supervisor.lock_store_config``)::

    lock_store:
      type: bot.runtime.lock_store.LeasedRedisLockStore
      url: "127.0.0.1"
      port: 6379
      db: 1
      key_prefix: tranquillite
      lease_seconds: 20
      max_wait_seconds: 90
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockError, RedisLockStore
from rasa.utils.endpoints import EndpointConfig

logger = logging.getLogger(__name__)

# delete the key only if it still holds our token
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""
# extend the key's life only if it still holds our token
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""

DEFAULT_MAX_WAIT = 90.0
FIRST_POLL = 0.02
LAST_POLL = 0.25


class LeasedRedisLockStore(RedisLockStore):
    """One renewed Redis lease per conversation (see the module docstring)."""

    def __init__(
        self,
        endpoint_config: EndpointConfig | None = None,
        *,
        host: str = "localhost",
        lease_seconds: float | None = None,
        max_wait_seconds: float = DEFAULT_MAX_WAIT,
        **kwargs: Any,
    ) -> None:
        if endpoint_config is not None:
            options = dict(endpoint_config.kwargs)
            host = endpoint_config.url or host
            lease_seconds = float(options.pop("lease_seconds", lease_seconds or LOCK_LIFETIME))
            max_wait_seconds = float(options.pop("max_wait_seconds", max_wait_seconds))
            kwargs = {**options, **kwargs}
        super().__init__(host=host, **kwargs)
        self.lease_seconds = float(lease_seconds or LOCK_LIFETIME)
        self.max_wait_seconds = max_wait_seconds
        self._release = self.red.register_script(_RELEASE)
        self._renew = self.red.register_script(_RENEW)

    def _key(self, conversation_id: str) -> str:
        return f"{self.key_prefix}lease:{conversation_id}"

    @contextlib.asynccontextmanager
    async def lock(  # type: ignore[override]
        self,
        conversation_id: str,
        lock_lifetime: float = LOCK_LIFETIME,
        wait_time_in_seconds: float = 1,
    ) -> AsyncIterator[TicketLock]:
        """Hold the conversation's lease for the block (``lock_lifetime`` and
        ``wait_time_in_seconds``, Rasa's ticket parameters, are not used: the lease is renewed
        and the wait polls)."""
        key = self._key(conversation_id)
        token = secrets.token_hex(16)
        lease_ms = max(1000, int(self.lease_seconds * 1000))
        deadline = time.monotonic() + self.max_wait_seconds
        delay = FIRST_POLL
        while not self.red.set(key, token, nx=True, px=lease_ms):
            if time.monotonic() > deadline:
                raise LockError(
                    f"Could not acquire lock for conversation_id '{conversation_id}' "
                    f"within {self.max_wait_seconds:.0f} s."
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, LAST_POLL)

        async def keep() -> None:
            while True:
                await asyncio.sleep(self.lease_seconds / 3)
                if not self._renew(keys=[key], args=[token, lease_ms]):
                    logger.warning("a conversation's Rasa lock expired while it was held")
                    return

        keeper = asyncio.create_task(keep())
        try:
            yield TicketLock(conversation_id)
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
            self._release(keys=[key], args=[token])

    def holder(self, conversation_id: str) -> str | None:
        """The token holding the conversation's lease, if any (for tests and operators)."""
        value = self.red.get(self._key(conversation_id))
        return value.decode() if isinstance(value, bytes) else value
