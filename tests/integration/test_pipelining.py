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
    reqs = [
        {"op": "order.submit", "channel": "web", "external_id": f"b{i}", "lines": [{"sku": "P2", "qty": 1}]}
        for i in range(n)
    ]
    replies = client.pipeline(reqs, window=n)
    assert [r["ok"] for r in replies] == [True] * n
    assert len({r["result"]["order_id"] for r in replies}) == n


def test_receive_pipelined_behind_the_configure_that_creates_the_sku(client):
    # Whether the SKU exists is decided by its actor in mailbox order, not when the
    # receive is read (regression: it used to be refused `unknown_sku` at read time).
    configured, received, adjusted = client.pipeline(
        [
            {"op": "sku.configure", "sku": "NEW", "order_up_to": 5},
            {"op": "stock.receive", "sku": "NEW", "qty": 3},
            {"op": "stock.adjust", "sku": "NEW", "delta": -1, "reason": "damaged"},
        ]
    )
    assert configured["ok"] and configured["result"]["sku"] == "NEW"
    assert received["ok"], received
    assert received["result"]["on_hand"] == 3
    assert adjusted["ok"], adjusted
    assert client.call("sku.get", sku="NEW")["on_hand"] == 2


def test_refused_requests_for_a_new_sku_create_no_sku(client):
    seq = client.call("health")["journal"]["last_seq"]
    replies = client.pipeline(
        [
            {"op": "stock.receive", "sku": "GHOST", "qty": 3},
            {"op": "stock.adjust", "sku": "GHOST", "counted": 4},
            {"op": "sku.configure", "sku": "GHOST", "reorder_point": 5, "order_up_to": 1},  # invalid_policy
            {"op": "stock.receive", "sku": "GHOST", "qty": 1},  # still unknown after the refused configure
        ]
    )
    assert [r["error"]["code"] for r in replies] == ["unknown_sku", "unknown_sku", "invalid_policy", "unknown_sku"]
    assert client.call("skus.list")["skus"] == []
    assert client.request("sku.get", sku="GHOST")["error"]["code"] == "unknown_sku"
    assert client.call("health")["journal"]["last_seq"] == seq
