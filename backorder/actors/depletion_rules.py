"""Warnings before stock runs out: a projected stock-out date per SKU, and the customers
whose waiting lines that projection says will slip past the date they were told.

A line's told date is its promise's ``told`` (``World.promises``: the ship-by date its
customer was last told), so a projected supply date is compared as the ship-by date it
gives (+ ``[promises] handling_days``).

The projection of a SKU starts from its net stock (on hand, minus what is allocated,
minus the waiting demand), drains it at the SKU's demand rate (the planner's journaled
forecast, ``World.tuned``, when there is one; otherwise the demand of the last
``RECENT_DAYS`` days) and refills it with each open request's remaining quantity at its
expected date (an overdue one counts as arriving today). The stock-out date is the first
moment the level reaches zero. A rate of zero (or one too small to matter within
``HORIZON_DAYS``) gives no date, and so does a level that never runs out within that
horizon: no float is ever turned into a date beyond it, so no input overflows.

Pure and synchronous like ``sku_rules``: the rules read the model and call ``emit``.
The decision to warn is the ``depletion`` notice itself: its ``warned`` entries
(``cause:sku``) go into ``World.warned`` when it is applied, so a replay (or a restart
after ``kill -9``) knows who was warned and never sends twice.

Causes of a warning (once per order and cause; ``supply_overdue`` is
``notice_rules.depletion``'s, keyed by the overdue request id):
- ``stockout``: a waiting line was told a date, and no open supply covers it any more
  (a request cancelled or closed short with no reorder): its date will slip.
- ``priority_demand``: under priority allocation, the rush share of the projected demand
  arriving before a line's told date would be served ahead of it (rush outranks it
  until the line's age overtakes the rush weight) and take the supply it waits for.
"""

from __future__ import annotations

import functools
import itertools
import math
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import msgspec

from backorder.actors import events as ev
from backorder.actors.model import LEAD_TIME, Line, Order, Sku, World
from backorder.actors.queue_index import expected_date
from backorder.timeutil import iso_date, parse_ts

Emit = Callable[[ev.Event], None]

DAY = 86400.0
HOUR = 3600.0
RECENT_DAYS = 28  # the window of the recent demand rate, for SKUs the planner has not tuned
HORIZON_DAYS = 3650.0  # no stock-out date further out than this (ten years)
MIN_RATE = 1e-9  # units per day below which a SKU is taken not to drain at all
CAUSES = ("supply_overdue", "priority_demand", "stockout")
# Waiting lines per slice of the periodic check (``slices``): under priority allocation a
# line costs ~10-20 us of CPU to project, up to ~50 us when it is warned (a notice to
# queue), so a slice holds the loop ~3-13 ms (bench/depletion.py).
SLICE_LINES = 250


def waiting_skus(world: World) -> list[Sku]:
    """The SKUs with waiting lines, by name: what the periodic checks look at."""
    skus = world.skus
    return [skus[name] for name in sorted([name for name, s in skus.items() if s.queue])]


def slices(skus: list[Sku], lines: int = SLICE_LINES) -> Iterator[list[Sku]]:
    """``skus`` (``waiting_skus``) in slices of about ``lines`` waiting lines (a SKU is
    never split: one with a longer queue is a slice of its own). The periodic check runs
    one slice at a time and lets the loop serve others in between
    (notify.notifier.depletion_check)."""
    batch: list[Sku] = []
    n = 0
    for s in skus:
        batch.append(s)
        n += len(s.queue)
        if n >= lines:
            yield batch
            batch, n = [], 0
    if batch:
        yield batch


def days_to_stockout(net: float, rate: float, supply: Iterable[tuple[float, float]]) -> float | None:
    """Days from now until the projected level first reaches zero, or None.

    Args:
        net: units on hand, minus allocated, minus waiting demand (may be negative).
        rate: demand in units per day (a negative, NaN or infinite rate counts as none;
            an infinite one as none too: it cannot be projected).
        supply: (days from now, units) of each open request; negative days (overdue)
            arrive now. Units that are not finite and positive are ignored.

    Returns:
        0.0 when the level is already at or below zero with demand draining it, or
        negative (waiting demand uncovered) whatever the rate; the day of the first
        crossing otherwise; None if it never happens within ``HORIZON_DAYS``.
    """
    if not math.isfinite(net):
        return 0.0 if net < 0 else None
    if not math.isfinite(rate) or rate < MIN_RATE:
        rate = 0.0
    arrivals = sorted(
        (max(d, 0.0), q) for d, q in supply if math.isfinite(d) and math.isfinite(q) and q > 0 and d < HORIZON_DAYS
    )
    level, t, i = float(net), 0.0, 0
    while i < len(arrivals) and arrivals[i][0] <= 0.0:
        level += arrivals[i][1]
        i += 1
    if level < 0 or (level == 0 and rate > 0):
        return 0.0
    if rate == 0.0:
        return None
    for day, qty in arrivals[i:]:
        left = level - rate * (day - t)
        if left <= 0:
            break
        level, t = left + qty, day
    out = t + level / rate
    return out if out <= HORIZON_DAYS else None


class RecentDemand:
    """Units ordered per SKU (and of them rush units) per day, over the last
    ``RECENT_DAYS`` days, counted from ``World.orders`` incrementally: orders arrive with
    increasing numbers (``O0000001``...), so each update takes only those numbered above
    the last it took, walking back from the newest (orders archived out of memory meanwhile
    change nothing). ``update`` may count a bounded number at a time (the periodic check
    catches up in steps that yield to the loop: after a restart every order is new). A
    SKU's rate is kept until the day changes or it gets an order (summing its days was most
    of an hourly check's cost). Memory only: after a restart it is rebuilt from the orders."""

    __slots__ = ("_days", "_rates", "_taken", "_backlog", "_counted")

    def __init__(self) -> None:
        self._taken = 0  # the highest order number taken into the backlog
        self._backlog: list[Order] = []  # orders taken, counted up to ``_counted``
        self._counted = 0
        self._days: dict[str, dict[int, list[int]]] = {}  # sku -> day number -> [units, rush units]
        self._rates: dict[str, tuple[int, float, float]] = {}  # sku -> (day number, rate, rush share)

    def update(self, world: World, budget: int | None = None) -> bool:
        """Count the orders new since the last update, at most ``budget`` of them (None:
        all); True once every order is counted."""
        fresh = world.n_orders - self._taken
        if fresh > 0:
            # the new orders are the newest entries, at most ``fresh`` of them; all of those
            # unless some were archived already (then the older ones are left out)
            new = list(itertools.islice(reversed(world.orders.values()), fresh))
            new.reverse()
            if new and int(new[0].order_id[1:]) != self._taken + 1:
                new = [o for o in new if int(o.order_id[1:]) > self._taken]
            self._backlog = self._backlog[self._counted :] + new
            self._counted = 0
            self._taken = world.n_orders
        backlog, start = self._backlog, self._counted
        end = len(backlog) if budget is None else min(len(backlog), start + budget)
        for order in itertools.islice(backlog, start, end):
            day = int(order.received_ts // DAY)
            for line in order.lines:
                cell = self._days.setdefault(line.sku, {}).setdefault(day, [0, 0])
                cell[0] += line.qty
                if line.rush:
                    cell[1] += line.qty
                self._rates.pop(line.sku, None)
        self._counted = end
        if end == len(backlog):
            self._backlog, self._counted = [], 0
            return True
        return False

    def rate(self, sku: str, now: float) -> tuple[float, float]:
        """(units per day, rush share) over the window ending today."""
        today = int(now // DAY)
        cached = self._rates.get(sku)
        if cached is not None and cached[0] == today:
            return cached[1], cached[2]
        days = self._days.get(sku)
        if not days:
            return 0.0, 0.0
        first = today - RECENT_DAYS + 1
        for old in [d for d in days if d < first]:
            del days[old]
        units = sum(c[0] for c in days.values())
        rush = sum(c[1] for c in days.values())
        rate, share = units / RECENT_DAYS, (rush / units if units else 0.0)
        self._rates[sku] = (today, rate, share)
        return rate, share


_recent: weakref.WeakKeyDictionary[World, RecentDemand] = weakref.WeakKeyDictionary()


def _meter(world: World) -> RecentDemand:
    meter = _recent.get(world)
    if meter is None:
        meter = _recent[world] = RecentDemand()
    return meter


def recent_demand(world: World) -> RecentDemand:
    """The world's recent-demand counter, brought up to date."""
    meter = _meter(world)
    meter.update(world)
    return meter


COUNT_STEP = 2_000  # orders per step of the periodic check's catch-up (a restart counts them all): ~3 ms


def counting(world: World) -> bool:
    """One step of the periodic check's catch-up of the recent demand (at most
    ``COUNT_STEP`` new orders counted); True while orders remain to count."""
    return not _meter(world).update(world, COUNT_STEP)


class Projection(msgspec.Struct, kw_only=True, frozen=True):
    """A SKU's projected stock-out: ``date`` (YYYY-MM-DD) in ``days`` from now, at
    ``rate`` units a day (``basis``: ``forecast`` from the planner or ``recent`` demand),
    from ``net`` units (on hand - allocated - waiting) and ``inbound`` open units."""

    sku: str
    date: str
    days: float
    rate: float
    basis: str
    net: int
    inbound: int
    lead_time_days: float


def demand_rate(world: World, s: Sku, now: float, meter: RecentDemand) -> tuple[float, str, float]:
    """(units per day, basis, rush share) of SKU ``s``."""
    recent, rush_share = meter.rate(s.sku, now)
    tuned = world.tuned.get(s.sku)
    if tuned is not None and math.isfinite(tuned.forecast.daily_mean):
        return max(tuned.forecast.daily_mean, 0.0), "forecast", rush_share
    return recent, "recent", rush_share


def lead_time_days(world: World, s: Sku) -> float:
    """The planner's lead time when it measured one, else the policy's."""
    tuned = world.tuned.get(s.sku)
    if tuned is not None and tuned.forecast.lead_time_measured and math.isfinite(tuned.forecast.lead_time_days):
        return tuned.forecast.lead_time_days
    return s.policy.lead_time_days


def project(world: World, s: Sku, now: float, meter: RecentDemand | None = None) -> Projection | None:
    """SKU ``s``'s projected stock-out, or None when it does not run out within the horizon."""
    meter = meter if meter is not None else recent_demand(world)
    rate, basis, _share = demand_rate(world, s, now, meter)
    net = s.available - s.backordered
    if net >= 0 and rate < MIN_RATE:
        return None  # nothing drains it: decided without reading its supply
    supply = [((_day_ts(r.expected_date) - now) / DAY, float(r.open_qty)) for r in s.inbound.values()]
    days = days_to_stockout(net, rate, supply)
    if days is None:
        return None
    return Projection(
        sku=s.sku,
        date=iso_date(now + days * DAY),
        days=round(days, 3),
        rate=round(rate, 4),
        basis=basis,
        net=net,
        inbound=s.inbound_qty,
        lead_time_days=lead_time_days(world, s),
    )


def stockouts(world: World, now: float, limit: int | None = None) -> list[Projection]:
    """SKUs projected to stock out within their lead time, soonest first (then by SKU)."""
    meter = recent_demand(world)
    out = []
    for s in world.skus.values():
        p = project(world, s, now, meter)
        if p is not None and p.days <= p.lead_time_days:
            out.append(p)
    out.sort(key=lambda p: (p.days, p.sku))
    return out if limit is None else out[:limit]


@functools.lru_cache(maxsize=4096)
def _day_ts(date: str) -> float:
    """A told date's start in engine time (told dates repeat: parsed once each)."""
    return parse_ts(date)


_LAST_DAY = parse_ts("9999-12-31")


def _ship_by(arrival: str, handling: float) -> str:
    """The ship-by date of units arriving on date ``arrival`` (``handling``: seconds);
    past the calendar's last day it reads as that day, as a promise does."""
    return iso_date(min(_day_ts(arrival) + handling, _LAST_DAY))


def _priority_ahead(world: World, line: Line, now: float, until: float, rush_rate: float) -> float:
    """Rush units projected to arrive between now and ``until`` that rank ahead of a
    waiting non-rush line: rush outranks it until the line's age makes up the rush weight."""
    w = world.weights
    if line.rush or line.expedited or w.rush <= 0:
        return 0.0
    end = until if w.age <= 0 else min(until, line.t_order + w.rush / w.age * HOUR)
    return rush_rate * max(end - now, 0.0) / DAY


def _slipping(world: World, s: Sku, now: float, meter: RecentDemand) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """cause -> order id -> its lines of SKU ``s`` that the projection says will slip."""
    found: dict[str, dict[str, list[dict[str, Any]]]] = {}
    free = max(s.available, 0)
    covered = s.backordered <= free + s.inbound_qty  # so no waiting line lacks a date
    if covered and world.mode != "priority":
        return found  # the common case under FIFO: decided without the demand rate
    rate, _basis, share = demand_rate(world, s, now, meter)
    rush_rate = rate * share if world.mode == "priority" else 0.0
    w = world.weights
    if covered and (rush_rate <= 0 or (w.age > 0 and rush_rate * w.rush / w.age * HOUR / DAY < 1)):
        return found  # rush outranks a line too briefly for a whole unit to pass it (_priority_ahead)
    curve = s.supply()
    keys = {cause: f"{cause}:{s.sku}" for cause in ("stockout", "priority_demand")}
    warned, promises = world.warned, world.promises
    handling = world.settings.promises.handling_days * DAY
    ahead = 0
    for line, date in zip(list(s.queue), world.expected_dates(s), strict=True):
        need, order_id = line.need, line.order_id
        ahead += need
        promise = promises.get((order_id, line.line_no))
        if promise is None or date == "now":
            continue
        told = promise.told  # a ship-by date: its units must be here ``handling_days`` before
        cause, projected = None, None
        if date is None:
            # told a date from a supply that will not come; a line promised for want of any
            # supply (today + the lead time) is told of a slip by promise_rules.recheck
            cause = "stockout" if promise.source != LEAD_TIME else None
        elif rush_rate > 0 and (order_id, keys["priority_demand"]) not in warned:
            extra = _priority_ahead(world, line, now, _day_ts(told) - handling + DAY, rush_rate)
            if extra >= 1:
                new_date = expected_date(free, curve, ahead - need + math.ceil(extra), need)
                if new_date is None:
                    cause = "priority_demand"
                elif new_date != "now" and (projected := _ship_by(new_date, handling)) > told:
                    cause = "priority_demand"
        if cause is None or (order_id, keys[cause]) in warned:
            continue
        found.setdefault(cause, {}).setdefault(order_id, []).append(
            {"line_no": line.line_no, "sku": s.sku, "told_date": told, "projected_date": projected}
        )
    return found


_SUBJECTS = {
    "stockout": ("Order {number}: an item is out of stock with no delivery due", "no supply covers it"),
    "priority_demand": ("Order {number}: your expected date may move", "priority orders ahead"),
}


def warn(
    world: World,
    emit: Emit,
    now: float,
    customer: Callable[..., ev.NoticeQueued | None],
    skus: Iterable[Sku] | None = None,
) -> list[ev.NoticeQueued]:
    """Depletion notices for the ``stockout`` and ``priority_demand`` causes, one per
    order, cause and SKU not warned yet, for ``skus`` (default: every SKU with waiting
    lines). ``customer``: ``notice_rules._customer``."""
    if not world.promises:
        return []  # nobody was told a date: nothing can slip past one
    meter = recent_demand(world)
    out = []
    for s in waiting_skus(world) if skus is None else skus:
        if not s.queue:
            continue
        for cause, by_order in sorted(_slipping(world, s, now, meter).items()):
            subject, body = _SUBJECTS[cause]
            for order_id, lines in by_order.items():
                e = customer(
                    world,
                    world.orders[order_id],
                    "depletion",
                    subject,
                    body,
                    {"lines": lines, "cause": cause, "warned": [f"{cause}:{s.sku}"]},
                    emit,
                    now,
                )
                if e is not None:
                    out.append(e)
    return out
