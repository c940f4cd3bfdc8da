"""What-if through the real daemon, on its read-only socket: a predicted receipt is the
receipt the daemon then makes, a predicted delay is the dates a confirmation then leaves,
a candidate policy is projected, and nothing a what-if is asked (good or bad) changes the
journal or the model."""

from __future__ import annotations

import pytest
from bo_support import SIM_CONFIG, fingerprint, line, submit

from backorder.client import CallError, Client

# The simulated clock starts at 2024-03-01; KETTLE orders exactly what is short, 7 days ahead.
CONFIG = """
[limits]
max_quantity = 100000
[skus.KETTLE]
reorder_point = 0
order_up_to = 0
lead_time_days = 7
[skus.IDLE]
reorder_point = 0
order_up_to = 0
"""


@pytest.fixture
def site(make_daemon):
    """(daemon, read-only socket) with three kettle orders of 2, 3 and 4 units waiting
    for the three purchase orders their shortages raised (all due 2024-03-08)."""
    d = make_daemon(start=False)
    ro = d.sockdir / "ro.sock"
    d.config.write_text(f'[access]\nread_socket = "{ro}"\n' + CONFIG + SIM_CONFIG)
    d.start()
    with d.client() as c:
        for n, qty in enumerate((2, 3, 4), 1):
            submit(c, f"K-{n}", line("KETTLE", qty), email=f"k{n}@example.com")
    return d, ro


def open_requests(c) -> list[dict]:
    return [r for r in c.call("procurement.list")["requests"] if r["sku"] == "KETTLE"]


def allocated(c) -> dict[str, int]:
    orders = c.call("orders.list", sku="KETTLE")["orders"]
    return {o["order_id"]: c.call("order.get", order_id=o["order_id"])["lines"][0]["allocated"] for o in orders}


def test_a_whatif_receipt_is_what_the_real_receipt_does(site):
    d, ro = site
    with d.client() as c, Client(str(ro)) as r:
        assert [q["qty"] for q in open_requests(c)] == [2, 3, 4]
        before = fingerprint(c, "KETTLE")
        answer = r.call("whatif.receipt", sku="KETTLE", qty=4)
        again = r.call("whatif.receipt", sku="KETTLE", qty=4)
        assert fingerprint(c, "KETTLE") == before, "a what-if changed the site"
        assert answer == again
        assert answer["allocated_now"] == 4 and answer["waiting_lines"] == 3
        assert [(m["qty"]) for m in answer["matched"]] == [2, 2]
        rows = answer["lines"]
        assert [(x["place"], x["now"], x["date_before"], x["date_after"]) for x in rows] == [
            (0, 2, "2024-03-08", "now"),
            (1, 2, "2024-03-08", "2024-03-08"),
        ]
        assert rows[0]["email"] == "k1@example.com" and rows[0]["moved_days"] == -7
        predicted = {x["order_id"]: x["now"] for x in rows}

        got = c.call("stock.receive", sku="KETTLE", qty=4)
        assert got["allocated_units"] == 4
        assert {oid: n for oid, n in allocated(c).items() if n} == predicted
        # the units came against the requests the what-if named
        assert [q["open"] for q in open_requests(c)] == [1, 4]


def test_a_whatif_delay_predicts_the_dates_a_confirmation_leaves(site):
    d, ro = site
    with d.client() as c, Client(str(ro)) as r:
        second = open_requests(c)[1]["request_id"]
        before = fingerprint(c, "KETTLE")
        answer = r.call("whatif.delay", request_id=second, date="2024-03-13")
        assert fingerprint(c, "KETTLE") == before
        # supply is pooled in date order: the last line in the queue is the one that waits
        assert answer["affected"] == 1
        (row,) = answer["lines"]
        assert (row["place"], row["email"], row["moved_days"]) == (2, "k3@example.com", 5)
        c.call("procurement.confirm", request_id=second, expected_date="2024-03-13")
        dates = {
            o["order_id"]: c.call("order.get", order_id=o["order_id"])["lines"][0]["expected_date"]
            for o in c.call("orders.list", sku="KETTLE")["orders"]
        }
        assert dates[row["order_id"]] == row["date_after"] == "2024-03-13"
        assert sorted(dates.values()) == ["2024-03-08", "2024-03-08", "2024-03-13"]
        # an earlier date for it again: only that customer moves back
        back = r.call("whatif.delay", request_id=second, date="2024-03-08")
        assert [(x["order_id"], x["moved_days"]) for x in back["lines"]] == [(row["order_id"], -5)]


def test_a_receipt_on_a_later_date_moves_dates_not_units(site):
    d, ro = site
    with d.client() as c, Client(str(ro)) as r:
        third = open_requests(c)[2]["request_id"]
        answer = r.call("whatif.receipt", request_id=third, qty=4, date="2024-03-04")
        assert answer["allocated_now"] == 0 and answer["matched"] == []
        assert [(x["place"], x["date_after"], x["moved_days"]) for x in answer["lines"]] == [(0, "2024-03-04", -4)]
        one = r.call("whatif.receipt", sku="KETTLE", qty=9, date="2024-03-02", limit=1)
        assert one["affected"] == 3 and len(one["lines"]) == 1  # all counted, one listed


def test_whatif_policy_projects_a_candidate_against_the_current_policy(site):
    d, ro = site
    with Client(str(ro)) as r:
        answer = r.call("whatif.policy", sku="KETTLE", reorder_point=3, order_up_to=10, lead_time_days=2, days=30)
        assert answer["demand_from"] == "history" and answer["daily_demand"] == pytest.approx(9 / 30, abs=1e-3)
        cur, cand = answer["current"], answer["candidate"]
        assert (cur["reorder_point"], cand["reorder_point"], cand["order_up_to"]) == (0, 3, 10)
        assert cand["fill_rate"] > cur["fill_rate"]
        assert cand["avg_on_hand"] > cur["avg_on_hand"]
        assert r.call("whatif.policy", sku="IDLE", days=10)["daily_demand"] == 0


@pytest.mark.parametrize(
    ("op", "fields", "code"),
    [
        ("whatif.receipt", {"request_id": "PO-999999", "qty": 1}, "unknown_request"),
        ("whatif.receipt", {"sku": "NOPE", "qty": 1}, "unknown_sku"),
        ("whatif.receipt", {"qty": 1}, "invalid_request"),
        ("whatif.receipt", {"sku": "KETTLE", "qty": 0}, "invalid_quantity"),
        ("whatif.receipt", {"sku": "KETTLE", "qty": -5}, "invalid_quantity"),
        ("whatif.receipt", {"sku": "KETTLE", "qty": 100001}, "invalid_quantity"),
        ("whatif.receipt", {"sku": "KETTLE", "qty": 10**30}, "invalid_quantity"),
        ("whatif.receipt", {"sku": "KETTLE", "qty": 1, "date": "2024-02-29"}, "invalid_date"),
        ("whatif.receipt", {"sku": "KETTLE", "qty": 1, "date": "2024-02-30"}, "invalid_date"),
        ("whatif.delay", {"request_id": "PO-999999", "date": "2024-03-09"}, "unknown_request"),
        ("whatif.delay", {"request_id": "PO-000001", "date": "2023-12-31"}, "invalid_date"),
        ("whatif.policy", {"sku": "KETTLE", "reorder_point": 9, "order_up_to": 1}, "invalid_policy"),
        ("whatif.policy", {"sku": "KETTLE", "days": 0}, "invalid_request"),
    ],
)
def test_bad_whatifs_are_refused_and_change_nothing(site, op, fields, code):
    d, ro = site
    with d.client() as c, Client(str(ro)) as r:
        before = fingerprint(c, "KETTLE")
        with pytest.raises(CallError) as exc:
            r.call(op, **fields)
        assert exc.value.code == code, exc.value
        assert fingerprint(c, "KETTLE") == before


def test_a_sku_with_no_queue_gets_an_empty_answer(site):
    d, ro = site
    with Client(str(ro)) as r:
        answer = r.call("whatif.receipt", sku="IDLE", qty=5)
        assert (answer["lines"], answer["affected"], answer["allocated_now"], answer["waiting_lines"]) == ([], 0, 0, 0)
