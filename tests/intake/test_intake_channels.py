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
    """(sku, qty, unit_price, discount, line_total, channel_line_id, requires_shipping) per line."""
    keys = ("sku", "qty", "unit_price", "discount", "line_total", "channel_line_id", "requires_shipping")
    return [tuple(ln[k] for k in keys) for ln in detail["lines"]]


def totals(subtotal, discount, shipping, fees, tax, total) -> dict:
    return {"subtotal": subtotal, "discount": discount, "shipping": shipping, "fees": fees, "tax": tax, "total": total}


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

        # Shopify: id above 2^53 exact, UTC from a -05:00 offset, price before the discount
        # allocated to the line, gift card ships nothing, total_price is the grand total
        o = get("shopify", SHOP, "5820982911946154508")
        assert (o["order_number"], o["email"], o["currency"], o["created_at"]) == (
            "#1042",
            "zoë.müller@example.de",
            "EUR",
            "2024-03-01T15:15:30Z",
        )
        assert lines(o) == [
            ("GRINDER-SS", 2, "49.95", "10.00", "89.90", "13642089300012", True),
            ("FILTER-100", 3, "3.50", "0.00", "10.50", "13642089332780", True),
            ("NOSKU-13642089365548", 1, "25.00", "0.00", "25.00", "13642089365548", False),
        ]
        assert o["totals"] == totals("135.40", "10.00", "10.00", "0", "0", "135.40")
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
        assert (o["rush"], o["hold"], o["total"], o["needs_address"]) == (True, "", "135.40", False)

        # WooCommerce: date_created_gmt is UTC; unit price = subtotal / quantity (before the
        # coupon), the coupon's share is subtotal - total
        o = get("woocommerce", WOO, "727")
        assert (o["order_number"], o["email"], o["currency"], o["created_at"], o["rush"]) == (
            "727",
            "sian.obrien@example.co.uk",
            "GBP",
            "2024-03-01T09:30:00Z",
            True,
        )
        assert lines(o) == [
            ("MUG-RED", 2, "20.00", "5.00", "35.00", "315", True),
            ("TEE-BLK-M", 1, "20.00", "0.00", "20.00", "316", True),
        ]
        assert o["totals"] == totals("60.00", "5.00", "7.50", "0", "0.00", "62.50") and o["total"] == "62.50"
        assert o["shipping_address"]["name"] == "Siân O'Brien" and o["shipping_address"]["postal_code"] == "CF10 1BS"
        assert o["customer"] == {"id": "26", "name": "Siân O'Brien"}

        # Amazon: ItemPrice is extended (price x quantity), promotion discount too: the line
        # keeps 47.97 - 3.00 exactly, its unit price 15.99 is shown; e-mail withheld
        o = get("amazon_sp", "A2EXAMPLESELLER", "902-3159896-1390916")
        assert lines(o) == [
            ("GRINDER-SS", 1, "59.99", "0.00", "59.99", "52852651034158", True),
            ("FILTER-100", 3, "15.99", "3.00", "44.97", "52852651034159", True),
        ]
        assert o["totals"] == totals("107.96", "3.00", "0", "0", "9.58", "104.96") and o["total"] == "104.96"
        assert (o["email"], o["currency"], o["created_at"], o["rush"]) == ("", "EUR", "2024-03-01T11:58:41Z", True)
        assert o["shipping_address"]["name"] == "Jürgen Groß" and o["shipping_address"]["country_code"] == "DE"

        # BigCommerce: RFC 2822 date, per-unit price_ex_tax (not price_inc_tax), the coupon in
        # applied_discounts, a digital product ships nothing
        o = get("bigcommerce", "abc123xyz", "250")
        assert lines(o) == [
            ("POUROVER-W", 2, "30.0000", "5.0000", "55.0000", "301", True),
            ("EBOOK-BREW", 1, "20.0000", "0", "20.0000", "302", False),
        ]
        assert o["totals"] == totals("80.0000", "5.0000", "9.9900", "0.0000", "5.0000", "89.9900")
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
        assert lines(po1) == [
            ("GRINDER-SS", 24, "12.50", "0", "300.00", "1", True),
            ("FILTER-100", 100, "1.10", "0", "110.00", "2", True),
        ]
        assert po1["totals"] == totals("410.00", "0", "0", "0", "0", "410.00")
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
        assert lines(po2) == [("MUG-RED", 6, "7.25", "0", "43.50", "1", True)] and po2["rush"] is False

        # CSV: rows grouped by order_id, a quoted comma, an offset date to UTC
        o = get("csv", "default", "CSV-1001")
        assert lines(o) == [
            ("GRINDER-SS", 2, "49.95", "5.00", "94.90", "1001-1", True),
            ("GIFT-25", 1, "25.00", "0", "25.00", "1001-2", False),
        ]
        assert o["totals"] == totals("124.90", "5.00", "4.90", "0", "0.00", "124.80")
        assert o["shipping_address"]["name"] == "Lumière, Café" and o["customer"]["name"] == "Café Lumière"
        o = get("csv", "default", "CSV-1002")
        assert (o["created_at"], o["rush"]) == ("2024-03-01T07:30:00Z", True)
        assert o["totals"] == totals("21.75", "0", "0", "0", "1.79", "23.54")

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
