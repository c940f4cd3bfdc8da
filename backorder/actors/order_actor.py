"""The order/fulfillment actor: intake (dedupe, ids), shipments, shipping exactly once,
cancellation, and the allocation policy. ``order.submit`` is answered once every SKU
actor involved has served the new lines, by the last of them (``OrderActor.served``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
import trio

from backorder import protocol as p
from backorder.actors import bulk_rules, order_rules, promise_rules, retention, threepl_changes, threepl_rules
from backorder.actors import events as ev
from backorder.actors.events import UnjournalableEvent
from backorder.actors.mailbox import serve_mailbox
from backorder.actors.messages import SETTLED_TURN, OrderCall, Settle, Settled, SettleLines, ThreeplShipped
from backorder.actors.supervisor import Cell, refuse_unjournalable
from backorder.actors.views import order_detail, order_result, shipment_view
from backorder.errors import ProtocolError, Rejected
from backorder.timeutil import iso_ts

if TYPE_CHECKING:
    from backorder.actors.router import Router


class OrderActor:
    def __init__(self, router: Router) -> None:
        self.router = router
        self.engine = router.engine
        # order_id -> [reply, SKU actors still to answer]; survives a restart of the task
        self.pending: dict[str, list] = {}

    async def run(self, cell: Cell, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await serve_mailbox(self.router.order_recv, self.handle, cell)

    def handle(self, msg) -> int | None:
        """Handle one message; a ``Settled`` returns its worth in mailbox turns (``SETTLED_TURN``)."""
        engine = self.engine
        match msg:
            case OrderCall(req=req, reply=reply, corr=corr, actor=actor):
                engine.context(req.__struct_config__.tag, corr, actor)
                try:
                    self._call(req, reply, corr, actor)
                except Rejected as exc:
                    reply.error(exc.code, exc.message)
                except UnjournalableEvent as exc:
                    refuse_unjournalable(engine, req, reply, exc)
            case Settled(sku=sku, allocated_orders=orders, corr=corr, actor=actor):
                engine.context("settle", corr, actor)
                world, now = engine.world, engine.now()
                served = [world.orders[oid] for oid in orders]
                pending = self.pending  # an order still being submitted ships when its reply goes
                ready = [order for order in served if order.order_id not in pending]
                order_rules.settle_orders(world, ready, engine.emit, now, engine.auto_pick)
                for order in served:
                    self._ask_to_lend(order, sku, corr, actor)
                return len(orders) // SETTLED_TURN + 1
        return None

    def served(self, order_id: str, sku: str, corr: str, actor: str) -> None:
        """``sku``'s actor served the lines of new order ``order_id``: called by that SKU
        actor in its own step (``SettleLines``), not sent back here as a message. When it
        was the last SKU to serve the order, the submit finishes in that same step and so in
        the same journal commit: promised, allocated units sent to picking, client answered.
        Trio runs one step at a time, so this sees the model the order actor would; it only
        saves the round trip (a message and a wake-up of this actor per order line)."""
        waiting = self.pending.get(order_id)
        if waiting is None:
            return
        waiting[1] -= 1
        if waiting[1] == 0:
            self._finish_submit(order_id, waiting[0], *waiting[2:])
            # its SKUs settled one by one: one that answered before the others served it
            # may now lend to it
            self._ask_to_lend(self.engine.world.orders[order_id], sku, corr, actor)

    def _ask_to_lend(self, order, served_by: str, corr: str, actor: str) -> None:
        """Settle again the SKU an order is left waiting on alone (``order_rules.may_borrow_at``):
        its line may now ship on a loan."""
        lender_sku = order_rules.may_borrow_at(self.engine.world, order, served_by)
        if lender_sku is not None:
            self.router.send(lender_sku, Settle(corr=corr, actor=actor))

    def _call(self, req, reply, corr: str, actor: str) -> None:
        engine, world, now, emit = self.engine, self.engine.world, self.engine.now(), self.engine.emit
        match req:
            case p.OrderSubmit():
                archived = retention.duplicate_of(world, (req.channel, req.account, req.external_id))
                if archived is not None:  # a resend of an order archived out of memory
                    reply.ok(archived)
                    return
                order, duplicate = order_rules.submit(world, req, emit, now)
                if duplicate:
                    if order.order_id in self.pending:  # the first is still being served: answer with it
                        self.pending[order.order_id].append(reply)
                    else:
                        reply.ok(order_result(world, order, duplicate=True))
                    return
                if threepl_rules.route(world, order, engine.threepl_inventory, world.settings.threepl, emit, now):
                    reply.ok(order_result(world, order, duplicate=False))
                    return
                self._serve_lines(order, reply, corr, actor)
            case p.OrderAmend(order_id=oid, lines=lines, reason=reason):
                order = order_rules.amend(world, oid, lines, reason, emit, now, req.source_version, req.totals)
                if order is None:
                    reply.ok(order_result(world, world.orders[oid], duplicate=False))
                else:
                    self._serve_lines(order, reply, corr, actor)
            case p.OrderRelease(order_id=oid, reason=reason):
                order = order_rules.release(world, oid, reason, emit, now, req.source_version)
                if order is None:  # not on hold (any more): nothing changes
                    reply.ok(order_result(world, world.orders[oid], duplicate=False))
                else:
                    self._serve_lines(order, reply, corr, actor)
            case p.OrderAddress(order_id=oid, shipping_address=address, reason=reason) if threepl_changes.at_threepl(
                world, oid
            ):
                record = order_rules.check_address(world.orders[oid], address)
                if record is not None:
                    threepl_changes.request(world, world.settings.threepl, oid, "address", reason, record, emit, now)
                reply.ok(order_detail(world, world.orders[oid], now))
            case p.OrderAddress(order_id=oid, shipping_address=address, reason=reason):
                order = order_rules.set_address(world, oid, address, reason, emit, now)
                if order is not None and engine.auto_pick is not None:
                    # shipments created while the address was missing were not labelled
                    for sid in list(order.shipments):
                        if world.shipments[sid].status == "picking":
                            order_rules.ship(world, sid, engine.auto_pick, emit, now)
                order = world.orders[oid]
                reply.ok(order_detail(world, order, now))
            case ThreeplShipped(order_id=oid, carrier=carrier, tracking=tracking):
                reply.ok({"outcome": threepl_rules.ship(world, oid, carrier, tracking, emit, now), "order_id": oid})
            case p.OrderCancel(order_id=oid, reason=reason):
                skus, change = threepl_changes.cancel(world, world.settings.threepl, oid, reason, emit, now)
                for sku in skus:
                    self.router.send(sku, Settle(corr=corr, actor=actor))
                result = order_result(world, world.orders[oid], duplicate=False)
                reply.ok(result if change is None else result | {"threepl_change": change})
            case p.OrderExpedite(order_id=oid, reason=reason):
                changed = order_rules.expedite(world, oid, reason, emit, now)
                order = world.orders[oid]
                for sku in sorted({ln.sku for ln in order.lines if ln.need}) if changed else ():
                    promise_rules.recheck(world, world.skus[sku], emit, now)  # the lines it jumped wait longer
                reply.ok(
                    {
                        "order_id": oid,
                        "expedited": order.expedited,
                        "changed": changed,
                        "status": order.status(world.shipments),
                    }
                )
            case p.OrdersBulk(action=action):
                sel, skus, at_threepl = bulk_rules.apply(world, req, emit, now)
                for sku in skus:  # released units (cancel) or lines now queued (release)
                    self.router.send(sku, Settle(corr=corr, actor=actor))
                result = {"action": action, "dry_run": req.dry_run, **sel.view()}
                reply.ok(result | {"results": at_threepl} if action == "cancel" and not req.dry_run else result)
            case p.PickConfirm(shipment_id=sid):
                if req.scanned is not None:
                    order_rules.check_scan(world, sid, req.scanned, emit, now)
                sh = order_rules.ship(world, sid, engine.carrier, emit, now)
                order = world.orders[sh.order_id]
                reply.ok({**shipment_view(sh, label=True), "order_status": order.status(world.shipments)})
            case p.ShipmentExceptionReport(shipment_id=sid, kind=kind, lines=lines, note=note):
                e = order_rules.record_exception(world, sid, kind, lines, note, emit, now)
                reply.ok(
                    {
                        "shipment_id": e.shipment_id,
                        "order_id": e.order_id,
                        "kind": e.kind,
                        "lines": [{"line_no": n, "sku": sku, "qty": q} for n, sku, q in e.lines],
                        "note": e.note,
                        "recorded_at": iso_ts(e.ts),
                    }
                )
            case p.PolicySet(mode=mode, weights=update):
                # weights left out of the request keep their current value
                changes = update.changes() if update is not None else {}
                weights = msgspec.structs.replace(world.weights, **changes) if changes else world.weights
                emit(ev.PolicyChanged(ts=now, mode=mode, weights=weights))
                reply.ok({"mode": world.mode, "weights": msgspec.to_builtins(world.weights)})
            case _:
                raise ProtocolError("unknown_op", f"{type(req).__name__} is not an order operation")

    def _serve_lines(self, order, reply, corr: str, actor: str) -> None:
        """Ask each SKU of the order's queued lines to serve them; answer when all did."""
        skus = [] if order.hold else list(dict.fromkeys(ln.sku for ln in order.lines if ln.requires_shipping))
        if not skus:
            self._finish_submit(order.order_id, reply)
            return
        self.pending[order.order_id] = [reply, len(skus)]
        for sku in skus:
            self.router.serve_lines(sku, SettleLines(order_id=order.order_id, corr=corr, actor=actor))

    def _finish_submit(self, order_id: str, reply, *more) -> None:
        engine, world = self.engine, self.engine.world
        order = world.orders[order_id]
        promise_rules.promise_order(world, order, engine.emit, engine.now())  # before its units may ship
        order_rules.settle_order(world, order, engine.emit, engine.now(), engine.auto_pick)
        result = order_result(world, order, duplicate=False)
        again = order_result(world, order, duplicate=True) if more else None
        # Forgotten only now: a step that crashed before this line left the order pending,
        # and its dead letter answers the client (Router._dead_letter), once.
        self.pending.pop(order_id, None)
        reply.ok(result)
        for twin in more:  # the same order sent again while the first was being served
            twin.ok(again)
