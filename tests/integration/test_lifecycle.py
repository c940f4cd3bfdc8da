"""The whole life cycle over the real socket: order -> backordered -> reorder raised ->
receipt against the PO -> allocated -> picking -> shipped, exactly once."""

from __future__ import annotations

from bo_support import line, read_db, stock, submit


def routed(tmp_path) -> str:
    """Customer notices are queued only for a sales channel with a route: drop them as files."""
    return f'[notifications.routes]\n"*" = "file"\n[notifications.file]\ndir = "{tmp_path / "drop"}"\n'


# a route that cannot reach a customer without an e-mail address: her notices are queued
# (unrouted) but never attempted, so the notifier adds no events behind the test's back
UNREACHABLE = '[notifications.routes]\n"*" = "email"\n'


def test_order_is_backordered_reordered_received_picked_and_shipped(sim):
    d = sim(UNREACHABLE)
    with d.client() as c:
        placed = submit(
            c,
            "A-1",
            line("SKU1", 3, "4.00"),
            shipping_address={
                "name": "Ann",
                "address1": "1 Main St",
                "city": "Springfield",
                "postal_code": "12345",
                "country_code": "US",
            },
        )
        assert placed["status"] == "backordered"
        assert placed["lines"][0]["allocated"] == 0
        assert placed["lines"][0]["backordered"] == 3
        oid = placed["order_id"]

        # the shortage raised exactly one purchase order for it, dated by the lead time (7 d)
        (po,) = c.call("procurement.list")["requests"]
        assert (po["sku"], po["qty"], po["kind"], po["status"]) == ("SKU1", 3, "po", "open")
        assert po["expected_date"] == "2024-03-08"
        waiting = c.call("order.get", order_id=oid)["lines"][0]
        assert waiting["queue_position"] == 1
        assert waiting["expected_date"] == "2024-03-08"
        assert waiting["why"].startswith("fifo")

        got = c.call("stock.receive", sku="SKU1", qty=3, reference=po["request_id"])
        assert got["request_id"] == po["request_id"]
        assert got["allocations"] == [{"order_id": oid, "line_no": 1, "qty": 3}]

        # the receipt closed the PO and recorded its lead time for the KPI
        assert c.call("procurement.list")["requests"] == []
        (closed,) = c.call("procurement.list", status="closed")["requests"]
        assert closed["request_id"] == po["request_id"]
        assert closed["lead_time_hours"] is not None
        stats = c.call("stats")
        assert stats["avg_reorder_lead_time_hours"] is not None
        assert stats["counts"]["reorders_closed"] == 1
        assert stats["counts"]["reorders_open"] == 0

        # allocated in full: one shipment goes to picking with the whole line
        detail = c.call("order.get", order_id=oid)
        assert detail["status"] == "picking"
        assert detail["lines"][0]["allocated"] == 3
        assert detail["lines"][0]["backordered"] == 0
        (sh,) = c.call("shipments.list", order_id=oid)["shipments"]
        assert sh["status"] == "picking"
        assert sh["items"] == [{"line_no": 1, "sku": "SKU1", "qty": 3}]
        before_ship = c.call("sku.get", sku="SKU1")
        assert (before_ship["on_hand"], before_ship["allocated"], before_ship["available"]) == (3, 3, 0)

        shipped = c.call("pick.confirm", shipment_id=sh["shipment_id"])
        assert shipped["order_status"] == "shipped"
        assert shipped["status"] == "shipped"
        assert shipped["tracking_number"].startswith("BO")
        assert shipped["label_zpl"].startswith("^XA") and shipped["label_zpl"].endswith("^XZ")
        assert shipped["tracking_number"] in shipped["label_zpl"]
        assert "Springfield" in shipped["label_zpl"]
        after_ship = c.call("sku.get", sku="SKU1")
        assert (after_ship["on_hand"], after_ship["allocated"], after_ship["shipped"]) == (0, 0, 3)
        detail = c.call("order.get", order_id=oid)
        assert detail["status"] == "shipped"
        assert detail["lines"][0]["shipped"] == 3

        # a second pick.confirm returns the same label and tracking and changes nothing
        stats_before = c.call("stats")["counts"]
        seq_before = c.call("health")["journal"]["last_seq"]
        again = c.call("pick.confirm", shipment_id=sh["shipment_id"])
        assert again["tracking_number"] == shipped["tracking_number"]
        assert again["label_zpl"] == shipped["label_zpl"]
        assert again["order_status"] == "shipped"
        assert c.call("sku.get", sku="SKU1")["on_hand"] == 0
        assert c.call("stats")["counts"] == stats_before
        assert c.call("health")["journal"]["last_seq"] == seq_before

        stats = c.call("stats")
        assert stats["counts"]["orders_shipped"] == 1
        assert stats["counts"]["double_shipments"] == 0
        assert stats["order_accuracy"] == 1.0
        assert stats["fulfillment_rate"] == 1.0

    # the customer notice went to the outbox, once, with the journal record that queued it
    rows = read_db(d.db, "SELECT o.order_id, o.kind, e.type, e.order_id FROM outbox o JOIN events e ON e.seq = o.seq")
    # (the backordered notice first; tests/integration/test_notifications.py
    # covers delivery)
    assert rows == [(oid, "backordered", "notice_queued", oid), (oid, "shipped", "notice_queued", oid)]


def test_split_order_ships_in_parts_with_one_notice_per_shipment(sim, tmp_path):
    d = sim(routed(tmp_path))
    with d.client() as c:
        oid = submit(c, "A-2", line("P", 3), email="bo@example.com")["order_id"]
        c.call("stock.receive", sku="P", qty=1)
        (first,) = c.call("shipments.list", order_id=oid)["shipments"]
        assert first["items"] == [{"line_no": 1, "sku": "P", "qty": 1}]
        first_ship = c.call("pick.confirm", shipment_id=first["shipment_id"])
        assert first_ship["order_status"] == "partially_shipped"
        line_view = c.call("order.get", order_id=oid)["lines"][0]
        assert (line_view["shipped"], line_view["backordered"]) == (1, 2)

        c.call("stock.receive", sku="P", qty=2)
        second = c.call("shipments.list", order_id=oid)["shipments"]
        assert [s["items"] for s in second] == [[{"line_no": 1, "sku": "P", "qty": 2}]]
        done = c.call("pick.confirm", shipment_id=second[0]["shipment_id"])
        assert done["order_status"] == "shipped"
        assert second[0]["shipment_id"] != first["shipment_id"]
        assert done["tracking_number"] != first_ship["tracking_number"]
        c.call("pick.confirm", shipment_id=first["shipment_id"])  # a late repeat: no new notice
        assert c.call("sku.get", sku="P")["shipped"] == 3

    shipped = read_db(d.db, "SELECT order_id, kind FROM outbox WHERE kind LIKE '%shipped'")
    # one customer notice per shipped shipment (the first says partially_shipped)
    assert shipped == [(oid, "partially_shipped"), (oid, "shipped")]


def test_shipment_ships_once_across_a_restart(sim):
    d = sim(UNREACHABLE)
    with d.client() as c:
        stock(c, "R", 2)
        oid = submit(c, "A-3", line("R", 2))["order_id"]
        (sh,) = c.call("shipments.list", order_id=oid)["shipments"]
        first = c.call("pick.confirm", shipment_id=sh["shipment_id"])
    d.restart()
    with d.client() as c:
        again = c.call("pick.confirm", shipment_id=sh["shipment_id"])
        assert (again["tracking_number"], again["label_zpl"]) == (first["tracking_number"], first["label_zpl"])
        view = c.call("sku.get", sku="R")
        assert (view["on_hand"], view["shipped"]) == (0, 2)
        assert c.call("stats")["counts"]["orders_shipped"] == 1
    assert len(read_db(d.db, "SELECT * FROM outbox WHERE kind = 'shipped'")) == 1


def test_lead_time_is_measured_on_the_engine_clock(make_daemon):
    # one simulated day per real second: a receipt shortly after the PO has a lead time > 0
    d = make_daemon('[daemon]\nclock = "simulated"\nclock_speed = 86400.0\n')
    with d.client() as c:
        submit(c, "L-1", line("LT", 1))
        (po,) = c.call("procurement.list")["requests"]
        c.call("stock.receive", sku="LT", qty=1, reference=po["request_id"])
        (closed,) = c.call("procurement.list", status="closed")["requests"]
        assert closed["lead_time_hours"] > 0
        assert c.call("stats")["avg_reorder_lead_time_hours"] == closed["lead_time_hours"]


def test_lines_that_ship_nothing_are_never_backordered(sim_client):
    c = sim_client
    res = submit(c, "G-1", line("GIFTCARD", 1, "25.00", requires_shipping=False), line("G", 1))
    assert res["lines"][0] == {"line_no": 1, "sku": "GIFTCARD", "qty": 1, "allocated": 0, "backordered": 0}
    assert res["lines"][1]["backordered"] == 1
    assert [r["sku"] for r in c.call("procurement.list")["requests"]] == ["G"]
    c.call("stock.receive", sku="G", qty=1)
    (sh,) = c.call("shipments.list", order_id=res["order_id"])["shipments"]
    assert [i["sku"] for i in sh["items"]] == ["G"]
    assert c.call("pick.confirm", shipment_id=sh["shipment_id"])["order_status"] == "shipped"


def test_lists_filter_and_page(sim_client):
    c = sim_client
    stock(c, "IN", 1)
    shipped = submit(c, "L1", line("IN", 1))["order_id"]
    waiting = [submit(c, f"L{n}", line("OUT", 1))["order_id"] for n in range(2, 6)]
    (sh,) = c.call("shipments.list")["shipments"]
    c.call("pick.confirm", shipment_id=sh["shipment_id"])

    newest_first = [o["order_id"] for o in c.call("orders.list")["orders"]]
    assert newest_first == [*reversed(waiting), shipped]
    assert [o["order_id"] for o in c.call("orders.list", status="shipped")["orders"]] == [shipped]
    assert [o["order_id"] for o in c.call("orders.list", sku="OUT", limit=2, offset=1)["orders"]] == [
        waiting[2],
        waiting[1],
    ]
    assert c.call("orders.list", status="backordered")["orders"][0]["backordered"] == 1

    assert [s["sku"] for s in c.call("skus.list", waiting=True)["skus"]] == ["OUT"]
    assert {s["sku"] for s in c.call("skus.list")["skus"]} == {"IN", "OUT"}
    assert [s["sku"] for s in c.call("skus.list", prefix="I")["skus"]] == ["IN"]
    assert c.call("shipments.list")["shipments"] == []
    assert [s["shipment_id"] for s in c.call("shipments.list", status="shipped")["shipments"]] == [sh["shipment_id"]]
