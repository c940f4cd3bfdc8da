"""``clock.advance``: move the stepped clock, running the engine-time work due on the way.

Under ``[daemon] clock = "stepped"`` engine time moves only here. ``Stepper.advance``
runs the clock's agenda (``clock.SteppedClock``) up to the target: before the first item
and after each one it *settles* - waits until every actor mailbox is empty and everything
journaled is durable (so the notifier's commit listener has seen it) - and only then moves
the clock on. When it returns, every piece of engine-time work due by the target has run
and its events are durable. Between advances, each request is handled only once the
actors have decided everything the requests before it started, and a write only once the
advances before it are done (``quiet``, awaited by the server's reader), so a run's
journal does not depend on how the request lines were chunked or how fast replies went out. Advances run one at a time, in the order they were read (a
chain of turns taken when the request is handled, not a lock: which of two waiting tasks
trio wakes first is not defined).

What moves in engine time under the stepped clock: the notifier's notice deliveries, their
retry backoff and its depletion checks, the planner's scheduled runs and the retention
sweep (on the agenda; the planner's wall-time failures are retried, see daemon.planner); ages, expected dates, overdue
flags, lead times and KPIs (they read ``clock.now()``). What stays in wall time, because it
measures the real world and journals nothing: socket idle and flush timeouts, request
in-flight waits, SKU actor passivation (no SKU tasks under the stepped clock: one serial
task), the notifier's circuit breakers, intake's silent-source check and its retry of a
crashed actor, the watchdog, metrics refresh.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import trio

from backorder.clock import SteppedClock
from backorder.errors import InvalidInput
from backorder.protocol import WRITE_OPS
from backorder.timeutil import iso_ts, parse_ts

if TYPE_CHECKING:
    from backorder.actors.router import Router
    from backorder.daemon.journal import Journal
    from backorder.notify.notifier import Notifier

# The longest one advance may move the clock: ten years (longer is a client's mistake).
MAX_ADVANCE_S = 10 * 365.25 * 86400
# Engine time never passes this, however many advances: dates computed from it (expected
# dates, up to ten years of lead time) must stay inside the calendar (year 9999).
LAST_ENGINE_TS = parse_ts("9000-01-01T00:00:00Z")
YIELD_EVERY = 64  # agenda steps between forced checkpoints


class Stepper:
    """Moves a ``SteppedClock`` for ``clock.advance`` (see the module docstring)."""

    def __init__(self, clock: SteppedClock, router: Router, journal: Journal, notifier: Notifier) -> None:
        self.clock = clock
        self.router = router
        self.journal = journal
        self.notifier = notifier
        self._last_turn: trio.Event | None = None  # set when the latest advance taken in is done
        self._settles = 0

    def target(self, seconds: float | None, to: str | None) -> float:
        """The engine time an advance asks for, or InvalidInput naming what is wrong."""
        if (seconds is None) == (to is None):
            raise InvalidInput("invalid_request", "clock.advance takes exactly one of seconds or to")
        now = self.clock.now()
        if seconds is not None:
            if not (math.isfinite(seconds) and 0 < seconds <= MAX_ADVANCE_S):
                raise InvalidInput(
                    "invalid_request",
                    f"seconds must be > 0 and at most {MAX_ADVANCE_S:.0f} (ten years), not {seconds!r}",
                )
            return self.check_end(now + seconds)
        assert to is not None
        try:
            when = parse_ts(to)
        except (ValueError, OverflowError):
            raise InvalidInput("invalid_date", f"to {to!r} is not an RFC 3339 timestamp") from None
        return self.check_to(when, to)

    def check_to(self, when: float, text: str) -> float:
        now = self.clock.now()
        if when < now:
            raise InvalidInput(
                "invalid_date",
                f"to {text} is earlier than the engine's now {iso_ts(now)}; the clock never runs backwards",
            )
        if when - now > MAX_ADVANCE_S:
            raise InvalidInput("invalid_date", f"to {text} is more than ten years after the engine's now {iso_ts(now)}")
        return self.check_end(when)

    @staticmethod
    def check_end(target: float) -> float:
        if target > LAST_ENGINE_TS:
            raise InvalidInput("invalid_request", f"engine time cannot pass {iso_ts(LAST_ENGINE_TS)}")
        return target

    async def quiet(self, op: str) -> None:
        """Awaited by the server before it handles each request: for a write, until the
        advances read before it are done (a change is decided at the engine time the
        script meant, not somewhere inside an advance); for any request, until no actor has
        a message waiting. Reads do not wait for an advance: a console stays live."""
        if op in WRITE_OPS and self._last_turn is not None:
            await self._last_turn.wait()
        router = self.router
        while router.busy():
            await trio.lowlevel.checkpoint()

    async def settle(self) -> None:
        """Until no actor has a message waiting and everything journaled is durable (the
        commit listeners - the notifier's among them - have run for all of it)."""
        journal, router = self.journal, self.router
        self._settles += 1
        if self._settles % YIELD_EVERY == 0:
            # a long advance of quiet steps (a skipped depletion check) awaits nothing:
            # let the other clients be served now and then
            await trio.lowlevel.checkpoint()
        while True:
            while router.busy():
                await trio.lowlevel.checkpoint()
            await journal.flush()
            if not router.busy() and journal.committed_seq == journal.last_seq:
                return

    def take_turn(self) -> tuple[trio.Event | None, trio.Event]:
        """Called as the request is handled (synchronously, in the order requests are
        read): the turn to wait for and this advance's own, for ``advance``."""
        before, mine = self._last_turn, trio.Event()
        self._last_turn = mine
        return before, mine

    async def advance(self, seconds: float | None, to: str | None, turn: tuple[trio.Event | None, trio.Event]) -> float:
        """Move the clock once the advances taken in before this one are done, running what
        falls due; returns the new now."""
        before, mine = turn
        try:
            if before is not None:
                await before.wait()
            # checked again now: an advance queued behind another sees its result
            target = (
                self.check_end(self.clock.now() + seconds) if seconds is not None else self.check_to(parse_ts(to), to)
            )
            self.notifier.unpark()
            return await self.clock.advance_to(target, self.settle)
        finally:
            mine.set()  # also when refused, failed or cancelled: the next one goes on
