"""Recovery: rebuild the model from the journal at start-up, journal what the config file
says and finish what a crash interrupted, before anything else runs.

``recover_at_start`` is the start-up sequence: the integrity gate (the full check is
deferred until the daemon serves, or run on a thread alongside the replay under
``integrity_check = "before_ready"``), open the journal, rebuild the model from the newest
snapshot plus the events after it (checking they follow each other), then ``recover``. A journal it cannot use refuses the start with an
exception naming the problem and the repair (``integrity.IntegrityError``,
``UnreplayableEvent``: together ``REFUSALS``); the daemon writes nothing then, and the
command line exits 65 (EX_DATAERR: restarting cannot fix the file).

Also used without a daemon: ``backup.export`` rebuilds the model with ``rebuild``, and a
SIGHUP reload journals changed ``[skus.NAME]`` tables with ``journal_file_policies``.
"""

from __future__ import annotations

import contextlib
import gc
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
import structlog
import trio

from backorder.actors import order_rules, promise_rules, sku_rules, snapshot
from backorder.actors.engine import CONFIG, Engine
from backorder.actors.events import EVENT_DECODER, SkuConfigured, UnjournalableEvent, tag_of
from backorder.actors.model import World
from backorder.clock import Clock, SimClock, SteppedClock, WallClock
from backorder.config.settings import Settings
from backorder.daemon import collector, integrity
from backorder.daemon.journal import Journal
from backorder.timeutil import parse_ts

log = structlog.get_logger()


class UnreplayableEvent(Exception):
    """Start-up: the journal event numbered ``seq`` cannot be decoded or applied, so the
    model cannot be rebuilt. The message names the event and the repair commands."""

    def __init__(self, db: str | Path, seq: int, event_type: str, error: str) -> None:
        self.seq = seq
        self.event_type = event_type
        super().__init__(
            f"journal event {seq} ({event_type}) in {db} cannot be replayed: {error}. "
            f"The daemon did not start and wrote nothing. List every such event: "
            f"`backorder journal check --db {db}`; set this one aside (its row is kept, the "
            f"decision is journaled, replay skips it): `backorder journal quarantine {seq} --db {db} "
            f"--reason \"...\"` (docs/operations.md, 'When the daemon refuses to start')."
        )


# The journal problems a start refuses on: a damaged file, an event that does not replay.
REFUSALS = (integrity.IntegrityError, UnreplayableEvent)


def replay(journal: Journal, world: World, after: int = 0) -> int:
    """Apply the journal's events after ``after`` to the model (before anything else starts),
    skipping quarantined ones. Raises UnreplayableEvent naming the first event that does
    not decode or apply, and IntegrityError if an event number is missing (events are read
    in seq order, so checking each follows the last costs nothing)."""
    decode = EVENT_DECODER.decode
    evolve = world.evolve
    skip = journal.quarantined
    n = 0
    expected = after + 1
    for rows in journal.read(after):
        if rows[-1][0] != expected + len(rows) - 1:  # seqs ascend: a gap in this chunk, find it
            for i, (seq, _) in enumerate(rows):
                if seq != expected + i:
                    raise integrity.gap(journal.path, expected + i, seq)
        expected += len(rows)
        for seq, body in rows:
            if skip and seq in skip:
                continue
            try:
                e = decode(body)
            except msgspec.DecodeError as exc:
                raise UnreplayableEvent(journal.path, seq, journal.row_type(seq), str(exc)) from None
            try:
                evolve(e)
            except Exception as exc:
                raise UnreplayableEvent(journal.path, seq, tag_of(e), f"{type(exc).__name__}: {exc}") from exc
        n += len(rows)
        world.seq = rows[-1][0]
    return n


def rebuild(journal: Journal, settings: Settings, phases: dict[str, float] | None = None) -> tuple[World, int, int]:
    """The model as of the journal's last event: from the newest snapshot plus the events
    after it, or by replaying everything when there is no usable snapshot.
    Returns (world, snapshot seq or 0, events replayed); ``phases`` gets the seconds of
    each step (snapshot_read, snapshot_restore, replay)."""
    timer = _Phases(phases if phases is not None else {})
    snap = journal.latest_snapshot()
    timer.done("snapshot_read")
    if snap is not None:
        seq, body = snap
        try:
            world = snapshot.restore(settings, body)
        except snapshot.SnapshotOutdated as exc:
            # expected after an upgrade or a [kpi] change: said once, no traceback
            log.warning("snapshot_outdated", seq=seq, reason=str(exc), fallback="full replay")
        except Exception as exc:
            # Never quietly: a snapshot that does not restore is a bug (or a damaged row);
            # the full replay below is slower but rebuilds the same model.
            log.error(
                "snapshot_unusable", seq=seq, error=f"{type(exc).__name__}: {exc}", exc_info=exc, fallback="full replay"
            )
        else:
            timer.done("snapshot_restore")
            world.seq = seq
            replayed = replay(journal, world, after=seq)
            timer.done("replay")
            return world, seq, replayed
        timer.done("snapshot_restore")
    world = World(settings)
    replayed = replay(journal, world)
    timer.done("replay")
    return world, 0, replayed


class _Phases:
    """Start-up phase timings: ``done(name)`` records the seconds since the previous one."""

    def __init__(self, into: dict[str, float]) -> None:
        self.into = into
        self.t = time.perf_counter()

    def done(self, name: str) -> None:
        now = time.perf_counter()
        self.into[name] = round(self.into.get(name, 0.0) + now - self.t, 3)
        self.t = now


def recover(engine: Engine, configured: set[str]) -> int:
    """Journal the config file's SKU policies, then finish what a crash interrupted.

    1. Every ``[skus.NAME]`` policy of the config file is applied to the model when it is
       built, but it is a fact of the journal only once journaled: each SKU of the file
       with no ``sku_configured`` event yet (``configured``: ``Journal.skus_configured``) gets one,
       cause ``config``, and is settled in the same context. So on a fresh site the
       configured policies DO raise the reorders they call for (positions start at 0),
       and the audit trail shows the policy that raised them. A SKU that already has a
       journaled policy keeps it: the journal (``sku.configure`` over the socket, or the
       file's table as first journaled) takes precedence over the file on later restarts,
       so editing an existing ``[skus.NAME]`` table changes nothing; use sku.configure.
    2. Serve every SKU queue, promise the open orders that have no promise
       (``promise_rules.unpromised``: accepted, then stopped before their
       ``lines_promised`` was committed) and ship what is allocated: the same rules that
       run after every message; on a clean journal they change nothing.

    Returns the number of events journaled.
    """
    world, now, emit = engine.world, engine.now(), engine.emit
    before = engine.journal.last_seq
    journal_file_policies(
        engine, {name: policy for name, policy in world.settings.skus.items() if name not in configured}, "startup"
    )
    engine.context("recovery", "startup")
    for s in list(world.skus.values()):
        if s.undecided or (s.queue and s.available > 0) or sku_rules.reorder_quantity(s):
            with _refused_logged("sku", s.sku):
                sku_rules.settle(world, s, emit, now)
    # before anything ships: an order accepted but not promised when the daemon stopped
    for order in promise_rules.unpromised(world):
        with _refused_logged("order", order.order_id):
            promise_rules.promise_order(world, order, emit, now)
    for order in list(world.orders.values()):
        if not order.cancelled and any(ln.allocated > ln.in_shipment for ln in order.lines):
            with _refused_logged("order", order.order_id):
                order_rules.settle_order(world, order, emit, now, engine.auto_pick)
    return engine.journal.last_seq - before


@contextlib.contextmanager
def _refused_logged(kind: str, name: str):
    """A decision that would journal an unreplayable event is not taken; start-up goes on
    (the SKU or order is settled again by its next message) and the error is logged."""
    try:
        yield
    except UnjournalableEvent as exc:
        log.error("recovery_step_refused", **{kind: name}, event_type=exc.event_type, reason=exc.reason)


def journal_file_policies(engine: Engine, policies: dict, corr: str) -> None:
    """Journal ``[skus.NAME]`` policies of the config file (cause ``config``) and settle
    each SKU in the same step: at start (recover) and on a SIGHUP reload."""
    world, now, emit = engine.world, engine.now(), engine.emit
    engine.context("config", corr, CONFIG)
    for name, policy in policies.items():
        emit(SkuConfigured(ts=now, sku=name, policy=policy))  # World._sku_configured marks it known
        sku_rules.settle(world, world.sku(name), emit, now)


def make_clock(settings: Settings, last_ts: float | None) -> Clock:
    """The engine's clock: wall time, or simulated or stepped time that never runs backwards
    across restarts (it starts at the journal's last event if that is later than
    ``clock_start``)."""
    d = settings.daemon
    if d.clock == "wall":
        return WallClock()
    start = parse_ts(d.clock_start) if d.clock_start else time.time()  # stepped: required (check-config)
    if last_ts is not None:
        start = max(start, last_ts)
    if d.clock == "stepped":
        return SteppedClock(start)
    return SimClock(start, d.clock_speed)


async def _check_integrity(db: str, out: list) -> None:
    try:
        await trio.to_thread.run_sync(integrity.check, db)
        out.append(None)
    except integrity.IntegrityError as exc:
        out.append(exc)


async def recover_at_start(
    settings: Settings,
    journal: Journal,
    status: Callable[[str], None],
    deferred: integrity.Deferred,
    phases: dict[str, float],
) -> tuple[Engine, int]:
    """Open ``journal``, rebuild the model and ``recover``; returns the engine over it and
    the number of events replayed. ``status`` is told what is going on (systemd);
    ``phases`` gets the seconds of each step (also logged: ``journal_recovered``).
    Raises one of ``REFUSALS`` when the journal cannot be used; nothing is written then.

    The integrity check (``[daemon] integrity_check``): by default only ``integrity.gate``
    and the replay's own continuity check run before serving, and ``deferred`` (its hold
    opened here, before the journal) runs the full check once the daemon serves; under
    "before_ready" the full check runs here, on a thread alongside the replay."""
    t0 = time.perf_counter()
    timer = _Phases(phases)
    db = settings.daemon.db
    mode = settings.daemon.integrity_check
    checked: list[BaseException | None] = []
    if mode is not False:
        await trio.to_thread.run_sync(integrity.gate, db)
        # Nothing reaches the file before the verdict: not even what opening writes to
        # the WAL (a missing trigger of SCHEMA, re-created) if the start is refused.
        deferred.hold()
        journal.hold_checkpoints = mode is True
        timer.done("integrity_gate")
    async with trio.open_nursery() as startup:
        if mode == integrity.BEFORE_READY:
            # Read-only, in its own thread, alongside the replay (which is read-only
            # too). Nothing is written before its verdict (recover() below is the first write).
            startup.start_soon(_check_integrity, db, checked)
        try:
            await trio.to_thread.run_sync(journal.open)
            timer.done("open")
            status(f"recovering {journal.last_seq} events")
            # Collecting garbage while rebuilding millions of long-lived objects only rescans them.
            gc.disable()
            built = await trio.to_thread.run_sync(rebuild, journal, settings, phases)
            timer.t = time.perf_counter()  # rebuild timed its own phases
        except sqlite3.DatabaseError as exc:  # a damaged page the gate did not read
            built = integrity.IntegrityError(db, [f"not a readable SQLite database: {exc}"])
        except Exception as exc:
            built = exc
    refused = checked[0] if checked else None  # the full check's verdict comes first
    if refused is None and isinstance(built, Exception):
        refused = built
    if refused is not None:
        journal.abandon()  # before the hold: so no connection checkpoints into the file
        deferred.release()
        raise refused
    if mode == integrity.BEFORE_READY:
        timer.done("integrity_check_wait")  # what the check added after the replay was done
        deferred.release()
    assert not isinstance(built, Exception)
    world, snap_seq, replayed = built
    engine = Engine(settings, journal, make_clock(settings, journal.last_ts()), world=world)
    journal.snapshot_seq = snap_seq
    journal.snapshot_every = settings.daemon.snapshot_every
    journal.snapshotter = lambda: snapshot.dump(engine.world)
    journal.settings = settings  # the periodic snapshots' child replays with them
    decided = recover(engine, journal.skus_configured(settings.skus))
    timer.done("recover")
    log.info(
        "journal_recovered",
        snapshot_seq=snap_seq,
        events_replayed=replayed,
        new_decisions=decided,
        orders=len(world.orders),
        skus=len(world.skus),
        seconds=round(time.perf_counter() - t0, 3),
        phases_s=phases,
    )
    # The model is millions of small long-lived objects; default GC thresholds would
    # rescan them all again and again (~8 us per object per full pass, measured).
    # Freeze what recovery built; from now on each young collection's survivors too.
    collector.COLLECTOR.install()
    timer.done("gc_freeze")
    return engine, replayed


def report_refusal(exc: integrity.IntegrityError | UnreplayableEvent, status: Callable[[str], None]) -> None:
    """Log why the journal refused the start and tell ``status`` (systemd); the command
    line prints the exception and exits 65."""
    if isinstance(exc, UnreplayableEvent):
        log.error("journal_unreplayable", seq=exc.seq, event_type=exc.event_type, reason=str(exc))
        status(f"refused to start: journal event {exc.seq} cannot be replayed")
    else:
        log.error("integrity_check_failed", reason=str(exc))
        status(f"refused to start: {exc}")
