"""One function per op: reads are answered from the model at once; changes go to the actor
that owns the decision (``router.route``); the audit query reads the journal on a thread."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
import structlog
import trio

from backorder.actors import board, views
from backorder.actors.events import TOPICS
from backorder.timeutil import iso_ts, parse_ts
from backorder.actors.router import CHANGES, route
from backorder import protocol as p
from backorder.errors import Rejected
from backorder.notify import views as notify_views
from backorder.intake import ops as intake_ops

if TYPE_CHECKING:
    from backorder.daemon.app import Daemon
    from backorder.daemon.server import Connection, Reply

_RAW = msgspec.json.Decoder()
log = structlog.get_logger()


def handle(d: Daemon, conn: Connection, req: p.Request, reply: Reply, corr: str) -> None:
    """Answer or route one decoded request. Raises Rejected for bad input."""
    if isinstance(req, CHANGES):  # the hot path first: changes go to the actor that decides
        route(d.router, req, reply, corr)
        return
    world = d.engine.world
    now = d.engine.now()
    match req:
        case p.OrderGet():
            reply.ok(views.order_detail(world, _find_order(d, req), now))
        case p.OrdersList(status=status, sku=sku, limit=limit, offset=offset):
            orders = reversed(world.orders.values())
            if sku is not None:
                orders = (o for o in orders if any(ln.sku == sku for ln in o.lines))
            if status is not None:
                orders = (o for o in orders if o.status(world.shipments) == status)
            page = _page(orders, offset, limit)
            reply.ok({"orders": [views.order_summary(world, o) for o in page], "offset": offset, "limit": limit})
        case p.SkuGet(sku=sku, lines=lines):
            s = world.skus.get(sku)
            if s is None:
                raise Rejected("unknown_sku", f"SKU {sku!r} is not known")
            reply.ok(views.sku_view(world, s, now, lines))
        case p.SkusList(waiting=waiting, prefix=prefix, limit=limit, offset=offset):
            skus = (s for s in world.skus.values() if (not waiting or s.queue) and s.sku.startswith(prefix))
            reply.ok({"skus": [views.sku_summary(s) for s in _page(skus, offset, limit)],
                      "offset": offset, "limit": limit})
        case p.ProcurementList(status=status, sku=sku, limit=limit, offset=offset):
            reqs = (r for r in world.requests.values()
                    if (sku is None or r.sku == sku)
                    and (status == "all" or (status == "open") == (r.closed_ts is None)))
            reply.ok({"requests": [views.request_view(r, now) for r in _page(reqs, offset, limit)],
                      "offset": offset, "limit": limit})
        case p.ShipmentsList(status=status, order_id=order_id, limit=limit, offset=offset):
            if order_id is not None:
                order = world.orders.get(order_id)
                pool = [world.shipments[s] for s in order.shipments] if order else []
            else:
                pool = world.shipments.values()
            shs = (sh for sh in pool if status == "all" or sh.status == status)
            reply.ok({"shipments": [views.shipment_view(sh) for sh in _page(shs, offset, limit)],
                      "offset": offset, "limit": limit})
        case p.PolicyGet():
            reply.ok({"mode": world.mode, "weights": msgspec.to_builtins(world.weights)})
        case p.Stats():
            result = views.stats(world, now)
            result["notifications"] = notify_views.stats(world, now)
            result["intake"] = {"rejections": d.intake.rejection_counts(), "queue": d.intake.queue_view()}
            reply.ok(result)
        case p.Health():
            reply.ok({**d.health(), "role": conn.role})  # role: what this connection may do
        case p.DeadLettersList():
            reply.ok(intake_ops.list_letters(d))
        case p.DeadLettersRetry() if intake_ops.wants_intake_retry(d, req):
            intake_ops.retry(d, conn, req, reply, corr)
        case p.DeadLettersRetry(letter_id=None):
            raise Rejected("invalid_request", "give letter_id, or cause (and optionally channel)")
        case p.DeadLettersRetry(letter_id=letter_id):
            d.router.retry_letter(letter_id, reply, corr)
        case p.Subscribe(topics=topics):
            unknown = [t for t in topics if t not in TOPICS]
            if unknown:
                raise Rejected("unknown_topic", f"unknown topic(s) {', '.join(unknown)}; known: {', '.join(TOPICS)}")
            names = topics or list(TOPICS)
            conn.event_types = frozenset().union(*(TOPICS[t] for t in names))
            d.hub.add(conn)
            reply.ok({"topics": names, "seq": d.engine.journal.committed_seq})
        case p.AuditQuery():
            since = None
            if req.since is not None:
                try:
                    since = parse_ts(req.since)
                except ValueError:
                    raise Rejected("invalid_date", f"since {req.since!r} is not an RFC 3339 timestamp") from None
            conn.nursery.start_soon(_audit, d, req, since, reply)
        case p.SkusBoard(skus=skus, waiting=waiting, limit=limit, offset=offset):
            reply.ok(board.board(world, now, skus, waiting, offset, limit))
        case p.OrdersFind(query=query, limit=limit):
            reply.ok(board.find_orders(world, query, limit))
        case p.LogLevel(level=level):  # run-time log level
            from backorder.daemon import logging as dlog

            was = dlog.current_level()
            dlog.set_level(level)
            reply.ok({"level": level, "was": was})
        case (p.NotificationsList() | p.NotificationsRetry() | p.LabelGet() | p.ProcurementDocument()
              | p.PickListGet()):
            notify_views.handle(d, req, reply, corr)
        case _ if isinstance(req, intake_ops.INTAKE_OPS):
            intake_ops.handle(d, conn, req, reply, corr)
        case _:
            raise Rejected("unknown_op", f"{type(req).__name__} has no handler")


async def _audit(d: Daemon, req: p.AuditQuery, since: float | None, reply: Reply) -> None:
    # A task of the connection's nursery: an exception here would close the connection
    # with every reply it is owed, so it costs this one request instead.
    try:
        rows = await d.audit.query(order_id=req.order_id, sku=req.sku, since=since,
                                   after_seq=req.after_seq, limit=req.limit)
        records = [
            {"seq": seq, "at": iso_ts(ts), "type": kind, "sku": sku, "order_id": oid, "cause": cause,
             "correlation_id": corr, "event": _RAW.decode(body)}
            for seq, ts, kind, sku, oid, cause, corr, body in rows
        ]
    except Exception as exc:  # noqa: BLE001 - contained: one failed query, logged with its traceback
        log.exception("request_failed", op="audit.query", conn=reply.conn.id)
        reply.error("internal_error", f"{type(exc).__name__}: {exc}")
        return
    reply.ok({"records": records, "next_after_seq": records[-1]["seq"] if records else req.after_seq})
    await trio.lowlevel.checkpoint()


def _find_order(d: Daemon, req: p.OrderGet):
    world = d.engine.world
    if req.order_id is not None:
        order = world.orders.get(req.order_id)
    elif req.channel is not None and req.external_id is not None:
        oid = world.by_key.get((req.channel, req.account, req.external_id))
        order = world.orders.get(oid) if oid else None
    else:
        raise Rejected("invalid_request", "give order_id, or channel and external_id")
    if order is None:
        raise Rejected("unknown_order", "no such order")
    return order


def _page(items, offset: int, limit: int) -> list:
    out = []
    for n, item in enumerate(items):
        if n >= offset + limit:
            break
        if n >= offset:
            out.append(item)
    return out
