"""The pure rules of expedite and bulk actions: service order with expedited lines (FIFO
and priority), what a snapshot keeps of it, and the checks before a bulk action applies."""

from __future__ import annotations

import msgspec
import pytest

from backorder import protocol as p
from backorder.actors import bulk_rules, order_rules, sku_rules
from backorder.actors import events as ev
from backorder.actors.model import World
from backorder.actors.snapshot import dump, restore
from backorder.config.settings import Settings, Weights
from backorder.errors import Rejected

T0 = 1.7e9


class Site:
    def __init__(self) -> None:
        self.w = World(Settings())
        self.log: list[ev.Event] = []
        self.now = T0

    def emit(self, e: ev.Event) -> None:
        self.w.evolve(ev.EVENT_DECODER.decode(ev.encode_checked(e)))  # as journaled
        self.log.append(e)

    def order(self, ext: str, sku: str = "LAMP", qty: int = 1, **fields) -> str:
        self.now += 60
        req = msgspec.convert(
            {"op": "order.submit", "channel": "web", "external_id": ext, "lines": [{"sku": sku, "qty": qty}], **fields},
            p.OrderSubmit,
        )
        order, _ = order_rules.submit(self.w, req, self.emit, self.now)
        if not order.hold:
            sku_rules.settle(self.w, self.w.sku(sku), self.emit, self.now)
        return order.order_id

    def queue(self, sku: str = "LAMP") -> list[str]:
        return [ln.order_id for ln in self.w.skus[sku].queue]


def test_an_expedited_order_goes_first_under_fifo_and_under_priority():
    site = Site()
    a, b, c = site.order("a"), site.order("b"), site.order("c")
    assert order_rules.expedite(site.w, c, "vip", site.emit, site.now)
    assert site.queue() == [c, a, b]
    assert order_rules.expedite(site.w, b, "also", site.emit, site.now)
    assert site.queue() == [b, c, a]  # between expedited lines, FIFO as usual
    assert not order_rules.expedite(site.w, b, "also", site.emit, site.now)  # a resend
    site.emit(ev.PolicyChanged(ts=site.now, mode="priority", weights=Weights(rush=24.0)))
    rush = site.order("d", rush=True)  # a rush order outranks a, but not the expedited ones
    assert site.queue() == [b, c, rush, a]
    # units go in that order; a snapshot and a replay keep it
    replayed = World(Settings())
    for e in site.log:
        replayed.evolve(e)
    restored = restore(Settings(), dump(site.w))
    for w in (replayed, restored):
        assert [ln.order_id for ln in w.skus["LAMP"].queue] == [b, c, rush, a]
        assert w.orders[c].expedited == "vip"
    allocs = sku_rules.receive(site.w, site.w.skus["LAMP"], 2, None, site.emit, site.now)
    assert [x.order_id for x in allocs] == [b, c]


def test_a_held_or_amended_order_keeps_its_expedite():
    site = Site()
    first = site.order("a")
    held = site.order("h", hold="payment pending")
    order_rules.expedite(site.w, held, "vip", site.emit, site.now)
    assert site.queue() == [first]  # held: in no queue yet
    order_rules.amend(site.w, held, [p.OrderLineIn(sku="LAMP", qty=2)], "changed", site.emit, site.now)
    order_rules.release(site.w, held, "paid", site.emit, site.now)
    assert site.queue() == [held, first]


def test_expedite_refuses_what_cannot_be_expedited():
    site = Site()
    oid = site.order("a")
    order_rules.cancel(site.w, oid, "gone", site.emit, site.now)
    n = len(site.log)
    for order_id, reason, code in (("O9", "x", "unknown_order"), (oid, "x", "order_cancelled")):
        with pytest.raises(Rejected) as exc:
            order_rules.expedite(site.w, order_id, reason, site.emit, site.now)
        assert exc.value.code == code
    assert len(site.log) == n


def bulk(action: str, **fields) -> p.OrdersBulk:
    return msgspec.convert({"op": "orders.bulk", "action": action, **fields}, p.OrdersBulk)


def test_bulk_applies_only_the_confirmed_set():
    site = Site()
    a, b = site.order("a"), site.order("b")
    site.order("x", sku="DESK")
    sel, _, _ = bulk_rules.apply(site.w, bulk("cancel", filter={"sku": "LAMP"}, dry_run=True), site.emit, site.now)
    assert (sel.ids, len(site.log)) == ([a, b], len(site.log))
    n = len(site.log)
    for req, code in (
        (bulk("cancel", filter={"sku": "LAMP"}), "invalid_request"),  # no count confirmed
        (bulk("cancel", filter={"sku": "LAMP"}, expect_count=3), "bulk_changed"),
        (bulk("cancel", filter={"sku": "LAMP"}, expect_count=2, expect_digest="0" * 16), "bulk_changed"),
        (bulk("expedite", filter={"sku": "LAMP"}, expect_count=2), "invalid_request"),  # no reason
    ):
        with pytest.raises(Rejected) as exc:
            bulk_rules.apply(site.w, req, site.emit, site.now)
        assert exc.value.code == code
    assert len(site.log) == n  # refused before anything changed
    sel, skus, _ = bulk_rules.apply(
        site.w, bulk("cancel", filter={"sku": "LAMP"}, expect_count=2, expect_digest=sel.digest), site.emit, site.now
    )
    assert skus == ["LAMP"] and all(site.w.orders[o].cancelled for o in (a, b))


def test_bulk_over_the_limit_is_refused(monkeypatch):
    monkeypatch.setattr(bulk_rules, "MAX_BULK", 2)
    site = Site()
    for n in range(3):
        site.order(f"o{n}")
    n = len(site.log)
    with pytest.raises(Rejected) as exc:
        bulk_rules.apply(site.w, bulk("cancel", expect_count=3), site.emit, site.now)
    assert exc.value.code == "bulk_too_large" and len(site.log) == n


def test_the_digest_tells_sets_of_the_same_size_apart():
    assert bulk_rules.digest(["O1", "O2"]) == bulk_rules.digest(["O2", "O1"])
    assert bulk_rules.digest(["O1", "O2"]) != bulk_rules.digest(["O1", "O3"])


def routed(site: Site, ext: str, sku: str = "LAMP") -> str:
    """A new order routed to the 3PL before any SKU served it (as ``threepl_rules.route`` does)."""
    site.now += 60
    req = msgspec.convert(
        {"op": "order.submit", "channel": "web", "external_id": ext, "lines": [{"sku": sku, "qty": 1}]}, p.OrderSubmit
    )
    order, _ = order_rules.submit(site.w, req, site.emit, site.now)
    sid = site.w.next_id("shipment")
    site.emit(
        ev.OrderRouted(
            ts=site.now,
            order_id=order.order_id,
            provider="shipbob",
            reason="test",
            shipment_id=sid,
            items=[(1, sku, 1)],
        )
    )
    return order.order_id


@pytest.mark.parametrize("enabled", [True, False])
def test_a_bulk_cancel_asks_the_3pl_for_routed_orders_and_refuses_per_order(enabled):
    site = Site()
    cfg = site.w.settings
    site.w.settings = msgspec.structs.replace(cfg, threepl=msgspec.structs.replace(cfg.threepl, enabled=enabled))
    waiting, at_3pl, other = site.order("a"), routed(site, "r"), routed(site, "o", sku="DESK")
    sel, _, _ = bulk_rules.apply(site.w, bulk("cancel", filter={"sku": "LAMP"}, dry_run=True), site.emit, site.now)
    assert sel.ids == [waiting, at_3pl]  # the routed order of another SKU is not in the filter
    before = len(site.log)
    sel, skus, results = bulk_rules.apply(
        site.w, bulk("cancel", filter={"sku": "LAMP"}, expect_count=2), site.emit, site.now
    )
    assert skus == ["LAMP"] and site.w.orders[waiting].cancelled  # the site's order: cancelled here
    assert not site.w.orders[at_3pl].cancelled  # the routed one waits for the 3PL's answer
    kinds = [type(e).__name__ for e in site.log[before:]]
    if enabled:
        assert results == [{"order_id": at_3pl, "code": "", "threepl_change": results[0]["threepl_change"]}]
        assert results[0]["threepl_change"]["state"] == "pending"
        assert kinds.count("ThreeplChangeRequested") == 1
        # asked again while the first is on its way: refused for that order alone
        _, _, again = bulk_rules.apply(
            site.w, bulk("cancel", filter={"sku": "LAMP"}, expect_count=1), site.emit, site.now
        )
        assert [(r["order_id"], r["code"]) for r in again] == [(at_3pl, "threepl_change_pending")]
    else:
        assert [(r["order_id"], r["code"]) for r in results] == [(at_3pl, "routed_to_threepl")]
        assert "ThreeplChangeRequested" not in kinds
    assert not site.w.orders[other].cancelled
