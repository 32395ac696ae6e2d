"""Who may send a message, open a conversation or file a report, beyond the per-sender bucket.

A sender id is chosen by the client, so per-sender limits alone stop nobody: a script changes
its id at every request. The limits that hold are the ones the client cannot choose:

- messages: per address (IPv4 address, IPv6 /64) and for everyone together;
- new conversations (sender ids) per address, and how many one address keeps in memory at once
  (:class:`webhook.conversation.turn.ConversationStore` evicts that address's own oldest first);
- filings: per conversation, per address, for everyone together, and per agency API token
  (Open311); an optional proof of work (:mod:`webhook.security.pow`) for web filings.

The sizes are those of shared addresses (a town-hall kiosk, a mobile network's NAT: many
honest people behind one address), set by ``TRANQUILLITE_LIMIT_*`` (:class:`AbuseLimits`).
Telegram has no client address: its chat ids are Telegram's, not chosen by the client, so the
per-conversation and global limits apply. The buckets are in memory, per gateway process.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from webhook.config import AbuseLimits, Rate
from webhook.conversation.ratelimit import Decision, TokenBucketLimiter
from webhook.security.pow import ProofOfWork

GLOBAL = "*"
# a proof of work lets its conversation file this many reports
FILINGS_PER_PROOF = 3


@dataclass(frozen=True)
class Refusal:
    """Why something was refused: ``scope`` is address, global, conversation, token or proof;
    ``retry_after`` in seconds."""

    scope: str
    retry_after: float

    @property
    def minutes(self) -> int:
        return max(1, math.ceil(self.retry_after / 60))


class FilingState(Protocol):
    """What the admission reads and updates on a conversation (turn.ConversationState)."""

    channel: str
    filing_credits: int


def _limiter(rate: Rate, clock: Callable[[], float], max_keys: int = 50_000) -> TokenBucketLimiter:
    return TokenBucketLimiter(rate.burst, rate.per_second * 60, max_keys=max_keys, clock=clock)


class Admission:
    def __init__(
        self,
        limits: AbuseLimits,
        pow_key: bytes | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = limits
        self.messages_address = _limiter(limits.messages_per_address, clock)
        self.messages_global = _limiter(limits.messages_global, clock, max_keys=1)
        self.conversations_address = _limiter(limits.conversations_per_address, clock)
        self.filings_conversation = _limiter(limits.filings_per_conversation, clock)
        self.filings_address = _limiter(limits.filings_per_address, clock)
        self.filings_global = _limiter(limits.filings_global, clock, max_keys=1)
        self.filings_token = _limiter(limits.filings_per_token, clock)
        self.pow = ProofOfWork(limits.filing_pow_bits, pow_key)

    @staticmethod
    def _all(checks: list[tuple[str, TokenBucketLimiter, str]]) -> Refusal | None:
        """Take one token from every bucket, or none when one of them is empty."""
        for scope, limiter, key in checks:
            decision: Decision = limiter.check(key)
            if not decision.allowed:
                return Refusal(scope, decision.retry_after)
        for _, limiter, key in checks:
            limiter.hit(key)
        return None

    def message(self, address: str | None) -> Refusal | None:
        checks = [("global", self.messages_global, GLOBAL)]
        if address:
            checks.insert(0, ("address", self.messages_address, address))
        return self._all(checks)

    def new_conversation(self, address: str | None) -> Refusal | None:
        if not address:
            return None
        return self._all([("address", self.conversations_address, address)])

    def needs_proof(self, state: FilingState | None) -> bool:
        """Web filings need a proof of work when it is switched on (Telegram's chats are
        Telegram accounts, not ids a script makes up)."""
        if not self.pow.enabled:
            return False
        return state is None or (state.channel == "web" and state.filing_credits <= 0)

    def accept_proof(self, conversation_id: str, state: FilingState, proof: str | None) -> bool:
        if not self.pow.enabled or not proof:
            return False
        if not self.pow.verify(conversation_id, proof):
            return False
        state.filing_credits = FILINGS_PER_PROOF
        return True

    def filing(
        self, conversation_id: str | None, address: str | None, state: FilingState | None
    ) -> Refusal | None:
        """A report from a conversation: proof (when on), then per conversation, per address and
        global buckets. Call it only for a new report (an idempotent retry is not a filing)."""
        if self.needs_proof(state):
            return Refusal("proof", 0.0)
        checks = [("global", self.filings_global, GLOBAL)]
        if address:
            checks.insert(0, ("address", self.filings_address, address))
        if conversation_id:
            checks.insert(0, ("conversation", self.filings_conversation, conversation_id))
        refusal = self._all(checks)
        if refusal is None and state is not None and self.pow.enabled and state.channel == "web":
            state.filing_credits -= 1
        return refusal

    def token_filing(self, token_key: str) -> Refusal | None:
        """A report filed by an agency's API token (Open311): per token, and global."""
        return self._all(
            [
                ("token", self.filings_token, token_key),
                ("global", self.filings_global, GLOBAL),
            ]
        )
