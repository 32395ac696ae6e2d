"""Today's date in France: the OTV rules and the dates citizens write count calendar days there."""

from __future__ import annotations

import datetime as dt
import os
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")
# Tests of date rules fix "today" with this variable (an ISO date); nothing else reads it.
TODAY_ENV = "TRANQUILLITE_TODAY"


def today() -> dt.date:
    """Today in Europe/Paris (summer time included), or the date of $TRANQUILLITE_TODAY."""
    override = os.environ.get(TODAY_ENV)
    if override:
        return dt.date.fromisoformat(override)
    return dt.datetime.now(PARIS).date()
