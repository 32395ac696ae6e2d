"""Jurisdiction routing for Tranquillité: which agency receives a report, and why.

Pure package (standard library + PyYAML), usable from Python 3.10::

    import routing
    engine = routing.get_engine()
    res = engine.resolve_commune("Lons le saunier")
    decision = engine.decide("vol_cambriolage", res.candidates[0].insee, danger=True)
    print(decision.to_dict())
"""

from __future__ import annotations

import threading
from pathlib import Path

from routing.engine import REPORT_TYPES, Engine
from routing.errors import DataError, RoutingError, UnknownCommuneError, UnknownReportTypeError
from routing.loader import DATA_DIR, load_engine
from routing.models import Agency, Commune, Decision, Destination, Helpline, Resolution
from routing.rules import FLAGS

__all__ = [
    "DATA_DIR",
    "FLAGS",
    "REPORT_TYPES",
    "Agency",
    "Commune",
    "DataError",
    "Decision",
    "Destination",
    "Engine",
    "Helpline",
    "Resolution",
    "RoutingError",
    "UnknownCommuneError",
    "UnknownReportTypeError",
    "get_engine",
    "load_engine",
]

_engine: Engine | None = None
_lock = threading.Lock()


def get_engine() -> Engine:
    """The engine over the shipped data, loaded once per process (thread-safe)."""
    global _engine
    if _engine is None:
        with _lock:
            if _engine is None:
                _engine = load_engine()
    return _engine


def _reset_engine_cache() -> None:
    """Forget the cached engine (tests, or after re-importing the data)."""
    global _engine
    with _lock:
        _engine = None


def data_dir() -> Path:
    """Directory of the shipped data."""
    return DATA_DIR
