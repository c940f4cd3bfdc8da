"""What-if reads: what a receipt, a moved supply date or a candidate reorder policy would
do to a SKU's waiting lines, answered from the model without changing it (no events).

Each answer plans the queue twice with ``allocation_plan.plan`` (as it is, and as it would
be) and reports the lines whose units or dates differ, in service order. The receipt's
units are matched to open requests exactly as ``sku_rules.match_receipt`` will match the
real one, and given out with the same ``allocate_now`` that settle uses.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import msgspec

from backorder.actors import sku_rules
from backorder.actors.allocation_plan import Loan, Supply, days_between, schedule, schedule_lending
from backorder.actors.model import Line, Sku, World
from backorder.actors.queue_index import SupplyCurve
from backorder.config.settings import ReorderPolicy
from backorder.errors import InvalidInput, NotFound
from backorder.timeutil import iso_date

DAY = 86400.0
WHATIF_ID = "what-if"  # the id of a hypothetical supply (sorts after PO-/TR- on the same date)
MAX_HORIZON_DAYS = 365


def _sku(world: World, name: str) -> Sku:
    s = world.skus.get(name)
    if s is None:
        raise NotFound("unknown_sku", f"SKU {name!r} is not known")
    return s


def _future_date(date: str | None, now: float, what: str) -> str:
    """``date`` (today if None), refused if it is not a calendar date or is in the past."""
    today = iso_date(now)
    if date is None:
        return today
    try:
        dt.date.fromisoformat(date)
    except ValueError:
        raise InvalidInput("invalid_date", f"{what} {date!r} is not a date (YYYY-MM-DD)") from None
    if date < today:
        raise InvalidInput("invalid_date", f"{what} {date} is in the past (today is {today})")
    return date


def _open(s: Sku) -> list[Supply]:
    return [Supply(r.request_id, r.expected_date, r.open_qty) for r in s.inbound.values()]


def _compare(
    world: World, s: Sku, free: int, curve: SupplyCurve, now: float, limit: int, settles: bool = False
) -> tuple[list[dict[str, Any]], int, int, list[dict[str, Any]]]:
    """(rows of the lines whose units or date change, how many change, units given now,
    the loans). ``settles``: the change is followed by a settle (a receipt), which may also
    lend held units (``allocation_plan.lend``), as the real one will."""
    today = iso_date(now)
    queue, now_before, dates_before = schedule(s.queue.lines(), s.available, s.supply())
    loans: list[Loan[Line]] = []
    if settles:
        _queue, now_after, dates_after, loans = schedule_lending(queue, free, curve, sku_rules.lending(world, s, now))
    else:
        _queue, now_after, dates_after = schedule(queue, free, curve)
    rows: list[dict[str, Any]] = []
    changed = units = 0
    for place, line in enumerate(queue):
        got, old, new = now_after[place], dates_before[place], dates_after[place]
        if got == now_before[place] and new == old:
            continue
        changed += 1
        units += got - now_before[place]
        if len(rows) < limit:
            spec = world.orders[line.order_id].spec
            rows.append(
                {
                    "order_id": line.order_id,
                    "line_no": line.line_no,
                    "place": place,
                    "need": line.need,
                    "now": got,
                    "date_before": old,
                    "date_after": new,
                    "moved_days": days_between(old, new, today),
                    "customer": spec.customer,
                    "email": spec.email,
                    "ship_complete": spec.ship_complete,
                }
            )
    lent = [
        {
            "order_id": x.lender.order_id,
            "line_no": x.lender.line_no,
            "qty": x.qty,
            "to_order_id": x.borrower.order_id,
            "to_line_no": x.borrower.line_no,
            "back_by": x.back_by,
            "completes": x.completes,
        }
        for x in loans
    ]
    return rows, changed, units, lent


def receipt(
    world: World, sku: str | None, request_id: str | None, qty: int, date: str | None, now: float, limit: int
) -> dict[str, Any]:
    """``whatif.receipt``: ``qty`` units arriving (today, or on ``date``), against the
    request ``request_id`` or matched to the SKU's open requests as the dock would."""
    if request_id is not None:
        r = world.requests.get(request_id)
        if r is None:
            raise NotFound("unknown_request", f"no purchase order or transfer {request_id!r}")
        if sku is not None and sku != r.sku:
            raise InvalidInput("invalid_request", f"{request_id} is for {r.sku}, not {sku}")
        s = _sku(world, r.sku)
        sku_rules.open_request(world, s, request_id, "received")
    elif sku is not None:
        s = _sku(world, sku)
    else:
        raise InvalidInput("invalid_request", "give request_id or sku")
    sku_rules.check_quantity(world, "qty", qty)
    when = _future_date(date, now, "date")
    supplies = {x.request_id: x for x in _open(s)}
    free = s.available
    matched: list[dict[str, Any]] = []
    if when == iso_date(now):  # received now: the same match as the real receipt
        e = sku_rules.match_receipt(world, s, qty, request_id, now)
        counted = [(e.request_id, e.qty)] if e.request_id is not None else [(m.request_id, m.qty) for m in e.matched]
        for rid, n in counted:
            x = supplies[rid]
            supplies[rid] = x._replace(open_qty=max(x.open_qty - n, 0))
            matched.append({"request_id": rid, "qty": n})
        free += qty
    elif request_id is not None:  # part (or all) of the request comes on another date
        x = supplies[request_id]
        supplies[request_id] = x._replace(open_qty=max(x.open_qty - qty, 0))
        supplies[WHATIF_ID] = Supply(WHATIF_ID, when, qty)
    else:  # a new supply on that date
        supplies[WHATIF_ID] = Supply(WHATIF_ID, when, qty)
    # a receipt today settles at once (and may lend); one on a later date is only a supply
    rows, changed, units, lent = _compare(
        world, s, free, SupplyCurve(supplies.values()), now, limit, settles=when == iso_date(now)
    )
    return {
        "sku": s.sku,
        "request_id": request_id,
        "qty": qty,
        "date": when,
        "matched": matched,
        "waiting_lines": len(s.queue),
        "allocated_now": units,
        "affected": changed,
        "lines": rows,
        "lent": lent,
    }


def delay(world: World, request_id: str, date: str, now: float, limit: int) -> dict[str, Any]:
    """``whatif.delay``: the open request ``request_id`` expected on ``date`` instead."""
    r = world.requests.get(request_id)
    if r is None:
        raise NotFound("unknown_request", f"no purchase order or transfer {request_id!r}")
    s = _sku(world, r.sku)
    sku_rules.open_request(world, s, request_id, "moved")
    when = _future_date(date, now, "date")
    supplies = [x._replace(expected_date=when) if x.request_id == request_id else x for x in _open(s)]
    rows, changed, _units, _lent = _compare(world, s, s.available, SupplyCurve(supplies), now, limit)
    return {
        "sku": s.sku,
        "request_id": request_id,
        "date_before": r.expected_date,
        "date": when,
        "waiting_lines": len(s.queue),
        "affected": changed,
        "lines": rows,
    }


# --- a candidate reorder policy --------------------------------------------------------


def daily_demand(
    world: World, s: Sku, forecast: Sequence[float] | None, now: float, days: int = 30
) -> tuple[str, float]:
    """(where from, mean units a day): the planner's forecast if it has one for the SKU,
    else the last ``days`` days of orders for it (the most recent orders first, so the
    walk stops at the window's start)."""
    if forecast:
        return "forecast", sum(forecast) / len(forecast)
    start = now - days * DAY
    units = 0
    for order in reversed(world.orders.values()):
        if order.received_ts < start:
            break
        units += sum(ln.qty for ln in order.lines if ln.sku == s.sku and ln.requires_shipping)
    return "history", units / days


def project(s: Sku, policy: ReorderPolicy, demand: Sequence[float], now: float) -> dict[str, Any]:
    """Day by day over ``len(demand)`` days: open supply arrives on its date, each day's
    demand is served from stock (the rest waits, served first when units come), and the
    policy reorders as ``sku_rules.order_quantity`` would, arriving after its lead time.
    Expected demand, no randomness: a projection, not a forecast of the worst case."""
    stock = float(max(s.available, 0))
    waiting = float(s.backordered)
    start = dt.date.fromisoformat(iso_date(now))
    arrivals: dict[int, float] = {}
    for r in s.inbound.values():
        day = max((dt.date.fromisoformat(r.expected_date) - start).days, 0)
        arrivals[day] = arrivals.get(day, 0.0) + r.open_qty
    inbound = sum(arrivals.values())
    lead = max(round(policy.lead_time_days), 1)
    demanded = served = stock_sum = 0.0
    stockout_days = orders = ordered = 0
    first_stockout: str | None = None
    lowest = stock
    for day, want in enumerate(demand):
        came = arrivals.pop(day, 0.0)
        inbound -= came
        stock += came
        give = min(waiting, stock)  # what waits is served first
        waiting -= give
        stock -= give
        got = min(want, stock)
        demanded += want
        served += got
        stock -= got
        waiting += want - got
        if want - got > 1e-9:
            stockout_days += 1
            if first_stockout is None:
                first_stockout = (start + dt.timedelta(days=day)).isoformat()
        qty = sku_rules.order_quantity(policy, round(stock + inbound - waiting), round(waiting))
        if qty:
            orders += 1
            ordered += qty
            arrivals[day + lead] = arrivals.get(day + lead, 0.0) + qty
            inbound += qty
        stock_sum += stock
        lowest = min(lowest, stock)
    return {
        "fill_rate": round(served / demanded, 4) if demanded else 1.0,
        "stockout_days": stockout_days,
        "first_stockout": first_stockout,
        "avg_on_hand": round(stock_sum / len(demand), 2) if demand else round(stock, 2),
        "min_on_hand": round(lowest, 2),
        "end_on_hand": round(stock, 2),
        "end_backordered": round(waiting, 2),
        "orders": orders,
        "ordered_units": ordered,
    }


POLICY_KEYS = ("reorder_point", "order_up_to", "safety_stock", "lead_time_days", "moq", "pack_size")


def policy(
    world: World, sku: str, changes: dict[str, Any], forecast: Sequence[float] | None, days: int, now: float
) -> dict[str, Any]:
    """``whatif.policy``: the SKU's fill and inventory over ``days`` days under its current
    policy and under the candidate (its policy with ``changes``)."""
    s = _sku(world, sku)
    candidate = msgspec.structs.replace(s.policy, **changes)
    problems = candidate.problems(world.settings.limits.max_quantity)
    if problems:
        raise InvalidInput("invalid_policy", "; ".join(problems))
    source, mean = daily_demand(world, s, forecast, now)
    if forecast:  # the forecast's days, then its mean beyond them
        demand = [float(x) for x in forecast[:days]] + [mean] * max(days - len(forecast), 0)
    else:
        demand = [mean] * days
    return {
        "sku": s.sku,
        "days": days,
        "demand_from": source,
        "daily_demand": round(mean, 3),
        "current": {k: getattr(s.policy, k) for k in POLICY_KEYS} | project(s, s.policy, demand, now),
        "candidate": {k: getattr(candidate, k) for k in POLICY_KEYS} | project(s, candidate, demand, now),
    }
