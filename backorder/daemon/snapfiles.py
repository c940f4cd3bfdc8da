"""Snapshots as files next to the journal: ``<db name>.snapshot-<seq>-<tag>``.

A snapshot is a cache (the model after event ``seq``; a start restores it and replays the
events after it). It used to be a row of the journal database, stored by the writer in
the commit after its child finished: a 128 MiB snapshot made that commit copy 128 MiB into
SQLite and fsync it, 1-2 s during which no reply left (each waits until the events before
it are durable), and raised the daemon's RSS by 127 MiB for good. As a file it is written
and made durable by the child alone (``snapchild``), renamed into place complete, and the
journal's writer never touches it.

A file must belong to the journal it sits next to: a database restored from a backup, or
copied, or repaired, can have a different history behind the same name. ``tag`` is a
digest of the event numbered ``seq`` and of the quarantined seqs up to it (replay skips
those), so a file is used only if the journal holds that very event at that number and
sets aside the same ones before it. The ``snapshots`` table is still read (databases
written before, and backups, which carry their snapshot inside: ``backup``).
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
from pathlib import Path

from backorder.daemon import files

_NAME = re.compile(r"\.snapshot-(\d+)-([0-9a-f]{16})")


def tag(conn: sqlite3.Connection, seq: int, quarantined: frozenset[int]) -> str | None:
    """The identity of a snapshot of event ``seq`` in this journal (None: no such event)."""
    row = conn.execute("SELECT body FROM events WHERE seq = ?", (seq,)).fetchone()
    if row is None:
        return None
    h = hashlib.blake2b(bytes(row[0]), digest_size=8)
    h.update(",".join(str(q) for q in sorted(quarantined) if q <= seq).encode())
    return h.hexdigest()


def path_for(db: Path, seq: int, tag: str) -> Path:
    return db.with_name(f"{db.name}.snapshot-{seq}-{tag}")


def found(db: Path) -> list[tuple[int, str, Path]]:
    """The snapshot files of ``db``'s name: (seq, tag, path), newest first."""
    out = []
    for p in db.parent.glob(f"{glob_escape(db.name)}.snapshot-*"):
        m = _NAME.fullmatch(p.name[len(db.name) :])
        if m is not None:
            out.append((int(m.group(1)), m.group(2), p))
    return sorted(out, reverse=True)


def glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


def newest(db: Path, conn: sqlite3.Connection, upto: int, quarantined: frozenset[int]) -> tuple[int, Path] | None:
    """The newest file of this journal (its tag checked) for an event at or before ``upto``."""
    for seq, t, p in found(db):
        if seq <= upto and t == tag(conn, seq, quarantined):
            return seq, p
    return None


def write(db: Path, seq: int, tag: str, tmp: Path, body: bytes) -> Path:
    """``body`` as the snapshot file of event ``seq``: written to ``tmp`` (0600: it holds what
    the journal holds), flushed to disk, renamed into place, the folder flushed; returns
    its path. A crash leaves the file complete under its name, or only ``tmp``."""
    with os.fdopen(files.open_private(tmp), "wb") as f:
        f.write(body)
        f.flush()
        os.fsync(f.fileno())
    final = path_for(db, seq, tag)
    os.replace(tmp, final)
    fd = os.open(db.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return final


def prune(db: Path, keep: int) -> None:
    """Remove the snapshot files of events before ``keep`` (the newest is enough)."""
    for seq, _, p in found(db):
        if seq < keep:
            p.unlink(missing_ok=True)


def remove_from(db: Path, seq: int) -> None:
    """Remove the snapshot files of event ``seq`` and later (a repair changed what they hold)."""
    for s, _, p in found(db):
        if s >= seq:
            p.unlink(missing_ok=True)
