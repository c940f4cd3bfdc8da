"""Every figure of a lab run, from the daemon's journal file alone.

The journal's ``events`` table is read after the run (or while its daemon still serves:
SQLite's WAL lets a reader in) and each body is decoded with the daemon's own replay
decoder (``events.EVENT_DECODER``), so a figure means exactly what the journal says.
Nothing is asked of the daemon. The scenario's window (``measure_from`` .. ``end``) is the
only outside input: the figures cover orders received in it, and time-weighted stock
over it, so the warm-up that every policy shares is left out.

Figures (docs/lab.md has the formulas):
  fill_rate           units allocated in the settle of their order / units ordered
  lines_backordered   share of order lines that got a ``line_backordered``
  backorder_age_*     order time -> the line fully allocated, over backordered lines (a
                      line never filled counts to its cancellation or the window's end)
  on_hand_units/value time-weighted mean over the window, all SKUs (value at the SKU's
                      mean selling price in the journal's order lines)
  purchase_orders     ``request_raised`` in the window
  reorder_lead_days   raise -> the receipt that completed it
  shipped_by_promise  share of promised lines shipped in full by the end of their first
                      promised day, of those whose day ended in the run (or shipped) and
                      that were not cancelled before it; "n/a" when the journal has no
                      ``lines_promised`` events
  late_lines_told_in_time  of those not shipped by their promise: the share given a
                      ``delay`` notice naming the line before their promised day ended
  promise_calibration  the same judged lines by the confidence of their first promise
                      (buckets ``CONFIDENCE_BUCKETS``): lines, mean confidence, share
                      shipped by promise; and ``promise_brier`` (mean of (confidence -
                      kept)^2, kept = 1 when shipped by promise, else 0; lower is better)
  stranded_*          units of a SKU held for a ship-complete order that is not complete
                      while a line of that SKU that could ship with them waits (its
                      order is not ship-complete, or its other lines have their units):
                      at each receipt, after its step, up to the units received
                      (``stranded_received_units``, ``_share`` of units received), and
                      summed at each day boundary (``stranded_unit_days``)
  stranded_expected_* the issue's figure: the same, counting only units held for an
                      order that cannot complete before the supply that would give them
                      back, by the dates expected at that moment (the dates the daemon
                      tells: its model replayed from the journal up to the moment, an
                      overdue date read as that day): a loan of them would not move the
                      order's date, which is the issue's no-harm rule
  stranded_past_supply_*  the same judged with hindsight: units held for an order that
                      did not complete before that SKU's next receipt arrived (the
                      receipts and completions that came, not the dates expected)
and the DESIGN.md invariants the journal can show (``invariants``).
"""

from __future__ import annotations

import bisect
import hashlib
import heapq
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from backorder.actors import events as ev
from backorder.actors.allocation_plan import as_of, order_date
from backorder.actors.model import World
from backorder.actors.queue_index import covering_date
from backorder.config.settings import Settings
from backorder.timeutil import iso_date, parse_ts

DAY = 86400.0


@dataclass(slots=True)
class _Line:
    key: tuple[int, int]  # (seq of its order_received, line_no): FIFO's order of service
    order_id: str
    line_no: int
    sku: str
    qty: int
    ts: float
    measured: bool
    backordered: int = 0  # units short in the settle of its order
    served: int = 0  # allocated, net of deallocations (shipped units stay served)
    reserved: int = 0  # allocated and not yet shipped
    shipped: int = 0
    filled_ts: float | None = None
    closed_ts: float | None = None  # cancelled before it was filled
    released: bool = False  # cancelled (a line filled once may wait again: a count, a loan)
    shipped_ts: float | None = None  # the last of its units shipped
    promised_by: float | None = None  # the end of its first promised ship-by day
    confidence: float | None = None  # the confidence its first promise was given
    cancelled_ts: float | None = None  # its order was cancelled before it shipped

    @property
    def need(self) -> int:
        return self.qty - self.served


@dataclass(slots=True)
class _Invariant:
    violations: int = 0
    example: str = ""

    def fail(self, what: str) -> None:
        if not self.violations:
            self.example = what
        self.violations += 1


INVARIANTS = (
    "journal_decodes",  # every event decodes with the replay decoder (DESIGN 8)
    "stock_never_negative",  # on hand >= 0 at every event (DESIGN 1)
    "no_over_allocation",  # allocated <= on hand per SKU; per line served <= ordered (DESIGN 2)
    "no_double_shipment",  # a shipment ships once; shipped per line <= ordered (DESIGN 3)
    "fifo_order_of_service",  # under FIFO no unit goes to a later line while an earlier waits (DESIGN 6)
)


@dataclass(slots=True)
class _Strand:
    """A moment with stranded units (``_State.stranded`` > 0), kept to be judged at the end:
    which orders held how many units, how many a waiting line could ship, and the cap."""

    sku: str
    ts: float
    before_events: bool  # a day boundary (taken before that instant's events), not a step's end
    held: dict[str, int]  # order_id -> units held
    split: int  # units waiting lines of orders that ship what they have could ship with
    whole: list[int]  # the needs of ship-complete orders' last waiting lines (all or nothing)
    cap: int | None  # the units received (a receipt's), None at a day boundary
    expected: set[str]  # orders that cannot complete before their units' next supply, as expected then

    def count(self, held: int) -> int:
        """Stranded units of ``held``: at most what waiting lines could ship with them (a
        ship-complete order's line only if they cover its whole need), at most ``cap``."""
        shippable = self.split + sum(need for need in self.whole if need <= held)
        out = min(held, shippable)
        return out if self.cap is None else min(out, self.cap)


@dataclass(slots=True)
class _State:
    measure_from: float
    end: float
    # the daemon's model, replayed event by event: the dates expected at each moment
    # (``stranded_expected_*``); None when no figure needs them (``final_stock``)
    world: World | None = None
    world_failed: str = ""  # why the model stopped replaying (the expected figures are "n/a")
    lines: dict[tuple[str, int], _Line] = field(default_factory=dict)
    on_hand: dict[str, int] = field(default_factory=dict)
    allocated: dict[str, int] = field(default_factory=dict)
    stock_since: dict[str, float] = field(default_factory=dict)
    unit_time: dict[str, float] = field(default_factory=dict)  # unit-seconds in the window
    prices: dict[str, list[float]] = field(default_factory=dict)
    shipped: set[str] = field(default_factory=set)
    requests: dict[str, tuple[float, int, float | None]] = field(default_factory=dict)  # raised, qty, closed
    request_received: dict[str, int] = field(default_factory=dict)
    waiting: dict[str, list[tuple[tuple[int, int], str, int]]] = field(default_factory=dict)  # FIFO heaps
    promised: dict[tuple[str, int], float] = field(default_factory=dict)
    promise_events: int = 0
    delay_told: dict[tuple[str, int], float] = field(default_factory=dict)  # first delay notice naming a line
    customer_notices: int = 0  # none: the run routed no notices (lab --notices), nothing to judge
    cancelled_orders: int = 0
    # stranded units: each order's lines and flag, the lines of each SKU not yet done
    orders: dict[str, tuple[bool, list[_Line]]] = field(default_factory=dict)
    open_lines: dict[str, dict[tuple[str, int], _Line]] = field(default_factory=dict)
    receipts: list[tuple[str, int]] = field(default_factory=list)  # this step's, judged at its end
    step_ts: float | None = None
    next_day: float | None = None
    received_measured: int = 0
    stranded_received: int = 0
    stranded_unit_days: int = 0
    # the narrower count needs what came after: each stranded moment is kept
    # (``_Strand``) and judged at the end against the orders' completions and the receipts
    strands: list[_Strand] = field(default_factory=list)
    complete: set[str] = field(default_factory=set)  # ship-complete orders whose lines have their units
    completions: dict[str, list[float]] = field(default_factory=dict)  # when each became complete
    receipt_ts: dict[str, list[float]] = field(default_factory=dict)  # every receipt of each SKU
    events: int = 0
    inv: dict[str, _Invariant] = field(default_factory=lambda: {name: _Invariant() for name in INVARIANTS})

    # --- stock over time -------------------------------------------------------------
    def _clip(self, ts: float) -> float:
        return min(max(ts, self.measure_from), self.end)

    def stock(self, sku: str, delta: int, ts: float) -> None:
        before = self.on_hand.get(sku, 0)
        since = self.stock_since.get(sku, ts)
        self.unit_time[sku] = self.unit_time.get(sku, 0.0) + before * (self._clip(ts) - self._clip(since))
        self.stock_since[sku] = ts
        self.on_hand[sku] = before + delta
        if before + delta < 0:
            self.inv["stock_never_negative"].fail(f"{sku} on hand {before + delta} at {ts}")

    def check_allocation(self, sku: str, ts: float) -> None:
        allocated, on_hand = self.allocated.get(sku, 0), self.on_hand.get(sku, 0)
        if allocated > max(on_hand, 0):  # (stock below zero is its own invariant)
            self.inv["no_over_allocation"].fail(f"{sku}: {allocated} allocated > {on_hand} on hand at {ts}")

    def finish(self) -> None:
        self.clock(float("inf"))
        for sku in list(self.on_hand):
            self.stock(sku, 0, self.end)

    # --- one event ------------------------------------------------------------------
    # --- stranded units -----------------------------------------------------------
    def stranded(self, sku: str, ts: float, cap: int | None) -> int:
        """Units of ``sku`` held for incomplete ship-complete orders that a waiting line
        of another order, able to ship with them, could have had (the smaller of the two,
        at most ``cap``); a moment with some is kept for ``past_supply`` and judged by
        the dates expected now (``_expected``)."""
        holding: dict[str, int] = {}
        waiting: list[_Line] = []
        for line in self.open_lines.get(sku, {}).values():
            ship_complete, lines = self.orders[line.order_id]
            if line.released or line.cancelled_ts is not None:
                continue
            others_done = all(o is line or o.need <= 0 or o.released for o in lines)
            if ship_complete and line.reserved > 0 and not (line.need <= 0 and others_done):
                holding[line.order_id] = holding.get(line.order_id, 0) + line.reserved
            if line.need > 0 and (not ship_complete or others_done):
                waiting.append(line)
        if not holding:
            return 0
        split = sum(line.need for line in waiting if line.order_id not in holding and not self.orders[line.order_id][0])
        whole = [line.need for line in waiting if line.order_id not in holding and self.orders[line.order_id][0]]
        strand = _Strand(sku, ts, cap is None, holding, split, whole, cap, set())
        out = strand.count(sum(holding.values()))
        if out > 0:
            strand.expected = self._expected(strand)
            self.strands.append(strand)
        return out

    def _expected(self, strand: _Strand) -> set[str]:
        """The orders of ``strand`` that cannot complete before the supply that would give
        their units back, by the dates the daemon's model expects at that moment: the
        order's date (the latest of its waiting lines') is no earlier than the date that
        covers its units were it to wait for them again in its own place (a loan of them
        would not move it). Dates before the moment's day (overdue supply) read as that
        day (a day boundary's: the day it closes); an order some line of which no open
        supply covers counts (it cannot complete before a supply that is not yet raised);
        units no open supply would give back do not (a loan would leave the order without
        a date)."""
        world = self.world
        if world is None:
            return set()
        # a day boundary is the state the day just ended left (taken before that instant's
        # events): judged by that day's dates, not by the new day's, which no settle saw yet
        today = iso_date(strand.ts - 1.0 if strand.before_events else strand.ts)
        s = world.skus[strand.sku]
        free = max(s.available, 0)
        out = set()
        for order_id, units in strand.held.items():
            order = world.orders.get(order_id)
            if order is None:
                continue
            mine = [ln for ln in order.shipping_lines if ln.sku == strand.sku and not ln.cancelled]
            dates = [
                as_of(world.skus[ln.sku].expected_date(ln), today) if ln.qtoken else None
                for ln in order.shipping_lines
                if ln.need > 0 and not ln.cancelled
            ]
            completes = order_date(dates)
            if not mine or completes == "now":
                continue
            key = min(ln.key if ln.qtoken else world.queue_key(ln) for ln in mine)  # its own place
            ahead = 0
            for ln in s.queue.lines():  # in service order: the units waiting ahead of that place
                if ln.key >= key:
                    break
                ahead += ln.need if ln.order_id != order_id else 0
            back = as_of(covering_date(free, s.supply(), ahead + sum(ln.need for ln in mine) + units), today)
            if back is not None and (completes is None or back == "now" or back <= completes):
                out.add(order_id)
        return out

    def past_supply(self, strand: _Strand) -> int:
        """The stranded units of ``strand`` counting only orders that could not complete
        before the SKU's next receipt: an order's next completion (all its lines with their
        units) came at or after that receipt, or never. With no later receipt in the
        journal, only an order that never completed counts."""
        after = bisect.bisect_left if strand.before_events else bisect.bisect_right
        receipts = self.receipt_ts.get(strand.sku, [])
        i = after(receipts, strand.ts)
        supply = receipts[i] if i < len(receipts) else None
        held = 0
        for order_id, units in strand.held.items():
            done = self.completions.get(order_id, [])
            j = after(done, strand.ts)
            completes = done[j] if j < len(done) else None
            if completes is None or (supply is not None and completes >= supply):
                held += units
        return strand.count(held)

    def note_completion(self, order_id: str, ts: float) -> None:
        """After an event that changed ``order_id``'s units: record when a ship-complete
        order gets all its units (it could ship)."""
        entry = self.orders.get(order_id)
        if entry is None or not entry[0]:
            return
        done = all(line.need <= 0 or line.released for line in entry[1])
        if done and order_id not in self.complete:
            self.complete.add(order_id)
            self.completions.setdefault(order_id, []).append(ts)
        elif not done:
            self.complete.discard(order_id)

    def clock(self, ts: float) -> None:
        """Before an event at ``ts``: judge the receipts of the step that ended, and each
        day boundary passed (the moments the stranded figures are taken at)."""
        if self.step_ts is not None and ts > self.step_ts:
            for sku, qty in self.receipts:
                self.stranded_received += self.stranded(sku, self.step_ts, qty)
            self.receipts.clear()
        self.step_ts = ts
        if self.next_day is None:
            self.next_day = (self.measure_from // DAY + 1) * DAY
        while self.next_day <= min(ts, self.end):
            if self.next_day > self.measure_from:
                self.stranded_unit_days += sum(self.stranded(sku, self.next_day, None) for sku in self.open_lines)
            self.next_day += DAY

    def _done(self, line: _Line) -> None:
        self.open_lines.get(line.sku, {}).pop((line.order_id, line.line_no), None)

    def apply(self, seq: int, e: ev.Event) -> None:
        self.events += 1
        self.clock(e.ts)
        if self.world is not None:  # after ``clock``: a moment is judged before the next event
            try:
                self.world.evolve(e)
            except (KeyError, ValueError, AttributeError, TypeError) as exc:
                # a journal the daemon's model cannot replay (a hand-made one: ids of
                # another form, a shipment never created): no expected dates to judge by
                self.world, self.world_failed = None, f"{ev.tag_of(e)} at seq {seq}: {exc!r}"
        if isinstance(e, ev.OrderReceived):
            self._order(seq, e)
        elif isinstance(e, ev.LineBackordered):
            line = self.lines.get((e.order_id, e.line_no))
            if line is not None and not line.backordered:
                line.backordered = e.qty
        elif isinstance(e, ev.LinesAllocated):
            for one in ev.allocations(e):
                self._allocated(one)
                self.note_completion(one.order_id, e.ts)
        elif isinstance(e, ev.Allocated):
            self._allocated(e)
            self.note_completion(e.order_id, e.ts)
        elif isinstance(e, ev.Deallocated | ev.AllocationLent):  # a loan: the lender waits again
            line = self.lines.get((e.order_id, e.line_no))
            self.allocated[e.sku] = self.allocated.get(e.sku, 0) - e.qty
            if line is not None:
                line.served -= e.qty
                line.reserved -= e.qty
                heapq.heappush(self.waiting.setdefault(e.sku, []), (line.key, e.order_id, e.line_no))
            self.note_completion(e.order_id, e.ts)
        elif isinstance(e, ev.LineReleased):
            line = self.lines.get((e.order_id, e.line_no))
            self.allocated[e.sku] = self.allocated.get(e.sku, 0) - e.freed
            if line is not None:
                line.reserved -= e.freed
                line.released = True
                if line.filled_ts is None:
                    line.closed_ts = e.ts
            self.note_completion(e.order_id, e.ts)
        elif isinstance(e, ev.NoticeQueued):
            self.customer_notices += e.audience == "customer"
            if e.kind == "delay" and e.order_id is not None:
                for li in e.data.get("lines", ()):
                    self.delay_told.setdefault((e.order_id, li.get("line_no", 0)), e.ts)
        elif isinstance(e, ev.OrderCancelled):
            self.cancelled_orders += self.measure_from <= e.ts < self.end
            n = 1
            while (line := self.lines.get((e.order_id, n))) is not None or n == 1:
                if line is not None and line.shipped_ts is None and line.cancelled_ts is None:
                    line.cancelled_ts = e.ts
                    self._done(line)
                n += 1
        elif isinstance(e, ev.Received):
            self.stock(e.sku, e.qty, e.ts)
            self.receipt_ts.setdefault(e.sku, []).append(e.ts)
            if self.measure_from <= e.ts < self.end:
                self.received_measured += e.qty
                self.receipts.append((e.sku, e.qty))
            if e.request_id is not None and e.request_id in self.requests:
                got = self.request_received.get(e.request_id, 0) + e.qty
                self.request_received[e.request_id] = got
                raised, qty, closed = self.requests[e.request_id]
                if closed is None and got >= qty:
                    self.requests[e.request_id] = (raised, qty, e.ts)
        elif isinstance(e, ev.Adjusted):
            self.stock(e.sku, e.delta, e.ts)
            self.check_allocation(e.sku, e.ts)
        elif isinstance(e, ev.UnitsShipped):
            self._units_shipped(e)
        elif isinstance(e, ev.ShipmentShipped):
            if e.shipment_id in self.shipped:
                self.inv["no_double_shipment"].fail(f"shipment {e.shipment_id} shipped twice")
            self.shipped.add(e.shipment_id)
        elif isinstance(e, ev.RequestRaised):
            self.requests[e.request_id] = (e.ts, e.qty, None)
        elif isinstance(e, ev.OrderAmended):
            for n, rec in enumerate(e.lines, start=1):
                line = self.lines.get((e.order_id, n))
                if line is not None:
                    line.qty = rec.qty
            self.note_completion(e.order_id, e.ts)

    def promise(self, e: ev.Event) -> None:
        """A ``lines_promised`` event (order_id and, per line, line_no and the ship-by
        ``date``): each line's first promise is the one it is held to."""
        self.promise_events += 1
        order_id = getattr(e, "order_id", "")
        for li in getattr(e, "lines", ()):
            line = self.lines.get((order_id, getattr(li, "line_no", 0)))
            date = getattr(li, "date", None)
            if line is None or line.promised_by is not None or not isinstance(date, str):
                continue
            try:
                line.promised_by = parse_ts(date[:10]) + DAY  # shipped any time on the day counts
            except ValueError:
                continue
            conf = getattr(li, "confidence", None)
            line.confidence = float(conf) if isinstance(conf, (int, float)) else None

    def _order(self, seq: int, e: ev.OrderReceived) -> None:
        measured = self.measure_from <= e.ts < self.end
        lines: list[_Line] = []
        self.orders[e.order_id] = (e.order.ship_complete, lines)
        for n, rec in enumerate(e.order.lines, start=1):
            if not rec.requires_shipping:
                continue
            line = _Line((seq, n), e.order_id, n, rec.sku, rec.qty, e.ts, measured)
            self.lines[(e.order_id, n)] = line
            lines.append(line)
            self.open_lines.setdefault(rec.sku, {})[(e.order_id, n)] = line
            self.prices.setdefault(rec.sku, []).append(float(rec.unit_price))
            if not e.order.hold:
                heapq.heappush(self.waiting.setdefault(rec.sku, []), (line.key, e.order_id, n))

    def _head(self, sku: str) -> _Line | None:
        """The earliest line of the SKU that still needs units (a lazily cleaned heap)."""
        heap = self.waiting.get(sku, [])
        while heap:
            line = self.lines.get((heap[0][1], heap[0][2]))
            if line is not None and line.need > 0 and not line.released:
                return line
            heapq.heappop(heap)
        return None

    def _allocated(self, e: ev.Allocated) -> None:
        line = self.lines.get((e.order_id, e.line_no))
        if e.rule == "fifo" and line is not None:
            head = self._head(e.sku)
            if head is not None and head is not line and head.key < line.key:
                self.inv["fifo_order_of_service"].fail(
                    f"{e.sku}: {e.qty} units to {e.order_id}/{e.line_no} while {head.order_id}/{head.line_no} waits"
                )
        self.allocated[e.sku] = self.allocated.get(e.sku, 0) + e.qty
        self.check_allocation(e.sku, e.ts)
        if line is None:
            return
        line.served += e.qty
        line.reserved += e.qty
        if line.served > line.qty:
            self.inv["no_over_allocation"].fail(f"{e.order_id}/{e.line_no}: {line.served} served of {line.qty}")
        if line.need <= 0 and line.filled_ts is None:
            line.filled_ts = e.ts

    def _units_shipped(self, e: ev.UnitsShipped) -> None:
        self.stock(e.sku, -e.qty, e.ts)
        self.allocated[e.sku] = self.allocated.get(e.sku, 0) - e.qty
        line = self.lines.get((e.order_id, e.line_no))
        if line is None:
            return
        line.reserved -= e.qty
        line.shipped += e.qty
        if line.shipped >= line.qty and line.shipped_ts is None:
            line.shipped_ts = e.ts
            self._done(line)
        if line.shipped > line.qty:
            self.inv["no_double_shipment"].fail(f"{e.order_id}/{e.line_no}: {line.shipped} shipped of {line.qty}")
        if line.reserved < 0:
            self.inv["no_over_allocation"].fail(f"{e.order_id}/{e.line_no} shipped units it had not been allocated")


def _expected_count(strand: _Strand) -> int:
    """The stranded units of ``strand`` held for orders that, as expected at that moment,
    cannot complete before their units' next supply (``_State._expected``)."""
    return strand.count(sum(units for order_id, units in strand.held.items() if order_id in strand.expected))


def _pct(values: list[float], q: float) -> float | None:
    """The q-th percentile (0-100), linear between closest ranks; None for no values."""
    if not values:
        return None
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def _r(x: float | None, nd: int = 4) -> float | None:
    return None if x is None else round(x, nd)


# Confidence buckets of the calibration table: [low, high) each, the last one closed at 1.
CONFIDENCE_BUCKETS = ((0.0, 0.7), (0.7, 0.8), (0.8, 0.9), (0.9, 0.95), (0.95, 1.0))


def _bucket_name(low: float, high: float) -> str:
    if low == 0.0:
        return f"<{high:g}"
    if high == 1.0:
        return f">={low:g}"
    return f"{low:g}-{high:g}"


def calibration(judged: Iterable[tuple[float, bool]]) -> tuple[list[dict[str, Any]], float | None]:
    """Per confidence bucket of ``(confidence, kept)`` pairs: lines, mean confidence and
    the share kept (None for an empty bucket); and the Brier score over all of them (None
    for none): does a promise given 0.9 hold nine times in ten?"""
    rows = [[0, 0.0, 0] for _ in CONFIDENCE_BUCKETS]  # lines, sum of confidence, kept
    brier = 0.0
    n = 0
    for conf, kept in judged:
        i = next((j for j, (_, high) in enumerate(CONFIDENCE_BUCKETS) if conf < high), len(CONFIDENCE_BUCKETS) - 1)
        row = rows[i]
        row[0] += 1
        row[1] += conf
        row[2] += kept
        brier += (conf - kept) ** 2
        n += 1
    table = [
        {
            "bucket": _bucket_name(low, high),
            "lines": lines,
            "mean_confidence": _r(total / lines) if lines else None,
            "shipped_by_promise": _r(kept / lines) if lines else None,
        }
        for (low, high), (lines, total, kept) in zip(CONFIDENCE_BUCKETS, rows, strict=True)
    ]
    return table, (_r(brier / n) if n else None)


def figures(
    events: Iterable[tuple[int, ev.Event]],
    measure_from: float,
    end: float,
    settings: Settings | None = None,
    *,
    per_sku: bool = False,
) -> dict[str, Any]:
    """The figures of a run from its journal events ``(seq, event)`` in journal order.
    ``settings``: the run's configuration (its allocation mode orders the queues the
    expected dates come from; default: the defaults, FIFO). ``per_sku``: also each SKU's
    share of the fill rate and of the stock (``per_sku``: units ordered, units allocated
    when ordered, mean on hand), which ``backorder.lab.groups`` splits by kind of SKU."""
    st = _State(measure_from, end, World(settings or Settings()))
    for seq, e in events:
        if ev.tag_of(e) == "lines_promised":  # promises journaled (promise_rules)
            st.promise(e)
        st.apply(seq, e)
    st.finish()
    expected_received: int | str = sum(_expected_count(x) for x in st.strands if x.cap is not None)
    expected_unit_days: int | str = sum(_expected_count(x) for x in st.strands if x.cap is None)
    if st.world_failed:
        expected_received = expected_unit_days = "n/a"
    past_supply_received = sum(st.past_supply(x) for x in st.strands if x.cap is not None)
    past_supply_unit_days = sum(st.past_supply(x) for x in st.strands if x.cap is None)
    measured = [line for line in st.lines.values() if line.measured]
    ordered = sum(line.qty for line in measured)
    at_order = sum(line.qty - line.backordered for line in measured)
    backordered = [line for line in measured if line.backordered]
    ages = [((line.filled_ts or line.closed_ts or end) - line.ts) / DAY for line in backordered]
    span = max(end - measure_from, 1e-9)
    units = sum(st.unit_time.values()) / span
    value = sum(
        st.unit_time.get(sku, 0.0) * (sum(p) / len(p)) for sku, p in st.prices.items() if p and sku in st.unit_time
    )
    raised = [(r, q, c) for r, q, c in st.requests.values() if measure_from <= r < end]
    # judged: promised lines whose promised day ended in the run or that shipped, but not
    # those the customer cancelled before their promise passed (no promise was broken)
    promised = [
        line
        for line in measured
        if line.promised_by is not None
        and (line.promised_by <= end or line.shipped_ts is not None)
        and not (line.cancelled_ts is not None and line.cancelled_ts < line.promised_by)
    ]
    late = [
        line
        for line in promised
        if line.promised_by is not None and (line.shipped_ts is None or line.shipped_ts >= line.promised_by)
    ]
    on_time = len(promised) - len(late)
    late_ids = {id(line) for line in late}
    buckets, brier = calibration(
        (line.confidence, id(line) not in late_ids) for line in promised if line.confidence is not None
    )
    told = sum(
        1
        for line in late
        if line.promised_by is not None
        and st.delay_told.get((line.order_id, line.line_no), line.promised_by) < line.promised_by
    )
    leads = [(c - r) / DAY for r, _, c in raised if c is not None]
    split = {"per_sku": _per_sku(measured, st.unit_time, span)} if per_sku else {}
    return {
        **split,
        "order_lines": len(measured),
        "units_ordered": ordered,
        "fill_rate": _r(at_order / ordered if ordered else None),
        "lines_backordered": _r(len(backordered) / len(measured) if measured else None),
        "backorder_age_p50_days": _r(_pct(ages, 50), 3),
        "backorder_age_p95_days": _r(_pct(ages, 95), 3),
        "backordered_lines_unfilled": sum(1 for line in backordered if line.filled_ts is None),
        "on_hand_units": _r(units, 2),
        "on_hand_value": _r(value / span, 2),
        "purchase_orders": len(raised),
        "purchase_orders_open_at_end": sum(1 for _, _, c in raised if c is None),
        "reorder_lead_days_mean": _r(sum(leads) / len(leads) if leads else None, 3),
        "reorder_lead_days_p95": _r(_pct(leads, 95), 3),
        "orders_cancelled": st.cancelled_orders,
        "shipped_by_promise": _r(on_time / len(promised)) if promised else "n/a",
        "lines_promised": len(promised),
        "late_lines_told_in_time": "n/a"
        if not promised or not st.customer_notices
        else (_r(told / len(late)) if late else 1.0),
        "late_lines_untold": len(late) - told if st.customer_notices else "n/a",
        "promise_calibration": buckets if promised else "n/a",
        "promise_brier": brier if promised else "n/a",
        "stranded_received_units": st.stranded_received,
        "stranded_received_share": _r(st.stranded_received / st.received_measured if st.received_measured else None),
        "stranded_unit_days": st.stranded_unit_days,
        "stranded_expected_received_units": expected_received,
        "stranded_expected_received_share": "n/a"
        if isinstance(expected_received, str)
        else _r(expected_received / st.received_measured if st.received_measured else None),
        "stranded_expected_unit_days": expected_unit_days,
        **({"stranded_expected_unavailable": st.world_failed} if st.world_failed else {}),
        "stranded_past_supply_received_units": past_supply_received,
        "stranded_past_supply_received_share": _r(
            past_supply_received / st.received_measured if st.received_measured else None
        ),
        "stranded_past_supply_unit_days": past_supply_unit_days,
        "events": st.events,
        "invariants": {
            name: {"ok": i.violations == 0, "violations": i.violations, **({"example": i.example} if i.example else {})}
            for name, i in st.inv.items()
        },
    }


def _per_sku(measured: list[_Line], unit_time: dict[str, float], span: float) -> dict[str, dict[str, float]]:
    """Per SKU: ``units_ordered`` and ``units_filled`` (allocated when ordered) of the
    measured lines, and ``on_hand_units`` (time-weighted over the window): the site's
    figures are their sums (fill rate = Σ filled / Σ ordered)."""
    out: dict[str, dict[str, float]] = {}
    for line in measured:
        r = out.setdefault(line.sku, {"units_ordered": 0, "units_filled": 0, "on_hand_units": 0.0})
        r["units_ordered"] += line.qty
        r["units_filled"] += line.qty - line.backordered
    for sku, t in unit_time.items():
        out.setdefault(sku, {"units_ordered": 0, "units_filled": 0, "on_hand_units": 0.0})["on_hand_units"] = t / span
    return out


def final_stock(events: Iterable[tuple[int, ev.Event]]) -> tuple[dict[str, int], dict[str, int]]:
    """(on hand, allocated) per SKU after the events, as the referee counts them."""
    st = _State(0.0, 0.0)
    for seq, e in events:
        st.apply(seq, e)
    return dict(st.on_hand), {sku: st.allocated.get(sku, 0) for sku in st.on_hand}


def read_journal(db: Path) -> tuple[list[tuple[int, ev.Event]], int]:
    """The journal's events in order, decoded by the replay decoder, and how many bodies
    that decoder refused (0 on a sound journal)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        out: list[tuple[int, ev.Event]] = []
        bad = 0
        for seq, body in con.execute("SELECT seq, body FROM events ORDER BY seq"):
            try:
                out.append((seq, ev.EVENT_DECODER.decode(body)))
            except msgspec.DecodeError:
                bad += 1
        return out, bad
    finally:
        con.close()


def stream_hash(db: Path) -> tuple[str, int]:
    """sha256 of the event stream (type, engine time, body of every event, in order)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        h = hashlib.sha256()
        n = 0
        for kind, ts, body in con.execute("SELECT type, ts, body FROM events ORDER BY seq"):
            h.update(kind.encode() + b"\0" + repr(ts).encode() + b"\0" + bytes(body) + b"\n")
            n += 1
        return h.hexdigest(), n
    finally:
        con.close()


def referee(
    db: Path, measure_from: float, end: float, settings: Settings | None = None, *, per_sku: bool = False
) -> dict[str, Any]:
    """The figures of the run whose journal is ``db`` (its configuration ``settings``),
    and its event-stream hash (``per_sku``: as ``figures``)."""
    events, bad = read_journal(db)
    out = figures(events, measure_from, end, settings, per_sku=per_sku)
    if bad:
        inv = out["invariants"]["journal_decodes"]
        inv.update(ok=False, violations=bad, example=f"{bad} bodies the replay decoder refuses")
    out["journal_sha256"], _ = stream_hash(db)
    return out
