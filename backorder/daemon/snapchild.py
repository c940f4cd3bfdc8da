"""Periodic snapshots written by a separate process from the journal: the loop never copies the model.

A snapshot needs the model exactly as it was after one event. Encoding the live model
paused the loop for as long as the model is big; forking a child that encodes its
copy-on-write view paused it for the ``fork``, which copies the page tables of the whole
resident memory (6-11 ms of CPU for 165-330 MiB, several times that in wall time on
a loaded machine). The journal already is an immutable copy of the model: so ``start``
spawns a fresh interpreter (``posix_spawn``: the parent's memory is not copied, well
under a millisecond whatever its size) that restores the newest stored snapshot, replays
the committed events after it up to ``seq`` (``recovery.rebuild``, the code a restart
runs), encodes that model and writes it to a private temporary file next to the journal.
``Child.poll`` (from the journal's commit loop) notices its exit. The model written is by construction the
one a restart would build from that journal, so each periodic snapshot also exercises
the replay. The child also puts its file in place (``snapfiles``: flushed, then renamed to
its final name next to the journal); the journal's writer never copies it.

The child reads through its own read-only connection in one read transaction (WAL: it
never blocks the writer) and is given the daemon's settings as they are now (a SIGHUP
reload included) on its stdin: they may carry credentials, so they never touch the disk. A failed child, or one killed by
``Journal.close``, leaves no snapshot: the next start replays a bit more, nothing else.
"""

from __future__ import annotations

import gc
import os
import signal
import sqlite3
import sys
import time
from contextlib import closing
from pathlib import Path

import msgspec
import structlog

from backorder.config.settings import Settings
from backorder.daemon import snapfiles

log = structlog.get_logger()
TMP_GLOB = ".snapshot-*.tmp"


class Child:
    """A process writing the snapshot of ``seq`` (to ``path`` first, a temporary file)."""

    def __init__(self, pid: int, seq: int, path: Path, pause_s: float, pause_cpu_s: float) -> None:
        self.pid = pid
        self.seq = seq
        self.path = path
        # The loop's pause: the spawn and handing over the settings, in wall time and in
        # the loop thread's CPU time (on a loaded machine the wall time also counts
        # waiting for a core).
        self.pause_s = pause_s
        self.pause_cpu_s = pause_cpu_s
        self.started = time.perf_counter()

    def poll(self) -> bool | None:
        """None while the child runs; True once its file is in place; False if it failed."""
        pid, status = os.waitpid(self.pid, os.WNOHANG)
        if pid == 0:
            return None
        if os.waitstatus_to_exitcode(status) == 0:
            return True
        log.warning("snapshot_child_failed", seq=self.seq, status=status)
        self.discard()
        return False

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        self.discard()

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


def clean(folder: Path) -> None:
    """Remove the temporary files of a child killed before its file was in place."""
    for stale in folder.glob(TMP_GLOB):
        stale.unlink(missing_ok=True)


def start(db: Path, settings: Settings, seq: int) -> Child:
    """Spawn a child that writes the snapshot of committed event ``seq`` (module docstring)."""
    path = db.parent / f".snapshot-{seq}.tmp"
    t0, cpu0 = time.perf_counter(), time.thread_time()
    argv = [sys.executable, "-m", "backorder.daemon.snapchild", str(db), str(seq), str(path)]
    read_end, write_end = os.pipe()
    try:
        pid = os.posix_spawn(sys.executable, argv, os.environ, file_actions=[(os.POSIX_SPAWN_DUP2, read_end, 0)])
    finally:
        os.close(read_end)
    # a few KiB: the pipe's buffer takes them at once, the child reads them first thing
    with os.fdopen(write_end, "wb") as pipe:
        try:
            pipe.write(msgspec.json.encode(settings))
        except BrokenPipeError:  # the child is already gone: its poll says it failed
            pass
    return Child(pid, seq, path, time.perf_counter() - t0, time.thread_time() - cpu0)


class _JournalUpto:
    """What ``recovery.rebuild`` reads of a Journal, over a read-only connection, as it was
    after event ``upto`` (later events and snapshots are not seen)."""

    def __init__(self, conn: sqlite3.Connection, path: Path, upto: int) -> None:
        from backorder.daemon.journal import Journal, quarantined

        self._conn = conn
        self.path = path
        self.last_seq = upto
        self.quarantined = quarantined(conn)  # replay skips them, as the daemon's does
        self.latest_snapshot = Journal.latest_snapshot.__get__(self)  # the newest with seq <= last_seq
        self.row_type = Journal.row_type.__get__(self)

    def read(self, after: int = 0, chunk: int = 20000):
        while after < self.last_seq:
            rows = self._conn.execute(
                "SELECT seq, body FROM events WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
                (after, self.last_seq, chunk),
            ).fetchall()
            if not rows:
                return
            yield rows
            after = rows[-1][0]


def write(db: Path, settings: Settings, seq: int) -> bytes:
    """The snapshot of the model after committed event ``seq``: the newest stored snapshot
    at or before it plus the events up to it. Raises if the journal stops short of ``seq``."""
    from backorder.actors import snapshot
    from backorder.daemon.recovery import rebuild

    gc.disable()  # millions of long-lived objects: a collection would only rescan them
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, isolation_level=None)) as conn:
        conn.execute("BEGIN")  # one read transaction: one consistent view of the journal
        world, _, _ = rebuild(_JournalUpto(conn, db, seq), settings)  # type: ignore[arg-type]
    if world.seq != seq:
        raise RuntimeError(f"the journal ends at event {world.seq}, not {seq}")
    return snapshot.dump(world)


def _die_with_parent() -> None:
    """A child whose daemon was killed would write a file nobody stores: end with it (Linux)."""
    if sys.platform == "linux":
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() == 1:  # the daemon died before that took effect
            sys.exit(1)


def main(argv: list[str]) -> int:
    _die_with_parent()
    db, seq, out = Path(argv[0]), int(argv[1]), Path(argv[2])
    settings = msgspec.json.decode(sys.stdin.buffer.read(), type=Settings)
    body = write(db, settings, seq)
    from backorder.daemon.journal import quarantined

    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, isolation_level=None)) as conn:
        tag = snapfiles.tag(conn, seq, quarantined(conn))
    if tag is None:  # write() read that very event: only a repair in between removes it
        raise RuntimeError(f"event {seq} is not in the journal any more")
    snapfiles.write(db, seq, tag, out, body)
    return 0


if __name__ == "__main__":  # pragma: no cover - run by start() in its own process
    sys.exit(main(sys.argv[1:]))
