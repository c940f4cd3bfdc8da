"""Start-up time with a journal of 1,000,000 events.

The journal is built through the daemon itself: rounds of pipelined order.submit (1-3
lines over 1,000 SKUs) mixed with stock.receive, as in throughput.py, until
``health.journal.last_seq`` reaches ``--events``. The daemon is stopped with SIGTERM;
then a fresh daemon process is started on that journal and timed from the spawn until
``health`` answers ``serving`` (process start, imports, opening SQLite, replay, recovery,
binding the socket). That start is repeated ``--repeat`` times (stopping in between);
the median is the figure. Target: <= 10 s.

    python bench/restart.py [--events 1000000] [--repeat 3] [--quick]
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import time

from common import encode, exit_on_sigterm, health, result_name, run_load, running, save, wait_journal_idle

from backorder.daemon import snapfiles


def make_round(rnd: int, n_orders: int, n_skus: int, clients: int) -> list[list[bytes]]:
    """As throughput.make_streams, with external ids unique across rounds."""
    r = random.Random(1000 + rnd)
    streams: list[list[bytes]] = [[] for _ in range(clients)]
    for i in range(n_orders):
        s = streams[i % clients]
        s.append(
            encode(
                {
                    "op": "order.submit",
                    "id": i,
                    "channel": "bench",
                    "external_id": f"r{rnd}e{i}",
                    "lines": [
                        {"sku": f"S{r.randrange(n_skus):05d}", "qty": r.randint(1, 3), "unit_price": "9.90"}
                        for _ in range(r.randint(1, 3))
                    ],
                }
            )
        )
        if i % 10 == 0:
            s.append(encode({"op": "stock.receive", "id": f"r{i}", "sku": f"S{r.randrange(n_skus):05d}", "qty": 20}))
    return streams


def build_journal(d, target: int, n_skus: int, clients: int, chunk: int) -> dict:
    """Configure the SKUs, then submit rounds of orders until the journal holds ``target`` events."""
    t0 = time.perf_counter()
    run_load(
        d.sock,
        [
            [
                encode({"op": "sku.configure", "id": i, "sku": f"S{i:05d}", "order_up_to": 50, "reorder_point": 10})
                for i in range(n_skus)
            ]
        ],
    )
    orders = 0
    rnd = 0
    while health(d.sock)["journal"]["last_seq"] < target:
        res = run_load(d.sock, make_round(rnd, chunk, n_skus, clients), window=512)
        if res["errors"]:
            raise RuntimeError(f"load failed: {res['error_samples']}")
        orders += chunk
        rnd += 1
    h = wait_journal_idle(d.sock)
    return {"events": h["journal"]["last_seq"], "orders": orders, "build_s": round(time.perf_counter() - t0, 1)}


def file_mib(path) -> float:
    return round(path.stat().st_size / 2**20, 1) if path.exists() else 0.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skus", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--quick", action="store_true", help="10x fewer events, for a smoke test")
    args = ap.parse_args()
    exit_on_sigterm()
    target = args.events // 10 if args.quick else args.events
    chunk = 5_000 if args.quick else 50_000
    with running() as empty:  # the floor: process start, imports, SQLite open, no events
        empty.stop()
        empty_s = round(empty.start(), 3)
    with running() as d:
        built = build_journal(d, target, args.skus, args.clients, chunk)
        d.stop()
        if d.proc.returncode != 0:
            raise RuntimeError(f"daemon exited {d.proc.returncode} on SIGTERM")
        db_mib, wal_mib = file_mib(d.db), file_mib(d.db.with_name(d.db.name + "-wal"))
        starts = []
        replayed = []
        rss = []
        for _ in range(args.repeat):
            starts.append(round(d.start(timeout=1800), 3))
            h = health(d.sock)
            replayed.append(h["recovered_events"])
            rss.append(round(d.rss_mib(), 1))
            d.stop()
        # Worst case after a kill -9: no snapshot covers the journal, everything is replayed.
        # Snapshots are a cache, so dropping them is safe; the daemon must rebuild the same state.
        snapfiles.remove_from(d.db, 0)
        with sqlite3.connect(d.db) as conn:
            conn.execute("DELETE FROM snapshots")
        full_replay_s = round(d.start(timeout=1800), 3)
        full_replayed = health(d.sock)["recovered_events"]
        d.kill9()
        res = {
            **built,
            "full_replay_s": full_replay_s,
            "full_replay_events": full_replayed,
            "seconds": round(statistics.median(starts), 3),
            "starts_s": starts,
            "replayed_events": replayed,
            "rss_after_start_mib": rss,
            "empty_journal_start_s": empty_s,
            "db_mib": db_mib,
            "wal_mib_after_stop": wal_mib,
            "quick": args.quick,
            "targets": {"seconds": 10},
        }
        save(result_name("restart", args.quick), res)


if __name__ == "__main__":
    main()
