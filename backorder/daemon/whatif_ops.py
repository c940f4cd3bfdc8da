"""The what-if ops (``whatif.receipt``, ``whatif.delay``, ``whatif.policy``): read role,
answered at once from the model by ``actors.whatif`` over the allocation planner. They
journal nothing and change nothing; bad input is refused with a stable code."""

from __future__ import annotations

from typing import TYPE_CHECKING

from backorder import protocol as p
from backorder.actors import whatif

if TYPE_CHECKING:
    from backorder.daemon.handlers import Context
    from backorder.daemon.server import Connection, Reply


def whatif_receipt(ctx: Context, conn: Connection, req: p.WhatifReceipt, reply: Reply, corr: str) -> None:
    """The lines a receipt would serve, in service order, with their new dates."""
    engine = ctx.engine
    reply.ok(whatif.receipt(engine.world, req.sku, req.request_id, req.qty, req.date, engine.now(), req.limit))


def whatif_delay(ctx: Context, conn: Connection, req: p.WhatifDelay, reply: Reply, corr: str) -> None:
    """The waiting lines whose dates would move if a request came on another date."""
    engine = ctx.engine
    reply.ok(whatif.delay(engine.world, req.request_id, req.date, engine.now(), req.limit))


def whatif_policy(ctx: Context, conn: Connection, req: p.WhatifPolicy, reply: Reply, corr: str) -> None:
    """A SKU's projected fill and stock under its policy and a candidate (forecast, else history)."""
    engine = ctx.engine
    changes = {k: getattr(req, k) for k in whatif.POLICY_KEYS if getattr(req, k) is not None}
    result = ctx.planner.results.get(req.sku) if ctx.planner is not None else None
    forecast = result.forecast if result is not None else None
    reply.ok(whatif.policy(engine.world, req.sku, changes, forecast, req.days, engine.now()))
