"""Snapshots written by a forked child, so the trio loop pauses only for the ``fork``.

Encoding the model (``snapshot.dump``) takes time in proportion to what is in memory; on
the trio thread it paused every request that long. ``start`` forks instead: the child
sees the model exactly as it was at the fork (copy-on-write: an immutable copy for free),
encodes it, writes the bytes to a private temporary file next to the journal and exits;
the loop goes on at once. ``Forked.poll`` (from the journal's commit loop) notices the
child's exit; the journal's writer thread then reads the file and stores the snapshot in
its next commit, as before. The child touches no SQLite connection, no lock and no trio
state, so forking a process with threads is safe here; it restores the default signal
dispositions so a stop signal ends it instead of reaching the parent's trio handlers.

A failed child (or one killed by ``close``) leaves no snapshot: the journal replays a bit
more at the next start, nothing else. Where ``os.fork`` is missing the caller encodes on
the loop, as before.
"""

from __future__ import annotations

import gc
import os
import signal
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import structlog

log = structlog.get_logger()
TMP_GLOB = ".snapshot-*.tmp"


class Forked:
    """A child writing the snapshot of ``seq`` to ``path``."""

    def __init__(self, pid: int, seq: int, path: Path, pause_s: float) -> None:
        self.pid = pid
        self.seq = seq
        self.path = path
        self.pause_s = pause_s  # the loop's pause: the fork itself
        self.started = time.perf_counter()

    def poll(self) -> bool | None:
        """None while the child runs; True once it wrote the file; False if it failed."""
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


def available() -> bool:
    return hasattr(os, "fork")


def clean(folder: Path) -> None:
    """Remove files a child left behind when the daemon was killed before storing them."""
    for stale in folder.glob(TMP_GLOB):
        stale.unlink(missing_ok=True)


def start(snapshotter: Callable[[], bytes], seq: int, folder: Path) -> Forked:
    """Fork a child that writes ``snapshotter()`` to a temporary file (module docstring)."""
    path = folder / f".snapshot-{seq}.tmp"
    t0 = time.perf_counter()
    with warnings.catch_warnings():  # 3.12+: "use of fork() may lead to deadlocks" (not here)
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child (its exit code is the parent's test)
        code = 1
        try:
            gc.disable()  # a collection would touch (and copy) every page for nothing
            signal.set_wakeup_fd(-1)
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                signal.signal(sig, signal.SIG_DFL)
            body = snapshotter()
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(body)
            code = 0
        finally:
            os._exit(code)
    return Forked(pid, seq, path, time.perf_counter() - t0)
