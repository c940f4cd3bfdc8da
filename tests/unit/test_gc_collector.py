"""The daemon's garbage-collection policy (daemon/collector.py): small young collections,
their survivors frozen. Run in this process with a small threshold; the process's GC
state is put back afterwards."""

from __future__ import annotations

import gc
import weakref

import pytest

from backorder.daemon.collector import Collector


@pytest.fixture
def collector():
    threshold, enabled = gc.get_threshold(), gc.isenabled()
    c = Collector()
    yield c
    c.uninstall()
    gc.unfreeze()
    gc.set_threshold(*threshold)
    if not enabled:
        gc.disable()


class Node:
    """A container the collector tracks; ``peer`` makes cycles."""

    __slots__ = ("__weakref__", "peer")


def test_survivors_of_a_young_collection_are_frozen_so_no_collection_rescans_them(collector):
    collector.install(young=1000)
    frozen = gc.get_freeze_count()
    kept = [Node() for _ in range(20_000)]
    assert collector.collections >= 15  # one per ~1,000 tracked allocations
    assert gc.get_freeze_count() - frozen >= 19_000  # the kept nodes left the scanned generations
    assert gc.get_objects(1) == [] and gc.get_objects(2) == []  # nothing waits for an older pass
    stats = collector.statistics()
    assert stats["collections"] == collector.collections and stats["young_threshold"] == 1000
    assert 0 < stats["pause_max_ms"] <= stats["pause_total_ms"] and stats["pause_cpu_max_ms"] > 0
    assert len(kept) == 20_000


def test_a_cycle_dropped_before_its_young_collection_is_still_reclaimed(collector):
    collector.install(young=1000)
    a, b = Node(), Node()
    a.peer, b.peer = b, a
    dead = weakref.ref(a)
    del a, b
    before = collector.collections
    junk = [Node() for _ in range(3000)]  # tracked allocations: a young collection runs
    assert collector.collections > before
    assert dead() is None
    assert len(junk) == 3000


def test_the_price_a_cycle_alive_at_its_young_collection_is_never_reclaimed(collector):
    """The trade-off the module documents: frozen cycles stay (reference counting still
    frees everything that is not a cycle, frozen or not)."""
    collector.install(young=1000)
    a, b = Node(), Node()
    a.peer, b.peer = b, a
    plain = Node()
    cycle, single = weakref.ref(a), weakref.ref(plain)
    junk = [Node() for _ in range(3000)]  # a young collection freezes both
    assert collector.collections > 0 and len(junk) == 3000
    del a, b, plain
    gc.collect()
    assert single() is None  # freed by its reference count
    assert cycle() is not None  # frozen garbage: only gc.unfreeze() would let it go
    gc.unfreeze()
    gc.collect()
    assert cycle() is None


def test_installing_twice_keeps_one_callback(collector):
    collector.install(young=1000)
    collector.install(young=2000)
    assert gc.callbacks.count(collector._callback) == 1
    assert gc.get_threshold()[0] == 2000


def test_an_archived_order_leaves_memory_by_reference_counting_alone():
    """What the policy relies on: the model's objects form no cycles, so a closed order that
    retention archives is freed even though it was frozen long before (no collector runs
    here at all)."""
    from test_retention_rules import DAY, T0, _world

    from backorder.actors import events as ev
    from backorder.actors.model import Line, Order, Shipment

    def held() -> dict:
        kinds = (Order, Line, Shipment)
        return {k.__name__: sum(type(o) is k for o in gc.get_objects()) for k in kinds}

    enabled = gc.isenabled()
    gc.disable()
    try:
        w, log = _world()
        del log  # the events refer to orders by id only, but hold nothing else of them
        first, second, third = w.orders.values()
        archived = [first.order_id, third.order_id]
        kept = held()
        del first, second, third
        w.evolve(ev.OrdersArchived(ts=T0 + 3 * DAY, order_ids=archived))
        # what is left is the open order's, and nothing of the two archived ones
        assert len(w.orders) == 1 and len(w.shipments) < kept["Shipment"]
        assert held() == {"Order": kept["Order"] - 2, "Line": kept["Line"] - 2, "Shipment": len(w.shipments)}
    finally:
        if enabled:
            gc.enable()
