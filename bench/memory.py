"""Resident memory with 100,000 SKUs that have stock and a reorder policy.

Each SKU is configured (pipelined ``sku.configure``: reorder point 10, order-up-to 50,
lead time 5 days); configuring an empty SKU raises its purchase order for 50 units at
once. The purchase orders are listed (``procurement.list``) and each is received in full
(pipelined ``stock.receive`` with its reference), so every SKU ends with 50 on hand, a
policy, and one closed purchase order (its lead time recorded). RSS (VmRSS of the daemon
process) is then read:

- ``rss_loaded_mib``: right after the load, every SKU actor task still active;
- ``rss_passivated_mib``: after the SKU actors passivated (``actor_idle_s`` is set to
  ``--idle`` seconds for this run so that happens quickly);
- ``rss_restarted_mib``: after a restart (state rebuilt by replay, no actor active).

The figure is the largest of the three. Target: <= 300 MiB.

    python bench/memory.py [--skus 100000] [--quick]
"""

from __future__ import annotations

import argparse
import time

from common import (
    WaitTimeout,
    encode,
    exit_on_sigterm,
    health,
    ok,
    result_name,
    run_load,
    running,
    save,
    wait_journal_idle,
    wait_until,
)


def wait_passivated(path, timeout: float) -> dict:
    """``health`` once no SKU actor is active, or as it stands after ``timeout`` (the
    benchmark reports how many are still active)."""
    try:
        return wait_until(lambda: (h := health(path))["actors"]["active_skus"] == 0 and h, timeout, interval=0.2)
    except WaitTimeout:
        return health(path)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--skus", type=int, default=100_000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--idle", type=float, default=3.0, help="daemon.actor_idle_s for this run")
    ap.add_argument("--quick", action="store_true", help="10x fewer SKUs, for a smoke test")
    args = ap.parse_args()
    exit_on_sigterm()
    n = args.skus // 10 if args.quick else args.skus
    with running(f"actor_idle_s = {args.idle}\n") as d:
        rss_empty = round(d.rss_mib(), 1)
        t0 = time.perf_counter()
        streams: list[list[bytes]] = [[] for _ in range(args.clients)]
        for i in range(n):
            streams[i % args.clients].append(
                encode(
                    {
                        "op": "sku.configure",
                        "id": i,
                        "sku": f"M{i:06d}",
                        "reorder_point": 10,
                        "order_up_to": 50,
                        "lead_time_days": 5,
                    }
                )
            )
        configure = run_load(d.sock, streams, window=512)
        if configure["errors"]:
            raise RuntimeError(f"sku.configure failed: {configure['error_samples']}")
        wait_journal_idle(d.sock)

        pos: dict[str, str] = {}
        page = 10_000
        while True:
            res = ok(d.sock, {"op": "procurement.list", "status": "open", "limit": page, "offset": len(pos)})
            pos.update((r["sku"], r["request_id"]) for r in res["requests"])
            if len(res["requests"]) < page:
                break
        if len(pos) != n:
            raise RuntimeError(f"expected one purchase order per SKU ({n}), found {len(pos)}")
        streams = [[] for _ in range(args.clients)]
        for i, (sku, rid) in enumerate(pos.items()):
            streams[i % args.clients].append(
                encode({"op": "stock.receive", "id": i, "sku": sku, "qty": 50, "reference": rid})
            )
        receive = run_load(d.sock, streams, window=512)
        if receive["errors"]:
            raise RuntimeError(f"stock.receive failed: {receive['error_samples']}")
        h = wait_journal_idle(d.sock)
        load_s = time.perf_counter() - t0
        rss_loaded = round(d.rss_mib(), 1)
        active_loaded = h["actors"]["active_skus"]

        h = wait_passivated(d.sock, timeout=args.idle * 4 + 10)
        rss_passivated = round(d.rss_mib(), 1)
        active_passivated = h["actors"]["active_skus"]

        sample = ok(d.sock, {"op": "sku.get", "sku": "M000000", "lines": 0})
        stats = ok(d.sock, {"op": "stats"})["counts"]
        d.stop()
        start_s = d.start()
        rss_restarted = round(d.rss_mib(), 1)
        h = health(d.sock)

        res = {
            "skus": n,
            "rss_mib": max(rss_loaded, rss_passivated, rss_restarted),
            "rss_empty_mib": rss_empty,
            "rss_loaded_mib": rss_loaded,
            "active_skus_loaded": active_loaded,
            "rss_passivated_mib": rss_passivated,
            "active_skus_passivated": active_passivated,
            "rss_restarted_mib": rss_restarted,
            "restart_s": round(start_s, 3),
            "events": h["journal"]["last_seq"],
            "load_s": round(load_s, 1),
            "configure_req_per_s": configure["req_per_s"],
            "receive_req_per_s": receive["req_per_s"],
            "sample_sku": {k: sample[k] for k in ("on_hand", "available", "inbound", "position", "state")},
            "reorders_closed": stats["reorders_closed"],
            "reorders_open": stats["reorders_open"],
            "quick": args.quick,
            "targets": {"rss_mib": 300},
        }
        save(result_name("memory", args.quick), res)


if __name__ == "__main__":
    main()
