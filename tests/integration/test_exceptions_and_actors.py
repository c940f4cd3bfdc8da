"""Who did it, and the exceptions of an operator's day, through a real daemon.

Every journaled command records its actor: a Unix client's user name (from the socket's
credentials), a TCP client's ``token:NAME``, ``config`` for the configuration file's
policies. ``order.expedite`` moves an order ahead under FIFO and stays ahead after a
kill -9; ``orders.bulk`` counts first and applies only the set that was confirmed.
"""

from __future__ import annotations

import json
import os
import pwd
import socket

import pytest
from bo_support import SIM_CONFIG, fingerprint, line, read_db, stock, submit
from test_service_tcp import Tcp, _config, _port, _token

from backorder.client import CallError

ME = pwd.getpwuid(os.getuid()).pw_name


def refused(c, op: str, **fields) -> str:
    with pytest.raises(CallError) as exc:
        c.call(op, **fields)
    return exc.value.code


def waiting_order_ids(c, sku: str) -> list[str]:
    return [w["order_id"] for w in c.call("sku.get", sku=sku)["waiting"]]


# --- who did it -----------------------------------------------------------------------


def test_audit_rows_carry_the_socket_peers_user_name_and_filter_by_actor(make_daemon):
    d = make_daemon(SIM_CONFIG + "\n[skus.CFG]\nreorder_point = 0\norder_up_to = 0\n")
    with d.client() as c:
        stock(c, "LAMP", 1)
        oid = submit(c, "W-1", line("LAMP", 2))["order_id"]  # 1 allocated, 1 backordered
        records = c.call("audit.query", order_id=oid)["records"]
        assert {r["type"] for r in records} >= {"order_received", "allocated", "line_backordered"}
        # the allocation decided by the SKU actor carries the actor of the order that caused it
        assert {r["actor"] for r in records} == {ME}
        config = c.call("audit.query", sku="CFG")["records"]
        assert [(r["type"], r["actor"]) for r in config][:1] == [("sku_configured", "config")]
        mine = c.call("audit.query", actor=ME, limit=1000)["records"]
        assert mine and {r["actor"] for r in mine} == {ME}
        assert {r["seq"] for r in records} <= {r["seq"] for r in mine}
        assert "sku_configured" not in {r["type"] for r in mine if r["sku"] == "CFG"}
        assert c.call("audit.query", actor="nobody")["records"] == []
    # stored once per row, in the journal's own column
    assert {a for (a,) in read_db(d.db, "SELECT DISTINCT actor FROM events")} >= {ME, "config"}


def test_a_tcp_clients_commands_are_journaled_with_its_token_name(make_daemon):
    tokens = {"erp": _token("erp")}
    d = make_daemon(_config(tokens))
    tcp = Tcp(socket.create_connection(("127.0.0.1", _port(d))))
    try:
        tcp.send(
            {"op": "auth", "id": 1, "token": tokens["erp"][0]},
            {"op": "sku.configure", "id": 2, "sku": "T"},
            {"op": "stock.receive", "id": 3, "sku": "T", "qty": 4},
        )
        assert [tcp.read()["ok"] for _ in range(3)] == [True, True, True]
    finally:
        tcp.close()
    with d.client() as c:
        records = c.call("audit.query", sku="T")["records"]
        assert [(r["type"], r["actor"]) for r in records] == [
            ("sku_configured", "token:erp"),
            ("received", "token:erp"),
        ]
        assert [r["seq"] for r in c.call("audit.query", actor="token:erp")["records"]] == [r["seq"] for r in records]


# --- order.expedite -------------------------------------------------------------------


def test_expedite_under_fifo_goes_ahead_and_survives_kill9(make_daemon):
    d = make_daemon(SIM_CONFIG)
    with d.client() as c:
        assert c.call("policy.get")["mode"] == "fifo"
        c.call("sku.configure", sku="LAMP")
        first, second, third = (submit(c, f"W-{n}", line("LAMP", 1))["order_id"] for n in (1, 2, 3))
        assert waiting_order_ids(c, "LAMP") == [first, second, third]
        res = c.call("order.expedite", order_id=third, reason="hospital")
        assert (res["expedited"], res["changed"]) == ("hospital", True)
        assert waiting_order_ids(c, "LAMP") == [third, first, second]
        got = c.call("order.get", order_id=third)
        assert got["expedited"] == "hospital"
        assert got["lines"][0]["queue_position"] == 1
        assert got["lines"][0]["why"].startswith("expedited: hospital; fifo: ")
        # the same reason again is a resend: nothing journaled
        seq = c.call("health")["journal"]["last_seq"]
        assert c.call("order.expedite", order_id=third, reason="hospital")["changed"] is False
        assert c.call("health")["journal"]["last_seq"] == seq
        d.kill9()
        d.start()  # no snapshot since: the expedite replays from the journal
    with d.client() as c:
        assert waiting_order_ids(c, "LAMP") == [third, first, second]
        c.call("stock.receive", sku="LAMP", qty=1)  # the next unit goes to the expedited order
        assert c.call("order.get", order_id=third)["status"] == "picking"
        assert waiting_order_ids(c, "LAMP") == [first, second]
        [rec] = [r for r in c.call("audit.query", order_id=third)["records"] if r["type"] == "order_expedited"]
        assert (rec["actor"], rec["cause"], rec["event"]["reason"]) == (ME, "order.expedite", "hospital")
        d.restart()  # and from the snapshot written at a clean stop
    with d.client() as c:
        assert c.call("order.get", order_id=third)["expedited"] == "hospital"
        assert waiting_order_ids(c, "LAMP") == [first, second]


def test_expedite_bad_input_changes_nothing(make_daemon):
    d = make_daemon(SIM_CONFIG)
    with d.client() as c:
        stock(c, "LAMP", 1)
        shipped = submit(c, "W-1", line("LAMP", 1))["order_id"]
        [sid] = c.call("order.get", order_id=shipped)["shipments"]
        c.call("pick.confirm", shipment_id=sid["shipment_id"])
        cancelled = submit(c, "W-2", line("LAMP", 1))["order_id"]
        c.call("order.cancel", order_id=cancelled)
        before = fingerprint(c, "LAMP")
        assert refused(c, "order.expedite", order_id="O9999999", reason="x") == "unknown_order"
        assert refused(c, "order.expedite", order_id=shipped, reason="x") == "already_shipped"
        assert refused(c, "order.expedite", order_id=cancelled, reason="x") == "order_cancelled"
        assert refused(c, "order.expedite", order_id=cancelled, reason="") == "invalid_request"
        assert refused(c, "order.expedite", order_id=cancelled) == "invalid_request"
        assert fingerprint(c, "LAMP") == before


# --- orders.bulk ------------------------------------------------------------------------


def bulk(c, action: str, flt: dict, **fields) -> dict:
    return c.call("orders.bulk", action=action, filter=flt, **fields)


def test_bulk_dry_run_counts_then_applies_only_the_confirmed_set(make_daemon):
    d = make_daemon(SIM_CONFIG)
    with d.client() as c:
        c.call("sku.configure", sku="LAMP")
        c.call("sku.configure", sku="DESK")
        web = [submit(c, f"W-{n}", line("LAMP", 1))["order_id"] for n in range(3)]
        phone = submit(c, "P-1", line("LAMP", 1), channel="phone")["order_id"]
        desk = submit(c, "W-9", line("DESK", 1))["order_id"]
        dry = bulk(c, "cancel", {"sku": "LAMP", "channel": "web"}, dry_run=True, reason="discontinued")
        assert (dry["count"], dry["ids"]) == (3, web)
        assert all(c.call("order.get", order_id=o)["status"] == "backordered" for o in web)  # a dry run changes nothing

        # the set changes before the confirmation: refused, nothing changed
        late = submit(c, "W-late", line("LAMP", 1))["order_id"]
        before = fingerprint(c, "LAMP", "DESK")
        code = refused(c, "orders.bulk", action="cancel", filter={"sku": "LAMP", "channel": "web"}, expect_count=3)
        assert code == "bulk_changed"
        # same count, other orders: the digest tells
        c.call("order.cancel", order_id=web[0])
        code = refused(
            c,
            "orders.bulk",
            action="cancel",
            filter={"sku": "LAMP", "channel": "web"},
            expect_count=3,
            expect_digest=dry["digest"],
        )
        assert code == "bulk_changed"
        before = fingerprint(c, "LAMP", "DESK")
        assert refused(c, "orders.bulk", action="cancel", filter={"sku": "LAMP"}) == "invalid_request"
        assert fingerprint(c, "LAMP", "DESK") == before

        dry = bulk(c, "cancel", {"sku": "LAMP", "channel": "web"}, dry_run=True)
        assert dry["ids"] == [web[1], web[2], late]
        done = bulk(
            c,
            "cancel",
            {"sku": "LAMP", "channel": "web"},
            reason="discontinued",
            expect_count=3,
            expect_digest=dry["digest"],
        )
        assert (done["dry_run"], done["count"], done["ids"]) == (False, 3, dry["ids"])
        for oid in dry["ids"]:
            got = c.call("order.get", order_id=oid)
            assert (got["status"], got["cancel_reason"]) == ("cancelled", "discontinued")
        assert c.call("order.get", order_id=phone)["status"] == "backordered"
        assert c.call("order.get", order_id=desk)["status"] == "backordered"
        # one event per order, all under one correlation id and the same actor
        cancels = [r for r in c.call("audit.query", actor=ME, limit=1000)["records"] if r["cause"] == "orders.bulk"]
        assert sorted(r["order_id"] for r in cancels if r["type"] == "order_cancelled") == sorted(dry["ids"])
        assert len({r["correlation_id"] for r in cancels}) == 1

        # expedite the rest of the lamp orders: the phone order now goes first
        c.call("sku.configure", sku="LAMP")
        other = submit(c, "W-10", line("LAMP", 1))["order_id"]
        dry = bulk(c, "expedite", {"channel": "phone"}, dry_run=True, reason="strike")
        assert dry["ids"] == [phone]
        bulk(c, "expedite", {"channel": "phone"}, reason="strike", expect_count=1)
        assert waiting_order_ids(c, "LAMP") == [phone, other]
        # already expedited: no longer in the set
        assert bulk(c, "expedite", {"channel": "phone"}, dry_run=True, reason="strike")["count"] == 0


def test_bulk_release_of_held_orders_serves_them(make_daemon):
    d = make_daemon(SIM_CONFIG)
    with d.client() as c:
        stock(c, "LAMP", 5)
        held = [submit(c, f"H-{n}", line("LAMP", 1), hold="payment pending")["order_id"] for n in range(2)]
        free = submit(c, "W-1", line("LAMP", 1))["order_id"]
        dry = bulk(c, "release", {}, dry_run=True)
        assert dry["ids"] == held
        bulk(c, "release", {}, reason="paid by bank transfer", expect_count=2)
        for oid in held:  # released and served: the SKU actor allocated them
            assert c.call("order.get", order_id=oid)["status"] == "picking"
        assert c.call("order.get", order_id=free)["status"] == "picking"
        assert c.call("sku.get", sku="LAMP")["available"] == 2


def test_bulk_min_waiting_hours_and_bad_input(make_daemon):
    d = make_daemon('[daemon]\nclock = "stepped"\nclock_start = "2024-03-01T00:00:00Z"\n')
    with d.client() as c:
        c.call("sku.configure", sku="LAMP")
        old = submit(c, "W-old", line("LAMP", 1))["order_id"]
        c.call("clock.advance", seconds=48 * 3600)
        submit(c, "W-new", line("LAMP", 1))
        assert bulk(c, "cancel", {"min_waiting_hours": 24}, dry_run=True)["ids"] == [old]
        before = fingerprint(c, "LAMP")
        for fields in (
            {"action": "delete", "filter": {}},
            {"action": "cancel", "filter": {"colour": "red"}},
            {"action": "cancel", "filter": {"min_waiting_hours": -1}},
            {"action": "cancel", "filter": {"sku": ""}},
            {"action": "cancel", "filter": {}, "expect_count": -1},
            {"action": "expedite", "filter": {}, "expect_count": 2},  # no reason
        ):
            assert refused(c, "orders.bulk", **fields) == "invalid_request", fields
        assert fingerprint(c, "LAMP") == before


def test_bulk_retry_redelivers_the_matching_dead_letters(make_daemon):
    d = make_daemon(SIM_CONFIG + "\n[intake]\nworkers = 2\n")
    with d.client() as c:
        body = "order_id,sku,qty,unit_price\nA-1,LAMP,zero,1.00\n"
        res = c.call("order.ingest", channel="csv", body=body)
        assert res["outcome"] == "rejected"
        letters = c.call("deadletters.list")["dead_letters"]
        assert [x["channel"] for x in letters] == ["csv"]
        dry = bulk(c, "retry", {"channel": "csv"}, dry_run=True)
        assert dry["ids"] == [letters[0]["letter_id"]]
        assert bulk(c, "retry", {"channel": "web"}, dry_run=True)["count"] == 0
        done = bulk(c, "retry", {"channel": "csv"}, expect_count=1)
        assert [r["letter_id"] for r in done["results"]] == dry["ids"]
        retried = [
            r for r in c.call("audit.query", actor=ME, limit=1000)["records"] if r["cause"] == "deadletters.retry"
        ]
        assert [json.dumps(r["event"]["letter_id"]) for r in retried] == [json.dumps(dry["ids"][0])]
