"""Support of the shared-state tests."""

from __future__ import annotations

import time


class Clock:
    """Wall-clock time plus an offset the test moves forward (what several processes share)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds
