"""Read views of the model, shaped for replies (plain dicts, encoded by msgspec).

Reads run on the trio thread between actor steps, and every decision applies its events
synchronously, so a view never sees half a decision.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from backorder.actors import threepl_changes
from backorder.actors.events import line_total
from backorder.actors.model import HOUR, Line, Notice, Order, Request, Shipment, Sku, World
from backorder.actors.promise_rules import promise_view
from backorder.actors.queue_index import expected_date
from backorder.timeutil import iso_date, iso_ts

KPI_TARGETS = {"fulfillment_rate": 0.95, "avg_reorder_lead_time_hours": 48.0, "order_accuracy": 1.0}
# The headline keys of ``stats`` (older readers use them): each is the since-start figure of
# one of the windowed KPIs (``stats.kpis``).
HEADLINE = {
    "fulfillment_rate": "backorder_fill_rate_lines",
    "avg_reorder_lead_time_hours": "reorder_lead_time_hours",
    "order_accuracy": "order_accuracy_post_backorder",
}


def why(world: World, line: Line, now: float) -> str:
    if line.rule == "lent":  # sku_rules.LENT: the audit's allocation_lent names the lender
        rule = "lent: units a ship-complete order could not ship before its next supply (no-harm lending)"
    elif line.rule == "priority" or (not line.rule and world.mode == "priority"):
        flags = "rush, " if line.rush else ""
        rule = f"priority: {flags}value {line.value:.2f}, waited {(now - line.t_order) / HOUR:.1f} h"
    else:
        rule = f"fifo: ordered {iso_ts(line.t_order)}, arrival #{line.arrival}"
    if line.expedited:  # ahead of every line not expedited, whatever the rule
        return f"expedited: {world.orders[line.order_id].expedited}; {rule}"
    return rule


def oldest_waiting(world: World, s: Sku) -> float | None:
    """Order time of the SKU's longest-waiting line (the queue index keeps it: not the head
    when expedited or higher-ranked lines are served first)."""
    line = s.queue.oldest()
    return None if line is None else line.t_order


def line_view(world: World, line: Line, now: float, position: int | None = None, expected: str | None = None) -> dict:
    out = {
        "line_no": line.line_no,
        "sku": line.sku,
        "qty": line.qty,
        "unit_price": str(line.unit_price),
        "requires_shipping": line.requires_shipping,
        "allocated": line.allocated,
        "backordered": line.need,
        "shipped": line.shipped,
        "cancelled": line.cancelled,
    }
    if line.requires_shipping and not line.cancelled:
        if line.need:
            out["queue_position"] = position
            out["expected_date"] = expected
            out["waiting_hours"] = round((now - line.t_order) / HOUR, 2)
        if line.rule or line.need:
            out["why"] = why(world, line, now)
    return out


def queue_place(world: World, line: Line) -> tuple[int | None, str | None]:
    """(1-based position in its SKU queue, expected date) of a waiting line: two lookups
    in the SKU's queue index and supply curve, whatever the queue's depth."""
    if not line.need:
        return None, None
    s = world.skus[line.sku]
    idx, ahead = s.queue.place(line)
    return idx + 1, expected_date(max(s.available, 0), s.supply(), ahead, line.need)


def order_result(world: World, order: Order, duplicate: bool) -> dict:
    """The order.submit result. A duplicate repeats the original per-line outcome."""
    lines = []
    for ln in order.lines:
        if duplicate:
            bo = ln.backordered_at_entry if ln.requires_shipping else 0
            alloc = ln.qty - bo if ln.requires_shipping else 0
        else:
            alloc, bo = (ln.allocated + ln.shipped, ln.need) if ln.requires_shipping else (0, 0)
        view = {"line_no": ln.line_no, "sku": ln.sku, "qty": ln.qty, "allocated": alloc, "backordered": bo}
        promise = world.promises.get((order.order_id, ln.line_no))
        if promise is not None:  # the first promise (promise_rules)
            view["promise"] = {"date": promise.date, "from": promise.source, "confidence": promise.confidence}
        lines.append(view)
    out = {
        "order_id": order.order_id,
        "status": order.status(world.shipments),
        "lines": lines,
        "shipments": list(order.shipments),
        "duplicate": duplicate,
    }
    if order.hold:
        out["hold"] = order.hold
    return out


def order_detail(world: World, order: Order, now: float) -> dict:
    spec = order.spec
    lines = []
    for ln, rec in zip(order.lines, spec.lines, strict=True):
        pos, date = queue_place(world, ln)
        view = line_view(world, ln, now, pos, date)
        view["discount"] = str(rec.discount)
        view["line_total"] = str(line_total(rec))
        view["channel_line_id"] = rec.channel_line_id
        promise = promise_view(world, order.order_id, ln, now)
        if promise is not None:
            view["promise"] = promise
        lines.append(view)
    merchandise = sum((line_total(rec) for rec in spec.lines), start=Decimal(0))
    return {
        "order_id": order.order_id,
        "channel": spec.channel,
        "account": spec.account,
        "external_id": spec.external_id,
        "order_number": spec.order_number,
        "status": order.status(world.shipments),
        "received_at": iso_ts(order.received_ts),
        "customer": spec.customer,
        "email": spec.email,
        "shipping_address": spec.shipping_address,
        "currency": spec.currency,
        "rush": spec.rush,
        "priority": spec.priority,
        "ship_complete": spec.ship_complete,
        "cancelled": order.cancelled,
        "cancel_reason": order.cancel_reason,
        "hold": order.hold,
        "expedited": order.expedited,  # why a person expedited it ("" = nobody did)
        "routed_to": order.routed_to or None,  # the 3PL that fulfils it; None: the site
        "threepl_change": threepl_changes.view(world, order.order_id),  # its last change sent to the 3PL
        "created_at": spec.created_at,
        # the channel's grand total; an order sent without totals: its lines' total
        "total": str(spec.totals.total if spec.totals is not None else merchandise),
        "totals": msgspec.to_builtins(spec.totals) if spec.totals is not None else None,
        "needs_address": spec.needs_address,
        "lines": lines,
        "shipments": [shipment_view(world.shipments[s]) for s in order.shipments],
    }


def order_summary(world: World, order: Order) -> dict:
    return {
        "order_id": order.order_id,
        "external_id": order.spec.external_id,
        "channel": order.spec.channel,
        "status": order.status(world.shipments),
        "received_at": iso_ts(order.received_ts),
        "lines": len(order.lines),
        "backordered": sum(ln.need for ln in order.lines),
    }


def shipment_view(sh: Shipment, label: bool = False) -> dict:
    out = {
        "shipment_id": sh.shipment_id,
        "order_id": sh.order_id,
        "status": sh.status,
        "items": [{"line_no": n, "sku": s, "qty": q} for n, s, q in sh.items],
        "created_at": iso_ts(sh.created_ts),
        "shipped_at": iso_ts(sh.shipped_ts) if sh.shipped_ts else None,
        "carrier": sh.carrier or None,
        "tracking_number": sh.tracking or None,
    }
    if sh.service or sh.tracking_status or sh.status == "label_pending":  # a remote carrier's
        out["service"] = sh.service or None
        out["tracking_status"] = sh.tracking_status or None
    if label:
        out["label_zpl"] = sh.label_zpl
    return out


def request_view(r: Request, now: float) -> dict:
    return {
        "request_id": r.request_id,
        "kind": r.kind,
        "sku": r.sku,
        "source": r.source,
        "qty": r.qty,
        "received": r.received,
        "status": "open" if r.closed_ts is None else "closed",
        "created_at": iso_ts(r.created_ts),
        "expected_date": r.expected_date,
        "overdue": r.closed_ts is None and r.expected_date < iso_date(now),
        "closed_at": iso_ts(r.closed_ts) if r.closed_ts else None,
        "lead_time_hours": (
            round((r.closed_ts - r.created_ts) / HOUR, 2) if r.closed_ts and r.status != "cancelled" else None
        ),
        # how it ended (received in full, short_closed, cancelled) and why; the PO it is a line of
        "outcome": None if r.closed_ts is None else r.status,
        "close_reason": r.close_reason,
        "po_id": r.po_id,
        "ordered": r.ordered,
        "open": r.open_qty,
        "acknowledged": r.acknowledged,
        "in_transit": r.in_transit,
        "ship_notices": [{"reference": ref, "qty": q} for ref, q in r.asns.items()],
        "over_delivered": r.over_delivered,
    }


def notice_view(n: Notice) -> dict:
    """An outbox notice as ``notifications.list`` shows it."""
    return {
        "notice_id": n.notice_id,
        "kind": n.kind,
        "audience": n.audience,
        "order_id": n.order_id,
        "request_id": n.request_id,
        "channel": n.channel,
        "status": n.status,
        "attempts": n.attempts,
        "queued_at": iso_ts(n.queued_ts),
        "last_at": iso_ts(n.last_ts),
        "last_error": n.last_error or None,
    }


def sku_summary(s: Sku) -> dict:
    return {
        "sku": s.sku,
        "on_hand": s.on_hand,
        "allocated": s.allocated,
        "available": s.available,
        "backordered": s.backordered,
        "waiting_lines": len(s.queue),
        "inbound": s.inbound_qty,
        "position": s.position,
        "reorder_point": s.policy.reorder_point,
        "state": sku_state(s),
    }


def sku_state(s: Sku) -> str:
    if s.backordered or (s.available <= 0 and s.queue):
        return "stock_out"
    if s.position <= s.policy.reorder_point and s.policy.order_up_to:
        return "below_reorder_point"
    return "ok"


def sku_view(world: World, s: Sku, now: float, lines: int) -> dict:
    out = sku_summary(s)
    waiting = []
    dates = world.expected_dates(s, upto=lines)
    rank = world.ranker(now)
    for n, (line, date) in enumerate(zip(s.queue.first(lines), dates, strict=False), 1):
        waiting.append(
            {
                "position": n,
                "order_id": line.order_id,
                "line_no": line.line_no,
                "qty": line.qty,
                "backordered": line.need,
                "rush": line.rush,
                "expedited": line.expedited,
                "rank": rank(line),
                "waiting_hours": round((now - line.t_order) / HOUR, 2),
                "expected_date": date,
                "why": why(world, line, now),
            }
        )
    out.update(
        policy=s.policy,
        known=s.known,
        received=s.received,
        over_delivered=s.over_delivered,
        adjusted=s.adjusted,
        shipped=s.shipped,
        oldest_wait_hours=round((now - oldest) / HOUR, 2) if (oldest := oldest_waiting(world, s)) is not None else None,
        inbound_requests=[request_view(r, now) for r in sorted(s.inbound.values(), key=lambda r: r.expected_date)],
        waiting=waiting,
    )
    return out


def kpi_report(world: World, now: float) -> dict:
    """Every windowed KPI (``kpi.Kpi.report``): per KPI its formula, target, help text and
    one entry per window with numerator, denominator and value."""
    return world.kpi.report(now, iso_date(now))


def kpis(world: World, now: float, report: dict | None = None) -> dict:
    """The figures the metrics loop reads on every refresh: one pass over the SKUs, no
    oldest-wait scan (stats() adds that and the other counts for the `stats` op)."""
    report = kpi_report(world, now) if report is None else report
    headline = {key: _since_start(report[name]) for key, name in HEADLINE.items()}
    return {
        **headline,
        "open_backorder_lines": sum(len(s.queue) for s in world.skus.values()),
        "units_waiting": sum(s.backordered for s in world.skus.values()),
        "orders": len(world.orders) + world.n_archived,  # archived ones too (retention)
        "dead_letters": len(world.dead_letters),
    }


def _since_start(kpi: dict) -> float | None:
    return next(w["value"] for w in kpi["windows"] if w["window"] == "all")


def stats(world: World, now: float) -> dict:
    report = kpi_report(world, now)
    k = kpis(world, now, report)
    oldest = min((t for s in world.skus.values() if (t := oldest_waiting(world, s)) is not None), default=None)
    return {
        "now": iso_ts(now),
        "fulfillment_rate": k["fulfillment_rate"],
        "avg_reorder_lead_time_hours": k["avg_reorder_lead_time_hours"],
        "order_accuracy": k["order_accuracy"],
        "targets": KPI_TARGETS,
        "kpis": report,
        "counts": {
            "orders": k["orders"],
            "skus": len(world.skus),
            "backordered_lines_total": world.bo_lines,
            "backordered_lines_filled": world.bo_filled,
            "backordered_lines_cancelled": world.bo_cancelled,
            "reorders_closed": world.lead_time_n,
            "reorders_open": sum(1 for r in world.requests.values() if r.closed_ts is None),
            "orders_shipped": world.orders_shipped,
            "orders_inaccurate": len(world.inaccurate_orders),
            "double_shipments": world.double_shipments,
            "open_backorder_lines": k["open_backorder_lines"],
            "units_waiting": k["units_waiting"],
            "oldest_wait_hours": round((now - oldest) / HOUR, 2) if oldest is not None else None,
            "shipments_today": world.shipped_by_day.get(iso_date(now), 0),
            "notices_queued": world.notices_queued,
            "dead_letters": k["dead_letters"],
            "shipment_exceptions": world.kpi.exceptions,
            "pick_mismatches": world.kpi.pick_mismatches,
            "orders_with_exceptions": len(world.kpi.flagged),
            "hot_orders": len(world.orders),  # in memory; the rest are archived ([retention])
            "archived_orders": world.n_archived,
            "archived_requests": world.n_requests_archived,  # closed POs / transfers out of memory
            "archived_notices": sum(world.notices_archived.values()),  # delivered / unrouted ones
        },
        # per kind of promise, how many were kept and missed (promise_outcomes): what a
        # new promise's confidence is drawn from
        "promises": {
            kind: {"kept": kept, "missed": missed} for kind, (kept, missed) in sorted(world.promise_outcomes.items())
        },
    }
