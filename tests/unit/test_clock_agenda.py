"""The stepped clock's agenda: work runs in (due, insertion) order with the clock at each
due time, work added on the way runs in the same advance when it is due by the target,
and the clock never runs backwards."""

from __future__ import annotations

import pytest
import trio

from backorder.clock import SteppedClock


def run_advance(clock: SteppedClock, target: float) -> tuple[float, int]:
    settles = 0

    async def settle() -> None:
        nonlocal settles
        settles += 1

    now = trio.run(clock.advance_to, target, settle)
    return now, settles


def test_work_runs_in_due_order_at_its_due_time_then_the_clock_reaches_the_target():
    clock = SteppedClock(1000.0)
    ran: list[tuple[str, float]] = []

    def work(name: str):
        async def run() -> None:
            ran.append((name, clock.now()))

        return run

    clock.at(1300.0, work("c"))
    clock.at(1100.0, work("a"))
    clock.at(1100.0, work("b"))  # a tie: after the one added first
    clock.at(5000.0, work("later"))
    now, settles = run_advance(clock, 2000.0)
    assert now == clock.now() == 2000.0
    assert ran == [("a", 1100.0), ("b", 1100.0), ("c", 1300.0)]
    assert settles == 4  # before the first item and after each one
    assert clock.pending() == 1 and clock.next_due() == 5000.0 and clock.steps == 3


def test_work_added_on_the_way_runs_if_due_by_the_target_and_overdue_work_never_moves_time_back():
    clock = SteppedClock(0.0)
    ran: list[tuple[str, float]] = []

    async def periodic() -> None:
        ran.append(("tick", clock.now()))
        clock.at(clock.now() + 10.0, periodic)

    async def overdue() -> None:
        ran.append(("overdue", clock.now()))

    clock.at(0.0, periodic)
    run_advance(clock, 25.0)
    assert ran == [("tick", 0.0), ("tick", 10.0), ("tick", 20.0)]
    assert clock.now() == 25.0 and clock.next_due() == 30.0
    clock.at(5.0, overdue)  # due in the past: runs at the next advance, at the clock's now
    run_advance(clock, 26.0)
    assert ran[-1] == ("overdue", 25.0) and clock.now() == 26.0


def test_an_advance_to_now_runs_what_is_due_now_and_moves_nothing():
    clock = SteppedClock(50.0)
    ran = []

    async def work() -> None:
        ran.append(clock.now())

    clock.at(50.0, work)
    assert run_advance(clock, 50.0)[0] == 50.0
    assert ran == [50.0]


def test_work_cut_short_by_a_cancellation_stays_on_the_agenda_a_failure_does_not():
    clock = SteppedClock(1000.0)
    ran: list[str] = []

    async def hangs() -> None:
        ran.append("hangs")
        await trio.sleep_forever()

    async def fails() -> None:
        ran.append("fails")
        raise RuntimeError("a bug")

    async def settle() -> None:
        pass

    async def cut_short() -> None:
        with trio.move_on_after(0.01):
            await clock.advance_to(2000.0, settle)

    clock.at(1100.0, hangs)
    trio.run(cut_short)
    assert clock.pending() == 1 and clock.next_due() == 1100.0  # still due: the next advance runs it

    clock = SteppedClock(1000.0)
    clock.at(1100.0, fails)
    with pytest.raises(RuntimeError):
        trio.run(clock.advance_to, 2000.0, settle)
    assert clock.pending() == 0  # dropped: the advances after it are not failed by it too
    assert ran == ["hangs", "fails"]
