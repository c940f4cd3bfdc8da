"""A snapshot restores exactly the model that replaying the journal builds."""

from __future__ import annotations

import collections
import random

import msgspec
import pytest

from backorder import protocol as p
from backorder.actors import events as ev
from backorder.actors import order_rules, sku_rules, threepl_rules
from backorder.actors.carrier import CARRIERS, LocalCarrier
from backorder.actors.model import AT_THREEPL, World
from backorder.actors.snapshot import dump, restore
from backorder.config.settings import Settings, Weights
from backorder.errors import Rejected
from backorder.timeutil import iso_date

SETTINGS = msgspec.convert(
    {
        "skus": {"A": {"reorder_point": 2, "order_up_to": 9, "pack_size": 3}},
        "procurement": {"consolidate_hours": 6},  # requests of one source become lines of one PO
        # routed notices (kept with their content), delays on every move;
        # "b2b" has no route, so its orders get no notice (and no told dates)
        "notifications": {"routes": {"web": "webhook"}, "tolerance_hours": 0},
        # a 3PL that takes orders once a few units wait for pick (and stops soon after)
        "threepl": {"enabled": True, "backlog_on_hours": 6, "backlog_off_hours": 3, "min_pick_rate_per_hour": 1},
    },
    Settings,
)


def fingerprint(w: World) -> dict:
    """Everything a reader or a decision can observe, with derived structures spelled out."""
    return {
        "counters": [
            w.n_orders,
            w.n_shipments,
            w.n_requests,
            w.n_notices,
            w.arrivals,
            w.bo_lines,
            w.bo_filled,
            w.bo_cancelled,
            round(w.lead_time_h_sum, 6),
            w.lead_time_n,
            w.orders_shipped,
            sorted(w.inaccurate_orders),
            w.double_shipments,
            w.notices_queued,
            w.shipped_by_day,
        ],
        "policy": [w.mode, w.weights],
        "skus": {
            n: [
                s.policy,
                s.on_hand,
                s.allocated,
                s.backordered,
                s.inbound_qty,
                s.received,
                s.adjusted,
                s.shipped,
                s.known,
                s.over_delivered,
                sorted(s.inbound),
                [(ln.order_id, ln.line_no) for ln in s.queue],
                sorted((ln.order_id, ln.line_no) for ln in s.undecided),
                sorted((ln.order_id, ln.line_no) for ln in s.holders),
            ]
            for n, s in sorted(w.skus.items())
        },
        "orders": {
            oid: [
                o.cancelled,
                o.shipments,
                o.spec.external_id,
                o.status(w.shipments),
                o.hold,
                o.expedited,
                o.routed_to,
                [
                    (
                        ln.expedited,
                        ln.sku,
                        ln.qty,
                        str(ln.unit_price),
                        ln.allocated,
                        ln.in_shipment,
                        ln.shipped,
                        ln.cancelled,
                        ln.decided,
                        ln.backordered_at_entry,
                        ln.arrival,
                        ln.rule,
                        ln.held,
                        ln.routed,
                    )
                    for ln in o.lines
                ],
            ]
            for oid, o in w.orders.items()
        },
        "by_key": sorted(w.by_key.items()),
        "receipts": sorted(w.receipts.items()),
        "shipments": {sid: [sh.status, sh.items, sh.tracking] for sid, sh in w.shipments.items()},
        "requests": {
            rid: [
                r.qty,
                r.received,
                r.expected_date,
                r.closed_ts,
                r.po_id,
                r.send_after,
                r.ordered,
                r.status,
                r.close_reason,
                r.acknowledged,
                r.asns,
            ]
            for rid, r in w.requests.items()
        },
        "purchase_orders": {po: [r.request_id for r in lines] for po, lines in w.purchase_orders.items()},
        "open_po": sorted(w.open_po.items()),
        "notices": {nid: [n.status, n.attempts, n.kind, n.last_error, n.event] for nid, n in w.notices.items()},
        "promises": sorted((k, [v.date, v.source, v.confidence, v.told]) for k, v in w.promises.items()),
        "notice_counters": [
            w.notices_sent,
            w.notice_failures,
            sorted(w.notices_pending),
            sorted((k, v) for k, v in w.notice_status.items() if v),
        ],
        "aliases": sorted((k, sorted(v.items())) for k, v in w.aliases.items()),
        "held_orders": sorted(w.held_orders),
        "ship_complete_orders": w.ship_complete_orders,
        "dead_letters": {k: msgspec.to_builtins(x) for k, x in w.dead_letters.items()},
        # the windowed KPIs, while lines still wait within their target and once all are past it
        "kpi": [w.kpi.report(t, iso_date(t)) for t in (1.7e9 + 1.2e6, 2.0e9)],
        "kpi_records": [sorted(w.kpi.flagged), w.kpi.exceptions, w.kpi.pick_mismatches],
        "threepl": [
            w.threepl_on,
            w.threepl_switched_ts,
            list(w.routed_open),
            w.routed_shipped,
            w.site_pick_units,
            w.site_picked,
            w.site_picked_sum,
        ],
    }


def random_history(seed: int, steps: int = 300) -> tuple[World, list[ev.Event]]:
    rnd = random.Random(seed)
    w = World(SETTINGS)
    log: list[ev.Event] = []

    def emit(e: ev.Event) -> None:
        w.evolve(e)
        log.append(e)

    now = 1.7e9
    carrier = LocalCarrier()
    inventory = threepl_rules.Inventory(on_hand={"A": 1000, "B": 1000, "C": 1000})
    skus = ["A", "B", "C"]
    for i in range(steps):
        now += rnd.uniform(1, 7200)
        roll = rnd.random()
        try:
            if roll < 0.45:
                lines = [
                    {
                        "sku": rnd.choice(skus),
                        "qty": rnd.randint(1, 4),
                        "unit_price": "2.50",
                        "requires_shipping": rnd.random() > 0.05,
                    }
                    for _ in range(rnd.randint(1, 3))
                ]
                req = msgspec.convert(
                    {
                        "op": "order.submit",
                        "external_id": f"x{rnd.randint(0, 60)}",
                        "channel": "web" if rnd.random() < 0.7 else "b2b",
                        "lines": lines,
                        "rush": rnd.random() < 0.2,
                        "hold": "payment pending" if rnd.random() < 0.15 else "",
                        "ship_complete": rnd.random() < 0.2,
                    },
                    p.OrderSubmit,
                )
                order, dup = order_rules.submit(w, req, emit, now)
                if not dup and threepl_rules.route(w, order, inventory, SETTINGS.threepl, emit, now):
                    pass  # at the 3PL: no SKU serves it
                elif not dup and not order.hold:  # a held order's lines join no queue (the actor settles none)
                    for sku in {ln.sku for ln in order.lines if ln.requires_shipping}:
                        sku_rules.settle(w, w.skus[sku], emit, now)
                    order_rules.settle_order(w, order, emit, now)
            elif roll < 0.65:
                s = w.sku(rnd.choice(skus))
                ref = next(iter(s.inbound), None) if rnd.random() < 0.6 else None
                rid = f"r{i}" if rnd.random() < 0.5 else None
                for a in sku_rules.receive(w, s, rnd.randint(1, 8), ref, emit, now, rid):
                    order_rules.settle_order(w, w.orders[a.order_id], emit, now)
            elif roll < 0.75 and w.shipments:
                sh = w.shipments[rnd.choice(list(w.shipments))]
                sid = sh.shipment_id
                if sh.status == AT_THREEPL:  # the 3PL's webhook
                    threepl_rules.ship(w, sh.order_id, "UPS", f"1Z{i}", emit, now)
                else:
                    if rnd.random() < 0.3:  # a pick scan: a wrong one is recorded and refused
                        scan = [p.ScanLine(sku=rnd.choice(skus), qty=rnd.randint(1, 3))]
                        order_rules.check_scan(w, sid, scan, emit, now)
                    order_rules.ship(w, sid, carrier, emit, now)
                if rnd.random() < 0.2:
                    kind = rnd.choice(["mis_pick", "short", "damaged", "wrong_address", "returned"])
                    order_rules.record_exception(w, sid, kind, [], "test", emit, now)
            elif roll < 0.82 and w.orders:
                for sku in order_rules.cancel(w, rnd.choice(list(w.orders)), "test", emit, now):
                    sku_rules.settle(w, w.skus[sku], emit, now)
            elif roll < 0.86 and w.orders:
                # a payment hold lifted (intake's "updated"), an alias, an intake dead letter
                order = order_rules.release(w, rnd.choice(list(w.orders)), "paid", emit, now)
                if order is not None:
                    for sku in {ln.sku for ln in order.lines if ln.requires_shipping}:
                        sku_rules.settle(w, w.skus[sku], emit, now)
                    order_rules.settle_order(w, order, emit, now)
                emit(
                    ev.AliasSet(
                        ts=now, channel="csv", account="*", channel_sku=f"c{i % 4}", sku=rnd.choice([*skus, None])
                    )
                )
                if w.orders and rnd.random() < 0.5:  # a source changed an order before allocation
                    new = [p.OrderLineIn(sku=rnd.choice(skus), qty=rnd.randint(1, 3))]
                    amended = order_rules.amend(w, rnd.choice(list(w.orders)), new, "changed", emit, now)
                    if amended is not None and not amended.hold:
                        for sku in {ln.sku for ln in amended.lines if ln.requires_shipping}:
                            sku_rules.settle(w, w.sku(sku), emit, now)
                letter = w.n_letters + 1
                emit(
                    ev.DeadLettered(
                        ts=now,
                        letter_id=letter,
                        actor="intake",
                        message="{}",
                        error="e",
                        kind="intake",
                        cause="unknown_sku",
                        channel="csv",
                        account="default",
                        impact=rnd.random(),
                    )
                )
                if rnd.random() < 0.5:
                    emit(ev.DeadLetterRetried(ts=now, letter_id=letter, resolved=False, cause="missing_sku", error="x"))
                elif rnd.random() < 0.5:
                    emit(ev.DeadLetterDiscarded(ts=now, letter_id=letter, reason="test"))
                if rnd.random() < 0.5:  # a person expedites an order (refused once shipped or cancelled)
                    order_rules.expedite(w, rnd.choice(list(w.orders)), f"vip {i % 3}", emit, now)
            elif roll < 0.9:
                s = w.sku(rnd.choice(skus))
                sku_rules.adjust(w, s, None, rnd.randint(0, s.on_hand + 3), "count", emit, now)
            elif roll < 0.95:
                emit(
                    ev.PolicyChanged(
                        ts=now,
                        mode=rnd.choice(["fifo", "priority"]),
                        weights=Weights(rush=rnd.choice([0.0, 24.0]), age=rnd.choice([0.5, 1.0])),
                    )
                )
            elif roll < 0.97 or not w.requests:
                s = w.sku(rnd.choice(skus))
                sku_rules.configure(w, s, {"reorder_point": 1, "order_up_to": rnd.randint(1, 10)}, emit, now)
            else:  # a supplier or buyer changes a request (delay notices), and the notifier reports outcomes
                r = w.requests[rnd.choice(list(w.requests))]
                s, date = w.skus[r.sku], iso_date(now + rnd.randint(1, 30) * 86400.0)
                change = rnd.randrange(6)
                if change == 0:
                    sku_rules.confirm(w, s, r.request_id, date, emit, now)
                elif change == 1:
                    sku_rules.acknowledge(w, s, r.request_id, rnd.randint(1, r.qty), date, emit, now)
                elif change == 2:
                    sku_rules.ship_notice(w, s, r.request_id, f"asn{i % 3}", rnd.randint(1, 4), date, emit, now)
                elif change == 3:
                    sku_rules.amend(w, s, r.request_id, rnd.randint(1, 12), emit, now)
                elif change == 4:
                    sku_rules.cancel(w, s, r.request_id, "test", emit, now)
                else:
                    sku_rules.close(w, s, r.request_id, "test", emit, now)
            pending = [n for n in w.notices.values() if n.status == "pending"]
            if pending and rnd.random() < 0.3:
                n = rnd.choice(pending)
                emit(ev.NoticeAttempted(ts=now, notice_id=n.notice_id, attempt=n.attempts + 1, channel=n.channel))
                if rnd.random() < 0.5:
                    emit(ev.NoticeDelivered(ts=now, notice_id=n.notice_id, attempt=n.attempts))
                else:
                    emit(
                        ev.NoticeFailed(
                            ts=now, notice_id=n.notice_id, attempt=n.attempts, error="HTTP 500", dead=rnd.random() < 0.5
                        )
                    )
        except Rejected:
            pass
    return w, log


@pytest.mark.parametrize("seed", range(12))
def test_snapshot_restores_what_replay_builds(seed):
    live, log = random_history(seed)
    replayed = World(SETTINGS)
    for e in log:
        replayed.evolve(ev.EVENT_DECODER.decode(ev.EVENT_ENCODER.encode(e)))
    restored = restore(SETTINGS, dump(live))
    assert fingerprint(replayed) == fingerprint(live)
    assert fingerprint(restored) == fingerprint(live)
    # the outbox's derived counts agree with a full scan
    scan = collections.Counter(n.status for n in live.notices.values())
    assert {k: v for k, v in live.notice_status.items() if v} == dict(scan)
    assert set(live.notices_pending) == {n.notice_id for n in live.notices.values() if n.status == "pending"}
    # the history exercised both sides of the route rule: only routed orders were told
    # (a routed order's create request goes to the 3PL, whatever its channel)
    told = {
        live.orders[n.order_id].spec.channel for n in live.notices.values() if n.order_id and n.audience != "channel"
    }
    assert told == {"web"} and any(o.spec.channel == "b2b" for o in live.orders.values())
    assert live.routed_open or live.routed_shipped, "the history routed orders to the 3PL"


def test_decisions_after_restore_match_decisions_after_replay():
    live, log = random_history(99)
    restored = restore(SETTINGS, dump(live))
    outs = []
    for w in (live, restored):
        got: list[ev.Event] = []

        def emit(e, w=w, got=got):
            w.evolve(e)
            got.append(e)

        for name in sorted(w.skus):
            sku_rules.receive(w, w.skus[name], 50, None, emit, 1.8e9)
        outs.append([ev.EVENT_ENCODER.encode(e) for e in got])
    assert outs[0] == outs[1]


def test_foreign_snapshot_is_refused():
    with pytest.raises(ValueError):
        restore(SETTINGS, msgspec.msgpack.encode({"version": -1}))


REMOTE = msgspec.convert(
    {
        "fulfillment": {"carrier": "easypost", "carrier_by_channel": {"b2b": "local"}},
        "notifications": {"routes": {"web": "file"}},
    },
    Settings,
)


def _remote_history() -> tuple[World, list[ev.Event]]:
    """Shipments of a remote carrier in every state: label pending, rated, bought and
    tracked, cancelled while pending (a void queued), and a local one beside them."""
    w, log = World(REMOTE), []

    def emit(e: ev.Event) -> None:
        w.evolve(e)
        log.append(e)

    now = 1.7e9
    emit(ev.Received(ts=now, sku="A", qty=10))
    sids = []
    for n, channel in enumerate(["web", "web", "web", "b2b"]):
        req = msgspec.convert(
            {
                "op": "order.submit",
                "channel": channel,
                "external_id": f"x{n}",
                "lines": [{"sku": "A", "qty": 1, "unit_price": "1"}],
                "email": "a@example.com",
                "shipping_address": {"name": "Ada", "address1": "1 Main St", "city": "X", "country_code": "US"},
            },
            p.OrderSubmit,
        )
        order, _ = order_rules.submit(w, req, emit, now)
        sku_rules.settle(w, w.skus["A"], emit, now)
        sids += order_rules.settle_order(w, w.orders[order.order_id], emit, now)
    for sid in sids:  # the engine's carrier is the configured default
        order_rules.ship(w, sid, CARRIERS["easypost"](), emit, now)
    assert [w.shipments[s].status for s in sids] == ["label_pending"] * 3 + ["shipped"]
    emit(ev.ShipmentRated(ts=now, shipment_id=sids[0], order_id="O0000001", carrier="easypost",
                          carrier_ref="shp_1", rate_id="rate_1", service="USPS Priority", amount="8.40"))  # fmt: skip
    order_rules.label_bought(w, sids[0], "EZ1", "^XA^XZ", "JVBERg==", "USPS Priority", "shp_1", emit, now)
    order_rules.tracked(w, sids[0], "delivered", "", emit, now)
    order_rules.cancel(w, "O0000002", "changed", emit, now)
    assert order_rules.label_bought(w, sids[1], "EZ2", "z", "", "s", "shp_2", emit, now) == "void_queued"
    return w, log


def _shipments(w: World) -> dict:
    return {
        sid: [getattr(sh, f) for f in sh.__slots__ if f != "items"] + [list(map(list, sh.items))]
        for sid, sh in w.shipments.items()
    } | {"by_tracking": w.by_tracking}


def test_remote_carrier_shipments_restore_as_replay_builds_them():
    live, log = _remote_history()
    replayed = World(REMOTE)
    for e in log:
        replayed.evolve(ev.EVENT_DECODER.decode(ev.EVENT_ENCODER.encode(e)))
    restored = restore(REMOTE, dump(live))
    assert _shipments(replayed) == _shipments(live) == _shipments(restored)
    assert [(n.kind, n.channel) for n in live.notices.values() if n.audience == "carrier"] == [
        ("label", "carrier"), ("label", "carrier"), ("label", "carrier"), ("label_void", "carrier")
    ]  # fmt: skip
    sh = live.shipments["S0000001"]
    assert (sh.status, sh.tracking_status, sh.label_pdf, live.by_tracking) == (
        "shipped",
        "delivered",
        "JVBERg==",
        {"EZ1": "S0000001", sh_local(live): "S0000004"},
    )


def sh_local(w: World) -> str:
    return w.shipments["S0000004"].tracking


def test_a_snapshot_written_before_remote_carriers_restores_with_their_fields_empty():
    from backorder.actors.snapshot import SHIPMENT

    live, _ = random_history(3)
    doc = msgspec.msgpack.decode(dump(live))
    width = SHIPMENT.index("label_zpl") + 1
    doc["shipments"] = [row[:width] for row in doc["shipments"]]  # the rows of the earlier layout
    restored = restore(SETTINGS, msgspec.msgpack.encode(doc))
    assert fingerprint(restored) == fingerprint(live)
    assert {(sh.label_pdf, sh.carrier_ref, sh.tracking_status) for sh in restored.shipments.values()} == {("", "", "")}


def test_a_snapshot_written_with_its_own_record_of_dates_told_restores_as_a_replay_builds():
    """Snapshots of format 9 written before the promises became the one record of the date
    told carry a ``told`` table: it is not read (a replay of the same events keeps no such
    record either), the rest restores."""
    live, _ = random_history(4)
    doc = msgspec.msgpack.decode(dump(live))
    doc["told"] = [[oid, 1, "2024-03-08"] for oid in list(live.orders)[:3]]
    restored = restore(SETTINGS, msgspec.msgpack.encode(doc))
    assert fingerprint(restored) == fingerprint(live)
    assert not hasattr(restored, "told")
