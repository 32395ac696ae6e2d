"""Push messages to a citizen in the channel they used (status changes, agency answers).

Channels register a sender at start-up (e.g. Telegram); the outbox worker calls
:meth:`Notifiers.send`. A channel without a registered sender cannot be pushed to: the caller
keeps the message for the citizen to read when they come back (see the web channel).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from webhook.replies import Reply

logger = logging.getLogger(__name__)

# (conversation_id without the channel prefix, reply) -> None; raises on delivery failure
Sender = Callable[[str, Reply], Awaitable[None]]


class Notifiers:
    def __init__(self) -> None:
        self._senders: dict[str, Sender] = {}

    def register(self, channel: str, sender: Sender) -> None:
        self._senders[channel] = sender

    def unregister(self, channel: str) -> None:
        self._senders.pop(channel, None)

    def can_push(self, channel: str) -> bool:
        return channel in self._senders

    async def send(self, channel: str, recipient: str, reply: Reply) -> bool:
        """Send ``reply``; False when the channel has no push sender. Errors propagate."""
        sender = self._senders.get(channel)
        if sender is None:
            return False
        await sender(recipient, reply)
        return True
