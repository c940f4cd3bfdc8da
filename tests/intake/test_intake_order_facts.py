"""Fewer false rejects, through the real daemon's intake: an order that ships nothing needs
no address; an Amazon order without restricted data is accepted and waits for its address
(across kill -9); WooCommerce quantities as numeric strings; X12 850 item references
mapped through the trading partner's cross-reference."""

from __future__ import annotations

import pytest
from intake_support import WOO, doc, encode, ingest, raw, shopify_headers, woo_headers

from backorder.client import CallError

STOCKED = """
[skus."GRINDER-SS"]
reorder_point = 0
[skus."FILTER-100"]
reorder_point = 0
"""
AMAZON = "amazon_sp/order_unshipped.json"
AMAZON_ID = "902-3159896-1390916"


def amazon_without_restricted_data() -> dict:
    """getOrder as SP-API answers it without a restricted data token: no name, no street."""
    body = doc(AMAZON)
    body["getOrder"]["payload"]["ShippingAddress"] = {
        "City": "Berlin",
        "StateOrRegion": "Berlin",
        "PostalCode": "10623",
        "CountryCode": "DE",
    }
    return body


def test_an_amazon_order_without_restricted_data_waits_for_its_address_across_kill_9(intake_daemon):
    d = intake_daemon(STOCKED)
    with d.client() as c:
        c.call("stock.receive", sku="GRINDER-SS", qty=1)
        c.call("stock.receive", sku="FILTER-100", qty=3)
        res = ingest(c, "amazon_sp", encode(amazon_without_restricted_data()))
        assert res["outcome"] == "accepted", res
        oid = res["orders"][0]["order_id"]
        o = c.call("order.get", order_id=oid)
        assert (o["status"], o["needs_address"]) == ("picking", True)
        assert o["shipping_address"]["address1"] == "" and o["shipping_address"]["postal_code"] == "10623"
        (sid,) = [sh["shipment_id"] for sh in o["shipments"]]
        with pytest.raises(CallError) as exc:
            c.call("pick.confirm", shipment_id=sid)
        assert exc.value.code == "address_needed", exc.value
        d.kill9()
        d.start()
    with d.client() as c:
        o = c.call("order.get", order_id=oid)
        assert (o["status"], o["needs_address"]) == ("picking", True)
        with pytest.raises(CallError) as exc:
            c.call("pick.confirm", shipment_id=sid)
        assert exc.value.code == "address_needed"
        # the poller fetches it again with the restricted data: the address is set
        res = ingest(c, "amazon_sp", raw(AMAZON))
        assert (res["outcome"], res["orders"][0]["order_id"]) == ("updated", oid), res
        o = c.call("order.get", order_id=oid)
        assert o["needs_address"] is False
        assert (o["shipping_address"]["name"], o["shipping_address"]["address1"]) == (
            "Jürgen Groß",
            "Straße des 17. Juni 135",
        )
        assert c.call("pick.confirm", shipment_id=sid)["status"] == "shipped"
        assert ingest(c, "amazon_sp", raw(AMAZON))["outcome"] == "duplicate"
        d.kill9()
        d.start()
    with d.client() as c:
        o = c.call("order.get", order_id=oid)
        assert (o["status"], o["needs_address"], o["shipping_address"]["city"]) == ("shipped", False, "Berlin")
        types = [r["type"] for r in c.call("audit.query", order_id=oid)["records"]]
        assert types.count("order_address_set") == 1


def test_an_order_address_is_checked_and_refused_once_shipped(intake_daemon):
    d = intake_daemon(STOCKED)
    with d.client() as c:
        c.call("stock.receive", sku="GRINDER-SS", qty=1)
        c.call("stock.receive", sku="FILTER-100", qty=3)
        oid = ingest(c, "amazon_sp", encode(amazon_without_restricted_data()))["orders"][0]["order_id"]
        with pytest.raises(CallError) as exc:  # no street: refused, nothing changes
            c.call("order.address", order_id=oid, shipping_address={"city": "Berlin", "country_code": "DE"})
        assert exc.value.code == "missing_field"
        assert c.call("order.get", order_id=oid)["needs_address"] is True
        address = {"name": "J. Groß", "address1": "Hauptstr. 1", "city": "Berlin", "country_code": "DE"}
        o = c.call("order.address", order_id=oid, shipping_address=address, reason="buyer message")
        assert (o["needs_address"], o["shipping_address"]["address1"]) == (False, "Hauptstr. 1")
        c.call("pick.confirm", shipment_id=o["shipments"][0]["shipment_id"])
        with pytest.raises(CallError) as exc:
            c.call("order.address", order_id=oid, shipping_address={**address, "address1": "Elsewhere 2"})
        assert exc.value.code == "already_shipped"
        # a redelivery without the street does not undo the address
        assert ingest(c, "amazon_sp", encode(amazon_without_restricted_data()))["outcome"] == "duplicate"
        assert c.call("order.get", order_id=oid)["shipping_address"]["address1"] == "Hauptstr. 1"


def test_an_amazon_order_without_any_address_is_still_refused(intake_daemon):
    d = intake_daemon()
    body = doc(AMAZON)
    body["getOrder"]["payload"]["ShippingAddress"] = {"City": "Berlin", "PostalCode": "10623"}  # no country
    with d.client() as c:
        res = ingest(c, "amazon_sp", encode(body))
        assert (res["outcome"], res["orders"][0]["code"]) == ("rejected", "missing_field"), res


def test_a_shopify_order_that_ships_nothing_needs_no_address(intake_daemon):
    d = intake_daemon()
    body = doc("shopify/orders_create.json")
    body["id"] = 5820982911946154999
    body["shipping_address"] = None
    body["line_items"] = [li for li in body["line_items"] if not li["requires_shipping"]]
    with d.client() as c:
        payload = encode(body)
        res = ingest(c, "shopify", payload, shopify_headers(payload))
        assert res["outcome"] == "accepted", res
        o = c.call("order.get", order_id=res["orders"][0]["order_id"])
        assert (o["needs_address"], [ln["requires_shipping"] for ln in o["lines"]]) == (False, [False])
        # the same order with a line that ships, still without an address: refused
        body["id"] += 1
        body["line_items"] = doc("shopify/orders_create.json")["line_items"][:1]
        payload = encode(body)
        res = ingest(c, "shopify", payload, shopify_headers(payload))
        assert (res["outcome"], res["orders"][0]["code"]) == ("rejected", "missing_field"), res


def test_woocommerce_quantities_as_numeric_strings_are_accepted_by_default(intake_daemon):
    d = intake_daemon()
    body = raw("woocommerce/order_created.json").replace(b'"quantity": 2', b'"quantity": "2"')
    with d.client() as c:
        res = ingest(c, "woocommerce", body, woo_headers(body))
        assert res["outcome"] == "accepted", res
        o = c.call("order.get", channel="woocommerce", account=WOO, external_id="727")
        assert [(ln["qty"], ln["line_total"]) for ln in o["lines"]] == [(2, "35.00"), (1, "20.00")]


X12_XREF = """
[channels.x12_850.accounts.BUYERCO]
item_xref = { "BP:BC-GR-01" = "GRINDER-SS", "00012345678905" = "FILTER-100" }
"""


def x12(po1_lines: list[str], po: str = "PO-9001") -> bytes:
    """One 850 with these PO1 segments (SE01 and CTT01 counted)."""
    sets = [
        "ST*850*0001",
        f"BEG*00*SA*{po}**20240301",
        "N1*ST*BuyerCo Warehouse 7*92*WH7",
        "N3*1200 Industrial Pkwy",
        "N4*Columbus*OH*43219*US",
        *po1_lines,
        f"CTT*{len(po1_lines)}",
    ]
    sets.append(f"SE*{len(sets) + 1}*0001")
    isa = raw("x12_850/two_pos.edi").decode().split("~")[0]
    segs = [isa, "GS*PO*BUYERCO*BACKORDERSITE*20240301*1253*905*X*004010", *sets, "GE*1*905", "IEA*1*000000905"]
    return ("~\n".join(segs) + "~\n").encode()


def test_x12_item_references_map_through_the_partners_cross_reference(intake_daemon):
    d = intake_daemon(X12_XREF)
    with d.client() as c:
        c.call("intake.alias", channel="x12_850", account="BUYERCO", channel_sku="UK:10614141000415", sku="MUG-RED")
        body = x12(
            [
                "PO1*10*2*EA*12.50*PE*BP*BC-GR-01",  # buyer part number: item_xref, qualified key
                "PO1*20*5*EA*1.10*PE*IN*X-1*EN*00012345678905",  # IN unknown, the EAN maps (plain key)
                "PO1*30*1*EA*7.25*PE*UK*10614141000415",  # GTIN: the journaled alias
                "PO1*40*1*EA*9.99*PE*VP*TEE-BLK-M*BP*BC-GR-01",  # the vendor part number wins
            ]
        )
        res = ingest(c, "x12_850", body)
        assert res["outcome"] == "accepted", res
        o = c.call("order.get", channel="x12_850", account="BUYERCO", external_id="PO-9001")
        assert [(ln["sku"], ln["qty"], ln["channel_line_id"], ln["line_total"]) for ln in o["lines"]] == [
            ("GRINDER-SS", 2, "10", "25.00"),
            ("FILTER-100", 5, "20", "5.50"),
            ("MUG-RED", 1, "30", "7.25"),
            ("TEE-BLK-M", 1, "40", "9.99"),
        ]
        # a PO1 whose references map nowhere (and one with none at all): missing_sku
        for po, po1 in (("PO-9002", "PO1*1*1*EA*1.00*PE*BP*NOT-MAPPED*UP*999"), ("PO-9003", "PO1*1*1*EA*1.00*PE")):
            res = ingest(c, "x12_850", x12([po1], po))
            assert (res["outcome"], res["orders"][0]["code"]) == ("rejected", "missing_sku"), res
        # another trading partner's cross-reference does not apply: the account's only
        other = x12(["PO1*1*2*EA*12.50*PE*BP*BC-GR-01"], "PO-9004").replace(b"BUYERCO", b"OTHERCO")
        res = ingest(c, "x12_850", other)
        assert (res["outcome"], res["orders"][0]["code"]) == ("rejected", "missing_sku"), res


def test_with_auto_pick_an_order_waiting_for_its_address_ships_once_it_is_set(intake_daemon):
    d = intake_daemon(STOCKED + "\n[fulfillment]\nauto_pick = true\n")
    with d.client() as c:
        c.call("stock.receive", sku="GRINDER-SS", qty=1)
        c.call("stock.receive", sku="FILTER-100", qty=3)
        oid = ingest(c, "amazon_sp", encode(amazon_without_restricted_data()))["orders"][0]["order_id"]
        o = c.call("order.get", order_id=oid)
        assert (o["status"], [sh["status"] for sh in o["shipments"]]) == ("picking", ["picking"])
        address = {"name": "J. Groß", "address1": "Hauptstr. 1", "city": "Berlin", "country_code": "DE"}
        o = c.call("order.address", order_id=oid, shipping_address=address)
        assert (o["status"], [sh["status"] for sh in o["shipments"]]) == ("shipped", ["shipped"])
        assert "Hauptstr. 1" in c.call("label.get", shipment_id=o["shipments"][0]["shipment_id"])["label"]
