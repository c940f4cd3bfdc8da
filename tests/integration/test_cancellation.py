"""Cancelling releases units to the next waiting line (in service order); what has
shipped cannot be cancelled and a cancelled order's shipment cannot be picked."""

from __future__ import annotations

import pytest
from bo_support import fingerprint, line, stock, submit

from backorder.client import CallError


def test_cancel_releases_units_to_the_next_waiting_line_fifo(sim_client):
    c = sim_client
    stock(c, "C", 2)
    a = submit(c, "A", line("C", 2))["order_id"]
    b = submit(c, "B", line("C", 2))["order_id"]
    z = submit(c, "Z", line("C", 2))["order_id"]
    (a_ship,) = c.call("shipments.list", order_id=a)["shipments"]
    assert c.call("order.get", order_id=b)["lines"][0]["queue_position"] == 1
    assert c.call("order.get", order_id=z)["lines"][0]["queue_position"] == 2

    res = c.call("order.cancel", order_id=a, reason="customer changed their mind")
    assert res["status"] == "cancelled"

    # B (earlier) got the units, Z (later) still waits, now at the head of the queue
    b_view = c.call("order.get", order_id=b)
    assert b_view["status"] == "picking"
    assert b_view["lines"][0]["allocated"] == 2
    z_line = c.call("order.get", order_id=z)["lines"][0]
    assert (z_line["allocated"], z_line["backordered"], z_line["queue_position"]) == (0, 2, 1)
    a_view = c.call("order.get", order_id=a)
    assert a_view["status"] == "cancelled"
    assert a_view["cancel_reason"] == "customer changed their mind"
    assert a_view["shipments"][0]["status"] == "cancelled"
    assert [
        s["status"]
        for s in c.call("shipments.list", status="all")["shipments"]
        if s["shipment_id"] == a_ship["shipment_id"]
    ] == ["cancelled"]
    view = c.call("sku.get", sku="C")
    assert (view["on_hand"], view["allocated"], view["backordered"]) == (2, 2, 2)

    # picking the cancelled order's shipment is refused and changes nothing
    before = fingerprint(c, "C")
    with pytest.raises(CallError) as exc:
        c.call("pick.confirm", shipment_id=a_ship["shipment_id"])
    assert exc.value.code == "order_cancelled"
    assert fingerprint(c, "C") == before


def test_cancelling_a_waiting_order_moves_the_queue_up(sim_client):
    c = sim_client
    first = submit(c, "W1", line("Q", 1))["order_id"]
    second = submit(c, "W2", line("Q", 1))["order_id"]
    c.call("order.cancel", order_id=first)
    assert c.call("order.get", order_id=second)["lines"][0]["queue_position"] == 1
    view = c.call("sku.get", sku="Q")
    assert view["backordered"] == 1
    assert [w["order_id"] for w in view["waiting"]] == [second]
    got = c.call("stock.receive", sku="Q", qty=1)
    assert got["allocations"] == [{"order_id": second, "line_no": 1, "qty": 1}]


def test_cancel_of_a_shipped_order_is_refused(sim_client):
    c = sim_client
    stock(c, "S", 1)
    oid = submit(c, "SH", line("S", 1))["order_id"]
    (sh,) = c.call("shipments.list", order_id=oid)["shipments"]
    c.call("pick.confirm", shipment_id=sh["shipment_id"])
    before = fingerprint(c, "S")
    with pytest.raises(CallError) as exc:
        c.call("order.cancel", order_id=oid)
    assert exc.value.code == "already_shipped"
    assert fingerprint(c, "S") == before
    assert c.call("order.get", order_id=oid)["status"] == "shipped"


def test_unknown_order(sim_client):
    c = sim_client
    for op in ("order.cancel", "order.get"):
        with pytest.raises(CallError) as exc:
            c.call(op, order_id="O9999999")
        assert exc.value.code == "unknown_order"
    with pytest.raises(CallError) as exc:
        c.call("order.get", channel="web", external_id="never-sent")
    assert exc.value.code == "unknown_order"


def test_cancel_twice_is_harmless(sim_client):
    c = sim_client
    stock(c, "T", 1)
    a = submit(c, "T1", line("T", 1))["order_id"]
    b = submit(c, "T2", line("T", 1))["order_id"]
    c.call("order.cancel", order_id=a)
    seq = c.call("health")["journal"]["last_seq"]
    assert c.call("order.cancel", order_id=a)["status"] == "cancelled"
    assert c.call("health")["journal"]["last_seq"] == seq
    assert c.call("order.get", order_id=b)["lines"][0]["allocated"] == 1
    assert c.call("sku.get", sku="T")["allocated"] == 1


def test_cancel_releases_units_that_survive_a_restart(sim):
    d = sim()
    with d.client() as c:
        stock(c, "V", 1)
        a = submit(c, "V1", line("V", 1))["order_id"]
        b = submit(c, "V2", line("V", 1))["order_id"]
        c.call("order.cancel", order_id=a)
        before = fingerprint(c, "V")
    d.restart()
    with d.client() as c:
        assert fingerprint(c, "V") == before
        assert c.call("order.get", order_id=b)["status"] == "picking"
        assert c.call("order.get", order_id=a)["status"] == "cancelled"


def test_cancel_of_a_ship_complete_order_gives_its_held_units_to_the_next_line(sim_client):
    c = sim_client
    # no Y yet, and X's next supply comes later than Y's: the ship-complete order holds its
    # X units (it cannot lend them without its own date moving; see no-harm lending)
    c.call("sku.configure", sku="Y", lead_time_days=2)
    c.call("sku.configure", sku="X", lead_time_days=30)
    held = submit(c, "HOLD", line("X", 2), line("Y", 1), ship_complete=True)["order_id"]
    nxt = submit(c, "NEXT", line("X", 2))["order_id"]
    stock(c, "X", 2)
    assert c.call("order.get", order_id=held)["lines"][0]["allocated"] == 2
    assert c.call("shipments.list", status="all")["shipments"] == []
    c.call("order.cancel", order_id=held)
    assert c.call("order.get", order_id=nxt)["lines"][0]["allocated"] == 2
    (sh,) = c.call("shipments.list")["shipments"]
    assert sh["order_id"] == nxt
    y = c.call("sku.get", sku="Y")
    assert (y["backordered"], y["waiting_lines"]) == (0, 0)


def test_cancel_of_a_partially_shipped_order_releases_only_the_rest(sim_client):
    c = sim_client
    stock(c, "PS", 1)
    oid = submit(c, "PART", line("PS", 3))["order_id"]
    (sh,) = c.call("shipments.list", order_id=oid)["shipments"]
    label = c.call("pick.confirm", shipment_id=sh["shipment_id"])
    other = submit(c, "OTHER", line("PS", 1))["order_id"]
    c.call("order.cancel", order_id=oid)
    view = c.call("order.get", order_id=oid)
    assert view["status"] == "cancelled"
    assert view["lines"][0]["shipped"] == 1
    sku = c.call("sku.get", sku="PS")
    assert (sku["shipped"], sku["on_hand"], sku["backordered"]) == (1, 0, 1)
    assert [w["order_id"] for w in sku["waiting"]] == [other]
    assert c.call("stock.receive", sku="PS", qty=1)["allocations"][0]["order_id"] == other
    # what shipped stays shipped: the shipment still answers with its label
    again = c.call("pick.confirm", shipment_id=sh["shipment_id"])
    assert (again["status"], again["tracking_number"]) == ("shipped", label["tracking_number"])
