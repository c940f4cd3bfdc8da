"""Delivery promises (backorder/actors/promise_rules.py) on a model built by the real rules."""

from __future__ import annotations

import msgspec
import pytest
from model_support import policy_tuned, recording_world

from backorder import protocol as p
from backorder.actors import events as ev
from backorder.actors import order_rules, promise_rules, sku_rules
from backorder.actors.carrier import LocalCarrier
from backorder.actors.model import World
from backorder.errors import InvalidInput, NotFound

T0 = 1_709_251_200.0  # 2024-03-01T00:00:00Z
DAY = 86400.0


def world(promises: dict | None = None, **sku) -> tuple[World, list[ev.Event]]:
    return recording_world(
        {
            "skus": {"A": {"reorder_point": 0, "order_up_to": 10, **sku}, "B": {"reorder_point": 0, "order_up_to": 10}},
            "notifications": {"routes": {"*": "email"}},
            "promises": promises or {},
        }
    )


def order(w: World, ext: str, *lines: tuple[str, int], now: float = T0, **fields):
    req = msgspec.convert(
        {
            "op": "order.submit",
            "channel": "web",
            "external_id": ext,
            "email": f"{ext}@x.example",
            "lines": [{"sku": sku, "qty": qty} for sku, qty in lines],
            **fields,
        },
        p.OrderSubmit,
    )
    o, _ = order_rules.submit(w, req, w.emit, now)
    for sku in dict.fromkeys(sku for sku, _ in lines):
        sku_rules.settle(w, w.skus[sku], w.emit, now)
    promise_rules.promise_order(w, o, w.emit, now)  # as the order actor does before it replies
    return o


def promised(w: World, o) -> list[tuple[str, str, float]]:
    return [
        (pr.date, pr.source, pr.confidence) for n in range(1, len(o.lines) + 1) if (pr := w.promises[(o.order_id, n)])
    ]


def delays(log: list[ev.Event], kind: str = "delay") -> list[list[tuple[int, str, str]]]:
    return [
        [(li["line_no"], li["old_date"], li["new_date"]) for li in e.data["lines"]]
        for e in log
        if isinstance(e, ev.NoticeQueued) and e.kind == kind
    ]


def test_a_line_from_stock_ships_after_the_handling_time():
    w, log = world({"handling_days": 2})
    sku_rules.adjust(w, w.skus["A"], 5, None, "count", w.emit, T0)
    o = order(w, "o1", ("A", 3))
    assert promised(w, o) == [("2024-03-03", "stock", 0.98)]
    (e,) = [e for e in log if isinstance(e, ev.LinesPromised)]
    assert e.order_id == o.order_id and [li.line_no for li in e.lines] == [1]


def test_a_waiting_line_is_promised_the_date_of_the_supply_it_waits_for():
    w, _ = world()
    o = order(w, "o1", ("A", 3))  # raises PO-000001 due 03-08 (the policy's 7 days)
    (rid,) = w.skus["A"].inbound
    assert promised(w, o) == [("2024-03-09", rid, 0.6)]  # not measured: low confidence


def test_an_unconfirmed_supply_is_taken_no_earlier_than_the_measured_lead_time_at_the_percentile():
    w, _ = world({"lead_time_percentile": 95.0})
    first = order(w, "o1", ("A", 3))
    w.emit(policy_tuned("A", T0, daily_mean=1.0, lead_time_days=10.0, lead_time_sd=2.0))
    second = order(w, "o2", ("A", 2))  # waits for the same PO, due 03-08 by the policy
    # 10 + 1.645 x 2 = 13.3 days after the PO was raised (03-01): 03-14, + 1 day handling
    assert promised(w, second)[0][:2] == ("2024-03-15", promised(w, first)[0][1])
    assert promised(w, second)[0][2] == 0.95
    assert promised(w, first)[0][0] == "2024-03-09"  # a line keeps its first promise
    rid = promised(w, first)[0][1]
    sku_rules.acknowledge(w, w.skus["A"], rid, w.requests[rid].qty, "2024-03-08", w.emit, T0)
    third = order(w, "o3", ("A", 1))  # the supplier confirmed its date: that date, 0.9
    assert promised(w, third) == [("2024-03-09", rid, 0.9)]


def test_a_ship_complete_order_is_promised_the_date_of_its_last_line():
    w, _ = world()
    sku_rules.adjust(w, w.skus["B"], 5, None, "count", w.emit, T0)
    o = order(w, "o1", ("B", 1), ("A", 2), ship_complete=True)
    (a, conf_a), (b, conf_b) = [(d, c) for d, _, c in promised(w, o)]
    assert a == b == "2024-03-09" and conf_a == conf_b == 0.6
    split = order(w, "o2", ("B", 1), ("A", 2))
    assert [d for d, _, _ in promised(w, split)] == ["2024-03-02", "2024-03-09"]


def test_a_line_keeps_its_first_promise():
    w, log = world()
    o = order(w, "o1", ("A", 3))
    before = promised(w, o)
    promise_rules.promise_order(w, o, w.emit, T0 + 5 * DAY)
    assert promised(w, o) == before
    assert sum(isinstance(e, ev.LinesPromised) for e in log) == 1


def test_a_held_order_is_promised_when_released():
    w, log = world()
    o = order(w, "o1", ("A", 3), hold="payment")
    assert not any(isinstance(e, ev.LinesPromised) for e in log)
    order_rules.release(w, o.order_id, "paid", w.emit, T0 + DAY)
    sku_rules.settle(w, w.skus["A"], w.emit, T0 + DAY)
    promise_rules.promise_order(w, o, w.emit, T0 + DAY)
    assert promised(w, o)[0][0] == "2024-03-09"  # waits for the PO raised at T0 (position 0)


def accepted(w: World, ext: str, *lines: tuple[str, int], **fields):
    """An order accepted and served, stopped before its promise was journaled (what a
    kill -9 between the two commits leaves)."""
    req = msgspec.convert(
        {"op": "order.submit", "channel": "web", "external_id": ext, "lines": [{"sku": s, "qty": q} for s, q in lines]}
        | fields,
        p.OrderSubmit,
    )
    o, _ = order_rules.submit(w, req, w.emit, T0)
    for sku in dict.fromkeys(sku for sku, _ in lines):
        sku_rules.settle(w, w.skus[sku], w.emit, T0)
    return o


def test_recovery_selects_the_open_orders_whose_lines_lack_a_promise():
    w, log = world()
    sku_rules.adjust(w, w.skus["B"], 5, None, "count", w.emit, T0)
    waiting = accepted(w, "waiting", ("A", 3))
    promised_already = order(w, "promised", ("A", 1))
    held = accepted(w, "held", ("A", 2), hold="payment")
    cancelled = accepted(w, "cancelled", ("A", 2))
    order_rules.cancel(w, cancelled.order_id, "changed mind", w.emit, T0)
    gift = accepted(w, "gift", ("A", 1))
    gift.lines[0].requires_shipping = False  # a gift card: nothing ships, nothing to promise
    shipped = accepted(w, "shipped", ("B", 2))
    order_rules.settle_order(w, shipped, w.emit, T0, LocalCarrier())
    assert shipped.status(w.shipments) == "shipped"
    routed = accepted(w, "routed", ("A", 1))
    w.emit(
        ev.OrderRouted(
            ts=T0, order_id=routed.order_id, provider="shipbob", reason="spike", shipment_id="S9", items=[(1, "A", 1)]
        )
    )
    assert promise_rules.unpromised(w) == [waiting]
    # promising it takes it out of the selection: a second start-up journals nothing
    promise_rules.promise_order(w, waiting, w.emit, T0)
    assert promise_rules.unpromised(w) == []
    assert [e.order_id for e in log if isinstance(e, ev.LinesPromised)] == [
        promised_already.order_id,
        waiting.order_id,
    ]
    # released, the held order's lines wait in a queue with no promise yet: selected
    order_rules.release(w, held.order_id, "paid", w.emit, T0)
    assert promise_rules.unpromised(w) == [held]


def test_a_line_shipped_in_full_gets_no_promise_when_its_order_is_promised_late():
    w, log = world()
    sku_rules.adjust(w, w.skus["B"], 2, None, "count", w.emit, T0)
    o = accepted(w, "o1", ("B", 2), ("A", 3))
    order_rules.settle_order(w, o, w.emit, T0, LocalCarrier())
    assert o.lines[0].shipped == 2 and promise_rules.unpromised(w) == [o]
    promise_rules.promise_order(w, o, w.emit, T0)
    (e,) = [e for e in log if isinstance(e, ev.LinesPromised)]
    assert [li.line_no for li in e.lines] == [2]


def test_a_supply_moved_before_the_line_is_promised_is_told_only_by_the_promise():
    """Between its backorder (the backordered notice) and its promise (a later step), a line
    whose supply moves is told nothing: the promise it is answered with has the new date,
    and from then on it is the one date its moves are judged against."""
    w, log = world()
    o = accepted(w, "o1", ("A", 3))  # backordered: the notice says 03-08
    s = w.skus["A"]
    (rid,) = s.inbound
    sku_rules.confirm(w, s, rid, "2024-03-15", w.emit, T0)
    promise_rules.recheck(w, s, w.emit, T0)
    promise_rules.promise_order(w, o, w.emit, T0)
    assert promised(w, o) == [("2024-03-16", rid, 0.6)]
    promise_rules.recheck(w, s, w.emit, T0)
    assert delays(log) == []
    sku_rules.confirm(w, s, rid, "2024-03-17", w.emit, T0)
    promise_rules.recheck(w, s, w.emit, T0)
    promise_rules.overdue(w, w.emit, T0 + 20 * DAY)  # overdue by then: moved by the day, told again
    assert delays(log) == [[(1, "2024-03-16", "2024-03-18")], [(1, "2024-03-18", "2024-03-22")]]


def test_an_amended_order_is_promised_anew():
    w, log = world()
    o = order(w, "o1", ("A", 3))
    assert promised(w, o)[0][0] == "2024-03-09"
    sku_rules.adjust(w, w.skus["B"], 5, None, "count", w.emit, T0)
    order_rules.amend(w, o.order_id, [p.OrderLineIn(sku="B", qty=1)], "changed at source", w.emit, T0)
    assert (o.order_id, 1) not in w.promises  # the old line's promise went with it
    sku_rules.settle(w, w.skus["B"], w.emit, T0)
    promise_rules.promise_order(w, o, w.emit, T0)
    assert promised(w, o) == [("2024-03-02", "stock", 0.98)]


def test_a_later_date_is_told_once_per_move_past_the_tolerance():
    w, log = world({"tolerance_days": 1})
    o = order(w, "o1", ("A", 3))
    s = w.skus["A"]
    (rid,) = s.inbound

    def move(date: str) -> None:
        sku_rules.confirm(w, s, rid, date, w.emit, T0)
        promise_rules.recheck(w, s, w.emit, T0)

    move("2024-03-09")  # one day later: within the tolerance
    assert delays(log) == []
    move("2024-03-10")  # two days later than told (03-09 -> 03-11)
    assert delays(log) == [[(1, "2024-03-09", "2024-03-11")]]
    promise_rules.recheck(w, s, w.emit, T0)  # nothing moved since: told once
    assert len(delays(log)) == 1
    assert w.promises[(o.order_id, 1)].told == "2024-03-11" and w.promises[(o.order_id, 1)].date == "2024-03-09"
    move("2024-03-05")  # earlier: nothing unless notify_earlier
    assert len(delays(log)) == 1 and delays(log, "earlier") == []


def test_a_supply_moved_to_the_last_day_of_the_calendar_is_told_as_that_day():
    # found by the fuzzer: 9999-12-31 + the handling time was past what a date can hold,
    # and the SKU actor crashed on the recheck
    w, log = world()
    o = order(w, "o1", ("A", 3))
    s = w.skus["A"]
    (rid,) = s.inbound
    sku_rules.confirm(w, s, rid, "9999-12-31", w.emit, T0)
    promise_rules.recheck(w, s, w.emit, T0)
    assert delays(log) == [[(1, "2024-03-09", "9999-12-31")]]
    assert w.promises[(o.order_id, 1)].told == "9999-12-31"


def test_an_earlier_date_is_told_when_configured():
    w, log = world({"notify_earlier": True})
    order(w, "o1", ("A", 3))
    s = w.skus["A"]
    (rid,) = s.inbound
    sku_rules.confirm(w, s, rid, "2024-03-04", w.emit, T0)
    promise_rules.recheck(w, s, w.emit, T0)
    assert delays(log, "earlier") == [[(1, "2024-03-09", "2024-03-05")]]


def test_a_priority_order_served_ahead_moves_a_promised_line_and_its_customer_is_told():
    w, log = world(order_up_to=1)
    first = order(w, "o1", ("A", 10))  # PO for 11 units, due 03-08
    s = w.skus["A"]
    assert promised(w, first)[0][0] == "2024-03-09"
    sku_rules.configure(w, s, {"lead_time_days": 14}, w.emit, T0)  # the next PO comes later
    w.emit(ev.PolicyChanged(ts=T0, mode="priority", weights=w.weights))
    order(w, "rush", ("A", 5), rush=True)  # goes ahead: the first line now needs the next PO
    promise_rules.recheck(w, s, w.emit, T0)
    assert delays(log) == [[(1, "2024-03-09", "2024-03-16")]]


def test_a_supply_gone_overdue_moves_its_lines_day_by_day():
    w, log = world({"tolerance_days": 1})
    order(w, "o1", ("A", 3))  # promised 03-09 (PO due 03-08)
    promise_rules.overdue(w, w.emit, T0 + 8 * DAY)  # 03-09: the PO is a day late, 03-10 now
    assert delays(log) == []
    promise_rules.overdue(w, w.emit, T0 + 9 * DAY)  # 03-10: two days
    assert delays(log) == [[(1, "2024-03-09", "2024-03-11")]]


def test_atp_check_under_priority_rules_answers_the_place_a_rush_line_would_take():
    w, _ = world({"handling_days": 0}, lead_time_days=14)
    waiting = order(w, "o1", ("A", 10))  # the PO it raises: 10 + 10 units
    (rid,) = w.skus["A"].inbound
    sku_rules.confirm(w, w.skus["A"], rid, "2024-03-05", w.emit, T0)
    w.emit(ev.PolicyChanged(ts=T0, mode="priority", weights=w.weights))
    plain, rush = (promise_rules.check(w, [("A", 15)], T0, rush=r)[0]["promise"] for r in (False, True))
    assert (plain["date"], plain["from"]) == ("2024-03-15", "lead_time")  # behind o1: 25 > 20 units
    assert (rush["date"], rush["from"]) == ("2024-03-05", rid)  # ahead of o1: the first 15 of the PO
    # a later line of the same order waits behind the earlier one, and o1 stays ahead of a plain line
    two = promise_rules.check(w, [("A", 15), ("A", 10)], T0, rush=True)
    assert [li["promise"]["from"] for li in two] == [rid, "lead_time"]
    assert promised(w, waiting)[0][1] == rid


def test_atp_check_answers_the_promise_of_an_order_not_placed():
    w, log = world()
    sku_rules.adjust(w, w.skus["A"], 2, None, "count", w.emit, T0)
    before = len(log)
    got = promise_rules.check(w, [("A", 2), ("A", 1), ("B", 30)], T0)
    assert [li["promise"]["from"] for li in got] == ["stock", "lead_time", "lead_time"]
    assert got[1]["promise"]["date"] == "2024-03-09"  # today + 7 days lead time + 1 day handling
    assert len(log) == before  # nothing journaled
    assert {li["promise"]["date"] for li in promise_rules.check(w, [("A", 2), ("B", 1)], T0, True)} == {"2024-03-09"}


@pytest.mark.parametrize(
    ("lines", "code"),
    [([("NOPE", 1)], "unknown_sku"), ([("A", 0)], "invalid_quantity"), ([("A", 10**9)], "invalid_quantity")],
)
def test_atp_check_refuses_bad_lines_with_a_stable_code(lines, code):
    w, _ = world()
    with pytest.raises((InvalidInput, NotFound)) as exc:
        promise_rules.check(w, lines, T0)
    assert exc.value.code == code


def test_a_site_that_routes_no_notices_does_not_walk_the_queue_to_tell_nobody(monkeypatch):
    """A recheck walks a SKU's waiting lines only to tell customers of moved dates; with no
    customer route at all there is nobody to tell, and a tuned SKU's loop step spent ~10 us
    per waiting line finding that out (bench/planner.py: 3-4 ms for 300 lines)."""
    w, log = recording_world(
        {"skus": {"A": {"reorder_point": 0, "order_up_to": 10}}, "promises": {}}
    )  # no [notifications] routes
    o = order(w, "o1", ("A", 3))
    s = w.skus["A"]
    (rid,) = s.inbound
    assert (o.order_id, 1) in w.promises
    sku_rules.confirm(w, s, rid, "2024-03-20", w.emit, T0)  # its date moves by 12 days

    def walked(*args):
        raise AssertionError("the recheck walked the queue")

    monkeypatch.setattr(promise_rules, "expected", walked)
    assert promise_rules.recheck(w, s, w.emit, T0) == [] and delays(log) == []
    monkeypatch.undo()
    routed, routed_log = world()  # the same order where customers are told: they are
    o = order(routed, "o1", ("A", 3))
    sku_rules.confirm(routed, routed.skus["A"], rid, "2024-03-20", routed.emit, T0)
    promise_rules.recheck(routed, routed.skus["A"], routed.emit, T0)
    assert delays(routed_log) == [[(1, "2024-03-09", "2024-03-21")]]
