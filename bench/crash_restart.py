"""Ready after ``kill -9`` at the worst point of the snapshot cadence.

A start after ``kill -9`` restores the newest stored snapshot and replays every event
after it. The worst moment to be killed is just before a periodic snapshot is stored: the
tail is then ``[daemon] snapshot_every`` events plus those journaled while the child
writing the snapshot ran. This benchmark builds a journal with the history of
bench/history.py (``--orders``; 150,000 orders make ~1.07 M events, the model at its
year-long size: a week of orders open, the rest archived), then, ``--repeat`` times:
starts the daemon with periodic snapshots off, drives more days of the same history
until ``--tail`` events (default: the daemon's ``snapshot_every`` + ``--extra``) follow
the snapshot its clean stop wrote, kills it with SIGKILL, and times the start on the
daemon's default configuration (``ready_s``, as the daemon measures it from its process
start; ``health.startup.phases_s``: the replay's share; ``cpu_s_at_ready``: the CPU time
the daemon used until then, which a loaded machine barely changes), then stops it
cleanly for the next round. Target: ready <= 10 s.

With ``--journal PATH`` the journal is kept there and a later run reuses it (the build
is the slow part).

    python bench/crash_restart.py [--orders 150000] [--tail N] [--repeat 2] [--journal PATH] [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path

from common import exit_on_sigterm, health, result_name, save, wait_journal_idle
from history import CONFIG, drive, journal_mib
from startup import journal_daemon, wait_verified

from backorder.config.settings import Settings

NO_PERIODIC = f"snapshot_every = {10**12}\n"  # the tail is built without a periodic snapshot


def main() -> None:
    every = Settings().daemon.snapshot_every
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=150_000, help="orders in the journal before the first round")
    ap.add_argument("--per-day", type=int, default=2740)
    # a child runs ~6 s on an idle machine (restore, replay, encode) while the daemon
    # journals up to ~6,000 events a second
    ap.add_argument("--extra", type=int, default=40_000, help="events journaled while a snapshot child runs")
    ap.add_argument("--tail", type=int, help=f"events after the snapshot (default: {every:,} + --extra)")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--journal", type=Path, help="keep the journal here (reused when it exists)")
    ap.add_argument("--quick", action="store_true", help="20,000 orders, a tail of 50,000 events, once")
    ap.add_argument("--label", default="")
    args = ap.parse_args()
    exit_on_sigterm()
    if args.quick:
        args.orders, args.tail, args.repeat = 20_000, 50_000, 1
    tail = args.tail if args.tail is not None else every + args.extra
    with journal_daemon(args.journal, "crash", NO_PERIODIC + CONFIG) as d:
        db = d.db
        days_file = db.with_name(db.name + ".days")  # the history days already in the journal
        if not db.exists():
            db.parent.mkdir(parents=True, exist_ok=True)
            d.start()
            drive(d, args.orders, args.per_day, 7, 1000, 4)
            wait_journal_idle(d.sock)
            d.stop()
            days_file.write_text(str(-(-args.orders // args.per_day)))
        rounds = []
        for _ in range(args.repeat):
            d.cfg.write_text('[daemon]\nlog_level = "warning"\n' + NO_PERIODIC + CONFIG)
            d.start(timeout=1800)
            snap_seq = health(d.sock)["journal"]["last_seq"]  # its clean stop stored a snapshot here
            days = int(days_file.read_text())
            while (last := health(d.sock)["journal"]["last_seq"]) - snap_seq < tail:
                # ~7 events an order: the last day takes about what is missing
                n = min(args.per_day, max(100, (tail - (last - snap_seq)) // 7))
                drive(d, n, args.per_day, 7, 1000, 4, first_day=days)
                days += 1
            days_file.write_text(str(days))
            wait_journal_idle(d.sock)
            events = health(d.sock)["journal"]["last_seq"]
            d.kill9()
            d.cfg.write_text('[daemon]\nlog_level = "warning"\n' + CONFIG)  # the default cadence
            load = os.getloadavg()[0]
            spawn_s = d.start(timeout=1800)
            cpu_s = d.cpu_seconds()  # load barely moves it: what ready costs on an idle machine
            replayed = health(d.sock)["recovered_events"]
            killed = wait_verified(d)
            phases = killed.get("phases_s", {})
            rounds.append(
                {
                    "events": events,
                    "replayed": replayed,
                    "ready_s": killed["ready_s"],
                    "spawn_to_serving_s": round(spawn_s, 3),
                    "cpu_s_at_ready": round(cpu_s, 2),
                    "replay_s": phases.get("replay"),
                    "replay_us_per_event": round(phases["replay"] / replayed * 1e6, 1) if replayed else None,
                    "phases_s": phases,
                    "load": round(load, 2),
                }
            )
            print(rounds[-1], flush=True)
            d.stop()
        res = {
            "snapshot_every": every,
            "tail": tail,
            "journal_mib": journal_mib(db),
            "ready_s_median": statistics.median(r["ready_s"] for r in rounds),
            "ready_s_max": max(r["ready_s"] for r in rounds),
            "cpu_s_at_ready_max": max(r["cpu_s_at_ready"] for r in rounds),
            "rounds": rounds,
            "quick": args.quick,
            "targets": {"ready_s_max": 10},
        }
        print(res, flush=True)
        save(result_name("crash_restart", args.quick) + (f"_{args.label}" if args.label else ""), res)


if __name__ == "__main__":
    main()
