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
forgotten after ``forget_seconds`` and live in memory, per gateway process. The client address
is the connection's, or the one a trusted proxy reports (``TRANQUILLITE_TRUSTED_PROXIES``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

DEVICE_COOKIE = "tq_appareil"
DEVICE_MAX_AGE = 365 * 24 * 3600


@dataclass
class _Counter:
    failures: int = 0
    last: float = 0.0


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
    max_keys: int = 50_000
    clock: Callable[[], float] = time.monotonic
    _counters: OrderedDict[str, _Counter] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

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

    def _counter(self, key: str, now: float) -> _Counter | None:
        counter = self._counters.get(key)
        if counter is not None and now - counter.last > self.forget_seconds:
            del self._counters[key]
            return None
        return counter

    def _delay(self, failures: int, free: int) -> float:
        if failures < free:
            return 0.0
        return min(self.max_delay, self.base_delay * 2 ** (failures - free))

    def retry_after(self, username: str, address: str, device: str | None = None) -> int:
        """Seconds the next attempt must still wait (0: it may be tried now)."""
        now = self.clock()
        wait = 0.0
        with self._lock:
            for key, free in self._keys(username, address, device):
                counter = self._counter(key, now)
                if counter is not None:
                    wait = max(wait, counter.last + self._delay(counter.failures, free) - now)
        return max(0, int(wait + 0.999))

    def failure(self, username: str, address: str, device: str | None = None) -> None:
        now = self.clock()
        with self._lock:
            for key, _free in self._keys(username, address, device):
                counter = self._counter(key, now) or _Counter()
                counter.failures += 1
                counter.last = now
                self._counters[key] = counter
                self._counters.move_to_end(key)
            while len(self._counters) > self.max_keys:
                self._counters.popitem(last=False)

    def success(self, username: str, address: str, device: str | None = None) -> None:
        """Clear the failures of the way the agent came in (the device's, or the account's)."""
        with self._lock:
            if device is not None:
                self._counters.pop(f"device:{device}", None)
            else:
                self._counters.pop(f"account:{username}", None)
