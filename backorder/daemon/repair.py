"""``backorder journal check`` and ``backorder journal quarantine``: find the events a
start-up could not replay, and set one aside without deleting anything.

The journal is append-only (triggers refuse UPDATE and DELETE). Quarantining an event
keeps its row as it is, records the seq in the ``quarantine`` table (which replay skips)
and journals a ``journal_quarantined`` event with the operator's reason, a copy of the
row and the error, in one transaction: the repair is itself part of the audit trail.
"""

from __future__ import annotations

import os
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import msgspec

from backorder.actors.events import EVENT_DECODER, EVENT_ENCODER, JournalQuarantined
from backorder.actors.model import World
from backorder.config.settings import Settings
from backorder.daemon import dblock, snapfiles
from backorder.daemon.access import user_name
from backorder.daemon.journal import SCHEMA, connect, migrate, quarantined


class Problem(msgspec.Struct, frozen=True):
    """An event replay would stop at: ``stage`` is "decode" or "apply"."""

    seq: int
    event_type: str
    stage: str
    error: str


class RepairError(Exception):
    """``journal quarantine`` refused: no such event, the daemon runs, or the event replays."""


def check(
    db: str | Path, settings: Settings | None = None, chunk: int = 20_000
) -> tuple[list[Problem], int, frozenset[int]]:
    """Replay the whole journal as start-up does (decode, then apply to a fresh model),
    going on past failures. Returns (problems, events scanned, quarantined seqs).

    After a failure the model may differ from the live one, so an apply error listed after
    another problem can be a consequence of it (an order whose creation was quarantined):
    check again after each repair."""
    path = Path(db)
    if not path.exists():
        raise RepairError(f"{path}: no such journal")
    try:
        return _check(path, World(settings or Settings()), chunk)
    except sqlite3.DatabaseError as exc:  # not SQLite, damaged, or no events table
        raise RepairError(f"{path}: not a readable backorder journal ({exc}); see `backorder restore`") from None


def _check(path: Path, world: World, chunk: int) -> tuple[list[Problem], int, frozenset[int]]:
    problems: list[Problem] = []
    scanned = 0
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        skip = quarantined(conn)
        after = 0
        while True:
            rows = conn.execute(
                "SELECT seq, type, body FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (after, chunk)
            ).fetchall()
            if not rows:
                break
            for seq, kind, body in rows:
                if seq in skip:
                    continue
                try:
                    e = EVENT_DECODER.decode(body)
                except msgspec.DecodeError as exc:
                    problems.append(Problem(seq, str(kind), "decode", str(exc)))
                    continue
                try:
                    world.evolve(e)
                except Exception as exc:
                    problems.append(Problem(seq, str(kind), "apply", f"{type(exc).__name__}: {exc}"))
            scanned += len(rows)
            after = rows[-1][0]
    return problems, scanned, skip


def quarantine(db: str | Path, seq: int, reason: str, *, force: bool = False, settings: Settings | None = None) -> int:
    """Set the event ``seq`` aside (see the module docstring); returns the seq of the
    ``journal_quarantined`` event. The daemon must be stopped (its lock is taken). Without
    ``force`` only an event that ``check`` lists may be quarantined."""
    if not reason.strip():
        raise RepairError("give a --reason: it is journaled with the decision")
    try:
        reason.encode()
    except UnicodeEncodeError:  # bytes that are not UTF-8 on the command line
        raise RepairError("the --reason is not UTF-8 text: the journal could not hold it") from None
    path = Path(db)
    try:
        lock = dblock.acquire(path)
    except dblock.Locked as exc:
        raise RepairError(f"{exc}; stop it first") from None
    try:
        problems, _scanned, skip = check(path, settings)
        if seq in skip:
            raise RepairError(f"event {seq} is already quarantined")
        found = {p.seq: p for p in problems}
        with closing(connect(path)) as conn:
            conn.executescript(SCHEMA)  # the quarantine table of a journal older than it
            migrate(conn)  # and its actor column
            row = conn.execute("SELECT type, body, ts FROM events WHERE seq = ?", (seq,)).fetchone()
            if row is None:
                raise RepairError(f"{path} has no event {seq}")
            kind, body, _ts = row
            if seq not in found and not force:
                raise RepairError(
                    f"event {seq} ({kind}) replays: it needs no quarantine "
                    "(--force sets it aside anyway, and its effect is lost)"
                )
            error = found[seq].error if seq in found else "quarantined by force: it replays"
            text = body.decode("utf-8", "backslashreplace") if isinstance(body, bytes) else str(body)
            conn.execute("BEGIN IMMEDIATE")
            try:
                last, last_ts = conn.execute(
                    "SELECT COALESCE(MAX(seq), 0), COALESCE(MAX(ts), 0) FROM events"
                ).fetchone()
                now = max(time.time(), last_ts)  # a simulated clock may run ahead of the wall
                event = JournalQuarantined(
                    ts=now, seq=seq, original_type=str(kind), body=text, error=error, reason=reason
                )
                new_seq = last + 1
                conn.execute(
                    "INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?)",
                    (
                        new_seq,
                        now,
                        "journal_quarantined",
                        None,
                        None,
                        "journal.quarantine",
                        f"quarantine-{seq}",
                        EVENT_ENCODER.encode(event),
                        user_name(os.getuid()),  # the operator who ran the repair
                    ),
                )
                conn.execute("INSERT INTO quarantine VALUES (?,?,?,?)", (seq, new_seq, reason, time.time()))
                # a snapshot after the event holds its effect: the next start replays without it
                conn.execute("DELETE FROM snapshots WHERE seq >= ?", (seq,))
                conn.execute("COMMIT")
                snapfiles.remove_from(Path(db), seq)  # their tag would not match any more either
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return new_seq
    finally:
        dblock.release(lock)
