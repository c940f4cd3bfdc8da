"""Signals: SIGHUP reloads the config file (good and bad), SIGTERM drains requests in
flight within the configured grace, SIGUSR1 toggles debug logging."""

from __future__ import annotations

import json
import signal
import socket
import time

import pytest
from bo_support import SIM_CONFIG, fingerprint, line, read_db, submit

from backorder.launcher import wait_until

BASE = (
    SIM_CONFIG
    + """
[allocation]
mode = "fifo"

[skus.A]
reorder_point = 2
order_up_to = 10
"""
)


def _log_lines(d, event: str) -> list[dict]:
    return [json.loads(ln) for ln in d.log.read_text().splitlines() if f'"event":"{event}"' in ln]


def _sighup_and_wait(d, event: str, n_before: int) -> dict:
    d.proc.send_signal(signal.SIGHUP)
    found = wait_until(
        lambda: (lines := _log_lines(d, event))[n_before:] and lines,
        timeout=10,
        message=lambda: f"no {event} log line after SIGHUP:\n{d.log_tail(2000)}",
    )
    return found[-1]


def test_sighup_reloads_policies_roles_limits_and_replay_stays_equal(sim):
    d = sim(BASE.replace(SIM_CONFIG, ""))
    with d.client() as c:
        submit(c, "E1", line("A", 3), line("B", 1), line("C", 2))  # C: no policy of its own
        assert c.call("sku.get", sku="A")["policy"]["order_up_to"] == 10
        (shortage,) = c.call("procurement.list", sku="C")["requests"]  # the default: the shortage only
        assert shortage["qty"] == 2
        new = BASE.replace("order_up_to = 10", "order_up_to = 40\nmoq = 5")
        new = new.replace('mode = "fifo"', 'mode = "priority"')
        new += "\n[skus.B]\nreorder_point = 1\norder_up_to = 7\n\n[limits]\nidle_timeout_s = 300.0\n"
        new += "\n[default_policy]\nreorder_point = 1\norder_up_to = 6\n"
        d.config.write_text(new)
        _sighup_and_wait(d, "config_reloaded", 0)
        wait_until(
            lambda: c.call("policy.get")["mode"] == "priority",
            timeout=10,  # journaled through the order actor
            message="the reloaded allocation mode never took effect",
        )
        a, b = c.call("sku.get", sku="A"), c.call("sku.get", sku="B")
        assert (a["policy"]["order_up_to"], a["policy"]["moq"]) == (40, 5)
        assert b["policy"]["order_up_to"] == 7
        # C follows the new default at once, and reorders under it (2 waiting, up to 6)
        assert c.call("sku.get", sku="C")["policy"]["order_up_to"] == 6
        shortage_po, po = c.call("procurement.list", sku="C")["requests"]
        assert shortage_po == shortage and po["qty"] == 6  # position 0 -> 6
        # journaled like the file's policies at start: cause "config"
        recs = c.call("audit.query", sku="B")["records"]
        configured = [r for r in recs if r["type"] == "sku_configured"]
        assert configured and configured[-1]["cause"] == "config"
        before = fingerprint(c, "A", "B", "C")
        policy = c.call("policy.get")
    assert d.stop() == 0
    d.start()  # the new file, and replay of the journal: the same state
    with d.client() as c:
        assert fingerprint(c, "A", "B", "C") == before
        assert c.call("policy.get") == policy
    d.kill9()  # and without the clean-stop snapshot (replay of every event)
    read_db(d.db, "SELECT 1")
    d.start()
    with d.client() as c:
        assert fingerprint(c, "A", "B", "C") == before


def test_an_invalid_reload_is_refused_and_the_old_config_keeps_running(sim):
    d = sim(BASE.replace(SIM_CONFIG, ""))
    good = d.config.read_text()
    d.config.write_text(good.replace("order_up_to = 10", "order_up_to = 1") + "\n[limits]\nline_bytes = 5\n")
    refused = _sighup_and_wait(d, "reload_refused", 0)
    assert "skus.A" in refused["reason"] or "limits.line_bytes" in refused["reason"]
    assert "limits.line_bytes" in refused["reason"]
    assert d.proc.poll() is None
    with d.client() as c:
        assert c.call("sku.get", sku="A")["policy"]["order_up_to"] == 10
        assert c.call("health")["status"] == "serving"
    # a later valid file is applied
    d.config.write_text(good.replace("order_up_to = 10", "order_up_to = 12"))
    _sighup_and_wait(d, "config_reloaded", 0)
    with d.client() as c:
        assert c.call("sku.get", sku="A")["policy"]["order_up_to"] == 12


def test_sigterm_drains_requests_in_flight_and_loses_nothing(sim):
    d = sim("")
    n = 4000
    reqs = b"".join(
        json.dumps(
            {
                "op": "order.submit",
                "id": i,
                "channel": "web",
                "external_id": f"X{i}",
                "lines": [{"sku": f"S{i % 50}", "qty": 1}],
            }
        ).encode()
        + b"\n"
        for i in range(n)
    )
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    try:
        s.connect(str(d.socket))
        s.sendall(reqs)
        d.proc.send_signal(signal.SIGTERM)  # while most of them are in flight
        data = b""
        try:
            while chunk := s.recv(1 << 20):
                data += chunk
        except ConnectionResetError:
            pass  # closed with requests it never read: a reset after the last reply
    finally:
        s.close()
    replies = [json.loads(x) for x in data.splitlines()]
    assert d.proc.wait(30) == 0
    assert replies, "nothing was answered before the drain"
    assert all(r["ok"] for r in replies), [r for r in replies if not r["ok"]][:3]
    acked = {r["result"]["order_id"] for r in replies}
    d.start()
    with d.client() as c:
        # every acknowledged order is there, and nothing that was not acknowledged
        assert c.call("stats")["counts"]["orders"] == len(acked)
        for oid in list(acked)[:50]:
            assert c.call("order.get", order_id=oid)["order_id"] == oid


def test_sigterm_grace_bounds_a_client_that_never_reads(sim):
    d = sim("")
    d.config.write_text(d.config.read_text().replace("[daemon]\n", "[daemon]\ngrace_s = 1.0\n"))
    d.restart()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    try:
        s.connect(str(d.socket))
        s.setblocking(False)
        flood = b'{"op": "health"}\n' * 200_000
        sent = 0
        t_end = time.monotonic() + 2
        while time.monotonic() < t_end:  # fill both socket buffers; never read
            try:
                sent += s.send(flood[sent : sent + 65536])
            except BlockingIOError:
                time.sleep(0.01)  # full: give the daemon a moment to read some, then fill again
        t0 = time.monotonic()
        d.proc.send_signal(signal.SIGTERM)
        # draining (the stuck client holds it for up to grace_s): new clients are refused
        wait_until(
            lambda: not d.socket.exists(), timeout=5, interval=0.01, message="the socket stayed open during the drain"
        )
        assert d.proc.poll() is None, "the daemon did not wait for its grace period"
        late = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with pytest.raises((FileNotFoundError, ConnectionRefusedError)):
                late.connect(str(d.socket))
        finally:
            late.close()
        assert d.proc.wait(20) == 0
        assert 0.5 < time.monotonic() - t0 < 6
    finally:
        s.close()


def test_sigusr1_toggles_debug_logging(sim):
    d = sim("")
    with d.client():
        pass
    assert '"event":"connection_closed"' not in d.log.read_text()  # debug lines are off
    d.proc.send_signal(signal.SIGUSR1)
    changed = wait_until(lambda: _log_lines(d, "log_level_changed"), message="no log_level_changed line after SIGUSR1")
    assert changed[-1]["level_now"] == "debug"
    with d.client():
        pass
    wait_until(lambda: _log_lines(d, "connection_closed"), message="no debug connection_closed line")


def test_sighup_reloads_notification_channel_settings(sim, tmp_path):
    first, second = tmp_path / "drop1", tmp_path / "drop2"
    notify = '[notifications]\nbackoff_base_s = 0.05\n[notifications.routes]\n"*" = "file"\n[notifications.file]\n'
    d = sim(notify + f'dir = "{first}"\n')

    def order(c, n: int) -> str:
        return submit(c, f"N{n}", line("Z", 1), email=f"c{n}@example.com")["order_id"]  # backordered

    def sent(c) -> int:
        return len(c.call("notifications.list", status="sent")["notifications"])

    with d.client() as c:
        order(c, 1)
        wait_until(lambda: sent(c) >= 1, timeout=20, message="the first notice was never sent")
        d.config.write_text(d.config.read_text().replace(str(first), str(second)))
        _sighup_and_wait(d, "config_reloaded", 0)
        order(c, 2)
        wait_until(lambda: sent(c) >= 2, timeout=20, message="the notice after the reload was never sent")
    assert len(list(first.glob("*.json"))) == 1
    assert len(list(second.glob("*.json"))) == 1  # the notice after the reload went to the new place


CSV = (
    "order_id,order_date,currency,email,sku,qty,unit_price,ship_name,ship_address1,ship_city,ship_postal_code,"
    "ship_country\n{oid},2026-01-05T08:00:00Z,USD,ann@example.com,W,1,9.99,Ann Lee,1 Main St,Springfield,1,US\n"
)


def test_sighup_reloads_intake_channel_settings(sim):
    d = sim("[channels.csv]\nenabled = true\n")
    with d.client() as c:
        assert c.call("order.ingest", channel="csv", body=CSV.format(oid="R1"))["outcome"] == "accepted"
        d.config.write_text(d.config.read_text().replace("enabled = true", "enabled = false"))
        _sighup_and_wait(d, "config_reloaded", 0)
        refused = c.request("order.ingest", channel="csv", body=CSV.format(oid="R2"))
        assert refused["error"]["code"] == "unknown_channel"
