"""Read views for the supervisor console (``skus.board``, ``orders.find``).

The dashboard needs, per SKU with waiting demand, what arrives next and how much of the
waiting demand the open supply covers, and by when — numbers ``skus.list`` does not give.
Computed from the model on demand, for the SKUs asked for only (the TUI re-fetches just
the SKUs an event touched).
"""

from __future__ import annotations

from backorder.actors.model import HOUR, Order, Sku, World
from backorder.actors.queue_index import covering_date
from backorder.actors.views import order_summary, sku_summary
from backorder.timeutil import iso_ts


def board_row(s: Sku, now: float) -> dict:
    """``sku_summary`` plus oldest wait, next inbound and coverage of the waiting demand."""
    out = sku_summary(s)
    nxt = min(s.inbound.values(), key=lambda r: (r.expected_date, r.request_id), default=None)
    # The same allocation of future supply as ``World.expected_dates``: available stock and
    # then open supply cover the lines in service order; the lines covered in full are a
    # prefix of the queue, found in its index; the units covered are all the supply there
    # is, up to what the queue waits for; every covered line's date is at most the last's.
    free, curve = max(s.available, 0), s.supply()
    covered_lines = s.queue.covered(free + curve.total)
    covered_units = min(free + curve.total, s.queue.units)
    all_covered = bool(s.queue) and covered_lines == len(s.queue)
    oldest_line = s.queue.oldest()
    oldest = oldest_line.t_order if oldest_line is not None else None
    out.update(
        oldest_wait_hours=round((now - oldest) / HOUR, 2) if oldest is not None else None,
        oldest_since=iso_ts(oldest) if oldest is not None else None,
        next_inbound=(
            {"request_id": nxt.request_id, "qty": nxt.open_qty, "expected_date": nxt.expected_date} if nxt else None
        ),
        covered_lines=covered_lines,
        covered_units=covered_units,
        covered_by=covering_date(free, curve, s.queue.units) if all_covered else None,
    )
    return out


def board(world: World, now: float, skus: list[str] | None, waiting: bool, offset: int, limit: int) -> dict:
    if skus is not None:
        pool = (world.skus[n] for n in dict.fromkeys(skus) if n in world.skus)
    else:
        pool = (s for s in world.skus.values() if not waiting or s.queue)
    rows = []
    for n, s in enumerate(pool):
        if n >= offset + limit:
            break
        if n >= offset:
            rows.append(board_row(s, now))
    return {"skus": rows, "offset": offset, "limit": limit}


def find_orders(world: World, query: str, limit: int) -> dict:
    """Orders whose id, external id or order number is ``query`` (exact), newest first.

    An order id is a dict lookup; external ids and order numbers are a scan of the
    orders (a supervisor's search, not a hot path).
    """
    found: list[Order] = []
    if query in world.orders:
        found.append(world.orders[query])
    for o in reversed(world.orders.values()):
        if len(found) >= limit:
            break
        if o.order_id != query and query in (o.spec.external_id, o.spec.order_number):
            found.append(o)
    out = [order_summary(world, o) for o in found]
    if len(out) < limit and world.archive is not None:  # closed orders out of memory (retention)
        out += world.archive.find(query, limit - len(out))
    return {"orders": out}
