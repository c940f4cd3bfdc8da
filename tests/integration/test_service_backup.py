"""Data safety: online backup while the daemon writes, restore (refused while a daemon
runs), start on the restored file and compare; export of orders and of the audit trail;
the start-up integrity check."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import subprocess
import sys
import threading
from contextlib import closing

import pytest
from bo_support import SIM_CONFIG, fingerprint, line, stock, submit

from backorder.daemon import snapfiles


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "backorder", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _state(c) -> dict:
    orders = c.call("orders.list", limit=1000)["orders"]
    return {"fp": fingerprint(c, "A", "B"), "orders": [c.call("order.get", order_id=o["order_id"]) for o in orders]}


def test_backup_while_writing_then_restore_start_and_compare(sim, tmp_path):
    d = sim()
    with d.client() as c:
        stock(c, "A", 50)
        c.call("sku.configure", sku="B")
    stop = threading.Event()
    written = []

    def write() -> None:
        with d.client() as w:
            n = 0
            while not stop.is_set():
                batch = [
                    {
                        "op": "order.submit",
                        "channel": "web",
                        "external_id": f"W{n + i}",
                        "lines": [line("A", 1), line("B", 2)],
                    }
                    for i in range(20)
                ]
                assert all(r["ok"] for r in w.pipeline(batch))
                n += 20
                written.append(n)

    t = threading.Thread(target=write)
    t.start()
    try:
        while not written:  # the writer is busy
            threading.Event().wait(0.01)
        live = _cli("backup", tmp_path / "live.db", "--db", d.db)
    finally:
        stop.set()
        t.join(60)
    assert live.returncode == 0, live.stderr
    # the copy taken while writing is consistent: it starts, and holds a prefix of the orders
    d2 = sim(start=False)
    assert _cli("restore", tmp_path / "live.db", "--db", d2.db).returncode == 0
    d2.start()
    with d.client() as c, d2.client() as c2:
        n_copy = c2.call("stats")["counts"]["orders"]
        assert 0 < n_copy <= c.call("stats")["counts"]["orders"]
        # an order's promise is journaled after its lines were served (lines_promised, a
        # later commit): a copy cut between the two holds the order without it, and the
        # start on the copy promises it by the same rule, from the same queue and supply
        for o in c2.call("orders.list", limit=50)["orders"]:
            assert (
                c2.call("order.get", order_id=o["order_id"])["lines"]
                == c.call("order.get", order_id=o["order_id"])["lines"]
            )
        # a quiet backup, restored over the live database, gives back the same state
        before = _state(c)
    quiet = _cli("backup", tmp_path, "--db", d.db)  # a directory: a dated file in it
    assert quiet.returncode == 0, quiet.stderr
    (made,) = [p for p in tmp_path.glob("backorder-*.db")]
    refused = _cli("restore", made, "--db", d.db)
    assert refused.returncode != 0 and "running backorder daemon" in refused.stderr
    assert d.stop() == 0
    # change the database after the backup, then restore: the change is gone
    d.start()
    with d.client() as c:
        submit(c, "AFTER-BACKUP", line("A", 1))
    assert d.stop() == 0
    assert snapfiles.found(d.db)  # the stop's snapshot, of the history the restore replaces
    done = _cli("restore", made, "--db", d.db)
    assert done.returncode == 0, done.stderr
    assert "pre-restore" in done.stdout  # the replaced files were kept aside
    assert not snapfiles.found(d.db) and list(d.db.parent.glob(f"{d.db.name}.snapshot-*.pre-restore-*"))
    d.start()
    with d.client() as c:
        assert _state(c) == before


def test_export_orders_and_audit_as_jsonl_and_csv(sim, tmp_path):
    d = sim()
    with d.client() as c:
        stock(c, "A", 1)
        a = submit(c, "E1", line("A", 1), line("B", 2))["order_id"]
        b = submit(c, "E2", line("A", 3))["order_id"]
        c.call("order.cancel", order_id=b)
        last_seq = c.call("health")["journal"]["last_seq"]
        statuses = {oid: c.call("order.get", order_id=oid)["status"] for oid in (a, b)}
        # export while the daemon runs
        out = _cli("export", "orders", "--format", "jsonl", "--db", d.db)
        assert out.returncode == 0, out.stderr
        orders = [json.loads(x) for x in out.stdout.splitlines()]
        assert {o["order_id"]: o["status"] for o in orders} == statuses
        exported, live = {o["order_id"]: o for o in orders}[a], c.call("order.get", order_id=a)
        for ln in exported["lines"] + live["lines"]:
            ln.pop("waiting_hours", None)  # computed at a different instant
        assert exported == live
    out = _cli("export", "orders", "--format", "csv", "--db", d.db)
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert [(r["order_id"], r["sku"], r["qty"]) for r in rows] == [(a, "A", "1"), (a, "B", "2"), (b, "A", "3")]
    assert {r["order_id"]: r["status"] for r in rows} == statuses
    out = _cli("export", "audit", "--format", "jsonl", "--out", tmp_path / "audit.jsonl", "--db", d.db)
    assert out.returncode == 0, out.stderr
    audit = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [r["seq"] for r in audit] == list(range(1, last_seq + 1))
    assert audit[0]["event"]["type"] == audit[0]["type"]
    assert any(r["type"] == "order_cancelled" and r["order_id"] == b for r in audit)
    rows = list(csv.DictReader(io.StringIO(_cli("export", "audit", "--format", "csv", "--db", d.db).stdout)))
    assert len(rows) == last_seq
    assert json.loads(rows[-1]["event"])["type"] == rows[-1]["type"]


def test_export_refuses_to_write_over_the_journal_it_reads(sim):
    """``--out`` naming the database (or its -wal) is refused before anything is opened for
    writing: the export used to truncate the journal first and then fail to read it."""
    d = sim()
    with d.client() as c:
        stock(c, "A", 2)
    assert d.stop() == 0
    size = os.path.getsize(d.db)
    for target in (d.db, f"{d.db}-wal"):
        out = _cli("export", "audit", "--out", target, "--db", d.db)
        assert out.returncode == 1 and "is the journal's file" in out.stderr, out.stderr
    assert os.path.getsize(d.db) == size
    d.start()
    with d.client() as c:
        assert c.call("sku.get", sku="A")["on_hand"] == 2


def test_startup_refuses_a_journal_with_a_gap_under_before_ready(make_daemon):
    """``integrity_check = "before_ready"``: the full check before serving (by default it
    runs once the daemon serves: tests/integration/test_integrity_deferred.py)."""
    d = make_daemon(SIM_CONFIG + 'integrity_check = "before_ready"\n')
    with d.client() as c:
        stock(c, "A", 5)
        submit(c, "G1", line("A", 1))
    assert d.stop() == 0
    with closing(sqlite3.connect(d.db)) as db:  # what a bad manual repair might do
        db.execute("DROP TRIGGER events_append_only_d")
        db.execute("DELETE FROM events WHERE seq = 2")
        db.commit()
    before = d.db.read_bytes()
    with pytest.raises(RuntimeError) as failed:
        d.start()
    text = str(failed.value)
    assert d.proc.returncode == 65  # EX_DATAERR: the unit's RestartPreventExitStatus
    assert "journal continuity" in text and "events are missing" in text
    assert "backorder restore" in text  # and what to do about it
    assert d.db.read_bytes() == before  # nothing was written or dropped


def test_startup_refuses_a_damaged_file_and_a_second_daemon_on_one_db(sim):
    d = sim()
    d2 = sim(start=False)
    d2.db.unlink(missing_ok=True)
    d2.db = d.db  # the same journal, another socket
    with pytest.raises(RuntimeError, match="in use by a running backorder daemon"):
        d2.start()
    assert d.stop() == 0
    d.db.write_bytes(b"SQLite format 3\x00" + b"\xff" * 8000)
    for suffix in ("-wal", "-shm"):
        d.db.with_name(d.db.name + suffix).unlink(missing_ok=True)
    with pytest.raises(RuntimeError, match="failed the integrity check"):
        d.start()


def test_backup_restore_and_export_refusals_print_why_and_exit_1(sim, tmp_path):
    """The library raises BackupError; the command prints ``backorder: <why>`` and exits 1,
    changing nothing."""
    d = sim()
    with d.client() as c:
        stock(c, "A", 5)
    assert d.stop() == 0
    made = tmp_path / "copy.db"
    assert _cli("backup", made, "--db", d.db).returncode == 0
    again = _cli("backup", made, "--db", d.db)
    assert (again.returncode, again.stderr.strip()) == (1, f"backorder: {made} exists; choose a new name")
    missing = _cli("export", "audit", "--db", tmp_path / "nowhere.db")
    nowhere = tmp_path / "nowhere.db"
    assert (missing.returncode, missing.stderr.strip()) == (1, f"backorder: {nowhere}: no such database")
    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(b"SQLite format 3\x00" + b"\xff" * 8000)
    before = d.db.read_bytes()
    refused = _cli("restore", damaged, "--db", d.db)
    assert refused.returncode == 1
    assert refused.stderr.startswith("backorder: refusing to restore a damaged backup: "), refused.stderr
    assert "Traceback" not in refused.stderr
    assert d.db.read_bytes() == before and list(tmp_path.glob("*.pre-restore-*")) == []
