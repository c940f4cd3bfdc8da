"""Data safety from the command line: ``backorder backup``, ``restore`` and ``export``.

backup  SQLite's online backup API copies the live database in one step, i.e. one read
        transaction: a consistent snapshot, while the daemon keeps writing (WAL readers do
        not block the writer). Written to a temporary file, checked, then renamed.
restore Refused while a daemon holds the database's lock. Checks the backup, moves the
        current database (and its -wal/-shm, which belong to it) aside as
        ``*.pre-restore-<time>``, and puts a copy of the backup in its place.
export  Orders (rebuilt from the journal exactly as the daemon does) or the audit trail
        (every journaled event), as JSON lines or CSV; read-only, also while the daemon runs.

Backups and export files are created 0600 (``backorder.daemon.files``): they hold
customers' names and addresses.
"""

from __future__ import annotations

import csv
import os
import sqlite3
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import TextIO

import msgspec

from backorder.daemon import dblock, files, integrity, snapfiles
from backorder.documents.cells import spreadsheet_cell

_JSON = msgspec.json.Encoder(decimal_format="string")


class BackupError(Exception):
    """A backup, restore or export that must not go ahead (no such database, the target
    exists, a daemon holds the database, the backup is damaged); nothing was changed. The
    message says why and what to do; the command line prints it and exits 1."""


def _ro(db: str | Path) -> sqlite3.Connection:
    if not Path(db).exists():
        raise BackupError(f"{db}: no such database")
    return sqlite3.connect(f"file:{db}?mode=ro", uri=True, isolation_level=None)


def _copy(src: str | Path, dest: Path) -> None:
    """Online backup of ``src`` into ``dest`` (via a temporary file, then renamed)."""
    tmp = dest.with_name(dest.name + ".partial")
    tmp.unlink(missing_ok=True)
    os.close(files.open_private(tmp))  # a backup holds what the journal holds: 0600
    with closing(_ro(src)) as s, closing(sqlite3.connect(tmp)) as d:
        s.backup(d)  # pages=-1: all in one step, so one consistent snapshot, never restarted
        _carry_snapshot(Path(src), d)
        d.execute("PRAGMA journal_mode=DELETE")  # a single self-contained file
    os.replace(tmp, dest)


def _carry_snapshot(src: Path, copy: sqlite3.Connection) -> None:
    """The newest snapshot file of ``src`` that the copy covers, into the copy's
    ``snapshots`` table: a backup is one file, and a start from it restores the snapshot
    instead of replaying every event. Without one (or if the daemon replaced it meanwhile)
    the backup is as good, only slower to start from."""
    from backorder.daemon.journal import quarantined, store_snapshot

    last = copy.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
    newest = snapfiles.newest(src, copy, last, quarantined(copy))
    stored = copy.execute("SELECT COALESCE(MAX(seq), 0) FROM snapshots").fetchone()[0]
    if newest is None or newest[0] <= stored:
        return
    copy.execute("BEGIN")
    try:
        store_snapshot(copy, *newest)
        copy.execute("COMMIT")
    except FileNotFoundError:  # pruned since it was listed: a newer one exists, the copy goes without
        copy.execute("ROLLBACK")


def backup(db: str | Path, dest: str | Path) -> Path:
    """Copy the live database to ``dest`` (a file, or a directory to put a dated file in)."""
    dest = Path(dest)
    if dest.is_dir():
        dest = dest / f"backorder-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.db"
    if dest.exists():
        raise BackupError(f"{dest} exists; choose a new name")
    _copy(db, dest)
    events = integrity.check(dest)  # the copy must pass the same check as a start-up
    print(f"backed up {db} to {dest}: {events} events, {dest.stat().st_size} bytes")
    return dest


def restore(src: str | Path, db: str | Path) -> None:
    """Replace the database ``db`` by the backup ``src``; refused while a daemon runs on it."""
    src, db = Path(src), Path(db)
    try:
        fd = dblock.acquire(db)
    except dblock.Locked as exc:
        raise BackupError(
            f"refusing to restore: {exc}. Stop it first (systemctl stop backorderd), then run restore again."
        ) from None
    try:
        try:
            events = integrity.check(src)
        except integrity.IntegrityError as exc:
            raise BackupError(f"refusing to restore a damaged backup: {exc}") from None
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        staged = db.with_name(db.name + ".restoring")
        _copy(src, staged)
        moved = []
        # the database's snapshot files belong to it too (the backup carries its own)
        for old in [Path(f"{db}{suffix}") for suffix in ("", "-wal", "-shm")] + [p for _, _, p in snapfiles.found(db)]:
            if old.exists():
                aside = Path(f"{old}.pre-restore-{stamp}")
                os.replace(old, aside)
                moved.append(str(aside))
        os.replace(staged, db)
    finally:
        dblock.release(fd)
    aside = f"; the previous files are {', '.join(moved)}" if moved else ""
    print(f"restored {db} from {src}: {events} events{aside}")


# --- export ----------------------------------------------------------------------------

AUDIT_COLUMNS = ("seq", "at", "type", "sku", "order_id", "cause", "actor", "correlation_id", "event")
ORDER_COLUMNS = (
    "order_id",
    "channel",
    "account",
    "external_id",
    "order_number",
    "status",
    "received_at",
    "cancelled",
    "line_no",
    "sku",
    "qty",
    "unit_price",
    "allocated",
    "backordered",
    "shipped",
    "line_cancelled",
)


def check_export_target(out: str | Path, db: str | Path) -> None:
    """Refuse an export file that is the journal or one of its files: opening it for
    writing would truncate the journal before a record of it was read."""
    target = Path(out).resolve()
    for suffix in ("", "-wal", "-shm", ".lock"):
        own = Path(f"{db}{suffix}")
        if target == own.resolve() or (target.exists() and own.exists() and target.samefile(own)):
            raise BackupError(f"{out} is the journal's file {own}: export to another file")


def export(db: str | Path, what: str, fmt: str, out: TextIO | None = None, settings=None) -> int:
    """Write the orders or the audit trail of ``db`` to ``out``; returns the record count."""
    out = out or sys.stdout
    with closing(_ro(db)) as conn:
        conn.execute("BEGIN")  # one snapshot for the whole export, while the daemon writes
        records = _audit(conn) if what == "audit" else _orders(conn, db, settings)
        columns = AUDIT_COLUMNS if what == "audit" else ORDER_COLUMNS
        n = 0
        if fmt == "jsonl":
            for rec in records:
                out.write(_JSON.encode(rec).decode() + "\n")
                n += 1
        else:
            w = csv.writer(out, lineterminator="\n")
            w.writerow(columns)
            for rec in records:
                for row in _order_rows(rec) if what == "orders" else [rec]:
                    w.writerow(_cell(row.get(c)) for c in columns)
                n += 1
        conn.execute("COMMIT")
    return n


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, (dict, list)):
        return _JSON.encode(v).decode()  # starts with { or [: never a formula
    if isinstance(v, str):
        return spreadsheet_cell(v)  # names, SKUs and ids come from customers and channels
    return str(v)


def _audit(conn: sqlite3.Connection):
    from backorder.daemon.journal import actor_column, audit_record

    actor = actor_column(conn)  # an export may read a journal file older than the column
    for row in conn.execute(
        f"SELECT seq, ts, type, sku, order_id, cause, corr, body, {actor} FROM events ORDER BY seq"
    ):
        yield audit_record(row)


class _ReadOnlyJournal:
    """What ``recovery.rebuild`` needs of a Journal, over a read-only connection."""

    def __init__(self, conn: sqlite3.Connection, path) -> None:
        from backorder.daemon.journal import Journal, quarantined

        self._conn = conn
        self.path = path
        self.last_seq = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
        self.quarantined = quarantined(conn)  # replay skips them, as the daemon's does
        self.latest_snapshot = Journal.latest_snapshot.__get__(self)
        self.read = Journal.read.__get__(self)
        self.row_type = Journal.row_type.__get__(self)


def _orders(conn: sqlite3.Connection, db, settings):
    from backorder.actors import views
    from backorder.config.settings import Settings
    from backorder.daemon.recovery import rebuild

    world, _, _ = rebuild(_ReadOnlyJournal(conn, db), settings or Settings())
    ts = conn.execute("SELECT ts FROM events ORDER BY seq DESC LIMIT 1").fetchone()
    now = ts[0] if ts else time.time()
    try:  # closed orders archived out of memory ([retention]) first: they are the oldest
        archived = conn.execute("SELECT detail FROM archived_orders ORDER BY received_ts, order_id").fetchall()
    except sqlite3.OperationalError:  # a journal written before retention: no such table
        archived = []
    for (body,) in archived:
        yield msgspec.json.decode(body)
    for order in world.orders.values():
        yield views.order_detail(world, order, now)


def _order_rows(order: dict) -> list[dict]:
    """CSV: one row per order line, the order's fields repeated."""
    head = {k: order.get(k) for k in ORDER_COLUMNS[:8]}
    return [
        {**head, **{k: ln[k] for k in ORDER_COLUMNS[8:-1]}, "line_cancelled": ln["cancelled"]} for ln in order["lines"]
    ] or [head]
