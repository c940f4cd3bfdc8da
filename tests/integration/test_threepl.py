"""The 3PL for spikes, end to end under the stepped clock: a real daemon, a fake ShipBob on
loopback (its documented shapes, auth checked, creates counted per reference id) and its
signed shipment webhooks on the daemon's HTTP listener. A burst of orders pushes the site's
pick backlog over the on-threshold and new orders the 3PL can fill are routed (no site
stock taken); picking brings the backlog down and routing stops, without flapping in
between; every routed order is created at the 3PL exactly once across kill -9; a 4xx is a
dead notice with ShipBob's message, a 5xx is retried; a webhook ships the order once, a
bad signature, a stale timestamp or an unknown order is counted and dropped."""

from __future__ import annotations

from contextlib import contextmanager

from bo_support import line, read_db, stock, submit
from notify_support import wait_for
from threepl_fakes import FakeShipBob, shipped_webhook

SECRET = "whook-secret"

ADDRESS = {
    "name": "Ada Park",
    "address1": "1 Main St",
    "city": "Springfield",
    "region": "IL",
    "postal_code": "62701",
    "country_code": "US",
}


def config(url: str) -> str:
    # min rate 10 units/h: 20 units awaiting pick = 2 h (on), 10 units = 1 h (off)
    return (
        '[daemon]\nclock = "stepped"\nclock_start = "2026-01-05T09:00:00Z"\n'
        '[intake]\nlisten = "127.0.0.1:0"\n'
        "[notifications]\nbackoff_base_s = 0.05\nbackoff_max_s = 0.2\nmax_attempts = 4\nbreaker_reset_s = 30\n"
        f'[threepl]\nenabled = true\nprovider = "shipbob"\nbase_url = "{url}"\n'
        'credential_env = "BO_TEST_SHIPBOB"\nwebhook_secret_env = "BO_TEST_SHIPBOB_HOOK"\nchannel_id = "77"\n'
        "backlog_on_hours = 2.0\nbacklog_off_hours = 1.0\nmin_pick_rate_per_hour = 10.0\n"
        "pick_rate_window_s = 3600.0\ninventory_poll_s = 600.0\ntimeout_s = 1.0\n"
    )


def order(c, n: int, qty: int = 1) -> dict:
    return submit(c, f"FS-{n}", line("SKU-A", qty), shipping_address=ADDRESS, email="ada@example.com")


def routed(c) -> list[str]:
    found = c.call("orders.list", limit=1000)["orders"]
    return [o["order_id"] for o in found if c.call("order.get", order_id=o["order_id"])["routed_to"]]


def threepl_notices(c, **filters) -> list[dict]:
    got = c.call("notifications.list", limit=1000, **filters)["notifications"]
    return [n for n in got if n["kind"] == "threepl_order"]


def start(make_daemon, monkeypatch, stock_3pl: dict[str, int]):
    monkeypatch.setenv("BO_TEST_SHIPBOB", "pat_test")
    monkeypatch.setenv("BO_TEST_SHIPBOB_HOOK", SECRET)
    fake = FakeShipBob("pat_test", "77", stock_3pl)
    fake.__enter__()
    d = make_daemon(config(fake.url))
    return fake, d


@contextmanager
def running(make_daemon, monkeypatch, stock_3pl: dict[str, int]):
    """``start`` as a context: the fake ShipBob is shut down whatever the test did."""
    fake, d = start(make_daemon, monkeypatch, stock_3pl)
    try:
        yield fake, d
    finally:
        fake.__exit__()


def kill9_while_stalled(fake, d) -> None:
    """The fake's stalled request took effect; kill -9 the daemon before it hears the
    answer, let the request finish, start the daemon again."""
    assert fake.stalled.wait(20)
    d.kill9()
    fake.stall = False
    fake.release.set()
    d.start()


def test_a_burst_routes_to_the_3pl_and_picking_stops_it_without_flapping(make_daemon, monkeypatch):
    fake, d = start(make_daemon, monkeypatch, {"SKU-A": 6})
    try:
        with d.client() as c:
            stock(c, "SKU-A", 100)
            c.call("clock.advance", seconds=1)  # the first inventory poll
            status = c.call("threepl.status")
            assert status["state"] == "off" and status["inventory"]["units"] == 6
            site = [order(c, n) for n in range(20)]  # 20 units awaiting pick: 2 h at 10/h
            assert all(o["status"] == "picking" for o in site)
            assert c.call("threepl.status")["backlog_hours"] == 2.0
            first = order(c, 20)  # arrives with the backlog at the threshold: routed
            got = c.call("order.get", order_id=first["order_id"])
            assert got["routed_to"] == "shipbob" and got["status"] == "picking"
            assert got["shipments"][0]["status"] == "at_threepl"
            sku = c.call("sku.get", sku="SKU-A")
            assert sku["allocated"] == 20 and sku["on_hand"] == 100  # the routed unit is not the site's
            more = [order(c, n) for n in range(21, 25)]  # the 3PL holds 6: 5 routed so far
            assert all(c.call("order.get", order_id=o["order_id"])["routed_to"] == "shipbob" for o in more)
            big = order(c, 25, qty=2)  # 2 > the 1 left at the 3PL: the site takes it
            assert c.call("order.get", order_id=big["order_id"])["routed_to"] is None
            assert c.call("threepl.status")["routed_open"] == 5
            # picking 6 site shipments: 16 units wait (20 + the big order's 2 - 6), 6 picked in
            # the hour (under the floor of 10/h) -> 1.6 h: between the thresholds, routing stays on
            shipments = [o["shipments"][0] for o in site]
            for sid in shipments[:6]:
                c.call("pick.confirm", shipment_id=sid)
            mid = order(c, 26)
            assert c.call("order.get", order_id=mid["order_id"])["routed_to"] == "shipbob"
            for sid in shipments[6:12]:  # 10 wait, 12 picked in the hour -> 0.83 h
                c.call("pick.confirm", shipment_id=sid)
            status = c.call("threepl.status")
            assert status["backlog_hours"] <= 1.0, status
            after = order(c, 27)
            assert c.call("order.get", order_id=after["order_id"])["routed_to"] is None
            assert c.call("threepl.status")["state"] == "off"
            switches = read_db(d.db, "SELECT body FROM events WHERE type = 'threepl_routing' ORDER BY seq")
            assert [(b'"on":true' in bytes(b)) for (b,) in switches] == [True, False]
            # the routed orders go out on the next advance, once each
            c.call("clock.advance", seconds=1)
            wait_for(lambda: len(threepl_notices(c, status="sent")) == 6, what="six creates delivered")
        assert sorted(fake.creates.values()) == [1] * 6
        body = fake.effects[0]
        assert body["recipient"]["address"]["address1"] == "1 Main St" and body["shipping_method"] == "Standard"
        assert body["products"] == [{"reference_id": "SKU-A", "name": "SKU-A", "quantity": 1}]
    finally:
        fake.__exit__()


def test_routed_orders_are_created_once_across_kill9_and_ship_by_webhook(make_daemon, monkeypatch):
    fake, d = start(make_daemon, monkeypatch, {"SKU-B": 10})
    try:
        with d.client() as c:
            stock(c, "SKU-B", 100)
            c.call("clock.advance", seconds=1)
            for n in range(20):
                submit(c, f"S-{n}", line("SKU-B", 1), shipping_address=ADDRESS)
            ids = [submit(c, f"R-{n}", line("SKU-B", 1), shipping_address=ADDRESS)["order_id"] for n in range(3)]
            assert all(c.call("order.get", order_id=i)["routed_to"] == "shipbob" for i in ids)
            fake.fail = [500]  # the first create fails: retried
            fake.stall = True  # the next one takes effect, then the daemon dies before the answer
            c.call("clock.advance", seconds=1)
        kill9_while_stalled(fake, d)
        with d.client() as c:
            c.call("clock.advance", seconds=5)
            wait_for(lambda: len(threepl_notices(c, status="sent")) == 3, what="three creates delivered")
            assert all(c.call("order.get", order_id=i)["routed_to"] == "shipbob" for i in ids)
            port = c.call("health")["intake"]["http_port"]
            assert shipped_webhook(port, SECRET, ids[0], "9400100000000000000001") == (
                200,
                {"shipments": [{"order_id": ids[0], "outcome": "shipped"}]},
            )
            again = shipped_webhook(port, SECRET, ids[0], "9400100000000000000001")
            assert again[1]["shipments"][0]["outcome"] == "duplicate"
            assert shipped_webhook(port, SECRET, ids[1], "X", bad_signature=True)[0] == 401
            assert shipped_webhook(port, SECRET, ids[1], "X", age_s=301)[0] == 401  # a replay, well signed
            assert shipped_webhook(port, SECRET, "O9999999", "Y")[0] == 404
            got = c.call("order.get", order_id=ids[0])
            assert got["status"] == "shipped"
            assert got["shipments"][0]["tracking_number"] == "9400100000000000000001"
            assert got["shipments"][0]["carrier"] == "USPS"
            assert c.call("order.get", order_id=ids[1])["status"] == "picking"  # the bad signature changed nothing
            status = c.call("threepl.status")
            assert status["webhooks"] == {
                "shipped": 1,
                "duplicate": 1,
                "bad_signature": 2,
                "unknown_order": 1,
                "malformed": 0,
            }
            assert status["routed_open"] == 2 and status["routed_shipped"] == 1
            assert c.call("stats")["counts"]["orders_shipped"] >= 1
            sku = c.call("sku.get", sku="SKU-B")
            assert sku["on_hand"] == 100  # the 3PL's shipment is not the site's
        assert sorted(fake.creates.values()) == [1, 1, 1]  # exactly once per reference id
        shipped_events = read_db(d.db, "SELECT COUNT(*) FROM events WHERE type = 'shipment_shipped'")
        assert shipped_events == [(1,)]
    finally:
        fake.__exit__()


def test_a_4xx_is_a_dead_notice_with_the_3pls_message(make_daemon, monkeypatch):
    fake, d = start(make_daemon, monkeypatch, {"SKU-C": 5})
    try:
        with d.client() as c:
            stock(c, "SKU-C", 100)
            c.call("clock.advance", seconds=1)
            for n in range(20):
                submit(c, f"S-{n}", line("SKU-C", 1), shipping_address=ADDRESS)
            oid = submit(c, "R-1", line("SKU-C", 1), shipping_address=ADDRESS)["order_id"]
            fake.fail = [422]
            c.call("clock.advance", seconds=1)
            wait_for(lambda: threepl_notices(c, status="dead"), what="the create dead")
            (n,) = threepl_notices(c)
            assert n["attempts"] == 1
            assert n["last_error"].startswith("Rejected: threepl/shipbob: HTTP 422: Internal error (on purpose)")
            # the order stays at the 3PL: the site does not pick it, and a cancellation goes
            # to the 3PL, which does not have it: retried until dead, the order unchanged
            sid = c.call("order.get", order_id=oid)["shipments"][0]["shipment_id"]
            reply = c.request("pick.confirm", shipment_id=sid)
            assert reply["ok"] is False and reply["error"]["code"] == "routed_to_threepl"
            assert c.call("order.cancel", order_id=oid)["threepl_change"]["state"] == "pending"

            def failed():
                c.call("clock.advance", seconds=1)
                return c.call("order.get", order_id=oid)["threepl_change"]["state"] == "failed"

            wait_for(failed, what="the cancellation dead")
            got = c.call("order.get", order_id=oid)
            assert got["status"] == "picking" and "is not at ShipBob (yet)" in got["threepl_change"]["message"]
        assert fake.creates == {}
    finally:
        fake.__exit__()


def test_shipstation_creates_by_order_key_and_ships_from_the_notified_resource(make_daemon, monkeypatch):
    """ShipStation: the inventory from GET /products, the order by createorder with our
    order id as orderKey, its SHIP_NOTIFY fetched from resource_url with our credential (only
    under base_url), the webhook's secret in the target URL."""
    from threepl_fakes import FakeShipStation, ship_notify

    monkeypatch.setenv("BO_TEST_SHIPBOB", "key1:secret1")  # the config's env names, ShipStation's value
    monkeypatch.setenv("BO_TEST_SHIPBOB_HOOK", SECRET)
    with FakeShipStation("key1", "secret1", {"SKU-D": 4}) as fake:
        d = make_daemon(config(fake.url).replace('provider = "shipbob"', 'provider = "shipstation"'))
        with d.client() as c:
            stock(c, "SKU-D", 100)
            c.call("clock.advance", seconds=1)
            assert c.call("threepl.status")["inventory"]["units"] == 4
            for n in range(20):
                submit(c, f"S-{n}", line("SKU-D", 1), shipping_address=ADDRESS)
            oid = submit(c, "R-1", line("SKU-D", 2), shipping_address=ADDRESS)["order_id"]
            assert c.call("order.get", order_id=oid)["routed_to"] == "shipstation"
            c.call("clock.advance", seconds=1)
            wait_for(lambda: threepl_notices(c, status="sent"), what="the order created")
            assert fake.creates == {oid: 1}
            created = fake.orders[oid]
            assert created["shipTo"]["street1"] == "1 Main St" and created["orderStatus"] == "awaiting_shipment"
            assert created["items"] == [{"lineItemKey": f"{oid}-1", "sku": "SKU-D", "quantity": 2}]
            port = c.call("health")["intake"]["http_port"]
            fake.ship("7", oid, "1Z999")
            assert ship_notify(port, "wrong", f"{fake.url}/shipments?batchId=7")[0] == 401
            assert ship_notify(port, SECRET, "http://198.51.100.1/shipments?batchId=7")[0] == 400  # not base_url
            assert ship_notify(port, SECRET, f"{fake.url}/shipments?batchId=7") == (
                200,
                {"shipments": [{"order_id": oid, "outcome": "shipped"}]},
            )
            got = c.call("order.get", order_id=oid)
            assert got["status"] == "shipped" and got["shipments"][0]["tracking_number"] == "1Z999"
            assert c.call("threepl.status")["webhooks"]["bad_signature"] == 1
        fetched = fake.calls("GET", "/shipments")
        assert len(fetched) == 1 and fetched[0]["headers"]["Authorization"] == fake.credential
