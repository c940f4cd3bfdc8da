"""A promise's confidence is its kind's record, at a real daemon under the stepped clock:
promises resting on one supplier's purchase orders that ship after their date lower the
confidence of the next ones, promises kept raise it again, ``stats`` shows the counts,
and a kill -9 (replay) or a clean restart (snapshot) gives back the same counts."""

from __future__ import annotations

from bo_support import line, submit

CONFIG = """
[daemon]
clock = "stepped"
clock_start = "2024-03-01T00:00:00Z"

[fulfillment]
auto_pick = true

[skus."SKU-A"]
reorder_point = 0
order_up_to = 0
lead_time_days = 7
"""


def promise_of(reply: dict) -> dict:
    (li,) = reply["lines"]
    return li["promise"]


def order_and_po(c, ext: str) -> tuple[dict, str]:
    """An order of one SKU-A that waits for the purchase order it raises (one unit each)."""
    before = {r["request_id"] for r in c.call("procurement.list")["requests"]}
    placed = submit(c, ext, line("SKU-A", 1))
    (po,) = {r["request_id"] for r in c.call("procurement.list")["requests"]} - before
    assert promise_of(placed)["from"] == po
    return placed, po


def shipped(c, placed: dict) -> bool:
    return c.call("order.get", order_id=placed["order_id"])["status"] == "shipped"


def test_confidence_falls_as_a_suppliers_promises_are_missed_rises_as_they_are_kept_and_survives_kill9(make_daemon):
    d = make_daemon(CONFIG)
    with d.client() as c:
        late = [order_and_po(c, f"late-{n}") for n in range(3)]
        # nothing known of the supplier yet: the rule of thumb (a policy lead time: 0.6)
        assert {promise_of(o)["confidence"] for o, _ in late} == {0.6}
        assert {promise_of(o)["date"] for o, _ in late} == {"2024-03-09"}
        assert c.call("stats")["promises"] == {}
        c.call("clock.advance", to="2024-03-12T09:00:00Z")  # three days past the promised day
        for placed, po in late:
            c.call("stock.receive", sku="SKU-A", qty=1, reference=po)
            assert shipped(c, placed)  # auto pick: shipped on receipt, 03-12
        assert c.call("stats")["promises"] == {"po:default": {"kept": 0, "missed": 3}}
        # the next promise of the same supplier carries its record: (0.6 x 10 + 0) / 13
        placed, po = order_and_po(c, "after-misses")
        low = promise_of(placed)["confidence"]
        assert low == round(6 / 13, 3)
        # a unit more on that PO: atp.check's line would wait for it, and gets the same
        c.call("procurement.amend", request_id=po, qty=2)
        asked = c.call("atp.check", lines=[{"sku": "SKU-A", "qty": 1}])["lines"][0]["promise"]
        assert (asked["from"], asked["confidence"]) == (po, low)
        c.call("procurement.amend", request_id=po, qty=1)
        c.call("stock.receive", sku="SKU-A", qty=1, reference=po)  # early: kept
        assert shipped(c, placed)
        kept, po = order_and_po(c, "after-a-keep")
        assert promise_of(kept)["confidence"] == round(7 / 14, 3) > low
        assert c.call("order.get", order_id=kept["order_id"])["lines"][0]["promise"]["confidence"] == 0.5
        c.call("stock.receive", sku="SKU-A", qty=1, reference=po)
        counts = c.call("stats")["promises"]
        assert counts == {"po:default": {"kept": 2, "missed": 3}}
        # one more promise waiting, whose outcome is decided after the restarts
        waiting, po = order_and_po(c, "waiting")
        assert promise_of(waiting)["confidence"] == round(8 / 15, 3)
    d.kill9()  # no snapshot since start: the journal is replayed
    d.start()
    with d.client() as c:
        assert c.call("health")["journal"]["snapshot_seq"] == 0  # rebuilt by a replay of every event
        assert c.call("stats")["promises"] == counts
        c.call("stock.receive", sku="SKU-A", qty=1, reference=po)
        counts = {"po:default": {"kept": 3, "missed": 3}}
        assert c.call("stats")["promises"] == counts
    d.restart()  # a clean stop snapshots the model: the next start restores it
    with d.client() as c:
        journal = c.call("health")["journal"]
        assert journal["snapshot_seq"] == journal["last_seq"] > 0  # restored, nothing replayed
        assert c.call("stats")["promises"] == counts
        placed, _ = order_and_po(c, "after-restart")
        assert promise_of(placed)["confidence"] == round(9 / 16, 3)
        # a promise of another kind (nothing open covers it: the lead time) has no record yet
        asked = c.call("atp.check", lines=[{"sku": "SKU-A", "qty": 1}])["lines"][0]["promise"]
        assert (asked["from"], asked["confidence"]) == ("lead_time", 0.6)
