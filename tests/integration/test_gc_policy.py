"""The running daemon collects garbage young-only and freezes the survivors
(daemon/collector.py), and shows it in ``health.gc``."""

from __future__ import annotations

from bo_support import line

from backorder.daemon.collector import YOUNG


def test_orders_survive_young_collections_into_the_frozen_generation_and_health_shows_it(client):
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
    # collections ran, and what they kept went to the frozen generation
    assert after["collections"] >= before["collections"] + 5
    assert after["frozen_objects"] >= before["frozen_objects"] + 3 * 3000
    assert 0 < after["pause_max_ms"] <= after["pause_total_ms"]
    assert client.call("order.get", order_id=replies[0]["result"]["order_id"])["status"] == "backordered"
