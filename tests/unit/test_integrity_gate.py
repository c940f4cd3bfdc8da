"""The start-up gate and the replay's continuity check (daemon/integrity.py,
daemon/recovery.py) on real SQLite journals: what a start refuses before serving, in time
that does not depend on the journal's size, and what it leaves to the deferred full check."""

from __future__ import annotations

import sqlite3
from contextlib import closing

import pytest

from backorder.actors.events import Adjusted
from backorder.actors.model import World
from backorder.config.settings import Settings
from backorder.daemon import integrity
from backorder.daemon.journal import Journal
from backorder.daemon.recovery import replay


def _journal(path, events: int) -> None:
    """A journal file of ``events`` stock adjustments, written by the daemon's own code."""
    j = Journal(path)
    j.open()
    for n in range(events):
        j.append(Adjusted(ts=1.0 + n, sku="A", delta=1, reason="count"), "A", None)
    j._commit(j._pending)  # what the writer task does, without a trio loop
    j.close()


def _delete(path, seq: int) -> None:
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("DROP TRIGGER events_append_only_d")
        conn.execute("DELETE FROM events WHERE seq = ?", (seq,))
        conn.commit()


def test_gate_passes_a_sound_journal_a_new_site_and_a_gap_it_does_not_read(tmp_path):
    db = tmp_path / "j.db"
    integrity.gate(db)  # no file yet: a new site
    _journal(db, 50)
    integrity.gate(db)
    _delete(db, 20)
    integrity.gate(db)  # a gap after the first event: the replay's or the full check's to find
    with pytest.raises(integrity.IntegrityError, match="events are missing"):
        integrity.check(db)


def test_gate_refuses_a_file_that_is_not_a_journal_and_a_missing_first_event(tmp_path):
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"SQLite format 3\x00" + b"\xff" * 8000)
    with pytest.raises(integrity.IntegrityError, match="not a readable SQLite database") as refused:
        integrity.gate(garbage)
    assert "backorder restore" in str(refused.value)
    db = tmp_path / "j.db"
    _journal(db, 10)
    _delete(db, 1)
    with pytest.raises(integrity.IntegrityError, match="the first event is numbered 2"):
        integrity.gate(db)


@pytest.mark.parametrize("missing", [1, 2, 20_000, 20_001, 29_999, 30_000])
def test_replay_refuses_a_gap_wherever_it_falls_in_its_chunks(tmp_path, missing):
    db = tmp_path / "j.db"
    _journal(db, 30_001)  # chunks of 20,000 rows: gaps at both edges of both chunks
    _delete(db, missing)
    j = Journal(db)
    j.open()
    try:
        with pytest.raises(integrity.IntegrityError, match=f"event {missing + 1} follows event {missing - 1}"):
            replay(j, World(Settings()))
    finally:
        j.close()


def test_replay_after_a_snapshot_checks_only_the_tail(tmp_path):
    db = tmp_path / "j.db"
    _journal(db, 100)
    _delete(db, 10)
    j = Journal(db)
    j.open()
    try:
        assert replay(j, World(Settings()), after=10) == 90  # 11..100 follow each other
        with pytest.raises(integrity.IntegrityError, match="event 11 follows event 9"):
            replay(j, World(Settings()), after=8)
    finally:
        j.close()
