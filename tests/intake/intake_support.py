"""Helpers of the intake tests: fixtures on disk, signed deliveries, an HTTP poster."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
SHOP = "kaffee.myshopify.com"
WOO = "shop.example.co.uk"
SHOPIFY_SECRET = "shpss_test_secret_ü"
WOO_SECRET = "wc-secret-42"
GENERIC_SECRET = "poller-secret"

CONFIG = """
[intake]
listen = "127.0.0.1:0"
queue_size = 500
max_body_bytes = 65536
priority_reserve = 50
workers = 16

[channels.shopify]
secret_env = "BO_TEST_SHOPIFY_SECRET"

[channels.woocommerce]
secret_env = "BO_TEST_WOO_SECRET"

[channels.amazon_sp]
secret_env = "BO_TEST_GENERIC_SECRET"
currencies = ["EUR", "GBP"]

[channels.bigcommerce]
secret_env = "BO_TEST_GENERIC_SECRET"

[channels.x12_850]
secret_env = "BO_TEST_GENERIC_SECRET"

[channels.csv]
secret_env = "BO_TEST_GENERIC_SECRET"
"""
ENV = {
    "BO_TEST_SHOPIFY_SECRET": SHOPIFY_SECRET,
    "BO_TEST_WOO_SECRET": WOO_SECRET,
    "BO_TEST_GENERIC_SECRET": GENERIC_SECRET,
}


def raw(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def doc(name: str) -> dict:
    return json.loads(raw(name))


def sign(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def shopify_headers(body: bytes, topic: str = "orders/create", secret: str = SHOPIFY_SECRET) -> dict:
    return {
        "X-Shopify-Topic": topic,
        "X-Shopify-Shop-Domain": SHOP,
        "X-Shopify-Hmac-Sha256": sign(body, secret),
        "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        "Content-Type": "application/json",
    }


def woo_headers(body: bytes, topic: str = "order.created") -> dict:
    return {
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Source": f"https://{WOO}/",
        "X-WC-Webhook-Signature": sign(body, WOO_SECRET),
        "X-WC-Webhook-Resource": "order",
        "X-WC-Webhook-Event": topic.split(".")[1],
        "X-WC-Webhook-ID": "12",
        "X-WC-Webhook-Delivery-ID": "99",
    }


def generic_headers(body: bytes) -> dict:
    return {"X-Backorder-Hmac-Sha256": sign(body, GENERIC_SECRET)}


def encode(obj) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode()


def ingest(client, channel: str, body: bytes, headers: dict | None = None, account: str | None = None) -> dict:
    fields = {"channel": channel, "headers": headers or {}, "body_base64": base64.b64encode(body).decode()}
    if account:
        fields["account"] = account
    return client.call("order.ingest", **fields)


def post(port: int, channel: str, body: bytes, headers: dict | None = None, query: str = "") -> tuple[int, dict, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", f"/webhooks/{channel}{query}", body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, json.loads(data) if data else {}, {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()


def http_port(client) -> int:
    """The webhook listener's port, as the daemon reports it in ``health``."""
    port = client.call("health")["intake"]["http_port"]
    assert isinstance(port, int) and port > 0
    return port
