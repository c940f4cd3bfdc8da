"""One allocation planner: who gets a SKU's units now, and when the rest of each line comes.

Pure and synchronous. The live settle path (``sku_rules.settle``) allocates with
``allocate_now`` and the what-if reads (``actors.whatif``) predict with ``plan``, which
calls the same ``allocate_now`` for the units on hand: so a prediction of a receipt and
the allocations the real receipt makes cannot disagree (tests/unit/test_allocation_plan.py).

The service order is the queue's (``World.queue_key``: FIFO by order time, or priority by
rush, value and aging, expedited lines first); it does not change with time, so planning
is one walk down the queue. Ship-complete orders take their units like any other line
(they hold them until the order is complete); an order's date is the latest of its lines'.

Dates: available stock covers the head of the queue first, then open supply in the order
it arrives (``queue_index.SupplyCurve``): a line's date is "now" when stock covers it,
the expected date of the request that completes it, or None when open supply never does
(a reorder will give it a date). The same rule as ``World.expected_dates``.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable
from typing import Generic, NamedTuple, TypeVar

from backorder.actors.queue_index import Queueable, SupplyCurve

L = TypeVar("L", bound=Queueable)


class LinePlan(NamedTuple, Generic[L]):
    """One waiting line's plan: units it gets now from stock, and the date of the rest."""

    line: L
    place: int  # 0-based, in service order
    now: int  # units allocated from stock now
    date: str | None  # "now" | YYYY-MM-DD (the request that completes it) | None (no open supply does)


class Supply(NamedTuple):
    """An open request as the supply curve sees it (what-if supplies are built from these)."""

    request_id: str
    expected_date: str
    open_qty: int


def allocate_now(lines: Iterable[L], available: int) -> list[tuple[L, int]]:
    """Units on hand given to waiting lines in service order: the head first, each up to
    its need, until the units run out. The only allocation rule: settle applies it,
    ``plan`` predicts with it."""
    out: list[tuple[L, int]] = []
    left = available
    if left <= 0:
        return out
    for line in lines:
        need = line.need
        if need <= 0:
            continue
        take = need if need < left else left
        out.append((line, take))
        left -= take
        if not left:
            break
    return out


def plan(lines: Iterable[L], available: int, supply: SupplyCurve, limit: int | None = None) -> list[LinePlan[L]]:
    """The plan of every waiting line (the first ``limit``), in service order."""
    queue, nows, dates = schedule(lines, available, supply, limit)
    return [LinePlan(line, place, nows[place], dates[place]) for place, line in enumerate(queue)]


def schedule(
    lines: Iterable[L], available: int, supply: SupplyCurve, limit: int | None = None
) -> tuple[list[L], list[int], list[str | None]]:
    """``plan`` as three lists (the lines, units now, dates): what the what-if reads
    compare, without a record per line. Units now are ``allocate_now``'s; a line's date is
    ``queue_index.covering_date`` of the units up to and including it, found by walking the
    supply curve once (the units only grow along the queue) instead of a bisect per line."""
    queue = list(lines) if limit is None else list(itertools.islice(lines, limit))
    free = max(available, 0)
    nows = [0] * len(queue)
    given = allocate_now(queue, free)
    if given:
        k = 0
        for place, line in enumerate(queue):
            if line is given[k][0]:
                nows[place] = given[k][1]
                k += 1
                if k == len(given):
                    break
    cumulative, supply_dates = supply.cumulative, supply.dates
    n = len(cumulative)
    dates: list[str | None] = []
    append = dates.append
    ahead = j = 0
    for line in queue:
        need = line.need
        ahead += need
        if need <= 0 or ahead <= free:
            append("now")
            continue
        units = ahead - free
        while j < n and cumulative[j] < units:
            j += 1
        append(supply_dates[j] if j < n else None)
    return queue, nows, dates


def days_between(old: str | None, new: str | None, today: str) -> int | None:
    """Whole days from date ``old`` to ``new`` ("now" counts as ``today``, the engine's
    date); None if either is unknown (no open supply covers the line)."""
    if old is None or new is None:
        return None
    if old == new:
        return 0
    return (_day(new, today) - _day(old, today)).days


def _day(value: str, today: str) -> dt.date:
    return dt.date.fromisoformat(today if value == "now" else value)


def order_date(dates: Iterable[str | None]) -> str | None:
    """A ship-complete order's date: the latest of its lines' (None if one has none)."""
    latest = "now"
    for d in dates:
        if d is None:
            return None
        if d != "now" and (latest == "now" or d > latest):
            latest = d
    return latest
