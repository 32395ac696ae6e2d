"""Login throttling: progressive delays per account and per address, never a hard lock that an
attacker can use against the real agent (OWASP "Blocking Brute Force Attacks", device cookies).

- Per account: the first ``free_per_account`` failures cost nothing; then each further attempt
  must wait 1 s, 2 s, 4 s … (up to ``max_delay``) after the last failure.
- Per address: the same, from ``free_per_address`` failures, set higher because one address may
  be a whole town hall or a mobile network behind a NAT.
- A browser in which the agent has already logged in holds a signed *device cookie* naming the
  account. With it, the account's and the address's delays do not apply to that account — an
  attacker guessing elsewhere cannot keep the real agent out — and the failures counted are the
  device's own (a stolen device cookie buys its thief a handful of tries, then the same delays).

While a delay runs the login answers 429 with ``Retry-After`` and the attempt is not counted;
no password is checked. A success clears the account's and the device's failures. Counts are
forgotten after ``forget_seconds`` and live in the gateways' shared state
(:mod:`webhook.store.state`, keys hashed): every gateway instance applies the same delays. The
client address is the connection's, or the one a trusted proxy reports
(``TRANQUILLITE_TRUSTED_PROXIES``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from webhook.store.state import MemoryStateBackend, StateBackend, hashed

DEVICE_COOKIE = "tq_appareil"
DEVICE_MAX_AGE = 365 * 24 * 3600


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass
class LoginThrottle:
    key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    free_per_account: int = 5
    free_per_address: int = 20
    free_per_device: int = 5
    base_delay: float = 1.0
    max_delay: float = 15 * 60
    forget_seconds: float = 24 * 3600
    clock: Callable[[], float] = time.time
    # where the failure counters live (shared by the gateway instances)
    backend: StateBackend = field(default_factory=MemoryStateBackend)

    # -- device cookies
    def _device_key(self) -> bytes:
        return hashlib.sha256(b"tranquillite-device|" + self.key).digest()

    def device_cookie(self, username: str) -> str:
        """A device cookie for ``username`` (set after a successful login)."""
        nonce = secrets.token_urlsafe(12)
        payload = f"{_b64(username.encode())}.{nonce}"
        signature = _b64(hmac.new(self._device_key(), payload.encode(), hashlib.sha256).digest())
        return f"{payload}.{signature}"

    def device_of(self, cookie: str | None, username: str) -> str | None:
        """The device id of a valid device cookie for ``username``, else None."""
        if not cookie or len(cookie) > 300 or cookie.count(".") != 2:
            return None
        encoded_user, nonce, signature = cookie.split(".")
        payload = f"{encoded_user}.{nonce}"
        expected = _b64(hmac.new(self._device_key(), payload.encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(signature, expected):
            return None
        if not hmac.compare_digest(encoded_user, _b64(username.encode())):
            return None
        return nonce

    # -- counters
    def _keys(self, username: str, address: str, device: str | None) -> list[tuple[str, int]]:
        if device is not None:
            return [(f"device:{device}", self.free_per_device)]
        return [
            (f"account:{username}", self.free_per_account),
            (f"address:{address}", self.free_per_address),
        ]

    @staticmethod
    def _stored(key: str) -> str:
        return f"login:{hashed(key)}"

    async def _counter(self, key: str, now: float) -> tuple[int, float] | None:
        """(failures, time of the last one), None when none or forgotten."""
        last = await self.backend.get(self._stored(key))
        if not isinstance(last, (int, float)):
            return None
        if now - last > self.forget_seconds:
            await self.backend.delete(self._stored(key))
            return None
        return await self.backend.count(self._stored(key)), float(last)

    def _delay(self, failures: int, free: int) -> float:
        if failures < free:
            return 0.0
        return min(self.max_delay, self.base_delay * 2 ** (failures - free))

    async def retry_after(self, username: str, address: str, device: str | None = None) -> int:
        """Seconds the next attempt must still wait (0: it may be tried now)."""
        now = self.clock()
        wait = 0.0
        for key, free in self._keys(username, address, device):
            counter = await self._counter(key, now)
            if counter is not None:
                failures, last = counter
                wait = max(wait, last + self._delay(failures, free) - now)
        return max(0, int(wait + 0.999))

    async def failure(self, username: str, address: str, device: str | None = None) -> None:
        now = self.clock()
        for key, _free in self._keys(username, address, device):
            await self._counter(key, now)  # forgets an old count first
            await self.backend.incr(self._stored(key), now, self.forget_seconds)

    async def success(self, username: str, address: str, device: str | None = None) -> None:
        """Clear the failures of the way the agent came in (the device's, or the account's)."""
        if device is not None:
            await self.backend.delete(self._stored(f"device:{device}"))
        else:
            await self.backend.delete(self._stored(f"account:{username}"))
