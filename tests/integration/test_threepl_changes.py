"""Cancelling and re-addressing an order routed to the 3PL, end to end under the stepped
clock: a real daemon, the fake ShipBob / ShipStation on loopback (their documented cancel
and update shapes, auth checked, effects counted per order). The change goes through the
outbox and the order changes only when the 3PL says it did; a 3PL that picked the order
already leaves it as it was with ``threepl_too_late``; a second change while one is on its
way is refused; a 4xx is a dead change with the 3PL's message; a change the daemon was
killed in the middle of is made at the 3PL exactly once."""

from __future__ import annotations

from bo_support import line, read_db, stock, submit
from notify_support import wait_for
from test_threepl import ADDRESS, SECRET, config, kill9_while_stalled, running
from threepl_fakes import shipped_webhook

NEW_ADDRESS = {**ADDRESS, "address1": "9 Elm St", "postal_code": "62702"}


def route_some(c, sku: str, n: int) -> list[str]:
    """Push the pick backlog over the threshold, then route ``n`` orders of ``sku`` and
    send them to the 3PL."""
    stock(c, sku, 100)
    c.call("clock.advance", seconds=1)  # the first inventory poll
    for k in range(20):
        submit(c, f"S-{sku}-{k}", line(sku, 1), shipping_address=ADDRESS)
    ids = [submit(c, f"R-{sku}-{k}", line(sku, 1), shipping_address=ADDRESS)["order_id"] for k in range(n)]
    assert all(c.call("order.get", order_id=i)["routed_to"] for i in ids)
    c.call("clock.advance", seconds=1)
    wait_for(lambda: all(created(c, i) for i in ids), what="the creates delivered")
    return ids


def created(c, oid: str) -> bool:
    got = c.call("notifications.list", limit=1000, status="sent")["notifications"]
    return any(n["kind"] == "threepl_order" and n["order_id"] == oid for n in got)


def change_state(c, oid: str, want: str) -> dict:
    """Advance engine time until the order's 3PL change is in state ``want``."""

    def reached():
        c.call("clock.advance", seconds=1)
        ch = c.call("order.get", order_id=oid)["threepl_change"]
        return ch if ch and ch["state"] == want else None

    return wait_for(reached, what=f"the change {want}")


def test_a_cancel_goes_to_the_3pl_and_the_order_is_cancelled_when_it_says_so(make_daemon, monkeypatch):
    with running(make_daemon, monkeypatch, {"SKU-A": 10}) as (fake, d):
        with d.client() as c:
            first, picked, moved = route_some(c, "SKU-A", 3)
            reply = c.call("order.cancel", order_id=first, reason="customer changed their mind")
            assert reply["status"] == "picking"  # nothing changes until the 3PL answers
            assert reply["threepl_change"]["change"] == "cancel" and reply["threepl_change"]["state"] == "pending"
            again = c.request("order.cancel", order_id=first)
            assert again["ok"] is False and again["error"]["code"] == "threepl_change_pending"
            readdress = c.request("order.address", order_id=first, shipping_address=NEW_ADDRESS)
            assert readdress["ok"] is False and readdress["error"]["code"] == "threepl_change_pending"
            ch = change_state(c, first, "applied")
            assert ch["code"] is None and ch["reason"] == "customer changed their mind"
            got = c.call("order.get", order_id=first)
            assert got["status"] == "cancelled" and got["shipments"][0]["status"] == "cancelled"
            assert c.call("threepl.status")["routed_open"] == 2

            # the 3PL picked this one already: its cancel answers per shipment, not cancelled
            fake.pick(f"{picked}")
            c.call("order.cancel", order_id=picked)
            ch = change_state(c, picked, "too_late")
            assert ch["code"] == "threepl_too_late" and "Shipment is already picked" in ch["message"]
            assert c.call("order.get", order_id=picked)["status"] == "picking"  # still at the 3PL
            port = c.call("health")["intake"]["http_port"]
            assert shipped_webhook(port, SECRET, picked, "9400111")[1]["shipments"][0]["outcome"] == "shipped"
            late = c.request("order.cancel", order_id=picked)
            assert late["ok"] is False and late["error"]["code"] == "already_shipped"

            # a new address goes to each of the order's shipments at ShipBob
            c.call("order.address", order_id=moved, shipping_address=NEW_ADDRESS, reason="customer moved")
            assert c.call("order.get", order_id=moved)["shipping_address"]["address1"] == "1 Main St"
            change_state(c, moved, "applied")
            got = c.call("order.get", order_id=moved)
            assert got["shipping_address"]["address1"] == "9 Elm St" and got["status"] == "picking"
            sent = c.call("notifications.list", limit=1000, status="sent")["notifications"]
            assert [n["kind"] for n in sent if n["order_id"] == moved] == ["threepl_order", "threepl_change"]
        assert fake.cancels == {first: 1} and fake.readdresses == {moved: 1}
        (update,) = [e for e in fake.effects if e.get("address") == moved]
        assert update["street_address1"] == "9 Elm St" and update["zip_code"] == "62702"
        assert update["country_code"] == "US" and update["recipient_name"] == "Ada Park"
        assert fake.orders[picked]["status"] == "Processing"  # the too-late cancel changed nothing there


def test_a_4xx_is_a_dead_change_with_the_3pls_message_and_a_new_change_may_follow(make_daemon, monkeypatch):
    with running(make_daemon, monkeypatch, {"SKU-B": 5}) as (fake, d):
        with d.client() as c:
            (oid,) = route_some(c, "SKU-B", 1)
            fake.fail = [422]
            c.call("order.cancel", order_id=oid)
            ch = change_state(c, oid, "failed")
            assert ch["code"] == "threepl_change_failed"
            assert "HTTP 422: Internal error (on purpose)" in ch["message"]
            assert c.call("order.get", order_id=oid)["status"] == "picking"
            c.call("order.cancel", order_id=oid, reason="second try")  # not pending: taken
            change_state(c, oid, "applied")
            assert c.call("order.get", order_id=oid)["status"] == "cancelled"
        assert fake.cancels == {oid: 1}


def test_a_cancel_is_made_at_the_3pl_exactly_once_across_kill9(make_daemon, monkeypatch):
    with running(make_daemon, monkeypatch, {"SKU-C": 5}) as (fake, d):
        with d.client() as c:
            (oid,) = route_some(c, "SKU-C", 1)
            c.call("order.cancel", order_id=oid, reason="fraud")
            fake.stall = True  # the cancel takes effect, then the daemon dies before the answer
            c.call("clock.advance", seconds=1)
        kill9_while_stalled(fake, d)
        with d.client() as c:
            ch = change_state(c, oid, "applied")
            assert "is cancelled" in ch["message"]  # the resend found it cancelled: not cancelled again
            got = c.call("order.get", order_id=oid)
            assert got["status"] == "cancelled" and got["cancel_reason"] == "fraud"
        assert fake.cancels == {oid: 1}
        assert len(fake.calls("POST", "/cancel")) == 1
        done = read_db(d.db, "SELECT COUNT(*) FROM events WHERE type = 'threepl_change_done'")
        cancelled = read_db(d.db, "SELECT COUNT(*) FROM events WHERE type = 'order_cancelled'")
        assert done == [(1,)] and cancelled == [(1,)]


def test_shipstation_cancels_and_readdresses_by_createorder_with_the_same_order_key(make_daemon, monkeypatch):
    from threepl_fakes import FakeShipStation

    monkeypatch.setenv("BO_TEST_SHIPBOB", "key1:secret1")
    monkeypatch.setenv("BO_TEST_SHIPBOB_HOOK", SECRET)
    with FakeShipStation("key1", "secret1", {"SKU-D": 4}) as fake:
        d = make_daemon(config(fake.url).replace('provider = "shipbob"', 'provider = "shipstation"'))
        with d.client() as c:
            moved, gone, shipped = route_some(c, "SKU-D", 3)
            c.call("order.address", order_id=moved, shipping_address=NEW_ADDRESS)
            change_state(c, moved, "applied")
            assert fake.orders[moved]["shipTo"]["street1"] == "9 Elm St"
            assert fake.orders[moved]["orderStatus"] == "awaiting_shipment"
            c.call("order.cancel", order_id=gone)
            change_state(c, gone, "applied")
            assert fake.orders[gone]["orderStatus"] == "cancelled"
            assert c.call("order.get", order_id=gone)["status"] == "cancelled"
            fake.ship("1", shipped, "1Z1")  # shipped there; its webhook has not come yet
            c.call("order.cancel", order_id=shipped)
            ch = change_state(c, shipped, "too_late")
            assert ch["code"] == "threepl_too_late" and "shipped" in ch["message"]
            assert c.call("order.get", order_id=shipped)["status"] == "picking"
        assert fake.creates == {moved: 2, gone: 2, shipped: 1}


def test_a_bulk_cancel_sends_each_routed_order_to_the_3pl_as_order_cancel_does(make_daemon, monkeypatch):
    with running(make_daemon, monkeypatch, {"SKU-E": 10}) as (fake, d):
        with d.client() as c:
            first, asked, last = route_some(c, "SKU-E", 3)
            # more than the 3PL holds: stays at the site, backordered
            waiting = submit(c, "W-1", line("SKU-E", 500), shipping_address=ADDRESS)["order_id"]
            assert not c.call("order.get", order_id=waiting)["routed_to"]
            c.call("order.cancel", order_id=asked, reason="asked alone first")  # its change is on its way
            bulk = {"action": "cancel", "filter": {"sku": "SKU-E"}, "reason": "discontinued"}
            dry = c.call("orders.bulk", dry_run=True, **bulk)
            assert dry["ids"] == [first, asked, last, waiting]  # the routed ones are selected too
            assert "results" not in dry
            got = c.call("orders.bulk", expect_count=4, expect_digest=dry["digest"], **bulk)
            assert got["ids"] == dry["ids"]
            by_order = {r["order_id"]: r for r in got["results"]}
            assert set(by_order) == {first, asked, last}  # the site's order is cancelled here and now
            assert by_order[asked]["code"] == "threepl_change_pending" and asked in by_order[asked]["message"]
            for oid in (first, last):
                assert by_order[oid]["code"] == "" and by_order[oid]["threepl_change"]["state"] == "pending"
                assert c.call("order.get", order_id=oid)["status"] == "picking"  # until the 3PL answers
            assert c.call("order.get", order_id=waiting)["status"] == "cancelled"
            for oid in (first, asked, last):
                assert change_state(c, oid, "applied")["change"] == "cancel"
                got_order = c.call("order.get", order_id=oid)
                assert got_order["status"] == "cancelled"
            assert c.call("order.get", order_id=first)["cancel_reason"] == "discontinued"
            assert c.call("order.get", order_id=asked)["cancel_reason"] == "asked alone first"
            assert c.call("threepl.status")["routed_open"] == 0
            # nothing is left to cancel: the set is empty, not the orders at the 3PL again
            assert c.call("orders.bulk", dry_run=True, **bulk)["count"] == 0
        assert fake.cancels == {first: 1, asked: 1, last: 1}
        sent = read_db(d.db, "SELECT COUNT(*) FROM events WHERE type = 'threepl_change'")
        assert sent == [(3,)]
