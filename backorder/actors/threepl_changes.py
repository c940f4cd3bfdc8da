"""Cancelling or re-addressing an order routed to the 3PL (``order.cancel`` /
``order.address`` on an order at the 3PL). Pure and synchronous like ``order_rules``.

The site does not hold the order, so it cannot decide alone: the change is journaled
(``threepl_change``) with a ``threepl_change`` notice that takes it to the 3PL through the
outbox (exactly once as far as the 3PL can tell, retried, dead with the 3PL's message on a
4xx), and nothing changes on the order until the 3PL answers. Its answer (``answered``,
called by the provider's channel after a successful send, in the commit of
``notice_delivered``) is journaled as ``threepl_change_done``: ``applied`` with the order's
``order_cancelled`` / ``order_address_set``, or ``too_late`` (the 3PL picked or shipped it
already) and the order stays as it was. A second change while one is on its way is
refused (``threepl_change_pending``); after an answer, or a change that went dead, a new
one may be asked for.

What a client sees (``order.get`` ``threepl_change``, ``view``): the change, its state
``pending`` | ``applied`` | ``too_late`` (code ``threepl_too_late``) | ``failed`` (code
``threepl_change_failed``, the notice is dead: ``notifications.retry`` sends it again).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from backorder.actors import events as ev
from backorder.actors import order_rules
from backorder.actors.model import AT_THREEPL, World
from backorder.actors.threepl_rules import order_data, target
from backorder.config.settings import ThreeplSettings
from backorder.errors import Conflict, NotFound
from backorder.timeutil import iso_ts

Emit = Callable[[ev.Event], None]

KIND = "threepl_change"


def at_threepl(world: World, order_id: str) -> bool:
    """Whether the order is at the 3PL and not shipped or cancelled: its changes go there."""
    order = world.orders.get(order_id)
    if order is None or not order.routed_to or order.cancelled:
        return False
    return any(world.shipments[s].status == AT_THREEPL for s in order.shipments)


def state(world: World, order_id: str) -> str | None:
    """The state of the order's last change (None: none was asked for)."""
    got = world.threepl_changes.get(order_id)
    if got is None:
        return None
    asked, done = got
    if done is not None:
        return done.outcome
    notice = world.notices.get(asked.notice_id)
    return "failed" if notice is not None and notice.status == "dead" else "pending"


def request(
    world: World,
    cfg: ThreeplSettings,
    order_id: str,
    change: str,
    reason: str,
    address: ev.AddressRecord | None,
    emit: Emit,
    now: float,
) -> None:
    """Ask the 3PL to cancel (``change`` "cancel") or re-address ("address") an order at
    it: journaled with its notice, or refused with a stable code (nothing journaled)."""
    order = world.orders.get(order_id)
    if order is None:
        raise NotFound("unknown_order", f"no order {order_id!r}")
    if state(world, order_id) == "pending":
        asked = world.threepl_changes[order_id][0]
        raise Conflict(
            "threepl_change_pending",
            f"order {order_id} has a {asked.change} on its way to the 3PL ({asked.notice_id}); "
            "wait for the 3PL's answer (order.get threepl_change)",
        )
    if not cfg.enabled:
        raise Conflict(
            "routed_to_threepl", f"order {order_id} is at the 3PL ({order.routed_to}) and [threepl] is not enabled"
        )
    notice_id = world.next_id("notice")
    emit(
        ev.ThreeplChangeRequested(
            ts=now, order_id=order_id, notice_id=notice_id, change=change, reason=reason, shipping_address=address
        )
    )
    sid = next(s for s in order.shipments if world.shipments[s].status == AT_THREEPL)
    data = order_data(order, cfg, sid, address or order.spec.shipping_address)
    emit(
        ev.NoticeQueued(
            ts=now,
            notice_id=notice_id,
            order_id=order_id,
            kind=KIND,
            email="",
            subject=f"{change} of order {order_id} to {target(cfg)}",
            body="",
            channel=target(cfg),
            audience="channel",
            data={**data, "change": change, "reason": reason},
        )
    )


def cancel(
    world: World, cfg: ThreeplSettings, order_id: str, reason: str, emit: Emit, now: float
) -> tuple[list[str], dict[str, Any] | None]:
    """Cancel an order wherever it is (``order.cancel`` and ``orders.bulk`` both call this):
    at the 3PL, ask the 3PL (``request``; returns no SKU and the change as ``view`` shows
    it), else cancel it at the site (``order_rules.cancel``; returns the SKUs to re-serve
    and None). Refused with a stable code before anything is journaled."""
    if at_threepl(world, order_id):
        request(world, cfg, order_id, "cancel", reason, None, emit, now)
        return [], view(world, order_id)
    return order_rules.cancel(world, order_id, reason, emit, now), None


def answered(world: World, notice: ev.NoticeQueued, outcome: str, message: str, emit: Emit, now: float) -> list[str]:
    """The 3PL answered change ``notice`` (``outcome`` "applied" or "too_late"): journal it,
    and when applied, the change itself. An order that shipped meanwhile (the 3PL's webhook
    came first) is too late whatever the 3PL said. Returns the SKUs a cancellation touched."""
    order_id = str(notice.order_id)
    order = world.orders.get(order_id)
    if order is None:
        return []
    change = str(notice.data.get("change"))
    if outcome == "applied" and not at_threepl(world, order_id):
        outcome, message = "too_late", f"the order is {order.status(world.shipments)} already; {message}"
    emit(
        ev.ThreeplChangeDone(
            ts=now, order_id=order_id, notice_id=notice.notice_id, change=change, outcome=outcome, message=message[:300]
        )
    )
    if outcome != "applied":
        return []
    asked = world.threepl_changes.get(order_id)
    reason = asked[0].reason if asked is not None and asked[0].notice_id == notice.notice_id else ""
    if change == "cancel":
        return order_rules.cancelled(world, order, reason or "cancelled at the 3PL", emit, now)
    if asked is not None and asked[0].shipping_address is not None and asked[0].notice_id == notice.notice_id:
        emit(
            ev.OrderAddressSet(
                ts=now, order_id=order_id, shipping_address=asked[0].shipping_address, reason=reason or "re-addressed"
            )
        )
    return []


def view(world: World, order_id: str) -> dict[str, Any] | None:
    """The order's last 3PL change as ``order.get`` shows it (None: none was asked for)."""
    got = world.threepl_changes.get(order_id)
    if got is None:
        return None
    asked, done = got
    st = state(world, order_id)
    notice = world.notices.get(asked.notice_id)
    code = {"too_late": "threepl_too_late", "failed": "threepl_change_failed"}.get(st or "")
    message = done.message if done is not None else (notice.last_error if notice is not None and code else "")
    return {
        "change": asked.change,
        "state": st,
        "code": code,
        "message": message or None,
        "reason": asked.reason,
        "notice_id": asked.notice_id,
        "requested_at": iso_ts(asked.ts),
        "answered_at": iso_ts(done.ts) if done is not None else None,
    }
