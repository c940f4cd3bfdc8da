"""Retention through a real daemon on the stepped clock: closed orders leave memory once
``[retention] hot_days`` engine days have passed, reads and duplicate checks still find
them (``archived: true``), the KPIs do not move, and a kill -9 or a clean restart gives
the same."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from bo_support import line, read_db, submit
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

    d.kill9()
    d.start()
    with d.client() as c:
        assert _archived_view(c, ids) == view  # replayed from the journal
    d.stop()  # a clean stop writes a snapshot
    d.start()
    with d.client() as c:
        assert _archived_view(c, ids) == view  # restored from the snapshot
        c.call("pick.confirm", shipment_id=c.call("order.get", order_id=ids["open"])["shipments"][0]["shipment_id"])
        advance(c, seconds=3 * DAY)
        assert _held(c) == {"hot": 0, "archived": 3}
        assert c.call("order.get", order_id=ids["open"])["archived"] is True


def test_periodic_snapshots_are_written_by_a_forked_child_and_restore_after_kill9(make_daemon):
    d = make_daemon(CONFIG.replace("[daemon]\n", "[daemon]\nsnapshot_every = 1000\n", 1))
    with d.client() as c:
        c.call("stock.receive", sku="SKU-A", qty=10_000)
        for n in range(400):  # ~3 events each: past snapshot_every
            submit(c, f"S-{n}", line("SKU-A", 1))
        journal = wait_until(
            lambda: (j := c.call("health")["journal"])["snapshots"] >= 1 and j["snapshot_child_ms"] > 0 and j,
            timeout=30,
            message="no forked snapshot",
        )
        assert journal["snapshot_pause_max_ms"] < 1000  # the fork only
        snap_seq = wait_until(
            lambda: read_db(d.db, "SELECT MAX(seq) FROM snapshots")[0][0], timeout=30, message="snapshot not stored"
        )
        assert snap_seq == journal["snapshot_seq"] >= 1000
        before = c.call("stats")["counts"]
        before.pop("oldest_wait_hours")
    assert not list(d.db.parent.glob(".snapshot-*.tmp"))  # the child's file was stored, then removed
    d.kill9()
    d.start()
    with d.client() as c:
        h = c.call("health")
        assert h["recovered_events"] == h["journal"]["last_seq"] - snap_seq  # replayed after the snapshot only
        after = c.call("stats")["counts"]
        after.pop("oldest_wait_hours")
        assert after == before
