"""Delivery promises at a real daemon: every line of an order is answered with a ship-by
date, journaled, shown by order.get; atp.check predicts it without creating anything; a
promised line whose date moves later is told once per move, also across a kill -9."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio
from bo_support import fingerprint, line, read_db, snapshot_seqs, submit

from backorder.actors.events import EVENT_DECODER
from backorder.client import CallError
from backorder.daemon.journal import Journal

CONFIG = """
[promises]
handling_days = 1
tolerance_days = 1
[notifications.routes]
web = "file"
[notifications.file]
dir = "{drop}"
[skus."SKU-A"]
reorder_point = 0
order_up_to = 10
[skus."SKU-B"]
reorder_point = 0
order_up_to = 10
"""


def delay_notices(c, order_id: str) -> list[dict]:
    records = c.call("audit.query", order_id=order_id, limit=1000)["records"]
    return [r["event"] for r in records if r["type"] == "notice_queued" and r["event"]["kind"] == "delay"]


def promise_of(reply: dict, line_no: int = 1) -> dict:
    return next(li for li in reply["lines"] if li["line_no"] == line_no)["promise"]


def test_each_line_is_answered_with_its_promise_and_atp_check_predicts_it(sim, tmp_path):
    d = sim(CONFIG.format(drop=tmp_path / "drop"))
    with d.client() as c:
        c.call("stock.adjust", sku="SKU-B", delta=5, reason="opening count")
        # what a customer would be promised, asked before ordering: nothing is journaled
        seq = c.call("health")["journal"]["last_seq"]
        asked = c.call("atp.check", lines=[{"sku": "SKU-B", "qty": 2}, {"sku": "SKU-A", "qty": 3}])["lines"]
        assert c.call("health")["journal"]["last_seq"] == seq
        placed = submit(c, "o1", line("SKU-B", 2), line("SKU-A", 3), email="o1@example.com")
        assert [li["promise"] for li in asked] == [promise_of(placed, 1), promise_of(placed, 2)]
        (po,) = [r["request_id"] for r in c.call("procurement.list")["requests"] if r["sku"] == "SKU-A"]
        assert promise_of(placed, 1) == {"date": "2024-03-02", "from": "stock", "confidence": 0.98}
        # SKU-A waits for the PO the order raised (policy lead time 7 days: 03-08) + 1 day handling
        assert promise_of(placed, 2) == {"date": "2024-03-09", "from": po, "confidence": 0.6}
        # ship complete: both lines ship with the last
        whole = submit(c, "o2", line("SKU-B", 1), line("SKU-A", 1), email="o2@example.com", ship_complete=True)
        assert promise_of(whole, 1)["date"] == promise_of(whole, 2)["date"] == "2024-03-09"
        # a duplicate repeats the first promise
        again = submit(c, "o1", line("SKU-B", 2), line("SKU-A", 3))
        assert again["duplicate"] and promise_of(again, 2) == promise_of(placed, 2)
        got = c.call("order.get", order_id=placed["order_id"])
        assert got["lines"][1]["promise"] == {**promise_of(placed, 2), "told": "2024-03-09", "expected": "2024-03-09"}
        # one event per order, in the journal before the reply
        rows = read_db(
            d.db, "SELECT body FROM events WHERE type = 'lines_promised' AND order_id = ?", (placed["order_id"],)
        )
        assert len(rows) == 1


def test_a_moved_date_is_told_once_per_move_and_survives_kill9(sim, tmp_path):
    d = sim(CONFIG.format(drop=tmp_path / "drop"))
    with d.client() as c:
        o = submit(c, "o1", line("SKU-A", 3), email="o1@example.com")
        (po,) = [r["request_id"] for r in c.call("procurement.list")["requests"] if r["sku"] == "SKU-A"]
        first = promise_of(o)
        assert first["date"] == "2024-03-09"
        c.call("procurement.confirm", request_id=po, expected_date="2024-03-09")  # 1 day: within tolerance
        assert delay_notices(c, o["order_id"]) == []
        c.call("procurement.confirm", request_id=po, expected_date="2024-03-12")  # ships by 03-13: 4 days late
        (n,) = delay_notices(c, o["order_id"])
        assert [(li["old_date"], li["new_date"], li["promised_date"]) for li in n["data"]["lines"]] == [
            ("2024-03-09", "2024-03-13", "2024-03-09")
        ]
    d.kill9()
    d.start()
    with d.client() as c:
        got = c.call("order.get", order_id=o["order_id"])["lines"][0]["promise"]
        assert (got["date"], got["from"], got["told"], got["expected"]) == (
            "2024-03-09",
            po,
            "2024-03-13",
            "2024-03-13",
        )
        # anything that rechecks the SKU finds the move already told: no second notice
        c.call("stock.adjust", sku="SKU-A", delta=1, reason="found one")
        c.call("procurement.confirm", request_id=po, expected_date="2024-03-12")
        assert len(delay_notices(c, o["order_id"])) == 1
        c.call("procurement.confirm", request_id=po, expected_date="2024-03-20")  # a new move: told again
        assert [li["new_date"] for n in delay_notices(c, o["order_id"]) for li in n["data"]["lines"]] == [
            "2024-03-13",
            "2024-03-21",
        ]
        assert c.call("order.get", order_id=o["order_id"])["lines"][0]["promise"]["date"] == "2024-03-09"


def promised_rows(d, order_id: str) -> list[tuple[int, str]]:
    """(seq, cause) of the order's lines_promised events."""
    return read_db(
        d.db, "SELECT seq, cause FROM events WHERE type = 'lines_promised' AND order_id = ? ORDER BY seq", (order_id,)
    )


def journal_prefix(db: Path, upto: int) -> None:
    """Make ``db`` hold only its first ``upto`` events, written again through the real
    journal (the journal is append-only: its rows cannot be deleted)."""
    whole = db.with_name("whole.db")
    for suffix in ("", "-wal", "-shm"):  # the database and its write-ahead log, as the kill left them
        if os.path.exists(f"{db}{suffix}"):
            os.replace(f"{db}{suffix}", f"{whole}{suffix}")
    rows = read_db(whole, "SELECT seq, sku, order_id, cause, corr, body, actor FROM events WHERE seq <= ?", (upto,))
    journal = Journal(db)
    journal.open()

    async def write() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(journal.run)
            for seq, sku, order_id, cause, corr, body, actor in rows:
                journal.cause, journal.corr, journal.actor = cause, corr, actor
                assert journal.append_body(EVENT_DECODER.decode(body), body, sku, order_id) == seq
            await journal.flush()
            nursery.cancel_scope.cancel()

    trio.run(write)
    journal.close()


def test_an_order_accepted_but_not_promised_when_the_daemon_died_is_promised_at_start_once(sim, tmp_path):
    d = sim(CONFIG.format(drop=tmp_path / "drop"))
    with d.client() as c:
        # no notification route for this channel: nothing is journaled after the promise
        o = submit(c, "o1", line("SKU-A", 3), channel="marketplace")
        (po,) = [r["request_id"] for r in c.call("procurement.list")["requests"] if r["sku"] == "SKU-A"]
        assert promise_of(o) == {"date": "2024-03-09", "from": po, "confidence": 0.6}
    d.kill9()
    # lines_promised is a later commit than the order's acceptance (after every SKU served
    # it): a kill -9 between the two leaves the journal's prefix before it, and no snapshot
    (seq, _cause), *more = promised_rows(d, o["order_id"])
    assert not more and read_db(d.db, "SELECT MAX(seq) FROM events")[0][0] == seq
    assert snapshot_seqs(d.db) == []
    journal_prefix(d.db, seq - 1)
    d.start()
    with d.client() as c:
        got = c.call("order.get", order_id=o["order_id"])["lines"][0]["promise"]
        # the same rule at start-up: it waits for the same PO
        assert {k: got[k] for k in ("date", "from", "told")} == {"date": "2024-03-09", "from": po, "told": "2024-03-09"}
        # a resend of the order gets the promise too (its first reply never went out)
        assert promise_of(submit(c, "o1", line("SKU-A", 3), channel="marketplace"))["date"] == "2024-03-09"
    (row,) = promised_rows(d, o["order_id"])
    assert row[1] == "recovery"
    d.restart()  # a clean restart, then a kill -9 and a start without snapshot: promised once
    d.kill9()
    d.start()
    assert promised_rows(d, o["order_id"]) == [row]


def test_a_rush_order_served_ahead_tells_the_customer_it_pushed_back(sim, tmp_path):
    d = sim(
        CONFIG.format(drop=tmp_path / "drop").replace(
            'order_up_to = 10\n[skus."SKU-B"]', 'order_up_to = 1\n[skus."SKU-B"]'
        )
    )
    with d.client() as c:
        o = submit(c, "o1", line("SKU-A", 10), email="o1@example.com")  # a PO for 11 units, due 03-08
        assert promise_of(o)["date"] == "2024-03-09"
        c.call("sku.configure", sku="SKU-A", lead_time_days=14)  # the next PO comes later
        c.call("policy.set", mode="priority")
        # asked first: a rush line would be served ahead of o1, a plain one behind it
        asked = {
            rush: c.call("atp.check", sku="SKU-A", qty=5, rush=rush)["lines"][0]["promise"] for rush in (True, False)
        }
        assert (asked[False]["date"], asked[False]["from"]) == ("2024-03-16", "lead_time")  # nothing open covers it
        rush = submit(c, "r1", line("SKU-A", 5), email="r1@example.com", rush=True)
        assert promise_of(rush)["date"] == "2024-03-09"  # it takes 5 of the 11 units due 03-08
        assert asked[True] == promise_of(rush)
        (n,) = delay_notices(c, o["order_id"])
        assert [(li["old_date"], li["new_date"]) for li in n["data"]["lines"]] == [("2024-03-09", "2024-03-16")]


def test_an_expedited_order_that_jumps_a_promised_line_tells_its_customer(sim, tmp_path):
    d = sim(
        CONFIG.format(drop=tmp_path / "drop").replace(
            'order_up_to = 10\n[skus."SKU-B"]', 'order_up_to = 1\n[skus."SKU-B"]'
        )
    )
    with d.client() as c:
        o = submit(c, "o1", line("SKU-A", 10), email="o1@example.com")  # a PO for 11 units, due 03-08
        c.call("sku.configure", sku="SKU-A", lead_time_days=14)
        later = submit(c, "o2", line("SKU-A", 5), email="o2@example.com")  # waits for the next PO, due 03-15
        assert (promise_of(o)["date"], promise_of(later)["date"]) == ("2024-03-09", "2024-03-16")
        assert delay_notices(c, o["order_id"]) == []
        c.call("order.expedite", order_id=later["order_id"], reason="hospital")
        (n,) = delay_notices(c, o["order_id"])
        assert [(li["old_date"], li["new_date"]) for li in n["data"]["lines"]] == [("2024-03-09", "2024-03-16")]


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"sku": "NO-SUCH-SKU", "qty": 1}, "unknown_sku"),
        ({"sku": "SKU-A", "qty": 0}, "invalid_quantity"),
        ({"sku": "SKU-A", "qty": -3}, "invalid_quantity"),
        ({"sku": "SKU-A", "qty": 2_000_000}, "invalid_quantity"),
        ({"sku": "SKU-A", "qty": 2**70}, "invalid_quantity"),
        ({"sku": "SKU-A", "qty": 1.5}, "invalid_quantity"),
        ({"lines": [{"sku": "SKU-A", "qty": 1}, {"sku": "NOPE", "qty": 1}]}, "unknown_sku"),
        ({"sku": "SKU-A"}, "invalid_request"),
        ({}, "invalid_request"),
        ({"sku": "SKU-A", "qty": 1, "lines": [{"sku": "SKU-A", "qty": 1}]}, "invalid_request"),
    ],
)
def test_atp_check_refuses_bad_input_with_a_stable_code_and_changes_nothing(shared_daemon, fields, code):
    with shared_daemon.client() as c:
        c.call("sku.configure", sku="SKU-A")
        before = fingerprint(c, "SKU-A")
        with pytest.raises(CallError) as exc:
            c.call("atp.check", **fields)
        assert exc.value.code == code
        assert fingerprint(c, "SKU-A") == before


def test_atp_check_for_quantity_no_open_supply_covers_promises_the_lead_time(shared_daemon):
    with shared_daemon.client() as c:
        c.call("sku.configure", sku="SKU-R")
        seq = c.call("health")["journal"]["last_seq"]
        (li,) = c.call("atp.check", sku="SKU-R", qty=4)["lines"]
        assert li["promise"]["from"] == "lead_time"  # nothing open covers it
        assert c.call("health")["journal"]["last_seq"] == seq
