"""Retention: anonymise tickets whose retention period (per report type) has passed.

The periods are data (``webhook/store/retention.yml``, or ``TRANQUILLITE_RETENTION_FILE``). Personal
data are removed, aggregate data are kept (see the YAML file). The purge is the only writer that
touches the history after the fact: it blanks the free-text notes of events (Core UPDATE, which
the ORM's append-only guard does not cover on purpose) and never removes an event.

It also deletes the conversations Rasa keeps (its SQL tracker store, every message typed) once
they have been idle for ``conversation_days``: what a report needs is in its ticket; and the
gateways' shared state (:mod:`webhook.store.state`: conversation states with guided-mode answers,
rate-limit buckets, expired entries) once idle for ``conversation_state_hours`` — the same period
after which a gateway starts an idle conversation again from the menu.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import delete, inspect, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

import routing
from webhook.store.db import CitizenMessage, OutboxMessage, Ticket, TicketEvent, utcnow
from webhook.store.state import StateBackend, backend_for

logger = logging.getLogger(__name__)

POLICY_FILE = Path(__file__).parent / "retention.yml"
BATCH = 200


class PolicyError(ValueError):
    pass


@dataclass(frozen=True)
class RetentionPolicy:
    default_days: int
    days: dict[str, int]
    # Rasa's conversations (every message typed), after their last event
    conversation_days: int = 7
    # the gateways' conversation states (guided-mode answers), after their last turn
    conversation_state_hours: int = 6

    def days_for(self, report_type: str) -> int:
        return self.days.get(report_type, self.default_days)

    @classmethod
    def load(cls, path: Path | None = None) -> RetentionPolicy:
        path = path or Path(os.environ.get("TRANQUILLITE_RETENTION_FILE") or POLICY_FILE)
        with path.open(encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
        if not isinstance(data, dict):
            raise PolicyError(f"{path}: expected a mapping")
        default = data.get("default_days")
        types = data.get("report_types") or {}
        if not isinstance(default, int) or default < 1:
            raise PolicyError(f"{path}: default_days must be a positive integer")
        if not isinstance(types, dict):
            raise PolicyError(f"{path}: report_types must be a mapping")
        for name, days in types.items():
            if name not in routing.REPORT_TYPES:
                raise PolicyError(f"{path}: unknown report type {name!r}")
            if not isinstance(days, int) or days < 1:
                raise PolicyError(f"{path}: {name}: days must be a positive integer")
        conversation_days = data.get("conversation_days", 7)
        if not isinstance(conversation_days, int) or conversation_days < 1:
            raise PolicyError(f"{path}: conversation_days must be a positive integer")
        state_hours = data.get("conversation_state_hours", 6)
        if not isinstance(state_hours, int) or state_hours < 1:
            raise PolicyError(f"{path}: conversation_state_hours must be a positive integer")
        return cls(
            default_days=default,
            days={str(k): int(v) for k, v in types.items()},
            conversation_days=conversation_days,
            conversation_state_hours=state_hours,
        )


@dataclass
class PurgeResult:
    per_type: Counter[str]
    dry_run: bool

    @property
    def total(self) -> int:
        return sum(self.per_type.values())

    def to_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "purged": self.total, "per_type": dict(self.per_type)}


async def _anonymise(session: AsyncSession, ticket_ids: list[int], now: dt.datetime) -> None:
    await session.execute(
        update(Ticket)
        .where(Ticket.id.in_(ticket_ids))
        .values(
            fields={}, conversation_id=None, idempotency_key=None, purged_at=now, updated_at=now
        )
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(TicketEvent)
        .where(
            TicketEvent.ticket_id.in_(ticket_ids),
            TicketEvent.kind != "delivery",  # delivery notes hold agency ids only
            TicketEvent.note.is_not(None),
        )
        .values(note=None)
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.ticket_id.in_(ticket_ids), OutboxMessage.status == "pending")
        .values(status="failed", last_error="ticket purged", locked_until=None)
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.ticket_id.in_(ticket_ids))
        .values(payload={})
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        delete(CitizenMessage)
        .where(CitizenMessage.ticket_id.in_(ticket_ids))
        .execution_options(synchronize_session=False)
    )


async def purge(
    sessions: async_sessionmaker[AsyncSession],
    policy: RetentionPolicy,
    *,
    now: dt.datetime | None = None,
    dry_run: bool = False,
) -> PurgeResult:
    """Anonymise every ticket not yet purged whose last activity is older than its period."""
    now = now or utcnow()
    result = PurgeResult(per_type=Counter(), dry_run=dry_run)
    for report_type in routing.REPORT_TYPES:
        cutoff = now - dt.timedelta(days=policy.days_for(report_type))
        due = (
            select(Ticket.id)
            .where(
                Ticket.report_type == report_type,
                Ticket.purged_at.is_(None),
                Ticket.updated_at < cutoff,
            )
            .order_by(Ticket.id)
            .limit(BATCH)
        )
        last_id = 0
        while True:
            async with sessions() as session, session.begin():
                ids = [
                    int(i)
                    for i in (await session.execute(due.where(Ticket.id > last_id))).scalars().all()
                ]
                if not ids:
                    break
                last_id = ids[-1]
                if not dry_run:
                    await _anonymise(session, ids, now)
            result.per_type[report_type] += len(ids)
    logger.info(
        "retention purge%s: %d ticket(s) %s",
        " (dry run)" if dry_run else "",
        result.total,
        json.dumps(dict(result.per_type), sort_keys=True),
    )
    return result


# Rasa's SQL tracker store: one row per event, ``timestamp`` in seconds since the epoch
COUNT_IDLE_CONVERSATIONS = (
    "SELECT COUNT(*) FROM (SELECT sender_id FROM events GROUP BY sender_id "
    "HAVING MAX(timestamp) < :cutoff) AS idle"
)
DELETE_IDLE_CONVERSATIONS = (
    "DELETE FROM events WHERE sender_id IN (SELECT sender_id FROM events GROUP BY sender_id "
    "HAVING MAX(timestamp) < :cutoff)"
)


def _has_events(connection: Any) -> bool:
    return bool(inspect(connection).has_table("events"))


async def purge_conversations(
    tracker_url: str,
    days: int,
    *,
    now: dt.datetime | None = None,
    dry_run: bool = False,
) -> int:
    """Delete the Rasa conversations (SQL tracker store, table ``events``) whose last event is
    older than ``days``; returns how many conversations."""
    cutoff = ((now or utcnow()) - dt.timedelta(days=days)).timestamp()
    if tracker_url.startswith("sqlite") and not Path(tracker_url.split("///", 1)[-1]).is_file():
        return 0  # Rasa never ran with this store: nothing to purge (and no file to create)
    engine = create_async_engine(tracker_url, hide_parameters=True)
    try:
        async with engine.begin() as connection:
            if not await connection.run_sync(_has_events):
                return 0
            count = (
                await connection.execute(text(COUNT_IDLE_CONVERSATIONS), {"cutoff": cutoff})
            ).scalar_one()
            if count and not dry_run:
                await connection.execute(text(DELETE_IDLE_CONVERSATIONS), {"cutoff": cutoff})
    finally:
        await engine.dispose()
    logger.info(
        "retention purge%s: %d conversation(s)", " (dry run)" if dry_run else "", int(count)
    )
    return int(count)


async def purge_state(
    backend: StateBackend, policy: RetentionPolicy, *, dry_run: bool = False
) -> dict[str, int]:
    """Delete the gateways' shared state that has expired: conversation states idle for
    ``conversation_state_hours`` (their guided-mode answers), notes, full buckets, expired
    entries (Redis expires its keys itself)."""
    counts = await backend.expire(policy.conversation_state_hours * 3600, dry_run=dry_run)
    logger.info(
        "retention purge%s: shared state %s",
        " (dry run)" if dry_run else "",
        json.dumps(counts, sort_keys=True),
    )
    return counts


def purge_main(argv: list[str]) -> int:
    """``tranquillite purge [--dry-run]``"""
    from webhook.config import Settings
    from webhook.store.db import create_engine, session_factory

    parser = argparse.ArgumentParser(
        prog="tranquillite purge",
        description=(
            "Anonymise tickets whose retention period has passed (webhook/store/retention.yml)."
        ),
    )
    parser.add_argument("--dry-run", action="store_true", help="count, change nothing")
    parser.add_argument("--policy", type=Path, default=None, help="retention YAML file")
    args = parser.parse_args(argv)
    try:
        policy = RetentionPolicy.load(args.policy)
    except (OSError, PolicyError, yaml.YAMLError) as exc:
        print(f"error: {exc}")
        return 2

    settings = Settings.from_env()

    async def run() -> tuple[PurgeResult, int, dict[str, int]]:
        engine = create_engine(settings.database_url)
        backend = backend_for(engine, settings.redis_url)
        try:
            result = await purge(session_factory(engine), policy, dry_run=args.dry_run)
            state = await purge_state(backend, policy, dry_run=args.dry_run)
        finally:
            await backend.close()
            await engine.dispose()
        conversations = await purge_conversations(
            settings.rasa_tracker_url, policy.conversation_days, dry_run=args.dry_run
        )
        return result, conversations, state

    result, conversations, state = asyncio.run(run())
    verb = "would be anonymised" if args.dry_run else "anonymised"
    print(f"{result.total} ticket(s) {verb}")
    for report_type, count in sorted(result.per_type.items()):
        print(f"  {report_type:22} {count:6d}  (after {policy.days_for(report_type)} days)")
    deleted = "would be deleted" if args.dry_run else "deleted"
    print(
        f"{conversations} Rasa conversation(s) {deleted} "
        f"(idle for more than {policy.conversation_days} days)"
    )
    print(
        f"{state.get('conversations', 0)} gateway conversation state(s) {deleted} "
        f"(idle for more than {policy.conversation_state_hours} hours); "
        f"expired shared state {deleted}: {state.get('buckets', 0)} rate bucket(s), "
        f"{state.get('entries', 0)} entr(y/ies), {state.get('notes', 0)} note(s)"
    )
    return 0
