"""Per-sender rate limit: one token bucket per key.

A bucket holds ``burst`` tokens and refills at ``rate`` tokens per second; a message takes one.
:class:`SharedLimiter` (what the gateway uses) keeps its buckets in the gateways' shared state
(:mod:`webhook.store.state`: the database or Redis), one atomic statement per message, so that
every gateway instance applies the same limit. :class:`TokenBucketLimiter` is the same bucket in
one process's memory, bounded: only the most recently used ``max_keys`` buckets are kept (a
forgotten bucket comes back full, which is the state an idle sender would be in anyway).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from webhook.store.state import StateBackend


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: float = 0.0  # seconds until one token is available (0 when allowed)


class TokenBucketLimiter:
    def __init__(
        self,
        burst: int,
        per_minute: float,
        *,
        max_keys: int = 50_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if burst < 1 or per_minute <= 0:
            raise ValueError("burst must be >= 1 and per_minute > 0")
        self.burst = float(burst)
        self.rate = per_minute / 60.0
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def hit(self, key: str) -> Decision:
        """Take one token for ``key`` if there is one."""
        return self._use(key, take=True)

    def check(self, key: str) -> Decision:
        """Whether ``hit`` would be allowed now, without taking the token."""
        return self._use(key, take=False)

    def _use(self, key: str, *, take: bool) -> Decision:
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(tokens=self.burst, updated=now)
            self._buckets[key] = bucket
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(self.burst, bucket.tokens + elapsed * self.rate)
            bucket.updated = now
        if bucket.tokens >= 1.0:
            if take:
                bucket.tokens -= 1.0
            return Decision(True)
        return Decision(False, retry_after=(1.0 - bucket.tokens) / self.rate)

    def __len__(self) -> int:
        return len(self._buckets)


class SharedLimiter:
    """Token buckets named ``name:<key>`` in a shared state backend."""

    def __init__(self, backend: StateBackend, name: str, burst: int, per_minute: float) -> None:
        if burst < 1 or per_minute <= 0:
            raise ValueError("burst must be >= 1 and per_minute > 0")
        self.backend = backend
        self.name = name
        self.burst = float(burst)
        self.rate = per_minute / 60.0

    async def hit(self, key: str) -> Decision:
        """Take one token for ``key`` if there is one."""
        decision = await self.backend.hit(f"{self.name}:{key}", self.burst, self.rate)
        return Decision(decision.allowed, decision.retry_after)


def retry_after_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
