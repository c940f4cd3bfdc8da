"""How each channel says "not paid yet" and "cancelled": a held order is recorded but takes
no stock, a paid redelivery releases it (updated), a cancellation is an update."""

from __future__ import annotations

import json

from intake_support import doc, encode, generic_headers, http_port, ingest, post, raw, woo_headers


def woo(status: str, oid: int = 901) -> tuple[str, bytes, dict]:
    d = doc("woocommerce/order_created.json")
    d.update(status=status, id=oid)
    body = encode(d)
    return "woocommerce", body, woo_headers(body, "order.updated")


def amazon(status: str) -> tuple[str, bytes, dict]:
    d = doc("amazon_sp/order_unshipped.json")
    d["getOrder"]["payload"]["OrderStatus"] = status
    return "amazon_sp", encode(d), {}


def bigcommerce(status_id: int, status: str) -> tuple[str, bytes, dict]:
    d = doc("bigcommerce/order_created.json")
    d["order"].update(status_id=status_id, status=status)
    d["webhook"]["scope"] = "store/order/statusUpdated"
    return "bigcommerce", encode(d), {}


def x12(purpose: str) -> tuple[str, bytes, dict]:
    return (
        "x12_850",
        raw("x12_850/two_pos.edi").replace(b"BEG*00*SA*PO-778813", f"BEG*{purpose}*SA*PO-778813".encode()),
        {},
    )


def csv(status: str = "", hold: str = "") -> tuple[str, bytes, dict]:
    head = "order_id,currency,email,sku,qty,unit_price,ship_address1,ship_country,hold,status\n"
    return "csv", (head + f"ST-1,USD,s@example.com,MUG-RED,1,7.25,1 St,US,{hold},{status}\n").encode(), {}


def send(c, case) -> dict:
    channel, body, headers = case
    return ingest(c, channel, body, headers)


def test_holds_by_channel_are_released_by_a_paid_redelivery(intake_daemon):
    d = intake_daemon()
    with d.client() as c:
        for held, paid, account, ext in [
            (woo("on-hold"), woo("processing"), "shop.example.co.uk", "901"),
            (amazon("Pending"), amazon("Unshipped"), "A2EXAMPLESELLER", "902-3159896-1390916"),
            (bigcommerce(7, "Awaiting Payment"), bigcommerce(11, "Awaiting Fulfillment"), "abc123xyz", "250"),
            (csv(hold="bank transfer"), csv(), "default", "ST-1"),
        ]:
            first = send(c, held)
            assert first["outcome"] == "accepted" and first["orders"][0]["hold"], first
            o = c.call("order.get", channel=held[0], account=account, external_id=ext)
            assert o["status"] == "received" and o["hold"] and all(ln["backordered"] == 0 for ln in o["lines"])
            assert send(c, held)["outcome"] == "duplicate"
            assert send(c, paid)["outcome"] == "updated"
            o = c.call("order.get", channel=held[0], account=account, external_id=ext)
            assert o["hold"] == "" and o["status"] == "backordered"
            assert send(c, paid)["outcome"] == "duplicate"


def test_cancellations_by_channel_are_updates(intake_daemon):
    d = intake_daemon()
    with d.client() as c:
        port = http_port(c)
        for create, cancel, account, ext in [
            (woo("processing", 902), woo("cancelled", 902), "shop.example.co.uk", "902"),
            (amazon("Unshipped"), amazon("Canceled"), "A2EXAMPLESELLER", "902-3159896-1390916"),
            (bigcommerce(11, "Awaiting Fulfillment"), bigcommerce(5, "Cancelled"), "abc123xyz", "250"),
            (x12("00"), x12("01"), "BUYERCO", "PO-778813"),
            (csv(), csv(status="cancelled"), "default", "ST-1"),
        ]:
            assert send(c, create)["outcome"] == "accepted"
            channel, body, headers = cancel
            status, res, _ = post(port, channel, body, headers or generic_headers(body))
            assert status == 200
            mine = next(o for o in res["orders"] if o["external_id"] == ext)
            assert mine["outcome"] == "updated", res
            assert c.call("order.get", channel=channel, account=account, external_id=ext)["status"] == "cancelled"
        # X12: the other PO of the interchange was a redelivery
        assert (
            c.call("order.get", channel="x12_850", account="BUYERCO", external_id="PO-778812")["status"] != "cancelled"
        )
        # an AFN (Amazon-fulfilled) order is none of this site's business
        d2 = doc("amazon_sp/order_unshipped.json")
        d2["getOrder"]["payload"].update(FulfillmentChannel="AFN", AmazonOrderId="171-0000000-0000000")
        res = ingest(c, "amazon_sp", json.dumps(d2).encode())
        assert (res["outcome"], res["code"], res["account"]) == ("ignored", "marketplace_fulfilled", "A2EXAMPLESELLER")


def test_the_listener_answers_404_for_unknown_channels_and_paths(intake_daemon):
    import http.client

    d = intake_daemon()
    with d.client() as c:
        port = http_port(c)
        status, res, _ = post(port, "ebay", b"{}")
        assert (status, res["error"]) == (404, "unknown_channel")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request("GET", "/webhooks/shopify")
            assert conn.getresponse().status == 404
        finally:
            conn.close()
