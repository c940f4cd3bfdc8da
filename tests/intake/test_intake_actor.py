"""An order that came through the webhook listener is journaled as its source's:
``intake:CHANNEL/ACCOUNT``, every event of it, whoever reads the audit."""

from __future__ import annotations

from intake_support import SHOP, http_port, post, raw, shopify_headers


def test_a_webhook_order_is_journaled_with_the_intake_actor(intake_daemon):
    d = intake_daemon()
    with d.client() as c:
        body = raw("shopify/orders_create.json")
        status, res, _ = post(http_port(c), "shopify", body, shopify_headers(body))
        assert status == 200 and res["outcome"] == "accepted", res
        oid = res["orders"][0]["order_id"]
        records = c.call("audit.query", order_id=oid)["records"]
        assert records and {r["type"] for r in records} >= {"order_received"}
        assert {r["actor"] for r in records} == {f"intake:shopify/{SHOP}"}
        mine = c.call("audit.query", actor=f"intake:shopify/{SHOP}")["records"]
        assert [r["seq"] for r in mine if r["order_id"] == oid] == [r["seq"] for r in records]
