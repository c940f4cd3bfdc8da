"""The metrics endpoint: off by default; when configured, scraped over HTTP and parsed with
prometheus_client's own parser; the numbers follow what the daemon did."""

from __future__ import annotations

import json
import math
import time
import urllib.request

from bo_support import line, stock, submit
from prometheus_client.parser import text_string_to_metric_families

from backorder.client import CallError
from backorder.launcher import wait_until


def _port(d) -> int:
    for ln in d.log.read_text().splitlines():
        if '"metrics_listening"' in ln:
            return json.loads(ln)["port"]
    raise AssertionError("no metrics_listening line")


def _scrape(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        assert resp.status == 200
        text = resp.read().decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def _value(families, name: str, sample: str | None = None, **labels) -> float:
    fam = families[name]
    for s in fam.samples:
        if (sample is None or s.name == sample) and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    raise KeyError((name, sample, labels))


def test_metrics_are_off_by_default(sim):
    d = sim()
    assert '"metrics_listening"' not in d.log.read_text()


def test_metrics_endpoint_scraped_and_parsed(sim):
    d = sim("[metrics]\nport = 0\nrefresh_s = 0.05\n")
    port = _port(d)
    with d.client() as c:
        stock(c, "A", 1)
        submit(c, "M1", line("A", 3))  # 1 allocated, 2 backordered
        for _ in range(5):
            c.call("health")
        try:
            c.call("sku.get", sku="NOPE")
        except CallError:
            pass
        seq = c.call("health")["journal"]["last_seq"]

        def refreshed() -> dict | None:  # the loop refreshes every 0.05 s
            fams = _scrape(port)
            if (
                _value(fams, "backorder_requests", op="health") >= 6
                and _value(fams, "backorder_journal_last_seq") >= seq
            ):
                return fams
            return None

        # KeyError: scraped before the first refresh after the requests
        fams = wait_until(
            refreshed, timeout=10, interval=0.05, message="the metrics never counted the requests", ignore=KeyError
        )
    assert _value(fams, "backorder_requests", op="order.submit") == 1
    assert _value(fams, "backorder_requests", op="stock.receive") == 1
    assert _value(fams, "backorder_request_errors", op="sku.get", code="unknown_sku") == 1
    # reply latency: a histogram with one observation per reply sent
    count = _value(fams, "backorder_reply_latency_seconds", "backorder_reply_latency_seconds_count")
    assert count >= 9
    assert _value(fams, "backorder_reply_latency_seconds", "backorder_reply_latency_seconds_bucket", le="+Inf") == count
    assert _value(fams, "backorder_journal_commit_seconds", "backorder_journal_commit_seconds_count") >= 1
    assert _value(fams, "backorder_journal_commit_batch_events", "backorder_journal_commit_batch_events_sum") >= seq - 1
    assert _value(fams, "backorder_backorder_lines") == 1
    assert _value(fams, "backorder_backorder_units") == 2
    assert _value(fams, "backorder_actors", state="active") >= 1
    assert _value(fams, "backorder_mailbox_depth", actor="order") == 0
    assert _value(fams, "backorder_dead_letters") == 0
    assert _value(fams, "backorder_connections") >= 0
    assert math.isnan(_value(fams, "backorder_order_accuracy"))  # nothing shipped yet
    # the backordered line waits within its target: not counted yet (NaN, not 0)
    assert math.isnan(_value(fams, "backorder_fulfillment_rate"))
    # the windowed KPIs, as in stats: 1 of the 3 units ordered was allocated at order time
    for window in ("7d", "30d", "all"):
        assert _value(fams, "backorder_kpi_unit_fill_rate_at_order", window=window) == round(1 / 3, 4)
        assert _value(fams, "backorder_kpi_unit_fill_rate_at_order_numerator", window=window) == 1
        assert _value(fams, "backorder_kpi_unit_fill_rate_at_order_denominator", window=window) == 3
        assert _value(fams, "backorder_kpi_backorder_fill_rate_lines_denominator", window=window) == 0
    assert "units_allocated_at_order / units_ordered" in fams["backorder_kpi_unit_fill_rate_at_order"].documentation
    assert math.isnan(_value(fams, "backorder_kpi_reorder_lead_time_hours_p90", window="all", source="*"))
    assert _value(fams, "backorder_actor_restarts") == 0
    assert d.stop() == 0  # the HTTP thread stops with the daemon


def test_idle_connections_are_closed_after_the_timeout_and_capped(sim):
    import socket

    d = sim("[metrics]\nport = 0\ntimeout_s = 1.0\nmax_connections = 3\n")
    port = _port(d)

    def idle() -> socket.socket:
        return socket.create_connection(("127.0.0.1", port), timeout=20)

    held = [idle(), idle()]
    assert "backorder_requests" in _scrape(port)  # the third slot
    t0 = time.monotonic()
    for s in held:
        assert s.recv(1024) == b""  # closed by the daemon after timeout_s of silence
        s.close()
    assert time.monotonic() - t0 < 10
    held = [idle() for _ in range(3)]  # every slot taken: one more is closed at once
    held[0].sendall(b"GET /metrics HTTP/1.0\r\n")  # a request line, then silence: the same timeout
    extra = idle()
    assert extra.recv(1024) == b""
    extra.close()
    for s in held:
        assert s.recv(1024) == b""
        s.close()
    assert "backorder_requests" in _scrape(port)  # slots free again
    with d.client() as c:
        assert c.call("health")["status"] == "serving"
