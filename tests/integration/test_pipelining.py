"""A pipelined burst longer than an actor's batch is answered in full (regression: the
message taken right after a full batch used to be dropped)."""

from backorder.actors.mailbox import BATCH


def test_burst_to_one_sku_actor_is_answered_in_full(client):
    client.call("sku.configure", sku="P1")
    n = 2 * BATCH + 45
    replies = client.pipeline([{"op": "stock.receive", "sku": "P1", "qty": 1}] * n, window=n)
    assert all(r["ok"] for r in replies)
    assert client.call("sku.get", sku="P1")["received"] == n


def test_burst_to_the_order_actor_is_answered_in_full(client):
    n = 2 * BATCH + 45
    reqs = [{"op": "order.submit", "channel": "web", "external_id": f"b{i}",
             "lines": [{"sku": "P2", "qty": 1}]} for i in range(n)]
    replies = client.pipeline(reqs, window=n)
    assert [r["ok"] for r in replies] == [True] * n
    assert len({r["result"]["order_id"] for r in replies}) == n
