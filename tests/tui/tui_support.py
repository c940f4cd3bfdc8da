"""The fixed site of the TUI tests: its config and the story that seeds it."""

from __future__ import annotations

SITE_BASE = """
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

[channels.csv]
known_skus_only = true
"""

# Customer notices are queued only for a channel with a route; these orders carry no
# e-mail address, so their notices are `unrouted`: in the journal the screens show, and
# never attempted (nothing races the snapshots). The CSV deliveries do carry addresses:
# their channel has no route, so they get no notice at all.
SEED_ROUTES = """
[notifications.routes]
"*" = "email"
"csv" = "none"
"""
SITE = SITE_BASE + SEED_ROUTES

CSV_HEAD = "order_id,currency,email,sku,qty,unit_price,ship_address1,ship_country,rush,hold\n"


def csv_order(external_id: str, sku: str, qty: str, price: str, rush: str = "", hold: str = "") -> str:
    """One CSV delivery of one line (docs/intake.md: the csv channel needs no signature)."""
    return (
        CSV_HEAD
        + f"{external_id},USD,{external_id.lower()}@example.com,{sku},{qty},{price},1 Main St,US,{rush},{hold}\n"
    )


def seed_site(c) -> None:
    """A small fixed story: stock, orders that wait, reorders raised, a pick waiting.

    Each order names one SKU that has anything to decide: the actors of two SKUs work
    concurrently, and the journal order of their events would differ from run to run
    (the snapshots show the journal)."""
    c.call("stock.receive", sku="WIDGET-RED", qty=3, reference="PO-000001")
    c.call(
        "order.submit",
        channel="web",
        external_id="W-1001",
        order_number="#1001",
        customer={"name": "Ada Lovelace"},
        lines=[
            {"sku": "WIDGET-RED", "qty": 2, "unit_price": "9.50"},
            {"sku": "GIFT-CARD-50", "qty": 1, "unit_price": "50.00", "requires_shipping": False},
        ],
    )
    c.call(
        "order.submit",
        channel="marketplace",
        account="acme-store",
        external_id="M-77",
        lines=[{"sku": "GADGET-BLUE", "qty": 9, "unit_price": "24.00"}],
    )
    c.call(
        "order.submit",
        channel="phone",
        external_id="P-5",
        ship_complete=True,
        customer={"name": "Grace Hopper"},
        lines=[
            {"sku": "GADGET-BLUE", "qty": 1, "unit_price": "24.00"},
            {"sku": "GADGET-BLUE", "qty": 1, "unit_price": "24.00"},
        ],
    )
    c.call(
        "order.submit",
        channel="web",
        external_id="W-1002",
        rush=True,
        lines=[{"sku": "SPROCKET", "qty": 4, "unit_price": "80.00"}],
    )
    c.call("order.submit", channel="edi", external_id="EDI-9", lines=[{"sku": "WIDGET-RED", "qty": 6}])
    c.call("order.submit", channel="edi", external_id="EDI-10", lines=[{"sku": "SPROCKET", "qty": 1}])

    seed_intake(c)


def seed_intake(c) -> None:
    """Deliveries through intake, last (their orders must not renumber the story above):
    one accepted on payment hold (it takes no stock), three rejected as dead letters (two
    unknown SKUs — one rush, the most impact — and a fractional quantity), and a Shopify
    delivery without its signature (counted per source, never kept)."""
    c.call("order.ingest", channel="csv", body=csv_order("WEB-1", "WIDGET-RED", "2", "9.99", hold="awaiting transfer"))
    c.call("order.ingest", channel="csv", body=csv_order("WEB-2", "widget red", "2", "9.99"))
    c.call("order.ingest", channel="csv", body=csv_order("WEB-3", "gadget blue", "1", "24.00", rush="yes"))
    c.call("order.ingest", channel="csv", body=csv_order("WEB-4", "WIDGET-RED", "1.5", "9.99"))
    c.call(
        "order.ingest",
        channel="shopify",
        body='{"id": 1}',
        headers={"X-Shopify-Topic": "orders/create", "X-Shopify-Shop-Domain": "demo.myshopify.com"},
    )


def read_only_site(make_daemon):
    """A seeded daemon that also serves its read-only socket ([access] read_socket):
    returns the daemon and the path of that socket."""
    d = make_daemon(start=False)
    ro = d.sockdir / "ro.sock"
    d.config.write_text(SITE + f'\n[access]\nread_socket = "{ro}"\n')
    d.start()
    with d.client() as c:
        seed_site(c)
    return d, ro
