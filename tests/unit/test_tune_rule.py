"""sku_rules.tune: what the SKU actor journals for the planner's result, by mode, and
that World.evolve applies exactly the levels of an applied policy_tuned."""

from __future__ import annotations

import msgspec

from backorder.actors import events as ev
from backorder.actors import sku_rules
from backorder.actors.model import World
from backorder.config.settings import Settings
from backorder.planner import wire


def result(rop: int, oup: int, ss: int, klass: str = "smooth") -> wire.SkuResult:
    return wire.SkuResult(
        sku="A",
        new=wire.Levels(reorder_point=rop, order_up_to=oup, safety_stock=ss),
        demand_class=klass,
        model="SeasonalES(7)",
        forecast=[1.0] * 30,
        reasons=["because"],
    )


def setup(mode: str):
    world = World(Settings())
    s = world.sku("A")
    s.policy = msgspec.structs.replace(s.policy, mode=mode, reorder_point=5, order_up_to=10)
    events: list[ev.Event] = []

    def emit(e: ev.Event) -> None:
        events.append(e)
        world.evolve(e)

    return world, s, events, emit


def test_auto_applies_and_records_the_old_levels():
    world, s, events, emit = setup("auto")
    assert sku_rules.tune(world, s, result(8, 20, 3), emit, 100.0) == "applied"
    (e,) = events
    assert isinstance(e, ev.PolicyTuned) and e.applied and e.old.reorder_point == 5
    assert (s.policy.reorder_point, s.policy.order_up_to, s.policy.safety_stock) == (8, 20, 3)
    assert e.forecast.next_30_days == 30.0 and world.tuned["A"] is e
    # the same levels again, with the same class and model: nothing new to journal
    assert sku_rules.tune(world, s, result(8, 20, 3), emit, 200.0) is None and len(events) == 1
    # a person typed other values meanwhile: the planner's levels are journaled again
    s.policy = msgspec.structs.replace(s.policy, reorder_point=1)
    assert sku_rules.tune(world, s, result(8, 20, 3), emit, 300.0) == "applied" and len(events) == 2


def test_suggest_records_without_changing_the_policy():
    world, s, events, emit = setup("suggest")
    assert sku_rules.tune(world, s, result(8, 20, 3), emit, 100.0) == "suggested"
    assert events[0].applied is False and (s.policy.reorder_point, s.policy.order_up_to) == (5, 10)


def test_manual_and_kept_results_journal_nothing():
    world, s, events, emit = setup("manual")
    assert sku_rules.tune(world, s, result(8, 20, 3), emit, 100.0) is None
    world, s, events, emit = setup("auto")
    kept = msgspec.structs.replace(result(1, 2, 0), new=None)
    assert sku_rules.tune(world, s, kept, emit, 100.0) is None and events == []


def test_levels_over_the_sites_limit_are_recorded_not_applied():
    world, s, events, emit = setup("auto")
    big = world.settings.limits.max_quantity + 1
    assert sku_rules.tune(world, s, result(8, big, 3), emit, 100.0) == "suggested"
    assert events[0].applied is False and "not applied" in events[0].reasons[-1]
    assert s.policy.order_up_to == 10
