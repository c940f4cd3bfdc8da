"""What a periodic snapshot costs the replies, once its child has written it.

``bench/snapshot_pause.py`` measures the loop's pause when the child is spawned; this one
measures what comes after: the snapshot becoming the one a restart uses. A reply leaves
only once the events before it are durable, so anything that holds the journal's writer
(a commit that also copies the snapshot into the database, say) holds every reply.

The history of ``bench/planner.py`` (2,000 SKUs, a year of orders: ~400,000 events, a
model of ~130 MiB encoded) is written straight into a fresh journal; a daemon starts on it
with ``[daemon] snapshot_every = 1000``, so its first commit after start spawns a child
that snapshots the whole model. Meanwhile one client reads (``sku.get``, one at a time)
and another writes (``stock.adjust`` every 20 ms, so the journal keeps committing), until
the child has finished and 5 s more have passed. Figures: the reads' p50 / p99 / max over
the whole run and in the 5 s after the child finished (``after_child``), how long the
child took, and the daemon's RSS before and after.

    python bench/snapshot_stall.py [--skus 2000] [--days 365] [--runs 1]
"""

from __future__ import annotations

import argparse
import threading
import time

from common import Daemon, exit_on_sigterm, hard_cleanup, ok, result_name, save, wait_until
from planner import Prober, generate, read_figures


class Writer(threading.Thread):
    def __init__(self, path) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            ok(self.path, {"op": "stock.adjust", "sku": "P00001", "delta": 1, "reason": "bench"})
            time.sleep(0.02)


def one_run(skus: int, days: int) -> dict:
    d = Daemon("snapshot_every = 1000\n")
    try:
        events = generate(d.db, skus, days, 1)
        d.start()
        rss_before = d.rss_mib()
        prober, writer = Prober(d.sock, "P00000"), Writer(d.sock)
        prober.start()
        writer.start()
        started = time.perf_counter()
        # the child's time is set once it has exited (health: journal.snapshot_child_ms)
        child_ms = wait_until(lambda: ok(d.sock, {"op": "health"})["journal"]["snapshot_child_ms"] or None, 900)
        finished = time.perf_counter()
        time.sleep(5.0)
        prober.stop.set()
        writer.stop.set()
        prober.join()
        writer.join()
        after = [lat for lat, at in zip(prober.latencies, prober.at, strict=True) if at >= finished - 0.5]
        return {
            "events": events,
            "child_ms": child_ms,
            "reads": read_figures(prober.latencies),
            "after_child": read_figures(after),
            "slowest_reads": [
                {"ms": round(lat * 1000, 1), "s_after_child": round(at - finished, 2)}
                for lat, at in sorted(zip(prober.latencies, prober.at, strict=True))[-5:]
            ],
            "seconds": round(time.perf_counter() - started, 1),
            "rss_before_mib": round(rss_before, 1),
            "rss_after_mib": round(d.rss_mib(), 1),
        }
    finally:
        hard_cleanup(d)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--skus", type=int, default=2000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="10x fewer SKUs, for a smoke test")
    args = ap.parse_args()
    exit_on_sigterm()
    skus = args.skus // 10 if args.quick else args.skus
    runs = [one_run(skus, args.days) for _ in range(args.runs)]
    save(
        result_name("snapshot_stall", args.quick),
        {
            "skus": skus,
            "days": args.days,
            "runs": runs,
            "max_read_after_child_ms": max(r["after_child"]["max_ms"] for r in runs),
            "max_read_ms": max(r["reads"]["max_ms"] for r in runs),
        },
    )


if __name__ == "__main__":
    main()
