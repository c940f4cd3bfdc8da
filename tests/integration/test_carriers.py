"""Remote carriers end to end: the real daemon buys labels from fake EasyPost / UPS servers
on loopback (documented shapes, auth checked) through the outbox, off the hot path; the
shipment waits in ``label_pending``; failures are classified (5xx retried, 4xx dead with
the carrier's message, 401 trips the breaker once); a purchase survives kill -9 exactly
once; tracking webhooks update the shipment and tell the customer."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import threading

from bo_support import line, stock, submit
from carrier_support import PDF, ZPL, CarrierServer
from notify_support import wait_for

KEY = "EZTK-test-key"
HOOK_SECRET = "tracking-hook-secret"
ADDRESS = {
    "name": "Ada Lovelace",
    "address1": "1 Main St",
    "city": "Springfield",
    "region": "IL",
    "postal_code": "62701",
    "country_code": "US",
}


def config(url: str, tmp_path, extra: str = "") -> str:
    return (
        "[notifications]\nbackoff_base_s = 0.05\nbackoff_max_s = 0.2\nmax_attempts = 3\n"
        "breaker_failures = 3\nbreaker_reset_s = 60\n"
        f'[notifications.routes]\n"*" = "file"\n[notifications.file]\ndir = "{tmp_path / "drop"}"\n'
        '[intake]\nlisten = "127.0.0.1:0"\n'
        '[fulfillment]\ncarrier = "easypost"\ncarrier_by_channel = { pos = "local" }\n'
        + extra
        + "[carriers.easypost]\n"
        f'base_url = "{url}"\nkey_env = "BO_TEST_EASYPOST_KEY"\nwebhook_secret_env = "BO_TEST_EASYPOST_HOOK"\n'
        '[carriers.easypost.from_address]\ncompany = "Warehouse"\nstreet1 = "9 Dock Rd"\ncity = "Chicago"\n'
        'state = "IL"\nzip = "60601"\n'
    )


def order(c, n: int, channel: str = "web", **fields) -> str:
    sku = f"SKU-{n}"
    stock(c, sku, 5)
    out = submit(
        c, f"ext-{n}", line(sku, 1), channel=channel, email=f"c{n}@example.com", shipping_address=ADDRESS, **fields
    )
    return out["order_id"]


def shipment_of(c, order_id: str) -> dict:
    (sh,) = c.call("order.get", order_id=order_id)["shipments"]
    return sh


def pick(c, order_id: str) -> dict:
    return c.call("pick.confirm", shipment_id=shipment_of(c, order_id)["shipment_id"])


def carrier_notices(c, status: str | None = None) -> list[dict]:
    found = c.call("notifications.list", limit=1000, **({"status": status} if status else {}))["notifications"]
    return [n for n in found if n["kind"] in ("label", "label_void")]


def test_rate_shopping_buys_the_fastest_for_rush_and_the_cheapest_otherwise(sim, tmp_path, monkeypatch):
    monkeypatch.setenv("BO_TEST_EASYPOST_KEY", KEY)
    with CarrierServer("easypost", KEY) as ep:
        d = sim(config(ep.url, tmp_path))
        with d.client() as c:
            rush, plain = order(c, 1, rush=True), order(c, 2)
            picked = pick(c, rush)
            assert picked["status"] == "label_pending" and picked["tracking_number"] is None
            pick(c, plain)
            wait_for(lambda: shipment_of(c, rush)["status"] == "shipped", what="the rush label bought")
            wait_for(lambda: shipment_of(c, plain)["status"] == "shipped", what="the standard label bought")
            fast, cheap = shipment_of(c, rush), shipment_of(c, plain)
            assert fast["carrier"] == "easypost" and fast["service"] == "UPS NextDayAir"
            assert cheap["service"] == "USPS Media"  # cheapest of all: no delivery bound configured
            assert fast["tracking_number"].startswith("EZ")
            label = c.call("label.get", shipment_id=fast["shipment_id"], format="zpl")
            assert label["label"] == ZPL and label["tracking"] == fast["tracking_number"]
            pdf = c.call("label.get", shipment_id=fast["shipment_id"], format="pdf")
            assert base64.b64decode(pdf["label"]) == PDF
            assert c.call("order.get", order_id=rush)["status"] == "shipped"
        assert ep.fake.buys == {fast["shipment_id"]: 1, cheap["shipment_id"]: 1}


def test_standard_orders_take_the_cheapest_rate_within_the_delivery_bound(sim, tmp_path, monkeypatch):
    monkeypatch.setenv("BO_TEST_EASYPOST_KEY", KEY)
    with CarrierServer("easypost", KEY) as ep:
        d = sim(config(ep.url, tmp_path, "standard_max_days = 3\n"))
        with d.client() as c:
            oid = order(c, 1)
            pick(c, oid)
            wait_for(lambda: shipment_of(c, oid)["status"] == "shipped", what="the label bought")
            assert shipment_of(c, oid)["service"] == "USPS Priority"


def test_5xx_is_retried_4xx_is_dead_with_the_carriers_message_and_picking_goes_on(sim, tmp_path, monkeypatch):
    monkeypatch.setenv("BO_TEST_EASYPOST_KEY", KEY)
    with CarrierServer("easypost", KEY) as ep:
        ep.fake.fail = [("/v2/shipments", 500, "upstream timeout")]
        d = sim(config(ep.url, tmp_path))
        with d.client() as c:
            first = order(c, 1)
            pick(c, first)
            wait_for(lambda: shipment_of(c, first)["status"] == "shipped", what="bought after a 500")
            (n1,) = carrier_notices(c)
            assert n1["status"] == "sent" and n1["attempts"] == 2

            ep.fake.fail = [("/buy", 422, "Unable to verify address: street not found")]
            second = order(c, 2)
            pick(c, second)
            wait_for(lambda: carrier_notices(c, "dead"), what="the label notice dead")
            (dead,) = carrier_notices(c, "dead")
            assert dead["attempts"] == 1  # a 4xx is not retried
            assert "HTTP 422: Unable to verify address: street not found" in dead["last_error"]
            assert shipment_of(c, second)["status"] == "label_pending"
            assert c.call("order.get", order_id=second)["status"] == "picking"
            # the other shipments are not held up: a local order picks and ships at once
            local = order(c, 3, channel="pos")
            assert pick(c, local)["status"] == "shipped"
            assert c.call("health")["notifier"]["breakers"]["carrier"] == "closed"
            assert ep.fake.count("POST", "/buy") == 2
            # fixed on the carrier's side: the operator retries the dead label
            c.call("notifications.retry", notice_id=dead["notice_id"])
            wait_for(lambda: shipment_of(c, second)["status"] == "shipped", what="bought on retry")
            sid = shipment_of(c, second)["shipment_id"]
        assert ep.fake.buys[sid] == 1


def test_a_refused_api_key_opens_the_breaker_and_is_reported_once(sim, tmp_path, monkeypatch):
    monkeypatch.setenv("BO_TEST_EASYPOST_KEY", "expired-key")
    with CarrierServer("easypost", KEY) as ep:
        d = sim(config(ep.url, tmp_path))
        with d.client() as c:
            ids = [order(c, n) for n in range(1, 4)]
            for oid in ids:
                pick(c, oid)
            wait_for(lambda: c.call("health")["notifier"]["breakers"]["carrier"] == "open", what="breaker open")
            health = c.call("health")["notifier"]
            assert "carrier" in health["credential_errors"]
            # one request reached the carrier; the other labels wait behind the breaker, not dead
            assert ep.fake.count("POST", "/v2/shipments") == 1
            assert {shipment_of(c, oid)["status"] for oid in ids} == {"label_pending"}
            assert carrier_notices(c, "dead") == []
            # the picking of other shipments goes on
            assert pick(c, order(c, 9, channel="pos"))["status"] == "shipped"
        assert d.log.read_text().count("channel_credential_rejected") == 1


def shipped_across_kill9(d, fake) -> tuple[str, str]:
    """Pick an order; kill -9 the daemon while the carrier holds the answer to its purchase
    (``fake.hold_buy`` set before the start), restart, wait until it shipped: (order id,
    shipment id)."""
    with d.client() as c:
        oid = order(c, 1)
        sid = pick(c, oid)["shipment_id"]
        assert fake.buy_started.wait(20)
    d.kill9()
    fake.hold_buy.set()
    d.start()
    with d.client() as c:
        wait_for(lambda: shipment_of(c, oid)["status"] == "shipped", what="shipped after the restart")
    return oid, sid


def test_a_label_is_bought_exactly_once_across_kill_9(sim, tmp_path, monkeypatch):
    """The daemon is killed while the carrier holds the answer to the purchase: after the
    restart the same carrier shipment is read back (bought) and shipped, never bought twice."""
    monkeypatch.setenv("BO_TEST_EASYPOST_KEY", KEY)
    with CarrierServer("easypost", KEY) as ep:
        ep.fake.hold_buy = threading.Event()
        d = sim(config(ep.url, tmp_path))
        oid, sid = shipped_across_kill9(d, ep.fake)
        with d.client() as c:
            assert shipment_of(c, oid)["tracking_number"] == ep.fake.shipments["shp_1"]["tracking_code"]
        assert ep.fake.buys == {sid: 1}
        assert len(ep.fake.shipments) == 1  # rated once: the retry read shp_1 back, bought


def test_a_label_bought_for_an_order_cancelled_meanwhile_is_voided(sim, tmp_path, monkeypatch):
    monkeypatch.setenv("BO_TEST_EASYPOST_KEY", KEY)
    with CarrierServer("easypost", KEY) as ep:
        ep.fake.hold_buy = threading.Event()
        d = sim(config(ep.url, tmp_path))
        with d.client() as c:
            oid = order(c, 1)
            pick(c, oid)
            assert ep.fake.buy_started.wait(20)
            c.call("order.cancel", order_id=oid, reason="customer changed their mind")
            assert shipment_of(c, oid)["status"] == "cancelled"
            ep.fake.hold_buy.set()
            wait_for(lambda: ep.fake.refunds == ["shp_1"], what="the label voided")
            wait_for(
                lambda: {n["kind"]: n["status"] for n in carrier_notices(c)}.get("label_void") == "sent", what="void"
            )
            assert shipment_of(c, oid)["status"] == "cancelled"
            assert c.call("order.get", order_id=oid)["status"] == "cancelled"


def _hook(port: int, body: bytes, signature: str) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/carriers/easypost/tracking", body, {"X-Hmac-Signature": signature})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"{}")
    finally:
        conn.close()


def _tracker(tracking: str, status: str, detail: str = "") -> bytes:
    return json.dumps(
        {
            "object": "Event",
            "description": "tracker.updated",
            "result": {"object": "Tracker", "tracking_code": tracking, "status": status, "status_detail": detail},
        }
    ).encode()


def _sign(body: bytes, secret: str = HOOK_SECRET) -> str:
    return "hmac-sha256-hex=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_tracking_webhooks_update_the_shipment_and_tell_the_customer(sim, tmp_path, monkeypatch):
    monkeypatch.setenv("BO_TEST_EASYPOST_KEY", KEY)
    monkeypatch.setenv("BO_TEST_EASYPOST_HOOK", HOOK_SECRET)
    with CarrierServer("easypost", KEY) as ep:
        d = sim(config(ep.url, tmp_path))
        with d.client() as c:
            oid = order(c, 1)
            pick(c, oid)
            wait_for(lambda: shipment_of(c, oid)["status"] == "shipped", what="the label bought")
            tracking = shipment_of(c, oid)["tracking_number"]
            port = c.call("health")["intake"]["http_port"]

            body = _tracker(tracking, "in_transit", "arrived_at_facility")
            assert _hook(port, body, _sign(body))[0] == 200
            assert shipment_of(c, oid)["tracking_status"] == "in_transit"

            body = _tracker(tracking, "delivered")
            assert _hook(port, body, _sign(body)) == (
                200,
                {"outcome": "updated", "shipments": [{"shipment_id": "S0000001", "tracking_status": "delivered"}]},
            )
            assert shipment_of(c, oid)["tracking_status"] == "delivered"
            kinds = [n["kind"] for n in c.call("notifications.list", order_id=oid)["notifications"]]
            assert kinds == ["label", "shipped", "delivered"]
            assert _hook(port, body, _sign(body))[1]["outcome"] == "ignored"  # a resend changes nothing

            # a forged signature and an unknown parcel: counted, dropped, nothing journaled
            everything_sent = lambda: {n["status"] for n in c.call("notifications.list")["notifications"]} == {"sent"}  # noqa: E731
            wait_for(everything_sent, what="every notice sent")
            before = c.call("audit.query", order_id=oid)["records"]
            forged = _tracker(tracking, "return_to_sender")
            assert _hook(port, forged, _sign(forged, "not-the-secret"))[0] == 401
            stranger = _tracker("EZ-NOT-OURS", "delivered")
            status, reply = _hook(port, stranger, _sign(stranger))
            assert (status, reply["error"]) == (404, "unknown_shipment")
            # signed, yet not what a tracker event is: refused or ignored, never a crash
            for junk, expected in [
                (b"\xff not json", 400),
                (b'{"description": "tracker.updated", "result": []}', 200),
                (b'{"description": "tracker.updated", "result": {"tracking_code": 7, "status": "delivered"}}', 200),
                (b"[1, 2]", 200),
            ]:
                assert _hook(port, junk, _sign(junk))[0] == expected, junk
            assert c.call("audit.query", order_id=oid)["records"] == before
            counts = c.call("health")["intake"]["carrier_webhooks"]
            assert counts["bad_signature"] == 1 and counts["unknown_shipment"] == 1 and counts["accepted"] == 2
        d.restart()
        with d.client() as c:  # the tracking status is journaled: it survives a restart
            assert shipment_of(c, oid)["tracking_status"] == "delivered"


def ups_config(url: str, tmp_path) -> str:
    return (
        "[notifications]\nbackoff_base_s = 0.05\nbackoff_max_s = 0.2\nmax_attempts = 3\n"
        '[fulfillment]\ncarrier = "ups"\n[carriers.ups]\n'
        f'base_url = "{url}"\nkey_env = "BO_TEST_UPS_ID"\nsecret_env = "BO_TEST_UPS_SECRET"\naccount_number = "A1B2C3"\n'
        '[carriers.ups.from_address]\ncompany = "Warehouse"\nstreet1 = "9 Dock Rd"\ncity = "Chicago"\n'
        'state = "IL"\nzip = "60601"\n'
    )


def test_ups_oauth_rating_and_shipping_buy_the_fastest_service_for_a_rush_order(sim, tmp_path, monkeypatch):
    monkeypatch.setenv("BO_TEST_UPS_ID", "client-id")
    monkeypatch.setenv("BO_TEST_UPS_SECRET", "client-secret")
    with CarrierServer("ups", "client-id:client-secret") as ups:
        d = sim(ups_config(ups.url, tmp_path))
        with d.client() as c:
            rush, plain = order(c, 1, rush=True), order(c, 2)
            pick(c, rush)
            pick(c, plain)
            wait_for(lambda: shipment_of(c, rush)["status"] == "shipped", what="the rush label bought")
            wait_for(lambda: shipment_of(c, plain)["status"] == "shipped", what="the standard label bought")
            assert shipment_of(c, rush)["service"] == "UPS Next Day Air"
            assert shipment_of(c, plain)["service"] == "UPS Ground"
            fast = shipment_of(c, rush)
            assert fast["tracking_number"].startswith("1Z")
            assert c.call("label.get", shipment_id=fast["shipment_id"])["label"] == ZPL
            pdf = c.call("label.get", shipment_id=fast["shipment_id"], format="pdf")["label"]
            assert base64.b64decode(pdf).startswith(b"%PDF")  # UPS sent ZPL only: drawn locally
        assert ups.fake.count("POST", "/security/v1/oauth/token") == 1  # the token is kept
        assert ups.fake.buys == {"S0000001": 1, "S0000002": 1}


def test_ups_refusing_the_client_secret_is_a_credential_failure(sim, tmp_path, monkeypatch):
    monkeypatch.setenv("BO_TEST_UPS_ID", "client-id")
    monkeypatch.setenv("BO_TEST_UPS_SECRET", "revoked")
    with CarrierServer("ups", "client-id:client-secret") as ups:
        d = sim(ups_config(ups.url, tmp_path))
        with d.client() as c:
            oid = order(c, 1)
            pick(c, oid)
            wait_for(lambda: c.call("health")["notifier"]["breakers"]["carrier"] == "open", what="breaker open")
            (n,) = carrier_notices(c)
            assert n["status"] == "pending" and "HTTP 401: ClientId is Invalid" in n["last_error"]
            assert shipment_of(c, oid)["status"] == "label_pending"
        assert ups.fake.buys == {}


def cancelled_after_a_cut_purchase(d, fake, secret_file, secret: str) -> tuple[str, str]:
    """Pick an order; kill -9 the daemon while the carrier holds the answer to the purchase
    it made (``fake.hold_buy`` set before); restart with the secret refused, so the breaker
    holds the retry; cancel the order; fix the secret and probe the breaker: (order id,
    shipment id), the label's retry on its way."""
    with d.client() as c:
        oid = order(c, 1)
        sid = pick(c, oid)["shipment_id"]
        assert fake.buy_started.wait(20)  # sold at the carrier; the answer is held
    d.kill9()
    fake.hold_buy.set()
    secret_file.write_text("revoked\n")
    d.start()
    with d.client() as c:
        wait_for(lambda: c.call("health")["notifier"]["breakers"]["carrier"] == "open", what="breaker open")
        c.call("order.cancel", order_id=oid, reason="customer changed their mind")
        assert shipment_of(c, oid)["status"] == "cancelled"
        secret_file.write_text(secret + "\n")
        c.call("notifications.retry", all_dead=True)  # nothing dead: it probes the breaker at once
    return oid, sid


def test_a_label_bought_before_a_crash_and_cancelled_after_it_is_voided_not_forgotten(sim, tmp_path):
    """The purchase goes through at the carrier but the daemon dies before recording it;
    after the restart the key is refused (the breaker holds the retry) and the order is
    cancelled. Once the key is fixed, the retry finds the carrier shipment bought and
    voids it instead of leaving a paid label behind."""
    key_file = tmp_path / "easypost.key"
    key_file.write_text(KEY + "\n")
    with CarrierServer("easypost", KEY) as ep:
        ep.fake.hold_buy = threading.Event()
        d = sim(config(ep.url, tmp_path).replace('key_env = "BO_TEST_EASYPOST_KEY"', f'key_file = "{key_file}"'))
        oid, _ = cancelled_after_a_cut_purchase(d, ep.fake, key_file, KEY)
        with d.client() as c:
            wait_for(lambda: ep.fake.refunds == ["shp_1"], what="the label bought before the crash voided")
            assert shipment_of(c, oid)["status"] == "cancelled"
            kinds = {n["kind"]: n["status"] for n in carrier_notices(c)}
            wait_for(lambda: {n["status"] for n in carrier_notices(c)} == {"sent"}, what="label and void sent")
            assert set(kinds) == {"label", "label_void"}
        assert ep.fake.buys == {"S0000001": 1}


def test_a_ups_label_sold_before_a_crash_is_recovered_by_reference_not_bought_again(sim, tmp_path, monkeypatch):
    """UPS keeps no shipment before the purchase: the daemon is killed while UPS holds the
    answer to a sale; the retry asks Label Recovery by our shipment id and ships with that
    label, so UPS sells one label, not two."""
    monkeypatch.setenv("BO_TEST_UPS_ID", "client-id")
    monkeypatch.setenv("BO_TEST_UPS_SECRET", "client-secret")
    with CarrierServer("ups", "client-id:client-secret") as ups:
        ups.fake.hold_buy = threading.Event()
        d = sim(ups_config(ups.url, tmp_path))
        oid, sid = shipped_across_kill9(d, ups.fake)
        with d.client() as c:
            assert shipment_of(c, oid)["tracking_number"] == ups.fake.labels[sid]
            assert c.call("label.get", shipment_id=sid)["label"] == ZPL
        assert ups.fake.buys == {sid: 1}
        assert ups.fake.count("POST", "/api/labels/v1/recovery") == 1
        # a first attempt asks no recovery: a second order is bought at once
        with d.client() as c:
            other = order(c, 2)
            pick(c, other)
            wait_for(lambda: shipment_of(c, other)["status"] == "shipped", what="the second label")
        assert ups.fake.count("POST", "/api/labels/v1/recovery") == 1


def _ups_event(port: int, credential: str, tracking: str, kind: str, description: str) -> tuple[int, dict]:
    body = json.dumps(
        {
            "trackingNumber": f" {tracking}",  # UPS's documented example pads it
            "localActivityDate": "20260105",
            "localActivityTime": "091230",
            "activityLocation": {"city": "Hickory", "stateProvince": "NC", "postalCode": "", "country": "US"},
            "activityStatus": {"type": kind, "code": "XX", "description": description, "descriptionCode": "005"},
            "scheduledDeliveryDate": "20260106",
            "actualDeliveryDate": "",
        }
    ).encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"credential": credential, "User-Agent": "UPSPubSubTrackingService"}
        conn.request("POST", "/carriers/ups/tracking", body, headers)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"{}")
    finally:
        conn.close()


def test_ups_track_alert_subscribes_each_label_and_its_events_update_the_shipment(sim, tmp_path, monkeypatch):
    monkeypatch.setenv("BO_TEST_UPS_ID", "client-id")
    monkeypatch.setenv("BO_TEST_UPS_SECRET", "client-secret")
    monkeypatch.setenv("BO_TEST_UPS_HOOK", "ups-credential")
    with CarrierServer("ups", "client-id:client-secret") as ups:
        extra = 'webhook_url = "https://site.example/carriers/ups/tracking"\nwebhook_secret_env = "BO_TEST_UPS_HOOK"\n'
        cfg = ups_config(ups.url, tmp_path).replace(
            'account_number = "A1B2C3"\n', 'account_number = "A1B2C3"\n' + extra
        )
        d = sim(cfg + '[notifications.routes]\n"*" = "file"\n' + f'[notifications.file]\ndir = "{tmp_path / "drop"}"\n'
                + '[intake]\nlisten = "127.0.0.1:0"\n')  # fmt: skip
        with d.client() as c:
            oid = order(c, 1)
            pick(c, oid)
            wait_for(lambda: shipment_of(c, oid)["status"] == "shipped", what="the label bought")
            tracking = shipment_of(c, oid)["tracking_number"]
            (sub,) = ups.fake.subscriptions
            assert sub["trackingNumberList"] == [tracking]
            assert sub["destination"] == {
                "url": "https://site.example/carriers/ups/tracking",
                "credentialType": "Bearer",
                "credential": "ups-credential",
            }
            port = c.call("health")["intake"]["http_port"]
            assert (
                _ups_event(port, "ups-credential", tracking, "M", "Shipment Ready for UPS")[1]["outcome"] == "ignored"
            )
            assert _ups_event(port, "ups-credential", tracking, "I", "On the Way")[0] == 200
            assert shipment_of(c, oid)["tracking_status"] == "in_transit"
            status, reply = _ups_event(port, "ups-credential", tracking, "D", "Delivered")
            assert (status, reply["outcome"]) == (200, "updated")
            assert shipment_of(c, oid)["tracking_status"] == "delivered"
            kinds = [n["kind"] for n in c.call("notifications.list", order_id=oid)["notifications"]]
            assert kinds == ["label", "shipped", "delivered"]
            sent = lambda: {n["status"] for n in c.call("notifications.list")["notifications"]} == {"sent"}  # noqa: E731
            wait_for(sent, what="every notice sent")
            before = c.call("audit.query", order_id=oid)["records"]
            assert _ups_event(port, "wrong", tracking, "X", "Exception")[0] == 401
            assert _ups_event(port, "ups-credential", "1Z999AA10000009999", "D", "Delivered")[0] == 404
            assert c.call("audit.query", order_id=oid)["records"] == before
            counts = c.call("health")["intake"]["carrier_webhooks"]
            assert counts["bad_signature"] == 1 and counts["unknown_shipment"] == 1 and counts["accepted"] == 2


def test_a_ups_label_sold_before_a_crash_for_an_order_cancelled_after_it_is_recovered_and_voided_once(sim, tmp_path):
    """UPS sells the label but the daemon is killed before it hears so; after the restart
    the client secret is refused (the breaker holds the retry) and the order is cancelled.
    Once the secret is fixed, the retry finds the label by Label Recovery (our shipment id)
    and voids it through the void API, once: no paid label is left behind, none is bought
    again."""
    id_file, secret_file = tmp_path / "ups.id", tmp_path / "ups.secret"
    id_file.write_text("client-id\n")
    secret_file.write_text("client-secret\n")
    with CarrierServer("ups", "client-id:client-secret") as ups:
        ups.fake.hold_buy = threading.Event()
        cfg = ups_config(ups.url, tmp_path).replace(
            'key_env = "BO_TEST_UPS_ID"\nsecret_env = "BO_TEST_UPS_SECRET"',
            f'key_file = "{id_file}"\nsecret_file = "{secret_file}"',
        )
        d = sim(cfg)
        oid, sid = cancelled_after_a_cut_purchase(d, ups.fake, secret_file, "client-secret")
        with d.client() as c:
            sold = ups.fake.labels[sid]
            wait_for(lambda: ups.fake.refunds == [sold], what="the label sold before the crash voided")
            wait_for(lambda: {n["status"] for n in carrier_notices(c)} == {"sent"}, what="label and void sent")
            kinds = sorted(n["kind"] for n in carrier_notices(c))
            assert kinds == ["label", "label_void"]
            assert shipment_of(c, oid)["status"] == "cancelled"
            assert c.call("order.get", order_id=oid)["status"] == "cancelled"
        # the void went out once, and is not sent again by a restart
        d.kill9()
        d.start()
        with d.client() as c:
            c.call("health")
            assert {n["status"] for n in carrier_notices(c)} == {"sent"}
        assert ups.fake.refunds == [sold]
        assert ups.fake.buys == {sid: 1}  # recovered, never bought again
        assert ups.fake.count("POST", "/api/labels/v1/recovery") == 1
        assert ups.fake.count("DELETE", "/void/cancel/") == 1
