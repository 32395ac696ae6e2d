"""Ticket store: SQLAlchemy 2 models, async engine factory and Alembic migrations.

SQLite (aiosqlite) is the embedded default, PostgreSQL (psycopg 3) the production database.
The gateway is the single writer of this store.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any, ClassVar

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Connection,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    event,
    text,
    true,
)
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON,
        dt.datetime: DateTime(timezone=True),
    }


class Ticket(Base):
    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    report_type: Mapped[str] = mapped_column(String(32), index=True)
    departement: Mapped[str] = mapped_column(String(3), index=True)
    commune_insee: Mapped[str | None] = mapped_column(String(5), index=True)
    fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    decision: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    language: Mapped[str] = mapped_column(String(8), default="fr")
    channel: Mapped[str] = mapped_column(String(16))
    conversation_id: Mapped[str | None] = mapped_column(String(128))
    anonymous: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(24), default="received", index=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # set by the retention purge: personal data removed, aggregate data kept
    purged_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    # the citizen's secret to follow the ticket from another conversation (reports.tracking)
    tracking_code: Mapped[str | None] = mapped_column(
        String(16), unique=True, index=True, default=None
    )

    # the sub-kind of the report for the cellule de veille (the answer to its type's sub-kind
    # question, e.g. type_arnaque): a category, not personal data, kept by the purge
    subtype: Mapped[str | None] = mapped_column(String(48), default=None)
    # the EPCI (SIREN) the cellule de veille counts the report in: that of its commune when the
    # code is a current commune's (webhook.store.tickets.epci_of), set when it is filed; an
    # EPCI's alerts read it from an index instead of a list of communes
    epci_siren: Mapped[str | None] = mapped_column(String(9), default=None)

    destinations: Mapped[list[TicketDestination]] = relationship(
        back_populates="ticket", cascade="all, delete-orphan", lazy="selectin"
    )
    events: Mapped[list[TicketEvent]] = relationship(
        back_populates="ticket",
        cascade="all, delete-orphan",
        lazy="selectin",
        order_by="TicketEvent.id",
    )


class TicketDestination(Base):
    __tablename__ = "ticket_destinations"
    __table_args__ = (UniqueConstraint("ticket_id", "agency_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    agency_id: Mapped[str] = mapped_column(String(64), index=True)
    agency_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    rule_id: Mapped[str] = mapped_column(String(64))
    # when the outbox put the ticket on the agency's dashboard
    visible_at: Mapped[dt.datetime | None] = mapped_column(default=None)

    ticket: Mapped[Ticket] = relationship(back_populates="destinations")


class TicketEvent(Base):
    """Append-only history of a ticket."""

    __tablename__ = "ticket_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(100))
    status_from: Mapped[str | None] = mapped_column(String(24))
    status_to: Mapped[str] = mapped_column(String(24))
    note: Mapped[str | None] = mapped_column(Text)
    # "status" | "answer" | "delivery" | "note"
    kind: Mapped[str] = mapped_column(String(16), default="status", server_default="status")
    visible_to_citizen: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())

    ticket: Mapped[Ticket] = relationship(back_populates="events")


class HistoryIsAppendOnly(Exception):
    """A ticket event was about to be changed or deleted through the ORM."""


@event.listens_for(TicketEvent, "before_update")
def _event_no_update(_mapper: Any, _connection: Any, target: TicketEvent) -> None:
    raise HistoryIsAppendOnly(f"ticket event {target.id} cannot be changed")


@event.listens_for(TicketEvent, "before_delete")
def _event_no_delete(_mapper: Any, _connection: Any, target: TicketEvent) -> None:
    raise HistoryIsAppendOnly(f"ticket event {target.id} cannot be deleted")


class ReferenceCounter(Base):
    """Next ticket number per département and year (row-locked increment)."""

    __tablename__ = "reference_counters"

    departement: Mapped[str] = mapped_column(String(3), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


class Agent(Base):
    """A person working for an agency (dashboard login)."""

    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agency_id: Mapped[str] = mapped_column(String(64), index=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    # "agent" | "agency_admin" | "observer"
    role: Mapped[str] = mapped_column(String(16))
    display_name: Mapped[str] = mapped_column(String(120))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # observers: departement:DD | epci:SIREN@DD | commune:INSEE (webhook.agency.territory);
    # null: the agency's département
    territory: Mapped[str | None] = mapped_column(String(40), default=None)


class ApiToken(Base):
    """Per-agency API token; only a hash is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agency_id: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(120))
    token_prefix: Mapped[str] = mapped_column(String(12), index=True)
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    # observer tokens: as Agent.territory
    territory: Mapped[str | None] = mapped_column(String(40), default=None)


class AgencyChannel(Base):
    """Where an agency receives its tickets besides the dashboard: e-mail or signed webhook."""

    __tablename__ = "agency_channels"
    __table_args__ = (UniqueConstraint("agency_id", "kind", "target"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agency_id: Mapped[str] = mapped_column(String(64), index=True)
    # "email" | "webhook"
    kind: Mapped[str] = mapped_column(String(16))
    # e-mail address or URL
    target: Mapped[str] = mapped_column(String(500))
    # HMAC key of a webhook
    secret: Mapped[str | None] = mapped_column(String(200), default=None)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class OutboxMessage(Base):
    """A delivery to do (agency dashboard, e-mail, webhook, citizen notification).

    Written in the same transaction as the change that causes it; worked by webhook.delivery.outbox.
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # null for the alerts of the cellule de veille (alert_id)
    ticket_id: Mapped[int | None] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), index=True
    )
    # a veille alert delivered to the e-mail or webhook of a territory (VeilleChannel)
    alert_id: Mapped[int | None] = mapped_column(
        ForeignKey("veille_alerts.id", ondelete="CASCADE"), index=True, default=None
    )
    # null for citizen notifications
    agency_id: Mapped[str | None] = mapped_column(String(64), default=None)
    # "dashboard" | "email" | "webhook" | "citizen"
    kind: Mapped[str] = mapped_column(String(16))
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # "pending" | "delivered" | "failed"
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    locked_until: Mapped[dt.datetime | None] = mapped_column(default=None)
    # never personal data
    last_error: Mapped[str | None] = mapped_column(String(300), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    # citizen notifications: the ticket's channel (a worker claims only channels it can serve)
    channel: Mapped[str | None] = mapped_column(String(16), default=None)
    # which worker holds the lease (locked_until)
    locked_by: Mapped[str | None] = mapped_column(String(64), default=None)


class CitizenMessage(Base):
    """A notification kept for a channel without push (the web widget fetches it once)."""

    __tablename__ = "citizen_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(128), index=True)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    fetched_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class AgentSession(Base):
    """A dashboard login session, kept on the server: logout, deactivation and a password change
    end it. The cookie holds a random token; only its SHA-256 is stored."""

    __tablename__ = "agent_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column()
    revoked_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class TelegramUpdate(Base):
    """A Telegram update received by the webhook, stored before Telegram is answered 200 and
    processed once (the payload is removed once processed)."""

    __tablename__ = "telegram_updates"

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    processed_at: Mapped[dt.datetime | None] = mapped_column(default=None)


# The cellule de veille reads tickets by département and date (figures) and, for its alerts,
# by area, type and date: a commune (the window's counts read this index alone, status,
# resident and sub-kind included), an EPCI part, the département (the types watched only
# there). On SQLite the last two hold what the alerts read too (their counts are index-only);
# on PostgreSQL they are narrow (the EPCI's keeps the sub-kind, read by a sub-kind's residents):
# at a peak the reports of the last hours are not yet marked all-visible by a vacuum, an
# index-only scan reads the table anyway, and a narrow index is the one the planner picks over
# the report type's.
Index("ix_tickets_departement_created", Ticket.departement, Ticket.created_at)
Index(
    "ix_tickets_veille_window",
    Ticket.commune_insee,
    Ticket.report_type,
    Ticket.created_at,
    Ticket.status,
    Ticket.conversation_id,
    Ticket.subtype,
)
Index(
    "ix_tickets_veille_epci",
    Ticket.epci_siren,
    Ticket.departement,
    Ticket.report_type,
    Ticket.created_at,
    Ticket.subtype,
).ddl_if(dialect="postgresql")
Index(
    "ix_tickets_veille_departement", Ticket.departement, Ticket.report_type, Ticket.created_at
).ddl_if(dialect="postgresql")
Index(
    "ix_tickets_veille_epci",
    Ticket.epci_siren,
    Ticket.departement,
    Ticket.report_type,
    Ticket.created_at,
    Ticket.status,
    Ticket.subtype,
    Ticket.commune_insee,
    Ticket.conversation_id,
).ddl_if(dialect="sqlite")
Index(
    "ix_tickets_veille_departement",
    Ticket.departement,
    Ticket.report_type,
    Ticket.created_at,
    Ticket.status,
    Ticket.subtype,
    Ticket.conversation_id,
).ddl_if(dialect="sqlite")


class VeilleQueue(Base):
    """A filed ticket the cellule de veille has not evaluated yet (written in the filing
    transaction, removed by webhook.veille.worker once its alerts are evaluated)."""

    __tablename__ = "veille_queue"

    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    queued_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class VeilleAlert(Base):
    """A convergence alert: more reports of one kind in one area over 7 days than its baseline
    explains (webhook.veille.alerts). One row per wave; numbers as of the last evaluation that
    found the wave going on. Holds no personal data."""

    __tablename__ = "veille_alerts"
    __table_args__ = (
        Index("ix_veille_alerts_dep_status", "departement", "status"),
        # one wave at a time per area and kind of report
        Index(
            "ux_veille_alerts_ongoing",
            "departement",
            "area_kind",
            "area_code",
            "report_type",
            "subtype",
            unique=True,
            sqlite_where=text("ended_at IS NULL"),
            postgresql_where=text("ended_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    departement: Mapped[str] = mapped_column(String(3))
    # "commune" | "epci" | "departement"
    area_kind: Mapped[str] = mapped_column(String(16))
    area_code: Mapped[str] = mapped_column(String(16))
    report_type: Mapped[str] = mapped_column(String(32))
    # a choice of the report type's sub-kind question, "" for the whole type
    subtype: Mapped[str] = mapped_column(String(48), default="")
    # "open" | "acknowledged" | "closed"
    status: Mapped[str] = mapped_column(String(16), default="open")
    window_start: Mapped[dt.datetime] = mapped_column()
    window_end: Mapped[dt.datetime] = mapped_column()
    count: Mapped[int] = mapped_column(Integer)
    residents: Mapped[int] = mapped_column(Integer)
    baseline_count: Mapped[int] = mapped_column(Integer)
    baseline_weeks: Mapped[float] = mapped_column(Float)
    expected: Mapped[float] = mapped_column(Float)
    p_value: Mapped[float] = mapped_column(Float)
    # the floor was used: no or too little history for this area
    floor_used: Mapped[bool] = mapped_column(Boolean, default=False)
    peak_count: Mapped[int] = mapped_column(Integer)
    raised_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # start of the window that raised it: the alert's reports are those of its key from here to
    # window_end (their references are shown only to the agencies they were routed to)
    wave_start: Mapped[dt.datetime] = mapped_column()
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # the wave ended (the 7-day count fell back to what the baseline explains)
    ended_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    acknowledged_by: Mapped[str | None] = mapped_column(String(100), default=None)
    closed_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    closed_by: Mapped[str | None] = mapped_column(String(100), default=None)
    # the observer's note when closing (never shown outside the territory's observers)
    note: Mapped[str | None] = mapped_column(Text, default=None)


class VeilleChannel(Base):
    """Where the observers of a territory receive its alerts: e-mail or signed webhook. Managed
    by the agency that owns the observers (``tranquillite veille-channel``)."""

    __tablename__ = "veille_channels"
    __table_args__ = (UniqueConstraint("territory", "kind", "target"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agency_id: Mapped[str] = mapped_column(String(64), index=True)
    territory: Mapped[str] = mapped_column(String(40), index=True)
    # "email" | "webhook"
    kind: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(500))
    secret: Mapped[str | None] = mapped_column(String(200), default=None)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ConversationStateRow(Base):
    """A conversation's gateway state (webhook.store.state): JSON saved at the end of each turn,
    under a lease (``lock_token`` until ``locked_until``) taken at its start. ``version`` 0: a
    row made for a lease only. Times are seconds since the epoch."""

    __tablename__ = "conversation_states"

    conversation_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    # the hashed address key the conversation came from last (per-address bound)
    owner: Mapped[str | None] = mapped_column(String(32), default=None, index=True)
    data: Mapped[str | None] = mapped_column(Text, default=None)
    version: Mapped[int] = mapped_column(Integer, default=0)
    in_report: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[float] = mapped_column(Float, index=True)
    lock_token: Mapped[str | None] = mapped_column(String(32), default=None)
    locked_until: Mapped[float | None] = mapped_column(Float, default=None)


class ConversationNote(Base):
    """What the action server's filing (internal API, any gateway) leaves for the running turn
    of its conversation: a ticket filed, a refusal, a proof-of-work credit used."""

    __tablename__ = "conversation_notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(128), index=True)
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float, index=True)


class RateBucket(Base):
    """A token bucket shared by the gateways (key hashed: it may name an address)."""

    __tablename__ = "rate_buckets"

    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    updated: Mapped[float] = mapped_column(Float)
    # the last hit was allowed (read back by the same statement)
    allowed: Mapped[bool] = mapped_column(Boolean, default=True)
    # when the bucket is full again (then it is the same as no row: deleted by the purge)
    full_at: Mapped[float] = mapped_column(Float, index=True)


class StateEntry(Base):
    """A small shared value with an expiry: a proof of work used, a Telegram button, a
    login-failure counter."""

    __tablename__ = "state_entries"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[str | None] = mapped_column(Text, default=None)
    count: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[float] = mapped_column(Float, index=True)


class StoreMeta(Base):
    """Facts about the database itself, e.g. ``demo`` for a database filled by
    ``tranquillite veille-demo`` (every page and export says so)."""

    __tablename__ = "store_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(500))


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def private_file(path: Path) -> None:
    """Create ``path`` readable by its owner only (0600), or make it so: a SQLite file holds
    every ticket. SQLite gives its -wal and -shm files the database file's mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.close(fd)
    for candidate in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if candidate.exists() and candidate.stat().st_mode & 0o077:
            candidate.chmod(0o600)


def create_engine(database_url: str) -> AsyncEngine:
    if database_url.startswith("sqlite"):
        path = database_url.split("///", 1)[-1].split("?", 1)[0]
        if path and path != ":memory:":
            private_file(Path(path))
        # hide_parameters: an error message never carries the values (personal data) to a log
        engine = create_async_engine(
            database_url, connect_args={"timeout": 30}, hide_parameters=True
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        database_url, pool_size=10, max_overflow=20, pool_pre_ping=True, hide_parameters=True
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[Any]:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def _upgrade(connection: Connection) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the latest Alembic revision (idempotent)."""
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade)
