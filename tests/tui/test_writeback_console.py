"""Pilot test of the notifications screen with write-back, against a real daemon process
and a fake Shopify on loopback: a write-back notice is listed under its channel account,
and a refused credential shows once, on that account's breaker."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from test_live import until
from textual.widgets import DataTable, Static

from backorder.tui.app import BackorderApp

sys.path.insert(0, str(Path(__file__).parent.parent / "integration"))  # the fake channel APIs
from channel_fakes import FakeShopify

pytestmark = pytest.mark.asyncio

CONFIG = """
[notifications]
breaker_reset_s = 60
[channels.shopify.accounts.main.writeback]
base_url = "{url}"
credential_env = "BO_TEST_SHOPIFY"
"""


async def test_a_refused_credential_shows_on_the_accounts_breaker(make_daemon, monkeypatch):
    monkeypatch.setenv("BO_TEST_SHOPIFY", "shpat_expired")
    with FakeShopify("shpat_good") as shop:
        shop.add_order("5001", [(11, 1)])
        site = make_daemon(CONFIG.format(url=shop.url))
        with site.client() as c:
            c.call("sku.configure", sku="A")
            c.call("stock.receive", sku="A", qty=1)
            order = c.call(
                "order.submit", channel="shopify", account="main", external_id="5001", lines=[{"sku": "A", "qty": 1}]
            )
            c.call("pick.confirm", shipment_id=order["shipments"][0])
        app = BackorderApp(str(site.socket))
        async with app.run_test(size=(160, 48)) as pilot:
            await until(pilot, lambda: app.loaded, what="first load")
            await pilot.press("n")
            await until(pilot, lambda: getattr(app.screen, "NAME", "") == "notifications", what="notifications")
            head = lambda: str(app.screen.query_one("#notif-head", Static).render())  # noqa: E731
            await until(pilot, lambda: "credential refused" in head(), what="the refused credential")
            assert "shopify/main open (credential refused)" in head()
            (nid,) = app.screen.notices
            table = app.screen.query_one("#notices", DataTable)
            assert str(table.get_cell(nid, "Kind")) == "fulfillment"
            assert str(table.get_cell(nid, "Channel")) == "shopify/main"
            assert str(table.get_cell(nid, "Status")) == "pending"
            assert str(table.get_cell(nid, "Last error")).startswith(
                "CredentialRejected: shopify/main: HTTP 401: [API]"
            )
