"""The files that hold customers' data, the journal lock and the file-drop notices get
their modes from the code, not from the umask: even under umask 000 nothing the daemon or
its commands write is readable by others or writable by the group."""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
import sys

import pytest
from bo_support import line, stock, submit
from notify_support import wait_for

from backorder.daemon import snapfiles


@contextlib.contextmanager
def umask(mask: int):
    old = os.umask(mask)  # inherited by the daemon and CLI processes started meanwhile
    try:
        yield
    finally:
        os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "backorder", *map(str, args)], capture_output=True, text=True, timeout=120, check=True
    )


@pytest.fixture
def loose_daemon(sim, tmp_path):
    """A daemon started under umask 000, delivering notices to a file-drop folder."""
    drop = tmp_path / "drop"
    with umask(0):
        d = sim(f'[notifications.routes]\n"*" = "file"\n[notifications.file]\ndir = "{drop}"\n', start=False)
        d.lock = d.workdir / "journal.db.lock"
        d.lock.write_text("")
        os.chmod(d.lock, 0o666)  # a lock file left world-readable by an older version
        d.start()
    d.drop = drop
    return d


def test_journal_wal_shm_and_lock_are_the_service_users_alone(loose_daemon):
    d = loose_daemon
    with d.client() as c:
        stock(c, "A", 1)
    for path in (d.db, f"{d.db}-wal", f"{d.db}-shm", d.lock):
        assert mode(path) == 0o600, path
    assert d.stop() == 0  # a clean stop writes a snapshot file: what the journal holds
    ((_, _, snap),) = snapfiles.found(d.db)
    assert mode(snap) == 0o600
    # what the mode protects: another user who could read the lock could flock it
    # (flock needs no write access) and keep the daemon from ever starting again


def test_file_drop_notices_cannot_be_written_by_the_group(loose_daemon):
    d = loose_daemon
    with d.client() as c:
        stock(c, "A", 1)
        submit(c, "fd", line("A", 3), email="x@example.com", order_number="#1")
        (path,) = wait_for(lambda: list(d.drop.glob("*.json")), what="the notice file")
    assert mode(d.drop) == 0o750
    assert mode(path) == 0o640


def test_backups_and_exports_are_private(loose_daemon, tmp_path):
    d = loose_daemon
    with d.client() as c:
        stock(c, "A", 1)
        submit(c, "bk", line("A", 1), email="x@example.com", customer={"name": "Ada"})
    with umask(0):
        _cli("backup", tmp_path / "copy.db", "--db", d.db)
        _cli("export", "orders", "--format", "csv", "--out", tmp_path / "orders.csv", "--db", d.db)
        (tmp_path / "old.jsonl").write_text("")
        os.chmod(tmp_path / "old.jsonl", 0o666)  # overwriting a loose file tightens it
        _cli("export", "audit", "--out", tmp_path / "old.jsonl", "--db", d.db)
    for name in ("copy.db", "orders.csv", "old.jsonl"):
        assert mode(tmp_path / name) == 0o600, name
    assert "Ada" in (tmp_path / "old.jsonl").read_text()
    # a restore puts a private copy in place of the journal
    assert d.stop() == 0
    with umask(0):
        _cli("restore", tmp_path / "copy.db", "--db", d.db)
    assert mode(d.db) == 0o600
