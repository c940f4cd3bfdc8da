"""Sustained order-line throughput: 4 clients pipelining order.submit (1-3 lines over
1,000 SKUs) mixed with stock.receive; and the single-hot-SKU case. Replies are only
sent after the journal commit (synchronous=FULL), so every counted line is durable.

    python bench/throughput.py [--orders N] [--skus K] [--hot]
"""

from __future__ import annotations

import argparse
import json
import random

from common import Daemon, run_load, save


def make_streams(n_orders: int, n_skus: int, clients: int, seed: int = 7) -> tuple[list[list[bytes]], int]:
    rnd = random.Random(seed)
    streams: list[list[bytes]] = [[] for _ in range(clients)]
    lines_total = 0
    for i in range(n_orders):
        c = i % clients
        n = rnd.randint(1, 3)
        lines = [
            {"sku": f"S{rnd.randrange(n_skus):05d}", "qty": rnd.randint(1, 3), "unit_price": "9.90"} for _ in range(n)
        ]
        lines_total += n
        streams[c].append(
            json.dumps(
                {"op": "order.submit", "id": i, "channel": "bench", "external_id": f"e{i}", "lines": lines}
            ).encode()
            + b"\n"
        )
        if i % 10 == 0:  # one receipt for every ten orders
            streams[c].append(
                json.dumps(
                    {"op": "stock.receive", "id": f"r{i}", "sku": f"S{rnd.randrange(n_skus):05d}", "qty": 20}
                ).encode()
                + b"\n"
            )
    return streams, lines_total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=100_000)
    ap.add_argument("--skus", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--window", type=int, default=512)
    ap.add_argument("--name", default=None)
    args = ap.parse_args()
    d = Daemon()
    try:
        d.start()
        # every SKU known and stocked so receipts are valid from the first request
        warm = [
            [
                json.dumps(
                    {"op": "sku.configure", "id": i, "sku": f"S{i:05d}", "order_up_to": 50, "reorder_point": 10}
                ).encode()
                + b"\n"
                for i in range(args.skus)
            ]
        ]
        run_load(d.sock, warm)
        streams, lines = make_streams(args.orders, args.skus, args.clients)
        cpu0 = d.cpu_seconds()
        res = run_load(d.sock, streams, window=args.window)
        res["daemon_cpu_s"] = round(d.cpu_seconds() - cpu0, 2)
        res["order_lines"] = lines
        res["lines_per_s"] = round(lines / res["seconds"])
        res["daemon_cpu_us_per_line"] = round(res["daemon_cpu_s"] / lines * 1e6, 1)
        res["orders"] = args.orders
        res["skus"] = args.skus
        res["clients"] = args.clients
        name = args.name or ("throughput_hot_sku" if args.skus == 1 else "throughput")
        save(name, res)
    finally:
        d.cleanup()


if __name__ == "__main__":
    main()
