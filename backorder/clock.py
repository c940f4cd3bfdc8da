"""The one clock of the engine: wall time in production, simulated time in demos, stepped
time for deterministic simulation.

Lead times, waiting ages, expected dates and KPIs all read ``clock.now()`` (seconds since
the epoch, UTC), so a simulated clock makes a 90-day history run in seconds.

``SteppedClock`` never moves by itself: it moves only when told (the ``clock.advance`` op),
and the engine-time work that would otherwise wait on a real-time timer (the notifier's
depletion checks, notice deliveries and their retries) is kept on its agenda, a heap of
``(due, seq, callback)``, and run in due order as time is moved past it. So the same
configuration and the same requests and advances give the same journal.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Awaitable, Callable
from typing import Literal, Protocol

ClockKind = Literal["wall", "simulated", "stepped"]


class Clock(Protocol):
    kind: ClockKind

    def now(self) -> float: ...


class WallClock:
    kind: ClockKind = "wall"

    def now(self) -> float:
        return time.time()


class SimClock:
    """Starts at ``start`` and runs ``speed`` times faster than real time; ``advance`` jumps."""

    kind: ClockKind = "simulated"

    def __init__(self, start: float | None = None, speed: float = 1.0) -> None:
        self._origin = time.time() if start is None else start
        self._real0 = time.monotonic()
        self.speed = speed
        self._offset = 0.0

    def now(self) -> float:
        return self._origin + (time.monotonic() - self._real0) * self.speed + self._offset

    def advance(self, seconds: float) -> None:
        self._offset += seconds


Work = Callable[[], Awaitable[None]]


class SteppedClock:
    """Engine time that stands still until ``advance_to`` moves it, running the agenda.

    ``at(due, work)`` puts engine-time work on the agenda; ``advance_to(target, settle)``
    runs every item due up to ``target`` in (due, insertion) order, each with the clock set
    to its due time (never backwards), awaiting ``settle`` (everything it caused decided and
    durable) after each, then sets the clock to ``target``. Items an item adds run in the
    same advance if they are due by ``target``. Ties run in the order they were added,
    which is deterministic when the callers are."""

    kind: ClockKind = "stepped"

    def __init__(self, start: float) -> None:
        self._now = start
        self._agenda: list[tuple[float, int, Work]] = []
        self._seq = itertools.count()
        self.steps = 0  # agenda items run so far (health)

    def now(self) -> float:
        return self._now

    def at(self, due: float, work: Work) -> None:
        heapq.heappush(self._agenda, (due, next(self._seq), work))

    def next_due(self) -> float | None:
        return self._agenda[0][0] if self._agenda else None

    def pending(self) -> int:
        return len(self._agenda)

    async def advance_to(self, target: float, settle: Callable[[], Awaitable[None]]) -> float:
        """Run the agenda up to ``target`` and leave the clock there; returns the new now."""
        await settle()  # what was asked before the advance is decided at the old time
        agenda = self._agenda
        while agenda and agenda[0][0] <= target:
            due, _seq, work = heapq.heappop(agenda)
            if due > self._now:
                self._now = due
            try:
                await work()
            except BaseException as exc:
                # cut short (a cancellation: its connection closed, a drain), the work is not
                # done: it stays on the agenda for the next advance instead of being
                # forgotten. A failure (an Exception) is not retried: it would fail every
                # advance after it.
                if not isinstance(exc, Exception):
                    heapq.heappush(agenda, (due, _seq, work))
                raise
            self.steps += 1
            await settle()
        if target > self._now:
            self._now = target
        return self._now
