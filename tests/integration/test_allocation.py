"""Order of service (FIFO / priority), ship-complete vs split shipments, and cycle counts
that take units back, all through the real daemon."""

from __future__ import annotations

import pytest
from bo_support import fingerprint, line, stock, submit

from backorder.client import CallError
from backorder.launcher import wait_until

PRIORITY = '[allocation]\nmode = "priority"\n'


def _normal_then_rush(c) -> tuple[str, str]:
    c.call("sku.configure", sku="P")
    normal = submit(c, "N", line("P", 1))["order_id"]
    rush = submit(c, "R", line("P", 1), rush=True)["order_id"]
    return normal, rush


def test_fifo_serves_the_earlier_order_even_if_the_later_is_rush(sim_client):
    c = sim_client
    normal, rush = _normal_then_rush(c)
    got = c.call("stock.receive", sku="P", qty=1)
    assert got["allocations"] == [{"order_id": normal, "line_no": 1, "qty": 1}]
    served = c.call("order.get", order_id=normal)["lines"][0]
    assert served["why"].startswith("fifo")
    waiting = c.call("order.get", order_id=rush)["lines"][0]
    assert waiting["queue_position"] == 1
    assert waiting["why"].startswith("fifo")


def test_priority_mode_from_config_serves_a_later_rush_order_first(sim):
    with sim(PRIORITY).client() as c:
        assert c.call("policy.get")["mode"] == "priority"
        normal, rush = _normal_then_rush(c)
        assert c.call("order.get", order_id=rush)["lines"][0]["queue_position"] == 1
        assert c.call("order.get", order_id=normal)["lines"][0]["queue_position"] == 2
        got = c.call("stock.receive", sku="P", qty=1)
        assert got["allocations"] == [{"order_id": rush, "line_no": 1, "qty": 1}]
        served = c.call("order.get", order_id=rush)["lines"][0]
        assert served["why"].startswith("priority: rush")
        waiting = c.call("order.get", order_id=normal)["lines"][0]
        assert waiting["queue_position"] == 1
        assert waiting["why"].startswith("priority:")
        # the audit trail records the rule behind the allocation
        (alloc,) = [r for r in c.call("audit.query", order_id=rush)["records"] if r["type"] == "allocated"]
        assert alloc["event"]["rule"] == "priority"


def test_policy_set_reorders_the_waiting_queue(sim_client):
    c = sim_client
    normal, rush = _normal_then_rush(c)
    assert [w["order_id"] for w in c.call("sku.get", sku="P")["waiting"]] == [normal, rush]
    res = c.call("policy.set", mode="priority", weights={"rush": 48.0, "value": 0.0, "age": 1.0})
    assert res["mode"] == "priority"
    assert res["weights"] == {"rush": 48.0, "value": 0.0, "age": 1.0}
    assert c.call("policy.get") == res
    assert [w["order_id"] for w in c.call("sku.get", sku="P")["waiting"]] == [rush, normal]
    assert c.call("stock.receive", sku="P", qty=1)["allocations"][0]["order_id"] == rush
    # and back to FIFO: the remaining normal order keeps its place
    c.call("policy.set", mode="fifo")
    assert c.call("policy.get")["mode"] == "fifo"
    assert c.call("stock.receive", sku="P", qty=1)["allocations"][0]["order_id"] == normal


def test_priority_survives_a_restart(sim):
    d = sim()
    with d.client() as c:
        normal, rush = _normal_then_rush(c)
        c.call("policy.set", mode="priority")
    d.restart()
    with d.client() as c:
        assert c.call("policy.get")["mode"] == "priority"
        assert c.call("stock.receive", sku="P", qty=1)["allocations"][0]["order_id"] == rush


def test_a_mode_changed_in_the_file_applies_after_a_restart_from_a_snapshot_as_after_a_replay(sim):
    """With no ``policy.set`` journaled, the file's ``[allocation]`` is in force after a
    restart (config/backorder.example.toml): from the shutdown snapshot as from a full
    replay. The snapshot used to bring back the mode of the file it was taken under."""
    d = sim()
    with d.client() as c:
        normal, rush = _normal_then_rush(c)
        assert c.call("policy.get")["mode"] == "fifo"
    d.stop()  # a clean stop writes a snapshot
    d.config.write_text(PRIORITY + d.config.read_text())
    d.start()
    with d.client() as c:
        assert c.call("policy.get")["mode"] == "priority"
    d.kill9()
    d.start()
    with d.client() as c:
        assert c.call("policy.get")["mode"] == "priority"
        assert c.call("stock.receive", sku="P", qty=1)["allocations"][0]["order_id"] == rush


def test_waiting_time_ages_priority_so_old_lines_do_not_starve(sim):
    # rush is worth 24 h of waiting (the default weight): a line waiting 48 h beats it
    d = sim(PRIORITY)
    with d.client() as c:
        c.call("sku.configure", sku="P")
        old = submit(c, "OLD", line("P", 1))["order_id"]
    d.stop()  # two days later
    d.config.write_text(d.config.read_text().replace("2024-03-01T00:00:00Z", "2024-03-03T00:00:00Z"))
    d.start()
    with d.client() as c:
        rush = submit(c, "RUSH", line("P", 1), rush=True)["order_id"]
        assert [w["order_id"] for w in c.call("sku.get", sku="P")["waiting"]] == [old, rush]
        assert c.call("stock.receive", sku="P", qty=1)["allocations"][0]["order_id"] == old


def test_queues_use_the_time_received_and_a_source_date_is_clamped(sim):
    """A created_at of 0001-01-01 used to put its order first in every queue."""
    d = sim()
    with d.client() as c:
        c.call("sku.configure", sku="P")
        first = submit(c, "FIRST", line("P", 1))["order_id"]
        ancient = submit(c, "ANCIENT", line("P", 1), created_at="0001-01-01T00:00:00Z")["order_id"]
        future = submit(c, "FUTURE", line("P", 1), created_at="2999-01-01T00:00:00Z")["order_id"]
        assert [w["order_id"] for w in c.call("sku.get", sku="P")["waiting"]] == [first, ancient, future]
        assert c.call("order.get", order_id=ancient)["created_at"] == "2000-01-01T00:00:00Z"
        assert c.call("order.get", order_id=future)["created_at"].startswith("2024-03-02T00:00:")  # + 1 day
        skewed = submit(c, "SKEWED", line("P", 1), created_at="2024-03-01T10:00:00Z")["order_id"]  # within a day
        assert c.call("order.get", order_id=skewed)["created_at"] == "2024-03-01T10:00:00Z"
    d.kill9()  # the order survives a replay of the journal
    d.start()
    with d.client() as c:
        assert [w["order_id"] for w in c.call("sku.get", sku="P")["waiting"]] == [first, ancient, future, skewed]
        assert c.call("stock.receive", sku="P", qty=1)["allocations"][0]["order_id"] == first


def test_higher_value_wins_under_priority(sim):
    with sim(PRIORITY).client() as c:
        c.call("sku.configure", sku="P")
        cheap = submit(c, "CHEAP", line("P", 1, "1.00"))["order_id"]
        dear = submit(c, "DEAR", line("P", 1, "900.00"))["order_id"]
        assert [w["order_id"] for w in c.call("sku.get", sku="P")["waiting"]] == [dear, cheap]


def test_policy_set_rejects_an_unknown_mode(sim_client):
    c = sim_client
    with pytest.raises(CallError) as exc:
        c.call("policy.set", mode="random")
    assert exc.value.code == "invalid_request"
    with pytest.raises(CallError) as exc:
        c.call("policy.set", mode="priority", weights={"rush": -1})
    assert exc.value.code == "invalid_request"
    assert c.call("policy.get")["mode"] == "fifo"


# --- ship-complete vs split ---------------------------------------------------------


def test_ship_complete_waits_until_every_line_is_allocated(sim_client):
    c = sim_client
    stock(c, "X", 2)
    c.call("sku.configure", sku="Y")
    res = submit(c, "SC", line("X", 2), line("Y", 1), ship_complete=True)
    oid = res["order_id"]
    assert res["status"] == "partially_allocated"
    assert [(ln["allocated"], ln["backordered"]) for ln in res["lines"]] == [(2, 0), (0, 1)]
    assert c.call("shipments.list", order_id=oid, status="all")["shipments"] == []

    c.call("stock.receive", sku="Y", qty=1)
    (sh,) = c.call("shipments.list", order_id=oid)["shipments"]
    assert sh["items"] == [{"line_no": 1, "sku": "X", "qty": 2}, {"line_no": 2, "sku": "Y", "qty": 1}]
    assert c.call("order.get", order_id=oid)["status"] == "picking"
    assert c.call("pick.confirm", shipment_id=sh["shipment_id"])["order_status"] == "shipped"


def test_ship_complete_with_one_partially_covered_line_does_not_ship(sim_client):
    c = sim_client
    stock(c, "X", 2)
    oid = submit(c, "SC1", line("X", 3), ship_complete=True)["order_id"]
    assert c.call("shipments.list", order_id=oid, status="all")["shipments"] == []
    c.call("stock.receive", sku="X", qty=1)
    (sh,) = c.call("shipments.list", order_id=oid)["shipments"]
    assert sh["items"] == [{"line_no": 1, "sku": "X", "qty": 3}]


def test_split_order_ships_what_is_allocated(sim_client):
    c = sim_client
    stock(c, "X", 2)
    c.call("sku.configure", sku="Y")
    oid = submit(c, "SPLIT", line("X", 2), line("Y", 1))["order_id"]
    (sh,) = c.call("shipments.list", order_id=oid)["shipments"]
    assert sh["items"] == [{"line_no": 1, "sku": "X", "qty": 2}]
    assert c.call("order.get", order_id=oid)["status"] == "partially_allocated"
    c.call("pick.confirm", shipment_id=sh["shipment_id"])
    assert c.call("order.get", order_id=oid)["status"] == "partially_shipped"

    c.call("stock.receive", sku="Y", qty=1)
    (rest,) = c.call("shipments.list", order_id=oid)["shipments"]
    assert rest["items"] == [{"line_no": 2, "sku": "Y", "qty": 1}]
    assert c.call("pick.confirm", shipment_id=rest["shipment_id"])["order_status"] == "shipped"


def test_auto_pick_ships_without_pick_confirm(sim):
    with sim("[fulfillment]\nauto_pick = true\n").client() as c:
        stock(c, "A", 1)
        res = submit(c, "AUTO", line("A", 1))
        (sh,) = c.call("shipments.list", order_id=res["order_id"], status="shipped")["shipments"]
        assert sh["tracking_number"].startswith("BO")
        assert c.call("order.get", order_id=res["order_id"])["status"] == "shipped"


# --- cycle counts ------------------------------------------------------------------


def test_count_below_allocated_takes_units_from_the_last_served_line(sim_client):
    c = sim_client
    c.call("sku.configure", sku="Y")  # Y has no stock: the ship-complete orders hold their X units
    first = submit(c, "H1", line("X", 1), line("Y", 1), ship_complete=True)["order_id"]
    last = submit(c, "H2", line("X", 1), line("Y", 1), ship_complete=True)["order_id"]
    stock(c, "X", 2)
    assert c.call("sku.get", sku="X")["allocated"] == 2

    res = c.call("stock.adjust", sku="X", counted=1, reason="cycle count")
    assert (res["on_hand"], res["allocated"], res["backordered"]) == (1, 1, 1)
    assert c.call("order.get", order_id=first)["lines"][0]["allocated"] == 1
    taken = c.call("order.get", order_id=last)["lines"][0]
    assert (taken["allocated"], taken["backordered"], taken["queue_position"]) == (0, 1, 1)
    assert [w["order_id"] for w in c.call("sku.get", sku="X")["waiting"]] == [last]
    assert c.call("sku.get", sku="X")["adjusted"] == -1
    kinds = [r["type"] for r in c.call("audit.query", order_id=last)["records"]]
    assert "deallocated" in kinds

    # the next receipt gives the units back to that line
    got = c.call("stock.receive", sku="X", qty=1)
    assert got["allocations"] == [{"order_id": last, "line_no": 1, "qty": 1}]
    assert c.call("sku.get", sku="X")["backordered"] == 0

    c.call("stock.receive", sku="Y", qty=2)
    assert len(c.call("shipments.list")["shipments"]) == 2


def test_count_by_delta_and_counted(sim_client):
    c = sim_client
    stock(c, "Z", 5)
    assert c.call("stock.adjust", sku="Z", delta=-2, reason="damaged")["on_hand"] == 3
    assert c.call("stock.adjust", sku="Z", delta=4, reason="found")["on_hand"] == 7
    assert c.call("stock.adjust", sku="Z", counted=6, reason="count")["on_hand"] == 6
    view = c.call("sku.get", sku="Z")
    assert (view["received"], view["adjusted"], view["on_hand"]) == (5, 1, 6)  # conservation


def test_count_below_units_in_picking_is_refused(sim_client):
    c = sim_client
    stock(c, "K", 2)
    submit(c, "K1", line("K", 2))  # both units go to a picking shipment
    before = fingerprint(c, "K")
    with pytest.raises(CallError) as exc:
        c.call("stock.adjust", sku="K", counted=1, reason="count")
    assert exc.value.code == "stock_in_picking"
    assert fingerprint(c, "K") == before


def test_count_gain_serves_waiting_lines(sim_client):
    c = sim_client
    c.call("sku.configure", sku="G")
    oid = submit(c, "GAIN", line("G", 2))["order_id"]
    res = c.call("stock.adjust", sku="G", delta=2, reason="found on a shelf")
    assert res["allocations"] == [{"order_id": oid, "line_no": 1, "qty": 2}]
    assert c.call("order.get", order_id=oid)["status"] == "picking"


def test_policy_set_with_some_weights_keeps_the_others(sim):
    d = sim()
    with d.client() as c:
        c.call("policy.set", mode="priority", weights={"rush": 48.0, "value": 0.5, "age": 2.0})
        got = c.call("policy.set", mode="priority", weights={"rush": 50})
        assert got["weights"] == {"rush": 50.0, "value": 0.5, "age": 2.0}
        got = c.call("policy.set", mode="fifo", weights={"age": 3, "value": 0})
        assert got == {"mode": "fifo", "weights": {"rush": 50.0, "value": 0.0, "age": 3.0}}
        got = c.call("policy.set", mode="priority")  # no weights: all kept
        assert got["weights"] == {"rush": 50.0, "value": 0.0, "age": 3.0}
        for bad in ({"urgency": 5}, {"rush": None}, {"rush": -1}, {"age": "2"}):
            with pytest.raises(CallError) as exc:
                c.call("policy.set", mode="fifo", weights=bad)
            assert exc.value.code == "invalid_request", bad
        assert c.call("policy.get") == {"mode": "priority", "weights": {"rush": 50.0, "value": 0.0, "age": 3.0}}
    d.restart()  # the merged weights are what was journaled
    with d.client() as c:
        assert c.call("policy.get") == {"mode": "priority", "weights": {"rush": 50.0, "value": 0.0, "age": 3.0}}


# --- no-harm lending ---------------------------------------------------------------


def _view(c, *order_ids: str) -> dict:
    """What a restart must keep: the SKUs, and the orders' lines and shipments."""
    out = fingerprint(c, "A", "B")
    for oid in order_ids:
        got = c.call("order.get", order_id=oid)
        out[oid] = (got["status"], [(ln["allocated"], ln["backordered"], ln["shipped"]) for ln in got["lines"]])
    return out


def test_a_ship_complete_order_lends_units_it_cannot_ship_before_the_next_supply(sim):
    """L (ship-complete: 1 A + 1 B) holds an A unit while B comes in 10 days and A's next
    supply in 2: S (1 A) ships now on a loan; the audit names it; a kill -9 changes
    nothing; A's next receipt goes to L first; L ships complete when B comes."""
    d = sim()
    with d.client() as c:
        c.call("sku.configure", sku="A", reorder_point=0, order_up_to=5, lead_time_days=2)
        c.call("sku.configure", sku="B", reorder_point=0, order_up_to=5, lead_time_days=10)
        (po_a,) = c.call("sku.get", sku="A")["inbound_requests"]
        (po_b,) = c.call("sku.get", sku="B")["inbound_requests"]
        assert po_a["expected_date"] < po_b["expected_date"]
        c.call("stock.receive", sku="A", qty=1)
        lender = submit(c, "L", line("A", 1), line("B", 1), ship_complete=True)["order_id"]
        assert [ln["allocated"] for ln in c.call("order.get", order_id=lender)["lines"]] == [1, 0]

        res = submit(c, "S", line("A", 1))
        borrower = res["order_id"]
        (sh,) = c.call("shipments.list", order_id=borrower)["shipments"]
        assert sh["items"] == [{"line_no": 1, "sku": "A", "qty": 1}]
        assert c.call("order.get", order_id=borrower)["lines"][0]["why"].startswith("lent: ")
        got = c.call("order.get", order_id=lender)
        assert got["status"] == "backordered" and got["lines"][0]["backordered"] == 1
        assert got["lines"][0]["queue_position"] == 1  # its own place, ahead of any later line
        # the audit of both orders names the loan
        (lent,) = [r for r in c.call("audit.query", order_id=lender)["records"] if r["type"] == "allocation_lent"]
        assert lent["event"] | {"ts": 0} == {
            "type": "allocation_lent",
            "ts": 0,
            "sku": "A",
            "order_id": lender,
            "line_no": 1,
            "qty": 1,
            "to_order_id": borrower,
            "to_line_no": 1,
            "back_by": po_a["expected_date"],
            "completes": po_b["expected_date"],
        }
        (alloc,) = [r for r in c.call("audit.query", order_id=borrower)["records"] if r["type"] == "allocated"]
        assert alloc["event"]["rule"] == "lent" and alloc["seq"] == lent["seq"] + 1
        assert alloc["correlation_id"] == lent["correlation_id"] and lent["cause"] == "order.submit"
        before = _view(c, lender, borrower)
    d.kill9()
    d.start()
    with d.client() as c:
        assert _view(c, lender, borrower) == before
        later = submit(c, "T", line("A", 1))["order_id"]  # behind L in A's queue
        assert [w["order_id"] for w in c.call("sku.get", sku="A")["waiting"]] == [lender, later]
        got = c.call("stock.receive", sku="A", qty=2)
        assert got["allocations"] == [
            {"order_id": lender, "line_no": 1, "qty": 1},
            {"order_id": later, "line_no": 1, "qty": 1},
        ]
        assert c.call("shipments.list", order_id=lender, status="all")["shipments"] == []
        c.call("stock.receive", sku="B", qty=1)
        (sh,) = c.call("shipments.list", order_id=lender)["shipments"]
        assert sh["items"] == [{"line_no": 1, "sku": "A", "qty": 1}, {"line_no": 2, "sku": "B", "qty": 1}]


def test_an_order_left_waiting_on_one_sku_borrows_there_once_its_other_sku_arrives(sim):
    """L (ship-complete: 1 A + 1 B) holds an A unit while B comes in 10 days and A's next
    supply in 2. V (ship-complete: 1 A + 1 C) cannot ship for want of C, so A's settle
    passes it over. C arrives: V now waits only for A, the order actor asks A to settle
    again, and V ships complete on L's unit (L's date stays B's); a kill -9 keeps it."""
    d = sim()
    with d.client() as c:
        for sku, lead in (("A", 2), ("B", 10), ("C", 5)):
            c.call("sku.configure", sku=sku, reorder_point=0, order_up_to=5, lead_time_days=lead)
        (po_a,) = c.call("sku.get", sku="A")["inbound_requests"]
        (po_b,) = c.call("sku.get", sku="B")["inbound_requests"]
        c.call("stock.receive", sku="A", qty=1)
        lender = submit(c, "L", line("A", 1), line("B", 1), ship_complete=True)["order_id"]
        borrower = submit(c, "V", line("A", 1), line("C", 1), ship_complete=True)["order_id"]
        assert [ln["allocated"] for ln in c.call("order.get", order_id=borrower)["lines"]] == [0, 0]
        assert c.call("order.get", order_id=lender)["lines"][0]["allocated"] == 1
        c.call("stock.receive", sku="C", qty=1)
        (sh,) = wait_until(lambda: c.call("shipments.list", order_id=borrower)["shipments"], 10.0, 0.05, "V ships")
        assert sh["items"] == [{"line_no": 1, "sku": "A", "qty": 1}, {"line_no": 2, "sku": "C", "qty": 1}]
        (lent,) = [r for r in c.call("audit.query", order_id=lender)["records"] if r["type"] == "allocation_lent"]
        assert (lent["event"]["to_order_id"], lent["event"]["qty"]) == (borrower, 1)
        assert (lent["event"]["back_by"], lent["event"]["completes"]) == (po_a["expected_date"], po_b["expected_date"])
        got = c.call("order.get", order_id=lender)
        assert got["status"] == "backordered" and got["lines"][0]["backordered"] == 1
        before = _view(c, lender, borrower)
    d.kill9()
    d.start()
    with d.client() as c:
        assert _view(c, lender, borrower) == before


STEPPED = """
[daemon]
clock = "stepped"
clock_start = "2026-01-05T09:00:00Z"

[fulfillment]
auto_pick = true
"""


def test_a_loan_that_becomes_harmless_at_midnight_is_made_then_without_any_request(make_daemon):
    """L (ship-complete: 1 A + 1 B) holds an A unit; B is due Jan 6, A's next supply Jan 8;
    S (1 A) waits. Lending reads an overdue date as today: on Jan 7 L's B is overdue (L
    may complete any moment) and A's units would come back only on Jan 8, so nothing is
    lent. At midnight into Jan 8 both read as today: the daemon settles A by itself (no
    request comes) and S ships on L's unit, the loan dated that midnight."""
    d = make_daemon(STEPPED)
    with d.client() as c:
        c.call("sku.configure", sku="A", reorder_point=0, order_up_to=5, lead_time_days=3)
        c.call("sku.configure", sku="B", reorder_point=0, order_up_to=5, lead_time_days=1)
        c.call("stock.receive", sku="A", qty=1)
        lender = submit(c, "L", line("A", 1), line("B", 1), ship_complete=True)["order_id"]
        borrower = submit(c, "S", line("A", 1))["order_id"]
        assert c.call("order.get", order_id=lender)["lines"][0]["allocated"] == 1
        (po_a,) = c.call("sku.get", sku="A")["inbound_requests"]
        (po_b,) = c.call("sku.get", sku="B")["inbound_requests"]
        assert (po_a["expected_date"], po_b["expected_date"]) == ("2026-01-08", "2026-01-06")

        def loans() -> list[dict]:
            return [r for r in c.call("audit.query", order_id=lender)["records"] if r["type"] == "allocation_lent"]

        c.call("clock.advance", to="2026-01-07T23:00:00Z")
        assert loans() == [] and c.call("shipments.list", order_id=borrower)["shipments"] == []
        c.call("clock.advance", to="2026-01-08T01:00:00Z")
        (lent,) = loans()
        assert lent["at"] == "2026-01-08T00:00:00Z" and lent["cause"] == "settle" and lent["actor"] == "system"
        assert lent["event"]["to_order_id"] == borrower
        assert (lent["event"]["back_by"], lent["event"]["completes"]) == ("2026-01-08", "2026-01-08")
        (sh,) = c.call("shipments.list", order_id=borrower, status="all")["shipments"]
        assert sh["items"] == [{"line_no": 1, "sku": "A", "qty": 1}]
        assert c.call("order.get", order_id=lender)["lines"][0]["backordered"] == 1


def test_two_loans_to_one_borrower_journal_the_dates_each_lender_has_after_both(sim):
    """A's supply: 4 units due 03-03, 4 more 03-06. X (ship-complete: 4 A) holds 2 and
    waits for 2, Y (ship-complete: 2 A + 1 B, B due 03-11) holds 2. Under priority, R
    (rush, 3 A) is served before both and borrows 2 from X, then 1 from Y. When X's loan
    is checked, 5 units wait up to X (its date 03-06); Y's loan takes 1 of R's from in front
    of X, so X ends with 4 ahead of it, due 03-03: each loan journals the dates its
    lender has after both, as order.get shows them, and a kill -9 keeps the same."""
    d = sim()
    with d.client() as c:
        c.call("sku.configure", sku="A", reorder_point=0, order_up_to=4, lead_time_days=2)
        c.call("sku.configure", sku="A", reorder_point=4, order_up_to=8, lead_time_days=5)
        c.call("sku.configure", sku="A", reorder_point=0, order_up_to=8, lead_time_days=5)
        c.call("sku.configure", sku="B", reorder_point=0, order_up_to=5, lead_time_days=10)
        supply = [(r["qty"], r["expected_date"]) for r in c.call("sku.get", sku="A")["inbound_requests"]]
        assert sorted(supply) == [(4, "2024-03-03"), (4, "2024-03-06")]
        c.call("stock.adjust", sku="A", delta=4, reason="found")
        y = submit(c, "Y", line("A", 2), line("B", 1), ship_complete=True)["order_id"]
        x = submit(c, "X", line("A", 4, "10.00"), ship_complete=True)["order_id"]
        c.call("policy.set", mode="priority", weights={"rush": 1000.0, "value": 1.0, "age": 0.0})
        (got,) = c.call("order.get", order_id=x)["lines"]
        assert (got["allocated"], got["backordered"], got["expected_date"]) == (2, 2, "2024-03-03")
        borrower = submit(c, "R", line("A", 3), ship_complete=True, rush=True)["order_id"]
        (sh,) = c.call("shipments.list", order_id=borrower)["shipments"]
        assert sh["items"] == [{"line_no": 1, "sku": "A", "qty": 3}]

        def loans() -> list[tuple]:
            return [
                (e["order_id"], e["qty"], e["to_order_id"], e["back_by"], e["completes"])
                for r in c.call("audit.query", sku="A")["records"]
                if r["type"] == "allocation_lent"
                for e in [r["event"]]
            ]

        assert loans() == [
            (x, 2, borrower, "2024-03-03", "2024-03-03"),
            (y, 1, borrower, "2024-03-06", "2024-03-11"),
        ]
        # the dates the orders show: X's line (its order's date), Y's A line and its B line
        assert [ln.get("expected_date") for ln in c.call("order.get", order_id=x)["lines"]] == ["2024-03-03"]
        assert [ln.get("expected_date") for ln in c.call("order.get", order_id=y)["lines"]] == [
            "2024-03-06",
            "2024-03-11",
        ]
        journaled, before = loans(), _view(c, x, y, borrower)
    d.kill9()
    d.start()
    with d.client() as c:
        assert loans() == journaled and _view(c, x, y, borrower) == before
