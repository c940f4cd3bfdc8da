"""Periodic snapshots written by a child process from the journal (daemon/snapchild.py):
the model it writes is the live model as of the event it was asked for, on real SQLite."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_snapshot import SETTINGS, fingerprint, random_history

from backorder.actors import events as ev
from backorder.actors.model import World
from backorder.actors.snapshot import dump, restore
from backorder.daemon import backup, snapchild, snapfiles
from backorder.daemon.journal import Journal


def _journal(path, log: list[ev.Event], snapshot_at: int | None = None, keep=()) -> dict[int, World]:
    """Journal ``log`` with the daemon's own code, storing a snapshot of the model after
    event ``snapshot_at``; returns the model as it was after each event numbered in ``keep``."""
    j = Journal(path)
    j.open()
    w = World(SETTINGS)
    after = {}
    for seq, e in enumerate(log, 1):
        w.evolve(e)
        w.seq = j.append(e, None, None)
        if seq == snapshot_at:
            j._commit(j._pending)
            j._pending = []
            j.write_snapshot_now(seq, dump(w))
        if seq in keep:
            after[seq] = restore(SETTINGS, dump(w))  # a frozen copy
    j._commit(j._pending)
    j.close()
    return after


@pytest.mark.parametrize("seed", range(4))
def test_the_child_writes_the_model_as_of_its_event_from_the_stored_snapshot_and_the_events_after(tmp_path, seed):
    _, log = random_history(seed)
    db = tmp_path / "j.db"
    seqs = (len(log) // 3, len(log) // 2, len(log) - 1, len(log))
    after = _journal(db, log, snapshot_at=len(log) // 3, keep=seqs)
    for seq in seqs:
        body = snapchild.write(db, SETTINGS, seq)
        assert fingerprint(restore(SETTINGS, body)) == fingerprint(after[seq])
        assert body == dump(after[seq])  # not one event more or less


def test_the_child_without_a_stored_snapshot_replays_from_the_first_event(tmp_path):
    _, log = random_history(7)
    db = tmp_path / "j.db"
    after = _journal(db, log, keep={100})
    assert fingerprint(restore(SETTINGS, snapchild.write(db, SETTINGS, 100))) == fingerprint(after[100])


def test_a_journal_that_stops_short_of_the_event_asked_for_writes_nothing(tmp_path):
    _, log = random_history(3, steps=40)
    db = tmp_path / "j.db"
    _journal(db, log)
    with pytest.raises(RuntimeError, match=f"ends at event {len(log)}"):
        snapchild.write(db, SETTINGS, len(log) + 5)


def _finished(child: snapchild.Child) -> bool:
    deadline = time.monotonic() + 60
    while (done := child.poll()) is None:
        assert time.monotonic() < deadline, "the snapshot child did not exit"
        time.sleep(0.05)
    return done


def test_the_spawned_child_writes_a_private_file_and_leaves_nothing_else(tmp_path):
    _, log = random_history(5)
    db = tmp_path / "j.db"
    after = _journal(db, log, snapshot_at=50, keep={200})
    child = snapchild.start(db, SETTINGS, 200)
    assert _finished(child) is True
    (seq, _, path), _older = snapfiles.found(db)
    assert seq == 200 and path.stat().st_mode & 0o777 == 0o600  # it holds what the journal holds
    assert fingerprint(restore(SETTINGS, path.read_bytes())) == fingerprint(after[200])
    assert not list(tmp_path.glob(snapchild.TMP_GLOB))  # renamed into place, nothing else left


def test_a_child_that_fails_leaves_no_file(tmp_path):
    _, log = random_history(5, steps=40)
    db = tmp_path / "j.db"
    _journal(db, log)
    child = snapchild.start(db, SETTINGS, len(log) + 1)  # beyond the journal: the child exits 1
    assert _finished(child) is False
    assert not list(tmp_path.glob(snapchild.TMP_GLOB))


def test_kill_ends_a_running_child_and_removes_its_files(tmp_path):
    _, log = random_history(5, steps=40)
    db = tmp_path / "j.db"
    _journal(db, log)
    child = snapchild.start(db, SETTINGS, len(log))
    child.kill()
    with pytest.raises(ChildProcessError):
        os.waitpid(child.pid, os.WNOHANG)  # reaped
    assert not list(tmp_path.glob(snapchild.TMP_GLOB))


def test_a_child_ends_when_the_process_that_spawned_it_dies(tmp_path):
    """A daemon killed with SIGKILL leaves no child writing a snapshot nobody will store."""
    _, log = random_history(5)
    db = tmp_path / "j.db"
    _journal(db, log)
    script = (
        "import sys, time\n"
        "from backorder.daemon import snapchild\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from test_snapshot import SETTINGS\n"
        f"c = snapchild.start(__import__('pathlib').Path({str(db)!r}), SETTINGS, {len(log)})\n"
        "print(c.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) as parent:
        assert parent.stdout is not None
        child_pid = int(parent.stdout.readline())
        parent.kill()
    deadline = time.monotonic() + 30
    while Path(f"/proc/{child_pid}").exists() and Path(f"/proc/{child_pid}/stat").read_text().split()[2] != "Z":
        assert time.monotonic() < deadline, "the snapshot child outlived its daemon"
        time.sleep(0.05)
    # it ended before writing (on its own it would have written the snapshot a moment later)
    assert not (tmp_path / f".snapshot-{len(log)}.tmp").exists()


def test_the_childs_file_is_the_snapshot_a_start_restores_and_the_database_holds_no_copy(tmp_path):
    """The child puts its file in place next to the journal (the writer never copied it:
    a 128 MiB snapshot held every reply 1-2 s and left the RSS 127 MiB higher)."""
    _, log = random_history(5)
    db = tmp_path / "j.db"
    after = _journal(db, log, snapshot_at=50, keep={200})
    j = Journal(db)
    j.open()
    assert _finished(snapchild.start(db, SETTINGS, 200)) is True
    seq, body = j.latest_snapshot()
    assert seq == 200 and fingerprint(restore(SETTINGS, body)) == fingerprint(after[200])
    assert [s for s, _, _ in snapfiles.found(db)] == [200, 50]  # the older one goes once the child is polled
    assert j._conn is not None and j._conn.execute("SELECT COUNT(*) FROM snapshots").fetchone() == (0,)
    j.close()


def test_a_snapshot_file_of_another_history_is_never_restored(tmp_path):
    """A database replaced under the same name (a copy, an older backup, a repair) keeps
    another journal's snapshot files beside it: they are used only if the journal holds
    the very event they are of."""
    _, log_a = random_history(1)
    _, log_b = random_history(2)
    a, b = tmp_path / "a" / "j.db", tmp_path / "b" / "j.db"
    a.parent.mkdir()
    b.parent.mkdir()
    _journal(a, log_a, snapshot_at=60)
    _journal(b, log_b)
    ((seq, tag, path),) = snapfiles.found(a)
    (b.parent / path.name).write_bytes(path.read_bytes())  # a's file, by name b's
    j = Journal(b)
    j.open()
    assert snapfiles.found(b) and j.latest_snapshot() is None  # replayed instead
    j.close()
    # and the journal it belongs to does use it
    j = Journal(a)
    j.open()
    assert j.latest_snapshot() == (seq, path.read_bytes())
    j.close()


def test_a_backup_carries_the_snapshot_in_its_one_file(tmp_path, monkeypatch):
    """``backorder backup`` streams the newest snapshot file into the copy's table, a chunk
    at a time: a start from the restored backup restores it instead of replaying all."""
    import backorder.daemon.journal as journal_module

    _, log = random_history(5)
    db = tmp_path / "j.db"
    _journal(db, log, snapshot_at=120)
    ((_, _, path),) = snapfiles.found(db)
    written = path.read_bytes()
    assert len(written) > 3 * 4093  # several chunks, the last one short
    monkeypatch.setattr(journal_module, "SNAPSHOT_CHUNK", 4093)
    copy = backup.backup(db, tmp_path / "copy.db")
    assert not snapfiles.found(copy)
    j = Journal(copy)
    j.open()
    assert j.latest_snapshot() == (120, written)
    j.close()
