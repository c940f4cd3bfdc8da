"""A snapshot restores exactly the model that replaying the journal builds."""

from __future__ import annotations

import collections
import random

import msgspec
import pytest

from backorder import protocol as p
from backorder.actors import events as ev
from backorder.actors import order_rules, sku_rules, threepl_rules
from backorder.actors.carrier import LocalCarrier
from backorder.actors.model import AT_THREEPL, World
from backorder.actors.snapshot import dump, restore
from backorder.config.settings import Settings, Weights
from backorder.errors import Rejected
from backorder.timeutil import iso_date

SETTINGS = msgspec.convert(
    {
        "skus": {"A": {"reorder_point": 2, "order_up_to": 9, "pack_size": 3}},
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
                o.routed_to,
                [
                    (
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
        "requests": {rid: [r.qty, r.received, r.expected_date, r.closed_ts] for rid, r in w.requests.items()},
        "notices": {nid: [n.status, n.attempts, n.kind, n.last_error, n.event] for nid, n in w.notices.items()},
        "told": sorted(w.told.items()),
        "notice_counters": [
            w.notices_sent,
            w.notice_failures,
            sorted(w.notices_pending),
            sorted((k, v) for k, v in w.notice_status.items() if v),
        ],
        "aliases": sorted((k, sorted(v.items())) for k, v in w.aliases.items()),
        "dead_letters": {k: msgspec.to_builtins(x) for k, x in w.dead_letters.items()},
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
                if sh.status == AT_THREEPL:  # the 3PL's webhook
                    threepl_rules.ship(w, sh.order_id, "UPS", f"1Z{i}", emit, now)
                else:
                    order_rules.ship(w, sh.shipment_id, carrier, emit, now)
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
            else:  # a supplier moves a date (delay notices), and the notifier reports outcomes
                r = w.requests[rnd.choice(list(w.requests))]
                sku_rules.confirm(
                    w, w.skus[r.sku], r.request_id, iso_date(now + rnd.randint(1, 30) * 86400.0), emit, now
                )
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
