"""The running daemon collects garbage in small young collections (daemon/collector.py)
and shows their pauses in ``health.gc``."""

from __future__ import annotations

from bo_support import line

from backorder.daemon.collector import YOUNG


def test_young_collections_run_as_orders_come_in_and_health_shows_their_pauses(client):
    before = client.call("health")["gc"]
    assert before["young_threshold"] == YOUNG
    orders = [
        {"op": "order.submit", "channel": "web", "external_id": f"g{i}", "lines": [line(f"S{i % 50}", 1)]}
        for i in range(3000)
    ]
    replies = client.pipeline(orders)
    assert all(r["ok"] for r in replies)
    after = client.call("health")["gc"]
    # the orders kept in memory are tens of thousands of tracked objects: many young
    # collections ran (what they kept is frozen: tests/unit/test_gc_collector.py)
    assert after["collections"] >= before["collections"] + 5
    assert 0 < after["pause_max_ms"] <= after["pause_total_ms"] and after["pause_cpu_max_ms"] > 0
    assert client.call("order.get", order_id=replies[0]["result"]["order_id"])["status"] == "backordered"
