"""Bulk actions on a filtered set of orders (``orders.bulk``): which orders (or dead
letters) an action would touch, and applying it to each, one order's events at a time.

Pure and synchronous like ``order_rules``: the order actor calls ``apply`` in one step,
so the set it checks against the caller's ``expect_count`` / ``expect_digest`` is the set
it changes (no other order change runs in between). A person confirms a bulk action after
seeing its count (a dry run): a set that changed since is refused with ``bulk_changed``.

A cancel also selects the orders at the 3PL, not yet shipped, and cancels each the way
``order.cancel`` does (``threepl_changes.cancel``: the change goes to the 3PL through the
outbox); one the 3PL cannot be asked about now (a change of it on its way) is refused
with ``order.cancel``'s code for that order alone, and the others go on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from backorder.actors import order_rules, threepl_changes
from backorder.actors.model import HOUR, Order, World
from backorder.actors.sku_rules import Emit
from backorder.errors import Conflict, InvalidInput, LimitError, Rejected
from backorder.protocol import BulkFilter, OrdersBulk

MAX_BULK = 10_000  # orders (or letters) one confirmation may change: one step of the order actor
MAX_LISTED = 1000  # ids a reply lists; the count and the digest cover the whole set
ORDER_ACTIONS = ("cancel", "expedite", "release")


@dataclass(frozen=True, slots=True)
class Selection:
    """The ids an action would touch (oldest first), with their digest."""

    ids: list[str] | list[int]  # order ids, or dead letters' ids
    digest: str

    def view(self) -> dict[str, object]:
        return {"count": len(self.ids), "ids": self.ids[:MAX_LISTED], "digest": self.digest}


def digest(ids: Iterable[str | int]) -> str:
    """A short fingerprint of a set of ids: two sets with the same count differ here."""
    h = hashlib.sha256()
    for i in sorted(str(i) for i in ids):
        h.update(i.encode())
        h.update(b"\n")
    return h.hexdigest()[:16]


def _waits(order: Order) -> bool:
    """Open and waiting: for stock (a line short) or for payment (held)."""
    return not order.cancelled and (bool(order.hold) or any(ln.need for ln in order.lines))


def _eligible(world: World, order: Order, action: str) -> bool:
    if action == "release":
        return bool(order.hold) and not order.cancelled
    if action == "expedite":
        return _waits(order) and not order.expedited
    return _waits(order) or threepl_changes.at_threepl(world, order.order_id)  # cancel


def _matches(order: Order, f: BulkFilter, now: float) -> bool:
    spec = order.spec
    if f.channel is not None and spec.channel != f.channel:
        return False
    if f.account is not None and spec.account != f.account:
        return False
    if f.min_waiting_hours and (now - order.received_ts) / HOUR < f.min_waiting_hours:
        return False
    if f.sku is not None:
        # a line of the SKU that still waits (for stock, for its order's payment, at the 3PL)
        return any(ln.sku == f.sku and not ln.cancelled and (ln.need or ln.held or ln.routed) for ln in order.lines)
    return True


def _candidates(world: World, action: str, f: BulkFilter) -> list[Order]:
    """The orders that wait, oldest first: those with a line in a SKU queue (only the
    filter's SKU's, when it names one), those on payment hold (in no queue) and, for a
    cancel, those open at the 3PL (``routed_open``). Found
    from the queues and the held index, not by a scan of every order the site ever took:
    the selection runs in one step of the order actor, so its cost is a pause for every
    client (measured, 100,000 orders of which 200 matched: 360 ms scanning them all)."""
    ids: dict[str, None] = dict.fromkeys(world.held_orders)
    if action != "release":
        if f.sku is not None:
            s = world.skus.get(f.sku)
            queues = [s.queue] if s is not None else []
        else:
            queues = [s.queue for s in world.skus.values() if s.queue]
        for queue in queues:
            ids.update(dict.fromkeys(line.order_id for line in queue.lines()))
    if action == "cancel":
        ids.update(world.routed_open)
    # ids are "O" + a sequence number: its order is the order of arrival
    return [world.orders[oid] for oid in sorted(ids, key=lambda oid: int(oid[1:]))]


def select_orders(world: World, action: str, f: BulkFilter, now: float) -> Iterator[Order]:
    """The orders ``action`` would change under filter ``f``, oldest first."""
    for order in _candidates(world, action, f):
        if _eligible(world, order, action) and _matches(order, f, now):
            yield order


def select_letters(world: World, f: BulkFilter, now: float) -> list[int]:
    """The dead letters a retry would redeliver under filter ``f``, oldest first. A letter
    of an order's actor matches the order's channel and account."""
    out = []
    for x in world.dead_letters.values():
        channel, account = x.channel, x.account
        if x.order_id is not None and x.order_id in world.orders:
            spec = world.orders[x.order_id].spec
            channel, account = channel or spec.channel, account or spec.account
        if f.sku is not None and x.sku != f.sku:
            continue
        if f.channel is not None and channel != f.channel:
            continue
        if f.account is not None and account != f.account:
            continue
        if f.min_waiting_hours and (now - x.ts) / HOUR < f.min_waiting_hours:
            continue
        out.append(x.letter_id)
    return out


def selection(ids: list[str] | list[int]) -> Selection:
    return Selection(ids, digest(ids))


def check(req: OrdersBulk, sel: Selection) -> None:
    """Refuse to apply a bulk action whose set is not the one the person confirmed, or
    is too large for one step. Raises before anything changes."""
    if req.expect_count is None:
        raise InvalidInput("invalid_request", "give expect_count (the count a dry run answered) to apply a bulk action")
    if req.action == "expedite" and not req.reason.strip():
        raise InvalidInput("invalid_request", "an expedite needs a reason (it is shown in the queue)")
    if len(sel.ids) != req.expect_count or (req.expect_digest is not None and req.expect_digest != sel.digest):
        raise Conflict(
            "bulk_changed",
            f"the set now has {len(sel.ids)} {'letters' if req.action == 'retry' else 'orders'} "
            f"(digest {sel.digest}), not the {req.expect_count} confirmed; run the dry run again",
        )
    if len(sel.ids) > MAX_BULK:
        raise LimitError("bulk_too_large", f"{len(sel.ids)} is over {MAX_BULK} per bulk action; narrow the filter")


def apply(world: World, req: OrdersBulk, emit: Emit, now: float) -> tuple[Selection, list[str], list[dict[str, Any]]]:
    """Dry run or apply a cancel, expedite or release; returns the selection and, applied,
    the SKUs whose queues changed (to re-serve, in first-seen order) and, for a cancel,
    what became of each order at the 3PL (``{order_id, code, ...}``: ``code`` "" and the
    ``threepl_change`` asked for, or ``order.cancel``'s refusal code and its message).
    One order's events after another's, each order as its own op would journal it."""
    ids = [o.order_id for o in select_orders(world, req.action, req.filter, now)]
    sel = selection(ids)
    if req.dry_run:
        return sel, [], []
    check(req, sel)
    touched: dict[str, None] = {}
    at_threepl: list[dict[str, Any]] = []
    reason = req.reason
    for oid in ids:
        if req.action == "cancel":
            try:
                skus, change = threepl_changes.cancel(
                    world, world.settings.threepl, oid, reason or "bulk cancel", emit, now
                )
            except Rejected as e:  # refused before anything was journaled: this order alone
                at_threepl.append({"order_id": oid, "code": e.code, "message": e.message})
                continue
            touched.update(dict.fromkeys(skus))
            if change is not None:
                at_threepl.append({"order_id": oid, "code": "", "threepl_change": change})
        elif req.action == "expedite":
            order_rules.expedite(world, oid, reason, emit, now)
        else:
            order = order_rules.release(world, oid, reason or "released", emit, now)
            if order is not None:
                touched.update(dict.fromkeys(ln.sku for ln in order.lines if ln.requires_shipping))
    return sel, list(touched), at_threepl
