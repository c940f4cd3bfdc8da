"""A flash sale far above intake capacity: callers are told busy / 503 + Retry-After
instead of the daemon buffering without bound, rush orders still get in, and every order
that was acknowledged is in the journal after a kill -9 and restart."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

from intake_support import generic_headers, http_port, post

SPIKE = """
[intake]
listen = "127.0.0.1:0"
queue_size = 40
priority_reserve = 10
workers = 2

[channels.csv]
secret_env = "BO_TEST_GENERIC_SECRET"
"""
HEAD = "order_id,currency,email,sku,qty,unit_price,ship_address1,ship_country,rush\n"


def csv_row(ext: str, rush: bool = False) -> str:
    return f"{ext},USD,sale@example.com,SALE-{hash(ext) % 50},1,9.99,1 Main St,US,{'yes' if rush else ''}\n"


def csv_order(ext: str, rush: bool = False) -> str:
    return HEAD + csv_row(ext, rush)


HTTP_ORDERS = 10  # orders per webhook delivery: workers take longer than the senders to fill the queue


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_burst_far_above_capacity_is_refused_not_buffered_and_nothing_acknowledged_is_lost(make_daemon, monkeypatch):
    monkeypatch.setenv("BO_TEST_GENERIC_SECRET", "poller-secret")
    d = make_daemon(SPIKE)
    accepted: set[str] = set()
    busy = 0
    with d.client(timeout=120) as c:
        rss0 = rss_kb(d.proc.pid)
        # 4,000 ordinary orders pipelined over one connection, with 8 rush orders at the end
        # of each window: far more than 40 can wait, so most are refused at once.
        for w in range(8):
            reqs = [{"op": "order.ingest", "channel": "csv", "body": csv_order(f"S{w}-{n}")} for n in range(500)]
            reqs += [
                {"op": "order.ingest", "channel": "csv", "body": csv_order(f"R{w}-{n}", rush=True)} for n in range(8)
            ]
            for req, rep in zip(reqs, c.pipeline(reqs, window=508), strict=True):
                ext = req["body"].split("\n")[1].split(",")[0]
                if rep["ok"]:
                    assert rep["result"]["outcome"] == "accepted", rep
                    accepted.add(ext)
                else:
                    assert rep["error"]["code"] == "busy", rep
                    assert not ext.startswith("R"), "a rush order was refused behind the flood"
                    busy += 1
        # the same through the webhook listener, 80 senders at once
        port = http_port(c)

        def send(n: int) -> tuple[list[str], int, dict]:
            exts = [f"H{n}-{i}" for i in range(HTTP_ORDERS)]
            body = (HEAD + "".join(csv_row(ext) for ext in exts)).encode()
            status, _res, headers = post(port, "csv", body, generic_headers(body))
            return exts, status, headers

        statuses = []
        with concurrent.futures.ThreadPoolExecutor(80) as pool:
            for exts, status, headers in pool.map(send, range(1200)):
                statuses.append(status)
                if status == 200:
                    accepted.update(exts)
                else:
                    assert status == 503 and headers["retry-after"] == "2"
        health = c.call("health")
        rss1 = rss_kb(d.proc.pid)
    assert busy > 1000 and statuses.count(503) > 0, (busy, statuses.count(503))
    assert {f"R{w}-{n}" for w in range(8) for n in range(8)} <= accepted
    assert health["intake"]["peak"] <= 40  # never more deliveries held than the queue allows
    assert rss1 - rss0 < 60_000, (rss0, rss1)  # KiB: bounded, whatever the burst
    d.kill9()
    d.start()
    with d.client() as c:
        assert c.call("stats")["counts"]["orders"] == len(accepted)
        for ext in sorted(accepted)[::25]:
            assert c.call("order.get", channel="csv", external_id=ext)["external_id"] == ext
