"""One receipt that fills 100,000 waiting lines of one SKU.

SKU "HOT" is configured with reorder point 0 and order-up-to 2N, so it raises one
purchase order (for 2N units) and no more. N single-line orders for 1 unit of HOT are
pipelined (4 connections) with no stock: N lines wait. Then one ``stock.receive`` of N
units against that purchase order is sent on a fresh connection and timed from sending
to the end of its reply line; the daemon replies only after the allocations are durable.
Target: <= 0.5 s. sku.get must then show backordered 0 and N allocated.

Separately: the order actor then turns the N allocations into N picking shipments. We
time, from the same send, until ``shipments.list`` has the N-th picking shipment and
the journal lag is 0 (every shipment durable).

    python bench/fill.py [--lines 100000] [--quick]
"""

from __future__ import annotations

import argparse
import json
import socket
import time

from common import encode, exit_on_sigterm, ok, result_name, run_load, running, save, wait_journal_idle, wait_until


def timed_receive(path, req: dict) -> tuple[float, dict, int]:
    """Send one request; seconds until its whole reply line is read, the reply, its size."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(600)
        s.connect(str(path))
        data = encode({"id": 1, **req})
        buf = bytearray()
        t0 = time.perf_counter()
        s.sendall(data)
        while not buf.endswith(b"\n"):
            chunk = s.recv(1 << 22)
            if not chunk:
                raise RuntimeError("daemon closed the connection")
            buf += chunk
        elapsed = time.perf_counter() - t0
    return elapsed, json.loads(buf), len(buf)


def shipments_exist(path, n: int) -> bool:
    res = ok(path, {"op": "shipments.list", "status": "picking", "offset": n - 1, "limit": 1})
    return len(res["shipments"]) == 1


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=100_000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--quick", action="store_true", help="10x fewer lines, for a smoke test")
    args = ap.parse_args()
    exit_on_sigterm()
    n = args.lines // 10 if args.quick else args.lines
    with running() as d:
        ok(d.sock, {"op": "sku.configure", "sku": "HOT", "reorder_point": 0, "order_up_to": 2 * n})
        streams: list[list[bytes]] = [[] for _ in range(args.clients)]
        for i in range(n):
            streams[i % args.clients].append(
                encode(
                    {
                        "op": "order.submit",
                        "id": i,
                        "channel": "bench",
                        "external_id": f"h{i}",
                        "lines": [{"sku": "HOT", "qty": 1, "unit_price": "5.00"}],
                    }
                )
            )
        submit = run_load(d.sock, streams, window=512)
        if submit["errors"]:
            raise RuntimeError(f"order.submit failed: {submit['error_samples']}")
        wait_journal_idle(d.sock)
        before = ok(d.sock, {"op": "sku.get", "sku": "HOT", "lines": 1})
        if before["backordered"] != n or before["waiting_lines"] != n:
            raise RuntimeError(
                f"expected {n} waiting lines, got {before['waiting_lines']} ({before['backordered']} units backordered)"
            )
        po = [r["request_id"] for r in before["inbound_requests"]]
        if len(po) != 1:
            raise RuntimeError(f"expected one open purchase order for HOT, got {po}")
        seq_before = wait_journal_idle(d.sock)["journal"]["last_seq"]

        t_send = time.perf_counter()
        receive_s, reply, reply_bytes = timed_receive(
            d.sock, {"op": "stock.receive", "sku": "HOT", "qty": n, "reference": po[0]}
        )
        if not reply.get("ok"):
            raise RuntimeError(f"stock.receive failed: {reply.get('error')}")
        wait_until(
            lambda: shipments_exist(d.sock, n), timeout=600, interval=0.005, message=f"{n} shipments were never created"
        )
        h = wait_journal_idle(d.sock)
        shipments_s = time.perf_counter() - t_send

        after = ok(d.sock, {"op": "sku.get", "sku": "HOT", "lines": 1})
        res = {
            "waiting_lines": n,
            "seconds": round(receive_s, 3),
            "allocations_in_reply": len(reply["result"]["allocations"]),
            "reply_bytes": reply_bytes,
            "shipments_durable_s": round(shipments_s, 3),
            "shipments_after_reply_s": round(shipments_s - receive_s, 3),
            "events_after_receipt": h["journal"]["last_seq"] - seq_before,
            "backordered_after": after["backordered"],
            "allocated_after": after["allocated"],
            "waiting_lines_after": after["waiting_lines"],
            "submit": {k: submit[k] for k in ("requests", "seconds", "req_per_s", "p50_ms", "p99_ms")},
            "quick": args.quick,
            "targets": {"seconds": 0.5},
        }
        if after["backordered"] != 0 or after["allocated"] != n:
            res["error"] = "the receipt did not fill every waiting line"
        save(result_name("fill", args.quick), res)
        if "error" in res:
            raise SystemExit(res["error"])


if __name__ == "__main__":
    main()
