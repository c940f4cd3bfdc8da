"""Process lifecycle: recover the journal, start the actors, serve the socket, drain on a signal.

Nurseries nest in start order and stop in reverse (OTP): the journal writer starts first
and stops last; the actors next; the socket last and first to stop. A SIGINT/SIGTERM
stops accepting and reading, lets every reply still owed go out within ``grace_s``,
lets the actors finish what they were told, commits, removes the socket and returns.
"""

from __future__ import annotations

import contextlib
import gc
import signal
import sys
import time
from pathlib import Path

import msgspec
import structlog
import trio


from backorder.actors import order_rules, sku_rules, snapshot
from backorder.actors.engine import Engine
from backorder.actors.events import EVENT_DECODER, SkuConfigured, UnjournalableEvent, tag_of
from backorder.actors.model import World
from backorder.timeutil import iso_ts, parse_ts
from backorder.actors.router import Router
from backorder.config.settings import Settings
from backorder.daemon import access, dblock, integrity, metrics, reload, requestlog, sdnotify, server
from backorder.clock import Clock, SimClock, WallClock
from backorder.daemon.journal import AuditReader, Journal
from backorder.notify.notifier import Notifier
from backorder.intake.service import IntakeService

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
            f"--reason \"...\"` (docs/operations.md, 'When the daemon refuses to start').")


def replay(journal: Journal, world: World, after: int = 0) -> int:
    """Apply the journal's events after ``after`` to the model (before anything else starts),
    skipping quarantined ones. Raises UnreplayableEvent naming the first event that does
    not decode or apply."""
    decode = EVENT_DECODER.decode
    evolve = world.evolve
    skip = journal.quarantined
    n = 0
    for rows in journal.read(after):
        for seq, body in rows:
            if skip and seq in skip:
                continue
            try:
                e = decode(body)
            except msgspec.DecodeError as exc:
                raise UnreplayableEvent(journal.path, seq, journal.row_type(seq), str(exc)) from None
            try:
                evolve(e)
            except Exception as exc:  # noqa: BLE001 - reported with the event that caused it
                raise UnreplayableEvent(journal.path, seq, tag_of(e), f"{type(exc).__name__}: {exc}") from exc
        n += len(rows)
        world.seq = rows[-1][0]
    return n


def rebuild(journal: Journal, settings: Settings) -> tuple[World, int, int]:
    """The model as of the journal's last event: from the newest snapshot plus the events
    after it, or by replaying everything when there is no usable snapshot.
    Returns (world, snapshot seq or 0, events replayed)."""
    snap = journal.latest_snapshot()
    if snap is not None:
        seq, body = snap
        try:
            world = snapshot.restore(settings, body)
        except Exception as exc:  # noqa: BLE001 - the journal is the record: replay it all
            # Never quietly: a snapshot that does not restore is a bug (or a damaged row);
            # the full replay below is slower but rebuilds the same model.
            log.error("snapshot_unusable", seq=seq, error=f"{type(exc).__name__}: {exc}", exc_info=exc,
                      fallback="full replay")
        else:
            world.seq = seq
            return world, seq, replay(journal, world, after=seq)
    world = World(settings)
    return world, 0, replay(journal, world)


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
    2. Serve every SKU queue and ship what is allocated: the same rules that run after
       every message; on a clean journal they change nothing.

    Returns the number of events journaled.
    """
    world, now, emit = engine.world, engine.now(), engine.emit
    before = engine.journal.last_seq
    journal_file_policies(engine, {name: policy for name, policy in world.settings.skus.items()
                                   if name not in configured}, "startup")
    engine.context("recovery", "startup")
    for s in list(world.skus.values()):
        if s.undecided or (s.queue and s.available > 0) or sku_rules.reorder_quantity(s):
            with _refused_logged("sku", s.sku):
                sku_rules.settle(world, s, emit, now)
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
    engine.context("config", corr)
    for name, policy in policies.items():
        emit(SkuConfigured(ts=now, sku=name, policy=policy))  # World._sku_configured marks it known
        sku_rules.settle(world, world.sku(name), emit, now)


async def _check_integrity(db: str, out: list) -> None:
    try:
        await trio.to_thread.run_sync(integrity.check, db)
        out.append(None)
    except integrity.IntegrityError as exc:
        out.append(exc)


def make_clock(settings: Settings, last_ts: float | None) -> Clock:
    d = settings.daemon
    if d.clock == "wall":
        return WallClock()
    start = parse_ts(d.clock_start) if d.clock_start else time.time()
    if last_ts is not None:
        start = max(start, last_ts)  # simulated time never runs backwards across restarts
    return SimClock(start, d.clock_speed)


class Daemon:
    def __init__(self, settings: Settings, config_path: str | None = None) -> None:
        self.settings = settings
        self.config_path = config_path
        self.systemd = sdnotify.Notifier()
        self.roles = access.Roles(settings.access)
        self.metrics: metrics.Metrics | None = None  # when [metrics] port is set
        self.recorder = metrics.Recorder()
        requestlog.configure(settings.logging.requests)
        self.accept_scopes: list[trio.CancelScope] = []  # the listeners' accept loops (drain)
        self.journal = Journal(settings.daemon.db)
        self.engine: Engine
        self.router: Router
        self.intake: IntakeService
        self.hub = server.Hub()
        self.audit: AuditReader
        self.connections: set[server.Connection] = set()
        self.budgets = server.Budgets()  # connection slots per listener and role
        self.conn_nursery: trio.Nursery
        self.started_at = time.time()
        self.rejected = 0
        self.recovered_events = 0
        self.state = "starting"

    def health(self) -> dict:
        journal = self.journal.statistics()
        if journal.get("last_commit_at") is not None:
            journal["last_commit_at"] = iso_ts(journal["last_commit_at"])
        return {
            "status": self.state,
            "uptime_s": round(time.time() - self.started_at, 1),
            "now": iso_ts(self.engine.now()),
            "journal": journal,
            "actors": {
                "active_skus": len(self.router.inboxes),
                "activations": self.router.activations,
                "passivations": self.router.passivations,
                "restarts": self.router.crashes,
            },
            "connections": len(self.connections),
            "subscribers": len(self.hub.subscribers),
            "rejected_requests": self.rejected,
            "dead_letters": len(self.engine.world.dead_letters),
            "recovered_events": self.recovered_events,
            "notifier": {"breakers": self.notifier.statistics()} if hasattr(self, "notifier") else None,
            "intake": self.intake.queue_view(),
        }

    def apply_access(self, acc) -> None:
        """New roles for the connections accepted from now on (a SIGHUP reload)."""
        self.roles = access.Roles(acc)

    async def _start(self) -> None:
        journal = self.journal
        t0 = time.perf_counter()
        try:
            self._lock = dblock.acquire(self.settings.daemon.db)  # one daemon per journal
        except dblock.Locked as exc:
            raise SystemExit(f"backorder: {exc}") from None
        db = self.settings.daemon.db
        checked: list[BaseException | None] = []
        async with trio.open_nursery() as startup:
            if self.settings.daemon.integrity_check:
                # Read-only, in its own thread, alongside the replay (which is read-only
                # too): on two cores it costs no start-up time. Nothing is written before
                # its verdict (recover() below is the first write).
                startup.start_soon(_check_integrity, db, checked)
            try:
                await trio.to_thread.run_sync(journal.open)
                self.systemd.status(f"recovering {journal.last_seq} events")
                # Collecting garbage while rebuilding millions of long-lived objects only rescans them.
                gc.disable()
                built = await trio.to_thread.run_sync(rebuild, journal, self.settings)
            except Exception as exc:  # noqa: BLE001 - a damaged file: the check's verdict speaks first
                built = exc
        if checked and checked[0] is not None:
            raise checked[0]
        if isinstance(built, Exception):
            raise built
        world, snap_seq, self.recovered_events = built
        self.engine = Engine(self.settings, journal, make_clock(self.settings, journal.last_ts()), world=world)
        journal.snapshot_seq = snap_seq
        journal.snapshot_every = self.settings.daemon.snapshot_every
        journal.snapshotter = lambda: snapshot.dump(self.engine.world)
        decided = recover(self.engine, journal.skus_configured(self.settings.skus))
        log.info("journal_recovered", snapshot_seq=snap_seq, events_replayed=self.recovered_events,
                 new_decisions=decided, orders=len(world.orders), skus=len(world.skus),
                 seconds=round(time.perf_counter() - t0, 3))
        # The model is millions of small long-lived objects; default GC thresholds would
        # rescan them all again and again (measured: ~8 us per object per full pass).
        # Freeze what recovery built and collect young objects less often.
        gc.collect()
        gc.freeze()
        gc.set_threshold(100_000, 50, 100)
        gc.enable()
        self.audit = AuditReader(self.settings.daemon.db)
        journal.listeners.append(self.hub.publish)
        journal.listeners.append(lambda _rows: self.recorder.committed(journal))

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        await self._start()
        sock_path = Path(self.settings.daemon.socket)
        try:
            async with trio.open_nursery() as core:
                await core.start(self.journal.run)
                core.start_soon(self.systemd.watchdog)
                async with trio.open_nursery() as actors:
                    d = self.settings.daemon
                    self.router = Router(self.engine, actors, d.actor_idle_s, d.max_active_skus)
                    await self.router.start()
                    self.notifier = Notifier(self.engine)
                    await actors.start(self.notifier.run)
                    self.intake = IntakeService(self)
                    await actors.start(self.intake.run)
                    if self.settings.metrics.port is not None:  # lives until the actors stop
                        self.metrics = metrics.Metrics(self)
                        await actors.start(self.metrics.run)
                    async with trio.open_nursery() as edge:
                        self.conn_nursery = edge
                        await edge.start(server.serve, sock_path, self)
                        await self._start_extra_listeners(edge)
                        if self.settings.intake.listen:
                            from backorder.intake import http  # hypercorn only when listening

                            await http.start(self, edge)
                        self.state = "serving"
                        log.info("daemon_ready", socket=str(sock_path), db=self.settings.daemon.db,
                                 mode=self.engine.world.mode, recovered_events=self.recovered_events)
                        self.systemd.ready(f"serving {sock_path} ({self.recovered_events} events recovered)")
                        task_status.started(self)
                        await self._wait_for_stop_signal()
                        self.state = "draining"
                        log.info("daemon_draining", connections=len(self.connections))
                        self.systemd.stopping(f"draining {len(self.connections)} connections")
                        await self._drain(edge)
                    await self._settle_actors()
                    actors.cancel_scope.cancel()
                await self.journal.flush()
                core.cancel_scope.cancel()
            if self.journal.last_seq > self.journal.snapshot_seq:
                # A clean stop leaves a snapshot of everything, so the next start replays nothing.
                body = snapshot.dump(self.engine.world)
                await trio.to_thread.run_sync(self.journal.write_snapshot_now, self.journal.last_seq, body)
        finally:
            self.journal.close()
            dblock.release(self._lock)
            if hasattr(self, "audit"):
                self.audit.close()
            # server.serve removes the socket it bound; never unlink here: if another daemon
            # already serves this path, the socket is that daemon's.
        log.info("daemon_stopped", last_seq=self.journal.last_seq)

    async def _drain(self, edge: trio.Nursery) -> None:
        """Stop accepting and reading; let owed replies go out, within the grace period."""
        grace = self.settings.daemon.grace_s
        for scope in self.accept_scopes:  # no new client (the socket files go now)
            scope.cancel()
        for conn in list(self.connections):
            conn.read_scope.cancel()
        edge.cancel_scope.deadline = trio.current_time() + grace
        # connections finish by themselves once their writer has sent every reply.
        with trio.move_on_after(grace):
            while self.connections:
                await trio.sleep(0.01)
        edge.cancel_scope.cancel()

    async def _settle_actors(self) -> None:
        """Wait (bounded) until no mailbox holds work, so casts in flight are decided."""
        def busy() -> bool:
            r = self.router
            return bool(r.order_inbox.statistics().current_buffer_used
                        or any(ch.statistics().current_buffer_used for ch in r.inboxes.values()))

        quiet = 0
        with trio.move_on_after(self.settings.daemon.grace_s):
            while quiet < 2:  # twice idle in a row: the last message may have cast another
                await trio.sleep(0.01)
                quiet = 0 if busy() else quiet + 1


    async def _start_extra_listeners(self, edge: trio.Nursery) -> None:
        """The read-only socket and the TCP listener, when configured."""
        acc = self.settings.access
        if acc.read_socket:
            await edge.start(server.serve, Path(acc.read_socket), self, access.READ)
        if self.settings.tcp.port is not None:
            from backorder.daemon import tcp

            await edge.start(tcp.serve_tcp, self)

    async def _wait_for_stop_signal(self) -> None:
        """SIGINT/SIGTERM: return (drain). SIGHUP: reload the config file. SIGUSR1: toggle
        the log level between debug and the configured level."""
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1) as signals:
            async for signum in signals:
                log.info("signal_received", signal=signal.Signals(signum).name)
                if signum == signal.SIGHUP:
                    self.systemd.status("reloading config")
                    reload.reload(self, self.config_path)
                elif signum == signal.SIGUSR1:
                    from backorder.daemon import logging as dlog

                    dlog.toggle_debug(self.settings.daemon.log_level)
                else:
                    return


# The journal's writer thread needs the GIL back after every SQLite statement; with the
# default 5 ms switch interval it waits that long behind the busy trio thread each time,
# which stretches every commit and so every reply. 1 ms measured best (bench/throughput.py:
# 15.3k -> 18.6k lines/s; bench/fill.py: 1.17 -> 1.02 s).
SWITCH_INTERVAL_S = 0.001


def run(settings: Settings, config_path: str | None = None) -> None:
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    daemon = Daemon(settings, config_path)
    # Until the serving loop listens for them (after recovery), a SIGHUP or SIGUSR1 must
    # not kill the daemon (their default action): ignore them meanwhile.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    try:
        trio.run(daemon.run)
    except integrity.IntegrityError as exc:
        log.error("integrity_check_failed", reason=str(exc))
        daemon.systemd.status(f"refused to start: {exc}")
        print(f"backorder: {exc}", file=sys.stderr)
        raise SystemExit(65) from None  # EX_DATAERR: the unit does not restart on it
    except UnreplayableEvent as exc:
        log.error("journal_unreplayable", seq=exc.seq, event_type=exc.event_type, reason=str(exc))
        daemon.systemd.status(f"refused to start: journal event {exc.seq} cannot be replayed")
        print(f"backorder: {exc}", file=sys.stderr)
        raise SystemExit(65) from None
    finally:
        daemon.systemd.close()
