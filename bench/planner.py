"""The demand planner: one full run over 2,000 SKUs with a year of history, the socket's
reply latency while it runs, and the daemon's resident memory before and after.

History: written straight into a fresh journal with the daemon's own journal code
(``Journal.open`` / ``_commit``, events encoded and checked by ``encode_checked``), not
through the socket: a year of orders for 2,000 SKUs through ``clock.advance`` day by day
would take minutes and measure the order path, not the planner. Per SKU a seeded daily
pattern (smooth with a weekly season, intermittent, or lumpy B2B lines of 10-50), grouped
into multi-line orders per day, and a purchase order every ~30 days with a 3-9 day lead
time (raised, then received against it) so lead times are measured from the journal.
The SKUs are in ``suggest`` mode: a run journals each SKU's ``policy_tuned`` exactly as in
``auto`` but changes no reorder level, so no reorder or allocation follows and the figure
is the planner's own cost (on this synthetic history nothing was ever allocated).

Then a stepped daemon starts on that journal with the planner on; once its worker is
ready, a client sends ``sku.get`` one at a time (a read on the socket) while
``planner.run`` runs, and records every reply's latency. Figures:

- ``first_run_s``: the first run (the worker reads the whole year from the journal);
- ``daily_run_s``: a second run one engine day later (it reads only the new events);
- ``p99_ms`` / ``max_ms``: reply latency of the reads during both runs (``idle_*``: the
  same reads just before, no run going: the machine's own noise), ``daemon_cpu_s``: the
  daemon's CPU time over both runs (what the runs cost its loop);
- ``rss_after_retune_mib`` / ``rss_growth_retune_mib``: the RSS after each of ``--retune``
  further runs that each take in new levels for every SKU (a new service level each time),
  and its highest rise over ``rss_before_mib``;
- ``rss_before_mib`` / ``rss_after_mib`` / ``rss_growth_mib``: the daemon's VmRSS with the
  worker up but before any run, and after both (the worker's own RSS is reported apart);
- ``loop`` / ``idle_loop``: the daemon's trio loop steps over 2 ms during both runs and
  during the idle reads (``bench/loop_steps``: an instrument loaded into the daemon
  only here): how many passed 5 ms of wall time, how many 2 and 5 ms of the loop
  thread's CPU time, the longest, and the five longest by CPU with their task. A step's
  CPU time is what the loop spent without yielding, which a shared machine's load barely
  moves; a read's latency also counts waiting for a core.

Targets: a run < 10 s, replies delayed by at most 5 ms, RSS growth <= 50 MiB.

    python bench/planner.py [--skus 2000] [--days 365] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from common import Daemon, exit_on_sigterm, hard_cleanup, ok, result_name, save, wait_until

from backorder.actors import events as ev
from backorder.config.settings import ReorderPolicy
from backorder.daemon.journal import Journal

DAY = 86400
START = datetime(2025, 1, 1, tzinfo=UTC).timestamp()
LINES_PER_ORDER = 12


def generate(path, skus: int, days: int, seed: int) -> int:
    """Write the history; returns the number of events."""
    journal = Journal(path)
    journal.open()
    journal.cause = "bench"

    def put(e: ev.Event, sku: str | None = None, order_id: str | None = None) -> None:
        journal.append_body(e, ev.encode_checked(e), sku, order_id)

    names = [f"P{i:05d}" for i in range(skus)]
    kinds = {}
    for i, name in enumerate(names):
        rng = random.Random(seed * 1_000_003 + i)
        kinds[name] = (rng.choice(["smooth", "smooth", "intermittent", "lumpy"]), rng.uniform(1, 8), rng)
        policy = ReorderPolicy(
            reorder_point=10, order_up_to=40, lead_time_days=5, source="supplier:acme", mode="suggest"
        )
        put(ev.SkuConfigured(ts=START, sku=name, policy=policy), sku=name)
    orders = requests = 0
    due: list[tuple[float, str, str, int]] = []  # (ts, request_id, sku, qty) receipts to come
    for day in range(days):
        t = START + day * DAY
        lines = []
        for name in names:
            kind, level, rng = kinds[name]
            if kind == "smooth":
                qty = max(0, round(rng.gauss(level * (1.6 if day % 7 == 0 else 1.0), level / 3)))
            elif kind == "intermittent":
                qty = rng.randint(1, 5) if rng.random() < 0.25 else 0
            else:
                qty = rng.randint(10, 50) if rng.random() < 0.08 else 0
            if qty:
                lines.append(ev.LineRecord(sku=name, qty=qty, unit_price=Decimal("1.00")))
            if rng.random() < 1 / 30:
                requests += 1
                rid = f"PO-{requests:06d}"
                lead = rng.randint(3, 9)
                put(
                    ev.RequestRaised(
                        ts=t,
                        request_id=rid,
                        sku=name,
                        kind="po",
                        source="acme",
                        qty=40,
                        expected_date=datetime.fromtimestamp(t + lead * DAY, UTC).strftime("%Y-%m-%d"),
                        position=0,
                    ),
                    sku=name,
                )
                due.append((t + lead * DAY, rid, name, 40))
        for _due, rid, name, qty in [d for d in due if d[0] <= t]:
            put(ev.Received(ts=t, sku=name, qty=qty, reference=rid, request_id=rid), sku=name)
        due = [d for d in due if d[0] > t]
        for start in range(0, len(lines), LINES_PER_ORDER):
            orders += 1
            oid = f"O{orders:07d}"
            record = ev.OrderRecord(
                channel="web", external_id=f"x{orders}", lines=lines[start : start + LINES_PER_ORDER]
            )
            put(ev.OrderReceived(ts=t + 3600, order_id=oid, order=record), order_id=oid)
        if len(journal._pending) > 50_000:
            journal._commit(journal._pending)
            journal._pending = []
    journal._commit(journal._pending)
    journal._pending = []
    journal.index_skus()
    last = journal.last_seq
    journal.close()
    return last


class Prober(threading.Thread):
    """``sku.get`` one at a time on one connection until stopped; keeps each latency, and
    when the first read that shows the SKU tuned was sent (``tuned_at``): the probed SKU is
    the first of a run's results, so from then on the daemon takes the results in."""

    def __init__(self, path, sku: str) -> None:
        super().__init__(daemon=True)
        self.path, self.sku = path, sku
        self.latencies: list[float] = []
        self.at: list[float] = []
        self.tuned_at: float | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(str(self.path))
            f = s.makefile("rb")
            req = json.dumps({"op": "sku.get", "id": 1, "sku": self.sku, "lines": 0}).encode() + b"\n"
            while not self.stop.is_set():
                t0 = time.perf_counter()
                s.sendall(req)
                reply = f.readline()
                self.latencies.append(time.perf_counter() - t0)
                if self.tuned_at is None and b'"last_tuned":{' in reply:
                    self.tuned_at = t0
                self.at.append(t0)
                time.sleep(0.002)


def read_figures(latencies: list[float]) -> dict:
    return {
        "reads": len(latencies),
        "over_5ms": sum(1 for x in latencies if x > 0.005),
        "p50_ms": round(pct(latencies, 0.5) * 1000, 2),
        "p99_ms": round(pct(latencies, 0.99) * 1000, 2),
        "max_ms": round(max(latencies, default=0) * 1000, 2),
    }


def loop_steps(path, start: float, end: float, origin: float) -> dict:
    """The daemon's long loop steps (``bench/loop_steps``) that ended between ``start`` and
    ``end`` (unix time); ``at_s``: seconds after ``origin``."""
    steps = []
    if path.exists():
        for line in path.read_text().splitlines():
            at, wall, cpu, task = line.split(" ", 3)
            if start <= float(at) <= end:
                steps.append((float(cpu), float(wall), task, float(at)))
    steps.sort()
    return {
        "steps_over_5ms_wall": sum(1 for s in steps if s[1] > 5),
        "steps_over_2ms_cpu": sum(1 for s in steps if s[0] > 2),
        "steps_over_5ms_cpu": sum(1 for s in steps if s[0] > 5),
        "max_cpu_ms": max((s[0] for s in steps), default=0.0),
        "max_wall_ms": max((s[1] for s in steps), default=0.0),
        "longest": [
            {"cpu_ms": cpu, "wall_ms": wall, "task": task, "at_s": round(at - origin, 3)}
            for cpu, wall, task, at in steps[-5:]
        ],
    }


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else 0.0


def retune_rss(d: Daemon, skus: int, runs: int) -> list[float]:
    """``runs`` more planner runs, each after a new service level for every SKU (0.95 and
    0.97 in turn) so that each takes in new levels for all of them; the daemon's RSS after
    each."""
    out = []
    for i in range(runs):
        for k in range(skus):
            ok(d.sock, {"op": "sku.configure", "sku": f"P{k:05d}", "service_level": 0.95 if i % 2 == 0 else 0.97})
        ok(d.sock, {"op": "planner.run"}, timeout=900)
        time.sleep(1.0)  # as before the baseline: the allocator's churn settles
        out.append(round(d.rss_mib(), 1))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--skus", type=int, default=2000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="10x fewer SKUs, for a smoke test")
    ap.add_argument("--clock", choices=["stepped", "simulated"], default="stepped")
    ap.add_argument("--retune", type=int, default=4, help="runs after the measured two, each re-tuning every SKU")
    args = ap.parse_args()
    exit_on_sigterm()
    skus = args.skus // 10 if args.quick else args.skus
    # keys of the [daemon] table Daemon writes first, then the planner's
    d = Daemon(
        f'clock = "{args.clock}"\nclock_start = "2026-01-01T00:00:00Z"\nclock_speed = 0.000001\n'
        "[planner]\nenabled = true\nrun_timeout_s = 600\n"
    )
    steps_file = d.dir / "loop_steps.log"
    d.env["BENCH_LOOP_STEPS"] = str(steps_file)
    d.env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(Path(__file__).resolve().parent / "loop_steps"), os.environ.get("PYTHONPATH")) if p
    )
    try:
        t0 = time.perf_counter()
        events = generate(d.db, skus, args.days, args.seed)
        generate_s = time.perf_counter() - t0
        d.start()
        h = wait_until(lambda: (x := ok(d.sock, {"op": "health"}))["planner"]["state"] == "ready" and x, 120)
        worker_pid = h["planner"]["pid"]
        time.sleep(1.0)  # let the start-up's allocator churn settle before the baseline
        rss_before = d.rss_mib()
        prober = Prober(d.sock, "P00000")
        prober.start()
        idle_start = time.time()
        time.sleep(2.0)  # the baseline: the same reads with no run going (a shared machine is noisy)
        idle = len(prober.latencies)
        baseline = prober.latencies[:idle]
        gc0 = ok(d.sock, {"op": "health"})["gc"]
        cpu0 = d.cpu_seconds()
        runs_start = time.time()
        t0 = time.perf_counter()
        first = ok(d.sock, {"op": "planner.run"}, timeout=900)
        first_s = time.perf_counter() - t0
        marks = {"first_start": t0, "first_end": t0 + first_s}
        if args.clock == "stepped":
            ok(d.sock, {"op": "clock.advance", "seconds": 3600}, timeout=900)  # not a whole day: no scheduled run
        t0 = time.perf_counter()
        daily = ok(d.sock, {"op": "planner.run"}, timeout=900)
        daily_s = time.perf_counter() - t0
        marks.update(daily_start=t0, daily_end=t0 + daily_s)
        daemon_cpu = d.cpu_seconds() - cpu0
        runs_end = time.time()
        gc1 = ok(d.sock, {"op": "health"})["gc"]
        prober.stop.set()
        prober.join()
        during = prober.latencies[idle:]
        origin = marks["first_start"]
        # the first run's results taken in: from the first read that saw the probed SKU tuned
        applying = prober.tuned_at if prober.tuned_at is not None else marks["first_end"]
        to_unix = runs_start - origin  # perf_counter -> unix time
        taking_in = [
            lat for lat, at in zip(prober.latencies, prober.at, strict=True) if applying <= at <= marks["first_end"]
        ]
        slowest = [
            {"ms": round(lat * 1000, 1), "at_s": round(at - origin, 3)}
            for lat, at in sorted(zip(prober.latencies, prober.at, strict=True))[-5:]
        ]
        rss_after = d.rss_mib()
        worker_rss = rss_mib(worker_pid)
        sample = ok(d.sock, {"op": "planner.explain", "sku": "P00001"})
        retuned = retune_rss(d, skus, args.retune)
        res = {
            "skus": skus,
            "days": args.days,
            "events": events,
            "generate_s": round(generate_s, 1),
            "first_run_s": round(first_s, 3),
            "first_run": first,
            "daily_run_s": round(daily_s, 3),
            "daily_run": daily,
            "daemon_cpu_s": round(daemon_cpu, 2),  # the daemon's CPU time over both runs (all threads)
            # the daemon's garbage collections during both runs (daemon/collector.py): how
            # many, their total pause, and the longest since it started (if it was one of them)
            "gc_during_runs": {
                "collections": gc1["collections"] - gc0["collections"],
                "pause_total_ms": round(gc1["pause_total_ms"] - gc0["pause_total_ms"], 1),
                "pause_max_ms": gc1["pause_max_ms"] if gc1["pause_max_ms"] > gc0["pause_max_ms"] else None,
                "pause_cpu_max_ms": gc1["pause_cpu_max_ms"]
                if gc1["pause_cpu_max_ms"] > gc0["pause_cpu_max_ms"]
                else None,
            },
            "reads_during_runs": len(during),
            "reads_over_5ms": sum(1 for x in during if x > 0.005),
            "idle_reads_over_5ms": sum(1 for x in baseline if x > 0.005),
            "p50_ms": round(pct(during, 0.5) * 1000, 2),
            "p99_ms": round(pct(during, 0.99) * 1000, 2),
            "max_ms": round(max(during, default=0) * 1000, 2),
            "idle_reads": len(baseline),
            "idle_p99_ms": round(pct(baseline, 0.99) * 1000, 2),
            "idle_max_ms": round(max(baseline, default=0) * 1000, 2),
            "slowest_reads": slowest,  # at_s: seconds after the first run began
            # the first run from its first result taken in to its end: the daemon's share
            "first_run_taking_in_s": round(marks["first_end"] - applying, 3),
            "reads_taking_in": read_figures(taking_in),
            "loop_taking_in": loop_steps(steps_file, applying + to_unix, marks["first_end"] + to_unix, runs_start),
            "runs_at_s": {k: round(v - origin, 3) for k, v in marks.items()},
            "load_average": list(os.getloadavg()),  # a shared machine: other processes' demand
            "loop": loop_steps(steps_file, runs_start, runs_end, runs_start),
            "idle_loop": loop_steps(steps_file, idle_start, runs_start, runs_start),
            "rss_before_mib": round(rss_before, 1),
            "rss_after_mib": round(rss_after, 1),
            "rss_growth_mib": round(rss_after - rss_before, 1),
            "worker_rss_mib": round(worker_rss, 1),
            # after each further run that re-tunes every SKU (the daily run above re-tunes
            # none): the RSS steps once, at the first run that takes in new levels, then stays
            "rss_after_retune_mib": retuned,
            "rss_growth_retune_mib": round(max(retuned, default=rss_after) - rss_before, 1),
            "sample_explain": sample,
        }
        save(result_name("planner", args.quick), res)
    finally:
        hard_cleanup(d)


if __name__ == "__main__":
    main()
