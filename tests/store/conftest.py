"""Fixtures of the store tests: real SMTP server and HTTP receiver (see store_support)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from store_support import MailBox, Receiver, smtp_controller, start_receiver


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
