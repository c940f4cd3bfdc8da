"""Reply shapes and handlers of the notification, label and document ops."""

from __future__ import annotations

import base64
import itertools
from typing import TYPE_CHECKING, Protocol

from backorder import protocol as p
from backorder.actors import retention
from backorder.actors.model import HOUR, World
from backorder.actors.views import notice_view
from backorder.errors import Conflict, InvalidInput, NotFound, ProtocolError
from backorder.timeutil import iso_ts

if TYPE_CHECKING:
    from backorder.actors.engine import Engine
    from backorder.daemon.server import Reply
    from backorder.notify.notifier import Notifier


class NoticeParts(Protocol):
    """What these ops use of the daemon: the model (through the engine) and the notifier
    (a retry of dead notices)."""

    @property
    def engine(self) -> Engine: ...

    @property
    def notifier(self) -> Notifier: ...


def stats(world: World, now: float) -> dict:
    pending = world.notices_pending  # small: only what is still to deliver
    oldest = min((n.queued_ts for n in pending.values()), default=None)
    return {
        "queued": world.notices_queued,
        "sent": world.notices_sent,
        "failed_attempts": world.notice_failures,
        "pending": len(pending),
        "dead": world.notice_status.get("dead", 0),
        "unrouted": world.notice_status.get("unrouted", 0),
        "oldest_pending_at": iso_ts(oldest) if oldest is not None else None,
        "oldest_pending_hours": round((now - oldest) / HOUR, 2) if oldest is not None else None,
    }


def _encoded(body: bytes, text: bool) -> dict:
    """A document in a JSON reply: as text, or base64 for binary formats (PDF)."""
    if text:
        return {"encoding": "text", "document": body.decode()}
    return {"encoding": "base64", "document": base64.b64encode(body).decode()}


def _page(items, offset: int, limit: int) -> list:
    return list(itertools.islice(items, offset, offset + limit))


def handle(parts: NoticeParts, req, reply: Reply, corr: str) -> None:
    world = parts.engine.world
    match req:
        case p.NotificationsList(status=status, order_id=order_id, limit=limit, offset=offset):
            pool = world.notices_pending.values() if status == "pending" else world.notices.values()
            ns = (
                n
                for n in pool
                if (status == "all" or n.status == status) and (order_id is None or n.order_id == order_id)
            )
            if status in ("pending", "dead"):  # never archived
                found = [notice_view(n) for n in _page(ns, offset, limit)]
            else:  # delivered / unrouted ones archived out of memory ([retention]) first: the oldest
                statuses = None if status == "all" else (status,)
                found = retention.paged(world, "notice", order_id, statuses, ns, notice_view, offset, limit)
            reply.ok({"notifications": found, "offset": offset, "limit": limit})
        case p.NotificationsRetry(notice_id=notice_id, all_dead=all_dead):
            if (notice_id is None) == (not all_dead):
                raise InvalidInput("invalid_request", "give either notice_id or all_dead: true")
            reply.ok({"retried": parts.notifier.retry(notice_id, corr, reply.conn.actor)})
        case p.LabelGet(shipment_id=sid, format=fmt):
            sh = world.shipments.get(sid)
            if sh is None:
                raise NotFound("unknown_shipment", f"no shipment {sid!r}")
            if sh.status != "shipped":
                raise Conflict("not_shipped", f"shipment {sid} is {sh.status}; it has a label once shipped")
            out = {
                "shipment_id": sid,
                "order_id": sh.order_id,
                "carrier": sh.carrier,
                "tracking": sh.tracking,
                "format": fmt,
            }
            if fmt == "zpl":
                out["label"] = sh.label_zpl
            elif sh.label_pdf:  # the carrier's own PDF, as bought
                out["label"] = sh.label_pdf
            else:
                from backorder.documents.labels import label_pdf

                out["label"] = base64.b64encode(label_pdf(world.orders[sh.order_id], sh)).decode()
            reply.ok(out)
        case p.ProcurementDocument(request_id=rid, format=fmt):
            from backorder.documents.purchase_order import document

            r = world.requests.get(rid)
            if r is None:
                raise NotFound("unknown_request", f"no purchase order or transfer {rid!r}")
            body, mime = document(world, r, fmt)
            reply.ok({"request_id": rid, "format": fmt, "content_type": mime, **_encoded(body, fmt != "pdf")})
        case p.PickListGet(shipment_ids=ids, format=fmt):
            from backorder.documents.picklist import pick_list

            body = pick_list(world, ids, fmt)
            reply.ok({"format": fmt, **_encoded(body, fmt == "text")})
        case _:
            raise ProtocolError("unknown_op", f"{type(req).__name__} has no handler")
