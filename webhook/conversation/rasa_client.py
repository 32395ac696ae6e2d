"""HTTP client of the Rasa servers' REST channel: one Rasa instance, or several with
conversation affinity.

With several instances (``TRANQUILLITE_RASA_URLS``), every message of a conversation goes to the
same instance: the instances are ranked for each conversation id by rendezvous hashing
(highest-random-weight), and a message goes to the first of that ranking that is up. A
conversation therefore moves only when its instance is down, and only the conversations of that
instance move (to their second choice, spread over the others). Why affinity although the tracker
store is shared: Rasa's Redis lock store has a known race across instances, and an instance keeps
no conversation in memory only if nothing else than its tracker store tells it about one.

Health is kept per instance: a call that finds no server (refused, reset, cut, or a timeout on an
instance that answered nothing since) marks the instance down, and the message is tried on the
next instance of the ranking (the same message reaches at most each instance once). An instance
that answers, but not this message (an error status, or a timeout while it answers others), is
alive: the message is not sent elsewhere (it may still be processed there) and the turn alone
fails. A down
instance is probed again (``GET /``, short timeout) when a message would go to it, after a delay
that doubles from ``initial_backoff`` to ``max_backoff``; the first good probe brings it back
(its conversations then return to it; their trackers are in the shared store). At start-up no
instance is known up: each is probed before its first message (and by ``is_ready``, so the
gateway's ``/health`` does not say Rasa is up while it still loads its model), and one that has
never answered is probed again every ``initial_backoff``. Only when no
instance answers does :class:`RasaUnavailable` reach the turn, which then uses the guided mode.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

logger = logging.getLogger(__name__)


class RasaUnavailable(Exception):
    """No Rasa instance answered (down, slow or erroring)."""


def parse_urls(raw: str | Sequence[str]) -> tuple[str, ...]:
    """Base URLs from one URL, a comma-separated list or a sequence; duplicates dropped."""
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    urls: list[str] = []
    for item in items:
        url = item.strip().rstrip("/")
        if url and url not in urls:
            urls.append(url)
    if not urls:
        raise ValueError("no Rasa URL given")
    return tuple(urls)


def rendezvous_order(key: str, urls: Sequence[str]) -> list[str]:
    """``urls`` ranked for ``key`` by rendezvous hashing: stable for a key, and removing one
    URL changes the first choice only of the keys whose first choice it was."""

    def weight(url: str) -> bytes:
        return hashlib.blake2b(f"{url}\x00{key}".encode(), digest_size=8).digest()

    return sorted(urls, key=weight, reverse=True)


@dataclass
class Instance:
    """One Rasa server and what the gateway knows of its health."""

    url: str
    client: httpx.AsyncClient
    # not known up until it answered a probe or a message: at start-up the gateway is often
    # ready before Rasa (seconds vs. its model loading), and /health must not say Rasa is up
    available: bool = False
    backoff: float = 0.0
    # due for its first probe at once
    next_probe: float = float("-inf")
    # it has answered once since the gateway started (its first failure is then a start-up)
    seen: bool = False
    failures: int = 0
    # when it last answered a message (the client's clock)
    last_answer: float = float("-inf")


class RasaClient:
    """Sends messages to the Rasa instance of each conversation (see the module docstring)."""

    def __init__(
        self,
        base_url: str | Sequence[str],
        timeout: float,
        *,
        initial_backoff: float = 1.0,
        max_backoff: float = 30.0,
        probe_timeout: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        given = base_url.strip() if isinstance(base_url, str) else any(u.strip() for u in base_url)
        # no Rasa configured at all (a gateway alone): every conversation in the guided mode
        self.urls = parse_urls(base_url) if given else ()
        if not self.urls:
            logger.warning("No Rasa URL configured: conversations use the guided mode")
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.probe_timeout = probe_timeout
        self._clock = clock
        self.instances = {
            url: Instance(
                url=url,
                client=httpx.AsyncClient(base_url=url, timeout=timeout),
                backoff=initial_backoff,
            )
            for url in self.urls
        }

    # ------------------------------------------------------------------ routing
    def ranking(self, sender: str) -> list[Instance]:
        """Every instance, in the order a conversation's messages try them."""
        return [self.instances[url] for url in rendezvous_order(sender, self.urls)]

    def instance_for(self, sender: str) -> Instance | None:
        """The instance the conversation's next message goes to, as far as known now (no
        probe): the first of its ranking that is up or due for a probe."""
        now = self._clock()
        for instance in self.ranking(sender):
            if instance.available or now >= instance.next_probe:
                return instance
        return None

    def _mark_down(self, instance: Instance, reason: str) -> None:
        instance.failures += 1
        if not instance.seen:
            # starting (loading its model): probed again soon, however often it fails
            if instance.failures == 1:
                logger.info("Rasa instance %s does not answer yet (%s)", instance.url, reason)
            instance.backoff = self.initial_backoff
        elif instance.available:
            logger.warning(
                "Rasa instance %s unavailable (%s): its conversations go to the next instance",
                instance.url,
                reason,
            )
            instance.backoff = self.initial_backoff
        else:
            instance.backoff = min(instance.backoff * 2, self.max_backoff)
        instance.available = False
        instance.next_probe = self._clock() + instance.backoff

    async def _probe(self, instance: Instance) -> bool:
        try:
            response = await asyncio.wait_for(instance.client.get("/"), self.probe_timeout)
            ok = response.status_code == 200
        except (httpx.HTTPError, TimeoutError):
            ok = False
        if ok:
            logger.info("Rasa instance %s answers%s", instance.url, " again" * instance.seen)
            instance.available = True
            instance.seen = True
            instance.backoff = self.initial_backoff
        else:
            self._mark_down(instance, "probe failed")
        return ok

    async def _usable(self, instance: Instance) -> bool:
        if instance.available:
            return True
        if self._clock() < instance.next_probe:
            return False
        return await self._probe(instance)

    # ------------------------------------------------------------------ calls
    async def send(
        self, sender: str, message: str, metadata: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Rasa's replies to ``message`` in conversation ``sender``, from the conversation's
        instance or, if it is down, from the next one up; RasaUnavailable if none answers."""
        body = {"sender": sender, "message": message, "metadata": metadata or {}}
        last_reason = "no instance up"
        for instance in self.ranking(sender):
            if not await self._usable(instance):
                continue
            sent_at = self._clock()
            try:
                response = await instance.client.post("/webhooks/rest/webhook", json=body)
            except httpx.TimeoutException as exc:
                last_reason = type(exc).__name__
                logger.warning("Rasa REST channel failed at %s: %s", instance.url, last_reason)
                if instance.last_answer > sent_at and not isinstance(exc, httpx.ConnectTimeout):
                    # it answered other messages meanwhile: alive, only this conversation is
                    # slow there (its message may still be processed: never sent elsewhere)
                    raise RasaUnavailable(last_reason) from exc
                self._mark_down(instance, last_reason)
                continue
            except httpx.HTTPError as exc:  # refused, reset, cut: the instance is down
                last_reason = type(exc).__name__
                logger.warning("Rasa REST channel failed at %s: %s", instance.url, last_reason)
                self._mark_down(instance, last_reason)
                continue
            if response.status_code != 200:
                # it answers HTTP: alive; this message failed there (e.g. a failing action)
                logger.warning(
                    "Rasa REST channel failed at %s: %s", instance.url, response.status_code
                )
                instance.last_answer = self._clock()
                raise RasaUnavailable(f"status {response.status_code}")
            try:
                data = response.json()
            except ValueError:
                data = None
            if not isinstance(data, list):
                self._mark_down(instance, "unexpected payload")
                last_reason = "unexpected payload"
                continue
            instance.last_answer = self._clock()
            instance.seen = True
            return data
        if not self.any_up():
            logger.warning("No Rasa instance answers")
        raise RasaUnavailable(last_reason)

    def any_up(self) -> bool:
        """Whether some instance is known up (no probe)."""
        return any(i.available for i in self.instances.values())

    async def is_ready(self) -> bool:
        """Whether at least one instance is up: true at once if one is known up (it answered a
        probe or a message, and no message failed there since: an instance under load may be
        slow to answer a probe, so only failed messages mark it down); otherwise every instance
        is probed now (at start-up, before any has answered, that is the first probe)."""
        if self.any_up():
            return True
        results = await asyncio.gather(*(self._probe(i) for i in self.instances.values()))
        return any(results)

    def status(self) -> list[dict[str, Any]]:
        """Each instance's health as the gateway sees it (for logs and operators)."""
        return [
            {"url": i.url, "available": i.available, "failures": i.failures}
            for i in self.instances.values()
        ]

    async def aclose(self) -> None:
        for instance in self.instances.values():
            await instance.client.aclose()
