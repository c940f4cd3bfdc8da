"""How the planner hands a part of its results to the SKU actors (``Planner._apply``), on
a real engine, router and journal: no loop step takes in more than one SKU's result, and
under the stepped clock - where the SKU actors are one task and every request waits until
they are idle (``Stepper.quiet``) - a waiting request gets its turn after each SKU, not
only after a whole part. Counted in loop steps and turns, not timed: a 16-SKU part whose
promise rechecks ran in one step held the loop 30-40 ms (bench/planner.py).

These tests are marked trio by tests/actors/conftest.py; ``nursery`` is a pytest-trio fixture.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
import trio

from backorder import protocol as p
from backorder.actors.engine import Engine
from backorder.actors.router import Router, route
from backorder.clock import SimClock, SteppedClock
from backorder.config.settings import DaemonSettings, PlannerSettings, Settings
from backorder.daemon import planner as planner_mod
from backorder.daemon.journal import Journal
from backorder.daemon.planner import Planner
from backorder.planner import wire

T0 = 1_700_000_000.0
SKUS = [f"S{i:02d}" for i in range(3 * wire.CHUNK)]


class TunedPerStep(trio.abc.Instrument):
    """The most SKUs whose policy_tuned one task step journaled (``world.tuned`` grows by
    one per SKU tuned)."""

    def __init__(self, tuned: dict) -> None:
        self.tuned = tuned
        self.before = 0
        self.most = 0

    def before_task_step(self, task) -> None:
        self.before = len(self.tuned)

    def after_task_step(self, task) -> None:
        self.most = max(self.most, len(self.tuned) - self.before)


class Reply:
    def __init__(self) -> None:
        self.answered = trio.Event()
        self.refused: tuple | None = None

    def ok(self, result) -> None:
        self.answered.set()

    def error(self, *args) -> None:
        self.refused = args
        self.answered.set()


def result(sku: str, i: int) -> wire.SkuResult:
    return wire.SkuResult(
        sku=sku,
        new=wire.Levels(reorder_point=5 + i, order_up_to=20 + i, safety_stock=2),
        demand_class="smooth",
        model="SeasonalES",
        forecast=[1.0] * 30,
        daily_mean=1.0,
        lead_time_days=5.0,
    )


async def planner_on(tmp_path, nursery, stepped: bool) -> tuple[Planner, Engine, Router]:
    """A planner over a real engine, router and journal (no worker: ``_apply`` is what is
    run), with ``SKUS`` configured in suggest mode, each with a waiting line; the router is
    serial under the stepped clock, as the daemon makes it."""
    settings = Settings(daemon=DaemonSettings(db=str(tmp_path / "j.db")))
    journal = Journal(settings.daemon.db)
    journal.open()
    await nursery.start(journal.run)
    clock = SteppedClock(start=T0) if stepped else SimClock(start=T0)
    engine = Engine(settings, journal, clock)
    router = Router(engine, nursery, settings.daemon.actor_idle_s, serial=stepped)
    await router.start()
    for sku in SKUS:
        reply = Reply()
        route(router, p.SkuConfigure(sku=sku, mode="suggest"), reply, f"cfg-{sku}")
        await reply.answered.wait()
        assert reply.refused is None, reply.refused
    # a backordered line on every SKU, promised: a tuned SKU's step rechecks its date
    reply = Reply()
    lines = [p.OrderLineIn(sku=sku, qty=2, unit_price=Decimal("1.00")) for sku in SKUS]
    route(router, p.OrderSubmit(channel="web", external_id="o1", lines=lines), reply, "order")
    await reply.answered.wait()
    assert reply.refused is None, reply.refused
    await journal.flush()
    assert len(engine.world.promises) == len(SKUS)
    planner = Planner(PlannerSettings(enabled=True), engine, router, journal, settings.daemon.db)
    return planner, engine, router


@pytest.mark.parametrize("stepped", [True, False], ids=["stepped", "simulated"])
async def test_no_loop_step_takes_in_more_than_one_sku_of_a_part(tmp_path, nursery, stepped):
    planner, engine, router = await planner_on(tmp_path, nursery, stepped)
    world = engine.world
    steps = TunedPerStep(world.tuned)
    trio.lowlevel.add_instrument(steps)
    try:
        with trio.fail_after(30):
            journaled = 0
            for start in range(0, len(SKUS), wire.CHUNK):
                part = [result(s, i) for i, s in enumerate(SKUS[start : start + wire.CHUNK], start)]
                journaled += await planner._apply(part, "planner.run", stepped)
    finally:
        trio.lowlevel.remove_instrument(steps)
    assert journaled == len(SKUS) and sorted(world.tuned) == SKUS  # every SKU's result taken in
    assert [world.skus[s].policy.mode for s in SKUS] == ["suggest"] * len(SKUS)
    assert steps.most == 1  # one SKU's result (its tune, settle and promise recheck) per loop step


async def test_under_the_stepped_clock_a_waiting_request_gets_a_turn_after_every_sku(tmp_path, nursery):
    planner, engine, router = await planner_on(tmp_path, nursery, stepped=True)
    world = engine.world
    seen: list[int] = []  # SKUs tuned each time a request waiting like Stepper.quiet got its turn
    applied = trio.Event()

    async def waiting_request(task_status=trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while not applied.is_set():
            while router.busy():  # what Stepper.quiet awaits before a request is handled
                await trio.lowlevel.checkpoint()
            if not seen or seen[-1] != len(world.tuned):
                seen.append(len(world.tuned))
            await trio.lowlevel.checkpoint()

    await nursery.start(waiting_request)
    part = [result(s, i) for i, s in enumerate(SKUS[: wire.CHUNK])]
    with trio.fail_after(30):
        await planner._apply(part, "planner.run", True)
    applied.set()
    # served between every two SKUs of the part, not once the part was done (it may also
    # have looked once before the first was sent)
    assert [n for n in seen if n] == list(range(1, wire.CHUNK + 1))
    # in the order the worker sent them, one policy_tuned each
    assert list(world.tuned) == SKUS[: wire.CHUNK]


async def test_the_latest_results_are_kept_where_the_collector_does_not_scan_them(tmp_path, nursery):
    """A run's 2,000 results stay in memory until the next run (``sku.get``, what-ifs):
    each part as the worker's line is read (``received``), their daily series as arrays,
    which the garbage collector visits as one object each (as lists, young collections
    during a run visited 120,000 floats: 7-10 ms of a loop step each)."""
    import gc

    import msgspec

    planner, _engine, _router = await planner_on(tmp_path, nursery, stepped=False)
    sent = [
        msgspec.structs.replace(
            result(s, i), forecast=[i + d / 7 for d in range(30)], history=[d % 5 for d in range(30)]
        )
        for i, s in enumerate(SKUS[: wire.CHUNK])
    ]
    part = planner_mod.received(msgspec.json.encode(wire.Results(run_id=1, results=sent)))
    assert isinstance(part, list) and [r.sku for r in part] == SKUS[: wire.CHUNK]
    # what a collection visits of each series (tp_traverse): no float
    assert not [o for r in part for o in gc.get_referents(r.forecast, r.history) if isinstance(o, float)]
    with trio.fail_after(30):
        await planner._apply(part, "planner.run", False)
    shown = planner.explain(SKUS[3])["latest"]
    assert shown["forecast"] == [3 + d / 7 for d in range(30)] and shown["history"] == [d % 5 for d in range(30)]
    assert msgspec.json.decode(msgspec.json.encode(shown))["forecast"] == shown["forecast"]  # a reply carries it
    end = wire.RunReply(run_id=1, duration_s=0.5, read_upto=10, skus=16)
    assert planner_mod.received(msgspec.json.encode(end)) == end
