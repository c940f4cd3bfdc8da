"""Every rejection code, in the order the checks run, through the socket op and through the
webhook listener (with its HTTP status); validation profiles per channel and account."""

from __future__ import annotations

import base64
import json

import pytest
from intake_support import (
    SHOP,
    WOO,
    doc,
    encode,
    generic_headers,
    http_port,
    ingest,
    post,
    raw,
    shopify_headers,
    woo_headers,
)

EXTRA = """
[skus."POUROVER-W"]
reorder_point = 0

[channels.bigcommerce.accounts.abc123xyz]
known_skus_only = true

[channels.woocommerce.accounts."strict.example"]
lenient_numbers = false
"""


def shopify(mutate=None, topic="orders/create", secret=None):
    body = doc("shopify/orders_create.json")
    if mutate:
        mutate(body)
    data = encode(body)
    headers = shopify_headers(data, topic) if secret is None else shopify_headers(data, topic, secret)
    return "shopify", data, headers


def woo(mutate=None, source=None):
    body = doc("woocommerce/order_created.json")
    if mutate:
        mutate(body)
    data = encode(body)
    headers = woo_headers(data)
    if source:
        headers["X-WC-Webhook-Source"] = f"https://{source}/"
    return "woocommerce", data, headers


def amazon(mutate):
    body = doc("amazon_sp/order_unshipped.json")
    mutate(body)
    data = encode(body)
    return "amazon_sp", data, generic_headers(data)


def bigcommerce(mutate=None):
    body = doc("bigcommerce/order_created.json")
    if mutate:
        mutate(body)
    data = encode(body)
    return "bigcommerce", data, generic_headers(data)


def _set(path, value):
    def mutate(obj):
        *head, last = path
        for k in head:
            obj = obj[k]
        obj[last] = value

    return mutate


def _items(body):
    return body["getOrderItems"][1]["payload"]["OrderItems"][0]


CASES = {
    "signature_missing": (
        lambda: (
            "shopify",
            raw("shopify/orders_create.json"),
            {"X-Shopify-Topic": "orders/create", "X-Shopify-Shop-Domain": SHOP},
        ),
        401,
    ),
    "signature_invalid": (lambda: shopify(secret="not-the-secret"), 401),
    "body_too_large": (lambda: shopify(_set(["note"], "x" * 70_000)), 413),
    "malformed_body": (
        lambda: ("shopify", b'{"id": 1, "line_items": [', shopify_headers(b'{"id": 1, "line_items": [')),
        400,
    ),
    "missing_sku": (lambda: woo(_set(["line_items", 1, "sku"], "")), 422),
    "invalid_quantity": (lambda: woo(_set(["line_items", 0, "quantity"], "2.5")), 422),
    "unknown_currency": (
        lambda: amazon(
            lambda b: (
                b["getOrder"]["payload"]["OrderTotal"].update(CurrencyCode="USD"),
                [
                    it["ItemPrice"].update(CurrencyCode="USD")
                    for page in b["getOrderItems"]
                    for it in page["payload"]["OrderItems"]
                ],
            )
        ),
        422,
    ),
    "currency_mismatch": (lambda: amazon(lambda b: _items(b)["ItemPrice"].update(CurrencyCode="GBP")), 422),
    "order_items_mismatch": (lambda: amazon(_set(["getOrder", "payload", "NumberOfItemsUnshipped"], 5)), 422),
    "unknown_sku": (lambda: bigcommerce(_set(["products", 0, "sku"], "POUROVER-BLACK")), 422),
    "missing_field": (lambda: shopify(lambda b: b.update(email=None, contact_email=None)), 422),
    "unsupported_topic": (lambda: shopify(topic="products/create"), 200),
    "webhook_ping": (lambda: ("woocommerce", b"webhook_id=12", {"X-WC-Webhook-Source": f"https://{WOO}/"}), 200),
}
KEPT = {
    "malformed_body",
    "missing_sku",
    "invalid_quantity",
    "unknown_currency",
    "currency_mismatch",
    "order_items_mismatch",
    "unknown_sku",
    "missing_field",
}


@pytest.mark.parametrize("via", ["socket", "http"])
def test_every_rejection_code_with_its_http_status_and_nothing_changes(intake_daemon, via):
    d = intake_daemon(EXTRA)
    with d.client() as c:
        port = http_port(c)
        seen = {}
        for code, (make, status) in CASES.items():
            channel, body, headers = make()
            if via == "socket":
                res = ingest(c, channel, body, headers)
            else:
                got, res, _ = post(port, channel, body, headers)
                assert got == status, (code, got, res)
            seen[code] = res
            assert res["code"] == code, (code, res)
            assert res["outcome"] == ("ignored" if status == 200 else "rejected"), res
            assert ("letter_id" in res) == (code in KEPT), (code, res)
        stats = c.call("stats")
        assert stats["counts"]["orders"] == 0  # not one of them became an order
        letters = c.call("deadletters.list")
        assert sorted(x["cause"] for x in letters["dead_letters"]) == sorted(KEPT)
        # kept byte-exact with the headers as delivered
        kept = next(x for x in letters["dead_letters"] if x["cause"] == "missing_sku")
        message = json.loads(kept["message"])
        assert base64.b64decode(message["body_base64"]) == CASES["missing_sku"][0]()[1]
        assert message["headers"]["x-wc-webhook-topic"] == "order.created"
        assert kept["channel"] == "woocommerce" and kept["account"] == WOO and kept["external_id"] == "727"
        assert kept["impact"] == 55.0 + 500.0  # value 2 x 17.50 + 20.00, rush (next day)
        rejections = stats["intake"]["rejections"]
        # a shop domain is only a claim until the signature holds: the shop is not an account
        # of the configuration, so its bad signatures are counted as "(unverified)"
        assert rejections["shopify/(unverified)/signature_invalid"] == 1
        assert rejections[f"woocommerce/{WOO}/missing_sku"] == 1
        health = {(s["channel"], s["account"]): s for s in c.call("sources.health")["sources"]}
        unverified = health[("shopify", "(unverified)")]
        assert unverified["bad_signatures"] == 2 and len(unverified["signature_samples"]) == 2
        assert {x["account"] for x in unverified["signature_samples"]} == {SHOP}
        shop = health[("shopify", SHOP)]
        assert unverified["rejections"] == {"signature_missing": 1, "signature_invalid": 1, "body_too_large": 1}
        assert shop["outcomes"]["ignored"] == 1 and shop["outcomes"]["rejected"] == 2  # malformed, missing_field


def test_validation_profiles_cut_false_rejects_per_account(intake_daemon):
    d = intake_daemon(EXTRA)
    with d.client() as c:
        # the same string quantity: accepted by WooCommerce's default profile, rejected for
        # the shop whose account turns lenient_numbers off
        ch, body, headers = woo(_set(["line_items", 0, "quantity"], "3"), source="strict.example")
        assert ingest(c, ch, body, headers)["code"] == "invalid_quantity"
        ch, body, headers = woo(_set(["line_items", 0, "quantity"], "3"))
        res = ingest(c, ch, body, headers)
        assert res["outcome"] == "accepted", res
        o = c.call("order.get", channel="woocommerce", account=WOO, external_id="727")
        line = o["lines"][0]
        # 40.00 before the coupon / 3, to 4 places for display; the line keeps 35.00 exactly
        assert (line["qty"], line["unit_price"], line["discount"], line["line_total"]) == (
            3,
            "13.3333",
            "5.00",
            "35.00",
        )
        # a digital product is never checked against the site's SKUs
        ch, body, headers = bigcommerce()
        assert ingest(c, ch, body, headers)["outcome"] == "accepted"


def test_big_ids_never_pass_through_a_float(intake_daemon):
    d = intake_daemon()
    big = 2**63 - 25  # far above 2^53: a float would change its last digits
    with d.client() as c:
        ch, body, headers = shopify(_set(["id"], big))
        assert str(big).encode() in body
        res = ingest(c, ch, body, headers)
        assert res["orders"][0]["external_id"] == str(big)
        assert c.call("order.get", channel="shopify", account=SHOP, external_id=str(big))["external_id"] == str(big)
        # a fractional id is refused, never rounded
        ch, body, headers = shopify(_set(["id"], 1.5))
        assert ingest(c, ch, body, headers)["code"] == "malformed_body"
