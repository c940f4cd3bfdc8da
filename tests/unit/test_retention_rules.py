"""The retention rules (actors/retention.py): which closed orders leave memory and when,
what ``orders_archived`` removes from the model, and the Bloom filter of intake keys."""

from __future__ import annotations

import msgspec

from backorder import protocol as p
from backorder.actors import events as ev
from backorder.actors import order_rules, retention, sku_rules
from backorder.actors.carrier import LocalCarrier
from backorder.actors.model import Promise, World
from backorder.actors.snapshot import dump, restore
from backorder.config.settings import Settings

DAY = 86400.0
T0 = 20_000 * DAY + 9 * 3600  # 09:00 on some engine day
SETTINGS = msgspec.convert({"skus": {"A": {}}}, Settings)


def _world() -> tuple[World, list[ev.Event]]:
    w = World(SETTINGS)
    log: list[ev.Event] = []

    def emit(e: ev.Event) -> None:
        log.append(e)
        w.evolve(e)

    s = w.sku("A")
    emit(ev.Received(ts=T0, sku="A", qty=3))
    for n, qty in enumerate((1, 1, 5)):  # two fill at once, the third waits
        req = msgspec.convert(
            {"op": "order.submit", "channel": "web", "external_id": f"X-{n}", "lines": [{"sku": "A", "qty": qty}]},
            p.OrderSubmit,
        )
        order, _ = order_rules.submit(w, req, emit, T0)
        sku_rules.settle(w, s, emit, T0)
        order_rules.settle_order(w, order, emit, T0)
    first, second, third = w.orders.values()
    order_rules.ship(w, first.shipments[0], LocalCarrier(), emit, T0 + 60)  # shipped: closed
    order_rules.cancel(w, third.order_id, "gone", emit, T0 + 120)  # cancelled: closed
    # the second stays picking: open
    return w, log


def test_orders_closed_longer_than_hot_days_are_due_at_a_day_boundary_only():
    w, _ = _world()
    first, _second, third = w.orders.values()
    assert first.closed_ts == T0 + 60 and third.closed_ts == T0 + 120
    day0 = retention.day_start(T0)
    assert retention.due(w, day0 + 2 * DAY, hot_days=2) == []  # closed on day 0: kept days 0-1
    assert retention.due(w, day0 + 3 * DAY - 1, hot_days=2) == []
    assert retention.due(w, day0 + 3 * DAY, hot_days=2) == [first.order_id, third.order_id]
    assert retention.due(w, day0 + DAY, hot_days=0) == [first.order_id, third.order_id]


def test_orders_archived_drops_the_orders_their_shipments_and_keys_and_survives_a_snapshot():
    w, _ = _world()
    first, second, third = w.orders.values()
    w.evolve(ev.OrdersArchived(ts=T0 + 3 * DAY, order_ids=[first.order_id, third.order_id]))
    assert list(w.orders) == [second.order_id] and w.n_archived == 2
    assert set(w.shipments) == set(second.shipments)
    assert ("web", "default", "X-0") not in w.by_key and ("web", "default", "X-0") in w.archived_keys
    restored = restore(SETTINGS, dump(w))
    assert restored.n_archived == 2 and list(restored.orders) == [second.order_id]


def test_the_key_filter_never_misses_a_key_it_was_given():
    f = retention.KeyFilter()
    keys = [("web", "default", f"E-{n}") for n in range(20_000)]
    for k in keys:
        f.add(k)
    assert all(k in f for k in keys)
    false_hits = sum(("web", "default", f"N-{n}") in f for n in range(20_000))
    assert false_hits < 20  # ~0 at this fill (4 MiB of bits)


def _promised_and_warned(w: World) -> None:
    """Give every order a promise per line, a depletion warning and a 3PL change asked for."""
    for o in w.orders.values():
        lines = [
            ev.PromisedLine(line_no=ln.line_no, sku=ln.sku, date="2026-01-09", source="stock", confidence=0.9)
            for ln in o.lines
        ]
        w.evolve(ev.LinesPromised(ts=T0, order_id=o.order_id, lines=lines))
        w.evolve(
            ev.ThreeplChangeRequested(ts=T0, order_id=o.order_id, notice_id="N0000009", change="cancel", reason="x")
        )
        w.warned.add((o.order_id, "PO-000001"))


def test_an_archived_orders_promises_warnings_and_threepl_changes_leave_with_it():
    w, _ = _world()
    first, second, third = w.orders.values()
    _promised_and_warned(w)
    assert len(w.promises) == 3 and len(w.threepl_changes) == 3
    w.evolve(ev.OrdersArchived(ts=T0 + 3 * DAY, order_ids=[first.order_id, third.order_id]))
    assert set(w.promises) == {(second.order_id, 1)}
    assert w.warned == {(second.order_id, "PO-000001")}
    assert set(w.threepl_changes) == {second.order_id}


def test_a_format_9_snapshot_is_restored_without_what_it_kept_of_archived_orders():
    """Format 9 kept an archived order's promises, warnings and 3PL changes: restored, they
    are dropped, so the model equals the one a replay of the same journal builds."""
    w, _ = _world()
    first, second, third = w.orders.values()
    _promised_and_warned(w)
    w.evolve(ev.OrdersArchived(ts=T0 + 3 * DAY, order_ids=[first.order_id, third.order_id]))
    replayed = dump(w)
    for oid in (first.order_id, third.order_id):  # what a format-9 daemon left behind
        w.promises[(oid, 1)] = Promise("2026-01-09", "stock", 0.9)
        w.warned.add((oid, "PO-000001"))
        w.threepl_changes[oid] = w.threepl_changes[second.order_id]
    snap = msgspec.msgpack.decode(dump(w))
    snap["version"] = 9
    restored = restore(SETTINGS, msgspec.msgpack.encode(snap))
    assert set(restored.promises) == {(second.order_id, 1)}
    assert dump(restored) == replayed
