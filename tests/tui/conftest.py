"""TUI tests: the real Textual app (Pilot) against a real daemon process.

These tests run on asyncio (pytest-asyncio, strict mode: each async test is marked);
the daemon is the trio process started by the sync fixtures of tests/conftest.py.
The daemon's clock is simulated and stands (almost) still, so every date, waiting time
and id the screens show is the same on every run.
"""

from __future__ import annotations

import pytest

SITE = """
[daemon]
clock = "simulated"
clock_start = "2026-01-05T09:00:00Z"
clock_speed = 0.000001

[default_policy]
reorder_point = 0
order_up_to = 0
lead_time_days = 3

[skus.WIDGET-RED]
reorder_point = 5
order_up_to = 20
lead_time_days = 3
source = "supplier:acme"

[skus.GADGET-BLUE]
reorder_point = 2
order_up_to = 10
lead_time_days = 2
source = "transfer:north-dc"
"""


def seed_site(c) -> None:
    """A small fixed story: stock, orders that wait, reorders raised, a pick waiting."""
    c.call("stock.receive", sku="WIDGET-RED", qty=3, reference="PO-000001")
    c.call("order.submit", channel="web", external_id="W-1001", order_number="#1001",
           customer={"name": "Ada Lovelace"}, lines=[{"sku": "WIDGET-RED", "qty": 2, "unit_price": "9.50"}])
    c.call("order.submit", channel="marketplace", account="acme-store", external_id="M-77",
           lines=[{"sku": "GADGET-BLUE", "qty": 9, "unit_price": "24.00"}])
    c.call("order.submit", channel="phone", external_id="P-5", ship_complete=True,
           lines=[{"sku": "WIDGET-RED", "qty": 1}, {"sku": "GADGET-BLUE", "qty": 2}])
    c.call("order.submit", channel="web", external_id="W-1002", rush=True,
           lines=[{"sku": "SPROCKET", "qty": 4, "unit_price": "80.00"}])
    c.call("order.submit", channel="edi", external_id="EDI-9",
           lines=[{"sku": "WIDGET-RED", "qty": 6}, {"sku": "SPROCKET", "qty": 1}])


@pytest.fixture
def site(make_daemon):
    d = make_daemon(SITE)
    with d.client() as c:
        seed_site(c)
    return d
