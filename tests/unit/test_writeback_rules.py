"""The pure write-back rules (backorder/actors/writeback_rules.py) on a model built by the
real rules: which channel accounts hear of a shipment or a cancellation, what the notice
carries, available-to-sell and its coalescing, and the config checks of the accounts."""

from __future__ import annotations

import msgspec
from model_support import recording_world

from backorder import protocol as p
from backorder.actors import events as ev
from backorder.actors import order_rules, sku_rules, snapshot, writeback_rules
from backorder.actors.carrier import LocalCarrier
from backorder.actors.model import World
from backorder.config.settings import Settings, WritebackSettings

T0 = 1_709_251_200.0  # 2024-03-01T00:00:00Z
SHOP = {"base_url": "http://127.0.0.1:9", "credential_env": "TOKEN"}


def world(channels: dict) -> tuple[World, list[ev.Event]]:
    return recording_world({"channels": channels})


def _new_sku(w: World, sku: str):
    w.emit(ev.SkuConfigured(ts=T0, sku=sku, policy=w.default_policy))
    return w.skus[sku]


def submit(w: World, ext: str, qty: int, sku: str = "A", channel: str = "shopify", account: str = "main"):
    req = msgspec.convert(
        {
            "op": "order.submit",
            "channel": channel,
            "account": account,
            "external_id": ext,
            "lines": [{"sku": sku, "qty": qty}],
        },
        p.OrderSubmit,
    )
    o, _ = order_rules.submit(w, req, w.emit, T0)
    sku_rules.settle(w, w.skus[sku], w.emit, T0)
    order_rules.settle_order(w, o, w.emit, T0)  # allocated units go to picking
    return o


def channel_notices(log: list[ev.Event]) -> list[ev.NoticeQueued]:
    return [e for e in log if isinstance(e, ev.NoticeQueued) and e.audience == "channel"]


def test_a_shipment_of_a_channel_order_queues_one_fulfillment_in_the_same_step():
    w, log = world({"shopify": {"accounts": {"main": {"writeback": SHOP}}}})
    _new_sku(w, "A")
    sku_rules.receive(w, w.skus["A"], 5, None, w.emit, T0)
    o = submit(w, "5001", 2)
    (sid,) = o.shipments
    del log[:]
    order_rules.ship(w, sid, LocalCarrier(), w.emit, T0 + 60)
    assert [type(e).__name__ for e in log] == ["ShipmentShipped", "UnitsShipped", "NoticeQueued"]
    (n,) = channel_notices(log)
    tracking = log[0].tracking
    assert (n.kind, n.channel, n.order_id, n.email) == ("fulfillment", "shopify/main", o.order_id, "")
    assert n.data == {
        "external_id": "5001",
        "order_number": o.order_id,
        "shipment_id": sid,
        "carrier": "local",
        "tracking": tracking,
        "tracking_url": f"https://track.example/{tracking}",
        "complete": True,
        "ship_date": "2024-03-01T00:01:00Z",
        "items": [{"line_no": 1, "sku": "A", "qty": 2, "channel_line_id": None}],
    }
    assert w.notices[n.notice_id].status == "pending"


def test_orders_of_accounts_without_write_back_queue_nothing():
    w, log = world(
        {
            "shopify": {"accounts": {"main": {"writeback": {**SHOP, "fulfillment": False}}}},
            "woocommerce": {"enabled": False, "writeback": SHOP},
            "bigcommerce": {"accounts": {"store-a": {"writeback": {**SHOP, "store_hash": "a"}}}},
        }
    )
    _new_sku(w, "A")
    sku_rules.receive(w, w.skus["A"], 9, None, w.emit, T0)
    for ext, channel, account in (
        ("1", "shopify", "main"),
        ("2", "woocommerce", "default"),
        ("3", "web", "default"),
        ("4", "bigcommerce", "store-b"),  # another account, and the channel has no table of its own
    ):
        o = submit(w, ext, 1, channel=channel, account=account)
        order_rules.ship(w, o.shipments[0], LocalCarrier(), w.emit, T0)
    assert channel_notices(log) == []


def test_a_cancellation_is_written_back_where_the_channel_has_one():
    w, log = world(
        {
            "shopify": {"writeback": SHOP},  # the channel's table: its default account
            "amazon_sp": {"writeback": {**SHOP, "marketplace_id": "M"}},
        }
    )
    for ext, channel in (("s-1", "shopify"), ("a-1", "amazon_sp")):
        o = submit(w, ext, 1, channel=channel, account="kaffee.myshopify.com")
        order_rules.cancel(w, o.order_id, "customer asked", w.emit, T0)
    n, amazon = channel_notices(log)
    assert (n.kind, n.channel) == ("fulfillment_cancel", "shopify/*")  # any account of the channel
    assert n.data == {"external_id": "s-1", "order_number": "", "reason": "customer asked"}
    assert (amazon.kind, amazon.channel) == ("fulfillment_cancel", "amazon_sp/*")  # by its acknowledgement feed
    assert amazon.data["external_id"] == "a-1"


def test_available_to_sell_and_coalesced_stock_levels_survive_a_snapshot():
    wb = {**SHOP, "stock": True, "location_id": "1", "safety_buffer": 2, "share": 0.5, "item_ids": {"A": "77"}}
    w, log = world({"shopify": {"accounts": {"main": {"writeback": wb}}}})
    for sku in ("A", "B"):
        _new_sku(w, sku)
        sku_rules.receive(w, w.skus[sku], 13, None, w.emit, T0)
    ((target, settings),) = writeback_rules.stock_targets(w.settings).items()
    assert target == "shopify/main"
    first = writeback_rules.stock_levels(w, target, settings, {"A", "B"}, w.emit, T0)
    (n,) = first
    assert n.data == {"levels": [{"sku": "A", "item_id": "77", "quantity": 5}]}  # B is not mapped
    assert writeback_rules.stock_levels(w, target, settings, {"A"}, w.emit, T0) == []  # unchanged: nothing
    submit(w, "o1", 3)  # allocated: (13 - 3 - 2) x 0.5 = 4
    (second,) = writeback_rules.stock_levels(w, target, settings, {"A"}, w.emit, T0)
    assert second.data["levels"][0]["quantity"] == 4 and w.stock_told[(target, "A")] == (second.notice_id, 4)
    assert writeback_rules.live_levels(w, n) == []  # superseded by the second: never sent after it
    assert writeback_rules.live_levels(w, second) == second.data["levels"]
    restored = snapshot.restore(w.settings, snapshot.dump(w))
    assert restored.stock_told == w.stock_told
    assert writeback_rules.stock_levels(restored, target, settings, {"A"}, restored.evolve, T0) == []


def test_available_to_sell_is_never_negative_and_rounds_down():
    w, _ = world({})
    s = _new_sku(w, "A")
    wb = msgspec.convert({"safety_buffer": 3, "share": 0.34}, WritebackSettings)
    assert writeback_rules.available_to_sell(s, wb) == 0
    sku_rules.receive(w, s, 2, None, w.emit, T0)
    assert writeback_rules.available_to_sell(s, wb) == 0  # 2 - 3 < 0
    sku_rules.receive(w, s, 10, None, w.emit, T0)
    assert writeback_rules.available_to_sell(s, wb) == 3  # 9 x 0.34 = 3.06


def test_write_back_accounts_are_checked_in_the_config():
    settings = msgspec.convert(
        {
            "channels": {
                "shopify": {"accounts": {"a": {"writeback": {"stock": True}}}},
                "bigcommerce": {"writeback": {"base_url": "https://api.bigcommerce.com", "credential_env": "T"}},
                "amazon_sp": {"writeback": {"base_url": "https://x", "credential_file": "/f", "stock": True}},
                "csv": {"writeback": {}},
                "x12_850": {"writeback": {}},
            }
        },
        Settings,
    )
    assert [p for p in settings.problems() if "writeback" in p] == [
        "channels.shopify.accounts.a.writeback.base_url: required to write back to shopify",
        "channels.shopify.accounts.a.writeback: name credential_env or credential_file",
        "channels.shopify.accounts.a.writeback.location_id: required for Shopify inventory levels",
        "channels.bigcommerce.writeback.store_hash: required for BigCommerce",
        "channels.amazon_sp.writeback.marketplace_id: required for Amazon SP-API",
        "channels.amazon_sp.writeback.seller_id: required for Amazon stock levels",
        "channels.csv.writeback: csv orders have no channel API to write back to",
    ]


def test_a_pass_over_many_skus_is_batched_and_a_newer_level_supersedes_only_its_sku():
    wb = {**SHOP, "stock": True, "location_id": "1"}
    w, _ = world({"bigcommerce": {"writeback": {**wb, "store_hash": "h"}}})
    skus = [f"S{i:04d}" for i in range(writeback_rules.BATCH + 10)]
    for sku in skus:
        sku_rules.receive(w, _new_sku(w, sku), 3, None, w.emit, T0)
    ((target, settings),) = writeback_rules.stock_targets(w.settings).items()
    first, rest = writeback_rules.stock_levels(w, target, settings, skus, w.emit, T0)
    assert (len(first.data["levels"]), len(rest.data["levels"])) == (writeback_rules.BATCH, 10)
    sku_rules.receive(w, w.skus["S0001"], 1, None, w.emit, T0)
    (newer,) = writeback_rules.stock_levels(w, target, settings, ["S0001"], w.emit, T0)
    assert newer.data["levels"] == [{"sku": "S0001", "item_id": None, "quantity": 4}]
    live = writeback_rules.live_levels(w, first)
    assert len(live) == writeback_rules.BATCH - 1 and "S0001" not in {lv["sku"] for lv in live}
