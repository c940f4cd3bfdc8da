"""The retention rules (actors/retention.py): which closed orders leave memory and when,
what ``orders_archived`` removes from the model, and the Bloom filter of intake keys."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest

from backorder import protocol as p
from backorder.actors import events as ev
from backorder.actors import order_rules, retention, sku_rules
from backorder.actors.carrier import LocalCarrier
from backorder.actors.model import Line, World
from backorder.actors.snapshot import SnapshotOutdated, dump, restore
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


def test_a_snapshot_of_an_older_format_is_not_restored():
    """Formats before 11 lack the promise outcomes (kept / missed per kind), which only a
    replay rebuilds: such a snapshot is refused as outdated, and the journal replayed."""
    w, _ = _world()
    _promised_and_warned(w)
    for old in (9, 10):
        snap = msgspec.msgpack.decode(dump(w))
        snap["version"] = old
        with pytest.raises(SnapshotOutdated):
            restore(SETTINGS, msgspec.msgpack.encode(snap))


def _requests_and_notices() -> tuple[World, list[ev.Event]]:
    """The story above with a purchase order of one line received in full on day 0 and
    two still open, a delivered notice, an unrouted one, a pending one and a dead one."""
    w, log = _world()

    def emit(e: ev.Event) -> None:
        log.append(e)
        w.evolve(e)

    for n, qty in ((1, 5), (2, 7)):
        emit(
            ev.RequestRaised(
                ts=T0,
                request_id=f"PO-00001{n}",
                sku="A",
                kind="po",
                source="acme",
                qty=qty,
                expected_date="2024-10-01",
                position=0,
            )
        )
    emit(ev.Received(ts=T0 + 60, sku="A", qty=5, request_id="PO-000011"))
    for n, channel in enumerate(("file", "none", "file", "file"), 1):
        emit(
            ev.NoticeQueued(
                ts=T0,
                notice_id=f"N000000{n}",
                kind="shipped",
                channel=channel,
                email="",
                audience="customer",
                subject="",
                body="",
                data={},
            )
        )
    emit(ev.NoticeDelivered(ts=T0 + 60, notice_id="N0000001", attempt=1))
    emit(ev.NoticeFailed(ts=T0 + 60, notice_id="N0000004", attempt=1, error="boom", dead=True))
    return w, log


def test_closed_requests_and_delivered_notices_are_due_once_hot_days_have_passed():
    w, _ = _requests_and_notices()
    day0 = retention.day_start(T0)
    assert w.requests["PO-000011"].closed_ts == T0 + 60 and w.requests["PO-000012"].closed_ts is None
    assert retention.records_due(w, day0 + 2 * DAY, hot_days=2) == ([], [])
    assert retention.records_due(w, day0 + 3 * DAY, hot_days=2) == (["PO-000011"], ["N0000001", "N0000002"])


def test_a_purchase_order_is_due_only_when_every_line_closed_and_the_kpi_no_longer_reads_them():
    w, _ = _requests_and_notices()
    later = retention.day_start(T0) + 3 * DAY
    w.evolve(
        ev.RequestRaised(
            ts=T0,
            request_id="PO-000013",
            sku="A",
            kind="po",
            source="acme",
            qty=1,
            expected_date="2024-10-01",
            position=0,
            po_id="PO-000011",
        )
    )
    assert retention.records_due(w, later, hot_days=2)[0] == []  # a line of it is open
    w.evolve(ev.RequestCancelled(ts=T0 + 90, request_id="PO-000013", sku="A", open_qty=1, reason="x"))
    assert retention.records_due(w, later, hot_days=2)[0] == ["PO-000011", "PO-000013"]
    w.kpi.last_receipt["PO-000013"] = T0 + 80  # closed short after a receipt: the lead-time KPI reads it
    assert retention.records_due(w, later, hot_days=2)[0] == []
    del w.kpi.last_receipt["PO-000013"]
    w.notices["N0000004"].request_id = "PO-000011"  # its document's notice is dead: a retry builds it
    assert retention.records_due(w, later, hot_days=2)[0] == []


def test_records_archived_drops_them_keeps_the_counts_and_survives_a_snapshot():
    w, _ = _requests_and_notices()
    stats = (w.notices_queued, w.notices_sent, dict(w.notice_status), w.lead_time_n)
    w.evolve(ev.RecordsArchived(ts=T0 + 3 * DAY, request_ids=["PO-000011"], notice_ids=["N0000001", "N0000002"]))
    assert list(w.requests) == list(w.purchase_orders) == ["PO-000001", "PO-000012"]  # the open ones
    assert ("po", "acme") in w.open_po and w.open_po[("po", "acme")][0] == "PO-000012"
    assert list(w.notices) == ["N0000003", "N0000004"]
    assert (w.notices_queued, w.notices_sent, w.notice_status, w.lead_time_n) == stats
    restored = restore(SETTINGS, dump(w))
    assert dump(restored) == dump(w)
    assert (restored.notices_queued, restored.notice_status, restored.n_requests_archived) == (4, w.notice_status, 1)


def test_the_daily_sweep_lets_go_of_lines_that_left_a_queue_that_never_empties():
    """A SKU's queue keeps an entry per line served (lazy deletion) until it empties or
    holds 1,024 more than twice its length: without the sweep, a slow SKU that always has
    a line waiting keeps every line it ever served alive."""
    w, _ = _world()
    q = w.sku("A").queue
    waiting = Line("O9", 1, "A", 1, Decimal("1"), True, False, T0 - 1)
    waiting.key = w.queue_key(waiting)
    q.add(waiting)  # the oldest, waiting for good
    served = []
    for n in range(300):
        ln = Line(f"O{n}", 1, "A", 1, Decimal("1"), True, False, T0 + n)
        ln.key = w.queue_key(ln)
        q.add(ln)
        q.remove(ln)
        served.append(ln)
    held = {id(e[2]) for e in q._oldest}
    assert all(id(ln) in held for ln in served)  # each still referenced by the queue
    retention.forget_removed_lines(w)
    assert [e[2] for e in q._oldest] == [waiting] and q.oldest() is waiting and len(q) == 1


def test_the_count_of_ship_complete_orders_follows_them_in_and_out_of_memory():
    """A settle looks for a lender only while some order in memory ships complete
    (``World.ship_complete_orders``): counted as orders arrive, uncounted as they are
    archived, rebuilt from a snapshot."""
    w, _ = _world()
    assert w.ship_complete_orders == 0
    req = msgspec.convert(
        {
            "op": "order.submit",
            "channel": "web",
            "external_id": "X-sc",
            "ship_complete": True,
            "lines": [{"sku": "A", "qty": 9}],
        },
        p.OrderSubmit,
    )
    order, _ = order_rules.submit(w, req, w.evolve, T0)
    assert w.ship_complete_orders == 1
    assert restore(SETTINGS, dump(w)).ship_complete_orders == 1
    order_rules.cancel(w, order.order_id, "gone", w.evolve, T0 + 180)
    first, _second, third = list(w.orders.values())[:3]
    w.evolve(ev.OrdersArchived(ts=T0 + 3 * DAY, order_ids=[first.order_id, third.order_id]))
    assert w.ship_complete_orders == 1  # the ship-complete one is still in memory
    w.evolve(ev.OrdersArchived(ts=T0 + 3 * DAY, order_ids=[order.order_id]))
    assert w.ship_complete_orders == 0
    assert restore(SETTINGS, dump(w)).ship_complete_orders == 0
