"""Every bad input gets a stable error code, echoes the id when it can be read, changes
nothing, and never disturbs the connection it came on or any other client."""

from __future__ import annotations

import json
import socket
import time

import pytest
from bo_support import fingerprint, line, stock, submit

from backorder.client import CallError, Client
from backorder.launcher import wait_until
from backorder.protocol import MAX_LINE

ORDER = {"op": "order.submit", "channel": "web", "external_id": "BAD-1", "lines": [line("B", 1)]}


def _with(base: dict, **changes) -> dict:
    out = {**base, **changes}
    return {k: v for k, v in out.items() if v is not ...}


def _order_line(**changes) -> dict:
    return _with(ORDER, lines=[_with(line("B", 1), **changes)])


BAD_LINES = [
    # (what, raw request line, expected code, expected echoed id)
    ("truncated JSON", b'{"op": "order.submit", "id": 7, "lines": [', "malformed_json", None),
    ("not JSON at all", b"hello daemon", "malformed_json", None),
    ("invalid UTF-8", b'{"op": "health", "id": "\xff\xfe"}', "malformed_json", None),
    ("a JSON array", b'[{"op": "health", "id": 1}]', "malformed_json", None),
    ("a JSON string", b'"health"', "malformed_json", None),
    ("a JSON number", b"42", "malformed_json", None),
    ("JSON null", b"null", "malformed_json", None),
    ("deeply nested", b"[" * 100_000, "malformed_json", None),
    ("op not UTF-8", b'{"op": "\xff", "id": 3}', "malformed_json", None),
    (
        "field not UTF-8",
        json.dumps({**ORDER, "id": 4, "email": "@"}).encode().replace(b"@", b"\xfe"),
        "malformed_json",
        4,
    ),
]


def _req(what, obj, code, rid="r-1"):
    return (what, json.dumps({**obj, "id": rid}).encode(), code, rid)


BAD_REQUESTS = [
    _req("unknown op", {"op": "order.explode"}, "unknown_op"),
    _req("op of the wrong type", {"op": 12}, "unknown_op"),
    _req("missing op", {"sku": "B"}, "missing_op", rid={"nested": [1, "x"]}),
    _req("missing lines", _with(ORDER, lines=...), "invalid_request"),
    _req("missing channel", _with(ORDER, channel=...), "invalid_request"),
    _req("empty lines", _with(ORDER, lines=[]), "invalid_request"),
    _req("lines not a list", _with(ORDER, lines="B x1"), "invalid_request"),
    _req("missing sku", _order_line(sku=...), "invalid_request"),
    _req("empty sku", _order_line(sku=""), "invalid_request"),
    _req("rush not a bool", _with(ORDER, rush="yes"), "invalid_request"),
    _req("customer not an object", _with(ORDER, customer=["x"]), "invalid_request"),
    _req("bad currency", _with(ORDER, currency="dollars"), "invalid_request"),
    _req("price not a decimal", _order_line(unit_price="cheap"), "invalid_request"),
    _req("negative price", _order_line(unit_price="-1.00"), "invalid_price"),
    _req("NaN price", _order_line(unit_price="NaN"), "invalid_price"),
    _req("infinite price", _order_line(unit_price="Infinity"), "invalid_price"),
    _req("bad created_at", _with(ORDER, created_at="yesterday"), "invalid_date"),
    _req("zero qty", _order_line(qty=0), "invalid_quantity"),
    _req("negative qty", _order_line(qty=-3), "invalid_quantity"),
    _req("fractional qty", _order_line(qty=1.5), "invalid_quantity"),
    _req("receipt of zero", {"op": "stock.receive", "sku": "B", "qty": 0}, "invalid_quantity"),
    _req("receipt of -1", {"op": "stock.receive", "sku": "B", "qty": -1}, "invalid_quantity"),
    _req("receipt of 2.5", {"op": "stock.receive", "sku": "B", "qty": 2.5}, "invalid_quantity"),
    _req("receipt without qty", {"op": "stock.receive", "sku": "B"}, "invalid_request"),
    _req("receipt sku of the wrong type", {"op": "stock.receive", "sku": 5, "qty": 1}, "invalid_request"),
    _req("fractional delta", {"op": "stock.adjust", "sku": "B", "delta": 0.5}, "invalid_quantity"),
    _req("zero delta", {"op": "stock.adjust", "sku": "B", "delta": 0}, "invalid_quantity"),
    _req("negative count", {"op": "stock.adjust", "sku": "B", "counted": -1}, "invalid_quantity"),
    _req("count below zero on hand", {"op": "stock.adjust", "sku": "B", "delta": -99}, "invalid_quantity"),
    _req("delta and counted", {"op": "stock.adjust", "sku": "B", "delta": 1, "counted": 2}, "invalid_request"),
    _req("neither delta nor counted", {"op": "stock.adjust", "sku": "B"}, "invalid_request"),
    _req("receipt of an unknown SKU", {"op": "stock.receive", "sku": "NOPE", "qty": 1}, "unknown_sku"),
    _req("count of an unknown SKU", {"op": "stock.adjust", "sku": "NOPE", "delta": 1}, "unknown_sku"),
    _req("unknown shipment", {"op": "pick.confirm", "shipment_id": "S7777777"}, "unknown_shipment"),
    _req("pick without shipment", {"op": "pick.confirm"}, "invalid_request"),
    _req("cancel of an unknown order", {"op": "order.cancel", "order_id": "O7777777"}, "unknown_order"),
    _req(
        "unknown PO",
        {"op": "procurement.confirm", "request_id": "PO-777777", "expected_date": "2024-03-09"},
        "unknown_request",
    ),
    _req("unknown mode", {"op": "policy.set", "mode": "lottery"}, "invalid_request"),
    _req("unknown topic", {"op": "subscribe", "topics": ["gossip"]}, "unknown_topic"),
    _req("bad audit time", {"op": "audit.query", "since": "last week"}, "invalid_date"),
    _req("limit out of range", {"op": "orders.list", "limit": 0}, "invalid_request"),
    _req("sku.get of an unknown SKU", {"op": "sku.get", "sku": "NOPE"}, "unknown_sku"),
]


def _setup_state(c) -> None:
    stock(c, "B", 2)
    submit(c, "GOOD-1", line("B", 3))  # 2 allocated (picking), 1 backordered, PO raised


@pytest.fixture(scope="module")
def shared_client(shared_daemon):
    """One daemon with some state for the many bad requests: each must change nothing,
    which every test checks, so they can share it."""
    with shared_daemon.client() as c:
        if not c.call("stats")["counts"]["orders"]:
            _setup_state(c)
        yield c


@pytest.mark.parametrize(
    ("what", "raw", "code", "rid"), BAD_LINES + BAD_REQUESTS, ids=[b[0] for b in BAD_LINES + BAD_REQUESTS]
)
def test_bad_request_gets_a_stable_code_and_changes_nothing(shared_client, what, raw, code, rid):
    c = shared_client
    before = fingerprint(c, "B")
    c.send_raw(raw + b"\n")
    reply = c.reply()
    assert reply["ok"] is False, what
    assert reply["error"]["code"] == code, (what, reply["error"])
    assert reply["error"]["message"]
    assert reply["id"] == rid
    assert set(reply) == {"id", "ok", "error"}
    after = fingerprint(c, "B")
    assert after == before
    # the connection still works
    assert c.call("health")["status"] == "serving"


def test_bad_date_in_procurement_confirm(sim_client):
    c = sim_client
    _setup_state(c)
    (po,) = c.call("procurement.list")["requests"]
    before = fingerprint(c, "B")
    for bad in ("2024-02-30", "2024-13-01", "15/03/2024", "next week", ""):
        reply = c.request("procurement.confirm", request_id=po["request_id"], expected_date=bad)
        assert (reply["ok"], reply["error"]["code"]) == (False, "invalid_date"), bad
    assert fingerprint(c, "B") == before


def test_pick_of_a_cancelled_orders_shipment(sim_client):
    c = sim_client
    _setup_state(c)
    oid = c.call("order.get", channel="web", external_id="GOOD-1")["order_id"]
    (sh,) = c.call("shipments.list", order_id=oid)["shipments"]
    c.call("order.cancel", order_id=oid)
    before = fingerprint(c, "B")
    with pytest.raises(CallError) as exc:
        c.call("pick.confirm", shipment_id=sh["shipment_id"])
    assert exc.value.code == "order_cancelled"
    assert fingerprint(c, "B") == before


def test_an_unreadable_id_is_null_and_any_json_id_is_echoed(sim_client):
    c = sim_client
    for rid in (0, "abc", [1, 2], {"a": {"b": None}}, 1.25, None, True):
        c.send_raw(json.dumps({"op": "no.such.op", "id": rid}).encode() + b"\n")
        reply = c.reply()
        assert reply["id"] == rid
        assert reply["error"]["code"] == "unknown_op"
        c.send_raw(json.dumps({"op": "health", "id": rid}).encode() + b"\n")
        assert c.reply()["id"] == rid


def test_blank_lines_are_ignored(sim_client):
    c = sim_client
    c.send_raw(b"\n  \n\r\n")
    assert c.call("health")["status"] == "serving"


def test_line_over_one_mib_is_refused_and_only_that_connection_is_closed(sim):
    # connection limits: the offender is told why, then disconnected; others go on
    d = sim()
    with d.client() as c, d.client() as other:
        _setup_state(other)
        before = fingerprint(other, "B")
        pad = "x" * (MAX_LINE + 100)
        too_long = json.dumps({**ORDER, "id": "big", "external_id": "HUGE", "pad": pad}).encode()
        try:
            c.send_raw(too_long + b"\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed while the rest of the line was still being sent
        reply = c.reply()
        assert (reply["ok"], reply["error"]["code"]) == (False, "line_too_long")
        with pytest.raises((ConnectionError, OSError)):
            c.reply()
        assert fingerprint(other, "B") == before
        with pytest.raises(CallError):
            other.call("order.get", channel="web", external_id="HUGE")
        # the other connection is served
        assert submit(other, "AFTER", line("B", 1))["duplicate"] is False


def test_line_of_exactly_one_mib_is_accepted(sim_client):
    c = sim_client
    head = json.dumps({"op": "health", "id": "edge", "pad": ""}).encode()
    exact = head[:-2] + b"y" * (MAX_LINE - len(head)) + head[-2:]
    assert len(exact) == MAX_LINE
    c.send_raw(exact + b"\n")
    reply = c.reply()
    assert reply["ok"] is True
    assert reply["id"] == "edge"


def test_many_bad_lines_pipelined_each_get_a_reply_in_order(sim_client):
    c = sim_client
    raws = [b"{", b"[]", b'{"op":"nope","id":3}', b'{"op":"health","id":4}', b'{"id":5}']
    c.send_raw(b"\n".join(raws) + b"\n")
    replies = [c.reply() for _ in raws]
    codes = sorted(r["error"]["code"] if not r["ok"] else "ok" for r in replies)
    assert codes == sorted(["malformed_json", "malformed_json", "unknown_op", "ok", "missing_op"])


def test_a_misbehaving_client_does_not_disturb_another(sim):
    d = sim()
    with d.client() as good:
        _setup_state(good)
        before = fingerprint(good, "B")
        for garbage in (b'\x00\x01\x02 not json\n{"op": "order.sub', b"{" * 100_000, b"\n" * 1000 + b'{"op":'):
            bad = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            bad.connect(str(d.socket))
            bad.sendall(garbage)
            bad.close()  # abruptly, in the middle of a line, without reading any reply
        assert fingerprint(good, "B") == before
        assert submit(good, "STILL-OK", line("B", 1))["duplicate"] is False
        assert good.call("health")["status"] == "serving"


def test_clients_that_hang_up_with_replies_owed_do_not_stop_the_daemon(sim):
    d = sim()
    for n in range(20):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as rude:
            rude.connect(str(d.socket))
            rude.sendall(b'{"op":"health","id":1}\n' * 50 + b"{oops}\n" * n)
    with d.client() as c:
        assert c.call("health")["status"] == "serving"
    assert d.proc.poll() is None


def test_a_client_that_never_reads_does_not_slow_another(sim):
    d = sim()
    flood = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        flood.connect(str(d.socket))
        flood.setblocking(False)
        request = b'{"op":"stats","id":1}\n'
        sent = 0
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:  # write until the daemon stops reading us
            try:
                sent += flood.send(request * 256)
            except BlockingIOError:
                break
        with d.client(timeout=5) as other:
            t0 = time.monotonic()
            for n in range(20):
                submit(other, f"FAIR-{n}", line("F", 1))
            assert time.monotonic() - t0 < 3.0
            assert other.call("health")["status"] == "serving"
    finally:
        flood.close()
    with d.client() as c:  # the flooder went away: the daemon is fine
        assert c.call("stats")["counts"]["orders"] == 20


def test_closing_before_the_reply_still_carries_out_the_request(sim):
    d = sim()
    with Client(str(d.socket)) as c:
        c.send_raw(json.dumps({**ORDER, "id": 1, "external_id": "GONE"}).encode() + b"\n")
    with d.client() as c:
        got = wait_until(
            lambda: c.call("order.get", channel="web", external_id="GONE"),
            timeout=5,
            interval=0.01,
            message="the order sent before the close never arrived",
            ignore=CallError,
        )
        # (nobody awaited its reply: it may still be on its way to the SKU actor)
        assert got["status"] in ("received", "backordered")
