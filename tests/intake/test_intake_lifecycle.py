"""Holds, cancellations and the dead-letter round trip through the governed flow, across
restarts (journal replay and snapshot)."""

from __future__ import annotations

import json

import pytest
from intake_support import SHOP, doc, encode, http_port, ingest, post, raw, shopify_headers

from backorder.client import CallError

GRINDER = '[skus."GRINDER-SS"]\nreorder_point = 0\n'


def deliver(c, name: str, topic: str) -> dict:
    body = raw(name)
    return ingest(c, "shopify", body, shopify_headers(body, topic))


def test_a_payment_hold_is_recorded_not_allocated_until_paid(intake_daemon):
    d = intake_daemon(GRINDER)
    with d.client() as c:
        c.call("stock.receive", sku="GRINDER-SS", qty=5)
        res = deliver(c, "shopify/orders_create_pending.json", "orders/create")
        assert res["outcome"] == "accepted" and res["orders"][0]["hold"] == "payment pending"
        oid = res["orders"][0]["order_id"]
        o = c.call("order.get", order_id=oid)
        assert (o["status"], o["hold"], o["lines"][0]["allocated"], o["lines"][0]["backordered"]) == (
            "received",
            "payment pending",
            0,
            0,
        )
        sku = c.call("sku.get", sku="GRINDER-SS")
        assert (sku["available"], sku["backordered"]) == (5, 0)  # the held order takes nothing
        # redelivered still pending: a duplicate
        assert deliver(c, "shopify/orders_create_pending.json", "orders/updated")["outcome"] == "duplicate"
        d.restart()  # the hold survives a restart (snapshot at stop)
    with d.client() as c:
        assert c.call("order.get", order_id=oid)["hold"] == "payment pending"
        res = deliver(c, "shopify/orders_updated_paid.json", "orders/updated")
        assert res["outcome"] == "updated" and res["orders"][0]["order_id"] == oid
        o = c.call("order.get", order_id=oid)
        assert (o["status"], o["hold"], o["lines"][0]["allocated"]) == ("picking", "", 1)
        assert deliver(c, "shopify/orders_updated_paid.json", "orders/updated")["outcome"] == "duplicate"
        assert c.call("sku.get", sku="GRINDER-SS")["available"] == 4
        d.kill9()
        d.start()  # replay of the journal (no snapshot after the kill) gives the same state
    with d.client() as c:
        o = c.call("order.get", order_id=oid)
        assert (o["status"], o["hold"], o["lines"][0]["allocated"]) == ("picking", "", 1)
        audit = c.call("audit.query", order_id=oid)["records"]
        assert [r["type"] for r in audit if r["type"] in ("order_received", "order_released")] == [
            "order_received",
            "order_released",
        ]


def test_cancellation_is_an_update_then_a_duplicate_and_frees_the_units(intake_daemon):
    d = intake_daemon(GRINDER)
    with d.client() as c:
        c.call("stock.receive", sku="GRINDER-SS", qty=1)
        oid = deliver(c, "shopify/orders_updated_paid.json", "orders/create")["orders"][0]["order_id"]
        assert c.call("sku.get", sku="GRINDER-SS")["available"] == 0
        port = http_port(c)
        body = raw("shopify/orders_cancelled.json")
        status, res, _ = post(port, "shopify", body, shopify_headers(body, "orders/cancelled"))
        assert (status, res["outcome"], res["orders"][0]["order_id"]) == (200, "updated", oid)
        assert c.call("order.get", order_id=oid)["status"] == "cancelled"
        assert c.call("sku.get", sku="GRINDER-SS")["available"] == 1
        status, res, _ = post(port, "shopify", body, shopify_headers(body, "orders/cancelled"))
        assert (status, res["outcome"]) == (200, "duplicate")
        # a cancellation of an order never received creates nothing
        other = body.replace(b"5820982911946154999", b"5820982911946100000")
        res = ingest(c, "shopify", other, shopify_headers(other, "orders/cancelled"))
        assert (res["outcome"], res["code"]) == ("ignored", "unknown_order")
        assert c.call("stats")["counts"]["orders"] == 1


CSV_HEAD = "order_id,currency,email,sku,qty,unit_price,ship_address1,ship_country,rush\n"
STRICT = """
[skus."WIDGET-RED"]
reorder_point = 0

[channels.csv.accounts.default]
known_skus_only = true
"""


def test_dead_letter_round_trip_unknown_sku_alias_retry_group_exactly_once(intake_daemon):
    d = intake_daemon(STRICT)
    with d.client() as c:
        a = CSV_HEAD + "B2B-1,USD,a@example.com,widget red,2,10.00,1 Main St,US,\n"
        b = CSV_HEAD + "B2B-2,USD,b@example.com,widget red,1,10.00,2 Main St,US,yes\n"
        results = [c.call("order.ingest", channel="csv", body=x) for x in (a, b, a)]  # a is redelivered
        assert [r["code"] for r in results] == ["unknown_sku"] * 3
        listed = c.call("deadletters.list")
        assert [g["cause"] for g in listed["groups"]] == ["unknown_sku"] and listed["groups"][0]["count"] == 3
        # highest impact first: the rush order (500 + 10) before the others (20 each)
        assert [x["external_id"] for x in listed["dead_letters"]] == ["B2B-2", "B2B-1", "B2B-1"]
        assert c.call("deadletters.retry", cause="unknown_sku")["resolved"] == 0  # not fixed yet
        assert [x["attempts"] for x in c.call("deadletters.list")["dead_letters"]] == [2, 2, 2]
        c.call("intake.alias", channel="csv", channel_sku="widget red", sku="WIDGET-RED")
        d.restart()  # the alias and the letters are journaled
    with d.client() as c:
        res = c.call("deadletters.retry", cause="unknown_sku")
        assert (res["retried"], res["resolved"]) == (3, 3)
        assert sorted(r["outcome"] for r in res["results"]) == ["accepted", "accepted", "duplicate"]
        assert c.call("stats")["counts"]["orders"] == 2  # exactly once each
        o = c.call("order.get", channel="csv", external_id="B2B-1")
        assert [(ln["sku"], ln["qty"]) for ln in o["lines"]] == [("WIDGET-RED", 2)]
        assert c.call("deadletters.list")["dead_letters"] == []
        assert c.call("order.ingest", channel="csv", body=a)["outcome"] == "duplicate"
        types = [r["type"] for r in c.call("audit.query", limit=1000)["records"]]
        assert types.count("dead_lettered") == 3 and types.count("dead_letter_retried") == 6
        assert types.count("alias_set") == 1


def test_discard_a_group_with_a_reason_is_audited(intake_daemon):
    d = intake_daemon(STRICT)
    with d.client() as c:
        for n in range(3):
            c.call("order.ingest", channel="csv", body=CSV_HEAD + f"X-{n},USD,x@example.com,nope,1,1.00,1 St,US,\n")
        res = c.call("deadletters.discard", cause="unknown_sku", channel="csv", reason="test orders")
        assert sorted(res["discarded"]) == [1, 2, 3]
        assert c.call("deadletters.list")["dead_letters"] == []
        records = [r for r in c.call("audit.query", limit=1000)["records"] if r["type"] == "dead_letter_discarded"]
        assert [r["event"]["reason"] for r in records] == ["test orders"] * 3
        assert {r["cause"] for r in records} == {"deadletters.discard"}


def test_a_change_before_allocation_updates_the_lines_after_it_is_a_duplicate(intake_daemon):
    d = intake_daemon(GRINDER)
    with d.client() as c:
        body = raw("shopify/orders_updated_paid.json")
        oid = ingest(c, "shopify", body, shopify_headers(body, "orders/create"))["orders"][0]["order_id"]
        assert c.call("sku.get", sku="GRINDER-SS")["backordered"] == 1  # no stock: it waits
        changed = body.replace(b'"quantity": 1', b'"quantity": 3')
        res = ingest(c, "shopify", changed, shopify_headers(changed, "orders/updated"))
        assert (res["outcome"], res["orders"][0]["order_id"]) == ("updated", oid)
        o = c.call("order.get", order_id=oid)
        assert [(ln["sku"], ln["qty"], ln["backordered"]) for ln in o["lines"]] == [("GRINDER-SS", 3, 3)]
        assert c.call("sku.get", sku="GRINDER-SS")["backordered"] == 3
        c.call("stock.receive", sku="GRINDER-SS", qty=3)
        assert c.call("order.get", order_id=oid)["lines"][0]["allocated"] == 3
        back = ingest(c, "shopify", body, shopify_headers(body, "orders/updated"))
        assert back["outcome"] == "duplicate"  # allocated: the change is not applied
        assert c.call("order.get", order_id=oid)["lines"][0]["qty"] == 3
        d.kill9()
        d.start()
    with d.client() as c:
        assert [(ln["qty"], ln["allocated"]) for ln in c.call("order.get", order_id=oid)["lines"]] == [(3, 3)]
        assert c.call("sku.get", sku="GRINDER-SS")["backordered"] == 0


def test_an_older_version_redelivered_is_a_duplicate_and_changes_nothing(intake_daemon):
    """A replayed (or overtaken) webhook used to roll the order's lines back and notify the
    customer again; now only a version not older than the one applied is applied."""
    d = intake_daemon()
    v1 = doc("shopify/orders_create.json")  # updated_at 2024-03-01T10:15:32-05:00
    v2 = json.loads(json.dumps(v1))
    v2["updated_at"] = "2024-03-01T10:20:00-05:00"
    v2["line_items"][0]["quantity"] += 2

    def send(body: dict, topic: str) -> dict:
        data = encode(body)
        return ingest(c, "shopify", data, shopify_headers(data, topic))

    with d.client() as c:
        assert send(v1, "orders/create")["outcome"] == "accepted"
        res = send(v2, "orders/updated")
        assert (res["outcome"], res["orders"][0]["message"]) == ("updated", "lines changed before allocation")
        oid = res["orders"][0]["order_id"]
        lines = c.call("order.get", order_id=oid)["lines"]
        seq = c.call("health")["journal"]["last_seq"]
        notices = c.call("stats")["counts"]["notices_queued"]
        res = send(v1, "orders/updated")  # the old one again
        assert (res["outcome"], res["orders"][0]["order_id"]) == ("duplicate", oid)
        assert "older version" in res["orders"][0]["message"]
        assert c.call("order.get", order_id=oid)["lines"] == lines
        assert c.call("health")["journal"]["last_seq"] == seq  # nothing journaled: no change, no notice
        assert c.call("stats")["counts"]["notices_queued"] == notices
        d.kill9()
        d.start()  # the applied version is in the journal
    with d.client() as c:
        assert send(v1, "orders/updated")["outcome"] == "duplicate"
        assert c.call("order.get", order_id=oid)["lines"] == lines
        v3 = json.loads(json.dumps(v2))
        v3["updated_at"] = "2024-03-01T10:25:00-05:00"
        v3["line_items"][0]["quantity"] += 1
        assert send(v3, "orders/updated")["outcome"] == "updated"  # a newer one still applies


def test_a_paid_redelivery_with_other_lines_releases_the_hold_with_those_lines(intake_daemon):
    """An order created pending, then paid with a changed line list (one delivery): both
    changes apply. The release alone used to be applied, and the new version recorded, so
    the order shipped the lines before the change and no later delivery could correct it."""
    d = intake_daemon(GRINDER)
    with d.client() as c:
        c.call("stock.receive", sku="GRINDER-SS", qty=5)
        oid = deliver(c, "shopify/orders_create_pending.json", "orders/create")["orders"][0]["order_id"]
        paid = raw("shopify/orders_updated_paid.json").replace(b'"quantity": 1', b'"quantity": 3')
        res = ingest(c, "shopify", paid, shopify_headers(paid, "orders/updated"))
        assert (res["outcome"], res["orders"][0]["order_id"]) == ("updated", oid)
        o = c.call("order.get", order_id=oid)
        assert (o["hold"], [(ln["qty"], ln["allocated"]) for ln in o["lines"]]) == ("", [(3, 3)])
        assert c.call("sku.get", sku="GRINDER-SS")["available"] == 2
        d.kill9()
        d.start()
    with d.client() as c:
        o = c.call("order.get", order_id=oid)
        assert (o["hold"], [(ln["qty"], ln["allocated"]) for ln in o["lines"]]) == ("", [(3, 3)])


def test_a_source_version_given_over_the_socket_is_compared_as_a_time(intake_daemon):
    """``source_version`` is a time: one sent with an offset is kept in the form intake
    compares (RFC 3339 UTC with microseconds), and one that is not a time is refused.
    Compared as sent, 08:30+01:00 (07:30Z) ranked after a delivery of 08:00Z, which was
    then dropped as older; any text ("v2") ranked after every delivery for good."""
    d = intake_daemon(GRINDER)
    with d.client() as c:
        common = {
            "channel": "shopify",
            "account": SHOP,
            "external_id": "5820982911946154999",
            "lines": [{"sku": "GRINDER-SS", "qty": 1}],
        }
        with pytest.raises(CallError) as refused:
            c.call("order.submit", **common, source_version="v2")
        assert refused.value.code == "invalid_date"
        oid = c.call("order.submit", **common, source_version="2024-03-02T08:30:00+01:00")["order_id"]
        paid = raw("shopify/orders_updated_paid.json").replace(b'"quantity": 1', b'"quantity": 3')  # 08:00Z
        res = ingest(c, "shopify", paid, shopify_headers(paid, "orders/updated"))
        assert (res["outcome"], res["orders"][0]["order_id"]) == ("updated", oid)
        assert [ln["qty"] for ln in c.call("order.get", order_id=oid)["lines"]] == [3]
        received = [r for r in c.call("audit.query", order_id=oid)["records"] if r["type"] == "order_received"]
        assert received[0]["event"]["order"]["source_version"] == "2024-03-02T07:30:00.000000Z"
