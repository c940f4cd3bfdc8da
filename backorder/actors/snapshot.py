"""Snapshots of the model, so that a restart replays only the journal's tail.

A snapshot is a cache, never the source of truth: it records the model as it was after
journal event ``seq``; start-up restores the newest one and replays the events after it.
If a snapshot cannot be read (older format, corruption) the daemon replays the whole
journal instead. Derived structures (SKU queues, holders, the dedupe index) are rebuilt
from the lines, so they cannot disagree with them.
"""

from __future__ import annotations

import heapq
import math
import sys
from decimal import Decimal

import msgspec

from backorder.actors import promise_outcomes
from backorder.actors.events import EVENT_DECODER, EVENT_ENCODER, OrderRecord
from backorder.actors.kpi import TargetChanged
from backorder.actors.model import Line, Notice, Order, Promise, Request, Shipment, Sku, World
from backorder.config.settings import ReorderPolicy, Settings, Weights

VERSION = 11  # 3: notices and the dates told; 4: payment holds and intake SKU aliases;
# 5: notice counters derived, not stored; no notice seq; 6: a SKU on the default policy
# has none, nor the site while no policy_changed was journaled (each takes the config
# file's [default_policy] / [allocation] when restored, as a replay does); 7: the KPIs'
# per-day aggregates (``kpi``); 8: requests carry their purchase order, outcome and
# supplier answers; 9: orders archived out of memory (``n_archived``), and shipped orders
# carry the time they closed (older snapshots lack it: replayed, not restored); 10: an
# archived order's promises, warnings and 3PL changes leave with it (a 9 was restored without
# them), closed requests and delivered notices archived out of memory (none in a 9); 11:
# each promise's kind and whether it was decided, the kept / missed counts per kind
# (``promise_outcomes``)
# Older snapshots lack the KPI aggregates or the promise outcomes, which only a replay
# from the first event rebuilds: they are not restored (the journal is replayed instead).
READABLE = (VERSION,)


class SnapshotOutdated(ValueError):
    """A sound snapshot this build does not restore (an older format, or KPIs kept under
    another target): expected after an upgrade or a config change; the journal is replayed."""


LINE = (
    "sku",
    "qty",
    "unit_price",
    "requires_shipping",
    "rush",
    "value",
    "t_order",
    "arrival",
    "allocated",
    "in_shipment",
    "shipped",
    "cancelled",
    "rule",
    "rank",
    "backordered_at_entry",
    "decided",
    "held",
)
SKU = ("on_hand", "allocated", "backordered", "inbound_qty", "received", "adjusted", "shipped", "known")
SKU_SINCE_7 = ("over_delivered",)
SHIPMENT = (
    "shipment_id",
    "order_id",
    "items",
    "status",
    "created_ts",
    "shipped_ts",
    "carrier",
    "tracking",
    "label_zpl",
    # remote carriers; a snapshot written before them has rows without these (defaults below)
    "label_pdf",
    "service",
    "carrier_ref",
    "rate_id",
    "label_notice",
    "tracking_status",
    "tracking_detail",
)
_SHIPMENT_V1 = SHIPMENT.index("label_zpl") + 1
REQUEST = (
    "request_id",
    "sku",
    "kind",
    "source",
    "qty",
    "received",
    "created_ts",
    "expected_date",
    "closed_ts",
    "position",
    "po_id",
    "send_after",
    "ordered",
    "status",
    "close_reason",
    "acknowledged",
    "asns",
)
COUNTERS = (
    "seq",
    "n_orders",
    "n_shipments",
    "n_requests",
    "n_notices",
    "n_letters",
    "arrivals",
    "bo_lines",
    "bo_filled",
    "bo_cancelled",
    "lead_time_h_sum",
    "lead_time_n",
    "orders_shipped",
    "double_shipments",
    "notice_failures",
    "n_archived",
)
NOTICE = (
    "notice_id",
    "order_id",
    "request_id",
    "kind",
    "channel",
    "audience",
    "status",
    "attempts",
    "queued_ts",
    "last_ts",
    "last_error",
)

# Snapshots written when the model kept the wire's request carry its "op" and "id" in
# each order's JSON: unknown fields, ignored, so they still restore (format unchanged).
_spec_decoder = msgspec.json.Decoder(OrderRecord)


def dump(world: World) -> bytes:
    """The whole model as msgpack (call on the trio thread: it must not change meanwhile)."""

    def line_row(ln: Line) -> list:
        row = [getattr(ln, f) for f in LINE]
        row[2] = str(ln.unit_price)
        row.append(bool(ln.qtoken))
        return row

    return msgspec.msgpack.encode(
        {
            "version": VERSION,
            "counters": [getattr(world, f) for f in COUNTERS],
            "mode": world.mode if world.policy_journaled else None,  # None: the file's [allocation]
            "weights": msgspec.to_builtins(world.weights),
            "inaccurate_orders": sorted(world.inaccurate_orders),
            "shipped_by_day": world.shipped_by_day,
            "skus": [
                [
                    s.sku,
                    None if s.policy is world.default_policy else msgspec.to_builtins(s.policy),
                    *[getattr(s, f) for f in SKU],
                    *[getattr(s, f) for f in SKU_SINCE_7],
                ]
                for s in world.skus.values()
            ],
            "orders": [
                [
                    o.order_id,
                    EVENT_ENCODER.encode(o.spec),
                    o.cancelled,
                    o.cancel_reason,
                    o.received_ts,
                    o.closed_ts,
                    o.shipments,
                    [line_row(ln) for ln in o.lines],
                    o.hold,
                    o.expedited,
                ]
                for o in world.orders.values()
            ],
            "shipments": [[getattr(sh, f) for f in SHIPMENT] for sh in world.shipments.values()],
            "requests": [[getattr(r, f) for f in REQUEST] for r in world.requests.values()],
            "dead_letters": [EVENT_ENCODER.encode(x) for x in world.dead_letters.values()],
            "receipts": [[sku, rid, qty, req] for (sku, rid), (qty, req) in world.receipts.items()],
            "notices": [
                [*(getattr(n, f) for f in NOTICE), EVENT_ENCODER.encode(n.event) if n.event else None]
                for n in world.notices.values()
            ],
            "warned": sorted(world.warned),
            "promises": [
                [oid, n, p.date, p.source, p.confidence, p.told, p.kind, p.decided]
                for (oid, n), p in world.promises.items()
            ],
            "promise_outcomes": world.promise_outcomes,
            "aliases": [[ch, acct, table] for (ch, acct), table in world.aliases.items()],
            "stock_told": [[target, sku, nid, qty] for (target, sku), (nid, qty) in world.stock_told.items()],
            "notice_feeds": [[nid, feed] for nid, feed in world.notice_feeds.items()],
            "kpi": world.kpi.dump(),
            "archived_keys": [world.archived_keys.count, bytes(world.archived_keys.bits)],
            "archived_records": [world.n_requests_archived, world.notices_archived],
            # the planner's last policy_tuned per SKU (its levels are in the SKU's policy)
            "tuned": [EVENT_ENCODER.encode(e) for e in world.tuned.values()],
            "threepl": {
                "on": world.threepl_on,
                "switched_ts": world.threepl_switched_ts,
                "switch_backlog": world.threepl_switch_backlog,
                "routed": {o.order_id: o.routed_to for o in world.orders.values() if o.routed_to},
                "routed_open": list(world.routed_open),
                "routed_shipped": world.routed_shipped,
                "site_pick_units": world.site_pick_units,
                "site_picked": world.site_picked,
                "changes": [
                    [EVENT_ENCODER.encode(asked), EVENT_ENCODER.encode(done) if done is not None else None]
                    for asked, done in world.threepl_changes.values()
                ],
            },
        }
    )


def restore(settings: Settings, data: bytes) -> World:
    """A World equal to the one ``dump`` saw. Raises ValueError on a foreign format."""
    snap = msgspec.msgpack.decode(data)
    if not isinstance(snap, dict):
        raise ValueError("unsupported snapshot format")
    if snap.get("version") not in READABLE:
        raise SnapshotOutdated(f"snapshot format {snap.get('version')!r}, this build reads {READABLE}")
    w = World(settings)
    for f, value in zip(COUNTERS, snap["counters"], strict=True):
        setattr(w, f, value)
    if snap["mode"] is not None:
        w.policy_journaled = True
        w.mode = snap["mode"]
        w.weights = msgspec.convert(snap["weights"], Weights)
    w.inaccurate_orders = set(snap["inaccurate_orders"])
    w.shipped_by_day = snap["shipped_by_day"]
    for name, policy, *values in snap["skus"]:
        s = w.skus[name] = Sku(name, w.default_policy if policy is None else msgspec.convert(policy, ReorderPolicy))
        if len(values) == len(SKU):  # written before version 7
            values = [*values, 0]
        for f, value in zip(SKU + SKU_SINCE_7, values, strict=True):
            setattr(s, f, value)
    for row in snap["requests"]:
        r = Request.__new__(Request)
        if len(row) < len(REQUEST):  # written before version 7
            row = [*row, row[0], None, row[4], "open" if row[8] is None else "received", "", None, {}]
        for f, value in zip(REQUEST, row, strict=True):
            setattr(r, f, value)
        w.requests[r.request_id] = r
        w._join_po(r)
        if r.closed_ts is None:
            w.skus[r.sku].inbound[r.request_id] = r
    # An order row may end with the reason it was expedited (absent in snapshots written
    # before orders could be: nobody expedited them).
    for order_id, spec_json, cancelled, reason, received_ts, closed_ts, shipments, lines, hold, *more in snap["orders"]:
        expedited = more[0] if more else ""
        spec = _spec_decoder.decode(spec_json)
        order_lines = []
        for line_no, row in enumerate(lines, 1):
            ln = Line.__new__(Line)
            ln.order_id, ln.line_no, ln.qtoken, ln.key, ln.routed = order_id, line_no, 0, (), False
            ln.expedited = bool(expedited)
            for f, value in zip(LINE, row[:-1], strict=True):
                setattr(ln, f, value)
            ln.unit_price = Decimal(ln.unit_price)
            order_lines.append(ln)
            s = w.skus.get(ln.sku)
            if row[-1]:  # it was waiting: rebuild its place in the queue
                ln.key = w.queue_key(ln)
                s.queue.add(ln)
                if not ln.decided:
                    s.undecided[ln] = None
            if ln.allocated and s is not None:
                s.holders[ln] = None
        o = w.orders[order_id] = Order(order_id, spec, order_lines, received_ts)
        o.cancelled, o.cancel_reason, o.closed_ts, o.shipments = cancelled, reason, closed_ts, shipments
        o.hold = hold
        if hold and not cancelled:
            w.held_orders[order_id] = None
        w.ship_complete_orders += spec.ship_complete
        o.expedited = expedited
        w.by_key[(spec.channel, spec.account, spec.external_id)] = order_id
    for row in snap["shipments"]:
        sh = Shipment.__new__(Shipment)
        for f in SHIPMENT[_SHIPMENT_V1:]:
            setattr(sh, f, "")
        fields = SHIPMENT if len(row) == len(SHIPMENT) else SHIPMENT[:_SHIPMENT_V1]
        for f, value in zip(fields, row, strict=True):
            setattr(sh, f, value)
        sh.items = [tuple(item) for item in sh.items]
        w.shipments[sh.shipment_id] = sh
        if sh.tracking:
            w.by_tracking[sh.tracking] = sh.shipment_id
    w.receipts = {(sku, rid): (qty, req) for sku, rid, qty, req in snap["receipts"]}
    w.aliases = {(ch, acct): dict(table) for ch, acct, table in snap["aliases"]}
    for body in snap["dead_letters"]:
        letter = EVENT_DECODER.decode(body)
        w.dead_letters[letter.letter_id] = letter
    for *row, body in snap["notices"]:
        n = Notice.__new__(Notice)
        for f, value in zip(NOTICE, row, strict=True):
            setattr(n, f, value)
        n.event = EVENT_DECODER.decode(body) if body is not None else None
        w._index_notice(n)
    # "told" (a snapshot written before the promises held the date told): not read, as a
    # replay of its events keeps no record of those dates either
    w.warned = {(oid, rid) for oid, rid in snap["warned"]}
    w.promises = {
        (oid, n): Promise(d, src, c, sys.intern(kind), told, decided)
        for oid, n, d, src, c, told, kind, decided in snap["promises"]
    }
    w.promises_due = [
        (promise_outcomes.deadline(p.date), oid, n) for (oid, n), p in w.promises.items() if not p.decided
    ]
    heapq.heapify(w.promises_due)
    w.promises_next_due = w.promises_due[0][0] if w.promises_due else math.inf
    w.promise_outcomes = {sys.intern(kind): counts for kind, counts in snap["promise_outcomes"].items()}
    # absent from snapshots written before stock write-back: nothing was queued then
    w.stock_told = {(target, sku): (nid, qty) for target, sku, nid, qty in snap.get("stock_told", ())}
    # absent from snapshots written before feeds were journaled: none was then
    w.notice_feeds = {nid: feed for nid, feed in snap.get("notice_feeds", ())}
    try:
        w.kpi.load(snap["kpi"], w.requests)
    except TargetChanged as exc:
        raise SnapshotOutdated(str(exc)) from None
    if "archived_keys" not in snap:  # the filter of archived keys only a replay rebuilds
        raise SnapshotOutdated("snapshot without the archived intake keys")
    w.archived_keys.count, bits = snap["archived_keys"]
    w.n_requests_archived, w.notices_archived = snap["archived_records"]
    for status, count in w.notices_archived.items():  # still counted by status (see _records_archived)
        w.notice_status[status] = w.notice_status.get(status, 0) + count
    w.archived_keys.bits = bytearray(bits)
    for body in snap.get("tuned", ()):  # absent from snapshots taken before the planner
        tuned = EVENT_DECODER.decode(body)
        w.tuned[tuned.sku] = tuned
    _restore_threepl(w, snap)
    return w


def _restore_threepl(w: World, snap: dict) -> None:
    """The 3PL's routing state and the site's pick counters. A snapshot written before the
    3PL existed has none: nothing was routed then, and the site's units awaiting pick are
    those of its picking shipments (its pick rate starts again from nothing)."""
    tp = snap.get("threepl")
    if tp is None:
        w.site_pick_units = sum(sh.units for sh in w.shipments.values() if sh.status == "picking")
        return
    w.threepl_on, w.threepl_switched_ts, w.threepl_switch_backlog = tp["on"], tp["switched_ts"], tp["switch_backlog"]
    for order_id, provider in tp["routed"].items():
        order = w.orders[order_id]
        order.routed_to = provider
        for line in order.lines:
            line.routed = line.requires_shipping
    w.routed_open = dict.fromkeys(tp["routed_open"])
    w.routed_shipped = tp["routed_shipped"]
    w.site_pick_units = tp["site_pick_units"]
    w.site_picked = [list(b) for b in tp["site_picked"]]
    w.site_picked_sum = int(sum(b[1] for b in w.site_picked))
    for asked, done in tp.get("changes", []):  # none in a snapshot written before 3PL changes
        request = EVENT_DECODER.decode(asked)
        w.threepl_changes[request.order_id] = (request, EVENT_DECODER.decode(done) if done is not None else None)
