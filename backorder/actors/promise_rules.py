"""Delivery promises (DESIGN.md invariant 9: promises are kept or told).

At order time each line gets a ship-by date (``promise``): when its units are expected at
the site plus ``[promises] handling_days``. The units are expected

- today, from ``stock``: the line is fully allocated;
- on the expected date of the open request (purchase order or transfer) whose units it
  waits for in service order (``from`` = that request id); a request the supplier has not
  confirmed (no acknowledgement or ship notice) is taken no earlier than its raise time +
  the source's measured lead time at ``[promises] lead_time_percentile``;
- today + that lead time (``from`` = ``lead_time``) for quantity no open supply covers.

The lead time is the planner's measurement for the SKU's source (``policy_tuned``: mean +
z x sd at the percentile) once it has one, else the policy's ``lead_time_days``. A
ship-complete order ships when its last line can: every line is promised that date.

Each rule gives its promise a rule-of-thumb confidence (stock 0.98, a supplier's own word
0.9, a measured lead time its percentile, else 0.6); the promise carries the Beta posterior
mean of its kind's record of kept and missed promises around it (``calibrated``,
``promise_outcomes``).

The promises are journaled (``lines_promised``, one event per order: a journal row costs
more than the promise, see README "Delivery promises") before the order's reply, and a
line keeps its first one. ``recheck`` then
compares each waiting promised line's current expected ship-by date with the date its
customer was last told, after anything that can move it (a supply re-dated, cancelled,
short-closed or received short, a priority order served ahead, a planner change, a
supply going overdue): later by more than ``[promises] tolerance_days`` -> a ``delay``
notice with the new date, whose ``promise_told`` entries record it as told (so a move is
told once, and a replay after a crash tells it no second time). Earlier: nothing, unless
``notify_earlier``. Pure and synchronous, like the other rules.
"""

from __future__ import annotations

import datetime as dt
import math
from bisect import bisect_left
from collections.abc import Callable, Iterable
from decimal import Decimal
from functools import lru_cache
from statistics import NormalDist
from typing import Any

from backorder.actors import depletion_rules, notice_rules, promise_outcomes
from backorder.actors import events as ev
from backorder.actors.model import LEAD_TIME, STOCK, Line, Order, Request, Sku, World
from backorder.errors import InvalidInput, NotFound
from backorder.timeutil import iso_date

Emit = Callable[[ev.Event], None]
DAY = 86400.0
# How likely a date holds, by what it rests on: units at the site; a supplier's own word
# (acknowledged, ship notice, a confirmed date); a date from the measured lead time at the
# percentile (its own percentile); a date from an unmeasured policy lead time.
CONFIDENCE_STOCK = 0.98
CONFIDENCE_CONFIRMED = 0.9
CONFIDENCE_UNMEASURED = 0.6


class Supply:
    """A SKU's open supply in arrival order, for promises: ``cover(units)`` is the request
    whose units complete the first ``units`` waiting after the available stock. Built on
    the SKU's own cached supply curve, which keeps its requests in arrival order (sorted
    once per change of them, not once per promise)."""

    __slots__ = ("free", "curve")

    def __init__(self, s: Sku) -> None:
        self.free = max(s.available, 0)
        self.curve = s.supply()

    def cover(self, units: int) -> tuple[bool, Request | None]:
        """(True, None): covered by stock; (False, the request that completes them);
        (False, None): open supply does not cover them."""
        if units <= self.free:
            return True, None
        cumulative = self.curve.cumulative
        i = bisect_left(cumulative, units - self.free)
        if i >= len(cumulative):
            return False, None
        return False, self.curve.requests[i]  # type: ignore[return-value]


def lead_days(world: World, s: Sku) -> tuple[float, float]:
    """(lead time in days at the configured percentile, confidence of a date resting on it)."""
    return _lead(world, s)[:2]


def _lead(world: World, s: Sku) -> tuple[float, float, bool]:
    """``lead_days`` and whether the lead time is the planner's measurement."""
    tuned = world.tuned.get(s.sku)
    if tuned is not None and tuned.forecast.lead_time_measured:
        pct = world.settings.promises.lead_time_percentile
        f = tuned.forecast
        return f.lead_time_days + _z(pct) * f.lead_time_sd, pct / 100.0, True
    return float(s.policy.lead_time_days), CONFIDENCE_UNMEASURED, False


@lru_cache(maxsize=16)
def _z(pct: float) -> float:
    return NormalDist().inv_cdf(pct / 100.0)


# Dates as day numbers (days since 1970-01-01): a promise is a whole day, and the hot path
# (one promise per order line) must not parse timestamps. A site sees few distinct dates.
_EPOCH = dt.date(1970, 1, 1).toordinal()


def _dayno(ts: float) -> int:
    return math.floor(ts / DAY)


@lru_cache(maxsize=4096)
def _dayno_of(date: str) -> int:
    return dt.date.fromisoformat(date[:10]).toordinal() - _EPOCH


_LAST_DAY = dt.date.max.toordinal() - _EPOCH


@lru_cache(maxsize=4096)
def _date_of(dayno: int) -> str:
    # a supply dated at the end of the calendar (9999-12-31 is a valid date) plus the
    # handling time would pass it: such a promise reads as that last day, not a crash
    return dt.date.fromordinal(min(dayno, _LAST_DAY) + _EPOCH).isoformat()


def _confirmed(r: Request) -> bool:
    """Whether the supplier gave its own word on the request (quantity or date)."""
    return r.acknowledged is not None or bool(r.asns) or r.status != "open"


def _ship_by(arrival: int, world: World) -> str:
    """The ship-by date of units at the site on day number ``arrival``."""
    return _date_of(arrival + world.settings.promises.handling_days)


def expected(world: World, s: Sku, supply: Supply, units: int, now: float) -> tuple[str, str, float] | None:
    """(ship-by date, from, confidence) of the waiting line whose units are the first
    ``units`` of the SKU's queue; None when open supply does not cover them."""
    stock, c = supply.cover(units)
    if stock:
        return _ship_by(_dayno(now), world), STOCK, CONFIDENCE_STOCK
    if c is None:
        return None
    arrival = max(_dayno_of(c.expected_date), _dayno(now))
    confidence = CONFIDENCE_CONFIRMED
    if not _confirmed(c):
        lead, confidence, measured = _lead(world, s)
        if measured:  # what the source really takes, not what the policy assumes
            arrival = max(arrival, _dayno(c.created_ts + lead * DAY))
    return _ship_by(arrival, world), c.request_id, confidence


def _by_lead_time(world: World, s: Sku, now: float) -> tuple[str, str, float]:
    """For units no open supply covers: today + the source's lead time."""
    lead, confidence = lead_days(world, s)
    return _ship_by(_dayno(now) + math.ceil(lead), world), LEAD_TIME, confidence


def line_promise(world: World, line: Line, now: float, supply: Supply | None = None) -> tuple[str, str, float]:
    """The promise for one line as things stand: (date, from, confidence)."""
    need = line.need  # 0 for a line that ships nothing
    if not need:
        return _ship_by(_dayno(now), world), STOCK, CONFIDENCE_STOCK
    s = world.skus[line.sku]
    if supply is None:
        supply = Supply(s)
    _pos, ahead = s.queue.place(line)
    got = expected(world, s, supply, ahead + need, now)
    return got if got is not None else _by_lead_time(world, s, now)


def calibrated(world: World, source: str, prior: float) -> float:
    """The confidence of a new promise from ``source`` whose date the rules above give
    ``prior``: how often promises of its kind were kept (``promise_outcomes``)."""
    kind = promise_outcomes.kind_of(source, world.requests)
    kept, missed = world.promise_outcomes.get(kind, (0, 0))
    return promise_outcomes.posterior(prior, world.settings.promises.confidence_prior_weight, kept, missed)


def _order_dates(world: World, order: Order, lines: Iterable[Line], now: float) -> list[tuple[str, str, float]]:
    got = []
    for ln in lines:
        date, src, prior = line_promise(world, ln, now)
        got.append((date, src, calibrated(world, src, prior)))
    if order.spec.ship_complete and got:
        last = max(d for d, _, _ in got)
        low = min(c for _, _, c in got)
        got = [(last, src, low) for _, src, _ in got]
    return got


def _to_promise(line: Line) -> bool:
    """Whether a line of an order the site fulfils gets a promise: it ships something (a
    gift card ships nothing) and has not been cancelled or shipped in full."""
    return line.requires_shipping and not line.cancelled and line.shipped < line.qty


def _promisable(order: Order) -> bool:
    """A held order's lines wait for payment in no queue (promised when it is released);
    an order at the 3PL is not the site's to promise."""
    return not (order.hold or order.cancelled or order.routed_to)


def promise_order(world: World, order: Order, emit: Emit, now: float) -> None:
    """Journal the first promise of each of the order's lines that has none."""
    if not _promisable(order):
        return
    known = world.promises
    if all((order.order_id, ln.line_no) in known for ln in order.lines):
        return
    lines = [ln for ln in order.lines if _to_promise(ln)]
    promised = [
        ev.PromisedLine(line_no=ln.line_no, sku=ln.sku, date=date, source=src, confidence=conf)
        for ln, (date, src, conf) in zip(lines, _order_dates(world, order, lines, now), strict=True)
        if (order.order_id, ln.line_no) not in known
    ]
    if promised:
        emit(ev.LinesPromised(ts=now, order_id=order.order_id, lines=promised))


def unpromised(world: World) -> list[Order]:
    """Open orders with a line ``promise_order`` would promise that has no promise: what a
    ``kill -9`` (or a backup cut) between an order's acceptance and its ``lines_promised``
    (a later commit) leaves, and orders from before promises existed. Start-up recovery
    promises them."""
    known = world.promises
    out = []
    for o in world.orders.values():  # a pass over every order in memory at each start: kept lean
        if o.closed_ts is not None or not _promisable(o):  # closed: shipped in full
            continue
        oid = o.order_id
        for ln in o.lines:
            if (oid, ln.line_no) not in known and _to_promise(ln):
                out.append(o)
                break
    return out


def promise_view(world: World, order_id: str, line: Line, now: float) -> dict[str, Any] | None:
    """A line's promise for a reply: its first promise, the date last told and the date
    expected now (None when the line has no promise)."""
    p = world.promises.get((order_id, line.line_no))
    if p is None:
        return None
    out: dict[str, Any] = {"date": p.date, "from": p.source, "confidence": p.confidence, "told": p.told}
    if line.requires_shipping and not line.cancelled and line.need and not line.held:
        out["expected"] = line_promise(world, line, now)[0]
    return out


def recheck(world: World, s: Sku, emit: Emit, now: float) -> list[ev.NoticeQueued]:
    """Tell the customers of SKU ``s``'s waiting promised lines whose expected ship-by date
    moved later than last told by more than the tolerance (earlier: only with
    ``notify_earlier``): one notice per order. One bisect per waiting line. A site that
    routes no customer notices at all has nobody to tell: nothing to walk (it cost a tuned
    SKU's loop step ~10 us per waiting line, 3-4 ms for 300)."""
    if not world.promises or not s.queue or not notice_rules.routes_any(world):
        return []
    cfg = world.settings.promises
    tol = cfg.tolerance_days
    supply = Supply(s)
    moved: dict[str, list[dict[str, Any]]] = {}
    ahead = 0
    for line in s.queue.lines():
        need = line.need
        ahead += need
        p = world.promises.get((line.order_id, line.line_no))
        if p is None:
            continue
        # nothing open covers it: today + the lead time, as it would be promised now
        got = expected(world, s, supply, ahead, now) or _by_lead_time(world, s, now)
        shift = _dayno_of(got[0]) - _dayno_of(p.told)
        if shift > tol or (cfg.notify_earlier and -shift > tol):
            moved.setdefault(line.order_id, []).append(
                {
                    "line_no": line.line_no,
                    "sku": line.sku,
                    "old_date": p.told,
                    "new_date": got[0],
                    "promised_date": p.date,
                    "from": got[1],
                }
            )
    return _tell(world, moved, emit, now)


def _ship_complete_rest(world: World, order: Order, lines: list[dict[str, Any]]) -> None:
    """A ship-complete order ships with its last line: its other promised lines that have
    not shipped move with it (they are named in the notice too)."""
    last = max(li["new_date"] for li in lines)
    named = {li["line_no"] for li in lines}
    for ln in order.lines:
        p = world.promises.get((order.order_id, ln.line_no))
        if p is None or ln.line_no in named or ln.cancelled or ln.shipped >= ln.qty:
            continue
        if _dayno_of(last) - _dayno_of(p.told) > world.settings.promises.tolerance_days:
            lines.append(
                {
                    "line_no": ln.line_no,
                    "sku": ln.sku,
                    "old_date": p.told,
                    "new_date": last,
                    "promised_date": p.date,
                    "from": "ship_complete",
                }
            )


def _tell(world: World, moved: dict[str, list[dict[str, Any]]], emit: Emit, now: float) -> list[ev.NoticeQueued]:
    out = []
    for order_id, lines in moved.items():
        order = world.orders[order_id]
        if order.spec.ship_complete:
            _ship_complete_rest(world, order, lines)
        later = any(li["new_date"] > li["old_date"] for li in lines)
        e = notice_rules._customer(
            world,
            order,
            "delay" if later else "earlier",
            "Order {number}: new expected date" if later else "Order {number}: it will ship sooner",
            f"{len(lines)} line(s) now expected to ship by {max(li['new_date'] for li in lines)}",
            {"lines": lines, "promise_told": [[li["line_no"], li["new_date"]] for li in lines]},
            emit,
            now,
        )
        if e is not None:
            out.append(e)
    return out


def overdue(world: World, emit: Emit, now: float, skus: list[Sku] | None = None) -> list[ev.NoticeQueued]:
    """The periodic check: a supply past its expected date, or waiting quantity no open
    supply covers (dated today + the lead time), moves its lines' dates by the day without
    any event; recheck the SKUs with either (not every SKU with a queue). For ``skus`` (a
    slice of ``depletion_rules.waiting_skus``), default every SKU."""
    if not world.promises:
        return []
    today = iso_date(now)
    out: list[ev.NoticeQueued] = []
    for s in depletion_rules.waiting_skus(world) if skus is None else skus:
        if not s.queue:
            continue
        uncovered = s.backordered > max(s.available, 0) + s.inbound_qty
        if uncovered or any(r.expected_date < today for r in s.inbound.values()):
            out += recheck(world, s, emit, now)
    return out


# --- atp.check: the same promise for an order not placed ---------------------------------


def _ahead_of_new(world: World, s: Sku, line: Line) -> int:
    """Units waiting ahead of ``line`` were it queued now, in service order (the order the
    allocation planner serves the queue in, ``World.queue_key``): under FIFO every waiting
    line; under priority rules those that outrank it."""
    if world.mode == "fifo" or not s.queue:
        return s.backordered
    line.arrival = world.arrivals + 1  # after every line queued so far
    key = world.queue_key(line)
    ahead = 0
    for queued in s.queue.lines():
        if queued.key > key:
            break
        ahead += queued.need
    return ahead


def check(
    world: World, lines: list[tuple[str, int]], now: float, ship_complete: bool = False, rush: bool = False
) -> list[dict[str, Any]]:
    """The promise each line of a prospective order would get, were it placed now: it
    would take its place in each SKU's queue (under FIFO the back; under priority rules
    its rank's, ``rush`` as order.submit's; a value weight counts it as worth nothing:
    there is no price to rank by). Nothing is journaled. Refuses an unknown SKU or a
    quantity <= 0 or over ``[limits] max_quantity``."""
    cap = world.settings.limits.max_quantity
    for i, (sku, qty) in enumerate(lines, start=1):
        if isinstance(qty, bool) or qty <= 0 or qty > cap:
            raise InvalidInput(
                "invalid_quantity", f"line {i}: qty {qty} must be between 1 and {cap} ([limits] max_quantity)"
            )
        if sku not in world.skus:
            raise NotFound("unknown_sku", f"line {i}: SKU {sku!r} is not known")
    out = []
    extra: dict[str, int] = {}  # units earlier lines of this order would take, per SKU
    for n, (sku, qty) in enumerate(lines, start=1):
        s = world.skus[sku]
        before = extra.get(sku, 0)
        extra[sku] = before + qty
        prospective = Line("", n, sku, qty, Decimal(0), True, rush, now)
        got = expected(world, s, Supply(s), _ahead_of_new(world, s, prospective) + before + qty, now)
        if got is None:
            got = _by_lead_time(world, s, now)
        conf = calibrated(world, got[1], got[2])
        out.append(
            {"line_no": n, "sku": sku, "qty": qty, "promise": {"date": got[0], "from": got[1], "confidence": conf}}
        )
    if ship_complete and out:
        last = max(li["promise"]["date"] for li in out)
        for li in out:
            li["promise"]["date"] = last
    return out
