"""Every channel's realistic delivery becomes the canonical order, field by field, through
the socket op and through the real webhook listener (hypercorn on a free port)."""

from __future__ import annotations

import pytest
from intake_support import SHOP, WOO, generic_headers, http_port, ingest, post, raw, shopify_headers, woo_headers

CASES = {
    "shopify": ("shopify/orders_create.json", shopify_headers),
    "woocommerce": ("woocommerce/order_created.json", woo_headers),
    "amazon_sp": ("amazon_sp/order_unshipped.json", None),
    "bigcommerce": ("bigcommerce/order_created.json", None),
    "x12_850": ("x12_850/two_pos.edi", None),
    "csv": ("csv/orders.csv", None),
}


def deliver(via: str, client, channel: str) -> dict:
    name, headers = CASES[channel]
    body = raw(name)
    if via == "socket":
        return ingest(client, channel, body, headers(body) if headers else {})
    status, result, _ = post(http_port(client), channel, body, headers(body) if headers else generic_headers(body))
    assert status == 200, result
    return result


def lines(detail: dict) -> list[tuple]:
    return [(ln["sku"], ln["qty"], ln["unit_price"], ln["requires_shipping"]) for ln in detail["lines"]]


@pytest.mark.parametrize("via", ["socket", "http"])
def test_every_channel_becomes_the_canonical_order_field_by_field(intake_daemon, via):
    d = intake_daemon()
    with d.client() as c:
        results = {ch: deliver(via, c, ch) for ch in CASES}
        for ch, res in results.items():
            assert res["outcome"] == "accepted", (ch, res)
            assert all(o["outcome"] == "accepted" and o["order_id"] for o in res["orders"]), res

        def get(channel, account, ext):
            return c.call("order.get", channel=channel, account=account, external_id=ext)

        # Shopify: id above 2^53 exact, UTC from a -05:00 offset, discount per unit, gift card ships nothing
        o = get("shopify", SHOP, "5820982911946154508")
        assert (o["order_number"], o["email"], o["currency"], o["created_at"]) == (
            "#1042",
            "zoë.müller@example.de",
            "EUR",
            "2024-03-01T15:15:30Z",
        )
        assert lines(o) == [
            ("GRINDER-SS", 2, "44.95", True),
            ("FILTER-100", 3, "3.50", True),
            ("NOSKU-13642089365548", 1, "25.00", False),
        ]
        assert o["shipping_address"] == {
            "name": "Zoë Müller",
            "company": "Bäckerei Müller GmbH",
            "address1": "Königstraße 12",
            "address2": "Hinterhaus",
            "city": "München",
            "region": "BY",
            "postal_code": "80331",
            "country_code": "DE",
            "phone": "+49 89 1234567",
        }
        assert o["customer"] == {"id": "7390432256044", "name": "Zoë Müller"}
        assert (o["rush"], o["hold"], o["total"]) == (True, "", "125.40")

        # WooCommerce: date_created_gmt is UTC; unit price = total / quantity (after the coupon)
        o = get("woocommerce", WOO, "727")
        assert (o["order_number"], o["email"], o["currency"], o["created_at"], o["rush"]) == (
            "727",
            "sian.obrien@example.co.uk",
            "GBP",
            "2024-03-01T09:30:00Z",
            True,
        )
        assert lines(o) == [("MUG-RED", 2, "17.50", True), ("TEE-BLK-M", 1, "20.00", True)]
        assert o["shipping_address"]["name"] == "Siân O'Brien" and o["shipping_address"]["postal_code"] == "CF10 1BS"
        assert o["customer"] == {"id": "26", "name": "Siân O'Brien"}

        # Amazon: ItemPrice is extended (price x quantity), promotion discount too; e-mail withheld
        o = get("amazon_sp", "A2EXAMPLESELLER", "902-3159896-1390916")
        assert lines(o) == [("GRINDER-SS", 1, "59.99", True), ("FILTER-100", 3, "14.99", True)]
        assert (o["email"], o["currency"], o["created_at"], o["rush"]) == ("", "EUR", "2024-03-01T11:58:41Z", True)
        assert o["shipping_address"]["name"] == "Jürgen Groß" and o["shipping_address"]["country_code"] == "DE"

        # BigCommerce: RFC 2822 date, per-unit price_inc_tax, a digital product ships nothing
        o = get("bigcommerce", "abc123xyz", "250")
        assert lines(o) == [("POUROVER-W", 2, "32.5000", True), ("EBOOK-BREW", 1, "20.0000", False)]
        assert (o["created_at"], o["currency"], o["email"], o["rush"]) == (
            "2024-03-01T10:00:37Z",
            "USD",
            "chloe.nguyen@example.com",
            True,
        )
        assert o["shipping_address"]["company"] == "Nguyễn Coffee Co"

        # X12: two purchase orders in one interchange; account = ISA06; TD5 ND = rush
        po1 = get("x12_850", "BUYERCO", "PO-778812")
        po2 = get("x12_850", "BUYERCO", "PO-778813")
        assert lines(po1) == [("GRINDER-SS", 24, "12.50", True), ("FILTER-100", 100, "1.10", True)]
        assert (po1["email"], po1["rush"], po1["created_at"]) == (
            "mary.buyer@buyerco.example",
            True,
            "2024-03-01T00:00:00Z",
        )
        assert po1["shipping_address"] == {
            "name": "BuyerCo Warehouse 7",
            "company": "",
            "address1": "1200 Industrial Pkwy",
            "address2": "Dock 4",
            "city": "Columbus",
            "region": "OH",
            "postal_code": "43219",
            "country_code": "US",
            "phone": "",
        }
        assert po1["customer"] == {"id": "BC-001", "name": "BuyerCo Inc"}
        assert lines(po2) == [("MUG-RED", 6, "7.25", True)] and po2["rush"] is False

        # CSV: rows grouped by order_id, a quoted comma, an offset date to UTC
        o = get("csv", "default", "CSV-1001")
        assert lines(o) == [("GRINDER-SS", 2, "49.95", True), ("GIFT-25", 1, "25.00", False)]
        assert o["shipping_address"]["name"] == "Lumière, Café" and o["customer"]["name"] == "Café Lumière"
        o = get("csv", "default", "CSV-1002")
        assert (o["created_at"], o["rush"]) == ("2024-03-01T07:30:00Z", True)

        # the same deliveries again: duplicates, nothing new
        before = c.call("stats")["counts"]["orders"]
        for ch in CASES:
            again = deliver(via, c, ch)
            assert again["outcome"] == "duplicate" and all(x["outcome"] == "duplicate" for x in again["orders"])
        assert c.call("stats")["counts"]["orders"] == before == 8
        health = {(s["channel"], s["account"]): s for s in c.call("sources.health")["sources"]}
        assert health[("shopify", SHOP)]["outcomes"]["accepted"] == 1
        assert health[("shopify", SHOP)]["outcomes"]["duplicate"] == 1
        assert health[("x12_850", "BUYERCO")]["deliveries"] == 2
