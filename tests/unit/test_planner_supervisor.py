"""The planner's supervisor keeps its worker process: the start timeout bounds a start
only (a worker that said it is ready is never killed for it, however long it lives),
and a worker that never says it is ready is killed once the timeout passes and started
again. A stand-in worker (a shell that prints the ready line, or nothing) starts in
milliseconds even on a loaded machine, so wall-time bounds of a fraction of a second
are meaningful here; the real worker takes a minute to import at a load average of 24.
"""

from __future__ import annotations

import trio

from backorder.config.settings import PlannerSettings
from backorder.daemon import planner as planner_mod
from backorder.daemon.planner import Planner

READY = ("sh", "-c", 'echo "{\\"type\\":\\"ready\\",\\"pid\\":$$}"; exec sleep 600')
SILENT = ("sh", "-c", "exec sleep 600")  # alive, its output open, never a word
START_TIMEOUT_S = 0.3


def supervise(monkeypatch, worker: tuple[str, ...], watch_s: float) -> tuple[Planner, list[dict]]:
    """Run the supervisor over ``worker`` for ``watch_s`` seconds once it has started one;
    returns the planner and its health seen every 0.1 s."""
    monkeypatch.setattr(planner_mod, "WORKER", worker)
    settings = PlannerSettings(enabled=True, start_timeout_s=START_TIMEOUT_S, restart_min_s=0.05, restart_max_s=0.05)
    p = Planner(settings, engine=None, router=None, journal=None, db="unused.db")  # type: ignore[arg-type]
    seen: list[dict] = []

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(p._keep_worker)
            with trio.fail_after(30):
                while p.pid is None and p.restarts == 0:
                    await trio.sleep(0.01)
            for _ in range(round(watch_s / 0.1)):
                seen.append(p.health())
                await trio.sleep(0.1)
            nursery.cancel_scope.cancel()

    trio.run(main)
    return p, seen


def test_a_ready_worker_outlives_the_start_timeout(monkeypatch):
    # it was killed that long after its start, ready or not: a scheduled run caught in it
    # failed, more often the slower the machine, and two replays of a lab run differed
    p, seen = supervise(monkeypatch, READY, watch_s=5 * START_TIMEOUT_S)
    first = seen[0]
    assert first["state"] == "ready" and first["pid"] is not None
    assert all(h == first for h in seen), seen  # the same worker throughout, never restarted
    assert p.restarts == 0 and p.last_exit is None


def test_a_worker_that_never_says_ready_is_killed_after_the_start_timeout_and_started_again(monkeypatch):
    p, seen = supervise(monkeypatch, SILENT, watch_s=5 * START_TIMEOUT_S)
    assert p.restarts >= 2, seen
    assert p.last_exit == "did not start in time"
    assert all(h["pid"] is None and h["state"] in ("starting", "restarting") for h in seen)
