"""A long history through a real daemon: memory, snapshot pause, start-up, journal size.

A daemon on the stepped clock (README "Stepped clock") with ``auto_pick`` on runs a site
of 1,000 SKUs (demand skewed: SKU i weighs 1/(i+1)^0.8) day after day until ``--orders``
orders were taken: by default 2,740 orders a day, so 1,000,000 orders are a year. Each
engine day: ``--per-day`` orders arrive (pipelined
``order.submit`` over 4 connections; 80 % one line, 20 % two, 1-3 units a line), 2 % of
them are cancelled the same day, the stock for the demand of ``--lag`` days before arrives
(one ``stock.receive`` per SKU: allocated lines ship at once), and the clock advances one
day. The SKUs keep the default policy (reorder point 0, order-up-to 0) with a minimum order
of 500 units, so backorders raise a purchase order now and then, which the receipts count
against. So about ``lag x per-day`` orders are open at any time (19,000 by default: a week of
demand waits for stock) and every other order is closed: shipped or cancelled.

Reported: ``rss_mib`` (VmRSS of the daemon at the end; target <= 400 MiB at 1,000,000
orders), ``rss_max_mib`` (largest sample, one a simulated week), ``hot_orders`` /
``archived_orders`` (``stats``, where the build keeps them), ``snapshot_pause_max_ms``
(the daemon's own measure of the longest loop pause a periodic snapshot caused, where the
build reports it; target <= 20 ms), ``snapshot_pause_cpu_max_ms`` (the loop thread's CPU
time in it, which load barely moves), ``snapshot_pauses`` (each periodic snapshot's pause,
wall and CPU, with the RSS and load average at the end of its day; ``--snapshot-every``
sets ``[daemon] snapshot_every`` to get more of them), ``snapshot_dump_ms`` (encoding the model as it is at
the end, measured in this process on the rebuilt model: the pause a snapshot taken on the
loop costs), ``start_s`` (ready after a clean stop, from the snapshot) and
``start_after_kill9_s`` (after ``kill -9``: the newest snapshot plus the journal after it),
``journal_mib`` (database + WAL) and the load rate.

    python bench/history.py [--orders 1000000] [--per-day 2740] [--lag 7] [--snapshot-every N] [--quick]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sqlite3
import sys
import time
from pathlib import Path

from common import encode, exit_on_sigterm, health, ok, result_name, run_load, running, save, wait_journal_idle

DAY = 86400
# after the [daemon] table that bench/common.py opens
CONFIG = """clock = "stepped"
clock_start = "2026-01-05T00:00:00Z"

[fulfillment]
auto_pick = true

# backorders raise purchase orders (archived like orders once closed, [retention]); a
# minimum order of 500 units keeps that to about one per SKU per 500 units of demand
[default_policy]
moq = 500
"""


def day_streams(day: int, first: int, per_day: int, skus: int, clients: int, demand: dict) -> list[list[bytes]]:
    r = random.Random(day)
    weights = [1 / (i + 1) ** 0.8 for i in range(skus)]
    streams: list[list[bytes]] = [[] for _ in range(clients)]
    picks = r.choices(range(skus), weights=weights, k=per_day * 2)
    for n in range(per_day):
        lines = []
        for k in range(2 if r.random() < 0.2 else 1):
            sku = f"H{picks[2 * n + k]:04d}"
            qty = r.randint(1, 3)
            demand[sku] = demand.get(sku, 0) + qty
            lines.append({"sku": sku, "qty": qty, "unit_price": "9.90"})
        req = {"op": "order.submit", "id": n, "channel": "web", "external_id": f"H-{first + n}", "lines": lines}
        streams[n % clients].append(encode(req))
    return streams


def drive(
    d,
    orders: int,
    per_day: int,
    lag: int,
    skus: int,
    clients: int,
    pauses: list[dict] | None = None,
    first_day: int = 0,
    orders_before: int | None = None,
) -> tuple[int, float]:
    """Run the history (module docstring) through daemon ``d``: returns the orders taken
    and the largest RSS sampled (MiB); each periodic snapshot's loop pause (wall and CPU,
    seen at the end of a day) is appended to ``pauses``. ``first_day``: the days already
    driven through that journal (new days, new external ids); ``orders_before``: the orders
    already in it (default: ``first_day`` full days). Also used by startup.py and
    crash_restart.py to build their journals."""
    days = -(-orders // per_day)
    demand_by_day: list[dict] = []
    rss_max = 0.0
    t0 = time.perf_counter()
    taken = 0
    before = first_day * per_day if orders_before is None else orders_before  # orders already taken
    for day in range(days):
        n = min(per_day, orders - taken)
        demand: dict = {}
        streams = day_streams(first_day + day, before + taken, n, skus, clients, demand)
        res = run_load(d.sock, streams, window=256)
        if res["errors"]:
            raise RuntimeError(f"order.submit failed: {res['error_samples']}")
        r = random.Random(10_000 + first_day + day)
        cancels = [
            encode({"op": "order.cancel", "id": i, "order_id": f"O{before + taken + oid + 1:07d}", "reason": "bench"})
            for i, oid in enumerate(r.sample(range(n), n // 50))
        ]
        run_load(d.sock, [cancels], window=256)  # an order already shipped refuses: fine
        taken += n
        demand_by_day.append(demand)
        if day >= lag:
            due = demand_by_day[day - lag]
            receipts = [
                encode({"op": "stock.receive", "id": i, "sku": sku, "qty": qty})
                for i, (sku, qty) in enumerate(sorted(due.items()))
            ]
            res = run_load(d.sock, [receipts], window=256)
            if res["errors"]:
                raise RuntimeError(f"stock.receive failed: {res['error_samples']}")
            demand_by_day[day - lag] = {}
        ok(d.sock, {"op": "clock.advance", "seconds": DAY}, timeout=600)
        if pauses is not None:
            j = health(d.sock)["journal"]
            if j.get("snapshots", 0) > len(pauses):
                pauses.append(
                    {
                        "day": day + 1,
                        "seq": j["snapshot_seq"],
                        "rss_mib": round(d.rss_mib(), 1),
                        "wall_ms": j["snapshot_pause_ms"],
                        "cpu_ms": j.get("snapshot_pause_cpu_ms"),
                        "load": round(os.getloadavg()[0], 2),
                    }
                )
        if day % 7 == 6 or day == days - 1:
            rss_max = max(rss_max, d.rss_mib())
            h = health(d.sock)
            print(
                f"day {day + 1}/{days}: {taken} orders, rss {d.rss_mib():.0f} MiB, "
                f"events {h['journal']['last_seq']}, {time.perf_counter() - t0:.0f} s",
                flush=True,
            )
    return taken, rss_max


def journal_mib(db: Path) -> float:
    return round(sum(p.stat().st_size for p in db.parent.glob(db.name + "*")) / 2**20, 1)


def dump_ms(db: Path, config: Path) -> float | None:
    """Encode the model rebuilt from the journal (3 times, best): a snapshot's cost on the loop."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from backorder.actors import snapshot
    from backorder.config.settings import load_settings
    from backorder.daemon.backup import _ReadOnlyJournal
    from backorder.daemon.recovery import rebuild

    settings = load_settings(config)
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        world, _, _ = rebuild(_ReadOnlyJournal(conn, db), settings)
    best = None
    for _ in range(3):
        t0 = time.perf_counter()
        snapshot.dump(world)
        took = (time.perf_counter() - t0) * 1000
        best = took if best is None else min(best, took)
    return round(best, 1) if best is not None else None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=1_000_000)
    ap.add_argument("--per-day", type=int, default=2740)
    ap.add_argument("--lag", type=int, default=7, help="days between an order and the stock for it")
    ap.add_argument("--skus", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--snapshot-every", type=int, help="[daemon] snapshot_every (default: the daemon's)")
    ap.add_argument("--no-dump", action="store_true", help="skip the offline snapshot encoding")
    ap.add_argument("--quick", action="store_true", help="20,000 orders, 1,000 a day")
    ap.add_argument("--label", default="", help="suffix of the result file (e.g. main)")
    args = ap.parse_args()
    exit_on_sigterm()
    if args.quick:
        args.orders, args.per_day = 20_000, 1_000
    days = -(-args.orders // args.per_day)
    config = CONFIG if args.snapshot_every is None else f"snapshot_every = {args.snapshot_every}\n{CONFIG}"
    pauses: list[dict] = []
    with running(config) as d:
        t0 = time.perf_counter()
        taken, rss_max = drive(d, args.orders, args.per_day, args.lag, args.skus, args.clients, pauses)
        h = wait_journal_idle(d.sock)
        load_s = time.perf_counter() - t0
        rss = round(d.rss_mib(), 1)
        counts = ok(d.sock, {"op": "stats"})["counts"]
        journal = h["journal"]
        sample = ok(d.sock, {"op": "order.get", "order_id": "O0000001"})
        events = journal["last_seq"]
        d.stop()
        start_s = d.start()
        rss_restarted = round(d.rss_mib(), 1)
        ok(d.sock, {"op": "stock.adjust", "sku": "H0000", "delta": 1, "reason": "bench"})
        wait_journal_idle(d.sock)
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait()
        start_kill9_s = d.start()
        recovered = health(d.sock)["recovered_events"]
        d.stop()
        res = {
            "orders": taken,
            "per_day": args.per_day,
            "days": days,
            "events": events,
            "rss_mib": rss,
            "rss_max_mib": round(max(rss_max, rss), 1),
            "rss_restarted_mib": rss_restarted,
            "hot_orders": counts.get("hot_orders"),
            "archived_orders": counts.get("archived_orders"),
            "archived_requests": counts.get("archived_requests"),
            "open_orders_approx": counts["open_backorder_lines"],
            "orders_shipped": counts["orders_shipped"],
            "snapshots": journal.get("snapshots"),
            "snapshot_every": args.snapshot_every,
            "snapshot_pause_max_ms": journal.get("snapshot_pause_max_ms"),
            "snapshot_pause_cpu_max_ms": journal.get("snapshot_pause_cpu_max_ms"),
            "snapshot_pauses": pauses,
            "snapshot_child_ms": journal.get("snapshot_child_ms"),
            "snapshot_dump_ms": None if args.no_dump else dump_ms(d.db, d.cfg),
            "start_s": round(start_s, 3),
            "start_after_kill9_s": round(start_kill9_s, 3),
            "recovered_after_kill9": recovered,
            "journal_mib": journal_mib(d.db),
            "load_s": round(load_s, 1),
            "orders_per_s": round(taken / load_s),
            "first_order_archived": sample.get("archived", False),
            "quick": args.quick,
            "targets": {"rss_mib": 400, "snapshot_pause_max_ms": 20},
        }
        print(res, flush=True)
        name = result_name("history", args.quick)
        save(name + (f"_{args.label}" if args.label else ""), res)


if __name__ == "__main__":
    main()
