"""What a SKU actor decides: allocation in service order, reorder, receipts, counts.

Pure and synchronous: each function reads the model, decides, and calls ``emit`` for each
fact (``emit`` applies the event to the model and journals it). No trio here, so the
rules are unit- and property-tested directly.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import msgspec

from backorder.actors import events as ev
from backorder.actors import notice_rules
from backorder.actors.model import Sku, World
from backorder.errors import Conflict, InvalidInput, NotFound
from backorder.planner import wire
from backorder.timeutil import iso_date

Emit = Callable[[ev.Event], None]
DAY = 86400.0


def settle(world: World, s: Sku, emit: Emit, now: float) -> list[ev.Allocated]:
    """Give available units to waiting lines in service order; then reorder if needed.

    Runs after every order, receipt, cancellation, count and policy change (never on a
    timer). Newly queued lines that are still short afterwards are recorded as backordered.
    """
    fresh = list(s.undecided)
    allocs = []
    if s.queue and s.available >= s.backordered:
        # Enough for every waiting line: serve them in one pass over the sorted queue
        # instead of popping the heap line by line (a big receipt fills 100k lines).
        for line in list(s.queue):
            e = ev.Allocated(
                ts=now,
                sku=s.sku,
                order_id=line.order_id,
                line_no=line.line_no,
                qty=line.need,
                rule=world.mode,
                rank=world.rank(line, now),
            )
            emit(e)
            allocs.append(e)
    while s.available > 0 and s.queue:
        line = s.queue[0]
        e = ev.Allocated(
            ts=now,
            sku=s.sku,
            order_id=line.order_id,
            line_no=line.line_no,
            qty=min(s.available, line.need),
            rule=world.mode,
            rank=world.rank(line, now),
        )
        emit(e)
        allocs.append(e)
    short = [line for line in fresh if line.need > 0]
    for line in short:
        emit(ev.LineBackordered(ts=now, sku=s.sku, order_id=line.order_id, line_no=line.line_no, qty=line.need))
    reorder(world, s, emit, now)
    if short:  # the customers' notices, with the dates the reorder just gave
        notice_rules.backordered(world, s, short, emit, now)
    return allocs


def reorder_quantity(s: Sku) -> int:
    """Units to request now (0 = none): back up to order-up-to, netting what is inbound.

    Because the raised request counts as inbound at once, the position after it is at
    least order-up-to >= reorder point, so the same shortage never raises a second one.
    """
    p = s.policy
    pos = s.position
    over_threshold = p.backorder_threshold is not None and s.backordered > p.backorder_threshold
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
    e = ev.RequestRaised(
        ts=now,
        request_id=world.next_request_id(transfer),
        sku=s.sku,
        kind="transfer" if transfer else "po",
        source=p.source.split(":", 1)[1],
        qty=qty,
        expected_date=iso_date(now + p.lead_time_days * DAY),
        position=s.position,
    )
    emit(e)
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
) -> list[ev.Allocated]:
    """Units arrived; a reference naming an open request of this SKU counts against it."""
    check_quantity(world, "qty", qty)
    request_id = reference if reference in s.inbound else None
    emit(ev.Received(ts=now, sku=s.sku, qty=qty, reference=reference, request_id=request_id, receipt_id=receipt_id))
    return settle(world, s, emit, now)


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
) -> list[ev.Allocated]:
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


def configure(world: World, s: Sku, changes: dict[str, Any], emit: Emit, now: float) -> None:
    policy = msgspec.structs.replace(s.policy, **changes)
    problems = policy.problems(world.settings.limits.max_quantity)
    if problems:
        raise InvalidInput("invalid_policy", "; ".join(problems))
    emit(ev.SkuConfigured(ts=now, sku=s.sku, policy=policy))
    settle(world, s, emit, now)


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


def confirm(world: World, s: Sku, request_id: str, expected_date: str, emit: Emit, now: float) -> None:
    r = world.requests.get(request_id)
    if r is None:
        raise NotFound("unknown_request", f"no purchase order or transfer {request_id!r}")
    if r.closed_ts is not None:
        raise Conflict("request_closed", f"{request_id} was received in full; its date cannot move")
    emit(ev.RequestConfirmed(ts=now, request_id=request_id, sku=s.sku, expected_date=expected_date))
    notice_rules.delays(world, s, emit, now, request_id)
