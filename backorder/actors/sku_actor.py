"""The SKU actor: one trio task per active SKU, owning its decisions (allocation, reorder,
receipts, counts, policy). Idle actors passivate: the task ends, the SKU's state stays in
the model, and the router wakes a new task on the next message."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
import trio

from backorder import protocol as p
from backorder.actors import promise_rules, sku_rules
from backorder.actors.events import UnjournalableEvent
from backorder.actors.mailbox import serve_mailbox
from backorder.actors.messages import SETTLED_CHUNK, Settle, Settled, SettleLines, SkuCall, Tune
from backorder.actors.order_rules import check_date
from backorder.actors.supervisor import Cell, refuse_unjournalable
from backorder.actors.views import request_view, sku_summary
from backorder.errors import InvalidInput, NotFound, ProtocolError, Rejected

if TYPE_CHECKING:
    from backorder.actors.router import Router


async def sku_actor(
    router: Router, sku: str, inbox: trio.MemoryReceiveChannel, cell: Cell, *, task_status=trio.TASK_STATUS_IGNORED
) -> None:
    """Handle messages until the router closes the mailbox (passivation or shutdown)."""
    task_status.started()
    touch = router.last_active

    def active() -> None:
        if touch.pop(sku, None) is not None:  # not if the router already passivated us
            touch[sku] = trio.current_time()  # re-inserted: now the most recently active

    handle_one = SkuHandler(router, sku).handle
    taken_up = router.taken_up

    def handle(msg) -> None:
        taken_up(sku)
        handle_one(msg)

    await serve_mailbox(inbox, handle, cell, active)


MAX_LISTED = 1000  # allocations listed in a reply; a huge fill is summarised, see audit.query


def allocation_summary(allocs) -> dict:
    """Which lines got units: the first MAX_LISTED in service order, and the totals."""
    return {
        "allocations": [{"order_id": a.order_id, "line_no": a.line_no, "qty": a.qty} for a in allocs[:MAX_LISTED]],
        "allocated_lines": len(allocs),
        "allocated_units": sum(a.qty for a in allocs),
    }


class SkuHandler:
    __slots__ = ("router", "engine", "sku")

    def __init__(self, router: Router, sku: str) -> None:
        self.router = router
        self.engine = router.engine
        self.sku = sku

    def handle(self, msg) -> None:
        engine = self.engine
        world = engine.world
        now = engine.now()
        emit = engine.emit
        match msg:
            case SettleLines(order_id=order_id, corr=corr, actor=actor):
                engine.context("order.submit", corr, actor)
                allocs = sku_rules.settle(world, world.sku(self.sku), emit, now)
                if world.mode != "fifo":  # a new line may be served ahead of promised ones
                    promise_rules.recheck(world, world.sku(self.sku), emit, now)
                self._tell_orders(allocs, order_id, corr, actor)
                self.router.order_actor.served(order_id, self.sku, corr, actor)
            case Settle(corr=corr, actor=actor):
                engine.context("settle", corr, actor)
                self._tell_orders(sku_rules.settle(world, world.sku(self.sku), emit, now), None, corr, actor)
                promise_rules.recheck(world, world.sku(self.sku), emit, now)
            case SkuCall(req=req, reply=reply, corr=corr, actor=actor):
                engine.context(req.__struct_config__.tag, corr, actor)
                try:
                    result = self._call(req, now)
                    s = world.skus.get(self.sku)
                    if s is not None:  # a promised date it moved is told in the same commit
                        promise_rules.recheck(world, s, emit, now)
                except Rejected as exc:
                    reply.error(exc.code, exc.message)
                except UnjournalableEvent as exc:
                    refuse_unjournalable(engine, req, reply, exc)
                else:
                    reply.ok(result)
            case Tune(result=result, done=done, corr=corr, actor=actor):
                engine.context("planner.run", corr, actor)
                outcome = None
                try:
                    s = world.skus.get(self.sku)
                    outcome = None if s is None else sku_rules.tune(world, s, result, emit, now)
                    if outcome == "applied":  # new levels may call for a reorder now
                        self._tell_orders(sku_rules.settle(world, s, emit, now), None, corr, actor)
                    if outcome is not None and s is not None:  # a new lead time moves promised dates
                        promise_rules.recheck(world, s, emit, now)
                finally:
                    done(outcome)

    def _call(self, req, now) -> dict:
        world = self.engine.world
        # Whether the SKU exists is decided here, in mailbox order, not when the request was
        # read: a receive pipelined right behind the sku.configure that creates the SKU
        # must see it. Only sku.configure may create a SKU (world.sku creates on sight).
        s = world.skus.get(self.sku)
        if s is None:
            if not isinstance(req, p.SkuConfigure):
                raise NotFound("unknown_sku", f"SKU {self.sku!r} is not known (configure it or order it first)")
            s = world.sku(self.sku)
            try:
                return self._do(req, s, now)
            except BaseException:
                # Refused (or crashed) before its sku_configured event: the SKU is not in
                # the journal, so it must not stay in the model either.
                if not s.known and world.skus.get(self.sku) is s:
                    del world.skus[self.sku]
                raise
        return self._do(req, s, now)

    def _do(self, req, s, now) -> dict:
        engine, world, emit = self.engine, self.engine.world, self.engine.emit
        match req:
            case p.StockReceive(qty=qty, reference=ref, receipt_id=receipt_id):
                known = sku_rules.known_receipt(world, s, receipt_id, qty)
                if known is not None:  # a resend: answer as before, change nothing
                    return {
                        "sku": s.sku,
                        "received": known[0],
                        "request_id": known[1],
                        "duplicate": True,
                        **allocation_summary([]),
                        **sku_summary(s),
                    }
                receipt = sku_rules.match_receipt(world, s, qty, ref, now, receipt_id)
                allocs = sku_rules.record_receipt(world, s, receipt, emit, now)
                self._tell_orders(allocs, None, engine.journal.corr, engine.journal.actor)
                return {
                    "sku": s.sku,
                    "received": qty,
                    "request_id": receipt.request_id,  # the open request of this SKU it named
                    "matched": [{"request_id": m.request_id, "qty": m.qty} for m in receipt.matched],
                    "over_delivered": receipt.over_delivered,
                    "duplicate": False,
                    **allocation_summary(allocs),
                    **sku_summary(s),
                }
            case p.StockAdjust(delta=delta, counted=counted, reason=reason):
                allocs = sku_rules.adjust(world, s, delta, counted, reason, emit, now)
                self._tell_orders(allocs, None, engine.journal.corr, engine.journal.actor)
                return {**sku_summary(s), **allocation_summary(allocs)}
            case p.SkuConfigure():
                changes = {f: getattr(req, f) for f in sku_rules.POLICY_FIELDS if getattr(req, f) is not None}
                if changes.get("service_level") == "site":
                    changes["service_level"] = None
                allocs = sku_rules.configure(world, s, changes, emit, now)
                self._tell_orders(allocs, None, engine.journal.corr, engine.journal.actor)
                return {**sku_summary(s), "policy": msgspec.to_builtins(s.policy)}
            case p.ProcurementConfirm(request_id=rid, expected_date=date):
                check_date(date)
                sku_rules.confirm(world, s, rid, date, emit, now)
                return {"request_id": rid, "expected_date": date}
            case p.ProcurementCancel(request_id=rid, reason=reason):
                return self._replanned(rid, sku_rules.cancel(world, s, rid, reason, emit, now))
            case p.ProcurementClose(request_id=rid, reason=reason):
                return self._replanned(rid, sku_rules.close(world, s, rid, reason, emit, now))
            case p.ProcurementAmend(request_id=rid, qty=qty):
                return self._replanned(rid, sku_rules.amend(world, s, rid, qty, emit, now))
            case p.ProcurementAcknowledge(request_id=rid, qty=qty, expected_date=date):
                check_date(date)
                return self._replanned(rid, sku_rules.acknowledge(world, s, rid, qty, date, emit, now))
            case p.ProcurementShipNotice(request_id=rid, lines=lines, expected_date=date, reference=ref):
                check_date(date)
                others = sorted({ln.sku for ln in lines if ln.sku != s.sku})
                if others:
                    raise InvalidInput(
                        "ship_notice_sku", f"{rid} is a request for {s.sku}; the notice also lists {', '.join(others)}"
                    )
                fresh = sku_rules.ship_notice(world, s, rid, ref, sum(ln.qty for ln in lines), date, emit, now)
                return {**request_view(world.requests[rid], now), "duplicate": not fresh}
        raise ProtocolError("unknown_op", f"{type(req).__name__} is not a SKU operation")

    def _replanned(self, request_id: str, allocs) -> dict:
        """The reply of a change to a request: the request as it is now, and what re-planning
        the SKU raised (the open requests of the SKU after it)."""
        world, now = self.engine.world, self.engine.now()
        self._tell_orders(allocs, None, self.engine.journal.corr, self.engine.journal.actor)
        s = world.skus[self.sku]
        return {
            **request_view(world.requests[request_id], now),
            "inbound_requests": [request_view(r, now) for r in s.inbound.values()],
            **sku_summary(s),
        }

    def _tell_orders(self, allocs, order_id: str | None, corr: str, actor: str) -> None:
        """Tell the order actor which orders got units (it ships them), but for ``order_id``,
        the new order being served, whose submit ``OrderActor.served`` finishes."""
        orders = list(dict.fromkeys(a.order_id for a in allocs if a.order_id != order_id))
        # A big fill is told in chunks (SETTLED_CHUNK says why), once it is durable
        msgs = [
            Settled(sku=self.sku, allocated_orders=orders[start : start + SETTLED_CHUNK], corr=corr, actor=actor)
            for start in range(0, len(orders), SETTLED_CHUNK)
        ]
        if len(msgs) > 1:
            self.router.after_durable(msgs)
        elif msgs:
            self.router.order_inbox.send_nowait(msgs[0])
