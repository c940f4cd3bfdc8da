"""Limits: a client that sends an oversize line, floods requests without reading the
replies, or sits idle is told why and disconnected; the other clients never notice."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

from bo_support import SIM_CONFIG, stock

from backorder.launcher import wait_until


def _limits(**keys) -> str:
    return "[limits]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items()) + SIM_CONFIG


def _connect(d) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(20)
    s.connect(str(d.socket))
    return s


def _read_to_eof(s: socket.socket) -> list[dict]:
    """Every line the daemon sent before it closed the connection."""
    data = b""
    while True:
        try:
            chunk = s.recv(1 << 20)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return [json.loads(line) for line in data.splitlines() if line.strip()]


def test_an_oversize_line_is_told_and_disconnected_others_unaffected(make_daemon):
    d = make_daemon(_limits(line_bytes=2048))
    with d.client() as other:
        stock(other, "A", 3)
        with _connect(d) as bad:
            ok_line = json.dumps({"op": "health", "id": "fits", "pad": "x" * 1900}).encode()
            assert len(ok_line) <= 2048
            bad.sendall(ok_line + b"\n")
            bad.sendall(json.dumps({"op": "health", "id": "big", "pad": "x" * 3000}).encode() + b"\n")
            got = _read_to_eof(bad)
        assert got[0]["id"] == "fits" and got[0]["ok"] is True
        assert got[-1]["ok"] is False and got[-1]["error"]["code"] == "line_too_long"
        assert "2048" in got[-1]["error"]["message"]
        # the other connection goes on as if nothing happened
        other.call("stock.receive", sku="A", qty=1)
        assert other.call("sku.get", sku="A")["on_hand"] == 4
        assert other.call("health")["connections"] == 1


def test_an_idle_connection_is_closed_but_subscribers_and_busy_clients_stay(make_daemon):
    d = make_daemon(_limits(idle_timeout_s=0.4))
    with d.client() as subscriber, d.client() as busy, _connect(d) as idle:
        subscriber.call("subscribe", topics=["stock"])
        t0 = time.monotonic()
        # `busy` keeps talking (a request every 0.1 s) for three times the timeout; the
        # subscriber and `idle` send nothing at all (time passing is what this test is
        # about: the sleep spaces busy's requests, it synchronises nothing)
        while time.monotonic() - t0 < 1.2:
            assert busy.call("health")["status"] == "serving"
            time.sleep(0.1)
        got = _read_to_eof(idle)
        assert [m["error"]["code"] for m in got] == ["idle_timeout"]
        assert "0.4" in got[0]["error"]["message"]
        busy.call("sku.configure", sku="S")
        busy.call("stock.receive", sku="S", qty=2)
        # the subscriber still receives its events and answers
        assert subscriber.call("sku.get", sku="S")["on_hand"] == 2

        def received_event() -> bool:
            if any(e["event"]["type"] == "received" for e in subscriber.events):
                return True
            subscriber.call("health")  # reading a reply collects the event lines sent before it
            return False

        wait_until(received_event, timeout=10, interval=0.01, message="the subscriber never got the received event")
        assert busy.call("health")["connections"] == 2


def test_a_client_that_floods_without_reading_is_disconnected_others_unaffected(make_daemon):
    d = make_daemon("[daemon]\nmax_inflight = 16\n[limits]\ninflight_wait_s = 0.5\n")
    flood = b"".join(json.dumps({"op": "health", "id": n}).encode() + b"\n" for n in range(30000))
    with d.client() as other, _connect(d) as bad:
        stock(other, "A", 1)
        try:
            bad.sendall(flood)  # never reads: its replies fill the socket, its slots stay taken
        except (BrokenPipeError, ConnectionResetError):
            pass  # the daemon closed it while we were still writing
        got = _read_to_eof(bad)
        assert len(got) < 30000  # disconnected before it was served in full
        assert other.call("sku.get", sku="A")["on_hand"] == 1
        assert other.call("health")["connections"] == 1
    log = d.log.read_text()
    assert '"code":"too_many_inflight"' in log, log[-2000:]


def test_a_client_that_half_closes_still_gets_every_reply(make_daemon):
    # `printf '...' | socat - UNIX:...` style: send everything, shut the write side, read
    d = make_daemon(SIM_CONFIG)
    n = 300
    with _connect(d) as s:
        s.sendall(
            b"".join(
                json.dumps(
                    {
                        "op": "order.submit",
                        "id": i,
                        "channel": "web",
                        "external_id": f"H{i}",
                        "lines": [{"sku": f"S{i % 7}", "qty": 1}],
                    }
                ).encode()
                + b"\n"
                for i in range(n)
            )
        )
        s.shutdown(socket.SHUT_WR)
        got = _read_to_eof(s)
    assert sorted(r["id"] for r in got) == list(range(n))
    assert all(r["ok"] for r in got)


def test_a_subscriber_that_does_not_keep_up_can_be_disconnected(make_daemon):
    d = make_daemon('[daemon]\nsubscriber_buffer = 16\n[limits]\nsubscriber_overflow = "disconnect"\n')
    with d.client() as other, _connect(d) as slow:
        slow.sendall(b'{"op": "subscribe", "id": 1, "topics": ["stock"]}\n')
        other.call("sku.configure", sku="A")
        # far more event lines than the socket buffers and the 16 queued lines can hold
        for _batch in range(12):
            replies = other.pipeline([{"op": "stock.receive", "sku": "A", "qty": 1} for _ in range(500)])
            assert all(r["ok"] for r in replies)
        got = _read_to_eof(slow)  # the daemon closed it
        assert got[0]["id"] == 1 and got[0]["ok"] is True
        assert len(got) < 6000
        assert other.call("sku.get", sku="A")["on_hand"] == 6000
        assert other.call("health")["subscribers"] == 0
    assert '"code":"subscriber_overflow"' in d.log.read_text()


def _rss_kib(pid: int) -> int:
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith("VmRSS:"):
            return int(row.split()[1])
    raise AssertionError("no VmRSS")


def test_a_client_that_pipelines_large_reads_without_reading_holds_a_bounded_backlog(make_daemon):
    # Each audit.query of 10,000 events is a reply of a few MiB, over the 1 MiB budget: the
    # daemon builds one, and builds no other until the client reads it.
    d = make_daemon(_limits(reply_bytes=1024 * 1024, inflight_wait_s=3.0))
    pid = d.proc.pid
    with d.client() as other:
        other.call("sku.configure", sku="A")
        assert all(r["ok"] for r in other.pipeline([{"op": "stock.receive", "sku": "A", "qty": 1}] * 10000))
        page = other.call("audit.query", limit=10000)
        assert len(page["records"]) == 10000
        reply_size = len(json.dumps(page))
        assert reply_size > 2 * 1024 * 1024  # each reply alone is over the budget
        rss_before = _rss_kib(pid)
        with _connect(d) as bad:
            bad.sendall(
                b"".join(
                    json.dumps({"op": "audit.query", "id": n, "limit": 10000}).encode() + b"\n" for n in range(1000)
                )
            )
            peak = rss_before
            # the other client is served as usual meanwhile, its own audit.query included
            for n in range(5):
                t0 = time.monotonic()
                assert other.call("stock.receive", sku="A", qty=1)["on_hand"] == 10001 + n
                assert len(other.call("audit.query", sku="A", limit=10)["records"]) == 10
                assert other.call("health")["connections"] == 2
                assert time.monotonic() - t0 < 2.0
                peak = max(peak, _rss_kib(pid))

            def closed() -> bool:
                nonlocal peak
                peak = max(peak, _rss_kib(pid))
                return '"code":"too_many_reply_bytes"' in d.log.read_text()

            wait_until(closed, timeout=20, interval=0.05, message="the client that never reads was not closed")
            got = _lines_to_eof(bad)
        # built and sent: what the socket buffers took (a reply or two), never the 1,000 asked for
        assert len(got) <= 3
        assert other.call("health")["connections"] == 1
        # a client that reads gets every large reply it pipelines, the budget only paces them
        pages = other.pipeline([{"op": "audit.query", "limit": 10000}] * 8)
        assert [len(r["result"]["records"]) for r in pages] == [10000] * 8
    # Measured: +4..14 MiB with the budget; without it the same client made the daemon hold
    # every result it asked for (+3.3 GiB in 15 s), and the other client's audit.query
    # waited behind all 1,000 of them.
    assert peak - rss_before < 64 * 1024, (rss_before, peak)


def test_a_client_that_pipelines_large_lists_without_reading_stops_being_read(make_daemon):
    # skus.list is answered at once by the reader: over the budget, it reads no further
    d = make_daemon(_limits(reply_bytes=65536, inflight_wait_s=2.0))
    pid = d.proc.pid
    with d.client() as other:
        other.pipeline([{"op": "sku.configure", "sku": f"S{n:05d}"} for n in range(3000)])
        reply_size = len(json.dumps(other.call("skus.list", limit=10000)))
        assert reply_size > 65536
        n_asked = 400  # unbounded, this many replies would be reply_size * 400 (over 100 MiB)
        assert reply_size * n_asked > 100 * 1024 * 1024
        rss_before = _rss_kib(pid)
        with _connect(d) as bad:
            bad.sendall(
                b"".join(
                    json.dumps({"op": "skus.list", "id": n, "limit": 10000}).encode() + b"\n" for n in range(n_asked)
                )
            )
            assert other.call("sku.get", sku="S00001")["sku"] == "S00001"
            wait_until(
                lambda: '"code":"too_many_reply_bytes"' in d.log.read_text(),
                timeout=20,
                interval=0.05,
                message="the client that never reads was not closed",
            )
            peak = _rss_kib(pid)
            got = _lines_to_eof(bad)
        assert len(got) <= 3
    assert peak - rss_before < 32 * 1024, (rss_before, peak)


def _lines_to_eof(s: socket.socket) -> list[dict]:
    """The complete lines the daemon sent before it closed the connection (one cut short
    by the close is left out)."""
    data = b""
    while True:
        try:
            chunk = s.recv(1 << 20)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return [json.loads(line) for line in data.split(b"\n")[:-1] if line.strip()]


def test_a_client_that_half_closes_and_never_reads_is_released(make_daemon):
    # Everything asked in one go, the write side shut, nothing ever read: the replies fit
    # the reply budget (so the reader never waits) but not the socket buffers, so the
    # writer cannot finish. The connection must still be closed once its replies stay
    # unread for inflight_wait_s, or each such client holds a connection slot for ever.
    d = make_daemon(_limits(inflight_wait_s=0.5))
    with d.client() as other:
        other.pipeline([{"op": "sku.configure", "sku": f"S{n:05d}"} for n in range(3000)])
        reply_size = len(json.dumps(other.call("skus.list", limit=10000)))
        n_asked = 3 * 1024 * 1024 // reply_size  # under the 4 MiB default reply_bytes
        assert reply_size * n_asked > 2 * 1024 * 1024  # far over what the socket buffers hold
        with _connect(d) as bad:
            bad.sendall(
                b"".join(
                    json.dumps({"op": "skus.list", "id": n, "limit": 10000}).encode() + b"\n" for n in range(n_asked)
                )
            )
            bad.shutdown(socket.SHUT_WR)
            wait_until(
                lambda: other.call("health")["connections"] == 1,
                timeout=15,
                interval=0.05,
                message="a half-closed client that never reads still holds its connection",
            )
        assert other.call("sku.get", sku="S00001")["sku"] == "S00001"


def test_queued_large_reads_of_a_connection_that_closes_are_dropped_without_a_failure(make_daemon):
    # A half-closed client that reads nothing: its audit.query wait for reply room; when the
    # connection closes, those not started are dropped. The task that ran them must end
    # quietly, not fail the connection (connection_failed, an internal_error line written
    # into the middle of a reply).
    d = make_daemon(SIM_CONFIG + "grace_s = 1.0\n[limits]\nreply_bytes = 65536\ninflight_wait_s = 2.0\n")
    with d.client() as other:
        other.call("sku.configure", sku="A")
        assert all(r["ok"] for r in other.pipeline([{"op": "stock.receive", "sku": "A", "qty": 1}] * 10000))
        with _connect(d) as s:
            s.sendall(
                b"".join(json.dumps({"op": "audit.query", "id": i, "limit": 10000}).encode() + b"\n" for i in range(20))
            )
            s.shutdown(socket.SHUT_WR)
            wait_until(
                lambda: other.call("health")["connections"] == 1,
                timeout=15,
                interval=0.05,
                message="the half-closed client was not released",
            )
    assert '"connection_failed"' not in d.log.read_text()


def test_a_client_that_half_closes_gets_every_large_read_however_long_they_take(make_daemon):
    # The audit.query of a connection run one at a time: a client that sends many, shuts its
    # write side and reads them all must get every reply, even when running them all takes
    # longer than grace_s (the bound on a reply that never comes, not on replies that do).
    d = make_daemon(SIM_CONFIG + "grace_s = 1.0\n")
    with d.client() as other:
        other.call("sku.configure", sku="A")
        assert all(r["ok"] for r in other.pipeline([{"op": "stock.receive", "sku": "A", "qty": 1}] * 2000))
    n = 100
    with _connect(d) as s:
        s.sendall(
            b"".join(json.dumps({"op": "audit.query", "id": i, "limit": 2000}).encode() + b"\n" for i in range(n))
        )
        s.shutdown(socket.SHUT_WR)
        t0 = time.monotonic()
        got = _read_to_eof(s)
        took = time.monotonic() - t0
    assert took > 1.0  # what this test is about: longer than grace_s
    assert sorted(r["id"] for r in got) == list(range(n)), (len(got), took)
    assert all(len(r["result"]["records"]) == 2000 for r in got)
