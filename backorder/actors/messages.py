"""Messages between actors (msgspec Structs) and the reply handle a request travels with.

A *call* carries a ``reply`` (the client's connection waits for it); a *cast* does not.
"""

from __future__ import annotations

from typing import Any

from msgspec import Struct


class Msg(Struct, kw_only=True):
    corr: str = "-"  # correlation id of the unit of work, journaled with every event
    actor: str = "system"  # who ordered that work (Engine.context): follow-up messages carry it on


class SkuCall(Msg, kw_only=True):
    """gateway -> SKU actor: stock.receive, stock.adjust, sku.configure, procurement.confirm."""

    req: Any
    reply: Any


class SettleLines(Msg, kw_only=True):
    """order actor -> SKU actor: lines of a new order joined your queue; serve them, then
    finish the order's step if you were its last SKU (``OrderActor.served``: no reply)."""

    order_id: str


class Settle(Msg, kw_only=True):
    """order actor / supervisor -> SKU actor: units were released or rules changed; re-serve."""


class OrderCall(Msg, kw_only=True):
    """gateway -> order actor: order.submit, order.cancel, pick.confirm, policy.set."""

    req: Any
    reply: Any


class ThreeplShipped(Struct, kw_only=True):
    """3PL webhook -> order actor (inside an ``OrderCall``): the 3PL shipped a routed order."""

    order_id: str
    carrier: str
    tracking: str


# Orders per Settled message: a big fill is told in chunks, so that the order actor
# yields between them and the journal commits the allocations (and releases the receipt's
# reply) early; each chunk's shipments are one journal row (``shipments_created``). The
# order actor counts a chunk as one mailbox turn per SETTLED_TURN orders (mailbox.BATCH
# turns between yields, as when a chunk was SETTLED_TURN orders).
SETTLED_CHUNK = 1024
SETTLED_TURN = 16


class Settled(Msg, kw_only=True):
    """SKU actor -> order actor: I served my queue; these orders got units (ship them)."""

    sku: str
    allocated_orders: list[str]


class Tune(Msg, kw_only=True):
    """planner -> SKU actor: the planner's levels for this SKU (``wire.SkuResult``); the
    actor journals them (policy_tuned) if the SKU is still in auto or suggest mode, then
    calls ``done`` (also when it refused or failed: the run waits for every SKU)."""

    result: Any
    done: Any
