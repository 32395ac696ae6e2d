"""The veille worker: evaluates the alerts of every filed report, within seconds.

Filing a ticket writes a ``veille_queue`` row in the same transaction (``webhook.store.tickets``);
this worker takes a batch of them, evaluates their keys (:mod:`webhook.veille.alerts`) and
deletes them in one transaction — a crash leaves them queued, nothing is skipped. A report that
joins a wave already going on leaves that wave's figures to a refresh, in one batch, at most
``refresh_seconds`` later (a crash loses only that refresh: the sweep redoes it). On PostgreSQL
several workers share the queue (``FOR UPDATE SKIP LOCKED``; one wave per key is guaranteed by a
unique index). It polls every ``poll_seconds`` (5 s by default, at most 60: an alert follows its
report by at most a minute) and re-checks the waves going on every ``sweep_seconds``.

Runs inside the gateway (``TRANQUILLITE_VEILLE_WORKER=embedded``, the default) or alone:
``tranquillite veille-worker [--once]``. ``clock`` is injectable (tests travel in time).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
from collections.abc import Callable

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from webhook.store.db import VeilleQueue, utcnow
from webhook.veille import alerts
from webhook.veille.config import VeilleConfig, get_config

logger = logging.getLogger(__name__)

Sessions = async_sessionmaker[AsyncSession]
Clock = Callable[[], dt.datetime]


def mode_from_env() -> str:
    mode = os.environ.get("TRANQUILLITE_VEILLE_WORKER", "embedded") or "embedded"
    if mode not in ("embedded", "off"):
        raise SystemExit(f"TRANQUILLITE_VEILLE_WORKER must be embedded or off, got {mode!r}")
    return mode


class VeilleWorker:
    def __init__(
        self,
        sessions: Sessions,
        config: VeilleConfig | None = None,
        *,
        clock: Clock = utcnow,
        on_alert: Callable[[], None] | None = None,
        batch_size: int = 200,
    ) -> None:
        self.sessions = sessions
        self.config = config or get_config()
        self.clock = clock
        self.on_alert = on_alert
        self.batch_size = batch_size
        self.history = alerts.History()
        self._last_sweep: dt.datetime | None = None
        # waves whose figures wait for the reports that joined them, since when
        self.deferred: set[alerts.AlertKey] = set()
        self._deferred_since: dt.datetime | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()

    def start(self) -> None:
        self._stop.clear()
        self._task = asyncio.create_task(self.run(), name="veille-worker")

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def run(self) -> None:
        logger.info("veille worker started")
        while not self._stop.is_set():
            try:
                done = await self.run_once()
                await self.refresh_if_due()
                await self.sweep_if_due()
            except Exception as exc:  # noqa: BLE001 - survive a database hiccup
                logger.error("veille worker: batch failed (%s)", type(exc).__name__)
                done = 0
            if done == 0 and not self._stop.is_set():
                # no await between this check and the wait: stop() cannot slip in between
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._idle_seconds())
        logger.info("veille worker stopped")

    async def run_once(self) -> int:
        """Evaluate one batch of filed tickets; returns how many were taken."""
        now = self.clock()
        outcome = alerts.Outcome()
        async with self.sessions() as session, session.begin():
            query = (
                select(VeilleQueue.ticket_id)
                .order_by(VeilleQueue.queued_at, VeilleQueue.ticket_id)
                .limit(self.batch_size)
                .with_for_update(skip_locked=True)
            )
            ids = [int(i) for i in (await session.execute(query)).scalars()]
            if not ids:
                return 0
            await alerts.evaluate_in(
                session, ids, now, self.config, self.history, outcome, defer_ongoing=True
            )
            await session.execute(delete(VeilleQueue).where(VeilleQueue.ticket_id.in_(ids)))
        if outcome.deferred:
            self.deferred.update(outcome.deferred)
            self._deferred_since = self._deferred_since or now
        self._announce(outcome)
        return len(ids)

    def _idle_seconds(self) -> float:
        """How long an idle loop waits: the poll interval, or less when a refresh falls due."""
        wait = self.config.alerts.poll_seconds
        if self._deferred_since is not None:
            due = self._deferred_since + dt.timedelta(seconds=self.config.alerts.refresh_seconds)
            wait = min(wait, max(0.0, (due - self.clock()).total_seconds()))
        return wait

    async def refresh_if_due(self, force: bool = False) -> alerts.Outcome | None:
        """Refresh the waves that filed reports joined, once the oldest has waited
        ``refresh_seconds`` (or at once with ``force``): one batch for all of them."""
        if self._deferred_since is None:
            return None
        now = self.clock()
        waited = (now - self._deferred_since).total_seconds()
        if not force and waited < self.config.alerts.refresh_seconds:
            return None
        keys, since = self.deferred, self._deferred_since
        self.deferred, self._deferred_since = set(), None
        try:
            outcome = await alerts.refresh(self.sessions, keys, now, self.config, self.history)
        except Exception:
            # kept for the next attempt (the sweep would redo it anyway)
            self.deferred |= keys
            self._deferred_since = min(since, self._deferred_since or since)
            raise
        self._announce(outcome)
        return outcome

    async def sweep_if_due(self, force: bool = False) -> alerts.Outcome | None:
        now = self.clock()
        due = self._last_sweep is None or (now - self._last_sweep).total_seconds() >= (
            self.config.alerts.sweep_seconds
        )
        if not (due or force):
            return None
        self._last_sweep = now
        outcome = await alerts.sweep(self.sessions, now, self.config, self.history)
        self._announce(outcome)
        return outcome

    def _announce(self, outcome: alerts.Outcome) -> None:
        if outcome.created or outcome.updated or outcome.ended:
            logger.info(
                "veille: %d alert(s) raised, %d updated, %d ended",
                len(outcome.created),
                len(outcome.updated),
                len(outcome.ended),
            )
        if outcome.created and self.on_alert is not None:
            self.on_alert()

    async def drain(self, timeout: float = 60.0) -> None:
        """Work until the queue is empty, then refresh the waves it joined (tests and
        ``--once``)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while await self.run_once():
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError("veille queue not drained in time")
        await self.refresh_if_due(force=True)


def worker_main(argv: list[str]) -> int:
    """``tranquillite veille-worker [--once]``: the veille worker as its own process (set
    TRANQUILLITE_VEILLE_WORKER=off for the gateways then). Stops cleanly on SIGTERM/SIGINT."""
    import argparse
    import signal

    from webhook.config import Settings
    from webhook.store.db import create_engine, session_factory

    parser = argparse.ArgumentParser(
        prog="tranquillite veille-worker",
        description="Evaluate the cellule de veille's alerts of the reports filed.",
    )
    parser.add_argument("--once", action="store_true", help="evaluate what is queued, then exit")
    args = parser.parse_args(argv)
    settings = Settings.from_env()

    async def run() -> None:
        engine = create_engine(settings.database_url)
        worker = VeilleWorker(session_factory(engine))
        try:
            if args.once:
                await worker.drain(timeout=3600)
                await worker.sweep_if_due(force=True)
                return
            loop = asyncio.get_running_loop()
            stopped = asyncio.Event()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, stopped.set)
            worker.start()
            await stopped.wait()
            await worker.stop()
        finally:
            await engine.dispose()

    asyncio.run(run())
    return 0
