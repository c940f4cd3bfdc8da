"""The journal's integrity check once the daemon serves (``[daemon] integrity_check = true``,
the default): a start runs only the cheap gate and the replay's continuity check, then the
full check on a thread. A damaged file is found there: writes are refused
(``journal_damaged``), reads are served, ``health`` and the log say what is wrong, and the
database file stays byte for byte as it was (new commits stay in the WAL). A healthy file
is reported verified and checkpoints resume. ``false`` skips it; ``"before_ready"`` keeps the blocking check
(tests/integration/test_service_backup.py)."""

from __future__ import annotations

import hashlib
import sqlite3
from contextlib import closing

import pytest
from bo_support import SIM_CONFIG, drop_snapshots, line, read_db, stock, submit

from backorder.client import CallError
from backorder.launcher import wait_until


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _verdict(d) -> dict:
    """health.startup once the deferred check has a verdict."""
    with d.client() as c:
        wait_until(
            lambda: c.call("health")["startup"]["integrity"]["state"] != "checking",
            timeout=30,
            message="the deferred integrity check gave no verdict",
        )
        return c.call("health")["startup"]


def _site(d) -> None:
    with d.client() as c:
        stock(c, "A", 50)
        for n in range(5):
            submit(c, f"G{n}", line("A", 1))


def _drop_event(db, seq: int) -> None:
    """What a bad manual repair might do: one event gone, the WAL checkpointed into the file."""
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("DROP TRIGGER events_append_only_d")
        conn.execute("DELETE FROM events WHERE seq = ?", (seq,))
        conn.commit()


def _damage_page(db) -> None:
    """Garbage over the header of one b-tree page (an index no start-up reads)."""
    (root,) = read_db(db, "SELECT rootpage FROM sqlite_master WHERE name = 'archived_records_by_status'")[0]
    (size,) = read_db(db, "PRAGMA page_size")[0]
    with open(db, "r+b") as f:
        f.seek((root - 1) * size)
        f.write(b"\xee" * 64)


@pytest.mark.parametrize("damage", [_drop_event, _damage_page], ids=["gap_before_snapshot", "damaged_page"])
def test_damage_found_after_ready_refuses_writes_serves_reads_and_leaves_the_file(sim, damage):
    d = sim()
    _site(d)
    assert d.stop() == 0  # a clean stop: a snapshot covers every event, the WAL is checkpointed
    if damage is _drop_event:
        damage(d.db, 2)
    else:
        damage(d.db)
    before = _digest(d.db)
    # a SKU table new to the config file: the start journals its policy (a write into
    # the WAL before the check's verdict), which must never reach the file
    d.config.write_text(d.config.read_text() + "\n[skus.Z]\n")
    d.start()  # the gate passes: the damage is where only the full check reads
    startup = _verdict(d)
    assert startup["integrity"]["state"] == "damaged"
    problem = startup["integrity"]["problem"]
    assert "failed the integrity check" in problem and "backorder restore" in problem
    if damage is _drop_event:
        assert "journal continuity" in problem and "events are missing" in problem
    else:
        assert "quick_check" in problem
    with d.client() as c:
        sku_before = c.call("sku.get", sku="A")
        with pytest.raises(CallError) as refused:
            c.call("stock.receive", sku="A", qty=5)
        assert refused.value.code == "journal_damaged"
        with pytest.raises(CallError) as refused:
            submit(c, "LATE", line("A", 1))
        assert refused.value.code == "journal_damaged"
        assert c.call("sku.get", sku="A") == sku_before  # reads are served, nothing changed
        assert len(c.call("orders.list")["orders"]) == 5
        assert c.call("sku.get", sku="Z")["sku"] == "Z"  # journaled at the start
    assert d.stop() == 0
    assert _digest(d.db) == before  # the daemon never wrote to the file: its commits are in the WAL
    assert d.db.with_name(d.db.name + "-wal").stat().st_size > 0
    assert "integrity_check_failed" in d.log_tail(20000)


def test_gap_in_the_replayed_tail_refuses_the_start(sim):
    d = sim()
    _site(d)
    assert d.stop() == 0
    _drop_event(d.db, 3)
    drop_snapshots(d.db)  # no snapshot: the start replays every event
    before = _digest(d.db)
    with pytest.raises(RuntimeError) as failed:
        d.start()
    assert d.proc.returncode == 65
    assert "event 4 follows event 2: events are missing" in str(failed.value)
    assert _digest(d.db) == before


def test_healthy_journal_is_verified_with_phase_timings_and_checkpoints_resume(sim):
    d = sim()
    _site(d)
    assert d.stop() == 0
    d.start()
    startup = _verdict(d)
    assert startup["integrity"]["state"] == "verified" and startup["integrity"]["problem"] is None
    assert startup["integrity"]["seconds"] >= 0
    phases = startup["phases_s"]
    order = ["process_start", "integrity_gate", "open", "snapshot_read", "snapshot_restore", "replay"]
    assert list(phases) == [*order, "recover", "gc_freeze", "services"]
    assert all(seconds >= 0 for seconds in phases.values()), phases  # services: the rest of ready_s
    assert 0 < startup["ready_s"] < 60
    before = _digest(d.db)
    with d.client() as c:
        stock(c, "A", 5)
    assert d.stop() == 0  # verified: the last connection checkpoints the WAL into the file
    assert _digest(d.db) != before
    assert not d.db.with_name(d.db.name + "-wal").exists()


def _with_daemon_setting(make_daemon, setting: str):
    return make_daemon(SIM_CONFIG + setting + "\n")


def test_integrity_check_off_starts_on_a_gap_and_accepts_writes(make_daemon):
    d = _with_daemon_setting(make_daemon, "integrity_check = false")
    _site(d)
    assert d.stop() == 0
    _drop_event(d.db, 2)
    d.start()
    with d.client() as c:
        assert c.call("health")["startup"]["integrity"]["state"] == "off"
        before = c.call("sku.get", sku="A")["on_hand"]
        stock(c, "A", 5)
        assert c.call("sku.get", sku="A")["on_hand"] == before + 5
