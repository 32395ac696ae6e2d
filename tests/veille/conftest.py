"""Fixtures of the cellule de veille tests: a migrated store on SQLite and PostgreSQL, the real
gateway (tests/agency/agency_support), a real SMTP server and webhook receiver
(tests/store/store_support)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "agency"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "store"))

from store_support import MailBox, Receiver, smtp_controller, start_receiver

from webhook.store import tickets
from webhook.store.db import session_factory
from webhook.veille.config import get_config


@pytest.fixture(autouse=True)
def filed_with_subtypes() -> Iterator[None]:
    """As in the gateway (webhook.app): every filed report keeps its sub-kind."""
    before = tickets.subtype_of
    tickets.subtype_of = get_config().ticket_subtype
    try:
        yield
    finally:
        tickets.subtype_of = before


@pytest.fixture
def sessions(db_engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return session_factory(db_engine)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state, stop = start_receiver()
    try:
        yield state
    finally:
        stop()


@pytest.fixture
def smtp_server() -> Iterator[tuple[MailBox, int]]:
    box = MailBox()
    controller, port = smtp_controller(box)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()
