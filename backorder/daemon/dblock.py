"""One daemon per journal: the daemon holds an exclusive lock on ``<db>.lock`` while it
runs, so a second daemon, or ``backorder restore``, on the same database is refused.

``flock`` needs only a descriptor open for reading, so whoever can read the lock file can
hold it and keep the daemon from starting: the file is the service user's alone (0600)."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from backorder.daemon import files


class Locked(Exception):
    """Another process holds the database's lock."""


def lock_path(db: str | Path) -> Path:
    return Path(f"{db}.lock")


def acquire(db: str | Path) -> int:
    """Take the lock (non-blocking); returns the fd to keep open. Raises Locked."""
    path = lock_path(db)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, files.PRIVATE)
    files.restrict(path, files.PRIVATE)  # one made by an older version or under a looser umask
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 64).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise Locked(f"{db} is in use by a running backorder daemon (pid {holder})") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def release(fd: int) -> None:
    os.close(fd)  # closing the descriptor releases the flock
