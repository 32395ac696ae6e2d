"""Shared fixtures for the routing tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import routing
from routing.engine import Engine


@pytest.fixture(scope="session")
def engine() -> Engine:
    """The engine over the shipped data (loaded once per test session)."""
    return routing.get_engine()


@pytest.fixture
def data_copy(tmp_path: Path) -> Path:
    """A writable copy of the shipped data directory."""
    target = tmp_path / "data"
    shutil.copytree(routing.DATA_DIR, target)
    return target
