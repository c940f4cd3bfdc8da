"""Integrity check of the journal database: SQLite's ``PRAGMA quick_check`` and the
continuity of the event numbers (1..N, no gap), with what is wrong and what to do.

``check`` is the full check: it reads every page, 2-2.5 s per GiB cached and ~20 s per
GiB from disk (bench/startup.py), so a start-up cannot wait for it on a large journal. A start runs ``gate`` instead (the file
is a readable SQLite database with the journal's schema, events start at 1; cost
independent of the journal's size) and the replay checks the continuity of the events it
reads; ``Deferred`` then runs ``check`` in a thread once the daemon serves, while the
database file itself stays untouched (new commits only go to the WAL) until it passes.
``[daemon] integrity_check = "before_ready"`` keeps the full check before serving."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Awaitable, Callable
from contextlib import closing
from pathlib import Path

import structlog
import trio

log = structlog.get_logger()

INSTRUCTIONS = (
    "The daemon did not start, and wrote nothing. Keep this file as it is for analysis "
    "(copy it with its -wal file), then restore the latest good backup: "
    "`backorder restore BACKUP --db {db}` (see docs/operations.md, 'Restore'). "
    "To start on this file anyway (not advised), set [daemon] integrity_check = false."
)


class IntegrityError(Exception):
    """The journal database is damaged; the message says how (``problems``) and what to do
    (``instructions``: by default those for a refused start)."""

    def __init__(self, db: str | Path, problems: list[str], instructions: str = INSTRUCTIONS) -> None:
        self.db, self.problems = db, problems
        super().__init__(
            f"journal {db} failed the integrity check: " + "; ".join(problems) + ". " + instructions.format(db=db)
        )


def check(db: str | Path) -> int:
    """Raise IntegrityError if the database at ``db`` is damaged; return the event count.
    A file that does not exist yet is fine (a new site)."""
    path = Path(db)
    if not path.exists():
        return 0
    problems: list[str] = []
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            rows = [r[0] for r in conn.execute("PRAGMA quick_check").fetchall()]
            if rows != ["ok"]:
                problems += [f"quick_check: {r}" for r in rows[:10]]
            has_events = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='events'").fetchone()
            count = 0
            if has_events and not problems:
                count, lo, hi = conn.execute("SELECT COUNT(*), MIN(seq), MAX(seq) FROM events").fetchone()
                if count and (lo != 1 or hi != count):
                    problems.append(
                        f"journal continuity: {count} events numbered {lo}..{hi} "
                        f"(expected 1..{count}): events are missing"
                    )
    except sqlite3.DatabaseError as exc:
        problems.append(f"not a readable SQLite database: {exc}")
    if problems:
        raise IntegrityError(path, problems)
    return count


def gate(db: str | Path) -> None:
    """The checks that must pass before anything is replayed, in time independent of the
    journal's size: the file is a readable SQLite database (header, schema) and its first
    event is number 1. The events a start replays are checked for gaps as they are read
    (``recovery.replay``); the rest is ``check``'s, deferred. Raises IntegrityError."""
    path = Path(db)
    if not path.exists():
        return
    problems: list[str] = []
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if "events" in tables:
                lo = conn.execute("SELECT MIN(seq) FROM events").fetchone()[0]  # one b-tree descent
                if lo not in (None, 1):
                    problems.append(f"journal continuity: the first event is numbered {lo} (expected 1)")
    except sqlite3.DatabaseError as exc:
        problems.append(f"not a readable SQLite database: {exc}")
    if problems:
        raise IntegrityError(path, problems)


def gap(db: str | Path, expected: int, found: int) -> IntegrityError:
    """The replay found event ``found`` where ``expected`` was due."""
    return IntegrityError(db, [f"journal continuity: event {found} follows event {expected - 1}: events are missing"])


# [daemon] integrity_check: true (the default) checks after ready; false skips the check
BEFORE_READY = "before_ready"

DAMAGED_AT_RUNTIME = (
    "The daemon refuses every write (error journal_damaged) and serves reads; it has not "
    "written to the database file since it started (its writes are in the -wal file). Stop it, "
    "keep this file as it is for analysis (copy it with its -wal file), then restore the latest "
    "good backup: `backorder restore BACKUP --db {db}` (see docs/operations.md, 'Restore')."
)


class Deferred:
    """The full ``check`` of a journal the daemon already serves, on a worker thread.

    Until it passes, the database file must not change: ``hold`` is opened before the
    journal (a read-only connection: while it is open, the journal's connection is never
    the last one, so closing it does not checkpoint the WAL into the file; the journal
    turns its automatic checkpoints off meanwhile). Once it passes, ``verified`` is told
    (the journal checkpoints again) and the hold is released. If it fails, writes are
    refused from then on (``refuses_writes``), ``health`` and the log say what is wrong,
    and the hold stays until the daemon stops, so the file stays as it was."""

    def __init__(self, db: str | Path, state: str = "checking") -> None:
        self.db = Path(db)
        # "checking", then "verified" or "damaged"; "off" under integrity_check = false;
        # "verified" from the start under "before_ready" (checked before serving)
        self.state = state
        self.problem: str | None = None
        self.seconds: float | None = None
        self._hold: sqlite3.Connection | None = None

    def hold(self) -> None:
        """Open the read-only connection that keeps the file from being checkpointed."""
        if self.db.exists():
            self._hold = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
            self._hold.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()  # joins the WAL

    @property
    def refuses_writes(self) -> bool:
        return self.state == "damaged"

    async def run(self, verified: Callable[[], Awaitable[None]], status: Callable[[str], None]) -> None:
        """Run ``check``; ``verified`` is awaited once it passed. A stop abandons the thread
        (it only reads, on its own read-only connection)."""
        t0 = time.perf_counter()
        try:
            events = await trio.to_thread.run_sync(check, self.db, abandon_on_cancel=True)
        except IntegrityError as exc:
            self.seconds = round(time.perf_counter() - t0, 3)
            self.state, self.problem = "damaged", str(IntegrityError(self.db, exc.problems, DAMAGED_AT_RUNTIME))
            log.error("integrity_check_failed", reason=self.problem, seconds=self.seconds)
            status(f"journal damaged, writes refused: {self.problem}")
            return
        self.seconds = round(time.perf_counter() - t0, 3)
        await verified()
        self.state = "verified"
        self.release()
        log.info("integrity_verified", events=events, seconds=self.seconds)

    def release(self) -> None:
        if self._hold is not None:
            self._hold.close()
            self._hold = None

    def health(self) -> dict:
        return {"state": self.state, "seconds": self.seconds, "problem": self.problem}
