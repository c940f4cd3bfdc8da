"""Reply latency under an offered (open-loop) load of 2,000 orders/s.

1,000 SKUs are configured first (as in throughput.py). Then 4 connections together
send order.submit (1-3 lines) at ``--rate`` orders/s for ``--seconds``, with one
stock.receive after every ten orders (so ~2,200 requests/s in all), on a fixed schedule
that does not wait for replies. Latency is measured from each request's *scheduled*
send time to its reply (which the daemon sends only after the journal commit), matched
by reply id (see common.run_open_loop). Targets: p50 <= 5 ms, p99 <= 25 ms. Also saved:
the daemon's CPU per order line in the run, the garbage collector's pauses (``health.gc``)
and the load average, since the wall-clock figures depend on what else the machine runs.

    python bench/latency.py [--rate 2000] [--seconds 20] [--quick]
"""

from __future__ import annotations

import argparse
import os
import random

from common import (
    encode,
    exit_on_sigterm,
    health,
    result_name,
    run_load,
    run_open_loop,
    running,
    save,
    wait_journal_idle,
)


def make_streams(n_orders: int, n_skus: int, clients: int, seed: int = 11) -> tuple[list[list[tuple[str, bytes]]], int]:
    """Round-robin over the connections; each request's id is its index in its stream."""
    rnd = random.Random(seed)
    flat: list[tuple[str, dict]] = []
    lines_total = 0
    for i in range(n_orders):
        n = rnd.randint(1, 3)
        lines_total += n
        flat.append(
            (
                "order.submit",
                {
                    "op": "order.submit",
                    "channel": "bench",
                    "external_id": f"l{i}",
                    "lines": [
                        {"sku": f"S{rnd.randrange(n_skus):05d}", "qty": rnd.randint(1, 3), "unit_price": "9.90"}
                        for _ in range(n)
                    ],
                },
            )
        )
        if i % 10 == 0:
            flat.append(("stock.receive", {"op": "stock.receive", "sku": f"S{rnd.randrange(n_skus):05d}", "qty": 20}))
    streams: list[list[tuple[str, bytes]]] = [[] for _ in range(clients)]
    for k, (kind, req) in enumerate(flat):
        s = streams[k % clients]
        s.append((kind, encode({"id": len(s), **req})))
    return streams, lines_total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=2000.0, help="order.submit per second offered")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--skus", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--quick", action="store_true", help="~10x less work (2 s), for a smoke test")
    args = ap.parse_args()
    exit_on_sigterm()
    seconds = args.seconds / 10 if args.quick else args.seconds
    n_orders = int(args.rate * seconds)
    streams, lines = make_streams(n_orders, args.skus, args.clients)
    total = sum(len(s) for s in streams)
    req_rate = args.rate * total / n_orders  # receipts ride on top of the order rate
    with running() as d:
        warm = [
            [
                encode({"op": "sku.configure", "id": i, "sku": f"S{i:05d}", "order_up_to": 50, "reorder_point": 10})
                for i in range(args.skus)
            ]
        ]
        run_load(d.sock, warm)
        wait_journal_idle(d.sock)
        cpu0 = d.cpu_seconds()
        res = run_open_loop(d.sock, streams, req_rate)
        # CPU moves little with the machine's load, wall-clock latency a lot: both, and the
        # collector's pauses in the run (the p99's first cause, daemon/collector.py)
        res["daemon_cpu_us_per_line"] = round((d.cpu_seconds() - cpu0) / lines * 1e6, 1)
        res["gc"] = health(d.sock).get("gc")  # None from a daemon before the collector
        res["load_average"] = [round(x, 2) for x in os.getloadavg()]
        res["orders_per_s_target"] = args.rate
        res["orders"] = n_orders
        res["order_lines"] = lines
        res["skus"] = args.skus
        res["clients"] = args.clients
        res["quick"] = args.quick
        res["targets"] = {"p50_ms": 5, "p99_ms": 25}
        save(result_name("latency", args.quick), res)


if __name__ == "__main__":
    main()
