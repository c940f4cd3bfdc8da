"""Idempotent intake: the same (channel, account, external_id) makes one order, also
across a restart and when the twin arrives while the first is still being served."""

from __future__ import annotations

import pytest
from bo_support import line, stock, submit

from backorder.client import CallError


def test_same_order_twice_makes_one_order_and_repeats_the_original_outcome(sim_client):
    c = sim_client
    stock(c, "D", 2)
    first = submit(c, "EXT-1", line("D", 5))
    assert (first["lines"][0]["allocated"], first["lines"][0]["backordered"]) == (2, 3)
    assert first["duplicate"] is False

    c.call("stock.receive", sku="D", qty=3)  # the line is now fully allocated
    second = submit(c, "EXT-1", line("D", 5))
    assert second["duplicate"] is True
    assert second["order_id"] == first["order_id"]
    # the reply repeats the original per-line result, not today's state
    assert second["lines"] == first["lines"]

    assert c.call("stats")["counts"]["orders"] == 1
    assert len(c.call("orders.list")["orders"]) == 1
    view = c.call("sku.get", sku="D")
    assert (view["on_hand"], view["allocated"], view["backordered"]) == (5, 5, 0)


def test_duplicate_changes_nothing(sim_client):
    c = sim_client
    submit(c, "EXT-2", line("E", 2))
    seq = c.call("health")["journal"]["last_seq"]
    requests = c.call("procurement.list", status="all")["requests"]
    assert submit(c, "EXT-2", line("E", 2))["duplicate"] is True
    assert c.call("health")["journal"]["last_seq"] == seq
    assert c.call("procurement.list", status="all")["requests"] == requests
    assert c.call("sku.get", sku="E")["backordered"] == 2


def test_duplicate_is_recognised_after_a_restart(sim):
    d = sim()
    with d.client() as c:
        first = submit(c, "EXT-3", line("F", 1), account="shop-a")
    d.restart()
    with d.client() as c:
        again = submit(c, "EXT-3", line("F", 1), account="shop-a")
        assert again["duplicate"] is True
        assert again["order_id"] == first["order_id"]
        assert again["lines"] == first["lines"]
        fresh = submit(c, "EXT-4", line("F", 1), account="shop-a")
        assert fresh["duplicate"] is False
        assert fresh["order_id"] not in (first["order_id"],)
        assert c.call("stats")["counts"]["orders"] == 2
        assert c.call("sku.get", sku="F")["backordered"] == 2


def test_duplicate_is_recognised_after_kill9(sim):
    d = sim()
    with d.client() as c:
        first = submit(c, "EXT-K", line("K", 1))
    d.kill9()
    d.start()
    with d.client() as c:
        again = submit(c, "EXT-K", line("K", 1))
        assert (again["duplicate"], again["order_id"]) == (True, first["order_id"])


def test_other_account_or_channel_is_another_order(sim_client):
    c = sim_client
    a = submit(c, "SAME", line("G", 1), account="north")
    b = submit(c, "SAME", line("G", 1), account="south")
    d = submit(c, "SAME", line("G", 1), channel="phone", account="north")
    default = submit(c, "SAME", line("G", 1))
    ids = {a["order_id"], b["order_id"], d["order_id"], default["order_id"]}
    assert len(ids) == 4
    assert not any(r["duplicate"] for r in (a, b, d, default))
    # order.get finds each by its key
    got = c.call("order.get", channel="web", account="south", external_id="SAME")
    assert got["order_id"] == b["order_id"]
    assert c.call("order.get", channel="web", external_id="SAME")["order_id"] == default["order_id"]


def test_pipelined_twins_make_one_order(sim_client):
    c = sim_client
    req = {"op": "order.submit", "channel": "web", "external_id": "TWIN", "lines": [line("T", 2), line("U", 1)]}
    replies = c.pipeline([req, req, req])
    assert all(r["ok"] for r in replies)
    results = [r["result"] for r in replies]
    assert len({r["order_id"] for r in results}) == 1
    assert sorted(r["duplicate"] for r in results) == [False, True, True]
    assert c.call("stats")["counts"]["orders"] == 1
    assert c.call("sku.get", sku="T")["backordered"] == 2


def test_a_long_pipeline_gets_every_reply_exactly_once(sim_client):
    # more requests than an actor handles in one batch (256), to one SKU actor and the order actor
    c = sim_client
    c.call("sku.configure", sku="PIPE")
    reqs = []
    for n in range(600):
        reqs.append({"op": "order.submit", "channel": "web", "external_id": f"PIPE-{n}", "lines": [line("PIPE", 1)]})
        if n % 2:
            reqs.append({"op": "stock.receive", "sku": "PIPE", "qty": 1})
    replies = c.pipeline(reqs, window=1000)
    assert all(r["ok"] for r in replies)
    assert len({r["result"]["order_id"] for r in replies if "order_id" in r["result"]}) == 600
    view = c.call("sku.get", sku="PIPE")
    assert (view["on_hand"], view["allocated"], view["backordered"]) == (300, 300, 300)


def test_a_receipt_resent_with_its_receipt_id_counts_once_also_after_kill_9(make_daemon):
    d = make_daemon()
    with d.client() as c:
        c.call("sku.configure", sku="R1")
        first = c.call("stock.receive", sku="R1", qty=7, receipt_id="DN-1")
        assert first["duplicate"] is False and first["on_hand"] == 7
        again = c.call("stock.receive", sku="R1", qty=7, receipt_id="DN-1")
        assert again["duplicate"] is True and again["on_hand"] == 7
    d.kill9()
    d.start()
    with d.client() as c:
        after = c.call("stock.receive", sku="R1", qty=7, receipt_id="DN-1")
        assert after["duplicate"] is True
        assert c.call("sku.get", sku="R1")["received"] == 7
        with pytest.raises(CallError) as err:
            c.call("stock.receive", sku="R1", qty=8, receipt_id="DN-1")
        assert err.value.code == "receipt_conflict"
        other = c.call("stock.receive", sku="R1", qty=1, receipt_id="DN-2")
        assert other["duplicate"] is False and other["on_hand"] == 8
