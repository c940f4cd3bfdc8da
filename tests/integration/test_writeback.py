"""Write-back to the sales channels, end to end: the real daemon sends shipments,
cancellations and stock levels through its outbox to fake channel APIs on loopback (real
sockets, the documented request shapes, auth checked); a fulfillment arrives once across
kill -9; a 4xx is a dead notice with the channel's message; a 5xx or a timeout is retried;
a refused credential opens the account's breaker once."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from bo_support import line, read_db, stock, submit
from channel_fakes import FakeAmazon, FakeBigCommerce, FakeShopify, FakeWooCommerce
from notify_support import wait_for

FAST = """
[notifications]
backoff_base_s = 0.05
backoff_max_s = 0.2
max_attempts = 4
breaker_reset_s = 30
"""


def account(channel: str, url: str, env: str, **more) -> str:
    extra = "".join(f"{k} = {json.dumps(v)}\n" for k, v in more.items())
    return (
        f'[channels.{channel}.accounts.main.writeback]\nbase_url = "{url}"\ncredential_env = "{env}"\n'
        "timeout_s = 1.0\n" + extra
    )


def notices(c, **filters) -> list[dict]:
    got = c.call("notifications.list", limit=1000, **filters)["notifications"]
    return [n for n in got if n["audience"] == "channel"]


def ship_order(c, channel: str, external_id: str, *lines: dict) -> dict:
    """A channel order allocated in full and picked: returns the pick.confirm result."""
    for ln in lines:
        stock(c, ln["sku"], ln["qty"])
    order = submit(c, external_id, *lines, channel=channel, account="main")
    (sid,) = order["shipments"]
    return c.call("pick.confirm", shipment_id=sid)


def test_shopify_fulfillment_arrives_once_across_kill9_after_sending(sim, monkeypatch):
    """The daemon is killed after Shopify took the fulfillment and before the answer was
    recorded: after the restart the notice is sent again with the same content, finds the
    fulfillment there (its tracking number) and records it delivered; Shopify holds one."""
    monkeypatch.setenv("BO_TEST_SHOPIFY", "shpat_test")
    with FakeShopify("shpat_test") as shop:
        shop.add_order("5001", [(11, 2)])
        d = sim(FAST + account("shopify", shop.url, "BO_TEST_SHOPIFY"))
        shop.stall = True
        with d.client() as c:
            shipped = ship_order(c, "shopify", "5001", line("SKU-A", 2))
            assert shop.stalled.wait(20), "the fulfillment reached Shopify"
        d.kill9()
        shop.stall = False
        shop.release.set()
        assert len(shop.effects) == 1
        d.start()
        with d.client() as c:
            wait_for(lambda: notices(c, status="sent"), what="the fulfillment recorded delivered")
            (n,) = notices(c)
            assert n["kind"] == "fulfillment" and n["channel"] == "shopify/main" and n["attempts"] == 2
        ((fulfillment,),) = [[e["fulfillment"] for e in shop.effects]]
        assert fulfillment["tracking_info"] == {
            "number": shipped["tracking_number"],
            "company": "local",
            "url": f"https://track.example/{shipped['tracking_number']}",
        }
        assert fulfillment["line_items_by_fulfillment_order"] == [{"fulfillment_order_id": 14001}]
        assert shop.orders["5001"]["fulfillment_order"]["status"] == "closed"
        assert all(r["headers"]["X-Shopify-Access-Token"] == "shpat_test" for r in shop.calls())
        assert len(shop.calls("POST", "fulfillments.json")) == 1  # the resend found it and did not post again
        attempts = read_db(d.db, "SELECT COUNT(*) FROM events WHERE type = 'notice_attempted'")
        assert attempts == [(2,)]


def test_shopify_5xx_and_timeout_are_retried_then_delivered(sim, monkeypatch):
    monkeypatch.setenv("BO_TEST_SHOPIFY", "shpat_test")
    with FakeShopify("shpat_test") as shop:
        shop.add_order("5002", [(21, 1)])
        shop.fail = [500]
        shop.timeout_next = 1
        d = sim(FAST + account("shopify", shop.url, "BO_TEST_SHOPIFY"))
        with d.client() as c:
            ship_order(c, "shopify", "5002", line("SKU-B", 1))
            wait_for(lambda: notices(c, status="sent"), what="delivered after two failures")
            (n,) = notices(c)
            assert n["attempts"] == 3 and n["last_error"] is None
            assert c.call("health")["notifier"]["breakers"]["shopify/main"] == "closed"
        assert len(shop.effects) == 1 and shop.orders["5002"]["fulfillment_order"]["status"] == "closed"


def test_a_4xx_is_dead_at_once_with_the_channels_message(sim, monkeypatch):
    """Shopify answers 422 (the fulfillment order line does not exist): not retried, the
    notice is dead with Shopify's own error text; the breaker is not charged."""
    monkeypatch.setenv("BO_TEST_SHOPIFY", "shpat_test")
    with FakeShopify("shpat_test") as shop:
        shop.add_order("5003", [(31, 1)])
        shop.fail = [422]
        d = sim(FAST + account("shopify", shop.url, "BO_TEST_SHOPIFY"))
        with d.client() as c:
            ship_order(c, "shopify", "5003", line("SKU-C", 1))
            wait_for(lambda: notices(c, status="dead"), what="the notice dead")
            (n,) = notices(c)
            assert n["attempts"] == 1
            assert n["last_error"] == (
                "Rejected: shopify/main: HTTP 422: Internal error (on purpose) "
                "(GET /admin/api/2024-07/orders/5003/fulfillments.json)"
            )
            assert c.call("health")["notifier"]["breakers"]["shopify/main"] == "closed"
            assert c.call("notifications.retry", notice_id=n["notice_id"]) == {"retried": [n["notice_id"]]}
            wait_for(lambda: notices(c, status="sent"), what="sent once retried")
        assert len(shop.calls("POST", "fulfillments.json")) == 1


def test_a_refused_credential_opens_the_breaker_once_not_per_order(sim, monkeypatch):
    """An expired token: the first notice's 401 opens the account's breaker at once and is
    reported once (log and health); the other orders' notices wait, unattempted and not
    dead; a fixed token and a retry deliver every one."""
    monkeypatch.setenv("BO_TEST_SHOPIFY", "shpat_expired")
    with FakeShopify("shpat_good") as shop:
        for n in range(3):
            shop.add_order(str(5010 + n), [(40 + n, 1)])
        d = sim(FAST + account("shopify", shop.url, "BO_TEST_SHOPIFY"))
        with d.client() as c:
            for n in range(3):
                ship_order(c, "shopify", str(5010 + n), line(f"SKU-{n}", 1))
            wait_for(lambda: c.call("health")["notifier"]["credential_errors"], what="the credential reported")
            health = c.call("health")["notifier"]
            assert health["breakers"]["shopify/main"] == "open"
            assert "HTTP 401: [API] Invalid API key" in health["credential_errors"]["shopify/main"]
            got = notices(c)
            assert [n["status"] for n in got] == ["pending"] * 3
            assert sum(n["attempts"] for n in got) == 1  # one order paid for it, not each
        assert len(shop.calls()) == 1
        assert d.log_tail().count("channel_credential_rejected") == 1
        shop.credential = "shpat_expired"  # say the shop accepts it again (renewed)
        with d.client() as c:
            c.call("notifications.retry", all_dead=True)  # an operator's retry probes the breaker at once
            wait_for(lambda: len(notices(c, status="sent")) == 3, what="all three delivered")
            assert c.call("health")["notifier"]["credential_errors"] == {}
        assert len(shop.calls("POST", "fulfillments.json")) == 3


def test_shopify_cancel_and_stock_levels_coalesced(sim, monkeypatch):
    """An order cancelled here cancels the Shopify order (once, checked first); stock
    levels go out per mapped SKU as (on hand - allocated - buffer) x share, and many
    changes within one sync period give one level, not one per change."""
    monkeypatch.setenv("BO_TEST_SHOPIFY", "shpat_test")
    with FakeShopify("shpat_test") as shop:
        shop.add_order("5020", [(51, 5)])
        d = sim(
            FAST
            + account("shopify", shop.url, "BO_TEST_SHOPIFY", stock=True, location_id="777", safety_buffer=2, share=0.5)
            + '[channels.shopify.accounts.main.writeback.item_ids]\n"SKU-S" = "8801"\n'
            + "[channels.shopify]\nstock_sync_s = 0.5\n"
        )
        with d.client() as c:
            stock(c, "SKU-S", 12)
            stock(c, "SKU-UNMAPPED", 3)
            wait_for(lambda: shop.levels.get((777, 8801)) == 5, what="(12 - 2) x 0.5 = 5")
            for _ in range(5):  # five changes in one period
                c.call("stock.receive", sku="SKU-S", qty=2)
            wait_for(lambda: shop.levels.get((777, 8801)) == 10, what="(22 - 2) x 0.5 = 10")
            order = submit(c, "5020", line("SKU-S", 5), channel="shopify", account="main")
            wait_for(lambda: shop.levels.get((777, 8801)) == 7, what="(22 - 5 - 2) x 0.5 = 7 (rounded down)")
            c.call("order.cancel", order_id=order["order_id"], reason="customer asked")
            wait_for(lambda: shop.orders["5020"]["cancelled_at"], what="the Shopify order cancelled")
            wait_for(lambda: shop.levels.get((777, 8801)) == 10, what="the released units on sale again")
            kinds = [n["kind"] for n in notices(c, status="sent")]
        levels = [e["level"]["available"] for e in shop.effects if "level" in e]
        # one level per sync pass that saw a change, none for the unmapped SKU: the five
        # receipts land in one pass (or, rarely, straddle two), never five levels
        assert levels[0] == 5 and levels[-2:] == [7, 10] and levels[1:-2] in ([10], [levels[1], 10])
        assert kinds.count("fulfillment_cancel") == 1 and kinds.count("stock_level") == len(levels)
        d.restart()
        with d.client() as c:  # a restart queues nothing new: every level told is still true
            c.call("stock.receive", sku="SKU-UNMAPPED", qty=1)
            wait_for(lambda: c.call("stats")["notifications"]["pending"] == 0, what="idle")
            assert len(notices(c)) == len(levels) + 1


def test_woocommerce_bigcommerce_amazon_fulfilment_in_their_shapes(sim, monkeypatch):
    monkeypatch.setenv("BO_TEST_WOO", "ck_1:cs_2")
    monkeypatch.setenv("BO_TEST_BC", "bc-token")
    monkeypatch.setenv("BO_TEST_AMZ", "Atza|token")
    with (
        FakeWooCommerce("ck_1", "cs_2") as woo,
        FakeBigCommerce("bc-token", "abc123") as bc,
        FakeAmazon("Atza|token") as amz,
    ):
        woo.orders["7001"] = {"status": "processing", "notes": []}
        bc.add_order("8001", [(301, 2)])
        amz.items["111-2222222-3333333"] = [{"OrderItemId": "OI-1", "QuantityOrdered": 2, "QuantityShipped": 0}]
        bc.fail = [503]
        d = sim(
            FAST
            + account("woocommerce", woo.url, "BO_TEST_WOO")
            + account("bigcommerce", bc.url, "BO_TEST_BC", store_hash="abc123")
            + account("amazon_sp", amz.url, "BO_TEST_AMZ", marketplace_id="ATVPDKIKX0DER")
        )
        with d.client() as c:
            woo_ship = ship_order(c, "woocommerce", "7001", line("SKU-W", 1))
            bc_ship = ship_order(c, "bigcommerce", "8001", line("SKU-G", 2))
            amz_ship = ship_order(c, "amazon_sp", "111-2222222-3333333", line("SKU-Z", 2))
            wait_for(lambda: len(notices(c, status="sent")) == 3, what="three write-backs delivered")
            by_channel = {n["channel"]: n for n in notices(c)}
            assert by_channel["bigcommerce/main"]["attempts"] == 2  # the 503 was retried
        assert woo.orders["7001"]["status"] == "completed"
        (note,) = woo.orders["7001"]["notes"]
        assert woo_ship["tracking_number"] in note["note"] and note["customer_note"] is True
        assert all(r["headers"]["Authorization"].startswith("Basic ") for r in woo.calls())
        ((shipment,),) = [[e["shipment"] for e in bc.effects]]
        assert shipment["order_address_id"] == 55 and shipment["tracking_number"] == bc_ship["tracking_number"]
        assert shipment["items"] == [{"order_product_id": 301, "quantity": 2}]
        ((oid, ref),) = [e["package"] for e in amz.effects]
        pkg = amz.packages[(oid, ref)]
        assert oid == "111-2222222-3333333" and ref == amz_ship["shipment_id"].lstrip("S0")
        assert pkg["trackingNumber"] == amz_ship["tracking_number"] and pkg["orderItems"] == [
            {"orderItemId": "OI-1", "quantity": 2}
        ]
        assert pkg["carrierCode"] == "local" and pkg["shipDate"].startswith("2024-03-01T")


def test_x12_partner_gets_an_856_file(sim, tmp_path):
    """An order of the partner's account (``main``, not listed) takes the channel's table."""
    drop = tmp_path / "asn"
    d = sim(FAST + f'[channels.x12_850.writeback]\ndir = "{drop}"\nisa_id = "ACME"\ngs_id = "ACMEGS"\n')
    with d.client() as c:
        shipped = ship_order(c, "x12_850", "PO-4711", line("SKU-X", 3))
        wait_for(lambda: notices(c, status="sent"), what="the ASN written")
        (n,) = notices(c)
        assert n["channel"] == "x12_850/*"  # the channel's table serves its accounts without one
    text = (drop / f"{n['notice_id']}.856.x12").read_text()
    segments = [s.strip() for s in text.split("~") if s.strip()]
    assert segments[0].startswith("ISA*00*") and "*ZZ*ACME           *" in segments[0]
    assert segments[1].startswith("GS*SH*BACKORDER*ACMEGS*")
    assert segments[2] == "ST*856*0001"
    assert f"REF*CN*{shipped['tracking_number']}" in segments
    assert "PRF*PO-4711" in segments and "LIN*1*VP*SKU-X" in segments and "SN1**3*EA" in segments
    se = next(s for s in segments if s.startswith("SE*"))
    assert se == f"SE*{segments.index(se) - 2 + 1}*0001"


def test_x12_partner_gets_an_855_rejecting_the_lines_of_a_cancelled_order(sim, tmp_path):
    drop = tmp_path / "edi"
    d = sim(FAST + f'[channels.x12_850.writeback]\ndir = "{drop}"\nisa_id = "ACME"\ngs_id = "ACMEGS"\n')
    with d.client() as c:
        stock(c, "SKU-Y", 1)
        order = submit(c, "PO-4712", line("SKU-Y", 4), line("SKU-Q", 2), channel="x12_850", account="main")
        c.call("order.cancel", order_id=order["order_id"], reason="partner cancelled")
        wait_for(lambda: notices(c, status="sent"), what="the 855 written")
        (n,) = notices(c)
        assert n["kind"] == "fulfillment_cancel" and n["channel"] == "x12_850/*"
    text = (drop / f"{n['notice_id']}.855.x12").read_text()
    segments = [s.strip() for s in text.split("~") if s.strip()]
    assert segments[1].startswith("GS*PR*BACKORDER*ACMEGS*") and segments[2] == "ST*855*0001"
    assert segments[3].startswith("BAK*00*RD*PO-4712*2024")
    assert segments[4:9] == ["PO1*1*4*EA***VP*SKU-Y", "ACK*IR*4*EA", "PO1*2*2*EA***VP*SKU-Q", "ACK*IR*2*EA", "CTT*2"]
    assert segments[9] == "SE*8*0001"


def test_stock_levels_reach_woocommerce_bigcommerce_and_amazon_in_their_shapes(sim, monkeypatch):
    monkeypatch.setenv("BO_TEST_WOO", "ck_1:cs_2")
    monkeypatch.setenv("BO_TEST_BC", "bc-token")
    monkeypatch.setenv("BO_TEST_AMZ", "Atza|token")
    with (
        FakeWooCommerce("ck_1", "cs_2") as woo,
        FakeBigCommerce("bc-token", "abc123") as bc,
        FakeAmazon("Atza|token") as amz,
    ):
        d = sim(
            FAST
            + account("woocommerce", woo.url, "BO_TEST_WOO", stock=True)
            + '[channels.woocommerce.accounts.main.writeback.item_ids]\n"SKU-K" = "412"\n'
            + account("bigcommerce", bc.url, "BO_TEST_BC", store_hash="abc123", stock=True, location_id="2")
            + account(
                "amazon_sp",
                amz.url,
                "BO_TEST_AMZ",
                marketplace_id="ATVPDKIKX0DER",
                seller_id="A1SELL",
                stock=True,
                share=0.5,
            )
            + "".join(f"[channels.{ch}]\nstock_sync_s = 0.3\n" for ch in ("woocommerce", "bigcommerce", "amazon_sp"))
        )
        with d.client() as c:
            stock(c, "SKU-K", 9)
            wait_for(
                lambda: woo.stock.get("412") == 9 and bc.inventory.get("SKU-K") == 9 and amz.listings.get("SKU-K") == 4,
                what="the level at every channel",
            )
        ((item,),) = [e["inventory"] for e in bc.effects]
        assert item == {"location_id": 2, "sku": "SKU-K", "quantity": 9}
        (patch,) = amz.calls("PATCH")
        assert patch["path"] == "/listings/2021-08-01/items/A1SELL/SKU-K?marketplaceIds=ATVPDKIKX0DER"
        body = json.loads(patch["raw"])
        assert body["productType"] == "PRODUCT" and body["patches"] == [
            {
                "op": "replace",
                "path": "/attributes/fulfillment_availability",
                "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": 4}],
            }
        ]
        assert json.loads(woo.calls("POST", "products/batch")[0]["raw"]) == {
            "update": [{"id": 412, "manage_stock": True, "stock_quantity": 9}]
        }


def test_bigcommerce_refusal_is_dead_with_its_message_and_woocommerce_resend_is_noted_once(sim, monkeypatch):
    """BigCommerce refuses a shipment when nothing is left to ship (shipped from its own admin;
    400 with its message): dead at once, with that message. A WooCommerce note already carrying the notice id (a resend after a crash)
    is not added again."""
    monkeypatch.setenv("BO_TEST_WOO", "ck_1:cs_2")
    monkeypatch.setenv("BO_TEST_BC", "bc-token")
    with FakeWooCommerce("ck_1", "cs_2") as woo, FakeBigCommerce("bc-token", "abc123") as bc:
        bc.add_order("8002", [(302, 1)])
        bc.orders["8002"]["products"][0]["quantity_shipped"] = 1  # shipped from the BigCommerce admin already
        woo.orders["7002"] = {"status": "processing", "notes": [{"id": 1, "note": "Shipped ... [backorder N0000002]"}]}
        d = sim(
            FAST
            + account("woocommerce", woo.url, "BO_TEST_WOO")
            + account("bigcommerce", bc.url, "BO_TEST_BC", store_hash="abc123")
        )
        with d.client() as c:
            ship_order(c, "bigcommerce", "8002", line("SKU-G", 1))  # notice N0000001
            ship_order(c, "woocommerce", "7002", line("SKU-W", 1))  # notice N0000002
            wait_for(lambda: notices(c, status="dead") and notices(c, status="sent"), what="one dead, one sent")
            (dead,) = notices(c, status="dead")
            assert dead["channel"] == "bigcommerce/main" and dead["attempts"] == 1
            assert dead["last_error"] == (
                "Rejected: bigcommerce/main: HTTP 400: The field 'items' is invalid. "
                "(POST /stores/abc123/v2/orders/8002/shipments)"
            )
        assert bc.effects == []
        assert len(woo.orders["7002"]["notes"]) == 1 and woo.orders["7002"]["status"] == "completed"


def test_stock_levels_under_the_stepped_clock_go_out_on_advance(make_daemon, monkeypatch):
    """Under the stepped clock the stock sync runs in engine time: nothing between
    advances; an advance past a sync period queues and sends the changed level."""
    monkeypatch.setenv("BO_TEST_SHOPIFY", "shpat_test")
    with FakeShopify("shpat_test") as shop:
        d = make_daemon(
            '[daemon]\nclock = "stepped"\nclock_start = "2026-01-05T09:00:00Z"\n'
            + account("shopify", shop.url, "BO_TEST_SHOPIFY", stock=True, location_id="5")
            + '[channels.shopify.accounts.main.writeback.item_ids]\n"SKU-T" = "31"\n'
            + "[channels.shopify]\nstock_sync_s = 60.0\n"
        )
        with d.client() as c:
            stock(c, "SKU-T", 4)
            assert shop.levels == {} and notices(c) == []  # engine time has not moved
            c.call("clock.advance", seconds=61)
            wait_for(lambda: shop.levels == {(5, 31): 4}, what="the level after the advance")
            (n,) = notices(c, status="sent")
            assert n["kind"] == "stock_level"


def test_a_reload_adds_a_write_back_account_with_its_own_breaker(sim, monkeypatch):
    """An account configured while the daemon runs (SIGHUP) gets its delivery channel and
    breaker: the next shipment of that account is written back; the one shipped before
    the reload was not (no account then, nothing queued)."""
    import signal

    monkeypatch.setenv("BO_TEST_SHOPIFY", "shpat_test")
    with FakeShopify("shpat_test") as shop:
        shop.add_order("5100", [(1, 1)])
        shop.add_order("5101", [(2, 1)])
        d = sim(FAST)
        with d.client() as c:
            ship_order(c, "shopify", "5100", line("SKU-R", 1))
            assert notices(c) == []
            d.config.write_text(d.config.read_text() + account("shopify", shop.url, "BO_TEST_SHOPIFY"))
            reloads = d.log.read_text().count('"event":"config_reloaded"')
            d.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: d.log.read_text().count('"event":"config_reloaded"') > reloads, what="the reload")
            ship_order(c, "shopify", "5101", line("SKU-R", 1))
            wait_for(lambda: notices(c, status="sent"), what="the second shipment written back")
            assert c.call("health")["notifier"]["breakers"]["shopify/main"] == "closed"
        assert [e["fulfillment"]["line_items_by_fulfillment_order"] for e in shop.effects] == [
            [{"fulfillment_order_id": 14101}]
        ]


def test_an_older_stock_level_held_back_is_never_sent_after_a_newer_one(sim, monkeypatch):
    """The account refuses our token while a level waits; the stock moves and a newer level
    is queued; once the token is good again the older notice is recorded superseded without
    a request, and only the newer number reaches Shopify."""
    monkeypatch.setenv("BO_TEST_SHOPIFY", "shpat_test")
    with FakeShopify("shpat_other") as shop:
        d = sim(
            FAST
            + account("shopify", shop.url, "BO_TEST_SHOPIFY", stock=True, location_id="9")
            + '[channels.shopify.accounts.main.writeback.item_ids]\n"SKU-H" = "61"\n'
            + "[channels.shopify]\nstock_sync_s = 0.3\n"
        )
        with d.client() as c:
            stock(c, "SKU-H", 3)
            wait_for(lambda: c.call("health")["notifier"]["credential_errors"], what="the token refused")
            c.call("stock.receive", sku="SKU-H", qty=4)
            wait_for(lambda: len(notices(c)) == 2, what="a newer level queued behind the open breaker")
            shop.credential = "shpat_test"
            c.call("notifications.retry", all_dead=True)  # probes the breaker now
            wait_for(lambda: len(notices(c, status="sent")) == 2, what="both recorded")
            old, new = notices(c)
        assert [e["level"]["available"] for e in shop.effects] == [7]
        delivered = read_db(
            d.db,
            "SELECT json_extract(body, '$.notice_id'), json_extract(body, '$.response') FROM events "
            "WHERE type = 'notice_delivered'",
        )
        assert delivered == [(old["notice_id"], "superseded by newer levels"), (new["notice_id"], "1 level(s) set")]


def delivered(d) -> list[str]:
    """The receipts of the delivered notices, as journaled."""
    rows = read_db(d.db, "SELECT body FROM events WHERE type = 'notice_delivered' ORDER BY seq")
    return [json.loads(b)["response"] for (b,) in rows]


def amazon_cancel(c, external_id: str) -> str:
    """An Amazon order waiting for stock, cancelled here: the id of its cancellation notice."""
    order = submit(c, external_id, line("SKU-AMZ", 1), channel="amazon_sp", account="main")
    c.call("order.cancel", order_id=order["order_id"], reason="out of stock")
    (n,) = [n for n in notices(c) if n["kind"] == "fulfillment_cancel" and n["order_id"] == order["order_id"]]
    return n["notice_id"]


def test_amazon_cancellation_feed_is_read_back_and_a_report_error_is_a_dead_notice(sim, monkeypatch):
    """The acknowledgement feed is polled through the outbox's retries until Amazon has
    processed it (the account's breaker stays closed); an error in the processing report is
    a dead notice with Amazon's words; a retry after the fix submits a new feed."""
    monkeypatch.setenv("BO_TEST_AMZ", "Atza|token")
    with FakeAmazon("Atza|token") as amz:
        amz.feed_polls = 2
        amz.refused_orders["111-0000000-0000001"] = "The order id 111-0000000-0000001 was not found in the system."
        d = sim(FAST + account("amazon_sp", amz.url, "BO_TEST_AMZ", marketplace_id="ATVPDKIKX0DER", seller_id="S1"))
        with d.client() as c:
            nid = amazon_cancel(c, "111-0000000-0000001")
            wait_for(lambda: notices(c, status="dead"), what="the refused cancellation dead")
            (n,) = notices(c, status="dead")
            assert n["attempts"] == 3  # two reads while Amazon processed it, then its report
            assert "feed F1 DONE: 18028: The order id 111-0000000-0000001 was not found" in n["last_error"]
            assert c.call("health")["notifier"]["breakers"]["amazon_sp/main"] == "closed"
            amz.refused_orders.clear()
            c.call("notifications.retry", notice_id=nid)
            wait_for(lambda: notices(c, status="sent"), what="the new feed processed")
        assert len(amz.feeds) == 2
        assert delivered(d) == ["feed F2 DONE (order acknowledgement Failure processed)"]
        (message,) = {ET.fromstring(f["document"]).findtext("Message/MessageID") for f in amz.feeds}
        assert message == str(int(nid[1:]))  # our notice id names the feed's message
        feeds = read_db(d.db, "SELECT body FROM events WHERE type = 'notice_feed' ORDER BY seq")
        assert [(json.loads(b)["feed_id"], json.loads(b)["state"]) for (b,) in feeds] == [
            ("F1", "submitted"),
            ("F1", "refused"),
            ("F2", "submitted"),
        ]


def test_amazon_cancellation_feed_is_submitted_once_across_kill9(sim, monkeypatch):
    """The daemon is killed while Amazon is still processing the feed: after the restart the
    notice reads that same feed (its id is in the journal) and is delivered; one feed."""
    monkeypatch.setenv("BO_TEST_AMZ", "Atza|token")
    with FakeAmazon("Atza|token") as amz:
        amz.feed_polls = 10**6
        d = sim(FAST + account("amazon_sp", amz.url, "BO_TEST_AMZ", marketplace_id="ATVPDKIKX0DER"))
        with d.client() as c:
            amazon_cancel(c, "111-0000000-0000002")
            # more reads than max_attempts: still processing is never a dead notice
            wait_for(lambda: len(amz.calls("GET", "/feeds/2021-06-30/feeds/F1")) >= 6, what="the feed polled")
            assert notices(c, status="pending")
        d.kill9()
        amz.feed_polls = 0
        d.start()
        with d.client() as c:
            wait_for(lambda: notices(c, status="sent"), what="the cancellation delivered after the restart")
        assert len(amz.feeds) == 1 and len(amz.calls("POST", "/feeds/2021-06-30/feeds")) == 1
        assert delivered(d) == ["feed F1 DONE (order acknowledgement Failure processed)"]
        submitted = read_db(d.db, "SELECT COUNT(*) FROM events WHERE type = 'notice_feed'")
        assert submitted == [(1,)]
