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
per-conversation and global limits apply. The buckets are in the gateways' shared state
(:mod:`webhook.store.state`): every gateway instance counts against the same limits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from webhook.config import AbuseLimits, Rate
from webhook.security.pow import ProofOfWork
from webhook.store.state import MemoryStateBackend, StateBackend

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


class Admission:
    def __init__(
        self,
        limits: AbuseLimits,
        pow_key: bytes | None = None,
        backend: StateBackend | None = None,
    ) -> None:
        self.limits = limits
        self.backend = backend or MemoryStateBackend()
        self.pow = ProofOfWork(limits.filing_pow_bits, pow_key, backend=self.backend)

    async def _all(self, checks: list[tuple[str, str, Rate, str]]) -> Refusal | None:
        """Take one token from every bucket, or none when one of them is empty (the tokens
        already taken are given back)."""
        index, decision = await self.backend.hit_all(
            [
                (f"admission:{bucket}:{key}", float(rate.burst), rate.per_second)
                for _, bucket, rate, key in checks
            ]
        )
        return None if decision.allowed else Refusal(checks[index][0], decision.retry_after)

    async def message(self, address: str | None) -> Refusal | None:
        checks = [("global", "messages_global", self.limits.messages_global, GLOBAL)]
        if address:
            checks.insert(
                0, ("address", "messages_address", self.limits.messages_per_address, address)
            )
        return await self._all(checks)

    async def new_conversation(self, address: str | None) -> Refusal | None:
        if not address:
            return None
        return await self._all(
            [("address", "conversations", self.limits.conversations_per_address, address)]
        )

    def needs_proof(self, state: FilingState | None) -> bool:
        """Web filings need a proof of work when it is switched on (Telegram's chats are
        Telegram accounts, not ids a script makes up)."""
        if not self.pow.enabled:
            return False
        return state is None or (state.channel == "web" and state.filing_credits <= 0)

    async def accept_proof(
        self, conversation_id: str, state: FilingState, proof: str | None
    ) -> bool:
        if not self.pow.enabled or not proof:
            return False
        if not await self.pow.verify(conversation_id, proof):
            return False
        state.filing_credits = FILINGS_PER_PROOF
        return True

    async def filing(
        self, conversation_id: str | None, address: str | None, state: FilingState | None
    ) -> Refusal | None:
        """A report from a conversation: proof (when on), then per conversation, per address and
        global buckets. Call it only for a new report (an idempotent retry is not a filing)."""
        if self.needs_proof(state):
            return Refusal("proof", 0.0)
        limits = self.limits
        checks = [("global", "filings_global", limits.filings_global, GLOBAL)]
        if address:
            checks.insert(0, ("address", "filings_address", limits.filings_per_address, address))
        if conversation_id:
            checks.insert(
                0,
                (
                    "conversation",
                    "filings_conversation",
                    limits.filings_per_conversation,
                    conversation_id,
                ),
            )
        refusal = await self._all(checks)
        if refusal is None and state is not None and self.pow.enabled and state.channel == "web":
            state.filing_credits -= 1
        return refusal

    async def token_filing(self, token_key: str) -> Refusal | None:
        """A report filed by an agency's API token (Open311): per token, and global."""
        return await self._all(
            [
                ("token", "filings_token", self.limits.filings_per_token, token_key),
                ("global", "filings_global", self.limits.filings_global, GLOBAL),
            ]
        )
