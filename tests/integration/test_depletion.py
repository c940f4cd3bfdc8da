"""Warnings before stock runs out, on the real daemon under the stepped clock: the
projection lists a draining SKU (``skus.stockout``), its waiting customer gets one
``depletion`` notice through the file channel before the date they were told, and a
``kill -9`` and restart do not send it again (real process, socket, SQLite, file drop)."""

from __future__ import annotations

import json

from bo_support import line, submit

START = "2026-01-05T09:00:00Z"
DAY = 86400

CONFIG = """
[daemon]
clock = "stepped"
clock_start = "{start}"

[allocation]
mode = "priority"
[allocation.weights]
rush = 1000.0

[notifications]
depletion_check_s = 3600
[notifications.routes]
web = "file"
[notifications.file]
dir = "{drop}"

[skus."SKU-A"]
reorder_point = 0
order_up_to = 10
lead_time_days = 7

[skus."SKU-Q"]
reorder_point = 0
order_up_to = 10
lead_time_days = 7
"""


def advance(c, **how) -> str:
    return c.call("clock.advance", **how)["now"]


def depletion_records(c, order_id: str) -> list[dict]:
    page = c.call("audit.query", order_id=order_id, limit=10000)["records"]
    return [r for r in page if r["type"] == "notice_queued" and r["event"]["kind"] == "depletion"]


def test_a_draining_sku_warns_its_waiting_customer_once_before_the_date_slips(make_daemon, tmp_path):
    drop = tmp_path / "drop"
    d = make_daemon(CONFIG.format(start=START, drop=drop))
    with d.client() as c:
        c.call("stock.receive", sku="SKU-A", qty=60)
        # 56 rush units in the last 28 days: SKU-A drains at 2 rush units a day
        submit(c, "rush-1", line("SKU-A", 56), rush=True, email="rush@example.com")
        waiting = submit(c, "w-1", line("SKU-A", 14), email="wait@example.com")  # 4 allocated, 10 wait
        (po,) = c.call("procurement.list", sku="SKU-A")["requests"]
        assert (po["qty"], po["expected_date"]) == (20, "2026-01-12")
        # the date the customer was told: the promise, ship-by the PO's date + a handling day
        assert waiting["lines"][0]["promise"]["date"] == "2026-01-13"
        # a quiet SKU with stock and no demand: no date, no warning
        c.call("stock.receive", sku="SKU-Q", qty=5)

        out = c.call("skus.stockout")
        assert [s["sku"] for s in out["skus"]] == ["SKU-A"] and out["total"] == 1
        a = out["skus"][0]
        assert (a["date"], a["days"], a["rate"], a["basis"], a["net"], a["inbound"]) == (
            "2026-01-05",
            0.0,
            2.5,  # (56 + 14) units in 28 days; 80 % of them rush
            "recent",
            -10,
            20,
        )
        assert depletion_records(c, waiting["order_id"]) == []  # nothing runs between advances

        advance(c, seconds=60)  # the first depletion check runs within the advance
        (warning,) = depletion_records(c, waiting["order_id"])
        assert warning["at"] < "2026-01-12"  # before the supply the told date rests on is due
        assert warning["actor"] == "system"
        data = warning["event"]["data"]
        assert (data["cause"], data["warned"]) == ("priority_demand", ["priority_demand:SKU-A"])
        assert data["lines"] == [{"line_no": 1, "sku": "SKU-A", "told_date": "2026-01-13", "projected_date": None}]
        notice_id = warning["event"]["notice_id"]
        sent = json.loads((drop / f"{notice_id}.json").read_text())  # delivered within the advance
        assert (sent["kind"], sent["to"]) == ("depletion", "wait@example.com")
        assert sent["subject"].endswith(": your expected date may move")
        assert "the date we told you, 2026-01-13, may slip" in sent["text"]
        advance(c, seconds=DAY)  # 24 more checks: still one warning
        assert len(depletion_records(c, waiting["order_id"])) == 1

    d.kill9()
    d.start()
    with d.client() as c:
        advance(c, seconds=2 * DAY)  # the checks after the restart know who was warned
        assert len(depletion_records(c, waiting["order_id"])) == 1
        notices = c.call("notifications.list", order_id=waiting["order_id"])["notifications"]
        assert [n["kind"] for n in notices if n["kind"] == "depletion"] == ["depletion"]
    assert len([p for p in drop.iterdir() if p.name == f"{notice_id}.json"]) == 1
