"""Property tests of the allocation planner and the what-if reads built on it.

Random site histories come from the rules' own simulator (test_rules_properties.Sim: the
rules driven as the actors drive them). On each resulting state: a what-if receipt and
then the real receipt allocate the same units to the same lines in the same order; a
what-if delay predicts the dates the real confirmation leaves; the plan serves the queue
in service order and never gives a line more than it waits for; and a refused what-if
changes nothing.
"""

from __future__ import annotations

from array import array
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from test_rules_properties import T0, Sim, check_invariants, op_st, service_key, snapshot, weights_st

from backorder.actors import events as ev
from backorder.actors import sku_rules, whatif
from backorder.actors.allocation_plan import Supply, allocate_now, days_between, order_date, plan
from backorder.actors.queue_index import SupplyCurve
from backorder.config.settings import Weights
from backorder.errors import Rejected
from backorder.timeutil import iso_date

PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ALL = 1_000_000  # a limit no test queue reaches: every changed line is listed
DAY = 86400.0

history_st = st.lists(op_st, min_size=1, max_size=40)
mode_st = st.sampled_from(["fifo", "priority"])


def simulate(mode, weights, ops) -> Sim:
    sim = Sim(mode, weights)
    for op in ops:
        sim.run(op)
    return sim


@PROPS
@given(
    mode=mode_st,
    weights=weights_st,
    ops=history_st,
    name=st.sampled_from(["A", "B", "C"]),
    qty=st.integers(1, 20),
    ref_pick=st.integers(0, 2),
)
def test_whatif_receipt_then_real_receipt_allocate_identically(mode, weights, ops, name, qty, ref_pick):
    sim = simulate(mode, weights, ops)
    assume(name in sim.world.skus)
    # the prediction is compared with the real receipt inside (units, loans, dates)
    allocs = receipt_as_predicted(sim, name, qty, ref_pick)
    assert all(a.qty > 0 for a in allocs), "an allocation of no units"


def receipt_as_predicted(sim: Sim, name: str, qty: int, ref_pick: int) -> list[sku_rules.Allocation]:
    """A what-if receipt, then the real one (as the SKU actor makes it): the same units to
    the same lines, the same loans, the same dates for the lines still waiting."""
    w = sim.world
    s = w.skus[name]
    open_ids = sorted(s.inbound)
    ref = open_ids[ref_pick - 1] if 0 < ref_pick <= len(open_ids) else None
    before = snapshot(w)
    n_events = len(sim.log)
    answer = whatif.receipt(w, None if ref else name, ref, qty, None, sim.now, ALL)
    assert snapshot(w) == before and len(sim.log) == n_events, "a what-if changed the model"

    predicted = {(r["order_id"], r["line_no"]): r["now"] for r in answer["lines"] if r["now"]}
    assert answer["allocated_now"] == sum(predicted.values())
    start = len(sim.log)
    allocs = sku_rules.receive(w, s, qty, ref, sim.emit, sim.now)
    # the units each line got, from stock in service order and then by loans (a line may
    # get both); and the loans themselves, in the order they were made
    real: dict[tuple[str, int], int] = {}
    for a in allocs:
        real[(a.order_id, a.line_no)] = real.get((a.order_id, a.line_no), 0) + a.qty
    assert real == predicted
    loans = [
        {
            "order_id": e.order_id,
            "line_no": e.line_no,
            "qty": e.qty,
            "to_order_id": e.to_order_id,
            "to_line_no": e.to_line_no,
            "back_by": e.back_by,
            "completes": e.completes,
        }
        for e in sim.log[start:]
        if isinstance(e, ev.AllocationLent)
    ]
    assert answer["lent"] == loans
    received = next(e for e in sim.log[start:] if isinstance(e, ev.Received))
    matched = [(m.request_id, m.qty) for m in received.matched] or (
        [(received.request_id, received.qty)] if received.request_id else []
    )
    assert [(m["request_id"], m["qty"]) for m in answer["matched"]] == matched
    # the dates it predicted for the lines still waiting, unless the receipt also raised a request
    if not any(isinstance(e, ev.RequestRaised) for e in sim.log[start:]):
        for row in answer["lines"]:
            line = w.orders[row["order_id"]].lines[row["line_no"] - 1]
            if line.need:
                assert s.expected_date(line) == row["date_after"], row
    return allocs


@PROPS
@given(mode=mode_st, weights=weights_st, ops=history_st, name=st.sampled_from(["A", "B"]), days=st.integers(0, 30))
def test_whatif_delay_predicts_the_dates_a_confirmation_leaves(mode, weights, ops, name, days):
    sim = simulate(mode, weights, ops)
    w = sim.world
    s = w.skus.get(name)
    if s is None or not s.inbound:
        return
    rid = sorted(s.inbound)[-1]
    date = iso_date(sim.now + days * 86400.0)
    # each line's date as Sku.expected_date finds it (a bisect over the curve, not the planner's walk)
    dates_before = {(ln.order_id, ln.line_no): s.expected_date(ln) for ln in s.queue}
    answer = whatif.delay(w, rid, date, sim.now, ALL)
    sku_rules.confirm(w, s, rid, date, sim.emit, sim.now)
    after = {(ln.order_id, ln.line_no): s.expected_date(ln) for ln in s.queue}
    assert list(after.values()) == w.expected_dates(s)
    moved = {(k, dates_before[k], d) for k, d in after.items() if d != dates_before[k]}
    assert {((r["order_id"], r["line_no"]), r["date_before"], r["date_after"]) for r in answer["lines"]} == moved
    assert answer["affected"] == len(moved)
    for r in answer["lines"]:
        if r["date_before"] not in (None, "now") and r["date_after"] not in (None, "now"):
            assert r["moved_days"] == days_between(r["date_before"], r["date_after"], iso_date(sim.now))


@PROPS
@given(
    mode=mode_st,
    weights=weights_st,
    ops=history_st,
    free=st.integers(-3, 40),
    supply=st.lists(st.tuples(st.integers(1, 40), st.integers(0, 15)), max_size=4),
)
def test_plan_serves_in_service_order_and_never_over_allocates(mode, weights, ops, free, supply):
    sim = simulate(mode, weights, ops)
    w = sim.world
    s = w.skus.get("A")
    if s is None:
        return
    curve = SupplyCurve(Supply(f"PO-{i}", iso_date(sim.now + d * 86400.0), q) for i, (d, q) in enumerate(supply))
    lines = list(s.queue)
    p = plan(s.queue.lines(), free, curve)
    assert [x.line for x in p] == lines
    keys = [service_key(w, ln) for ln in lines]
    assert keys == sorted(keys), "the plan walks the queue out of service order"
    got = [x.now for x in p]
    assert all(0 <= g <= ln.need for g, ln in zip(got, lines, strict=True)), "a line got more than it waits for"
    assert sum(got) == min(max(free, 0), sum(ln.need for ln in lines))
    # a line gets units only when every line before it is served in full
    for i, g in enumerate(got):
        if g:
            assert all(got[j] == lines[j].need for j in range(i))
    # dates never go back along the queue: now, then supply dates ascending, then none
    order = [(0, "") if x.date == "now" else (2, "") if x.date is None else (1, x.date) for x in p]
    assert order == sorted(order)
    for x in p:
        assert (x.date == "now") == (x.now == x.line.need)
    # and the same units as allocate_now gives
    assert [(ln, n) for ln, n in allocate_now(s.queue.lines(), free)] == [(x.line, x.now) for x in p if x.now]


def test_order_date_is_the_latest_line_date():
    assert order_date(["now", "2030-01-02", "2030-01-01"]) == "2030-01-02"
    assert order_date(["now", "now"]) == "now"
    assert order_date(["2030-01-02", None]) is None


@PROPS
@given(mode=mode_st, weights=weights_st, ops=history_st)
def test_refused_whatifs_change_nothing(mode, weights, ops):
    sim = simulate(mode, weights, ops)
    w = sim.world
    before = snapshot(w)
    yesterday = iso_date(sim.now - 86400.0)
    cap = w.settings.limits.max_quantity
    cases = [
        (lambda: whatif.receipt(w, None, "PO-999999", 1, None, sim.now, 10), "unknown_request"),
        (lambda: whatif.receipt(w, "nope", None, 1, None, sim.now, 10), "unknown_sku"),
        (lambda: whatif.receipt(w, "A", None, 1, yesterday, sim.now, 10), "invalid_date"),
        (lambda: whatif.receipt(w, "A", None, 1, "2030-02-30", sim.now, 10), "invalid_date"),
        (lambda: whatif.receipt(w, "A", None, cap + 1, None, sim.now, 10), "invalid_quantity"),
        (lambda: whatif.receipt(w, None, None, 1, None, sim.now, 10), "invalid_request"),
        (lambda: whatif.delay(w, "PO-999999", iso_date(sim.now), sim.now, 10), "unknown_request"),
        (lambda: whatif.policy(w, "A", {"reorder_point": 5, "order_up_to": 1}, None, 30, sim.now), "invalid_policy"),
    ]
    s = w.skus.get("A")
    if s is not None and s.inbound:
        rid = sorted(s.inbound)[0]
        cases.append((lambda: whatif.delay(w, rid, yesterday, sim.now, 10), "invalid_date"))
    for call, code in cases:
        with pytest.raises(Rejected) as info:
            call()
        assert info.value.code == code
    assert snapshot(w) == before


def test_whatif_policy_projects_fill_for_a_candidate():
    sim = Sim("fifo", Weights())
    w = sim.world
    # 30 days of 2 units a day of demand on "C" (default policy: never reorders)
    for day in range(30):
        sim.run(("submit", day, [("C", 2, Decimal("1.00"), True)], False, False, None))
        sim.now += 86400.0
    lax = whatif.policy(w, "C", {}, None, 30, sim.now)
    assert lax["demand_from"] == "history"
    assert lax["current"]["fill_rate"] == 0.0  # what is ordered each day comes after its lead time
    good = whatif.policy(
        w, "C", {"reorder_point": 10, "order_up_to": 80, "safety_stock": 5, "lead_time_days": 2}, None, 60, sim.now
    )
    assert good["candidate"]["orders"] >= 1
    assert good["candidate"]["fill_rate"] > good["current"]["fill_rate"]
    fc = whatif.policy(w, "C", {}, [5.0] * 30, 10, sim.now)
    assert fc["demand_from"] == "forecast" and fc["daily_demand"] == 5.0
    # the daemon keeps a forecast as an array of doubles (daemon.planner.compact): the same answer
    assert whatif.policy(w, "C", {}, array("d", [5.0] * 30), 10, sim.now) == fc


# --- no-harm lending ----------------------------------------------------------------------
# In Sim's policies B's supply comes in 1.5 days and A's in 3: a ship-complete order holding
# B units while it waits for A may lend them to a B line that ships now.

lending_submit_st = st.tuples(
    st.just("submit"),
    st.just(0),  # replaced by the op's index
    st.sampled_from(
        [[("A", 1, Decimal("1.00"), True), ("B", 2, Decimal("1.00"), True)], [("B", 1, Decimal("4.99"), True)]]
        + [[("B", 2, Decimal("1.00"), True)], [("A", 2, Decimal("1.00"), True)]]
    ),
    st.sampled_from([True, True, False]),
    st.booleans(),
    st.just(None),
)
_lending_ops = {
    "submit": lending_submit_st,
    "receive B": st.tuples(st.just("receive"), st.just("B"), st.integers(1, 3), st.integers(0, 2)),
    "receive A": st.tuples(st.just("receive"), st.just("A"), st.integers(1, 6), st.integers(0, 2)),
    "tick": st.tuples(st.just("tick"), st.sampled_from([3600, 86400])),
    "pick": st.tuples(st.just("pick"), st.integers(0, 40)),
    "cancel": st.tuples(st.just("cancel"), st.integers(0, 40)),
    "supply": st.tuples(st.just("supply"), st.sampled_from(["A", "B"]), st.just("acknowledge"), st.integers(1, 12)),
}
# weighted by repetition (one_of would not): orders and B receipts are what make loans
lending_op_st = st.sampled_from(
    ["submit"] * 4 + ["receive B"] * 3 + ["receive A", "tick", "pick", "cancel", "supply"]
).flatmap(_lending_ops.__getitem__)


@settings(PROPS, max_examples=300)  # about one history in seven lends
@given(mode=mode_st, weights=weights_st, ops=st.lists(lending_op_st, min_size=10, max_size=40))
def test_lending_moves_no_date_serves_only_shipping_lines_and_is_predicted(mode, weights, ops):
    """Every receipt is first asked of the what-if, then made; every step is checked by the
    simulator (``check_loans``: the lender's order date stays, the borrower ships; the
    invariants: no unit made or lost) and a receipt's loans only move units between lines."""
    sim = Sim(mode, weights)
    w = sim.world
    lent = 0
    for n, op in enumerate(ops):
        if op[0] == "submit":  # each a new order (the same external id is one order)
            op = (op[0], n, *op[2:])
        if op[0] != "receive":
            sim.run(op)
            lent += sum(isinstance(e, ev.AllocationLent) for e in sim.log[-20:])
            continue
        _, name, qty, ref_pick = op
        sim.now += 1
        s = w.skus[name]
        allocated, on_hand = s.allocated, s.on_hand
        allocs = sim.checked(
            name, lambda name=name, qty=qty, ref_pick=ref_pick: receipt_as_predicted(sim, name, qty, ref_pick)
        )
        loaned = [a for a in allocs if isinstance(a, ev.Allocated)]  # a loan's own allocated (rule lent)
        assert all(a.rule == sku_rules.LENT for a in loaned)
        served = sum(a.qty for a in allocs if isinstance(a, ev.AllocatedLine))
        assert s.on_hand == on_hand + qty and s.allocated == allocated + served, "a loan made or lost units"
        lent += len(loaned)
        if any(w.orders[a.order_id].lines[a.line_no - 1].need for a in loaned):
            event("a partial loan")  # to a split order's line (check_loans: never a ship-complete one)
        sim.ship_orders(allocs, name)
        check_invariants(w, sim.log)
    event("lent" if lent else "no loan")


def test_a_ship_complete_order_lends_what_it_cannot_ship_and_gets_it_back_first():
    """X (ship-complete: 1 A + 2 B) holds 2 B while A comes in 3 days and B's next supply in
    1.5: Y and Z (1 B each) ship now on loans (X's B line then waits for 2, from the same
    supply: its date does not move); W (ship-complete, 3 B) cannot be filled by loans (it
    takes all or nothing) and waits behind X;
    B's next receipts go to X first; X ships complete when A arrives."""
    sim = Sim("fifo", Weights())
    w = sim.world
    b_supply = w.skus["B"].inbound[sorted(w.skus["B"].inbound)[0]]
    a_date = w.skus["A"].inbound[sorted(w.skus["A"].inbound)[0]].expected_date
    assert b_supply.expected_date < a_date
    sim.run(("receive", "B", 2, 1))
    sim.run(("submit", 1, [("A", 1, Decimal("1.00"), True), ("B", 2, Decimal("1.00"), True)], True, False, None))
    x = w.orders["O0000001"]
    assert [ln.allocated for ln in x.lines] == [0, 2] and not x.shipments
    start = len(sim.log)
    for n in (2, 3):
        sim.run(("submit", n, [("B", 1, Decimal("1.00"), True)], False, False, None))
    loans = [e for e in sim.log[start:] if isinstance(e, ev.AllocationLent)]
    assert [(e.order_id, e.line_no, e.qty, e.to_order_id, e.to_line_no) for e in loans] == [
        ("O0000001", 2, 1, "O0000002", 1),
        ("O0000001", 2, 1, "O0000003", 1),
    ]
    assert {(e.back_by, e.completes) for e in loans} == {(b_supply.expected_date, a_date)}
    assert all(len(w.orders[oid].shipments) == 1 for oid in ("O0000002", "O0000003"))
    assert x.lines[1].need == 2 and w.skus["B"].expected_date(x.lines[1]) == b_supply.expected_date
    sim.run(("submit", 4, [("B", 3, Decimal("1.00"), True)], True, False, None))
    big = w.orders["O0000004"]
    assert big.lines[0].need == 3 and not big.shipments
    for _ in range(2):  # the lender gets the next units first; W's 3 cannot be lent
        start = len(sim.log)
        sim.run(("receive", "B", 1, 0))
        got = [
            (a.order_id, a.qty, a.rule)
            for e in sim.log[start:]
            if isinstance(e, ev.LinesAllocated | ev.Allocated)
            for a in (ev.allocations(e) if isinstance(e, ev.LinesAllocated) else [e])
        ]
        assert got == [("O0000001", 1, "fifo")]
    assert x.lines[1].need == 0 and big.lines[0].need == 3 and not x.shipments
    sim.run(("receive", "A", 12, 1))
    assert len(x.shipments) == 1 and all(ln.need == 0 for ln in x.lines)


def test_a_split_order_borrows_the_part_held_units_cover_a_ship_complete_one_nothing():
    """X (ship-complete: 1 A + 2 B) holds 2 B while A comes after B's next supply. A
    ship-complete order for 3 B needs more than X holds: it gets nothing. A split order for
    3 B borrows the 2 and ships them now; its last unit waits with a date, and X's order
    date does not move (its B line waits for the same supply)."""
    for ship_complete in (True, False):
        sim = Sim("fifo", Weights())
        w = sim.world
        b_supply = w.skus["B"].inbound[sorted(w.skus["B"].inbound)[0]]
        a_date = w.skus["A"].inbound[sorted(w.skus["A"].inbound)[0]].expected_date
        sim.run(("receive", "B", 2, 1))
        sim.run(("submit", 1, [("A", 1, Decimal("1.00"), True), ("B", 2, Decimal("1.00"), True)], True, False, None))
        x = w.orders["O0000001"]
        assert [ln.allocated for ln in x.lines] == [0, 2]
        start = len(sim.log)
        sim.run(("submit", 2, [("B", 3, Decimal("1.00"), True)], ship_complete, False, None))
        loans = [e for e in sim.log[start:] if isinstance(e, ev.AllocationLent)]
        borrower = w.orders["O0000002"]
        if ship_complete:
            assert loans == [] and borrower.lines[0].allocated == 0 and not borrower.shipments
            assert x.lines[1].allocated == 2
            continue
        assert [(e.order_id, e.line_no, e.qty, e.to_order_id, e.back_by, e.completes) for e in loans] == [
            ("O0000001", 2, 2, "O0000002", b_supply.expected_date, a_date)
        ]
        assert borrower.lines[0].need == 1 and len(borrower.shipments) == 1
        assert w.skus["B"].expected_date(borrower.lines[0]) is not None
        assert x.lines[1].need == 2 and w.skus["B"].expected_date(x.lines[1]) == b_supply.expected_date


def _loans(sim: Sim, start: int) -> list[tuple[str, int, int, str, str, str]]:
    return [
        (e.order_id, e.line_no, e.qty, e.to_order_id, e.back_by, e.completes)
        for e in sim.log[start:]
        if isinstance(e, ev.AllocationLent)
    ]


def test_an_overdue_date_is_read_as_today_by_lending():
    """X (ship-complete: 1 A + 2 B) holds 2 B; A's supply is due on day 3, B's next one on
    day 5. Y (1 B) on day 1 and Z (1 B) on day 4 borrow nothing: X's date (day 3, then
    today: its A is overdue and may come any moment) would move to day 5. On day 6 both
    supplies are overdue: both read as today, a loan moves nothing, and Y and Z, the first
    waiting lines, borrow X's 2 units when V (1 B) comes. (Compared as written, B's day 5
    is later than A's day 3 and nothing would ever be lent.)"""
    sim = Sim("fifo", Weights())
    w = sim.world
    sim.run(("receive", "B", 2, 0))
    sim.run(("submit", 1, [("A", 1, Decimal("1.00"), True), ("B", 2, Decimal("1.00"), True)], True, False, None))
    x = w.orders["O0000001"]
    assert x.lines[1].allocated == 2 and x.lines[0].need == 1
    sim.run(("supply", "B", "acknowledge", 5))  # B's first open request now comes on day 5
    a_date = w.skus["A"].expected_date(x.lines[0])
    b_dates = sorted(r.expected_date for r in w.skus["B"].inbound.values())
    assert a_date == iso_date(T0 + 3 * DAY) and b_dates[0] == iso_date(sim.now + 5 * DAY)
    start = len(sim.log)
    for n, day in ((2, 1), (3, 4)):
        sim.now = T0 + day * DAY
        sim.run(("submit", n, [("B", 1, Decimal("1.00"), True)], False, False, None))
    assert _loans(sim, start) == [] and x.lines[1].allocated == 2
    sim.now = T0 + 6 * DAY
    start = len(sim.log)
    sim.run(("submit", 4, [("B", 1, Decimal("1.00"), True)], False, False, None))
    today = iso_date(sim.now)
    assert _loans(sim, start) == [
        ("O0000001", 2, 1, "O0000002", today, today),
        ("O0000001", 2, 1, "O0000003", today, today),
    ]
    assert all(len(w.orders[oid].shipments) == 1 for oid in ("O0000002", "O0000003"))
    assert x.lines[1].need == 2 and not x.shipments


def test_a_ship_complete_line_loans_cannot_fill_is_passed_over_and_keeps_its_date():
    """X (ship-complete: 1 A + 2 B) holds 2 B; W (ship-complete, 3 B) waits first and
    cannot be filled by X's 2 (all or nothing): V (1 B, ships what it has), behind W,
    borrows 1 and ships, and W's date does not move."""
    sim = Sim("fifo", Weights())
    w = sim.world
    sim.run(("receive", "B", 2, 0))
    sim.run(("submit", 1, [("A", 1, Decimal("1.00"), True), ("B", 2, Decimal("1.00"), True)], True, False, None))
    sim.run(("submit", 2, [("B", 3, Decimal("1.00"), True)], True, False, None))
    big = w.orders["O0000002"]
    before = w.skus["B"].expected_date(big.lines[0])
    assert big.lines[0].need == 3 and before is not None
    start = len(sim.log)
    sim.run(("submit", 3, [("B", 1, Decimal("1.00"), True)], False, False, None))
    assert [(lender, qty, to) for lender, _, qty, to, _, _ in _loans(sim, start)] == [("O0000001", 1, "O0000003")]
    assert len(w.orders["O0000003"].shipments) == 1
    assert big.lines[0].need == 3 and w.skus["B"].expected_date(big.lines[0]) == before


def test_the_skus_a_new_day_may_let_lend_hold_units_of_a_ship_complete_order_while_lines_wait():
    """``sku_rules.may_lend`` (the midnight settle's list): B only once a ship-complete
    order holds B units while another B line waits; not A (nothing held), and not once the
    waiting line is served."""
    sim = Sim("fifo", Weights())
    w = sim.world
    sim.run(("receive", "B", 2, 0))
    assert sku_rules.may_lend(w) == []
    sim.run(("submit", 1, [("A", 1, Decimal("1.00"), True), ("B", 2, Decimal("1.00"), True)], True, False, None))
    assert sku_rules.may_lend(w) == []  # X holds 2 B, but no B line waits
    sim.run(("submit", 2, [("B", 3, Decimal("1.00"), True)], True, False, None))  # cannot be lent: waits
    assert w.skus["B"].backordered == 3 and sku_rules.may_lend(w) == ["B"]
    sim.run(("receive", "B", 3, 0))
    assert w.skus["B"].backordered == 0 and sku_rules.may_lend(w) == []
