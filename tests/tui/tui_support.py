"""The fixed site of the TUI tests: its config and the story that seeds it."""

from __future__ import annotations

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

# Customer notices are queued only for a channel with a route; these orders carry no
# e-mail address, so their notices are `unrouted`: in the journal the screens show, and
# never attempted (nothing races the snapshots).
[notifications.routes]
"*" = "email"
"""


def seed_site(c) -> None:
    """A small fixed story: stock, orders that wait, reorders raised, a pick waiting.

    Each order names one SKU that has anything to decide: the actors of two SKUs work
    concurrently, and the journal order of their events would differ from run to run
    (the snapshots show the journal)."""
    c.call("stock.receive", sku="WIDGET-RED", qty=3, reference="PO-000001")
    c.call("order.submit", channel="web", external_id="W-1001", order_number="#1001",
           customer={"name": "Ada Lovelace"},
           lines=[{"sku": "WIDGET-RED", "qty": 2, "unit_price": "9.50"},
                  {"sku": "GIFT-CARD-50", "qty": 1, "unit_price": "50.00", "requires_shipping": False}])
    c.call("order.submit", channel="marketplace", account="acme-store", external_id="M-77",
           lines=[{"sku": "GADGET-BLUE", "qty": 9, "unit_price": "24.00"}])
    c.call("order.submit", channel="phone", external_id="P-5", ship_complete=True,
           customer={"name": "Grace Hopper"},
           lines=[{"sku": "GADGET-BLUE", "qty": 1, "unit_price": "24.00"},
                  {"sku": "GADGET-BLUE", "qty": 1, "unit_price": "24.00"}])
    c.call("order.submit", channel="web", external_id="W-1002", rush=True,
           lines=[{"sku": "SPROCKET", "qty": 4, "unit_price": "80.00"}])
    c.call("order.submit", channel="edi", external_id="EDI-9", lines=[{"sku": "WIDGET-RED", "qty": 6}])
    c.call("order.submit", channel="edi", external_id="EDI-10", lines=[{"sku": "SPROCKET", "qty": 1}])
