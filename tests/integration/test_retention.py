"""Retention through a real daemon on the stepped clock: closed orders leave memory once
``[retention] hot_days`` engine days have passed, reads and duplicate checks still find
them (``archived: true``), the KPIs do not move, and a kill -9 or a clean restart gives
the same."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from bo_support import line, read_db, snapshot_seqs, submit
from test_stepped_clock import advance

from backorder.launcher import wait_until

pytestmark = pytest.mark.timeout(120)

START = "2026-01-05T09:00:00Z"
DAY = 86400

CONFIG = f"""
[daemon]
clock = "stepped"
clock_start = "{START}"

[retention]
hot_days = 2

[skus."SKU-A"]
reorder_point = 0
order_up_to = 0
"""


def _kpis_all(c) -> dict:
    """Every KPI's since-start window and the order count (time passing moves only the
    dated windows; archiving must move nothing)."""
    st = c.call("stats")
    out = {name: [w for w in k["windows"] if w["window"] == "all"] for name, k in st["kpis"].items()}
    out["orders"] = st["counts"]["orders"]
    out["orders_shipped"] = st["counts"]["orders_shipped"]
    return out


def _held(c) -> dict:
    counts = c.call("stats")["counts"]
    return {"hot": counts["hot_orders"], "archived": counts["archived_orders"]}


def _story(c) -> dict:
    c.call("stock.receive", sku="SKU-A", qty=5)
    shipped = submit(c, "R-1", line("SKU-A", 2))
    (sid,) = shipped["shipments"]
    c.call("pick.confirm", shipment_id=sid)
    cancelled = submit(c, "R-2", line("SKU-A", 9))  # 3 allocated, 6 backordered
    c.call("order.cancel", order_id=cancelled["order_id"], reason="changed mind")
    open_ = submit(c, "R-3", line("SKU-A", 1))  # allocated, waits for its pick: open
    return {"shipped": shipped["order_id"], "cancelled": cancelled["order_id"], "open": open_["order_id"]}


def _archived_view(c, ids: dict) -> dict:
    return {
        "get": c.call("order.get", order_id=ids["shipped"]),
        "by_key": c.call("order.get", channel="web", external_id="R-2"),
        "find": c.call("orders.find", query="R-1")["orders"],
        "dup": submit(c, "R-1", line("SKU-A", 2)),
        "held": _held(c),
        "kpis": _kpis_all(c),
        "open": c.call("order.get", order_id=ids["open"])["status"],
    }


def _same_after_kill9_and_restart(d, read, expected: dict) -> None:
    """``read`` of the daemon gives ``expected`` after a kill -9 (the journal replayed) and
    after a clean stop (restored from the snapshot it writes); the daemon is left running."""
    d.kill9()
    d.start()
    with d.client() as c:
        assert read(c) == expected  # replayed from the journal
    d.stop()  # a clean stop writes a snapshot
    d.start()
    with d.client() as c:
        assert read(c) == expected  # restored from the snapshot


def test_closed_orders_leave_memory_and_stay_readable_across_kill9_and_restart(make_daemon):
    d = make_daemon(CONFIG)
    with d.client() as c:
        ids = _story(c)
        hot_detail = c.call("order.get", order_id=ids["shipped"])
        assert hot_detail["status"] == "shipped" and "archived" not in hot_detail
        kpis = _kpis_all(c)
        assert _held(c) == {"hot": 3, "archived": 0}

        advance(c, seconds=2 * DAY)  # closed on day 0, two days kept: still hot on day 2
        assert _held(c) == {"hot": 3, "archived": 0}
        advance(c, seconds=DAY)  # the day-3 boundary: both closed orders leave memory
        assert _held(c) == {"hot": 1, "archived": 2}

        view = _archived_view(c, ids)
        assert view["get"]["archived"] is True
        assert {k: v for k, v in view["get"].items() if k not in ("archived", "archived_at")} == hot_detail
        assert view["by_key"]["order_id"] == ids["cancelled"] and view["by_key"]["status"] == "cancelled"
        assert view["by_key"]["archived"] is True
        assert [(o["order_id"], o["archived"]) for o in view["find"]] == [(ids["shipped"], True)]
        assert view["dup"]["duplicate"] is True and view["dup"]["order_id"] == ids["shipped"]
        assert view["kpis"] == kpis  # archiving moved no KPI
        assert view["open"] == "picking"
        last_seq = c.call("health")["journal"]["last_seq"]
        assert submit(c, "R-2", line("SKU-A", 1))["duplicate"] is True
        assert c.call("health")["journal"]["last_seq"] == last_seq  # a duplicate journals nothing
        audit = c.call("audit.query", order_id=ids["shipped"])["records"]
        assert {"order_received", "shipment_shipped"} <= {r["type"] for r in audit}

    rows = read_db(d.db, "SELECT order_id, channel, account, external_id FROM archived_orders ORDER BY order_id")
    assert rows == [(ids["shipped"], "web", "default", "R-1"), (ids["cancelled"], "web", "default", "R-2")]
    out = subprocess.run(
        [sys.executable, "-m", "backorder", "export", "orders", "--format", "jsonl", "--db", str(d.db)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    exported = {o["order_id"]: o for o in map(json.loads, out.stdout.splitlines())}
    assert set(exported) == set(ids.values())  # archived ones included
    assert exported[ids["shipped"]] == view["get"]

    _same_after_kill9_and_restart(d, lambda c: _archived_view(c, ids), view)
    with d.client() as c:
        c.call("pick.confirm", shipment_id=c.call("order.get", order_id=ids["open"])["shipments"][0]["shipment_id"])
        advance(c, seconds=3 * DAY)
        assert _held(c) == {"hot": 0, "archived": 3}
        assert c.call("order.get", order_id=ids["open"])["archived"] is True


def test_periodic_snapshots_are_written_by_a_child_from_the_journal_and_restore_after_kill9(make_daemon):
    d = make_daemon(CONFIG.replace("[daemon]\n", "[daemon]\nsnapshot_every = 1000\n", 1))
    with d.client() as c:
        c.call("stock.receive", sku="SKU-A", qty=10_000)
        for n in range(400):  # ~3 events each: past snapshot_every
            submit(c, f"S-{n}", line("SKU-A", 1))
        journal = wait_until(
            lambda: (j := c.call("health")["journal"])["snapshots"] >= 1 and j["snapshot_child_ms"] > 0 and j,
            timeout=30,
            message="no periodic snapshot",
        )
        assert journal["snapshot_pause_max_ms"] < 1000  # the spawn only
        snap_seq = wait_until(
            lambda: next(iter(snapshot_seqs(d.db)), None), timeout=30, message="snapshot not in place"
        )
        assert snap_seq == journal["snapshot_seq"] >= 1000
        before = c.call("stats")["counts"]
        before.pop("oldest_wait_hours")
    assert not list(d.db.parent.glob(".snapshot-*.tmp"))  # the child's file was renamed into place
    d.kill9()
    d.start()
    with d.client() as c:
        h = c.call("health")
        assert h["recovered_events"] == h["journal"]["last_seq"] - snap_seq  # replayed after the snapshot only
        after = c.call("stats")["counts"]
        after.pop("oldest_wait_hours")
        assert after == before


RECORDS_CONFIG = """
[daemon]
clock = "stepped"
clock_start = "{start}"

[retention]
hot_days = 2

[procurement]
consolidate_hours = 4

[sources.acme]
deliver = "file"

[notifications.routes]
"*" = "file"

[notifications.file]
dir = "{drop}"

[skus."SKU-A"]
reorder_point = 0
order_up_to = 10
source = "supplier:acme"

[skus."SKU-B"]
reorder_point = 0
order_up_to = 6
source = "supplier:acme"
"""


def _all_pages(c, op: str, key: str, **filters) -> list[dict]:
    """Every item of a paged list, two at a time (pages span the archive and memory)."""
    out: list[dict] = []
    while True:
        page = c.call(op, limit=2, offset=len(out), **filters)[key]
        out += page
        if not page:
            return out


def _records_view(c) -> dict:
    counts = c.call("stats")["counts"]
    return {
        "requests": _all_pages(c, "procurement.list", "requests", status="all"),
        "closed_a": c.call("procurement.list", status="closed", sku="SKU-A")["requests"],
        "notices": _all_pages(c, "notifications.list", "notifications"),
        "sent_page": c.call("notifications.list", status="sent", offset=1, limit=2)["notifications"],
        "outbox": c.call("stats")["notifications"],
        "kpis": _kpis_all(c),
        "held": {k: counts[k] for k in ("archived_requests", "archived_notices", "reorders_closed", "notices_queued")},
    }


def _without_archived(items: list[dict]) -> list[dict]:
    return [{k: v for k, v in x.items() if k != "archived"} for x in items]


def test_closed_purchase_orders_and_delivered_notices_leave_memory_and_lists_still_show_them(make_daemon, tmp_path):
    d = make_daemon(RECORDS_CONFIG.format(start=START, drop=tmp_path / "drop"))
    with d.client() as c:
        a, b = c.call("procurement.list")["requests"]  # one PO of two lines, raised at start
        order = submit(c, "P-1", line("SKU-A", 1))  # backordered: its customer is told
        advance(c, seconds=4 * 3600)  # the PO's consolidation window closes: it goes out
        c.call("stock.receive", sku="SKU-A", qty=10, reference=a["request_id"])
        c.call("stock.receive", sku="SKU-B", qty=6, reference=b["request_id"])
        (sid,) = c.call("order.get", order_id=order["order_id"])["shipments"]
        c.call("pick.confirm", shipment_id=sid["shipment_id"])
        advance(c, seconds=60)  # the stepped clock delivers the outbox as it advances
        assert c.call("stats")["notifications"]["pending"] == 0
        hot = _records_view(c)
        assert [r["outcome"] for r in hot["requests"]] == ["received", "received"]
        assert {n["status"] for n in hot["notices"]} == {"sent"} and len(hot["notices"]) >= 3
        assert hot["held"]["archived_requests"] == hot["held"]["archived_notices"] == 0

        advance(c, seconds=2 * DAY)  # closed on day 0, two days kept: nothing moves yet
        assert _records_view(c)["held"] == hot["held"]
        advance(c, seconds=DAY)  # the day-3 boundary: the PO and the notices leave memory
        view = _records_view(c)
        assert view["held"]["archived_requests"] == 2
        assert view["held"]["archived_notices"] == len(hot["notices"])
        assert view["held"]["notices_queued"] == hot["held"]["notices_queued"]
        assert view["held"]["reorders_closed"] == hot["held"]["reorders_closed"] == 2
        assert all(x["archived"] for x in view["requests"] + view["notices"])
        assert _without_archived(view["requests"]) == hot["requests"]  # same order, same content
        assert _without_archived(view["closed_a"]) == hot["closed_a"]
        assert _without_archived(view["notices"]) == hot["notices"]
        assert _without_archived(view["sent_page"]) == hot["sent_page"]
        assert view["outbox"]["queued"] == hot["outbox"]["queued"]
        assert view["outbox"]["sent"] == hot["outbox"]["sent"]
        assert view["kpis"] == hot["kpis"]  # archiving moved no KPI
        err = c.request("procurement.acknowledge", request_id=a["request_id"], qty=10, expected_date="2026-02-01")
        assert err["ok"] is False and err["error"]["code"] == "request_closed"

        later = submit(c, "P-2", line("SKU-A", 1))  # a new notice, in memory after the archived ones
        (sid,) = c.call("order.get", order_id=later["order_id"])["shipments"]
        c.call("pick.confirm", shipment_id=sid["shipment_id"])
        advance(c, seconds=60)
        view = _records_view(c)
        assert _without_archived(view["notices"][: len(hot["notices"])]) == hot["notices"]
        (new,) = view["notices"][len(hot["notices"]) :]
        assert new["order_id"] == later["order_id"] and new["status"] == "sent" and "archived" not in new

    rows = read_db(d.db, "SELECT kind, id, status FROM archived_records WHERE kind = 'request' ORDER BY n")
    assert rows == [("request", a["request_id"], "closed"), ("request", b["request_id"], "closed")]
    _same_after_kill9_and_restart(d, _records_view, view)
