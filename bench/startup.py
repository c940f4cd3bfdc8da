"""Start-up of a large journal, phase by phase: how long until ``health`` serves, and
what each phase of the start costs per GiB / per million events.

The journal is built through the daemon by the history of bench/history.py (``--orders``;
200,000 orders make ~1.7 M events). With ``--journal PATH`` it is kept there and a later
run reuses it (building is the slow part: minutes; measuring takes seconds); ``--events N``
drives further days of the same history until it holds at least N events.

Measured, in this order:

- ``first_start``: the first start on the journal (after the build's clean stop).
- ``clean_stop``: the daemon is stopped with SIGTERM (it checkpoints its WAL into the
  database file and writes a snapshot of everything), then started twice: ``start_s`` /
  ``clean_stop_again`` (``ready_s``: from the process start until it serves, as the daemon
  measures it), with the share of the database file in the page cache before each
  (``fincore``), the daemon's own phase timings (``health.startup.phases_s``) and the
  deferred integrity check's duration; then ``clean_stop_cold``: the same with the
  file's pages dropped from the page cache first (as after a reboot).
- ``kill9``: one write, ``kill -9``, start: the snapshot plus the tail, with the WAL left
  by the killed process.
- ``writes_during_check``: writes sent while the deferred check runs are accepted, and
  the database file stays as it was (they go to the WAL) until the verdict.
- ``offline``: the same phases run in this process on the stopped journal (page cache
  warm): SQLite's ``quick_check``, the old ``COUNT/MIN/MAX`` continuity scan, the new
  start-up gate, the snapshot read and restore; each divided by the database's GiB.

``--integrity-check before_ready`` measures the blocking check (the behaviour before the
check was deferred), on the same journal.

    python bench/startup.py [--orders 200000] [--events N] [--journal PATH] [--integrity-check before_ready] [--quick]
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from common import Daemon, exit_on_sigterm, health, ok, result_name, save, wait_journal_idle
from history import CONFIG, drive, journal_mib

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
REPLAY_SAMPLE = 200_000  # events replayed offline to measure the replay's cost


@contextmanager
def journal_daemon(journal: Path | None, name: str, config: str) -> Iterator[Daemon]:
    """A Daemon (not started) on the journal at ``journal``, kept there for a later run, or
    on one in a temporary folder removed at the end."""
    own = journal is None
    db = (Path(tempfile.mkdtemp(prefix=f"bo{name}")) / f"{name}.db") if own else journal.resolve()
    d = Daemon(config, db=db)
    try:
        yield d
    finally:
        if d.alive():
            d.stop()
        if own:
            shutil.rmtree(db.parent, ignore_errors=True)
        shutil.rmtree(d.dir, ignore_errors=True)


def extend(d: Daemon, events: int, orders: int, per_day: int) -> None:
    """Drive further whole days of the history (new days, new external ids, receipts
    following the demand as in the build) until the journal holds ``events``. The days
    and orders in the journal are kept beside it (``.days``: "DAYS ORDERS"; without it,
    those of the build's ``orders``)."""
    days_file = d.db.with_name(d.db.name + ".days")
    if days_file.exists():
        days, taken = (int(x) for x in days_file.read_text().split())
    else:
        days, taken = -(-orders // per_day), orders
    d.start(timeout=1800)
    while (last := health(d.sock)["journal"]["last_seq"]) < events:
        n = -(-max(per_day, (events - last) // 6) // per_day) * per_day  # ~6-7 events an order
        drive(d, n, per_day, 7, 1000, 4, first_day=days, orders_before=taken)
        days, taken = days + n // per_day, taken + n
        days_file.write_text(f"{days} {taken}")
    wait_journal_idle(d.sock)
    d.stop()


def cached_share(db: Path) -> float | None:
    """The share of the database file in the page cache (util-linux ``fincore``), or None."""
    if shutil.which("fincore") is None:
        return None
    out = subprocess.run(["fincore", "-b", "-n", "-o", "RES,SIZE", str(db)], capture_output=True, text=True)
    try:
        res, size = (int(x) for x in out.stdout.split())
    except ValueError:
        return None
    return round(res / size, 3) if size else None


def evict(db: Path) -> None:
    """Drop the database file's pages from the page cache (this file only: a cold start
    as after a reboot, without touching the rest of the machine's cache)."""
    fd = os.open(db, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def wait_verified(d: Daemon, timeout: float = 1800.0) -> dict:
    """Wait until the deferred integrity check has a verdict; returns ``health.startup``."""
    deadline = time.monotonic() + timeout
    while True:
        startup = health(d.sock)["startup"]
        if startup["integrity"]["state"] != "checking" or time.monotonic() > deadline:
            return startup
        time.sleep(0.2)


def timed_start(d: Daemon) -> dict:
    """Start; ``spawn_to_serving_s`` as this process sees it, ``ready_s`` as the daemon does."""
    cached = cached_share(d.db)
    start_s = d.start(timeout=1800)
    startup = wait_verified(d)
    return {"spawn_to_serving_s": round(start_s, 3), "db_cached_share": cached, **startup}


def file_state(db: Path) -> tuple:
    """What a checkpoint into the database file changes: its size, mtime and first 64 MiB."""
    with open(db, "rb") as f:
        head = hashlib.sha256(f.read(64 << 20)).hexdigest()
    st = db.stat()
    return head, st.st_size, st.st_mtime_ns


def writes_during_check(d: Daemon, writes: int = 300) -> dict:
    """Start, send ``writes`` stock adjustments while the deferred check runs: they are
    accepted, and the database file does not change (the WAL grows) until the verdict;
    then it is checkpointed."""
    before = file_state(d.db)
    d.start(timeout=1800)
    state = health(d.sock)["startup"]["integrity"]["state"]
    for i in range(writes):
        ok(d.sock, {"op": "stock.adjust", "sku": f"H{i % 1000:04d}", "delta": 1, "reason": "bench"})
    wait_journal_idle(d.sock)
    out = {
        "state_at_ready": state,
        "state_after_writes": health(d.sock)["startup"]["integrity"]["state"],
        "file_unchanged_before_verdict": file_state(d.db) == before,
        "wal_bytes_before_verdict": d.db.with_name(d.db.name + "-wal").stat().st_size,
    }
    out["verdict"] = wait_verified(d)["integrity"]
    ok(d.sock, {"op": "stock.adjust", "sku": "H0000", "delta": 1, "reason": "bench"})  # a commit: checkpoints
    wait_journal_idle(d.sock)
    out["file_checkpointed_after_verdict"] = file_state(d.db) != before
    d.stop()
    return out


def offline(db: Path, config: Path) -> dict:
    """The start-up phases, one by one, in this process (the daemon is stopped)."""
    from backorder.actors import snapshot
    from backorder.config.settings import load_settings
    from backorder.daemon import integrity, snapfiles
    from backorder.daemon.journal import quarantined

    settings = load_settings(config)
    out: dict = {}

    def newest_snapshot(conn, db):
        """What a start reads: the snapshot file next to the journal, else a row (older layout)."""
        found = snapfiles.newest(db, conn, 2**62, quarantined(conn))
        if found is not None:
            return found[0], found[1].read_bytes()
        return conn.execute("SELECT seq, body FROM snapshots ORDER BY seq DESC LIMIT 1").fetchone()

    def timed(name, fn):
        t0 = time.perf_counter()
        value = fn()
        out[name + "_s"] = round(time.perf_counter() - t0, 3)
        return value

    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        timed("quick_check", lambda: conn.execute("PRAGMA quick_check").fetchall())
        timed("count_min_max", lambda: conn.execute("SELECT COUNT(*), MIN(seq), MAX(seq) FROM events").fetchone())
        snap = timed("snapshot_read", lambda: newest_snapshot(conn, db))
    timed("gate", lambda: integrity.gate(db))
    timed("full_check", lambda: integrity.check(db))
    if snap is not None:
        out["snapshot_mib"] = round(len(snap[1]) / 2**20, 1)
        timed("snapshot_restore", lambda: snapshot.restore(settings, snap[1]))
    out["replay_s_per_million_events"] = replay_cost(db, settings)
    gib = db.stat().st_size / 2**30
    out["db_gib"] = round(gib, 3)
    for key in ("quick_check_s", "count_min_max_s", "full_check_s"):
        out[key.replace("_s", "_s_per_gib")] = round(out[key] / gib, 2)
    return out


def replay_cost(db: Path, settings, events: int = REPLAY_SAMPLE) -> float:
    """Seconds per million events to replay the journal's first ``events`` (what a start
    after ``kill -9`` pays for the events after the newest snapshot)."""
    from backorder.actors.model import World
    from backorder.daemon.backup import _ReadOnlyJournal
    from backorder.daemon.journal import Journal
    from backorder.daemon.recovery import replay

    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        journal = _ReadOnlyJournal(conn, db)
        chunks = Journal.read(journal, 0, 20_000)
        journal.read = lambda after=0: itertools.islice(chunks, events // 20_000)
        t0 = time.perf_counter()
        n = replay(journal, World(settings))  # type: ignore[arg-type]
        return round((time.perf_counter() - t0) / n * 1e6, 2)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=200_000)
    ap.add_argument("--per-day", type=int, default=2740)
    ap.add_argument("--journal", type=Path, help="keep the journal here (reused when it exists)")
    ap.add_argument("--build-only", action="store_true")
    ap.add_argument(
        "--events", type=int, help="drive more days of the history until the journal holds at least this many events"
    )
    ap.add_argument(
        "--integrity-check",
        choices=["true", "before_ready"],
        default="true",
        help="[daemon] integrity_check: before_ready is the blocking check (the behaviour before it was deferred)",
    )
    ap.add_argument("--quick", action="store_true", help="20,000 orders")
    ap.add_argument("--label", default="", help="suffix of the result file (e.g. 500k)")
    args = ap.parse_args()
    exit_on_sigterm()
    if args.quick:
        args.orders = 20_000
    check = "true" if args.integrity_check == "true" else '"before_ready"'
    with journal_daemon(args.journal, "startup", f"integrity_check = {check}\n" + CONFIG) as d:
        db = d.db
        built_s = None
        if not db.exists():
            db.parent.mkdir(parents=True, exist_ok=True)
            t0 = time.perf_counter()
            d.start()
            drive(d, args.orders, args.per_day, 7, 1000, 4)
            wait_journal_idle(d.sock)
            built_s = round(time.perf_counter() - t0, 1)
            d.stop()
        if args.events:
            extend(d, args.events, args.orders, args.per_day)
        if args.build_only:
            return
        first = timed_start(d)  # the first start after the build's (or the last run's) clean stop
        events = health(d.sock)["journal"]["last_seq"]
        wal_mib = journal_mib(db) - round(db.stat().st_size / 2**20, 1)
        t0 = time.perf_counter()
        d.stop()  # the final snapshot and the checkpoint of the WAL into the file
        stop_s = round(time.perf_counter() - t0, 3)
        clean = timed_start(d)
        d.stop()
        clean_again = timed_start(d)
        d.stop()
        evict(db)
        cold = timed_start(d)
        ok(d.sock, {"op": "stock.adjust", "sku": "H0000", "delta": 1, "reason": "bench"})
        wait_journal_idle(d.sock)
        d.kill9()
        killed = timed_start(d)
        d.stop()
        during = writes_during_check(d)
        res = {
            "events": events,
            "journal_mib": journal_mib(db),
            "built_s": built_s,
            "start_s": clean["ready_s"],
            "start_after_kill9_s": killed["ready_s"],
            "start_cold_s": cold["ready_s"],
            "stop_s": stop_s,
            "wal_mib_before_stop": round(wal_mib, 1),
            "integrity_check": args.integrity_check,
            "first_start": first,
            "clean_stop": clean,
            "clean_stop_again": clean_again,
            "clean_stop_cold": cold,
            "kill9": killed,
            "writes_during_check": during,
            "offline": offline(db, d.cfg),
            "quick": args.quick,
            "targets": {"start_s": 10},
        }
        print(res, flush=True)
        mode = "" if args.integrity_check == "true" else "_" + args.integrity_check
        save(result_name("startup", args.quick) + mode + (f"_{args.label}" if args.label else ""), res)


if __name__ == "__main__":
    main()
