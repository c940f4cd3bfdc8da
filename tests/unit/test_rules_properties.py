"""Property tests of the pure allocation and reorder rules against the invariants of
conservation, no over-allocation, no double or over-shipment and order of service, plus replay equivalence and "one request per shortage".

No trio here: a ``World`` and an ``emit`` that evolves and logs. The drivers below call
the rules in the same sequence the actors do (order actor -> SKU actors -> order actor),
so what holds here holds for every interleaving the actors can produce one message at a
time.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import NamedTuple

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backorder.actors import events as ev
from backorder.actors import order_rules, sku_rules
from backorder.actors.allocation_plan import as_of, order_date
from backorder.actors.carrier import LocalCarrier
from backorder.actors.model import HOUR, Line, Order, World
from backorder.config.settings import AllocationSettings, NotificationSettings, ReorderPolicy, Settings, Weights
from backorder.errors import Rejected
from backorder.protocol import OrderLineIn, OrderSubmit
from backorder.timeutil import iso_date, iso_ts

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z
POLICIES = {
    # reorder to 10 in packs of 4, at least 6
    "A": ReorderPolicy(reorder_point=2, order_up_to=10, safety_stock=1, moq=6, pack_size=4, lead_time_days=3),
    # transfers; a backorder threshold also triggers
    "B": ReorderPolicy(
        reorder_point=0, order_up_to=5, pack_size=1, source="transfer:site2", backorder_threshold=3, lead_time_days=1.5
    ),
    # "C" uses the default policy (reorder_point 0, order_up_to 0)
}
PRICES = [Decimal("0"), Decimal("0.01"), Decimal("4.99"), Decimal("19.99"), Decimal("250.00")]
CARRIER = LocalCarrier()


def make_settings(mode: str, weights: Weights) -> Settings:
    # a route, so customer notices (and the dates they tell) are decided and replayed too
    return Settings(
        allocation=AllocationSettings(mode=mode, weights=weights),
        skus=dict(POLICIES),
        notifications=NotificationSettings(routes={"*": "file"}),
    )


# --- the operations ----------------------------------------------------------------

weights_st = st.builds(
    Weights,
    rush=st.sampled_from([0.0, 1.0, 24.0, 1000.0]),
    value=st.sampled_from([0.0, 0.01, 1.0]),
    age=st.sampled_from([0.0, 0.5, 1.0, 10.0]),
)
sku_st = st.sampled_from(("A", "A", "B", "C"))  # contention on A
line_st = st.tuples(
    sku_st, st.integers(1, 5), st.sampled_from(PRICES), st.sampled_from([True, True, True, True, False])
)
submit_st = st.tuples(
    st.just("submit"),
    st.integers(0, 25),
    st.lists(line_st, min_size=1, max_size=4),
    st.sampled_from([True, True, False]),  # ship_complete (holds units back)
    st.booleans(),  # rush
    st.sampled_from([None, None, None, 0, 600, 7200, 86400 * 3]),
)  # created_at, seconds ago
receive_st = st.tuples(st.just("receive"), sku_st, st.integers(1, 12), st.integers(0, 3))
adjust_st = st.tuples(
    st.just("adjust"), sku_st, st.sampled_from(["delta", "near_allocated", "near_picking"]), st.integers(-6, 6)
)
supply_st = st.tuples(
    st.just("supply"),
    sku_st,
    st.sampled_from(["cancel", "close", "amend", "acknowledge", "ship_notice"]),
    st.integers(1, 12),
)
op_st = st.one_of(  # (weighted by repetition: orders and receipts are the common traffic)
    supply_st,
    submit_st,
    submit_st,
    submit_st,
    receive_st,
    receive_st,
    adjust_st,
    adjust_st,
    st.tuples(st.just("cancel"), st.integers(0, 40)),
    st.tuples(st.just("pick"), st.integers(0, 40)),
    st.tuples(st.just("pick"), st.integers(0, 40)),
    st.tuples(st.just("policy"), st.sampled_from(["fifo", "priority"]), weights_st),
    st.tuples(st.just("policy"), st.sampled_from(["fifo", "priority"]), weights_st),
    st.tuples(st.just("configure"), sku_st, st.integers(0, 6), st.integers(0, 8), st.integers(1, 5), st.integers(1, 4)),
    st.tuples(st.just("tick"), st.sampled_from([1, 60, 3600, 86400])),
)


class Sim:
    """The rules driven like the actors drive them, with invariant checks after each step."""

    def __init__(self, mode: str, weights: Weights, auto_pick: bool = False) -> None:
        self.settings = make_settings(mode, weights)
        self.auto_pick = CARRIER if auto_pick else None
        self.world = World(self.settings)
        self.log: list[ev.Event] = []
        self.now = T0
        self.before_loans: BeforeLoans | None = None  # the dates a settle's loans started from
        for name in POLICIES:  # as on start (app.recover): serve and reorder every configured SKU
            self.settle_sku(name)

    def emit(self, e: ev.Event) -> None:
        if isinstance(e, ev.AllocationLent) and self.before_loans is None:
            self.before_loans = before_loans(self.world, e.sku, iso_date(e.ts))
        self.world.evolve(e)
        self.log.append(e)

    # --- drivers (the sequence the actors use) ---------------------------------------

    def settle_sku(self, name: str, exclude: str | None = None) -> None:
        """SKU actor serves its queue; the order actor ships orders that got units."""
        w = self.world
        allocs = self.checked(name, lambda: sku_rules.settle(w, w.skus[name], self.emit, self.now))
        self.ship_orders(allocs, name, exclude)

    def ship_orders(self, allocs: list[sku_rules.Allocation], served_by: str, exclude: str | None = None) -> None:
        """The order actor on a ``Settled`` from SKU ``served_by``: ship what may ship, and
        settle again a SKU that may now lend to an order's last waiting line."""
        w = self.world
        orders = [w.orders[oid] for oid in dict.fromkeys(a.order_id for a in allocs) if oid != exclude]
        start = len(self.log)
        order_rules.settle_orders(w, orders, self.emit, self.now, self.auto_pick)
        batches = [e for e in self.log[start:] if isinstance(e, ev.ShipmentsCreated)]
        assert len(batches) <= 1, "one shipments_created event per Settled"
        assert all(c.order_id in {o.order_id for o in orders} for e in batches for c in e.shipments)
        for order in orders:
            self.nudge(order.order_id, served_by)

    def nudge(self, oid: str, served_by: str) -> None:
        lender_sku = order_rules.may_borrow_at(self.world, self.world.orders[oid], served_by)
        if lender_sku is not None:
            self.settle_sku(lender_sku)

    def checked(self, name: str, decide):
        """Run one SKU decision (which ends in ``settle``) and check what settle did."""
        w = self.world
        start = len(self.log)
        self.before_loans = None
        allocs = decide()
        s = w.skus[name]
        new = self.log[start:]
        batches = [e for e in new if isinstance(e, ev.LinesAllocated)]
        assert len(batches) <= 1, "one lines_allocated event per settle"
        got = [a for e in batches for a in ev.allocations(e)]
        loaned = [e for e in new if isinstance(e, ev.Allocated)]  # only a loan is its own event
        assert all(e.rule == sku_rules.LENT for e in loaned)
        assert [(a.order_id, a.line_no, a.qty, a.rank) for a in got + loaned] == [
            (a.order_id, a.line_no, a.qty, a.rank) for a in allocs or []
        ]
        assert all(e.sku == name for e in got + loaned) and all(e.rule == w.mode for e in got)
        lenders = check_loans(w, new, self.before_loans)
        # 6. allocations within one settle follow service order, and nothing earlier waits
        # (but a lender: it waits again by a loan that moved nobody's date)
        keys = [service_key(w, w.orders[e.order_id].lines[e.line_no - 1]) for e in got]
        assert keys == sorted(keys), "allocations out of service order"
        assert len(set(keys)) == len(keys), "a line allocated twice in one settle"
        waiting = [ln for ln in s.queue if ln.need > 0 and (ln.order_id, ln.line_no) not in lenders]
        assert s.available == 0 or not waiting, "units left available while lines wait"
        if keys:
            for ln in waiting:
                assert service_key(w, ln) >= keys[-1], (
                    f"{ln.order_id}/{ln.line_no} waits although it is earlier in service order than a line just served"
                )
        # reorder: at most one request per settle, in packs, at least the MOQ, and no second one
        raised = [e for e in new if isinstance(e, ev.RequestRaised)]
        assert len(raised) <= 1
        for r in raised:
            p = s.policy
            assert r.sku == name
            assert r.qty % p.pack_size == 0 and r.qty >= p.moq, (r, p)
            assert r.request_id.startswith("TR-" if p.source.startswith("transfer:") else "PO-")
        assert sku_rules.reorder_quantity(s) == 0, "a second request would be raised for the same shortage"
        return allocs

    def run(self, op: tuple) -> None:
        kind = op[0]
        self.now += 1
        start = len(self.log)
        getattr(self, f"op_{kind}")(*op[1:])
        for e in self.log[start:]:
            assert e.ts == self.now
        check_invariants(self.world, self.log)

    def op_submit(self, ext: int, lines: list, ship_complete: bool, rush: bool, created_ago: int | None) -> None:
        w = self.world
        req = OrderSubmit(
            channel="web",
            external_id=f"X{ext}",
            ship_complete=ship_complete,
            rush=rush,
            created_at=None if created_ago is None else iso_ts(self.now - created_ago),
            lines=[OrderLineIn(sku=s, qty=q, unit_price=p, requires_shipping=rs) for s, q, p, rs in lines],
        )
        start = len(self.log)
        known = w.by_key.get(("web", "default", f"X{ext}"))
        order, duplicate = order_rules.submit(w, req, self.emit, self.now)
        if duplicate:  # 5. idempotent intake: the same key makes one order and changes nothing
            assert known == order.order_id
            assert len(self.log) == start
            return
        assert known is None
        skus = list(dict.fromkeys(ln.sku for ln in order.lines if ln.requires_shipping))
        for name in skus:
            self.settle_sku(name, exclude=order.order_id)
        order_rules.settle_order(w, order, self.emit, self.now, self.auto_pick)
        if skus:  # the last of its SKUs answered
            self.nudge(order.order_id, skus[-1])

    def op_receive(self, name: str, qty: int, ref_pick: int) -> None:
        w = self.world
        s = w.skus.get(name)
        if s is None:  # router.route answers unknown_sku before any actor sees it
            return
        open_ids = sorted(s.inbound)
        # 0 = no reference, 3 = a reference that is not an open request of this SKU
        ref = None if ref_pick == 0 else open_ids[ref_pick - 1] if ref_pick <= len(open_ids) else "PO-999999"
        allocs = self.checked(name, lambda: sku_rules.receive(w, s, qty, ref, self.emit, self.now))
        self.ship_orders(allocs, name)

    def op_adjust(self, name: str, how: str, value: int) -> None:
        w = self.world
        s = w.skus.get(name)
        if s is None:  # router.route answers unknown_sku
            return
        # counts near the reserved (or the picking) quantity often take units back from lines
        picking = sum(ln.in_shipment for ln in s.holders)
        delta, counted = {
            "delta": (value, None),
            "near_allocated": (None, s.allocated + value),
            "near_picking": (None, picking + abs(value) // 2),
        }[how]
        start = len(self.log)
        free_before = {ln: ln.allocated - ln.in_shipment for ln in s.holders}  # units a count may take back
        try:
            allocs = self.checked(name, lambda: sku_rules.adjust(w, s, delta, counted, "count", self.emit, self.now))
        except Rejected as exc:
            assert exc.code in {"invalid_quantity", "stock_in_picking"}
            assert len(self.log) == start, "a rejected adjustment changed state"
            return
        # the lines last in (current) service order give units back first
        taken = [w.orders[e.order_id].lines[e.line_no - 1] for e in self.log[start:] if isinstance(e, ev.Deallocated)]
        if taken:
            assert sum(e.qty for e in self.log[start:] if isinstance(e, ev.Deallocated)) <= sum(free_before.values())
            kept = [ln for ln, free in free_before.items() if free > 0 and ln not in taken]
            first_taken = min(service_key(w, ln) for ln in taken)
            assert all(service_key(w, ln) < first_taken for ln in kept), (
                "a count took units from a line earlier in service order than one that kept its units"
            )
        self.ship_orders(allocs, name)

    def op_cancel(self, pick: int) -> None:
        w = self.world
        if not w.orders:
            return
        oid = sorted(w.orders)[pick % len(w.orders)]
        start = len(self.log)
        try:
            touched = order_rules.cancel(w, oid, "test", self.emit, self.now)
        except Rejected as exc:
            assert exc.code == "already_shipped"
            assert len(self.log) == start
            return
        assert w.orders[oid].cancelled
        for name in sorted(touched):
            self.settle_sku(name)

    def op_pick(self, pick: int) -> None:
        w = self.world
        if not w.shipments:
            return
        sid = sorted(w.shipments)[pick % len(w.shipments)]
        before = w.shipments[sid].status
        start = len(self.log)
        try:
            sh = order_rules.ship(w, sid, CARRIER, self.emit, self.now)
        except Rejected as exc:
            assert exc.code == "order_cancelled" and before == "cancelled"
            assert len(self.log) == start
            return
        assert sh.status == "shipped"
        if before == "shipped":  # a repeat: same label, nothing new
            assert len(self.log) == start
        assert sh.tracking == CARRIER.tracking_number(sid)

    def op_policy(self, mode: str, weights: Weights) -> None:
        self.emit(ev.PolicyChanged(ts=self.now, mode=mode, weights=weights))

    def op_configure(self, name: str, reorder_point: int, extra: int, moq: int, pack: int) -> None:
        w = self.world
        changes = {
            "reorder_point": reorder_point,
            "safety_stock": reorder_point // 2,
            "order_up_to": reorder_point + extra,
            "moq": moq,
            "pack_size": pack,
        }
        s = w.sku(name)  # as SkuHandler.handle does; sku.configure may name a new SKU
        allocs = self.checked(name, lambda: sku_rules.configure(w, s, changes, self.emit, self.now))
        self.ship_orders(allocs, name)  # its settle may lend to a line that ships now

    def op_tick(self, seconds: int) -> None:
        self.now += seconds

    def op_supply(self, name: str, change: str, qty: int) -> None:
        """A buyer's or supplier's change to the SKU's first open request: re-planned at once."""
        w = self.world
        s = w.skus.get(name)
        if s is None or not s.inbound:
            return
        r = s.inbound[sorted(s.inbound)[0]]
        date = iso_ts(self.now + qty * 86400.0)[:10]
        decide = {
            "cancel": lambda: sku_rules.cancel(w, s, r.request_id, "test", self.emit, self.now),
            "close": lambda: sku_rules.close(w, s, r.request_id, "test", self.emit, self.now),
            "amend": lambda: sku_rules.amend(w, s, r.request_id, qty, self.emit, self.now),
            "acknowledge": lambda: sku_rules.acknowledge(w, s, r.request_id, qty, date, self.emit, self.now),
            "ship_notice": lambda: (
                sku_rules.ship_notice(w, s, r.request_id, f"asn-{qty % 3}", qty, date, self.emit, self.now) and []
            ),
        }[change]
        start = len(self.log)
        try:
            allocs = self.checked(name, decide)
        except Rejected as exc:
            assert exc.code in {
                "request_partly_received",
                "invalid_quantity",
                "over_ordered",
                "ship_notice_conflict",
            }, exc.code
            assert len(self.log) == start, "a refused change to a request changed state"
            return
        if change in ("cancel", "close"):
            assert r.closed_ts is not None and r.open_qty == 0
        self.ship_orders(allocs or [], name)


class BeforeLoans(NamedTuple):
    """Dates just before a settle's first loan (its allocations from stock made), as
    lending reads them that day: of each waiting line of the SKU, and of each ship-complete
    order holding units of it (the lenders are among them)."""

    lines: dict[tuple[str, int], str | None]
    orders: dict[str, str | None]


def before_loans(w: World, sku: str, today: str) -> BeforeLoans:
    s = w.skus[sku]
    lines = {(ln.order_id, ln.line_no): as_of(s.expected_date(ln), today) for ln in s.queue if ln.need > 0}
    held = {ln.order_id for ln in s.holders if w.orders[ln.order_id].spec.ship_complete}
    return BeforeLoans(lines, {oid: order_date_on(w, w.orders[oid], today) for oid in held})


def order_date_on(w: World, order: Order, today: str) -> str | None:
    """A ship-complete order's date as lending reads it on ``today`` (``as_of``)."""
    return order_date(as_of(w.skus[ln.sku].expected_date(ln), today) for ln in order.lines if ln.need > 0)


def later(date: str | None, than: str | None) -> bool:
    """``date`` is later than ``than`` ("now" is the earliest, None, no date, the latest)."""
    if than is None or date == "now":
        return False
    return date is None or than == "now" or date > than


def check_loans(w: World, new: list[ev.Event], before: BeforeLoans | None) -> set[tuple[str, int]]:
    """What one settle lent (``allocation_lent``), checked against the model after it: each
    loan is one ``allocated`` (rule ``lent``) of the same units to the borrower, which then
    has all its units and whose order ships, or, only for a split order (not ship-complete:
    it ships what it has), a part of them that ships now. No harm: no lender's order date
    and no other waiting line's date of the SKU is later than just before the loans. Each
    loan journals its lender's dates after the whole settle: its order's (``completes``)
    and its line's (``back_by``). Dates are read as lending reads them on the loan's day
    (an overdue one is that day: ``as_of``). Returns the lenders' (order_id, line_no)."""
    lenders = set()
    sku = today = ""
    for i, e in enumerate(new):
        if isinstance(e, ev.Allocated) and e.rule == sku_rules.LENT:
            lent = new[i - 1]
            assert isinstance(lent, ev.AllocationLent), "a lent allocation without its loan"
        if not isinstance(e, ev.AllocationLent):
            continue
        nxt = new[i + 1]
        assert isinstance(nxt, ev.Allocated) and nxt.rule == sku_rules.LENT
        assert (nxt.sku, nxt.order_id, nxt.line_no, nxt.qty) == (e.sku, e.to_order_id, e.to_line_no, e.qty)
        assert e.qty > 0 and e.order_id != e.to_order_id
        borrower = w.orders[e.to_order_id]
        if borrower.spec.ship_complete:  # a partial loan only to a line that ships a part
            assert borrower.lines[e.to_line_no - 1].need == 0, "lent a ship-complete line a part of its need"
            assert all(ln.need == 0 for ln in borrower.lines), "lent units to an order that cannot ship"
        lender = w.orders[e.order_id]
        assert lender.spec.ship_complete and not lender.cancelled
        sku, today = e.sku, iso_date(e.ts)
        assert e.back_by <= e.completes and today <= e.back_by, "a loan journaled an overdue date"
        after = order_date_on(w, lender, today)
        assert before is not None and not later(after, before.orders[e.order_id]), (
            "a loan made the lender's order date later"
        )
        back = as_of(w.skus[e.sku].expected_date(lender.lines[e.line_no - 1]), today)
        if any(isinstance(x, ev.RequestRaised) for x in new):
            # the same or earlier: the settle's reorder may bring them forward
            assert not later(after, e.completes) and not later(back, e.back_by), (
                "a lender's date came out later than its loan journaled"
            )
        else:  # the dates after the whole settle, other loans to the same borrower included
            assert after == e.completes, "a loan journaled another date than its lender's order has"
            assert back == e.back_by, "a loan journaled another date than its lender's line has"
        lenders.add((e.order_id, e.line_no))
    if lenders:
        assert before is not None
        s = w.skus[sku]
        for ln in s.queue:
            key = (ln.order_id, ln.line_no)
            if ln.need > 0 and key not in lenders and key in before.lines:
                assert not later(as_of(s.expected_date(ln), today), before.lines[key]), (
                    f"a loan made {key}'s date later"
                )
    return lenders


def service_key(world: World, line: Line) -> tuple:
    """The order of service, computed afresh (never the key cached on the line).

    FIFO: order time, then arrival. Priority: higher static score first (the age term is
    common to all waiting lines), then arrival.
    """
    if world.mode == "fifo":
        return (line.t_order, line.arrival)
    w = world.weights
    score = w.rush * line.rush + w.value * line.value - w.age * (line.t_order / HOUR)
    return (-score, line.arrival)


def check_invariants(w: World, log: list[ev.Event]) -> None:
    lines_by_sku: dict[str, list[Line]] = {name: [] for name in w.skus}
    for o in w.orders.values():
        for ln in o.shipping_lines:
            lines_by_sku[ln.sku].append(ln)

    # what the log says, independently of the model's counters
    received, adjusted, shipped = Counter(), Counter(), Counter()
    shipped_line, ship_events = Counter(), Counter()
    counted: Counter[str] = Counter()  # units counted against each request
    for e in log:
        if isinstance(e, ev.Received):
            received[e.sku] += e.qty
            if e.request_id is not None:
                counted[e.request_id] += e.qty
            for m in e.matched:
                counted[m.request_id] += m.qty
            # every unit of a receipt is counted against a request, or none is (no open one)
            assert e.request_id is not None or not e.matched or sum(m.qty for m in e.matched) == e.qty
        elif isinstance(e, ev.Adjusted):
            adjusted[e.sku] += e.delta
        elif isinstance(e, ev.UnitsShipped):
            shipped[e.sku] += e.qty
            shipped_line[(e.order_id, e.line_no)] += e.qty
        elif isinstance(e, ev.ShipmentShipped):
            ship_events[e.shipment_id] += 1

    for name, s in w.skus.items():
        # 1. conservation (opening stock is 0)
        assert s.on_hand == s.received + s.adjusted - s.shipped, name
        assert s.on_hand == received[name] + adjusted[name] - shipped[name], name
        assert s.on_hand >= 0
        # 2. no over-allocation
        assert 0 <= s.allocated <= s.on_hand, (name, s.allocated, s.on_hand)
        assert s.allocated == sum(ln.allocated for ln in lines_by_sku[name]), name
        assert s.backordered == sum(ln.need for ln in s.queue), name
        assert s.backordered == sum(ln.need for ln in lines_by_sku[name]), name
        # the queue holds exactly the waiting lines, in service order
        queue = list(s.queue)
        assert all(ln.need > 0 for ln in queue), name
        assert {id(ln) for ln in queue} == {id(ln) for ln in lines_by_sku[name] if ln.need > 0}, name
        keys = [service_key(w, ln) for ln in queue]
        assert keys == sorted(keys), f"queue of {name} is not in service order"
        assert s.inbound_qty == sum(r.open_qty for r in s.inbound.values()) >= 0
        assert all(r.closed_ts is None and r.status == "open" for r in s.inbound.values()), name
    for r in w.requests.values():  # receipts are never lost nor counted twice against requests
        assert r.received == counted[r.request_id], r.request_id
        assert (r.closed_ts is None) == (r.status == "open") and (
            r.status != "open" or r.request_id in w.skus[r.sku].inbound
        )
        assert sku_rules.reorder_quantity(s) == 0, name

    picking = Counter()
    for sh in w.shipments.values():
        if sh.status == "picking":
            for line_no, _sku, qty in sh.items:
                picking[(sh.order_id, line_no)] += qty
    for o in w.orders.values():
        for ln in o.shipping_lines:
            # 2. per line
            assert ln.allocated >= 0 and ln.shipped >= 0
            assert ln.allocated + ln.shipped <= ln.qty, (o.order_id, ln.line_no)
            assert 0 <= ln.in_shipment <= ln.allocated
            assert ln.in_shipment == picking[(o.order_id, ln.line_no)]
            # 3. shipped per line <= ordered, and exactly what its shipments carried
            assert ln.shipped <= ln.qty
            assert ln.shipped == shipped_line[(o.order_id, ln.line_no)]
            if ln.cancelled:
                assert ln.allocated == 0 and ln.need == 0
        for sid in o.shipments:
            assert all(qty > 0 for _, _, qty in w.shipments[sid].items)
        if o.spec.ship_complete and o.shipments and not o.cancelled:
            # ship-complete: one shipment, made only once every line was allocated (counts
            # never take back units that are in a shipment, so none is short afterwards)
            assert len(o.shipments) == 1
            assert all(ln.need == 0 for ln in o.shipping_lines), o.order_id
    # 3. each shipment shipped at most once
    assert all(n == 1 for n in ship_events.values()), ship_events
    for sid, sh in w.shipments.items():
        assert (sh.status == "shipped") == (ship_events[sid] == 1), sid
    assert w.double_shipments == 0
    assert not w.inaccurate_orders


def snapshot(w: World) -> dict:
    """Everything a replay must reproduce."""
    return {
        "skus": {
            name: (
                s.on_hand,
                s.allocated,
                s.backordered,
                s.inbound_qty,
                s.received,
                s.adjusted,
                s.shipped,
                s.available,
                s.position,
                msgspec.to_builtins(s.policy),
                s.known,
                [(ln.order_id, ln.line_no) for ln in s.queue],
                sorted(s.inbound),
            )
            for name, s in w.skus.items()
        },
        "lines": {
            (o.order_id, ln.line_no): (
                ln.allocated,
                ln.in_shipment,
                ln.shipped,
                ln.cancelled,
                ln.need,
                ln.decided,
                ln.backordered_at_entry,
                ln.rule,
                ln.rank,
                ln.t_order,
                ln.arrival,
                ln.unit_price,
            )
            for o in w.orders.values()
            for ln in o.lines
        },
        "orders": {oid: (o.status(w.shipments), o.shipments, o.cancelled) for oid, o in w.orders.items()},
        "shipments": {
            sid: (sh.status, sh.items, sh.tracking, sh.label_zpl, sh.shipped_ts) for sid, sh in w.shipments.items()
        },
        "requests": {
            rid: (r.qty, r.received, r.closed_ts, r.expected_date, r.kind, r.source) for rid, r in w.requests.items()
        },
        "kpi": (
            w.bo_lines,
            w.bo_filled,
            w.bo_cancelled,
            w.lead_time_h_sum,
            w.lead_time_n,
            w.orders_shipped,
            sorted(w.inaccurate_orders),
            w.double_shipments,
            w.notices_queued,
            dict(w.shipped_by_day),
        ),
        "kpi_days": sorted(w.kpi.dump()["days"]),
        "kpi_pending": w.kpi.dump()["pending"],
        "ids": (w.n_orders, w.n_shipments, w.n_requests, w.n_notices, w.arrivals, dict(w.by_key)),
        "policy": (w.mode, msgspec.to_builtins(w.weights)),
    }


def replayed(settings: Settings, log: list[ev.Event]) -> World:
    fresh = World(settings)
    for e in log:
        fresh.evolve(ev.EVENT_DECODER.decode(ev.EVENT_ENCODER.encode(e)))
    return fresh


PROPS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPS
@given(
    mode=st.sampled_from(["fifo", "priority"]),
    weights=weights_st,
    auto_pick=st.booleans(),
    ops=st.lists(st.lists(op_st, min_size=1, max_size=10), min_size=1, max_size=12),
)
def test_rules_keep_invariants_and_replay_identically(mode, weights, auto_pick, ops):
    sim = Sim(mode, weights, auto_pick)
    for op in (op for chunk in ops for op in chunk):  # chunks: long runs that still shrink to one op
        sim.run(op)
    assert snapshot(replayed(sim.settings, sim.log)) == snapshot(sim.world)


@PROPS
@given(
    mode=st.sampled_from(["fifo", "priority"]),
    weights=weights_st,
    ops=st.lists(st.lists(op_st, min_size=1, max_size=10), min_size=1, max_size=12),
)
def test_a_journal_of_single_allocated_and_shipment_events_replays_to_the_same_model(mode, weights, ops):
    """Journals before ``lines_allocated`` and ``shipments_created`` hold one ``allocated``
    event per line and one ``shipment_created`` per shipment: the same history written that
    way replays to the same model (queues, shipments, KPIs, counters)."""
    sim = Sim(mode, weights, False)
    for op in (op for chunk in ops for op in chunk):
        sim.run(op)
    old = [
        one for e in sim.log for one in (ev.parts(e) if isinstance(e, ev.LinesAllocated | ev.ShipmentsCreated) else [e])
    ]
    assert snapshot(replayed(sim.settings, old)) == snapshot(sim.world)


def test_two_loans_to_one_borrower_leave_each_lender_at_the_date_the_loan_journaled():
    """Found by the property above (CI, 2026-12-07). One settle lends a rush order's line
    (ahead of both lenders in service order) 1 unit from O0000003 and 2 from O0000002. The
    second loan takes 2 units of need from in front of O0000003's waiting line, whose date
    moves from 2023-11-17 (its order's date when its own loan was checked) to 2023-11-15:
    each loan journals its lender's dates after the whole settle, the dates the model has."""
    sim = Sim("fifo", Weights(rush=0.0, value=0.0, age=0.0), False)
    loans: list[tuple[str, str, str | None]] = []  # (lender, completes journaled, its date after the settle)
    for op in [
        ("supply", "A", "ship_notice", 1),
        ("submit", 0, [("A", 1, Decimal("0"), True)], True, False, None),
        (
            "submit",
            3,
            [("A", 4, Decimal("0"), True), ("A", 4, Decimal("0"), True), ("C", 1, Decimal("0"), True)],
            True,
            False,
            None,
        ),
        ("submit", 2, [("A", 3, Decimal("0"), True), ("A", 3, Decimal("0"), True)], True, True, None),
        ("receive", "A", 8, 0),
        ("cancel", 0),
        ("adjust", "A", "delta", 4),
        ("policy", "priority", Weights(rush=1.0, value=0.01, age=0.0)),
        ("submit", 1, [("A", 3, Decimal("0.01"), True)], True, True, None),
    ]:
        start = len(sim.log)
        sim.run(op)
        w = sim.world
        for e in sim.log[start:]:
            if isinstance(e, ev.AllocationLent):
                loans.append((e.order_id, e.completes, order_date_on(w, w.orders[e.order_id], iso_date(e.ts))))
    # O0000003's order date after both loans, earlier than when its loan was checked
    assert [(lender, completes) for lender, completes, _ in loans] == [
        ("O0000003", "2023-11-15"),
        ("O0000002", "2023-11-21"),
    ]
    assert all(after == completes for _, completes, after in loans), loans


@PROPS
@given(
    ops=st.lists(
        st.one_of(
            st.tuples(
                st.just("submit"),
                st.integers(0, 1000),
                st.lists(
                    st.tuples(st.just("A"), st.integers(1, 4), st.sampled_from(PRICES), st.just(True)),
                    min_size=1,
                    max_size=2,
                ),
                st.booleans(),
                st.booleans(),
                st.just(None),
            ),
            st.tuples(st.just("receive"), st.just("A"), st.integers(1, 6), st.integers(0, 2)),
            st.tuples(st.just("tick"), st.sampled_from([60, 3600])),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_single_hot_sku_fifo_serves_in_order_time_then_arrival(ops):
    """FIFO on one SKU with no cancels or counts: the lines that got units are exactly the
    first ones in (order time, arrival) order, each filled before the next gets any; unless
    a partly served ship-complete order lent its units to a later line that ships now
    (``allocation_lent``: Sim.checked then checked every settle's order of service)."""
    sim = Sim("fifo", Weights())
    for op in ops:
        sim.run(op)
    w = sim.world
    lines = sorted((ln for o in w.orders.values() for ln in o.shipping_lines), key=lambda ln: (ln.t_order, ln.arrival))
    served = [ln.allocated + ln.shipped for ln in lines]
    assert sum(served) == min(w.skus["A"].received, sum(ln.qty for ln in lines))
    if any(isinstance(e, ev.AllocationLent) for e in sim.log):
        return
    # a prefix of full lines, at most one partial line, then nothing
    i = 0
    while i < len(lines) and served[i] == lines[i].qty:
        i += 1
    assert all(x == 0 for x in served[i + 1 :]), served


# ship-complete orders for A that also wait for B (never received) hold A's units without
# a shipment, so counts can take them back and they queue again
hot_submit_st = st.tuples(
    st.just("submit"),
    st.integers(0, 1000),
    st.lists(
        st.tuples(st.sampled_from(["A", "A", "B"]), st.integers(1, 3), st.sampled_from(PRICES), st.just(True)),
        min_size=1,
        max_size=3,
    ),
    st.sampled_from([True, True, False]),
    st.booleans(),
    st.sampled_from([None, 0, 3600, 7200]),
)
hot_receive_st = st.tuples(st.just("receive"), st.just("A"), st.integers(1, 6), st.just(0))
hot_count_st = st.tuples(
    st.just("adjust"), st.just("A"), st.sampled_from(["near_allocated", "near_picking"]), st.integers(-3, 3)
)
hot_policy_st = st.tuples(st.just("policy"), st.sampled_from(["fifo", "priority"]), weights_st)
hot_op_st = st.one_of(
    hot_submit_st,
    hot_submit_st,
    hot_submit_st,
    hot_receive_st,
    hot_receive_st,
    hot_count_st,
    hot_count_st,
    hot_policy_st,
    hot_policy_st,
    st.tuples(st.just("cancel"), st.integers(0, 40)),
    st.tuples(st.just("tick"), st.sampled_from([60, 3600])),
)


@PROPS
@given(
    mode=st.sampled_from(["fifo", "priority"]),
    weights=weights_st,
    ops=st.lists(st.lists(hot_op_st, min_size=1, max_size=8), min_size=1, max_size=8),
)
def test_counts_and_policy_changes_keep_service_order(mode, weights, ops):
    """Lines that lose units to a count, cancels and policy switches on one hot SKU: the
    queue stays in the current service order (the invariant checks run after each step)."""
    sim = Sim(mode, weights)
    for op in (op for chunk in ops for op in chunk):
        sim.run(op)  # checks every invariant after each step
    a = sim.world.skus.get("A")
    if a is not None:  # and, explicitly at the end: A's queue is in the current service order
        keys = [service_key(sim.world, ln) for ln in a.queue]
        assert keys == sorted(keys)
        assert a.available <= 0 or not a.queue  # nothing waits while units are free


def test_replay_round_trip_keeps_money_and_ids_exact():
    sim = Sim("fifo", Weights())
    sim.run(("submit", 1, [("A", 2, Decimal("19.99"), True), ("C", 1, Decimal("0.01"), False)], False, True, None))
    sim.run(("receive", "A", 12, 0))
    decoded = [ev.EVENT_DECODER.decode(ev.EVENT_ENCODER.encode(e)) for e in sim.log]
    assert decoded == sim.log
    order = next(e for e in decoded if isinstance(e, ev.OrderReceived)).order
    assert order.lines[0].unit_price == Decimal("19.99")
    assert isinstance(order.lines[0].unit_price, Decimal)


# --- regressions found by the properties above, as plain examples -------------------


def test_a_count_takes_units_back_from_the_line_last_in_current_service_order():
    """Two ship-complete orders hold one unit of A each (both wait for B). O1 was served
    under FIFO, O2 an hour later under priority. A count finds one unit missing: O2 is
    last in service order under either rule (same rush and value, newer), so O2 gives its
    unit back and O1 keeps it."""
    same = Weights(rush=0.0, value=0.0, age=1.0)
    sim = Sim("fifo", same)
    w = sim.world
    sim.run(("submit", 1, [("A", 1, Decimal("1"), True), ("B", 1, Decimal("1"), True)], True, False, None))
    sim.run(("receive", "A", 1, 0))
    sim.run(("policy", "priority", same))
    sim.run(("tick", 3600))
    sim.run(("submit", 2, [("A", 1, Decimal("1"), True), ("B", 1, Decimal("1"), True)], True, False, None))
    sim.run(("receive", "A", 1, 0))
    a1, a2 = w.orders["O0000001"].lines[0], w.orders["O0000002"].lines[0]
    assert (a1.allocated, a1.in_shipment, a2.allocated, a2.in_shipment) == (1, 0, 1, 0)
    start = len(sim.log)
    sku_rules.adjust(w, w.skus["A"], -1, None, "one missing", sim.emit, sim.now)
    taken = [(e.order_id, e.qty) for e in sim.log[start:] if isinstance(e, ev.Deallocated)]
    assert taken == [("O0000002", 1)]
    assert (a1.allocated, a2.allocated) == (1, 0)


@pytest.mark.parametrize(
    ("before", "after", "o2_rush", "first"),
    [
        ("fifo", "priority", False, "O0000001"),  # same rush and value: the older line ranks higher
        ("fifo", "priority", True, "O0000002"),  # O2 is rush: first under priority, not under FIFO
        ("priority", "fifo", True, "O0000001"),  # O1 came first: first in FIFO, not under priority
    ],
)
def test_units_taken_back_by_a_count_rejoin_the_queue_in_current_service_order(before, after, o2_rush, first):
    """A line fully allocated under one mode and deallocated by a count after the mode
    changed must wait in the *current* service order (invariant 6).

    Only units not yet in a picking shipment can be taken back, so the first order is
    ship-complete and waits for its second SKU.
    """
    same = Weights(rush=100.0, value=0.0, age=1.0)  # rank = hours waited, unless rush
    sim = Sim(before, same)
    w = sim.world
    sim.run(("receive", "A", 1, 0))
    sim.run(("submit", 1, [("A", 1, Decimal("1"), True), ("B", 1, Decimal("1"), True)], True, False, None))
    line1 = w.orders["O0000001"].lines[0]
    assert (line1.allocated, line1.in_shipment) == (1, 0)  # held for the ship-complete order
    sim.emit(ev.PolicyChanged(ts=sim.now, mode=after, weights=same))
    sim.now += 3600
    sim.run(("submit", 2, [("A", 1, Decimal("1"), True)], False, o2_rush, None))  # O2 waits
    sku = w.skus["A"]
    sku_rules.adjust(w, sku, None, 0, "count", sim.emit, sim.now)  # O1's unit is taken back
    expected = [first, ({"O0000001", "O0000002"} - {first}).pop()]
    assert [ln.order_id for ln in sku.queue] == expected
    allocs = sku_rules.receive(w, sku, 1, None, sim.emit, sim.now + 1)
    assert [(a.order_id, a.qty) for a in allocs] == [(first, 1)]
