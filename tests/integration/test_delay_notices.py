"""Delay notices: moving a purchase order's date notifies exactly the customers whose
waiting lines that supply covers, and only when the new date is later than the date each
was last told (its promise, then each delay) by more than ``[promises] tolerance_days`` (so
small moves add up)."""

from __future__ import annotations

from bo_support import line, submit

CONFIG = """
# every line is promised at order time: its delays are judged against the ship-by date told,
# with [promises] tolerance_days (tolerance_hours below is no longer read: a file that
# sets it still loads); no handling time, so a ship-by date is the date its supply is expected
[promises]
handling_days = 0
tolerance_days = 1
[notifications]
tolerance_hours = 24
# "web" orders are told (dropped as files); the marketplace has no route, so it never is
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
    """The delay notices journaled for an order (the events themselves, with their data)."""
    records = c.call("audit.query", order_id=order_id, limit=1000)["records"]
    return [r["event"] for r in records if r["type"] == "notice_queued" and r["event"]["kind"] == "delay"]


def told(c, order_id: str) -> list[tuple[str, str]]:
    return [(li["old_date"], li["new_date"]) for n in delay_notices(c, order_id) for li in n["data"]["lines"]]


def test_a_moved_purchase_order_tells_exactly_its_customers_past_the_tolerance(sim, tmp_path):
    d = sim(CONFIG.format(drop=tmp_path / "drop"))
    with d.client() as c:
        # opening stock by a count: a receipt would be matched to the open PO (it is no delivery of it)
        c.call("stock.adjust", sku="SKU-A", delta=2, reason="opening count")
        served = submit(c, "c0", line("SKU-A", 2), email="c0@example.com")  # from stock: never waits
        (po_a,) = [r for r in c.call("procurement.list")["requests"] if r["sku"] == "SKU-A"]
        assert po_a["expected_date"] == "2024-03-08"
        c1 = submit(c, "c1", line("SKU-A", 3), email="c1@example.com")
        c2 = submit(c, "c2", line("SKU-A", 4), email="c2@example.com")
        c3 = submit(c, "c3", line("SKU-B", 2), email="c3@example.com")  # waits on SKU-B's own PO
        # waits on the same PO as c1 and c2, but its sales channel has no notification route
        mkt = submit(c, "m1", line("SKU-A", 1), channel="marketplace", email="m1@example.com")
        waiting = [c1, c2, c3]
        assert all(o["status"] == "backordered" for o in [*waiting, mkt])

        def move(date: str) -> None:
            c.call("procurement.confirm", request_id=po_a["request_id"], expected_date=date)

        move("2024-03-09")  # 24 h later than told: not MORE than the tolerance
        assert [told(c, o["order_id"]) for o in waiting] == [[], [], []]
        move("2024-03-10")  # 48 h later than the date told (03-08): notify c1 and c2 only
        assert told(c, c1["order_id"]) == [("2024-03-08", "2024-03-10")]
        assert told(c, c2["order_id"]) == [("2024-03-08", "2024-03-10")]
        assert told(c, c3["order_id"]) == [] and told(c, served["order_id"]) == []
        assert c.call("notifications.list", order_id=mkt["order_id"])["notifications"] == []
        move("2024-03-11")  # 24 h after the new date told: nothing
        move("2024-03-12")  # the two small moves add up to 48 h: notify again
        assert told(c, c1["order_id"])[-1] == ("2024-03-10", "2024-03-12")
        assert len(delay_notices(c, c2["order_id"])) == 2
        move("2024-03-05")  # earlier: good news is not a delay
        assert len(delay_notices(c, c1["order_id"])) == 2
    d.restart()  # the dates told are part of the state: they survive a restart
    with d.client() as c:
        c.call("procurement.confirm", request_id=po_a["request_id"], expected_date="2024-03-13")
        assert len(delay_notices(c, c1["order_id"])) == 2  # 24 h after 03-12
        c.call("procurement.confirm", request_id=po_a["request_id"], expected_date="2024-03-14")
        assert told(c, c1["order_id"])[-1] == ("2024-03-12", "2024-03-14")
        assert told(c, c3["order_id"]) == []
        kinds = [n["kind"] for n in c.call("notifications.list", order_id=c1["order_id"])["notifications"]]
        assert kinds == ["backordered", "delay", "delay", "delay"]
        # no route, no notice of any kind - the journal still has the facts of its wait
        trail = [r["type"] for r in c.call("audit.query", order_id=mkt["order_id"])["records"]]
        assert "line_backordered" in trail and "notice_queued" not in trail
