"""Procurement as it really goes, through a real daemon: a request cancelled, closed short
or amended re-plans its SKU at once; a supplier's acknowledgement or ship notice moves the
dates of the lines waiting for it and tells their customers; a receipt without a request
reference consumes the open requests oldest date first (so inbound is not counted twice
and the next reorder comes in time), and what comes beyond them is kept and flagged. All
of it survives kill -9; refused changes change nothing."""

from __future__ import annotations

import pytest
from bo_support import fingerprint, line, submit

from backorder.client import CallError

# The simulated clock starts at 2024-03-01: a 7-day lead time is due 2024-03-08.
TOLD = """
# lines are promised at order time; with no handling time a line's ship-by date (what a
# delay notice tells) is the date its supply is expected; 1 day = the 24 h below
[promises]
handling_days = 0
tolerance_days = 1
[notifications]
tolerance_hours = 24
[notifications.routes]
web = "file"
[notifications.file]
dir = "{drop}"
[skus."SKU-A"]
reorder_point = 0
order_up_to = 10
"""


def requests(c, sku: str | None = None, status: str = "open") -> list[dict]:
    rows = c.call("procurement.list", status=status)["requests"]
    return [r for r in rows if sku is None or r["sku"] == sku]


def delays(c, order_id: str) -> list[tuple[str, str]]:
    """(old date, new date) of every delay notice journaled for the order."""
    records = c.call("audit.query", order_id=order_id, limit=1000)["records"]
    return [
        (li["old_date"], li["new_date"])
        for r in records
        if r["type"] == "notice_queued" and r["event"]["kind"] == "delay"
        for li in r["event"]["data"]["lines"]
    ]


def expected(c, order_id: str) -> str | None:
    return c.call("order.get", order_id=order_id)["lines"][0]["expected_date"]


def refused(c, code: str, op: str, **fields) -> None:
    with pytest.raises(CallError) as exc:
        c.call(op, **fields)
    assert exc.value.code == code, (op, fields, exc.value)


def test_cancel_and_short_close_raise_the_supply_the_position_needs_and_tell_the_customers(sim, tmp_path):
    d = sim(TOLD.format(drop=tmp_path / "drop"))
    with d.client() as c:
        (po1,) = requests(c, "SKU-A")  # raised at start: the position 0 is at the reorder point
        c.call("procurement.confirm", request_id=po1["request_id"], expected_date="2024-03-04")
        o1 = submit(c, "c1", line("SKU-A", 3), email="c1@example.com")
        assert expected(c, o1["order_id"]) == "2024-03-04"

        res = c.call("procurement.cancel", request_id=po1["request_id"], reason="supplier out of stock")
        assert (res["status"], res["outcome"], res["close_reason"]) == ("closed", "cancelled", "supplier out of stock")
        # what will not come is replaced at once: back up to order-up-to 10 for 3 waiting units
        (po2,) = res["inbound_requests"]
        assert (po2["qty"], po2["expected_date"]) == (13, "2024-03-08")
        assert res["inbound"] == 13
        assert expected(c, o1["order_id"]) == "2024-03-08"
        assert delays(c, o1["order_id"]) == [("2024-03-04", "2024-03-08")]

        # two of the 13 come; the supplier will send no more: close short, re-plan again
        got = c.call("stock.receive", sku="SKU-A", qty=2, reference=po2["request_id"])
        assert got["allocated_units"] == 2
        res = c.call("procurement.close", request_id=po2["request_id"], reason="discontinued")
        assert (res["outcome"], res["received"], res["open"]) == ("short_closed", 2, 0)
        (po3,) = res["inbound_requests"]
        assert po3["qty"] == 11  # position 2 + 0 - 2 - 1 = -1, back up to 10
        assert expected(c, o1["order_id"]) == "2024-03-08"

        res = c.call("procurement.amend", request_id=po3["request_id"], qty=20)
        assert (res["qty"], res["ordered"], res["open"], res["inbound"]) == (20, 11, 20, 20)
        # cancelled, closed and amended are journaled as such
        trail = [r["type"] for r in c.call("audit.query", sku="SKU-A", limit=1000)["records"]]
        for kind in ("request_cancelled", "request_short_closed", "request_amended"):
            assert kind in trail
        before = requests(c, "SKU-A", "all")
    d.kill9()
    d.start()
    with d.client() as c:
        assert requests(c, "SKU-A", "all") == before
        assert [r["outcome"] for r in before] == ["cancelled", "short_closed", None]
        assert expected(c, o1["order_id"]) == "2024-03-08"
        assert c.call("sku.get", sku="SKU-A")["inbound"] == 20


def test_acknowledgements_and_ship_notices_move_the_dates_and_tell_the_customers(sim, tmp_path):
    d = sim(TOLD.format(drop=tmp_path / "drop"))
    with d.client() as c:
        (po,) = requests(c, "SKU-A")
        rid = po["request_id"]
        o1 = submit(c, "c1", line("SKU-A", 3), email="c1@example.com")
        assert expected(c, o1["order_id"]) == "2024-03-08"

        # the supplier confirms 8 of the 10 for four days later
        res = c.call("procurement.acknowledge", request_id=rid, qty=8, expected_date="2024-03-12")
        assert (res["qty"], res["acknowledged"], res["expected_date"], res["inbound"]) == (8, 8, "2024-03-12", 8)
        assert res["inbound_requests"] == [res["inbound_requests"][0]]  # 8 still cover: nothing new raised
        assert expected(c, o1["order_id"]) == "2024-03-12"
        assert delays(c, o1["order_id"]) == [("2024-03-08", "2024-03-12")]

        # an advance ship notice for 5 of them, arriving later still
        asn = {"request_id": rid, "lines": [{"sku": "SKU-A", "qty": 5}], "expected_date": "2024-03-15"}
        res = c.call("procurement.ship_notice", reference="ASN-1", **asn)
        assert (res["duplicate"], res["in_transit"], res["expected_date"]) == (False, 5, "2024-03-15")
        assert res["ship_notices"] == [{"reference": "ASN-1", "qty": 5}]
        assert delays(c, o1["order_id"])[-1] == ("2024-03-12", "2024-03-15")
        # the SKU's own trail (the outbox delivering the delay notices meanwhile journals
        # its attempts too, at its own pace, so the journal's last seq is no measure)
        trail = c.call("audit.query", sku="SKU-A", limit=1000)["records"]
        again = c.call("procurement.ship_notice", reference="ASN-1", **asn)  # a resend: nothing changes
        assert again["duplicate"] is True
        assert c.call("audit.query", sku="SKU-A", limit=1000)["records"] == trail
        before = requests(c, "SKU-A", "all")
    d.kill9()
    d.start()
    with d.client() as c:
        assert requests(c, "SKU-A", "all") == before
        assert expected(c, o1["order_id"]) == "2024-03-15"
        # the dates told survived too: the same date again is no delay
        c.call("procurement.confirm", request_id=rid, expected_date="2024-03-15")
        assert len(delays(c, o1["order_id"])) == 2


def test_a_receipt_without_reference_consumes_open_requests_oldest_date_first(sim):
    d = sim('[skus."SKU-M"]\nreorder_point = 5\norder_up_to = 20\n')
    with d.client() as c:
        (po1,) = requests(c, "SKU-M")
        assert po1["qty"] == 20
        c.call("procurement.confirm", request_id=po1["request_id"], expected_date="2024-03-10")
        submit(c, "m1", line("SKU-M", 15))
        po1, po2 = requests(c, "SKU-M")
        assert (po2["qty"], po2["expected_date"]) == (15, "2024-03-08")  # due before po1

        got = c.call("stock.receive", sku="SKU-M", qty=20, reference="DN-77")  # a delivery note, not a request
        assert got["matched"] == [
            {"request_id": po2["request_id"], "qty": 15},
            {"request_id": po1["request_id"], "qty": 5},
        ]
        assert (got["request_id"], got["over_delivered"], got["inbound"]) == (None, 0, 15)
        assert [(r["request_id"], r["received"]) for r in requests(c, "SKU-M")] == [(po1["request_id"], 5)]

        # 16 more ordered: the position falls to 4, under the reorder point, and a request
        # is raised now - counting the 20 units as stock AND as inbound would have put it
        # at 24 and raised nothing until far later
        submit(c, "m2", line("SKU-M", 16))
        po1_, po3 = requests(c, "SKU-M")
        assert po1_["request_id"] == po1["request_id"] and po3["qty"] == 16

        # 40 come, 31 expected: everything is kept, the 9 extra flagged as over-delivered
        got = c.call("stock.receive", sku="SKU-M", qty=40)
        assert got["matched"] == [
            {"request_id": po3["request_id"], "qty": 16},
            {"request_id": po1["request_id"], "qty": 24},
        ]
        assert (got["over_delivered"], got["on_hand"], got["inbound"]) == (9, 60, 0)
        closed = {r["request_id"]: r for r in requests(c, "SKU-M", "closed")}
        assert closed[po1["request_id"]]["over_delivered"] == 9
        assert closed[po1["request_id"]]["outcome"] == "received"
        assert c.call("sku.get", sku="SKU-M")["over_delivered"] == 9
        before = (requests(c, "SKU-M", "all"), c.call("sku.get", sku="SKU-M")["over_delivered"])
    d.kill9()
    d.start()
    with d.client() as c:
        assert (requests(c, "SKU-M", "all"), c.call("sku.get", sku="SKU-M")["over_delivered"]) == before


def test_bad_procurement_changes_are_refused_with_their_code_and_change_nothing(sim):
    d = sim('[skus."SKU-A"]\nreorder_point = 0\norder_up_to = 10\n[skus."SKU-B"]\nreorder_point = 0\norder_up_to = 4\n')
    with d.client() as c:
        (po,) = requests(c, "SKU-A")
        rid = po["request_id"]
        c.call("procurement.ship_notice", request_id=rid, lines=[{"sku": "SKU-A", "qty": 6}],
               expected_date="2024-03-09", reference="ASN-1")  # fmt: skip
        c.call("stock.receive", sku="SKU-A", qty=1, reference=rid)
        (po_b,) = requests(c, "SKU-B")
        c.call("procurement.cancel", request_id=po_b["request_id"], reason="not needed")
        before = fingerprint(c, "SKU-A", "SKU-B")
        bad = [
            ("request_closed", "procurement.cancel", {"request_id": po_b["request_id"]}),  # cancelling twice
            ("request_closed", "procurement.amend", {"request_id": po_b["request_id"], "qty": 3}),
            ("request_closed", "procurement.close", {"request_id": po_b["request_id"]}),
            ("unknown_request", "procurement.acknowledge",
             {"request_id": "PO-999999", "qty": 1, "expected_date": "2024-03-09"}),
            ("over_ordered", "procurement.acknowledge", {"request_id": rid, "qty": 11, "expected_date": "2024-03-09"}),
            ("invalid_quantity", "procurement.amend", {"request_id": rid, "qty": 10}),  # what it already is
            ("request_partly_received", "procurement.cancel", {"request_id": rid}),
            ("over_ordered", "procurement.ship_notice",  # 6 announced: 5 more is over the 10 ordered
             {"request_id": rid, "lines": [{"sku": "SKU-A", "qty": 5}], "expected_date": "2024-03-09",
              "reference": "ASN-2"}),
            ("ship_notice_conflict", "procurement.ship_notice",
             {"request_id": rid, "lines": [{"sku": "SKU-A", "qty": 2}], "expected_date": "2024-03-09",
              "reference": "ASN-1"}),
            ("ship_notice_sku", "procurement.ship_notice",
             {"request_id": rid, "lines": [{"sku": "SKU-B", "qty": 1}], "expected_date": "2024-03-09",
              "reference": "ASN-3"}),
            ("invalid_date", "procurement.acknowledge", {"request_id": rid, "qty": 5, "expected_date": "2024-02-30"}),
            ("invalid_quantity", "procurement.amend", {"request_id": rid, "qty": 0}),
        ]  # fmt: skip
        for code, op, fields in bad:
            refused(c, code, op, **fields)
        assert fingerprint(c, "SKU-A", "SKU-B") == before
