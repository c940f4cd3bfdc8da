"""Pilot test of the picking screen with a 3PL, against a real daemon process and a fake
ShipBob on loopback: the 3PL's line shows routing on, the backlog against its thresholds
and the order waiting at the 3PL (which is not in the site's pick list); the order screen
shows a cancellation the 3PL answered too late for."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from test_live import until
from textual.widgets import Static

from backorder.launcher import wait_until
from backorder.tui.app import BackorderApp

sys.path.insert(0, str(Path(__file__).parent.parent / "integration"))  # the fake 3PL
from threepl_fakes import FakeShipBob

pytestmark = pytest.mark.asyncio

CONFIG = """
[threepl]
enabled = true
base_url = "{url}"
credential_env = "BO_TEST_SHIPBOB"
webhook_secret_env = "BO_TEST_SHIPBOB_HOOK"
channel_id = "77"
backlog_on_hours = 0.2
backlog_off_hours = 0.1
min_pick_rate_per_hour = 10.0
inventory_poll_s = 3600.0
"""
ADDRESS = {"name": "Ada", "address1": "1 Main St", "city": "Springfield", "country_code": "US"}


async def test_the_picking_screen_shows_the_3pl_and_its_routed_orders(make_daemon, monkeypatch):
    monkeypatch.setenv("BO_TEST_SHIPBOB", "pat_test")
    monkeypatch.setenv("BO_TEST_SHIPBOB_HOOK", "secret")
    with FakeShipBob("pat_test", "77", {"A": 5}) as fake:
        site = make_daemon(CONFIG.format(url=fake.url))
        with site.client() as c:
            c.call("sku.configure", sku="A")
            c.call("stock.receive", sku="A", qty=10)
            # the first inventory poll runs at start, on its own task: wait for its mark
            wait_until(lambda: c.call("threepl.status")["inventory"]["polls"] > 0, 10, 0.05, "the first poll")
            site_orders = [
                c.call(
                    "order.submit",
                    channel="web",
                    external_id=f"W{n}",
                    shipping_address=ADDRESS,
                    lines=[{"sku": "A", "qty": 1}],
                )
                for n in range(2)
            ]  # 2 units await pick: 0.2 h at the floor of 10/h
            routed = c.call(
                "order.submit",
                channel="web",
                external_id="W9",
                shipping_address=ADDRESS,
                lines=[{"sku": "A", "qty": 1}],
            )
            assert c.call("order.get", order_id=routed["order_id"])["routed_to"] == "shipbob"
        app = BackorderApp(str(site.socket))
        async with app.run_test(size=(200, 48)) as pilot:
            await until(pilot, lambda: app.loaded, what="first load")
            await pilot.press("k")
            await until(pilot, lambda: getattr(app.screen, "NAME", "") == "picking", what="picking screen")
            line = lambda: str(app.screen.query_one("#threepl-head", Static).render())  # noqa: E731
            await until(pilot, lambda: "routing on" in line(), what="the 3PL's line")
            text = line()
            assert "3PL shipbob: routing on" in text and "pick backlog 0.20 h (on at 0.2 h, off at 0.1 h)" in text
            assert f"1 at the 3PL: {routed['order_id']}" in text
            assert set(app.screen.shipments) == {o["shipments"][0] for o in site_orders}  # not the routed one
            # the 3PL picked it already: a cancellation is too late, and the order screen says so
            oid = routed["order_id"]
            with site.client() as c:
                wait_until(lambda: fake.creates[oid] == 1, 10, 0.05, "the order created at the 3PL")
                fake.pick(oid)
                c.call("order.cancel", order_id=oid)
            await app.open_order(oid)
            head = lambda: str(app.screen.query_one("#order-head", Static).render())  # noqa: E731
            await until(pilot, lambda: "threepl_too_late" in head(), what="the 3PL's answer on the order screen")
            assert "at 3PL shipbob, cancel too_late threepl_too_late: shipment" in head()
            assert "Shipment is already picked" in head() and "picking" in head()
