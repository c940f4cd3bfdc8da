"""What a SKU actor decides: allocation in service order, reorder, receipts, counts.

Pure and synchronous: each function reads the model, decides, and calls ``emit`` for each
fact (``emit`` applies the event to the model and journals it). No trio here, so the
rules are unit- and property-tested directly.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any

import msgspec

from backorder.actors import allocation_plan, notice_rules
from backorder.actors import events as ev
from backorder.actors.model import Line, Request, Sku, World
from backorder.config.settings import ReorderPolicy
from backorder.errors import Conflict, InvalidInput, NotFound
from backorder.planner import wire
from backorder.timeutil import iso_date

Emit = Callable[[ev.Event], None]
DAY = 86400.0
_BY_DATE = operator.attrgetter("expected_date", "request_id")  # supply in the order it arrives
# What a settle returns per allocation (each has order_id, line_no, qty, rank): a line's
# share of the settle's lines_allocated, or a loan's allocated
Allocation = ev.AllocatedLine | ev.Allocated


def settle(world: World, s: Sku, emit: Emit, now: float) -> list[Allocation]:
    """Give available units to waiting lines in service order, lend held units where that
    harms nobody (``allocation_plan.lend``); then reorder if needed.

    Runs after every order, receipt, cancellation, count and policy change (never on a
    timer). Newly queued lines that are still short afterwards are recorded as backordered.
    Returns each allocation it journaled: its lines_allocated's lines, then a loan's
    allocated (its order may ship now).
    """
    fresh = list(s.undecided)
    # what the what-if reads predict (allocation_plan): decided first, then journaled as
    # one event in service order (applying it takes each line off the queue or shortens its need)
    given = allocation_plan.allocate_now(s.queue.lines(), s.available)
    loans = []
    # lines still wait: may held units serve one? (only a ship-complete order's line lends)
    if world.ship_complete_orders and s.backordered > sum(qty for _, qty in given):
        loans = allocation_plan.lend(s.queue.lines, given, s.available, s.supply(), lending(world, s, now))[0]
    rank = world.ranker(now)
    lines = [
        ev.AllocatedLine(order_id=line.order_id, line_no=line.line_no, qty=qty, rank=rank(line)) for line, qty in given
    ]
    if lines:
        emit(ev.LinesAllocated(ts=now, sku=s.sku, rule=world.mode, lines=lines))
    allocs: list[Allocation] = list(lines)
    for loan in loans:  # rare: each loan is its allocation_lent and the borrower's own allocated
        lender, borrower = loan.lender, loan.borrower
        emit(
            ev.AllocationLent(
                ts=now,
                sku=s.sku,
                order_id=lender.order_id,
                line_no=lender.line_no,
                qty=loan.qty,
                to_order_id=borrower.order_id,
                to_line_no=borrower.line_no,
                back_by=loan.back_by,
                completes=loan.completes,
            )
        )
        allocs.append(_allocate(world, s, borrower, loan.qty, LENT, emit, now))
    short = [line for line in fresh if line.need > 0]
    for line in short:
        emit(ev.LineBackordered(ts=now, sku=s.sku, order_id=line.order_id, line_no=line.line_no, qty=line.need))
    reorder(world, s, emit, now)
    if short:  # the customers' notices, with the dates the reorder just gave
        notice_rules.backordered(world, s, short, emit, now)
    return allocs


LENT = "lent"  # the rule of an ``allocated`` that a loan made (not the order of service)


def _allocate(world: World, s: Sku, line: Line, qty: int, rule: str, emit: Emit, now: float) -> ev.Allocated:
    e = ev.Allocated(
        ts=now, sku=s.sku, order_id=line.order_id, line_no=line.line_no, qty=qty, rule=rule, rank=world.rank(line, now)
    )
    emit(e)
    return e


def lending(world: World, s: Sku, now: float) -> allocation_plan.Lending[Line]:
    """What ``allocation_plan.lend`` needs from the model for SKU ``s`` at ``now``: its lines of
    ship-complete orders holding units no shipment took, and, read from the other SKUs'
    queues (one model in one thread: the read is a consistent moment), when a lender's
    order completes and whether a borrower's order ships at once."""
    orders = world.orders
    held = [
        (line, line.allocated - line.in_shipment)
        for line in s.holders
        if line.allocated > line.in_shipment and orders[line.order_id].spec.ship_complete
    ]

    def completes(line: Line) -> str | None:
        """A ship-complete order's date from its other waiting lines: the latest of their
        dates by their SKUs' plans ("now": none waits). None (no loan): another order, a
        held, routed or cancelled one, one with another line of this SKU waiting (this
        SKU's own plan would move with the loan), or one some line of which no open supply
        covers (no date to keep: a reorder will give one)."""
        order = orders[line.order_id]
        if not order.spec.ship_complete or order.cancelled or order.hold or order.routed_to:
            return None
        dates = []
        for other in order.lines:
            if other is line or other.need <= 0:
                continue
            if other.sku == s.sku:
                return None
            dates.append(world.skus[other.sku].expected_date(other))
        return allocation_plan.order_date(dates)

    def ships_now(line: Line) -> bool:
        order = orders[line.order_id]
        if order.cancelled or order.hold or order.routed_to:
            return False
        return not order.spec.ship_complete or all(other is line or other.need <= 0 for other in order.lines)

    def splits(line: Line) -> bool:
        return not orders[line.order_id].spec.ship_complete

    return allocation_plan.Lending(held, completes, ships_now, world.queue_key, splits, now)


def may_lend(world: World) -> list[str]:
    """The SKUs a new day may let lend (``lending_day``): lines wait, and a ship-complete
    order holds units no shipment took. Lending reads an overdue date as today
    (``allocation_plan.as_of``), so a loan refused yesterday, whose units would have come
    back only today, may move nothing today; the SKU has no event of its own to settle on."""
    orders = world.orders
    return [
        s.sku
        for s in world.skus.values()
        if s.backordered > 0
        and any(line.allocated > line.in_shipment and orders[line.order_id].spec.ship_complete for line in s.holders)
    ]


def reorder_quantity(s: Sku) -> int:
    """Units to request now (0 = none): back up to order-up-to, netting what is inbound.

    Because the raised request counts as inbound at once, the position after it is at
    least order-up-to >= reorder point, so the same shortage never raises a second one.
    """
    return order_quantity(s.policy, s.position, s.backordered)


def order_quantity(p: ReorderPolicy, pos: int, backordered: int) -> int:
    """``reorder_quantity`` of a policy at an inventory position (what-if projections too)."""
    over_threshold = p.backorder_threshold is not None and backordered > p.backorder_threshold
    if pos > max(p.reorder_point, p.safety_stock) and not over_threshold:
        return 0
    qty = p.order_up_to - pos
    if qty <= 0:
        return 0
    qty = max(qty, p.moq)
    return math.ceil(qty / p.pack_size) * p.pack_size


def reorder(world: World, s: Sku, emit: Emit, now: float) -> ev.RequestRaised | None:
    qty = reorder_quantity(s)
    if not qty:
        return None
    p = s.policy
    transfer = p.source.startswith("transfer:")
    kind = "transfer" if transfer else "po"
    source = p.source.split(":", 1)[1]
    request_id = world.next_request_id(transfer)
    po_id = world.po_taking_lines(kind, source, s.sku, now)
    hours = world.settings.procurement.consolidate_hours
    e = ev.RequestRaised(
        ts=now,
        request_id=request_id,
        sku=s.sku,
        kind=kind,
        source=source,
        qty=qty,
        expected_date=iso_date(now + p.lead_time_days * DAY),
        position=s.position,
        po_id=po_id,
        # a purchase order that opens now waits for the window's other lines before it goes out
        send_after=now + hours * 3600.0 if po_id is None and hours > 0 else 0.0,
    )
    emit(e)
    if po_id is None:  # one document per purchase order, carrying every line it gets
        notice_rules.purchase_order(world, world.requests[e.request_id], emit, now)
    return e


def check_quantity(world: World, name: str, value: int) -> None:
    """Refuse a quantity a request names beyond the site's ``[limits] max_quantity``."""
    cap = world.settings.limits.max_quantity
    if abs(value) > cap:
        raise InvalidInput(
            "invalid_quantity", f"{name} {value} is over the site's limit of {cap} units ([limits] max_quantity)"
        )


def receive(
    world: World, s: Sku, qty: int, reference: str | None, emit: Emit, now: float, receipt_id: str | None = None
) -> list[Allocation]:
    """Units arrived: recorded (see ``match_receipt``), then given to waiting lines."""
    return record_receipt(world, s, match_receipt(world, s, qty, reference, now, receipt_id), emit, now)


def record_receipt(world: World, s: Sku, e: ev.Received, emit: Emit, now: float) -> list[Allocation]:
    emit(e)
    return settle(world, s, emit, now)


def match_receipt(
    world: World, s: Sku, qty: int, reference: str | None, now: float, receipt_id: str | None = None
) -> ev.Received:
    """The receipt of ``qty`` units as it will be journaled.

    A reference naming a request of this SKU counts the units against it; beyond its open
    quantity (all of them, if it is closed) they are over-delivered, flagged on it. A
    reference naming another SKU's request counts against nothing (a mistake to look at,
    not a supply to consume). Without a reference to a request (none, or a delivery note
    number) the units are matched to the SKU's open requests, oldest expected date first,
    as a person at the dock would: else they would count once as stock and again as
    inbound, and the next reorder would come late. What exceeds the open quantity of all
    of them is over-delivered, counted on the last one matched; with no open request at
    all the units are plain stock (a return, a found box)."""
    check_quantity(world, "qty", qty)
    named = world.requests.get(reference) if reference is not None else None
    request_id: str | None = None
    matched: list[ev.ReceiptMatch] = []
    over = 0
    if named is not None:
        if named.sku == s.sku:
            request_id = named.request_id
            over = max(qty - named.open_qty, 0)
    elif s.inbound:  # none open: plain stock, skip the walk (the common receipt of a site without POs)
        # bench/receipt_match.py on the shared 2-core machine (load ~9, noisy): deciding a
        # receipt took ~1 us with no open request, ~4-6 us matching 1-3 (~2-3 us more
        # than a receipt naming its request); receipts are rare next to order lines
        left = qty
        for r in sorted(s.inbound.values(), key=_BY_DATE):
            if left <= 0:
                break
            take = min(left, r.open_qty)
            if take > 0:
                matched.append(ev.ReceiptMatch(request_id=r.request_id, qty=take))
                left -= take
        over = left if matched else 0
        if over:  # the excess came with the last request matched: count it there
            last = matched[-1]
            matched[-1] = ev.ReceiptMatch(request_id=last.request_id, qty=last.qty + over)
    return ev.Received(
        ts=now,
        sku=s.sku,
        qty=qty,
        reference=reference,
        request_id=request_id,
        receipt_id=receipt_id,
        matched=matched,
        over_delivered=over,
    )


def known_receipt(world: World, s: Sku, receipt_id: str | None, qty: int) -> tuple[int, str | None] | None:
    """The original (qty, request_id) if this receipt was already journaled, else None.
    The same receipt id with another quantity is a contradiction, not a resend."""
    if receipt_id is None:
        return None
    known = world.receipts.get((s.sku, receipt_id))
    if known is not None and known[0] != qty:
        raise Conflict("receipt_conflict", f"receipt {receipt_id!r} of {s.sku} was {known[0]} units, not {qty}")
    return known


def adjust(
    world: World, s: Sku, delta: int | None, counted: int | None, reason: str, emit: Emit, now: float
) -> list[Allocation]:
    """A cycle count. If fewer units are left than are reserved, the lines served last
    give units back first (never units already in a picking shipment)."""
    if (delta is None) == (counted is None):
        raise InvalidInput("invalid_request", "give exactly one of 'delta' or 'counted'")
    if counted is not None:
        check_quantity(world, "counted", counted)
        delta = counted - s.on_hand
    else:
        assert delta is not None
        check_quantity(world, "delta", delta)
    if delta == 0 and counted is None:
        raise InvalidInput("invalid_quantity", "delta must not be 0")
    new_on_hand = s.on_hand + delta
    if new_on_hand < 0:
        raise InvalidInput("invalid_quantity", f"on hand would become {new_on_hand}; it is {s.on_hand}")
    short = s.allocated - new_on_hand
    if short > 0:
        picking = sum(line.in_shipment for line in s.holders)
        if new_on_hand < picking:
            raise Conflict(
                "stock_in_picking", f"{picking} units of {s.sku} are in picking shipments; count them or cancel first"
            )
        # last served first, under the rule in force now (keys of served lines may be stale)
        for line in sorted(s.holders, key=world.queue_key, reverse=True):
            take = min(line.allocated - line.in_shipment, short)
            if take > 0:
                emit(ev.Deallocated(ts=now, sku=s.sku, order_id=line.order_id, line_no=line.line_no, qty=take))
                short -= take
            if not short:
                break
    emit(ev.Adjusted(ts=now, sku=s.sku, delta=delta, reason=reason))
    return settle(world, s, emit, now)


POLICY_FIELDS = (
    "reorder_point",
    "order_up_to",
    "safety_stock",
    "lead_time_days",
    "moq",
    "pack_size",
    "source",
    "backorder_threshold",
    "mode",
    "service_level",
)


def configure(world: World, s: Sku, changes: dict[str, Any], emit: Emit, now: float) -> list[Allocation]:
    """A new policy, then a settle: it reorders if the position now needs it, and may lend
    (a loan that another SKU's moved date made possible since this SKU last settled), so
    its allocations go to the order actor like any other settle's."""
    policy = msgspec.structs.replace(s.policy, **changes)
    problems = policy.problems(world.settings.limits.max_quantity)
    if problems:
        raise InvalidInput("invalid_policy", "; ".join(problems))
    emit(ev.SkuConfigured(ts=now, sku=s.sku, policy=policy))
    return settle(world, s, emit, now)


def tune(world: World, s: Sku, result: wire.SkuResult, emit: Emit, now: float) -> str | None:
    """Journal the planner's levels for a SKU (``policy_tuned``): "applied" if they became
    its policy, "suggested" if only recorded, None if nothing was journaled. Decided here, in mailbox order, not when the run began: a SKU pinned back to
    manual meanwhile is left alone, and levels equal to the ones in force with the same
    class and model are not journaled again (one quiet SKU, one event, not one a day)."""
    p = s.policy
    new = result.new
    if p.mode == "manual" or new is None:
        return None
    old = ev.TunedLevels(reorder_point=p.reorder_point, order_up_to=p.order_up_to, safety_stock=p.safety_stock)
    levels = ev.TunedLevels(reorder_point=new.reorder_point, order_up_to=new.order_up_to, safety_stock=new.safety_stock)
    applied = p.mode == "auto"
    last = world.tuned.get(s.sku)
    if (
        last is not None
        and last.new == levels
        and last.applied == applied
        and (last.demand_class, last.model) == (result.demand_class, result.model)
        and (not applied or old == levels)
    ):
        return None
    reasons = list(result.reasons)
    problems = msgspec.structs.replace(p, **msgspec.structs.asdict(levels)).problems(world.settings.limits.max_quantity)
    if problems:
        reasons.append("not applied: " + "; ".join(problems))
        applied = False
    emit(
        ev.PolicyTuned(
            ts=now,
            sku=s.sku,
            mode=p.mode,
            applied=applied,
            old=old,
            new=levels,
            demand_class=result.demand_class,
            model=result.model,
            forecast=ev.ForecastSummary(
                daily_mean=result.daily_mean,
                next_30_days=round(sum(result.forecast), 3),
                lead_time_demand=result.lead_time_demand,
                error_sd=result.error_sd,
                lead_time_days=result.lead_time_days,
                lead_time_sd=result.lead_time_sd,
                lead_time_measured=result.lead_time_measured,
            ),
            reasons=reasons,
        )
    )
    return "applied" if applied else "suggested"


def open_request(world: World, s: Sku, request_id: str, doing: str) -> Request:
    """The open request ``request_id`` of SKU ``s``; refuses an unknown or closed one."""
    r = world.requests.get(request_id)
    if r is None or r.sku != s.sku:
        raise NotFound("unknown_request", f"no purchase order or transfer {request_id!r}")
    if r.closed_ts is not None:
        how = {"received": "received in full", "short_closed": "closed short", "cancelled": "cancelled"}[r.status]
        raise Conflict("request_closed", f"{request_id} was {how}; it cannot be {doing}")
    return r


def confirm(world: World, s: Sku, request_id: str, expected_date: str, emit: Emit, now: float) -> None:
    open_request(world, s, request_id, "moved")
    emit(ev.RequestConfirmed(ts=now, request_id=request_id, sku=s.sku, expected_date=expected_date))


def replan(world: World, s: Sku, request_id: str, emit: Emit, now: float) -> list[Allocation]:
    """After a supply changed: reorder where the position now needs it (a new request
    takes the place of what will not come). The customers whose promised dates moved are
    told by the SKU actor's ``promise_rules.recheck``, in the same step."""
    return settle(world, s, emit, now)


def cancel(world: World, s: Sku, request_id: str, reason: str, emit: Emit, now: float) -> list[Allocation]:
    """The request will not be delivered at all. One that has been partly received is
    closed short instead (what came is real), so a cancellation never rewrites a receipt."""
    r = open_request(world, s, request_id, "cancelled")
    if r.received:
        raise Conflict(
            "request_partly_received",
            f"{request_id} has {r.received} of {r.qty} units received; close it short (procurement.close) instead",
        )
    emit(ev.RequestCancelled(ts=now, request_id=request_id, sku=s.sku, reason=reason, open_qty=r.open_qty))
    return replan(world, s, request_id, emit, now)


def close(world: World, s: Sku, request_id: str, reason: str, emit: Emit, now: float) -> list[Allocation]:
    """Short-close: what has come is all that will come."""
    r = open_request(world, s, request_id, "closed")
    emit(ev.RequestShortClosed(ts=now, request_id=request_id, sku=s.sku, reason=reason, open_qty=r.open_qty))
    return replan(world, s, request_id, emit, now)


def _new_qty(world: World, r: Request, qty: int, what: str) -> None:
    check_quantity(world, "qty", qty)
    if qty < r.received:
        raise InvalidInput(
            "invalid_quantity", f"{what} {qty} is less than the {r.received} units of {r.request_id} already received"
        )


def amend(world: World, s: Sku, request_id: str, qty: int, emit: Emit, now: float) -> list[Allocation]:
    """The quantity of an open request changes (more or less): re-planned at once."""
    r = open_request(world, s, request_id, "amended")
    _new_qty(world, r, qty, "qty")
    if qty == r.qty:
        raise InvalidInput("invalid_quantity", f"{request_id} is already for {qty} units")
    emit(ev.RequestAmended(ts=now, request_id=request_id, sku=s.sku, qty=qty, was=r.qty))
    return replan(world, s, request_id, emit, now)


def acknowledge(
    world: World, s: Sku, request_id: str, qty: int, expected_date: str, emit: Emit, now: float
) -> list[Allocation]:
    """The supplier's confirmation: it will send ``qty`` (at most what was asked) by the date."""
    r = open_request(world, s, request_id, "acknowledged")
    _new_qty(world, r, qty, "acknowledged qty")
    if qty > r.qty:
        raise Conflict("over_ordered", f"{request_id} is for {r.qty} units; the supplier cannot confirm {qty}")
    emit(ev.RequestAcknowledged(ts=now, request_id=request_id, sku=s.sku, qty=qty, expected_date=expected_date))
    return replan(world, s, request_id, emit, now)


def ship_notice(
    world: World, s: Sku, request_id: str, reference: str, qty: int, expected_date: str, emit: Emit, now: float
) -> bool:
    """An advance ship notice: ``qty`` units under ``reference`` arrive by the date. The
    same reference again with the same quantity is a resend (False: nothing changed)."""
    r = world.requests.get(request_id)
    known = r.asns.get(reference) if r is not None and r.sku == s.sku else None
    if known is not None:
        if known != qty:
            raise Conflict("ship_notice_conflict", f"ship notice {reference!r} of {request_id} was {known} units")
        return False
    r = open_request(world, s, request_id, "shipped against")
    check_quantity(world, "qty", qty)
    announced = sum(r.asns.values())
    if announced + qty > r.qty:
        raise Conflict(
            "over_ordered",
            f"{request_id} is for {r.qty} units and {announced} were already announced; a notice of {qty} is too many",
        )
    emit(
        ev.ShipNoticeRecorded(
            ts=now, request_id=request_id, sku=s.sku, reference=reference, qty=qty, expected_date=expected_date
        )
    )
    return True
