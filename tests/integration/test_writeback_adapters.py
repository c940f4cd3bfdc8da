"""The channel adapters on their own against the fake channel APIs (real sockets): a
partial shipment with the channel's line references fulfils just those lines, and a
resend of the same notice changes nothing at the channel."""

from __future__ import annotations

import json

import msgspec
import pytest
import trio
from channel_fakes import FakeAmazon, FakeBigCommerce, FakeShopify

from backorder.actors.events import NoticeQueued
from backorder.config.settings import Settings, WritebackSettings
from backorder.notify.channels import Rejected
from backorder.notify.render import Rendered
from backorder.writeback.amazon_sp import AmazonSpChannel
from backorder.writeback.bigcommerce import BigCommerceChannel
from backorder.writeback.shopify import ShopifyChannel

RENDERED = Rendered(subject="", text="", html="")


def fulfillment(
    notice_id: str, external_id: str, items: list[tuple[int, str, int, str | None]], **more
) -> NoticeQueued:
    return NoticeQueued(
        ts=0.0,
        notice_id=notice_id,
        kind="fulfillment",
        email="",
        subject="",
        body="",
        channel="x/main",
        audience="channel",
        data={
            "external_id": external_id,
            "shipment_id": "S0000042",
            "carrier": "ups",
            "tracking": more.get("tracking", "1Z999"),
            "tracking_url": "https://track.example/1Z999",
            "complete": False,
            "ship_date": "2024-03-01T10:00:00Z",
            "items": [{"line_no": n, "sku": sku, "qty": q, "channel_line_id": ref} for n, sku, q, ref in items],
        },
    )


def wb(url: str, env: str, **more) -> WritebackSettings:
    return msgspec.convert({"base_url": url, "credential_env": env, **more}, WritebackSettings)


def send_twice(channel, notice: NoticeQueued) -> list[str]:
    async def main() -> list[str]:
        return [await channel.send(notice, RENDERED), await channel.send(notice, RENDERED)]

    return trio.run(main)


def test_shopify_partial_shipment_fulfils_the_referenced_lines_once(monkeypatch):
    monkeypatch.setenv("BO_TEST_SHOPIFY", "tok")
    with FakeShopify("tok") as shop:
        shop.add_order("6001", [(71, 2), (72, 3)])
        channel = ShopifyChannel("shopify/main", wb(shop.url, "BO_TEST_SHOPIFY"), Settings())
        first, again = send_twice(channel, fulfillment("N1", "6001", [(2, "B", 2, "72")]))
        assert first == "fulfillment 7000" and again == "fulfillment 7000 already there"
        ((f,),) = [[e["fulfillment"] for e in shop.effects]]
        assert f["line_items_by_fulfillment_order"] == [
            {"fulfillment_order_id": 15001, "fulfillment_order_line_items": [{"id": 172, "quantity": 2}]}
        ]
        fo = shop.orders["6001"]["fulfillment_order"]
        assert fo["status"] == "in_progress" and [li["fulfillable_quantity"] for li in fo["line_items"]] == [2, 1]


def test_amazon_confirmation_by_order_item_id_is_an_edit_when_sent_again(monkeypatch):
    monkeypatch.setenv("BO_TEST_AMZ", "Atza|x")
    with FakeAmazon("Atza|x") as amz:
        amz.items["111-1"] = [{"OrderItemId": "OI-9", "QuantityOrdered": 4, "QuantityShipped": 0}]
        channel = AmazonSpChannel("amazon_sp/main", wb(amz.url, "BO_TEST_AMZ", marketplace_id="M1"), Settings())
        assert send_twice(channel, fulfillment("N2", "111-1", [(1, "A", 1, "OI-9")])) == ["package 42 confirmed"] * 2
        assert list(amz.packages) == [("111-1", "42")]  # the same package reference: one package
        (call, _) = amz.calls("POST")
        assert json.loads(call["raw"])["packageDetail"]["orderItems"] == [{"orderItemId": "OI-9", "quantity": 1}]
        assert not amz.calls("GET")  # the references came with the notice


def test_bigcommerce_shipment_by_order_product_id_and_not_twice(monkeypatch):
    monkeypatch.setenv("BO_TEST_BC", "t")
    with FakeBigCommerce("t", "h1") as bc:
        bc.add_order("9001", [(401, 1), (402, 5)])
        channel = BigCommerceChannel("bigcommerce/main", wb(bc.url, "BO_TEST_BC", store_hash="h1"), Settings())
        first, again = send_twice(channel, fulfillment("N3", "9001", [(2, "B", 3, "402")]))
        assert (first, again) == ("shipment 1", "shipment 1 already there")
        assert [p["quantity_shipped"] for p in bc.orders["9001"]["products"]] == [0, 3]


def test_amazon_levels_go_on_past_a_refused_listing_then_report_it(monkeypatch):
    """A listing answering 200 INVALID does not stop the notice's other levels; the notice
    then fails as Rejected (dead) with Amazon's issue."""
    monkeypatch.setenv("BO_TEST_AMZ", "Atza|x")
    with FakeAmazon("Atza|x") as amz:
        amz.invalid_skus = {"A"}
        channel = AmazonSpChannel(
            "amazon_sp/main", wb(amz.url, "BO_TEST_AMZ", marketplace_id="M1", seller_id="S1"), Settings()
        )
        notice = msgspec.structs.replace(
            fulfillment("N4", "x", []),
            kind="stock_level",
            data={
                "levels": [{"sku": "A", "item_id": None, "quantity": 1}, {"sku": "B", "item_id": None, "quantity": 2}]
            },
        )
        with pytest.raises(Rejected) as refused:
            trio.run(channel.send, notice, RENDERED)
        assert str(refused.value) == (
            "1 of 2 levels refused: A: amazon_sp/main: listing A INVALID: 'fulfillment_availability' is not allowed"
        )
        assert amz.listings == {"B": 2}


def amazon(url: str) -> AmazonSpChannel:
    return AmazonSpChannel("amazon_sp/main", wb(url, "BO_TEST_AMZ", marketplace_id="M1", seller_id="S1"), Settings())


def cancellation(notice_id: str, external_id: str, order_number: str) -> NoticeQueued:
    """A ``fulfillment_cancel`` notice of an Amazon order."""
    return msgspec.structs.replace(
        fulfillment(notice_id, external_id, []),
        kind="fulfillment_cancel",
        data={"external_id": external_id, "order_number": order_number, "reason": "customer asked"},
    )


def test_amazon_cancellation_is_an_order_acknowledgement_feed(monkeypatch):
    """Amazon takes a seller's cancellation as a POST_ORDER_ACKNOWLEDGEMENT_DATA feed: the
    document is created, the XML uploaded to its presigned URL (without our token), the feed
    submitted for the marketplace; the XML says Failure for the whole order."""
    import xml.etree.ElementTree as ET

    monkeypatch.setenv("BO_TEST_AMZ", "Atza|x")
    with FakeAmazon("Atza|x") as amz:
        channel = amazon(amz.url)
        notice = cancellation("N5", "111-2", "A&B-7")
        assert trio.run(channel.send, notice, RENDERED) == "feed F1 DONE (order acknowledgement Failure processed)"
        (feed,) = amz.feeds
        assert feed["feedType"] == "POST_ORDER_ACKNOWLEDGEMENT_DATA" and feed["marketplaceIds"] == ["M1"]
        root = ET.fromstring(feed["document"])
        assert root.findtext("MessageType") == "OrderAcknowledgement"
        assert root.findtext("Header/MerchantIdentifier") == "S1"
        ack = root.find("Message/OrderAcknowledgement")
        assert ack is not None and ack.findtext("AmazonOrderID") == "111-2"
        assert ack.findtext("MerchantOrderID") == "A&B-7" and ack.findtext("StatusCode") == "Failure"
        assert root.findtext("Message/MessageID") == "5"  # our notice N5: the report's result names it
        (upload,) = amz.s3.calls("PUT")
        assert "x-amz-access-token" not in {k.lower() for k in upload["headers"]}
        assert upload["headers"]["Content-Type"] == "text/xml; charset=UTF-8"
        (download,) = amz.s3.calls("GET")  # the processing report, read back without our token
        assert "x-amz-access-token" not in {k.lower() for k in download["headers"]}
        # the same notice again reads the feed it was taken as: no second feed
        assert trio.run(channel.send, notice, RENDERED).startswith("feed F1 DONE")
        assert len(amz.feeds) == 1
        amz.fail = [400]  # Amazon refuses another notice's document: dead with its message
        with pytest.raises(Rejected, match="HTTP 400: Internal error"):
            trio.run(channel.send, msgspec.structs.replace(notice, notice_id="N6"), RENDERED)


def test_amazon_cancellation_feed_is_polled_then_its_report_error_is_a_refusal(monkeypatch):
    """The feed is read until Amazon has processed it (``NotYet`` meanwhile: the outbox asks
    again, the breaker is spared); an error in the processing report for our message is a
    refusal with Amazon's words, and forgets the feed, so a retry submits a new one."""
    from backorder.notify.channels import NotYet

    monkeypatch.setenv("BO_TEST_AMZ", "Atza|x")
    with FakeAmazon("Atza|x") as amz:
        channel = amazon(amz.url)
        notice = cancellation("N0000042", "111-3", "")
        amz.feed_polls = 2
        amz.refused_orders["111-3"] = "The order id 111-3 was not found in the system."
        for _ in range(2):
            with pytest.raises(NotYet, match="feed F1 IN_PROGRESS"):
                trio.run(channel.send, notice, RENDERED)
        with pytest.raises(Rejected, match="feed F1 DONE: 18028: The order id 111-3 was not found in the system."):
            trio.run(channel.send, notice, RENDERED)
        assert len(amz.feeds) == 1 and len(amz.calls("GET", "/feeds/2021-06-30/feeds/F1")) == 3
        amz.refused_orders.clear()  # fixed: the retry submits a new feed, which goes through
        amz.feed_polls = 0
        assert trio.run(channel.send, notice, RENDERED).startswith("feed F2 ")
        assert len(amz.feeds) == 2
