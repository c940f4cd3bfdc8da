"""What the order/fulfillment actor decides: intake, shipments, shipping once, cancelling.

Pure and synchronous like ``sku_rules``: read the model, decide, ``emit`` facts.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import msgspec

from backorder.actors import events as ev
from backorder.actors import notice_rules, writeback_rules
from backorder.actors.carrier import CARRIERS, Carrier, route, zpl_label
from backorder.actors.model import AT_THREEPL, Order, Shipment, World
from backorder.actors.sku_rules import Emit
from backorder.email_address import check_email
from backorder.errors import Conflict, InvalidInput, NotFound
from backorder.order import Address, CanonicalOrder, OrderLine, Totals
from backorder.protocol import ExceptionLine, OrderSubmit, ScanLine
from backorder.timeutil import format_utc, iso_ts, parse_datetime, parse_ts

# A source's created_at is clamped to [2000-01-01, the time received + 1 day]: a clock
# skewed by a time zone stays as sent, a date of 0001-01-01 or 2999 does not.
CREATED_AT_MIN = 946684800.0  # 2000-01-01T00:00:00Z
CREATED_AT_SKEW_S = 86400.0


def canonical_version(text: str | None) -> str | None:
    """A source's version as intake compares them, as text: RFC 3339 UTC with microseconds
    (``draft.version_ts``). Given in any other form, versions would sort by their spelling."""
    if text is None:
        return None
    try:
        return format_utc(parse_datetime(text), micro=True)
    except (ValueError, OverflowError):
        raise InvalidInput("invalid_date", f"source_version {text!r} is not an RFC 3339 timestamp") from None


def _check_known_skus(world: World, lines: list[OrderLine]) -> None:
    """With ``strict_skus`` on, every shipping line must name a configured SKU."""
    if world.settings.strict_skus:
        unknown = sorted(
            {li.sku for li in lines if li.requires_shipping and not (li.sku in world.skus and world.skus[li.sku].known)}
        )
        if unknown:
            raise NotFound("unknown_sku", f"unknown SKU(s) {', '.join(unknown)} (strict_skus is on)")


def _check_amount(world: World, name: str, amount: Decimal, negative: bool = False) -> None:
    """An amount finite, >= 0 (unless ``negative``) and within ``[limits] max_money``."""
    limit = world.settings.limits.max_money
    if not amount.is_finite() or (amount < 0 and not negative):  # NaN < 0 raises InvalidOperation
        raise InvalidInput("invalid_price", f"{name} must be a decimal >= 0, got {amount}")
    if abs(amount) > limit:
        raise InvalidInput("invalid_price", f"{name} {amount} is over the site's limit of {limit} ([limits] max_money)")


def _check_totals(world: World, totals: Totals | None) -> None:
    """Order totals within the site's ``[limits]``; only fees may be negative (a fee line
    that is a credit)."""
    if totals is not None:
        for name in Totals.__struct_fields__:
            _check_amount(world, f"totals.{name}", getattr(totals, name), negative=name == "fees")


def _check_lines(world: World, lines: list[OrderLine]) -> None:
    """Quantities and prices within the site's ``[limits]``; prices finite and >= 0."""
    limits = world.settings.limits
    for li in lines:
        if li.qty > limits.max_quantity:
            raise InvalidInput(
                "invalid_quantity",
                f"qty {li.qty} of {li.sku} is over the site's limit of "
                f"{limits.max_quantity} units ([limits] max_quantity)",
            )
        if not li.unit_price.is_finite() or li.unit_price < 0:  # NaN < 0 raises InvalidOperation
            raise InvalidInput("invalid_price", f"unit_price of {li.sku} must be a decimal >= 0")
        if li.unit_price > limits.max_money:
            raise InvalidInput(
                "invalid_price",
                f"unit_price {li.unit_price} of {li.sku} is over the site's "
                f"limit of {limits.max_money} ([limits] max_money)",
            )
        if li.discount:
            _check_amount(world, f"discount of {li.sku}", li.discount)
        if li.line_total is not None:
            _check_amount(world, f"line_total of {li.sku}", li.line_total)


def line_records(lines: list[OrderLine]) -> list[ev.LineRecord]:
    return [
        ev.LineRecord(
            sku=li.sku,
            qty=li.qty,
            unit_price=li.unit_price,
            requires_shipping=li.requires_shipping,
            discount=li.discount,
            line_total=li.line_total,
            channel_line_id=li.channel_line_id,
        )
        for li in lines
    ]


def totals_record(t: Totals | None) -> ev.TotalsRecord | None:
    if t is None:
        return None
    return ev.TotalsRecord(
        subtotal=t.subtotal, discount=t.discount, shipping=t.shipping, fees=t.fees, tax=t.tax, total=t.total
    )


def address_record(a: Address) -> ev.AddressRecord:
    return ev.AddressRecord(
        name=a.name,
        company=a.company,
        address1=a.address1,
        address2=a.address2,
        city=a.city,
        region=a.region,
        postal_code=a.postal_code,
        country_code=a.country_code,
        phone=a.phone,
    )


def order_record(o: CanonicalOrder) -> ev.OrderRecord:
    """The order as the journal records it: its own struct, field by field (the request's
    ``op`` and ``id`` are the wire's, not the order's; the id is echoed in the reply)."""
    c = o.customer
    return ev.OrderRecord(
        channel=o.channel,
        account=o.account,
        external_id=o.external_id,
        order_number=o.order_number,
        customer=ev.CustomerRecord(id=c.id, name=c.name),
        email=o.email,
        shipping_address=address_record(o.shipping_address),
        created_at=o.created_at,
        currency=o.currency,
        lines=line_records(o.lines),
        rush=o.rush,
        priority=o.priority,
        ship_complete=o.ship_complete,
        hold=o.hold,
        source_version=o.source_version,
        totals=totals_record(o.totals),
        needs_address=o.needs_address,
    )


def submit(world: World, req: OrderSubmit, emit: Emit, now: float) -> tuple[Order, bool]:
    """Accept an order once per (channel, account, external_id); returns (order, duplicate)."""
    known = world.by_key.get((req.channel, req.account, req.external_id))
    if known is not None:
        return world.orders[known], True
    if req.created_at is not None:
        try:
            created = parse_ts(req.created_at)
        except (ValueError, OverflowError):
            raise InvalidInput("invalid_date", f"created_at {req.created_at!r} is not an RFC 3339 timestamp") from None
        # informational only (queues use the time received), but kept believable
        believable = min(max(created, CREATED_AT_MIN), now + CREATED_AT_SKEW_S)
        if believable != created:
            req = msgspec.structs.replace(req, created_at=iso_ts(believable))
    version = canonical_version(req.source_version)
    if version != req.source_version:
        req = msgspec.structs.replace(req, source_version=version)
    check_email(req.email)  # one address: a list would mail everyone it names
    _check_known_skus(world, req.lines)
    _check_lines(world, req.lines)
    _check_totals(world, req.totals)
    order_id = world.next_id("order")
    emit(ev.OrderReceived(ts=now, order_id=order_id, order=order_record(req)))
    return world.orders[order_id], False


def settle_order(world: World, order: Order, emit: Emit, now: float, auto_pick: Carrier | None = None) -> list[str]:
    """Send an order's allocated units to picking (``settle_orders``)."""
    return settle_orders(world, [order], emit, now, auto_pick)


def settle_orders(
    world: World, orders: list[Order], emit: Emit, now: float, auto_pick: Carrier | None = None
) -> list[str]:
    """Send allocated units to picking: for each order everything allocated (split
    shipments, the default) or, for ship-complete orders, only once every line is fully
    allocated; at most one new shipment per order. The shipments are one
    ``shipments_created`` event (a fill's orders come in chunks of ``SETTLED_CHUNK``:
    one journal row per chunk, not per order). Returns their ids."""
    ready = []
    for order in dict.fromkeys(orders):  # an order named twice would ship its units twice
        if order.cancelled:
            continue
        lines = order.shipping_lines
        items = [(ln.line_no, ln.sku, ln.allocated - ln.in_shipment) for ln in lines if ln.allocated > ln.in_shipment]
        if items and not (order.spec.ship_complete and any(ln.need for ln in lines)):
            ready.append((order, items))
    if not ready:
        return []
    ids = world.next_shipment_ids(len(ready))
    made = [
        ev.CreatedShipment(shipment_id=sid, order_id=order.order_id, items=items)
        for sid, (order, items) in zip(ids, ready, strict=True)
    ]
    emit(ev.ShipmentsCreated(ts=now, shipments=made))
    if auto_pick is not None:
        for sid, (order, _items) in zip(ids, ready, strict=True):
            if not order.spec.needs_address:
                ship(world, sid, auto_pick, emit, now)
    return ids


def may_borrow_at(world: World, order: Order, served_by: str) -> str | None:
    """The SKU to settle again after ``served_by`` gave ``order`` units: when a
    ship-complete order is left waiting on one line of another SKU that has units held
    (``Sku.holders``), that line could now ship on a loan (``allocation_plan.lend`` passed
    over it while its order waited for more); its SKU's actor is not told otherwise (no
    event of its own). None: nothing to ask."""
    if not order.spec.ship_complete or order.cancelled or order.hold or order.routed_to:
        return None
    waiting = [ln for ln in order.shipping_lines if ln.need > 0]
    if len(waiting) != 1 or waiting[0].sku == served_by:
        return None
    s = world.skus.get(waiting[0].sku)
    return s.sku if s is not None and s.holders else None


def ship(world: World, shipment_id: str, carrier: Carrier, emit: Emit, now: float) -> Shipment:
    """Label and ship a picked shipment exactly once; a repeat returns the same label."""
    sh = world.shipments.get(shipment_id)
    if sh is None:
        raise NotFound("unknown_shipment", f"no shipment {shipment_id!r}")
    if sh.status == "shipped":
        return sh
    if sh.status == "cancelled":
        raise Conflict("order_cancelled", f"shipment {shipment_id} belongs to cancelled order {sh.order_id}")
    if sh.status == AT_THREEPL:
        raise Conflict("routed_to_threepl", f"shipment {shipment_id} is fulfilled by the 3PL; its webhook ships it")
    order = world.orders[sh.order_id]
    if order.spec.needs_address:
        raise Conflict(
            "address_needed",
            f"order {order.order_id} has no street address yet (its channel withheld it): "
            "set it with order.address before labelling",
        )
    if sh.status == "label_pending":  # picked already; its label is being bought
        return sh
    name = route(world.settings.fulfillment, order.spec.channel, order.spec.rush)
    if name != carrier.name and name != world.settings.fulfillment.carrier:
        carrier = CARRIERS[name]()  # routed elsewhere than the default (an injected default stays)
    if carrier.remote:
        _queue_label(world, order, sh, carrier.name, emit, now)
        return sh
    tracking = carrier.tracking_number(shipment_id)
    _shipped(world, order, sh, carrier.name, tracking, zpl_label(order, sh, carrier.name, tracking), emit, now)
    return sh


def _queue_label(world: World, order: Order, sh: Shipment, carrier: str, emit: Emit, now: float) -> None:
    """The label of a remote carrier is bought by the notifier, through the outbox (durable,
    retried with backoff, behind the carrier's breaker, dead with the carrier's message):
    picking goes on meanwhile, and the shipment is ``label_pending`` until it is bought."""
    notice_id = world.next_id("notice")
    emit(
        ev.NoticeQueued(
            ts=now,
            notice_id=notice_id,
            order_id=order.order_id,
            kind="label",
            email="",
            subject=f"Label for shipment {sh.shipment_id} ({carrier})",
            body="",
            channel="carrier",
            audience="carrier",
            data={"shipment_id": sh.shipment_id, "carrier": carrier, "rush": order.spec.rush},
        )
    )
    emit(
        ev.ShipmentLabelPending(
            ts=now, shipment_id=sh.shipment_id, order_id=order.order_id, carrier=carrier, notice_id=notice_id
        )
    )


def _shipped(
    world: World,
    order: Order,
    sh: Shipment,
    carrier: str,
    tracking: str,
    label_zpl: str,
    emit: Emit,
    now: float,
    **remote: str,
) -> None:
    emit(
        ev.ShipmentShipped(
            ts=now,
            shipment_id=sh.shipment_id,
            order_id=order.order_id,
            carrier=carrier,
            tracking=tracking,
            label_zpl=label_zpl,
            **remote,
        )
    )
    for line_no, sku, qty in sh.items:
        emit(
            ev.UnitsShipped(
                ts=now, sku=sku, order_id=order.order_id, line_no=line_no, qty=qty, shipment_id=sh.shipment_id
            )
        )
    notice_rules.shipped(world, order, sh, carrier, tracking, emit, now)
    writeback_rules.shipped(world, order, sh, carrier, tracking, emit, now)


def label_bought(
    world: World,
    shipment_id: str,
    tracking: str,
    label_zpl: str,
    label_pdf: str,
    service: str,
    carrier_ref: str,
    emit: Emit,
    now: float,
) -> str:
    """A remote carrier sold the label of a ``label_pending`` shipment: it ships (units out,
    the customer's shipped notice). If the order was cancelled while the label was being
    bought, the label is voided instead (a ``label_void`` notice to the carrier). Returns
    what happened: "shipped", "void_queued" or "ignored" (already shipped: a repeat)."""
    sh = world.shipments[shipment_id]
    order = world.orders[sh.order_id]
    if sh.status == "cancelled":
        queue_void(world, sh, tracking, carrier_ref, emit, now)
        return "void_queued"
    if sh.status != "label_pending":
        return "ignored"
    _shipped(
        world,
        order,
        sh,
        sh.carrier,
        tracking,
        label_zpl,
        emit,
        now,
        label_pdf=label_pdf,
        service=service,
        carrier_ref=carrier_ref,
    )
    return "shipped"


def queue_void(world: World, sh: Shipment, tracking: str, carrier_ref: str, emit: Emit, now: float) -> None:
    """Ask the carrier to void (refund) a bought label, through the outbox like the purchase."""
    emit(
        ev.NoticeQueued(
            ts=now,
            notice_id=world.next_id("notice"),
            order_id=sh.order_id,
            kind="label_void",
            email="",
            subject=f"Void label of shipment {sh.shipment_id} ({sh.carrier})",
            body="",
            channel="carrier",
            audience="carrier",
            data={
                "shipment_id": sh.shipment_id,
                "carrier": sh.carrier,
                "carrier_ref": carrier_ref,
                "tracking": tracking,
            },
        )
    )


def tracked(world: World, shipment_id: str, status: str, detail: str, emit: Emit, now: float) -> bool:
    """A carrier's tracking update: journaled when the status changes, with the customer's
    delivered / exception notice. Returns whether anything changed."""
    sh = world.shipments[shipment_id]
    if sh.tracking_status == status and sh.tracking_detail == detail[:200]:
        return False
    emit(ev.ShipmentTracked(ts=now, shipment_id=shipment_id, order_id=sh.order_id, status=status, detail=detail[:200]))
    if status in ("delivered", "exception"):
        notice_rules.tracking(world, world.orders[sh.order_id], sh, status, detail, emit, now)
    return True


def check_scan(world: World, shipment_id: str, scanned: list[ScanLine], emit: Emit, now: float) -> None:
    """A pick scan must match the picking shipment, SKU by SKU (quantities summed). A
    mismatch is recorded (``pick_mismatched``: it counts against the order's accuracy) and
    the pick refused (``pick_mismatch``), nothing shipped. A scan naming a SKU the site does
    not know is bad input: refused, nothing recorded. A shipment already shipped or
    cancelled is left to ``ship`` (a resent confirm returns the same label)."""
    sh = world.shipments.get(shipment_id)
    if sh is None:
        raise NotFound("unknown_shipment", f"no shipment {shipment_id!r}")
    limit = world.settings.limits.max_quantity
    got: dict[str, int] = {}
    for item in scanned:
        if item.sku not in world.skus:
            raise NotFound("unknown_sku", f"scanned SKU {item.sku!r} is not known")
        if item.qty > limit:
            raise InvalidInput(
                "invalid_quantity", f"scanned qty {item.qty} of {item.sku} is over the site's limit of {limit} units"
            )
        got[item.sku] = got.get(item.sku, 0) + item.qty
    if sh.status != "picking":
        return
    want: dict[str, int] = {}
    for _line_no, sku, qty in sh.items:
        want[sku] = want.get(sku, 0) + qty
    if got == want:
        return
    emit(
        ev.PickMismatched(
            ts=now,
            shipment_id=shipment_id,
            order_id=sh.order_id,
            expected=sorted(want.items()),
            scanned=sorted(got.items()),
        )
    )
    diffs = ", ".join(
        f"{sku} {got.get(sku, 0)} scanned, {want.get(sku, 0)} expected"
        for sku in sorted(got.keys() | want.keys())
        if got.get(sku, 0) != want.get(sku, 0)
    )
    raise Conflict("pick_mismatch", f"the scan does not match shipment {shipment_id}: {diffs}; nothing shipped")


def record_exception(
    world: World, shipment_id: str, kind: str, lines: list[ExceptionLine], note: str, emit: Emit, now: float
) -> ev.ShipmentException:
    """Record what went wrong with a shipped shipment. The lines named must be items of the
    shipment, for at most the units it carried of each."""
    sh = world.shipments.get(shipment_id)
    if sh is None:
        raise NotFound("unknown_shipment", f"no shipment {shipment_id!r}")
    if sh.status != "shipped":
        raise Conflict("not_shipped", f"shipment {shipment_id} is {sh.status}, not shipped: nothing to record yet")
    carried: dict[int, tuple[str, int]] = {}
    for line_no, sku, qty in sh.items:
        carried[line_no] = (sku, carried.get(line_no, (sku, 0))[1] + qty)
    named: dict[int, int] = {}
    for li in lines:
        if li.line_no not in carried:
            raise InvalidInput(
                "invalid_request",
                f"line {li.line_no} is not in shipment {shipment_id} (its lines: {', '.join(map(str, carried))})",
            )
        named[li.line_no] = named.get(li.line_no, 0) + li.qty
    for line_no, qty in named.items():
        sku, shipped = carried[line_no]
        if qty > shipped:
            raise InvalidInput(
                "invalid_quantity",
                f"line {line_no} ({sku}) of shipment {shipment_id} carried {shipped} unit(s), not {qty}",
            )
    e = ev.ShipmentException(
        ts=now,
        shipment_id=shipment_id,
        order_id=sh.order_id,
        kind=kind,
        lines=[(line_no, carried[line_no][0], qty) for line_no, qty in named.items()],
        note=note,
    )
    emit(e)
    return e


def cancel(world: World, order_id: str, reason: str, emit: Emit, now: float) -> list[str]:
    """Cancel before shipping; returns the SKUs whose released units must be re-served, in
    line order (not a set: a set of strings iterates in an order that changes with each
    process's hash seed, and the SKUs are re-served in this order)."""
    order = world.orders.get(order_id)
    if order is None:
        raise NotFound("unknown_order", f"no order {order_id!r}")
    if order.cancelled:
        return []
    status = order.status(world.shipments)
    if status == "shipped":
        raise Conflict("already_shipped", f"order {order_id} has shipped and cannot be cancelled")
    if order.routed_to:
        raise Conflict(
            "routed_to_threepl", f"order {order_id} was sent to the 3PL ({order.routed_to}); cancel it there first"
        )
    return cancelled(world, order, reason, emit, now)


def cancelled(world: World, order: Order, reason: str, emit: Emit, now: float) -> list[str]:
    """The facts of a cancellation decided (by ``cancel``, or by the 3PL's answer to one):
    the order and its unshipped lines go, the customer and the channel are told. Returns
    the SKUs to re-serve, in line order."""
    order_id = order.order_id
    emit(ev.OrderCancelled(ts=now, order_id=order_id, reason=reason))
    touched: dict[str, None] = {}
    for ln in order.shipping_lines:
        if ln.shipped < ln.qty:
            emit(ev.LineReleased(ts=now, sku=ln.sku, order_id=order_id, line_no=ln.line_no, freed=ln.allocated))
            touched[ln.sku] = None
    notice_rules.cancelled(world, order, reason, emit, now)
    writeback_rules.cancelled(world, order, reason, emit, now)
    return list(touched)


def release(
    world: World, order_id: str, reason: str, emit: Emit, now: float, source_version: str | None = None
) -> Order | None:
    """Lift a payment hold; returns the order, or None when it was not held (nothing to do)."""
    order = world.orders.get(order_id)
    if order is None:
        raise NotFound("unknown_order", f"no order {order_id!r}")
    if not order.hold or order.cancelled:
        return None
    source_version = canonical_version(source_version)
    emit(ev.OrderReleased(ts=now, order_id=order_id, reason=reason or "released", source_version=source_version))
    return order


def same_lines(a: list[OrderLine], b: list[ev.LineRecord]) -> bool:
    """Whether requested lines ``a`` are the order's recorded lines ``b``, field for field."""
    return line_records(a) == b


def amendable(order: Order) -> bool:
    """Its lines may still be replaced: not cancelled, nothing allocated or shipped."""
    return not order.cancelled and not order.shipments and not any(ln.allocated or ln.shipped for ln in order.lines)


def amend(
    world: World,
    order_id: str,
    lines: list[OrderLine],
    reason: str,
    emit: Emit,
    now: float,
    source_version: str | None = None,
    totals: Totals | None = None,
) -> Order | None:
    """Replace the lines of an order before anything was allocated to it (a source's
    change before allocation), and its totals when given. Returns the order, or None when
    the lines and totals are the same."""
    order = world.orders.get(order_id)
    if order is None:
        raise NotFound("unknown_order", f"no order {order_id!r}")
    if not amendable(order):
        if order.cancelled:
            raise Conflict("order_cancelled", f"order {order_id} is cancelled")
        raise Conflict("already_allocated", f"order {order_id} has allocated units; cancel it instead")
    new_totals = totals_record(totals)
    if same_lines(lines, order.spec.lines) and new_totals in (None, order.spec.totals):
        return None
    source_version = canonical_version(source_version)
    _check_known_skus(world, lines)
    _check_lines(world, lines)
    _check_totals(world, totals)
    emit(
        ev.OrderAmended(
            ts=now,
            order_id=order_id,
            lines=line_records(lines),
            reason=reason or "amended",
            source_version=source_version,
            totals=new_totals,
        )
    )
    return order


def set_address(world: World, order_id: str, address: Address, reason: str, emit: Emit, now: float) -> Order | None:
    """Set the shipping address of an order that has not shipped in full: the street
    address its channel withheld (the order waits for it before labelling), or a
    correction. Returns the order, or None when the address is already this one."""
    order = world.orders.get(order_id)
    if order is None:
        raise NotFound("unknown_order", f"no order {order_id!r}")
    if order.cancelled:
        raise Conflict("order_cancelled", f"order {order_id} is cancelled")
    if order.status(world.shipments) == "shipped":
        raise Conflict("already_shipped", f"order {order_id} has shipped; its address can no longer change")
    record = check_address(order, address)
    if record is None:
        return None
    emit(ev.OrderAddressSet(ts=now, order_id=order_id, shipping_address=record, reason=reason or "address set"))
    return order


def check_address(order: Order, address: Address) -> ev.AddressRecord | None:
    """The address as recorded, or None when the order has it already; raises for one
    without a street or country."""
    if not (address.address1.strip() and address.country_code.strip()):
        raise InvalidInput("missing_field", "a shipping address needs at least address1 and country_code")
    record = address_record(address)
    if record == order.spec.shipping_address and not order.spec.needs_address:
        return None
    return record


def check_date(text: str) -> None:
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        raise InvalidInput("invalid_date", f"{text!r} is not a calendar date (YYYY-MM-DD)") from None


def expedite(world: World, order_id: str, reason: str, emit: Emit, now: float) -> bool:
    """A person raises an order's priority: its waiting lines go ahead of the lines of
    orders nobody expedited (``World.queue_key``). Returns False for a resend (already
    expedited for the same reason: nothing journaled)."""
    order = world.orders.get(order_id)
    if order is None:
        raise NotFound("unknown_order", f"no order {order_id!r}")
    if order.cancelled:
        raise Conflict("order_cancelled", f"order {order_id} is cancelled")
    if order.status(world.shipments) == "shipped":
        raise Conflict("already_shipped", f"order {order_id} has shipped; there is nothing left to expedite")
    if not reason.strip():
        raise InvalidInput("invalid_request", "an expedite needs a reason (it is shown in the queue)")
    if order.expedited == reason:
        return False
    emit(ev.OrderExpedited(ts=now, order_id=order_id, reason=reason))
    return True
