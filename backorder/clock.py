"""The one clock of the engine: wall time in production, simulated time in tests and the demo.

Lead times, waiting ages, expected dates and KPIs all read ``clock.now()`` (seconds since
the epoch, UTC), so a simulated clock makes a 90-day history run in seconds.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float: ...


class WallClock:
    def now(self) -> float:
        return time.time()


class SimClock:
    """Starts at ``start`` and runs ``speed`` times faster than real time; ``advance`` jumps."""

    def __init__(self, start: float | None = None, speed: float = 1.0) -> None:
        self._origin = time.time() if start is None else start
        self._real0 = time.monotonic()
        self.speed = speed
        self._offset = 0.0

    def now(self) -> float:
        return self._origin + (time.monotonic() - self._real0) * self.speed + self._offset

    def advance(self, seconds: float) -> None:
        self._offset += seconds
