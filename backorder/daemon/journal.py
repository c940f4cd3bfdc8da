"""The journal: an append-only SQLite event log (WAL, synchronous=FULL) with group commit.

``append`` is synchronous and cheap: it numbers the event and queues the row. One writer
task hands everything queued so far to one SQLite transaction on a dedicated thread, so
while a commit is flushing the actors keep working and the next batch grows. Whoever
must not act before an event is durable (a reply, a label, a notice) awaits
``wait_durable(seq)``; there is one disk flush per batch, not per message.

Resource handling: the connection belongs to the writer thread (``CapacityLimiter(1)``);
readers (the audit query) use their own connection.
"""

from __future__ import annotations

import functools
import itertools
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec
import trio

from backorder.actors.events import (
    BATCHES,
    EVENT_ENCODER,
    SKU_CONFINED,
    Batch,
    Event,
    LinesAllocated,
    ShipmentsCreated,
    encode_checked,
    named_orders,
    parts,
    tag_of,
)
from backorder.config.settings import Settings
from backorder.daemon import files, snapchild, snapfiles
from backorder.timeutil import iso_ts

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq      INTEGER PRIMARY KEY,
    ts       REAL NOT NULL,
    type     TEXT NOT NULL,
    sku      TEXT,
    order_id TEXT,
    cause    TEXT,
    corr     TEXT,
    body     BLOB NOT NULL,
    actor    TEXT  -- who ordered the command (see ``actor_column``); last: ALTER TABLE adds it there
);
-- Audit by SKU: (sku, seq) pairs in a side table, filled from the journal every
-- SKU_INDEX_EVERY events. An index on events(sku) would be updated at random places by
-- every commit, rewriting ~one page per SKU touched per commit: it cost 4x the insert
-- itself. Events after the indexed point are found by a short scan of the journal's tail.
CREATE TABLE IF NOT EXISTS sku_events (sku TEXT NOT NULL, seq INTEGER NOT NULL,
                                       PRIMARY KEY (sku, seq)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_configured ON events(sku) WHERE type = 'sku_configured';
CREATE INDEX IF NOT EXISTS events_by_order ON events(order_id, seq) WHERE order_id IS NOT NULL;
-- Audit by order of the events that name several orders (a lines_allocated or
-- shipments_created row of a fill: its order_id column is NULL): one (order_id, seq) pair per order, written in the commit
-- of the event. An event of one order carries it in its order_id column instead.
CREATE TABLE IF NOT EXISTS order_links (order_id TEXT NOT NULL, seq INTEGER NOT NULL,
                                        PRIMARY KEY (order_id, seq)) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS events_append_only_u BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
CREATE TRIGGER IF NOT EXISTS events_append_only_d BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
CREATE TABLE IF NOT EXISTS outbox (
    notice_id TEXT PRIMARY KEY,
    seq       INTEGER NOT NULL,
    order_id  TEXT,
    kind      TEXT NOT NULL,
    status    TEXT NOT NULL DEFAULT 'pending',
    body      BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS snapshots (seq INTEGER PRIMARY KEY, taken_at REAL NOT NULL, body BLOB NOT NULL);
-- Events replay skips (``backorder journal quarantine``): each row stays in ``events`` as
-- it was; ``event_seq`` is the journal_quarantined event that records the decision.
CREATE TABLE IF NOT EXISTS quarantine (seq INTEGER PRIMARY KEY, event_seq INTEGER NOT NULL,
                                       reason TEXT NOT NULL, at REAL NOT NULL);
-- Closed orders out of memory (daemon/retention.py): written in the commit of the
-- orders_archived event that names them; read by order id, intake key and order number.
CREATE TABLE IF NOT EXISTS archived_orders (
    order_id TEXT PRIMARY KEY, channel TEXT NOT NULL, account TEXT NOT NULL, external_id TEXT NOT NULL,
    order_number TEXT, closed_ts REAL, received_ts REAL NOT NULL,
    detail BLOB NOT NULL, summary BLOB NOT NULL, result BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS archived_by_key ON archived_orders(external_id, channel, account);
CREATE INDEX IF NOT EXISTS archived_by_number ON archived_orders(order_number);
-- Closed purchase orders / transfers and delivered notices out of memory, likewise (the
-- records_archived event): kind "request" / "notice", the id and its counter (list order),
-- ref (a request's SKU, a notice's order id), status, and the list view as JSON.
CREATE TABLE IF NOT EXISTS archived_records (
    kind TEXT NOT NULL, id TEXT NOT NULL, n INTEGER NOT NULL, ref TEXT, status TEXT NOT NULL,
    view BLOB NOT NULL, PRIMARY KEY (kind, id)
);
CREATE INDEX IF NOT EXISTS archived_records_by_n ON archived_records(kind, n);
CREATE INDEX IF NOT EXISTS archived_records_by_ref ON archived_records(kind, ref, n);
CREATE INDEX IF NOT EXISTS archived_records_by_status ON archived_records(kind, status, n);
"""
SCHEMA_VERSION = "2"  # 2: events.actor

Row = tuple[int, float, str, str | None, str | None, str, str, bytes, str | None]
SKU_INDEX_EVERY = 5_000  # events between side-index updates: small steps keep each pause short (p99)
CHUNK = 3600  # rows per INSERT statement (9 parameters each, under SQLite's default limit of 32766)
LINK_CHUNK = 16000  # order_links rows per INSERT statement (2 parameters each)
SNAPSHOT_CHUNK = 1 << 20  # bytes of a snapshot file written to its row at a time


@functools.lru_cache(maxsize=64)
def _insert_sql(rows: int) -> str:
    return "INSERT INTO events VALUES " + ",".join(["(?,?,?,?,?,?,?,?,?)"] * rows)


@functools.lru_cache(maxsize=64)
def _link_sql(rows: int) -> str:
    return "INSERT OR IGNORE INTO order_links VALUES " + ",".join(["(?,?)"] * rows)


def connect(path: str | Path) -> sqlite3.Connection:
    files.private_database(path)  # 0600 whatever the umask: the journal holds personal data
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


class Journal:
    """Numbered, durable, append-only events. See the module docstring."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.last_seq = 0  # last appended (in memory, maybe not durable yet)
        self.committed_seq = 0  # last durable
        # What a read's reply waits for (``fence``): the last event that may change
        # anything, and per SKU the last event confined to it (events.SKU_CONFINED).
        self.unconfined_seq = 0
        self.confined_seq: dict[str, int] = {}
        self.commits = 0
        self.rows_committed = 0
        self.last_batch = 0
        self.last_commit_s = 0.0  # duration of the last commit
        self.last_commit_at: float | None = None  # wall time
        self.listeners: list[Callable[[list[Row]], None]] = []
        # Snapshots: ``snapshotter()`` returns the model's bytes (the one at shutdown, on
        # the trio thread, so the model is consistent with last_seq). Every
        # ``snapshot_every`` events a child process writes one from the journal instead
        # (daemon/snapchild.py, with ``settings``: the daemon's), as a file next to the
        # journal (daemon/snapfiles.py): the writer never copies it.
        self.snapshotter: Callable[[], bytes] | None = None
        self.settings: Settings | None = None
        self.snapshot_every = 1_000_000  # the daemon sets [daemon] snapshot_every
        self.snapshot_seq = 0
        # The child writing one; the loop's pause per snapshot (writing the child's
        # settings and spawning it)
        self._child: snapchild.Child | None = None
        self.snapshots = 0
        self.snapshot_pause_s = 0.0
        self.snapshot_pause_max_s = 0.0
        self.snapshot_pause_cpu_s = 0.0  # the loop thread's CPU time in the last pause
        self.snapshot_pause_cpu_max_s = 0.0  # and the largest
        self.snapshot_child_s = 0.0  # how long the last child took to write its file
        self._pending: list[Row] = []
        self._links: list[tuple[str, int]] = []  # (order_id, seq) of the pending rows that name several orders
        # archived_orders rows queued with the orders_archived event that names them (same commit)
        self.archived: list[tuple] = []
        self.archived_records: list[tuple] = []  # archived_records rows, likewise (records_archived)
        self.archived_committed: Callable[[list[tuple], list[tuple]], None] | None = None
        self._wake = trio.Event()
        self._durable = trio.Event()
        self._limiter = trio.CapacityLimiter(1)
        self._conn: sqlite3.Connection | None = None
        self.sku_indexed = 0  # events up to this seq are in the sku_events side index
        self.quarantined: frozenset[int] = frozenset()  # seqs replay skips (open() reads them)
        # No checkpoint into the database file until the deferred integrity check passed
        # (integrity.Deferred): commits go to the WAL only; ``resume_checkpoints`` ends it.
        self.hold_checkpoints = False
        self.cause = "startup"  # set by whoever is deciding: the op or internal cause
        self.corr = "-"  # correlation id of the unit of work
        self.actor = "system"  # who ordered it: a user, a token, the planner, an intake source

    # --- start-up (sync, before the trio loop serves anyone) --------------------------

    def open(self) -> int:
        """Create or open the database; returns the last journaled seq."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = self._conn = connect(self.path)
        if self.hold_checkpoints:
            conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.executescript(SCHEMA)
        migrate(conn)
        last = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
        self.last_seq = self.committed_seq = last
        snapchild.clean(self.path.parent)
        self.sku_indexed = sku_indexed_upto(conn)
        self.quarantined = quarantined(conn)
        return last

    def row_type(self, seq: int) -> str:
        """The ``type`` column of the event numbered ``seq`` ("?" if there is none)."""
        assert self._conn is not None
        row = self._conn.execute("SELECT type FROM events WHERE seq = ?", (seq,)).fetchone()
        return str(row[0]) if row else "?"

    def last_ts(self) -> float | None:
        """Engine time of the last journaled event (None for an empty journal)."""
        assert self._conn is not None
        row = self._conn.execute("SELECT ts FROM events WHERE seq = ?", (self.last_seq,)).fetchone()
        return row[0] if row else None

    def skus_configured(self, names) -> set[str]:
        """Those of ``names`` that have a ``sku_configured`` event (one probe of a small index each)."""
        assert self._conn is not None
        query = "SELECT 1 FROM events WHERE sku = ? AND type = 'sku_configured' LIMIT 1"
        return {name for name in names if self._conn.execute(query, (name,)).fetchone() is not None}

    def latest_snapshot(self) -> tuple[int, bytes] | None:
        """The newest snapshot that the journal fully covers, if any: its file
        (``snapfiles``: one of this very journal) or a row of the ``snapshots`` table
        (written by an older release, or carried by a backup), whichever is newer."""
        assert self._conn is not None
        row = self._conn.execute("SELECT MAX(seq) FROM snapshots WHERE seq <= ?", (self.last_seq,)).fetchone()
        in_table = row[0] or 0
        newest = snapfiles.newest(Path(self.path), self._conn, self.last_seq, self.quarantined)
        if newest is not None and newest[0] >= in_table:
            try:
                return newest[0], newest[1].read_bytes()
            except OSError:  # removed or unreadable since it was listed: the row, or a replay
                pass
        if not in_table:
            return None
        return self._conn.execute("SELECT seq, body FROM snapshots WHERE seq = ?", (in_table,)).fetchone()

    def write_snapshot_now(self, seq: int, body: bytes) -> None:
        """Write a snapshot synchronously (shutdown, after the final flush): its file, the
        older ones out (and the rows an older release wrote: one DELETE, at a stop)."""
        assert self._conn is not None
        tag = snapfiles.tag(self._conn, seq, self.quarantined)
        if tag is None:  # no event numbered seq (an empty journal): nothing to snapshot
            return
        snapfiles.write(self.path, seq, tag, self.path.parent / f".snapshot-{seq}.tmp", body)
        snapfiles.prune(self.path, seq)
        if self._conn.execute("SELECT 1 FROM snapshots LIMIT 1").fetchone() is not None:
            self._conn.execute("DELETE FROM snapshots")
        self.snapshot_seq = seq

    async def resume_checkpoints(self) -> None:
        """The file passed the integrity check: checkpoint again (now, and as usual after)."""

        def resume() -> None:
            assert self._conn is not None
            self._conn.execute("PRAGMA wal_autocheckpoint=1000")  # SQLite's default
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

        if self.hold_checkpoints and self._conn is not None:
            await trio.to_thread.run_sync(resume, limiter=self._limiter)
        self.hold_checkpoints = False

    def read(self, after: int = 0, chunk: int = 20000) -> Iterator[list[tuple[int, bytes]]]:
        """All events after ``after`` in seq order, in chunks (for replay)."""
        assert self._conn is not None
        while True:
            rows = self._conn.execute(
                "SELECT seq, body FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (after, chunk)
            ).fetchall()
            if not rows:
                return
            yield rows
            after = rows[-1][0]

    # --- live -------------------------------------------------------------------

    def append(self, e: Event, sku: str | None, order_id: str | None) -> int:
        """Number and queue an event (checked: ``UnjournalableEvent`` if it would not replay)."""
        return self.append_body(e, encode_checked(e), sku, order_id)

    def append_body(self, e: Event, body: bytes, sku: str | None, order_id: str | None) -> int:
        """Number and queue an event already encoded by ``encode_checked``."""
        seq = self.last_seq = self.last_seq + 1
        if type(e) in SKU_CONFINED:
            self.confined_seq[sku] = seq  # type: ignore[index]
        else:
            self.unconfined_seq = seq
        if type(e) is LinesAllocated or type(e) is ShipmentsCreated:
            orders = named_orders(e)  # type: ignore[arg-type]
            if len(orders) == 1:  # the usual settle of one new order: found by its column
                order_id = orders[0]
            else:
                self._links += [(oid, seq) for oid in orders]
        self._pending.append((seq, e.ts, tag_of(e), sku, order_id, self.cause, self.corr, body, self.actor))
        self._wake.set()
        return self.last_seq

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """The group-commit loop: one transaction per wake-up with everything queued."""
        task_status.started()
        while True:
            if self._child is None:
                await self._wake.wait()
            else:  # a child is writing a snapshot: look for its exit now and then
                with trio.move_on_after(0.2):
                    await self._wake.wait()
                self._poll_child()
            self._wake = trio.Event()
            batch, self._pending = self._pending, []
            links, self._links = self._links, []
            if not batch:
                continue
            archived, self.archived = self.archived, []
            records, self.archived_records = self.archived_records, []
            # The SKU side index catches up in the commit that takes it past SKU_INDEX_EVERY
            # events: a transaction of its own cost a second fsync and held the writer
            # while the next batch's replies waited (10-40 ms under load, the p99's tail).
            upto = batch[-1][0] if batch else self.committed_seq
            index_upto = upto if upto - self.sku_indexed >= SKU_INDEX_EVERY else None
            # Not cancellable: a commit that started finishes (abandon_on_cancel=False).
            await trio.to_thread.run_sync(
                self._commit, batch, archived, records, links, index_upto, limiter=self._limiter
            )
            if (archived or records) and self.archived_committed is not None:
                self.archived_committed(archived, records)
            if batch:
                self.committed_seq = batch[-1][0]
            self._durable.set()
            self._durable = trio.Event()
            for listener in self.listeners:
                listener(batch)
            due = self.committed_seq - self.snapshot_seq >= self.snapshot_every
            if due and self.settings is not None and self._child is None:
                self._start_child()

    def _start_child(self) -> None:
        """A child writes the snapshot of the events committed so far (daemon/snapchild.py)."""
        assert self.settings is not None
        self._child = child = snapchild.start(self.path, self.settings, self.committed_seq)
        self.snapshots += 1
        self.snapshot_pause_s = child.pause_s
        self.snapshot_pause_max_s = max(self.snapshot_pause_max_s, child.pause_s)
        self.snapshot_pause_cpu_s = child.pause_cpu_s
        self.snapshot_pause_cpu_max_s = max(self.snapshot_pause_cpu_max_s, child.pause_cpu_s)
        self.snapshot_seq = child.seq

    def _poll_child(self) -> None:
        child = self._child
        assert child is not None
        done = child.poll()
        if done is None:
            return
        self._child = None
        self.snapshot_child_s = time.perf_counter() - child.started
        if done:  # its file is in place: the older ones are not needed any more
            snapfiles.prune(self.path, child.seq)

    def fence(self, skus) -> int:
        """The seq a read that shows only ``skus`` (a SKU, or an order's lines) must see
        durable before its reply leaves: every event that may change anything, and the
        events confined to one of these SKUs (events.SKU_CONFINED) - not those confined to
        other SKUs, which the read does not show."""
        confined = self.confined_seq
        return max(self.unconfined_seq, max((confined.get(s, 0) for s in skus), default=0))

    async def wait_durable(self, seq: int) -> None:
        while self.committed_seq < seq:
            await self._durable.wait()

    async def flush(self) -> None:
        await self.wait_durable(self.last_seq)

    def _commit(
        self,
        batch: list[Row],
        archived: list[tuple] | None = None,
        records: list[tuple] | None = None,
        links: list[tuple[str, int]] | None = None,
        index_upto: int | None = None,
    ) -> None:
        t0 = time.perf_counter()
        conn = self._conn
        assert conn is not None
        conn.execute("BEGIN")
        try:
            # Multi-row INSERTs: sqlite3 releases the GIL around every statement step, and
            # each re-acquisition waits for the busy trio thread; one step per row would
            # throttle the writer to the loop's GIL hand-offs. One step per CHUNK rows.
            for start in range(0, len(batch), CHUNK):
                rows = batch[start : start + CHUNK]
                conn.execute(_insert_sql(len(rows)), list(itertools.chain.from_iterable(rows)))
            for start in range(0, len(links or ()), LINK_CHUNK):
                pairs = links[start : start + LINK_CHUNK]  # type: ignore[index]
                conn.execute(_link_sql(len(pairs)), list(itertools.chain.from_iterable(pairs)))
            # The outbox table mirrors the delivery state (the events are the record).
            queued, outcomes = [], []
            for r in batch:
                if r[2] not in NOTICE_TAGS:
                    continue
                n = NOTICE_KEYS.decode(r[7])
                if r[2] == "notice_queued":
                    queued.append((n.notice_id, r[4], n.kind, r[0], r[7]))
                elif r[2] != "notice_failed" or n.dead:  # a failure that will be retried changes nothing
                    outcomes.append((_OUTCOME[r[2]], n.notice_id))
            if queued:
                conn.executemany("INSERT INTO outbox (notice_id, order_id, kind, seq, body) VALUES (?,?,?,?,?)", queued)
            if outcomes:
                conn.executemany("UPDATE outbox SET status = ? WHERE notice_id = ?", outcomes)
            if archived:
                conn.executemany("INSERT OR REPLACE INTO archived_orders VALUES (?,?,?,?,?,?,?,?,?,?)", archived)
            if records:
                conn.executemany("INSERT OR REPLACE INTO archived_records VALUES (?,?,?,?,?,?)", records)
            if index_upto is not None:
                self._index_skus(conn, index_upto)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        if index_upto is not None:
            self.sku_indexed = index_upto
        self.commits += 1
        self.rows_committed += len(batch)
        self.last_batch = len(batch)
        self.last_commit_s = time.perf_counter() - t0
        self.last_commit_at = time.time()

    def index_skus(self) -> None:
        """Bring the sku_events side index up to the last committed event (writer thread)."""
        conn, upto = self._conn, self.committed_seq
        assert conn is not None
        conn.execute("BEGIN")
        self._index_skus(conn, upto)
        conn.execute("COMMIT")
        self.sku_indexed = upto

    def _index_skus(self, conn: sqlite3.Connection, upto: int) -> None:
        """The side index's rows for the events after ``sku_indexed`` up to ``upto``, and
        that mark, inside the caller's transaction."""
        conn.execute(
            "INSERT OR IGNORE INTO sku_events SELECT sku, seq FROM events "
            "WHERE seq > ? AND seq <= ? AND sku IS NOT NULL ORDER BY sku, seq",
            (self.sku_indexed, upto),
        )
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('sku_indexed_upto', ?)", (str(upto),))

    def abandon(self) -> None:
        """Close without writing anything more (a refused start)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        if self._child is not None:  # its snapshot would be stored by no one: a cache, not needed
            self._child.kill()
            self._child = None
        if self._conn is not None:
            if self.committed_seq > self.sku_indexed:
                self.index_skus()
            self._conn.close()
            self._conn = None

    def statistics(self) -> dict:
        return {
            "last_seq": self.last_seq,
            "committed_seq": self.committed_seq,
            "lag": self.last_seq - self.committed_seq,
            "commits": self.commits,
            "rows_committed": self.rows_committed,
            "last_batch": self.last_batch,
            "last_commit_ms": round(self.last_commit_s * 1000, 3),
            "last_commit_at": self.last_commit_at,
            "snapshots": self.snapshots,
            "snapshot_seq": self.snapshot_seq,
            "snapshot_pause_ms": round(self.snapshot_pause_s * 1000, 3),
            "snapshot_pause_max_ms": round(self.snapshot_pause_max_s * 1000, 3),
            "snapshot_pause_cpu_ms": round(self.snapshot_pause_cpu_s * 1000, 3),
            "snapshot_pause_cpu_max_ms": round(self.snapshot_pause_cpu_max_s * 1000, 3),
            "snapshot_child_ms": round(self.snapshot_child_s * 1000, 1),
        }


class NoticeKeys(msgspec.Struct):
    """The fields of a notice event's body that the outbox (and the notifier) need."""

    notice_id: str
    kind: str = ""
    dead: bool = False


NOTICE_KEYS = msgspec.json.Decoder(NoticeKeys)
_OUTCOME = {"notice_delivered": "sent", "notice_retried": "pending", "notice_failed": "dead"}
NOTICE_TAGS = frozenset({"notice_queued", *_OUTCOME})


_RAW = msgspec.json.Decoder()


def audit_event(kind: str, body: bytes | str) -> dict:
    """A journal row's body as the audit shows it: the event's JSON, or, for a row that is
    not JSON (a torn or hand-written row, set aside by ``journal quarantine``), its type
    and its bytes as text (not UTF-8: escapes), so one such row never hides the others."""
    try:
        return _RAW.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError):
        text = body.decode("utf-8", "backslashreplace") if isinstance(body, bytes) else str(body)
        return {"type": kind, "unreadable": text}


def audit_record(row: Row) -> dict:
    """One journal row as ``audit.query`` and ``export audit`` show it."""
    seq, ts, kind, sku, order_id, cause, corr, body, actor = row
    return {
        "seq": seq,
        "at": iso_ts(ts),
        "type": kind,
        "sku": sku,
        "order_id": order_id,
        "cause": cause,
        "actor": actor,  # None: journaled before actors were recorded
        "correlation_id": corr,
        "event": audit_event(kind, body),
    }


_BATCH = msgspec.json.Decoder(Batch)


def part_bodies(body: bytes, order_id: str | None = None) -> list[bytes]:
    """A batch row's body (``events.BATCHES``: ``lines_allocated``, ``shipments_created``)
    as the event body of each of its parts (only those of ``order_id`` if given): what the
    audit by order and the event stream show, as for a journal written before the batch."""
    return [EVENT_ENCODER.encode(x) for x in parts(_BATCH.decode(body)) if order_id is None or x.order_id == order_id]


def order_records(row: Row, order_id: str) -> list[dict]:
    """One journal row as the audit of ``order_id`` shows it: a batch row as a record per
    part of that order (an ``allocated`` per line, a ``shipment_created`` per shipment;
    same seq), others as they are."""
    part = BATCHES.get(row[2])
    if part is None:
        return [audit_record(row)]
    seq, ts, _kind, sku, _order_id, cause, corr, body, actor = row
    return [
        audit_record((seq, ts, part, sku, order_id, cause, corr, one, actor)) for one in part_bodies(body, order_id)
    ]


def migrate(conn: sqlite3.Connection) -> None:
    """Bring a journal file to ``SCHEMA_VERSION`` (after ``SCHEMA`` created what was
    missing): version 1 had no ``actor`` column; the rows it wrote keep NULL there (their
    actor was never recorded). Adding a column rewrites no row, so it is instant whatever
    the journal's size, and the append-only triggers (UPDATE, DELETE) do not fire."""
    row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    if row is None:
        conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
        return
    if row[0] == SCHEMA_VERSION:
        return
    if row[0] != "1":
        raise RuntimeError(f"journal schema {row[0]} is not {SCHEMA_VERSION}; this version cannot migrate it")
    conn.execute("BEGIN IMMEDIATE")
    try:
        if not has_actor(conn):
            conn.execute("ALTER TABLE events ADD COLUMN actor TEXT")
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION,))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def has_actor(conn: sqlite3.Connection) -> bool:
    """Whether the journal's events have the ``actor`` column (not a version-1 file)."""
    return any(col[1] == "actor" for col in conn.execute("PRAGMA table_info(events)"))


def actor_column(conn: sqlite3.Connection, alias: str = "") -> str:
    """The select expression of the actor: NULL for a version-1 file opened read-only."""
    return f"{alias}actor" if has_actor(conn) else "NULL"


def quarantined(conn: sqlite3.Connection) -> frozenset[int]:
    """The seqs of quarantined events (none when the table does not exist yet)."""
    try:
        return frozenset(r[0] for r in conn.execute("SELECT seq FROM quarantine"))
    except sqlite3.OperationalError:  # a journal older than the table, opened read-only
        return frozenset()


def store_snapshot(conn: sqlite3.Connection, seq: int, path: Path) -> None:
    """A snapshot file into the snapshots table, in the caller's transaction, a chunk at a
    time (incremental blob I/O), and the older rows out (a backup carries its snapshot:
    ``backup``). Read whole and bound as one parameter, a 128 MiB snapshot takes the RSS
    up by twice its size (the bytes, then SQLite's copy) and leaves it higher for good."""
    size = path.stat().st_size
    conn.execute("INSERT OR REPLACE INTO snapshots VALUES (?,?,zeroblob(?))", (seq, time.time(), size))
    written = 0
    with conn.blobopen("snapshots", "body", seq) as blob, path.open("rb") as f:  # rowid = seq
        while chunk := f.read(min(SNAPSHOT_CHUNK, size - written)):
            blob.write(chunk)
            written += len(chunk)
    if written != size:  # the file changed under us: the row would be part zeros
        raise OSError(f"snapshot file {path.name}: read {written} of {size} bytes")
    conn.execute("DELETE FROM snapshots WHERE seq < ?", (seq,))


def sku_indexed_upto(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = 'sku_indexed_upto'").fetchone()
    return int(row[0]) if row else 0


class AuditReader:
    """Read-only queries on the journal from a thread, on their own connection."""

    def __init__(self, path: str | Path) -> None:
        self._conn = connect(path)
        self._limiter = trio.CapacityLimiter(1)

    async def query(
        self,
        *,
        order_id: str | None,
        sku: str | None,
        since: float | None,
        after_seq: int,
        limit: int,
        actor: str | None = None,
    ) -> list[tuple]:
        return await trio.to_thread.run_sync(
            self._query, order_id, sku, since, after_seq, limit, actor, limiter=self._limiter
        )

    def _query(self, order_id, sku, since, after_seq, limit, actor=None) -> list[tuple]:
        cols = "e.seq, e.ts, e.type, e.sku, e.order_id, e.cause, e.corr, e.body, e.actor"
        where, args = [], []
        if order_id is not None:  # its own events, and those that name it among others (order_links)
            where.append(
                "e.seq IN (SELECT seq FROM events WHERE order_id = ? AND seq > ? "
                "UNION ALL SELECT seq FROM order_links WHERE order_id = ? AND seq > ?)"
            )
            args += [order_id, after_seq, order_id, after_seq]
        if actor is not None:
            # No index on actor: a filter on it alone scans the journal (from after_seq);
            # with order_id or sku it narrows their indexed rows. An index would cost every
            # commit its update (see the SKU side index above) for a rare query.
            where.append("e.actor = ?")
            args.append(actor)
        if since is not None:
            where.append("e.ts >= ?")
            args.append(since)
        extra = "".join(f" AND {w}" for w in where)
        if sku is None:
            return self._conn.execute(
                f"SELECT {cols} FROM events e WHERE e.seq > ?{extra} ORDER BY e.seq LIMIT ?", [after_seq, *args, limit]
            ).fetchall()
        upto = sku_indexed_upto(self._conn)
        rows = self._conn.execute(
            f"SELECT {cols} FROM sku_events s JOIN events e ON e.seq = s.seq "
            f"WHERE s.sku = ? AND s.seq > ? AND s.seq <= ?{extra} ORDER BY s.seq LIMIT ?",
            [sku, after_seq, upto, *args, limit],
        ).fetchall()
        if len(rows) < limit:  # the tail the side index does not cover yet: a short scan
            rows += self._conn.execute(
                f"SELECT {cols} FROM events e WHERE e.seq > ? AND e.sku = ?{extra} ORDER BY e.seq LIMIT ?",
                [max(after_seq, upto), sku, *args, limit - len(rows)],
            ).fetchall()
        return rows

    def close(self) -> None:
        self._conn.close()
