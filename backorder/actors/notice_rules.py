"""Which notices the engine queues, decided from the model like every other decision
(pure, synchronous, called by the actors right after the change that causes them, so a
notice is journaled in the same commit as its cause and replay reproduces it).

Customer notices: backordered (with each waiting line's expected date), partially
shipped / shipped, cancelled, and depletion (the inbound supply a line waits for is
overdue; and the causes of ``depletion_rules``). Supplier notices: the purchase-order or
transfer document of a new request, for sources with a ``deliver`` channel.

A line's delay (its ship-by date moved later than the date its customer was last told) is
``promise_rules.recheck``'s: every waiting line has a promise, whose ``told`` is the one
record of the date last told.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from backorder.actors import depletion_rules
from backorder.actors import events as ev
from backorder.actors.model import Line, Order, Request, Shipment, Sku, World
from backorder.timeutil import iso_date

Emit = Callable[[ev.Event], None]
_BY_DATE = operator.attrgetter("expected_date", "request_id")  # supply in the order it arrives


def _route(world: World, order: Order) -> str:
    spec = order.spec
    return world.settings.notifications.route(spec.channel, spec.account)


def routes_any(world: World) -> bool:
    """Whether any sales channel / account has a customer route at all (a site without
    notifications skips the per-order work outright)."""
    return any(ch != "none" for ch in world.settings.notifications.routes.values())


def _customer(
    world: World,
    order: Order,
    kind: str,
    subject: str,
    body: str,
    data: dict[str, Any],
    emit: Emit,
    now: float,
    route: str | None = None,
) -> ev.NoticeQueued | None:
    """Queue a customer notice, or nothing (None) when the site routes no notices for the
    order's sales channel / account: a notice that can never be sent is not worth a journal
    event and an outbox row per order (the journal keeps the facts: line_backordered,
    units_shipped, order_cancelled...), just as ``purchase_order`` queues nothing for a
    source without ``deliver``. ``route``: the order's route when the caller already looked it up."""
    spec = order.spec
    channel = _route(world, order) if route is None else route
    if channel == "none":
        return None
    if channel == "email" and not spec.email:
        channel = "none"  # a route exists but cannot reach this customer: kept as unrouted
    number = spec.order_number or order.order_id
    e = ev.NoticeQueued(
        ts=now,
        notice_id=world.next_id("notice"),
        order_id=order.order_id,
        kind=kind,
        email=spec.email,
        subject=subject.format(number=number),
        body=body,
        channel=channel,
        data={
            "order_number": number,
            "customer": spec.customer.name or spec.shipping_address.name,
            "email": spec.email,
            "channel": spec.channel,
            "account": spec.account,
            **data,
        },
    )
    emit(e)
    return e


def line_expected_date(world: World, s: Sku, line: Line) -> str | None:
    """Expected date of a newly backordered line, taking it to wait behind all the SKU's
    other waiting demand (exact for the back of the queue, which a new line is under FIFO;
    never earlier than the truth otherwise). Walks the open requests only, not the queue."""
    remaining = s.backordered - max(s.available, 0)
    for r in sorted(s.inbound.values(), key=_BY_DATE):
        remaining -= r.qty - r.received  # s.inbound holds open requests only
        if remaining <= 0:
            return r.expected_date
    return None


def backordered(world: World, s: Sku, lines: list[Line], emit: Emit, now: float) -> list[ev.NoticeQueued]:
    """Lines of SKU ``s`` were just backordered (``sku_rules.settle``): one notice per order,
    in the same step - so in the same commit - as the ``line_backordered`` facts and the
    reorder that gives them a date. Orders without a route get none (see ``_customer``),
    decided before their dates are computed: this runs for every backordered line."""
    if not routes_any(world):
        return []
    routed: dict[str, str] = {}  # order_id -> its route; looked up once per order
    by_order: dict[str, list[dict[str, Any]]] = {}
    for ln in lines:  # all still short: settle passes only those
        route = routed.get(ln.order_id)
        if route is None:
            route = routed[ln.order_id] = _route(world, world.orders[ln.order_id])
        if route != "none":  # no route: skip the date and the dicts, the hot path of an unrouted site
            by_order.setdefault(ln.order_id, []).append(
                {
                    "line_no": ln.line_no,
                    "sku": ln.sku,
                    "qty": ln.qty,
                    "waiting": ln.need,
                    "expected_date": line_expected_date(world, s, ln),
                }
            )
    out = []
    for order_id, info in by_order.items():
        e = _customer(
            world,
            world.orders[order_id],
            "backordered",
            "Order {number}: some items are backordered",
            f"{len(info)} line(s) backordered",
            {"lines": info},
            emit,
            now,
            routed[order_id],
        )
        if e is not None:
            out.append(e)
    return out


def shipped(
    world: World, order: Order, sh: Shipment, carrier: str, tracking: str, emit: Emit, now: float
) -> ev.NoticeQueued | None:
    route = _route(world, order)
    if route == "none":  # no notice: skip building its content (see ``_customer``)
        return None
    items = [{"line_no": n, "sku": sku, "qty": q} for n, sku, q in sh.items]
    complete = order.status(world.shipments) == "shipped"
    kind = "shipped" if complete else "partially_shipped"
    url = world.settings.notifications.tracking_url.replace("{tracking}", tracking)
    return _customer(
        world,
        order,
        kind,
        "Order {number} has shipped" if complete else "Order {number}: part of it has shipped",
        f"{sh.units} unit(s) shipped with {carrier}, tracking number {tracking}.",
        {"shipment_id": sh.shipment_id, "carrier": carrier, "tracking": tracking, "tracking_url": url, "items": items},
        emit,
        now,
        route,
    )


def tracking(
    world: World, order: Order, sh: Shipment, status: str, detail: str, emit: Emit, now: float
) -> ev.NoticeQueued | None:
    """A carrier reported the parcel delivered, or in exception (delayed, returned, lost)."""
    url = world.settings.notifications.tracking_url.replace("{tracking}", sh.tracking)
    data = {"shipment_id": sh.shipment_id, "carrier": sh.carrier, "tracking": sh.tracking, "tracking_url": url}
    if status == "delivered":
        subject, body = "Order {number} was delivered", f"Shipment {sh.shipment_id} was delivered."
    else:
        subject = "Order {number}: a problem with the delivery"
        body = f"The carrier reports a problem with shipment {sh.shipment_id}: {detail or 'exception'}."
    return _customer(world, order, status, subject, body, {**data, "detail": detail}, emit, now)


def cancelled(world: World, order: Order, reason: str, emit: Emit, now: float) -> ev.NoticeQueued | None:
    return _customer(
        world,
        order,
        "cancelled",
        "Order {number} was cancelled",
        reason or "Cancelled on request.",
        {"reason": reason},
        emit,
        now,
    )


def purchase_order(world: World, r: Request, emit: Emit, now: float) -> ev.NoticeQueued | None:
    """A new purchase order's document for its source, when the source has a delivery
    channel: queued for the request that opens the PO. A PO that takes lines for
    ``[procurement] consolidate_hours`` is held by the notifier until ``send_after``, and
    its documents are rendered then, with every line."""
    src = world.settings.sources.get(r.source)
    if src is None or src.deliver == "none":
        return None
    kind = "Transfer request" if r.kind == "transfer" else "Purchase order"
    e = ev.NoticeQueued(
        ts=now,
        notice_id=world.next_id("notice"),
        kind="purchase_order",
        email=src.email,
        subject=f"{kind} {r.request_id}",
        # a PO that takes lines for a while: its lines are those of the documents sent with it
        body=f"{r.qty} x {r.sku} by {r.expected_date}"
        if r.send_after is None
        else f"{kind} {r.request_id}: every line is in the attached documents",
        channel=src.deliver,
        audience="supplier",
        request_id=r.request_id,
        data={
            "request_id": r.request_id,
            "kind": r.kind,
            "sku": r.sku,
            "qty": r.qty,
            "expected_date": r.expected_date,
            "source": r.source,
            "source_name": src.name,
            "edi": src.edi,
            # its lines are known when it goes out: the documents list them, the text says so
            "consolidated": r.send_after is not None,
        },
    )
    emit(e)
    return e


def depletion(world: World, emit: Emit, now: float, skus: list[Sku] | None = None) -> list[ev.NoticeQueued]:
    """Customers whose waiting lines depend on an overdue open request, told once per
    (order, request) - before the date they were promised passes for good (cause
    ``supply_overdue``); then the projection's causes (``depletion_rules.warn``). For
    ``skus`` (a slice of ``depletion_rules.waiting_skus``), default every SKU."""
    if not routes_any(world):
        return []
    today = iso_date(now)
    out = []
    if skus is None:
        skus = depletion_rules.waiting_skus(world)
    # only SKUs with waiting lines and open requests (s.inbound) can have a late supply:
    # never walk every request ever made
    for s in skus:
        if not (s.queue and s.inbound):
            continue
        overdue = {r.request_id: r for r in s.inbound.values() if r.expected_date < today}
        if not overdue:
            continue
        by_date = {r.expected_date: r for r in sorted(s.inbound.values(), key=lambda r: r.request_id)}
        warn: dict[str, list[dict[str, Any]]] = {}
        for line, date in zip(list(s.queue), world.expected_dates(s), strict=True):
            r = by_date.get(date) if date not in (None, "now") else None
            if r is None or r.request_id not in overdue or (line.order_id, r.request_id) in world.warned:
                continue
            warn.setdefault(line.order_id, []).append(
                {"line_no": line.line_no, "sku": line.sku, "expected_date": date, "request_id": r.request_id}
            )
        for order_id, lines in warn.items():
            # An order without a route is never marked warned, so it is looked at again on
            # every check and skipped here again: cheap, and a route added later still warns.
            e = _customer(
                world,
                world.orders[order_id],
                "depletion",
                "Order {number}: a delivery we wait for is late",
                "supply overdue",
                {"lines": lines, "cause": "supply_overdue", "warned": sorted({li["request_id"] for li in lines})},
                emit,
                now,
            )
            if e is not None:
                out.append(e)
    out += depletion_rules.warn(world, emit, now, _customer, skus)
    return out
