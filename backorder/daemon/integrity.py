"""Start-up integrity check of the journal database: SQLite's ``PRAGMA quick_check`` and
the continuity of the event numbers (1..N, no gap). A damaged journal is refused with
what is wrong and what to do, before anything is replayed or written."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

INSTRUCTIONS = (
    "The daemon did not start, and wrote nothing. Keep this file as it is for analysis "
    "(copy it with its -wal file), then restore the latest good backup: "
    "`backorder restore BACKUP --db {db}` (see docs/operations.md, 'Restore'). "
    "To start on this file anyway (not advised), set [daemon] integrity_check = false."
)


class IntegrityError(Exception):
    """The journal database is damaged; the message says how and what to do."""


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
        raise IntegrityError(
            f"journal {path} failed the integrity check: " + "; ".join(problems) + ". " + INSTRUCTIONS.format(db=path)
        )
    return count
