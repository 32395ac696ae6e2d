"""Optional proof of work before a conversation may file reports (off by default).

When a deployment switches it on (``TRANQUILLITE_FILING_POW_BITS`` > 0), the gateway hands every
web conversation a challenge bound to it, signed and short-lived; the widget finds a ``solution``
such that ``SHA-256(challenge ":" solution)`` starts with that many zero bits (about 2^bits
hashes: a fraction of a second in a browser for 16 bits, and as much again for every new
conversation a script opens) and sends ``"<challenge>:<solution>"`` as ``proof``. A valid proof
gives the conversation a few filings; each challenge is accepted once.

The same construction as Hashcash and as the proof-of-work captchas used by public services
(mCaptcha, Friendly Captcha, Anubis): the cost is on the client that files, none on citizens who
only read.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from webhook.store.state import MemoryStateBackend, StateBackend, hashed

MAX_PROOF_CHARS = 400


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def leading_zero_bits(digest: bytes) -> int:
    bits = 0
    for byte in digest:
        if byte == 0:
            bits += 8
            continue
        return bits + (8 - byte.bit_length())
    return bits


def solve(challenge: str, bits: int) -> str:
    """Find a solution (what the widget does, in JavaScript); used by tests and benchmarks."""
    counter = 0
    prefix = f"{challenge}:".encode()
    while True:
        solution = format(counter, "x")
        if leading_zero_bits(hashlib.sha256(prefix + solution.encode()).digest()) >= bits:
            return solution
        counter += 1


@dataclass(frozen=True)
class Challenge:
    challenge: str
    difficulty: int
    expires_in: int


class ProofOfWork:
    def __init__(
        self,
        bits: int,
        key: bytes | None = None,
        *,
        ttl_seconds: int = 600,
        clock: Callable[[], float] = time.time,
        backend: StateBackend | None = None,
    ) -> None:
        self.bits = bits
        self._key = hashlib.sha256(b"tranquillite-pow|" + (key or secrets.token_bytes(32))).digest()
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        # the challenges already used (shared by the gateway instances)
        self.backend = backend or MemoryStateBackend(clock)

    @property
    def enabled(self) -> bool:
        return self.bits > 0

    def _sign(self, payload: bytes) -> str:
        return _b64(hmac.new(self._key, payload, hashlib.sha256).digest()[:16])

    def challenge(self, conversation_id: str) -> Challenge:
        payload = json.dumps(
            {
                "c": hashlib.sha256(conversation_id.encode()).hexdigest()[:32],
                "e": int(self._clock()) + self.ttl_seconds,
                "n": secrets.token_urlsafe(9),
            },
            separators=(",", ":"),
        ).encode()
        return Challenge(f"{_b64(payload)}.{self._sign(payload)}", self.bits, self.ttl_seconds)

    async def verify(self, conversation_id: str, proof: str | None) -> bool:
        """True for a fresh, solved challenge of this conversation (then never again)."""
        if not proof or len(proof) > MAX_PROOF_CHARS or ":" not in proof:
            return False
        challenge, solution = proof.rsplit(":", 1)
        if "." not in challenge or not solution or len(solution) > 64:
            return False
        encoded, signature = challenge.rsplit(".", 1)
        try:
            payload = _unb64(encoded)
            data = json.loads(payload)
            conversation, expires = str(data["c"]), int(data["e"])
        except (ValueError, KeyError, TypeError):
            return False
        if not hmac.compare_digest(signature, self._sign(payload)):
            return False
        now = self._clock()
        if expires < now:
            return False
        expected = hashlib.sha256(conversation_id.encode()).hexdigest()[:32]
        if not hmac.compare_digest(conversation, expected):
            return False
        digest = hashlib.sha256(f"{challenge}:{solution}".encode()).digest()
        if leading_zero_bits(digest) < self.bits:
            return False
        # accepted once: the first gateway to record it wins
        return await self.backend.add(f"pow:{hashed(challenge)}", 1, expires - now + 1)
