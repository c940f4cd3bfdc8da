"""The daemon as a process: signals, stale sockets, durability across kill -9, the audit
trail and event subscriptions."""

from __future__ import annotations

import datetime as dt
import json
import re
import signal
import socket
import sqlite3
import time

import pytest
from bo_support import fingerprint, line, read_db, stock, submit

from backorder.actors.messages import SETTLED_CHUNK
from backorder.client import CallError
from backorder.launcher import wait_until
from backorder.timeutil import iso_ts


def _busy_site(c) -> dict:
    """Orders, a receipt against a PO, a shipment, a cancellation; returns their ids."""
    a = submit(c, "P-1", line("AA", 2), line("BB", 1))["order_id"]
    b = submit(c, "P-2", line("AA", 1))["order_id"]
    po = c.call("procurement.list", sku="AA")["requests"][0]  # P-1's shortage of 2
    assert po["qty"] == 2
    c.call("stock.receive", sku="AA", qty=2, reference=po["request_id"])
    (sh,) = c.call("shipments.list", order_id=a)["shipments"]
    label = c.call("pick.confirm", shipment_id=sh["shipment_id"])
    c.call("order.cancel", order_id=b)
    return {"a": a, "b": b, "po": po["request_id"], "shipment": sh["shipment_id"], "label": label}


def _state(c, ids) -> dict:
    return {
        "fp": fingerprint(c, "AA", "BB"),
        "a": c.call("order.get", order_id=ids["a"]),
        "b": c.call("order.get", order_id=ids["b"]),
    }


def test_sigterm_exits_0_and_removes_the_socket(sim):
    d = sim()
    with d.client() as c:
        ids = _busy_site(c)
        before = _state(c, ids)
    assert d.socket.exists()
    assert d.stop(signal.SIGTERM) == 0
    assert not d.socket.exists()
    d.start()
    with d.client() as c:
        assert _state(c, ids) == before


def test_sigint_also_stops_cleanly(sim):
    d = sim()
    assert d.stop(signal.SIGINT) == 0
    assert not d.socket.exists()


def test_kill9_leaves_a_stale_socket_and_the_next_start_recovers_everything(sim):
    d = sim()
    with d.client() as c:
        ids = _busy_site(c)
        before = _state(c, ids)
    d.kill9()
    assert d.socket.exists()  # left behind by the crash
    d.start()  # detects the stale socket and replaces it
    with d.client() as c:
        after = _state(c, ids)
        assert after == before
        again = c.call("pick.confirm", shipment_id=ids["shipment"])
        assert again["tracking_number"] == ids["label"]["tracking_number"]
        assert c.call("health")["recovered_events"] == before["fp"]["last_seq"]
        # and it keeps working: new ids continue after the recovered ones
        nxt = submit(c, "P-3", line("AA", 1))["order_id"]
        assert nxt > ids["b"]


def test_every_acknowledged_request_survives_kill9(sim):
    d = sim()
    with d.client() as c:
        stock(c, "HOT", 50)
        replies = c.pipeline(
            [
                {"op": "order.submit", "channel": "web", "external_id": f"K-{n}", "lines": [line("HOT", 1)]}
                for n in range(300)
            ]
        )
        acked = [r["result"]["order_id"] for r in replies if r["ok"]]
        assert len(acked) == 300
    d.kill9()
    d.start()
    with d.client() as c:
        for oid in acked[:50] + acked[-5:]:
            c.call("order.get", order_id=oid)
        assert c.call("stats")["counts"]["orders"] == 300
        view = c.call("sku.get", sku="HOT")
        assert (view["on_hand"], view["allocated"], view["backordered"]) == (50, 50, 250)
        assert len(c.call("shipments.list", limit=1000)["shipments"]) == 50


def test_sigterm_with_requests_in_flight_loses_no_acknowledged_request(sim):
    d = sim()
    requests = b"".join(
        json.dumps(
            {"op": "order.submit", "id": n, "channel": "web", "external_id": f"F-{n}", "lines": [line("FL", 1)]}
        ).encode()
        + b"\n"
        for n in range(500)
    )
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(30)
        s.connect(str(d.socket))
        s.sendall(requests)
        data = s.recv(65536)  # the daemon is busy with them: now stop it
        d.proc.send_signal(signal.SIGTERM)
        try:
            while chunk := s.recv(65536):
                data += chunk
        except ConnectionResetError:
            pass  # the daemon stopped reading and closed with our requests unread: fine
    assert d.proc.wait(20) == 0
    acked = [json.loads(x) for x in data.splitlines()]
    assert acked
    assert all(r["ok"] for r in acked)
    d.start()
    with d.client() as c:
        orders = c.call("stats")["counts"]["orders"]
        assert orders >= len(acked)
        for r in acked:
            assert c.call("order.get", order_id=r["result"]["order_id"])["external_id"] == f"F-{r['id']}"


def test_a_second_daemon_on_a_live_socket_refuses_and_leaves_it_alone(sim):
    live = sim()
    intruder = sim(start=False)
    intruder.socket = live.socket
    try:
        intruder.start()  # may see the live daemon answer on the socket before it gives up
    except RuntimeError:
        pass
    assert intruder.proc.wait(20) == 1
    said = intruder.log.read_text()
    assert f"backorder: another backorder daemon is serving {live.socket}" in said
    assert "Traceback" not in said  # a refusal, told in one line, not a crash
    assert live.socket.exists()
    with live.client() as c:
        assert c.call("health")["status"] == "serving"


def test_a_second_daemon_on_a_journal_in_use_refuses_in_one_line_and_leaves_it_alone(sim):
    live = sim()
    intruder = sim(start=False)
    intruder.db = live.db  # its own socket, the live daemon's journal
    with pytest.raises(RuntimeError):
        intruder.start()
    assert intruder.proc.returncode == 1
    said = intruder.log.read_text()
    assert f"backorder: {live.db} is in use by a running backorder daemon (pid {live.proc.pid})" in said
    assert "Traceback" not in said
    with live.client() as c:
        assert c.call("health")["status"] == "serving"


def test_an_invalid_config_fails_at_start_naming_the_key(make_daemon):
    d = make_daemon('[allocation]\nmode = "random"\n', start=False)
    with pytest.raises(RuntimeError) as exc:
        d.start()
    assert "allocation.mode" in str(exc.value)
    d2 = make_daemon("[default_policy]\nreorder_point = 5\norder_up_to = 2\n", start=False)
    with pytest.raises(RuntimeError) as exc:
        d2.start()
    assert "default_policy" in str(exc.value)


# --- audit -------------------------------------------------------------------------


def test_audit_by_order_and_by_sku(sim):
    # a route, so the orders (which have no e-mail address) get unrouted notices to audit
    d = sim('[notifications.routes]\n"*" = "email"\n')
    with d.client() as c:
        ids = _busy_site(c)
        by_order = c.call("audit.query", order_id=ids["a"])["records"]
        kinds = [r["type"] for r in by_order]
        for kind in (
            "order_received",
            "line_backordered",
            "allocated",
            "shipment_created",
            "shipment_shipped",
            "units_shipped",
            "notice_queued",
        ):
            assert kind in kinds
        assert all(r["order_id"] == ids["a"] for r in by_order)
        assert [r["seq"] for r in by_order] == sorted(r["seq"] for r in by_order)
        assert all(r["at"].endswith("Z") and r["correlation_id"] and r["cause"] for r in by_order)

        # everything one request caused shares its correlation id, also the shipment it led to
        received = next(r for r in by_order if r["type"] == "order_received")
        assert received["cause"] == "order.submit"
        assert received["event"]["order"]["external_id"] == "P-1"
        backordered = [r for r in by_order if r["type"] == "line_backordered"]
        assert {r["correlation_id"] for r in backordered} == {received["correlation_id"]}
        alloc = next(r for r in by_order if r["type"] == "allocated")
        created = next(r for r in by_order if r["type"] == "shipment_created")
        assert alloc["cause"] == "stock.receive"
        assert created["correlation_id"] == alloc["correlation_id"] != received["correlation_id"]
        assert alloc["event"]["rule"] == "fifo"

        by_sku = c.call("audit.query", sku="AA")["records"]
        kinds = {r["type"] for r in by_sku}
        # by SKU a settle's allocations are its one lines_allocated row (see the fill test below)
        assert {"request_raised", "received", "lines_allocated", "units_shipped", "line_released"} <= kinds
        assert all(r["sku"] == "AA" for r in by_sku)
        receipt = next(r for r in by_sku if r["type"] == "received")
        assert receipt["event"]["request_id"] == ids["po"]

        # paging
        page1 = c.call("audit.query", sku="AA", limit=2)
        assert len(page1["records"]) == 2
        page2 = c.call("audit.query", sku="AA", limit=2, after_seq=page1["next_after_seq"])
        assert page2["records"][0]["seq"] > page1["records"][-1]["seq"]
        assert [r["seq"] for r in page1["records"] + page2["records"]] == [r["seq"] for r in by_sku[:4]]
        # since a time later than everything: nothing
        assert c.call("audit.query", sku="AA", since="2099-01-01T00:00:00Z")["records"] == []
        assert len(c.call("audit.query", sku="AA", since="2024-01-01T00:00:00Z")["records"]) == len(by_sku)
    # the journal outlives the process and refuses to be edited
    d.kill9()
    d.start()
    with d.client() as c:
        assert c.call("audit.query", order_id=ids["a"])["records"] == by_order
    db = sqlite3.connect(d.db)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("UPDATE events SET type = 'x' WHERE seq = 1")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("DELETE FROM events")
    finally:
        db.close()


def test_a_fill_of_many_orders_is_one_row_shown_per_line_by_order_and_in_the_stream(sim):
    """One receipt filling several orders' lines journals one lines_allocated row, and the
    shipments it leads to one shipments_created row; the audit of each order and the event
    stream still show an allocated event per line and a shipment_created per shipment,
    also after kill -9 (the order links are written in the rows' commits)."""
    d = sim()
    with d.client() as watcher, d.client() as c:
        oids = [submit(c, f"F-{i}", line("FL", 1 + i % 2), line("FX", 1))["order_id"] for i in range(5)]
        watcher.call("subscribe", topics=["stock", "shipments"])
        c.call("stock.receive", sku="FL", qty=7)  # 1+2+1+2+1: every FL line in full
        wait_until(lambda: all(c.call("order.get", order_id=oid)["shipments"] for oid in oids), 20, 0.05, "shipments")
        watcher.call("health")
        shipped = [e for e in watcher.events if e["event"]["type"] == "shipment_created"]
        assert [(e["event"]["order_id"], e["event"]["items"]) for e in shipped] == [
            (oid, [[1, "FL", 1 + i % 2]]) for i, oid in enumerate(oids)
        ]
        assert len({e["seq"] for e in shipped}) == 1  # one journal row for the five shipments
        (batch,) = read_db(d.db, "SELECT seq, order_id, body FROM events WHERE type = 'shipments_created'")
        assert batch[0] == shipped[0]["seq"] and batch[1] is None
        assert [sh[1] for sh in json.loads(batch[2])["shipments"]] == oids
        streamed = [e for e in watcher.events if e["event"]["type"] == "allocated"]
        assert [(e["event"]["order_id"], e["event"]["qty"]) for e in streamed] == [
            (oid, 1 + i % 2) for i, oid in enumerate(oids)
        ]
        assert len({e["seq"] for e in streamed}) == 1  # one journal row
        by_sku = [r for r in c.call("audit.query", sku="FL")["records"] if r["type"] == "lines_allocated"]
        (row,) = by_sku
        assert row["order_id"] is None and row["cause"] == "stock.receive"
        assert row["event"]["lines"] == [[oid, 1, 1 + i % 2, row["event"]["lines"][i][3]] for i, oid in enumerate(oids)]
        audits = {oid: c.call("audit.query", order_id=oid)["records"] for oid in oids}
        for i, oid in enumerate(oids):
            (alloc,) = [r for r in audits[oid] if r["type"] == "allocated"]
            assert alloc["seq"] == row["seq"] and alloc["order_id"] == oid and alloc["cause"] == "stock.receive"
            assert alloc["event"]["order_id"] == oid and alloc["event"]["sku"] == "FL"
            assert alloc["event"]["qty"] == 1 + i % 2 and alloc["event"]["line_no"] == 1
            (created,) = [r for r in audits[oid] if r["type"] == "shipment_created"]
            assert created["seq"] == batch[0] and created["order_id"] == oid
            assert created["correlation_id"] == alloc["correlation_id"]
            assert created["event"]["order_id"] == oid and created["event"]["items"] == [[1, "FL", 1 + i % 2]]
            assert created["event"]["shipment_id"] == c.call("order.get", order_id=oid)["shipments"][0]["shipment_id"]
            # paging by seq still walks the order's records in order
            assert [r["seq"] for r in audits[oid]] == sorted(r["seq"] for r in audits[oid])
            assert c.call("audit.query", order_id=oid, after_seq=row["seq"])["records"] == [
                r for r in audits[oid] if r["seq"] > row["seq"]
            ]
        fp = fingerprint(c, "FL", "FX")
    d.kill9()
    d.start()
    with d.client() as c:
        assert fingerprint(c, "FL", "FX") == fp
        assert {oid: c.call("audit.query", order_id=oid)["records"] for oid in oids} == audits


def test_a_fill_of_more_orders_than_one_chunk_ships_each_order_once_across_kill9(sim):
    """A receipt that serves more orders than one Settled message names (SETTLED_CHUNK)
    journals their shipments as one shipments_created row per chunk; every order gets
    exactly one shipment, which a kill -9 and a restart neither lose nor create again."""
    n = SETTLED_CHUNK + 6
    d = sim()

    def batches() -> list[list]:
        rows = read_db(d.db, "SELECT body FROM events WHERE type = 'shipments_created' ORDER BY seq")
        return [json.loads(body)["shipments"] for (body,) in rows]

    with d.client() as c:
        c.call("sku.configure", sku="BIG")
        oids = [submit(c, f"B-{i}", line("BIG", 1))["order_id"] for i in range(n)]
        c.call("stock.receive", sku="BIG", qty=n)
        wait_until(lambda: sum(map(len, batches())) == n, 60, 0.1, "the shipments were never durable")
        made = batches()
        assert [len(b) for b in made] == [SETTLED_CHUNK, 6]
        assert [sh[1] for b in made for sh in b] == oids  # each order once, in service order
        assert all(sh[2] == [[1, "BIG", 1]] for b in made for sh in b)
        sample = [oids[0], oids[SETTLED_CHUNK - 1], oids[SETTLED_CHUNK], oids[-1]]
        before = {oid: c.call("order.get", order_id=oid)["shipments"] for oid in sample}
        assert all(len(v) == 1 for v in before.values())
    d.kill9()
    d.start()
    with d.client() as c:
        assert batches() == made  # nothing created again by the restart's recovery
        assert not read_db(d.db, "SELECT seq FROM events WHERE type = 'shipment_created'")
        assert {oid: c.call("order.get", order_id=oid)["shipments"] for oid in sample} == before
        sku = c.call("sku.get", sku="BIG")
        assert (sku["allocated"], sku["backordered"]) == (n, 0)


def test_audit_of_a_refused_request_records_nothing(sim_client):
    c = sim_client
    submit(c, "R-1", line("AU", 1))
    n = len(c.call("audit.query", sku="AU")["records"])
    with pytest.raises(CallError):
        c.call("stock.adjust", sku="AU", delta=-5, reason="no such units")
    assert len(c.call("audit.query", sku="AU")["records"]) == n


# --- subscribe ------------------------------------------------------------------------


def test_subscribe_streams_later_changes(sim):
    d = sim()
    with d.client() as watcher, d.client() as c:
        sub = watcher.call("subscribe", topics=["orders", "stock", "shipments"])
        assert sub["topics"] == ["orders", "stock", "shipments"]
        start_seq = sub["seq"]
        oid = submit(c, "SUB-1", line("EV", 1))["order_id"]
        c.call("stock.receive", sku="EV", qty=1)
        (sh,) = c.call("shipments.list", order_id=oid)["shipments"]
        c.call("pick.confirm", shipment_id=sh["shipment_id"])
        # events of earlier commits come before the reply to a later request on this connection
        watcher.call("health")
        events = watcher.events
        assert events, "no events arrived"
        assert all(list(e) == ["seq", "at", "event"] for e in events)
        assert all(e["at"] == iso_ts(e["event"]["ts"]) for e in events)
        seqs = [e["seq"] for e in events]
        assert seqs == sorted(seqs) and seqs[0] > start_seq
        kinds = [e["event"]["type"] for e in events]
        for kind in (
            "order_received",
            "line_backordered",
            "received",
            "allocated",
            "shipment_created",
            "shipment_shipped",
            "units_shipped",
        ):
            assert kind in kinds
        assert "request_raised" not in kinds  # the procurement topic was not asked for
        assert next(e for e in events if e["event"]["type"] == "order_received")["event"]["order_id"] == oid


def test_subscribe_to_one_topic_only(sim):
    d = sim()
    with d.client() as watcher, d.client() as c:
        watcher.call("subscribe", topics=["procurement"])
        submit(c, "SUB-2", line("EV", 4))
        (po,) = c.call("procurement.list")["requests"]
        c.call("procurement.confirm", request_id=po["request_id"], expected_date="2024-03-12")
        watcher.call("health")
        assert [e["event"]["type"] for e in watcher.events] == ["request_raised", "request_confirmed"]
        assert watcher.events[1]["event"]["expected_date"] == "2024-03-12"


def test_events_can_be_read_as_plain_lines(sim):
    d = sim()
    with d.client() as watcher, d.client() as c:
        watcher.call("subscribe")  # all topics
        submit(c, "SUB-3", line("EV", 1))
        first = watcher.read_line()
        assert first["event"]["type"] == "order_received"
        assert isinstance(first["seq"], int)


def test_event_lines_carry_the_rfc3339_time_of_the_event(sim):
    d = sim()
    with d.client() as watcher, d.client() as c:
        watcher.call("subscribe", topics=["config"])
        c.call("sku.configure", sku="T1")
        c.call("policy.set", mode="priority")
        watcher.call("health")
        audit = {r["seq"]: r for r in c.call("audit.query", sku="T1")["records"]}
        configured, changed = watcher.events
        assert configured["event"]["type"] == "sku_configured" and changed["event"]["type"] == "policy_changed"
        for e in (configured, changed):
            assert re.fullmatch(r"2024-03-01T00:\d\d:\d\dZ", e["at"]), e["at"]
            assert isinstance(e["event"]["ts"], float)  # the journal's own field stays a number
        # the same instant as the audit trail shows it
        assert configured["at"] == audit[configured["seq"]]["at"]
        assert configured["event"] == audit[configured["seq"]]["event"]


def test_health_times_are_rfc3339(sim):
    d = sim()
    with d.client() as c:
        h = c.call("health")
        assert re.fullmatch(r"2024-03-01T00:\d\d:\d\dZ", h["now"]), h["now"]
        assert h["journal"]["last_commit_at"] is None  # nothing committed yet
        c.call("sku.configure", sku="H1")
        h = c.call("health")
        at = dt.datetime.fromisoformat(h["journal"]["last_commit_at"].replace("Z", "+00:00"))
        assert h["journal"]["last_commit_at"].endswith("Z")
        assert abs(at.timestamp() - time.time()) < 60  # wall time of the commit
