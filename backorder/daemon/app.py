"""Process lifecycle: recover the journal, start the actors, serve the socket, drain on a signal.

Nurseries nest in start order and stop in reverse (OTP): the journal writer starts first
and stops last; the actors next; the socket last and first to stop. A SIGINT/SIGTERM
stops accepting and reading, lets every reply still owed go out within ``grace_s``,
lets the actors finish what they were told, commits, removes the socket and returns.

``Daemon`` is the composition root: it builds each part and hands it only what it uses
(the gateway, the intake, the notifier, the metrics, a reload each get their own
collaborators); recovery itself is ``recovery``.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import time
from pathlib import Path

import structlog
import trio

from backorder.actors import snapshot
from backorder.actors.engine import Engine
from backorder.actors.router import Router
from backorder.clock import SteppedClock
from backorder.config.settings import AccessSettings, Settings
from backorder.daemon import (
    access,
    collector,
    dblock,
    handlers,
    integrity,
    metrics,
    recovery,
    reload,
    requestlog,
    sdnotify,
    server,
)
from backorder.daemon.journal import AuditReader, Journal
from backorder.daemon.lending_day import LendingDay
from backorder.daemon.planner import Planner
from backorder.daemon.retention import ArchiveStore, Retention
from backorder.daemon.stepping import Stepper
from backorder.intake.service import IntakeService
from backorder.notify.carriers import CarrierChannel
from backorder.notify.notifier import Notifier
from backorder.threepl.service import ThreeplService
from backorder.timeutil import iso_ts

log = structlog.get_logger()


class Daemon:
    """The composition root: builds the parts in the order they depend on each other and
    wires them. The journal, the hub, the metrics recorder and the set of connections exist
    from the start; the engine, the audit reader and the gateway once the journal is
    recovered; the router, the notifier, the intake and the metrics endpoint once the
    actors' nursery is open. Nothing is served before all of them exist."""

    def __init__(self, settings: Settings, config_path: str | None = None) -> None:
        self.settings = settings
        self.config_path = config_path
        self.systemd = sdnotify.Notifier()
        self.recorder = metrics.Recorder()
        requestlog.configure(settings.logging.requests)
        self.journal = Journal(settings.daemon.db)
        self.hub = server.Hub()
        self.connections: set[server.Connection] = set()
        self.started_at = time.time()
        self.recovered_events = 0
        self.state = "starting"
        # the integrity check's verdict (health.startup.integrity): see recovery.recover_at_start
        check = settings.daemon.integrity_check
        self.integrity = integrity.Deferred(
            settings.daemon.db, "checking" if check is True else ("off" if check is False else "verified")
        )
        self.phases: dict[str, float] = {}  # start-up phase -> seconds (health.startup)
        self.ready_s: float | None = None  # from the process start until serving
        # once the journal is recovered (_recover)
        self.engine: Engine
        self.audit: AuditReader
        self.archive: ArchiveStore
        self.gateway: server.Gateway
        # once the actors' nursery is open (run)
        self.router: Router
        self.notifier: Notifier
        self.intake: IntakeService
        self.threepl: ThreeplService
        self.retention: Retention
        self.lending_day: LendingDay
        self.metrics: metrics.Metrics | None = None  # when [metrics] port is set
        self.stepper: Stepper | None = None  # under the stepped clock
        self.planner: Planner | None = None  # once the actors' nursery is open (state "off" unless enabled)

    def health(self) -> dict:
        journal = self.journal.statistics()
        if journal.get("last_commit_at") is not None:
            journal["last_commit_at"] = iso_ts(journal["last_commit_at"])
        return {
            "status": self.state,
            "uptime_s": round(time.time() - self.started_at, 1),
            "now": iso_ts(self.engine.now()),
            "clock": self._clock_view(),
            "journal": journal,
            "actors": {
                "active_skus": len(self.router.inboxes),
                "activations": self.router.activations,
                "passivations": self.router.passivations,
                "restarts": self.router.crashes,
            },
            "connections": len(self.connections),
            "subscribers": len(self.hub.subscribers),
            "rejected_requests": self.recorder.rejected,
            "dead_letters": len(self.engine.world.dead_letters),
            "recovered_events": self.recovered_events,
            "gc": collector.COLLECTOR.statistics(),
            "notifier": {
                "breakers": self.notifier.statistics(),
                "credential_errors": self.notifier.credential_errors(),
            },
            "intake": self.intake.queue_view(),
            "planner": self.planner.health() if self.planner is not None else None,
            "startup": {"ready_s": self.ready_s, "phases_s": self.phases, "integrity": self.integrity.health()},
        }

    def _clock_view(self) -> dict:
        clock = self.engine.clock
        view: dict = {"kind": clock.kind, "now": iso_ts(clock.now())}
        if isinstance(clock, SteppedClock):
            due = clock.next_due()
            view.update(agenda=clock.pending(), next_due=None if due is None else iso_ts(due), steps_run=clock.steps)
        return view

    def apply_access(self, acc: AccessSettings) -> None:
        """New roles for the connections accepted from now on (a SIGHUP reload)."""
        self.gateway.roles = access.Roles(acc)

    async def _recover(self) -> None:
        """Rebuild the model from the journal (``recovery``), then build what needs it."""
        journal = self.journal
        self.phases["process_start"] = round(process_age(), 3)  # interpreter, imports, config, lock
        self._recovery_began = time.perf_counter()
        self.engine, self.recovered_events = await recovery.recover_at_start(
            self.settings, journal, self.systemd.status, self.integrity, self.phases
        )
        self.audit = AuditReader(self.settings.daemon.db)
        self.archive = ArchiveStore(self.settings.daemon.db)
        self.engine.world.archive = self.archive  # its keys' filter came with the model
        journal.archived_committed = self.archive.committed
        journal.listeners.append(self.hub.publish)
        journal.listeners.append(lambda _rows: self.recorder.committed(journal))

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        self._lock = dblock.acquire(self.settings.daemon.db)  # one daemon per journal (raises Locked)
        await self._recover()
        sock_path = Path(self.settings.daemon.socket)
        try:
            async with trio.open_nursery() as core:
                await core.start(self.journal.run)
                core.start_soon(self.systemd.watchdog)
                async with trio.open_nursery() as actors:
                    d = self.settings.daemon
                    stepped = isinstance(self.engine.clock, SteppedClock)
                    self.router = Router(self.engine, actors, d.actor_idle_s, d.max_active_skus, serial=stepped)
                    await self.router.start()
                    # the outbox channel of remote carriers, only when one is routed to (the
                    # default, local, site keeps the channels and breakers it always had)
                    f = self.settings.fulfillment
                    routed = {f.carrier, *f.carrier_by_channel.values(), *f.carrier_by_service.values()}
                    remote = routed - {"local"}
                    carrier = CarrierChannel(self.engine, self.settings.carriers) if remote else None
                    self.notifier = Notifier(self.engine, self.settings.notifications, carrier=carrier)
                    await actors.start(self.notifier.run)
                    if stepped:
                        self.stepper = Stepper(self.engine.clock, self.router, self.journal, self.notifier)
                    # the planner's runs go on the stepped clock's agenda: before the first advance
                    self.planner = Planner(
                        self.settings.planner, self.engine, self.router, self.journal, self.settings.daemon.db
                    )
                    await actors.start(self.planner.run)
                    self.intake = IntakeService(self.settings, self.engine, self.router, self.hub)
                    await actors.start(self.intake.run)
                    self.threepl = ThreeplService(self.engine, self.router)
                    await actors.start(self.threepl.run)
                    self.retention = Retention(
                        self.engine, self.journal, self.archive, self.settings.retention.hot_days
                    )
                    await actors.start(self.retention.run)
                    self.lending_day = LendingDay(self.engine, self.router)
                    await actors.start(self.lending_day.run)
                    if self.settings.metrics.port is not None:  # lives until the actors stop
                        self.metrics = metrics.Metrics(
                            self.settings.metrics,
                            recorder=self.recorder,
                            journal=self.journal,
                            world=self.engine.world,
                            router=self.router,
                            connections=self.connections,
                            hub=self.hub,
                            started_at=self.started_at,
                            now=self.engine.now,
                        )
                        await actors.start(self.metrics.run)
                    # the gateway comes last: its op handlers reach every collaborator above
                    self.gateway = server.Gateway(
                        settings=self.settings,
                        journal=self.journal,
                        now=self.engine.now,
                        hub=self.hub,
                        recorder=self.recorder,
                        budgets=server.Budgets(),
                        connections=self.connections,
                        roles=access.Roles(self.settings.access),
                        handle=functools.partial(handlers.handle, handlers.Context.of(self)),
                        quiet=self.stepper.quiet if self.stepper is not None else None,
                    )
                    async with trio.open_nursery() as edge:  # the listeners and their connections
                        await edge.start(server.serve, sock_path, self.gateway, edge)
                        await self._start_extra_listeners(edge)
                        if self.settings.intake.listen:
                            from backorder.intake import http  # hypercorn only when listening

                            await http.start(self.intake, edge, self.threepl)
                        self.state = "serving"
                        # the actors, the planner, the listeners: from the end of recovery to here
                        since = time.perf_counter() - self._recovery_began
                        self.phases["services"] = round(
                            since - sum(self.phases.values()) + self.phases["process_start"], 3
                        )
                        self.ready_s = round(self.phases["process_start"] + since, 3)
                        log.info(
                            "daemon_ready",
                            socket=str(sock_path),
                            db=self.settings.daemon.db,
                            mode=self.engine.world.mode,
                            recovered_events=self.recovered_events,
                            ready_s=self.ready_s,
                            integrity=self.integrity.state,
                        )
                        if self.integrity.state == "checking":  # the full check, now that we serve
                            core.start_soon(self.integrity.run, self.journal.resume_checkpoints, self.systemd.status)
                        self.systemd.ready(f"serving {sock_path} ({self.recovered_events} events recovered)")
                        task_status.started(self)
                        await self._wait_for_stop_signal()
                        self.state = "draining"
                        self.gateway.draining = True
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
            self.audit.close()
            self.archive.close()
            # last: while the file is not verified, this read-only connection outlives the
            # others, so none of them checkpoints the WAL into the file as it closes
            self.integrity.release()
            # server.serve removes the socket it bound; never unlink here: if another daemon
            # already serves this path, the socket is that daemon's.
        log.info("daemon_stopped", last_seq=self.journal.last_seq)

    async def _drain(self, edge: trio.Nursery) -> None:
        """Stop accepting and reading; let owed replies go out, within the grace period."""
        grace = self.settings.daemon.grace_s
        for scope in self.gateway.accept_scopes:  # no new client (the socket files go now)
            scope.cancel()
        for conn in list(self.connections):
            conn.read_scope.cancel()
        edge.cancel_scope.deadline = trio.current_time() + grace
        # connections finish by themselves once their writer has sent every reply.
        with trio.move_on_after(grace):
            # polled (once per 10 ms, at most grace_s): an event set by every connection's
            # close would cost each connection, for the one moment a drain needs it
            while self.connections:  # noqa: ASYNC110
                await trio.sleep(0.01)
        edge.cancel_scope.cancel()

    async def _settle_actors(self) -> None:
        """Wait (bounded) until no mailbox holds work, so casts in flight are decided."""
        busy = self.router.busy
        quiet = 0
        with trio.move_on_after(self.settings.daemon.grace_s):
            while quiet < 2:  # twice idle in a row: the last message may have cast another
                await trio.sleep(0.01)
                quiet = 0 if busy() else quiet + 1

    async def _start_extra_listeners(self, edge: trio.Nursery) -> None:
        """The read-only socket and the TCP listener, when configured."""
        acc = self.settings.access
        if acc.read_socket:
            await edge.start(server.serve, Path(acc.read_socket), self.gateway, edge, access.READ)
        if self.settings.tcp.port is not None:
            from backorder.daemon import tcp

            await edge.start(tcp.serve_tcp, self.gateway, edge)

    async def _wait_for_stop_signal(self) -> None:
        """SIGINT/SIGTERM: return (drain). SIGHUP: reload the config file. SIGUSR1: toggle
        the log level between debug and the configured level."""
        targets = reload.Targets(
            settings=self.settings,
            engine=self.engine,
            router=self.router,
            notifier=self.notifier,
            apply_access=self.apply_access,
            status=self.systemd.status,
        )
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1) as signals:
            async for signum in signals:
                log.info("signal_received", signal=signal.Signals(signum).name)
                if signum == signal.SIGHUP:
                    self.systemd.status("reloading config")
                    reload.reload(targets, self.config_path)
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


def process_age() -> float:
    """Seconds since this process started (Linux: /proc, to 10 ms; elsewhere: since this
    module was imported)."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        return float(Path("/proc/uptime").read_text().split()[0]) - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return time.perf_counter() - _IMPORTED


_IMPORTED = time.perf_counter()


def run(settings: Settings, config_path: str | None = None) -> None:
    """Run a daemon until a stop signal. When it cannot start it raises ``dblock.Locked``
    (another daemon has the journal), ``server.SocketInUse`` (another daemon serves the
    socket) or one of ``recovery.REFUSALS`` (the journal cannot be used, logged and told to
    systemd here); the command line says why and exits."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    daemon = Daemon(settings, config_path)
    # Until the serving loop listens for them (after recovery), a SIGHUP or SIGUSR1 must
    # not kill the daemon (their default action): ignore them meanwhile.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    try:
        trio.run(daemon.run)
    except recovery.REFUSALS as exc:
        recovery.report_refusal(exc, daemon.systemd.status)
        raise
    except BaseExceptionGroup as group:
        # A listener that cannot start fails inside the nurseries: its one exception, bare.
        lone = _lone(group)
        if isinstance(lone, server.SocketInUse):
            raise lone from None
        raise
    finally:
        daemon.systemd.close()


def _lone(group: BaseExceptionGroup) -> BaseException:
    """The exception nested groups of one exception each carry, or the group itself."""
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc
