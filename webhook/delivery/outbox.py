"""Delivery outbox: every delivery is a row written in the same transaction as its cause, then
worked by a background worker (in the gateway, or alone: ``tranquillite outbox-worker``).

- Kinds: ``dashboard`` (the ticket is put on the agency's dashboard), ``email`` (SMTP),
  ``webhook`` (signed HTTP POST), ``citizen`` (status change or answer pushed to the citizen).
- Claiming: one statement ``UPDATE outbox ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED)``
  on PostgreSQL; on SQLite the same UPDATE is atomic (single writer) and only takes rows whose
  lease (``locked_until``) is free or expired. A claim counts as an attempt.
- A worker killed during a delivery leaves its rows leased: they are claimed again when the lease
  expires. Delivery is at-least-once; receivers dedupe by the ``Idempotency-Key`` header.
- Failures retry with exponential backoff and jitter; after ``max_attempts`` the row is
  ``failed`` and the ticket's history says so. ``last_error`` never holds personal data.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from webhook.delivery import alert_sender, email_sender, notify, webhook_sender
from webhook.delivery.base import DeliveryError, OutboxConfig
from webhook.replies import Reply
from webhook.security import netguard
from webhook.store import lifecycle
from webhook.store.db import (
    AgencyChannel,
    CitizenMessage,
    OutboxMessage,
    Ticket,
    TicketDestination,
    TicketEvent,
    VeilleChannel,
    utcnow,
)

logger = logging.getLogger(__name__)

AGENCY_KINDS = ("dashboard", "email", "webhook")
Sessions = async_sessionmaker[AsyncSession]


# ----------------------------------------------------------------------------------- claiming


async def claim(
    sessions: Sessions,
    worker_id: str,
    config: OutboxConfig,
    citizen_channels: frozenset[str],
    limit: int | None = None,
) -> list[int]:
    """Lease due rows to ``worker_id`` and count the attempt; returns their ids."""
    now = utcnow()
    due = (
        select(OutboxMessage.id)
        .where(
            OutboxMessage.status == "pending",
            OutboxMessage.next_attempt_at <= now,
            or_(OutboxMessage.locked_until.is_(None), OutboxMessage.locked_until < now),
            or_(
                OutboxMessage.kind != "citizen",
                OutboxMessage.channel.in_(sorted(citizen_channels)),
            ),
        )
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit or config.batch_size)
        .with_for_update(skip_locked=True)
    )
    claimed = (
        update(OutboxMessage)
        .where(
            # re-checked by the UPDATE itself (SQLite has no row locks)
            OutboxMessage.status == "pending",
            or_(OutboxMessage.locked_until.is_(None), OutboxMessage.locked_until < now),
        )
        .values(
            locked_until=now + dt.timedelta(seconds=config.lease_seconds),
            locked_by=worker_id,
            attempts=OutboxMessage.attempts + 1,
        )
        .returning(OutboxMessage.id)
        .execution_options(synchronize_session=False)
    )
    async with sessions() as session, session.begin():
        if session.get_bind().dialect.name == "postgresql":
            # Two statements: PostgreSQL may run an `IN (SELECT ... LIMIT n FOR UPDATE SKIP
            # LOCKED)` subquery more than once and claim more than n rows.
            ids = list((await session.execute(due)).scalars().all())
            if not ids:
                return []
            statement = claimed.where(OutboxMessage.id.in_(ids))
        else:
            # SQLite: one atomic statement under the database write lock.
            statement = claimed.where(OutboxMessage.id.in_(due.scalar_subquery()))
        return sorted(int(i) for i in (await session.execute(statement)).scalars().all())


# --------------------------------------------------------------------------------- delivering

Deliverer = Callable[[OutboxMessage, Ticket, "AgencyChannel | None"], Awaitable[None]]


def _safe_error(exc: BaseException) -> str:
    """An error description without personal data (no server text, no addresses)."""
    if isinstance(exc, DeliveryError):
        return str(exc)[:300]
    code = getattr(exc, "smtp_code", None)
    if code is not None:
        return f"{type(exc).__name__} {code}"[:300]
    return type(exc).__name__[:300]


class OutboxWorker:
    """Claims due outbox rows and delivers them, until stopped."""

    def __init__(
        self,
        sessions: Sessions,
        config: OutboxConfig,
        notifiers: notify.Notifiers | None = None,
        worker_id: str | None = None,
    ) -> None:
        self.sessions = sessions
        self.config = config
        self.notifiers = notifiers or notify.Notifiers()
        self.worker_id = (
            worker_id or f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"
        )
        self._http: httpx.AsyncClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()

    # -- lifecycle of the worker itself
    def start(self) -> None:
        self._stop.clear()
        self._task = asyncio.create_task(self.run(), name="outbox-worker")

    def wake(self) -> None:
        """Look for work now (e.g. right after a report was filed)."""
        self._wake.set()

    async def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def run(self) -> None:
        logger.info("outbox worker %s started", self.worker_id)
        try:
            while not self._stop.is_set():
                try:
                    done = await self.run_once()
                except Exception as exc:  # noqa: BLE001 - survive a database hiccup
                    # type only: an error's text may quote stored values
                    logger.error("outbox worker: batch failed (%s)", type(exc).__name__)
                    done = 0
                if done == 0:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.config.poll_seconds)
        finally:
            if self._http is not None:
                await self._http.aclose()
                self._http = None
            logger.info("outbox worker %s stopped", self.worker_id)

    def citizen_channels(self) -> frozenset[str]:
        pushable = {c for c in lifecycle.CITIZEN_CHANNELS if self.notifiers.can_push(c)}
        return frozenset({"web", *pushable})

    async def run_once(self) -> int:
        """Claim one batch and deliver it; returns the number of rows handled."""
        ids = await claim(self.sessions, self.worker_id, self.config, self.citizen_channels())
        if not ids:
            return 0
        async with self.sessions() as session:
            claimed = (
                await session.execute(
                    select(OutboxMessage.id, OutboxMessage.kind, OutboxMessage.ticket_id)
                    .where(OutboxMessage.id.in_(ids))
                    .order_by(OutboxMessage.id)
                )
            ).all()
        # Agency deliveries run concurrently; a citizen's notices go one after the other, in
        # the order of the changes.
        groups: dict[Any, list[int]] = {}
        for outbox_id, kind, ticket_id in claimed:
            key = ("citizen", ticket_id) if kind == "citizen" else ("agency", outbox_id)
            groups.setdefault(key, []).append(int(outbox_id))

        async def in_order(group: list[int]) -> None:
            for outbox_id in group:
                await self._process(outbox_id)

        outcomes = await asyncio.gather(
            *(in_order(g) for g in groups.values()), return_exceptions=True
        )
        for outcome in outcomes:
            if isinstance(outcome, Exception):
                # the row stays leased and is retried after its lease; type only in the log
                logger.error("outbox worker: row failed (%s)", type(outcome).__name__)
            elif isinstance(outcome, BaseException):
                raise outcome
        return len(ids)

    async def drain(self, timeout: float = 30.0) -> None:
        """Work until nothing is due (tests and the CLI ``--once``)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while await self.run_once():
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError("outbox not drained in time")

    # -- one row
    async def _process(self, outbox_id: int) -> None:
        async with self.sessions() as session:
            row = await session.get(OutboxMessage, outbox_id)
            if row is None or row.status != "pending" or row.locked_by != self.worker_id:
                return
            if row.alert_id is not None:
                veille_channel = await session.get(
                    VeilleChannel, int(row.payload.get("veille_channel_id", 0))
                )
                await self._process_alert(row, veille_channel)
                return
            ticket = await session.get(Ticket, row.ticket_id)
            channel = (
                await session.get(AgencyChannel, int(row.payload["channel_id"]))
                if row.kind in ("email", "webhook") and "channel_id" in row.payload
                else None
            )
        if ticket is None:
            return
        try:
            await asyncio.wait_for(
                self._deliver(row, ticket, channel), timeout=self.config.delivery_timeout
            )
        except Exception as exc:  # noqa: BLE001 - any delivery failure is retried
            await self._failed(row, ticket, _safe_error(exc))
            return
        await self._delivered(row, ticket)

    async def _deliver(
        self, row: OutboxMessage, ticket: Ticket, channel: AgencyChannel | None
    ) -> None:
        if row.kind == "dashboard":
            return  # made visible by _delivered, in the same transaction as the status
        if row.kind == "citizen":
            channel_name = str(row.payload.get("channel", ""))
            if channel_name == "web":
                return  # kept for the widget by _delivered
            sent = await self.notifiers.send(
                channel_name,
                str(row.payload["recipient"]),
                Reply(text=str(row.payload.get("text", ""))),
            )
            if not sent:
                raise DeliveryError(f"no sender for channel {channel_name}")
            return
        if channel is None or not channel.active:
            raise DeliveryError("channel removed or inactive")
        if ticket.purged_at is not None:
            raise DeliveryError("ticket purged")
        if row.kind == "email":
            await email_sender.send(self.config, channel, ticket, row)
        elif row.kind == "webhook":
            await webhook_sender.send(self._client(), self.config, channel, ticket, row)
        else:
            raise DeliveryError(f"unknown kind {row.kind}")

    async def _process_alert(self, row: OutboxMessage, channel: VeilleChannel | None) -> None:
        """A cellule de veille alert to a territory's e-mail or webhook (no ticket history)."""
        error = None
        try:
            await asyncio.wait_for(
                alert_sender.send(self._client(), self.config, channel, row),
                timeout=self.config.delivery_timeout,
            )
        except Exception as exc:  # noqa: BLE001 - any delivery failure is retried
            error = _safe_error(exc)
        give_up = error is not None and row.attempts >= self.config.max_attempts
        values: dict[str, Any] = {"locked_until": None, "last_error": error}
        if error is None:
            values.update(status="delivered", delivered_at=utcnow())
        elif give_up:
            values["status"] = "failed"
        else:
            values["next_attempt_at"] = utcnow() + dt.timedelta(
                seconds=self.config.backoff(row.attempts)
            )
        async with self.sessions() as session, session.begin():
            await session.execute(
                update(OutboxMessage)
                .where(self._mine(row))
                .values(**values)
                .execution_options(synchronize_session=False)
            )
        logger.info(
            "outbox: veille alert %s %s delivery to %s: %s (attempt %d)",
            row.alert_id,
            row.kind,
            row.agency_id,
            "done" if error is None else f"failed{', given up' if give_up else ''}: {error}",
            row.attempts,
        )

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            # targets are chosen by agency admins: guarded (public https addresses only)
            self._http = netguard.guarded_client(
                self.config.webhook_policy, self.config.delivery_timeout
            )
        return self._http

    def _mine(self, row: OutboxMessage) -> Any:
        return and_(
            OutboxMessage.id == row.id,
            OutboxMessage.status == "pending",
            OutboxMessage.locked_by == self.worker_id,
        )

    async def _delivered(self, row: OutboxMessage, ticket: Ticket) -> None:
        now = utcnow()
        async with self.sessions() as session, session.begin():
            result = await session.execute(
                update(OutboxMessage)
                .where(self._mine(row))
                .values(status="delivered", delivered_at=now, locked_until=None, last_error=None)
                .execution_options(synchronize_session=False)
            )
            if getattr(result, "rowcount", 0) != 1:
                return  # lease lost to another worker: it records the delivery
            if row.kind == "citizen":
                if row.payload.get("channel") == "web":
                    session.add(
                        CitizenMessage(
                            ticket_id=ticket.id,
                            created_at=row.created_at,
                            channel="web",
                            recipient=str(row.payload["recipient"]),
                            text=str(row.payload.get("text", "")),
                        )
                    )
                return
            if row.kind == "dashboard":
                await session.execute(
                    update(TicketDestination)
                    .where(
                        TicketDestination.ticket_id == ticket.id,
                        TicketDestination.agency_id == row.agency_id,
                    )
                    .values(visible_at=now)
                    .execution_options(synchronize_session=False)
                )
            await self._delivery_event(session, row, f"{row.kind} delivered to {row.agency_id}")
        logger.info(
            "outbox: %s delivery of %s to %s done (attempt %d)",
            row.kind,
            ticket.reference,
            row.agency_id or ticket.channel,
            row.attempts,
        )

    async def _failed(self, row: OutboxMessage, ticket: Ticket, error: str) -> None:
        give_up = row.attempts >= self.config.max_attempts
        values: dict[str, Any] = {"locked_until": None, "last_error": error}
        if give_up:
            values["status"] = "failed"
        else:
            values["next_attempt_at"] = utcnow() + dt.timedelta(
                seconds=self.config.backoff(row.attempts)
            )
        async with self.sessions() as session, session.begin():
            result = await session.execute(
                update(OutboxMessage)
                .where(self._mine(row))
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            if give_up and getattr(result, "rowcount", 0) == 1:
                await self._delivery_event(
                    session,
                    row,
                    f"{row.kind} delivery to {row.agency_id or ticket.channel} failed after "
                    f"{row.attempts} attempts: {error}",
                )
        logger.warning(
            "outbox: %s delivery of %s to %s failed (attempt %d/%d%s): %s",
            row.kind,
            ticket.reference,
            row.agency_id or ticket.channel,
            row.attempts,
            self.config.max_attempts,
            ", given up" if give_up else "",
            error,
        )

    async def _delivery_event(self, session: AsyncSession, row: OutboxMessage, note: str) -> None:
        """History entry (not shown to the citizen); received → transmitted when due."""
        ticket = await session.get(Ticket, row.ticket_id, populate_existing=True)
        if ticket is None:
            return
        session.add(
            TicketEvent(
                ticket_id=ticket.id,
                actor="system:outbox",
                status_from=ticket.status,
                status_to=ticket.status,
                note=note[:300],
                kind="delivery",
                visible_to_citizen=False,
            )
        )
        await session.flush()
        if row.kind in AGENCY_KINDS:
            await lifecycle.mark_transmitted(session, ticket.id)


async def outbox_counts(sessions: Sessions, ticket_id: int | None = None) -> dict[str, int]:
    """Rows per status (all tickets or one)."""
    from sqlalchemy import func

    query = select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
    if ticket_id is not None:
        query = query.where(OutboxMessage.ticket_id == ticket_id)
    async with sessions() as session:
        return {str(s): int(n) for s, n in (await session.execute(query)).all()}


def worker_main(argv: list[str]) -> int:
    """``tranquillite outbox-worker [--once]``: the outbox worker as its own process (set
    TRANQUILLITE_OUTBOX_WORKER=off for the gateways then). Stops cleanly on SIGTERM/SIGINT."""
    import argparse
    import signal

    from webhook.config import Settings
    from webhook.store.db import create_engine, session_factory

    parser = argparse.ArgumentParser(
        prog="tranquillite outbox-worker", description="Deliver the outbox (agencies, citizens)."
    )
    parser.add_argument("--once", action="store_true", help="deliver what is due, then exit")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    config = OutboxConfig.from_env(settings.gateway_url)

    async def run() -> None:
        engine = create_engine(settings.database_url)
        worker = OutboxWorker(session_factory(engine), config)
        try:
            if args.once:
                await worker.drain(timeout=3600)
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
