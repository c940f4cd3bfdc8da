"""The demand planner's supervisor: starts the worker process, keeps it alive, runs it on
the engine-time schedule and on ``planner.run``, and hands its results to the SKU actors.

The worker (``python -m backorder.planner.worker``) is a child process speaking one JSON
line per message on its stdin / stdout (``backorder.planner.wire``): numpy, scipy and
statsforecast load there, never in the daemon, and a forecast never runs on the trio
loop. It reads the journal file itself (read only, incrementally, see ``wire``).

Failure: a worker that exits or crashes is started again after a backoff that doubles
from ``restart_min_s`` to ``restart_max_s`` (reset once it has stayed up a minute); one
that does not say it is ready within ``start_timeout_s`` of starting, or does not answer a
run within ``run_timeout_s``, is killed and restarted. Either way the run fails with
``planner_unavailable``, every SKU keeps the levels it had, and the daemon goes on
serving; ``health`` shows the state, the pid and the restarts. A ready worker lives until
it exits or a run times out: the start timeout bounds its start only.

Results: each SKU's ``SkuResult`` goes to its SKU actor (``messages.Tune``), which
journals ``policy_tuned`` when the SKU is in auto or suggest mode (``sku_rules.tune``).
A run is done when every actor has handled its result and the events are durable.
The latest results (the 30-day forecast, the reasons, also for SKUs kept as they were)
are kept here in memory for ``sku.get`` and ``planner.explain``: not journaled (one
event per SKU per day with 30 numbers would be most of the journal), so after a restart
they reappear with the next run, while the journaled ``policy_tuned`` has the summary.

Schedule: every ``interval_hours`` of engine time, on multiples of the interval since
the epoch (so a restart does not shift it). Under the stepped clock each run is an item
of the clock's agenda, so an advance past it returns only once its events are durable;
otherwise a task sleeps until engine time reaches the next run. A SKU whose forecast is
biased (tracking signal) is run again ``BIAS_RECHECK_S`` later.

Determinism under the stepped clock: a run's outcome must depend on the journal, not on
the machine's speed. So each SKU's result is taken in only once the actors have decided
everything the one before caused (a tuned SKU's settle, the orders it fills, the loans
they ask for), never while that cascade is still running, whenever the worker happens to
answer (one SKU at a time also keeps each loop step short: see ``_apply``); and a
scheduled run that failed for a wall-time reason (the worker
restarting, slow to start or to answer) is sent again, up to ``STEPPED_ATTEMPTS`` times,
each waiting for a starting worker as long as the keeper lets it start, before it is
given up (logged, the levels kept). An attempt lost before its first part
journaled nothing, so the next replays exactly; one lost after some parts leaves them
applied (the next plans from those levels): a worker that dies mid-run still shows.
"""

from __future__ import annotations

import math
import subprocess
import sys
import time
from array import array
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import msgspec
import structlog
import trio

from backorder.actors.engine import PLANNER
from backorder.actors.messages import Tune
from backorder.clock import SimClock, SteppedClock
from backorder.errors import Conflict, NotFound
from backorder.planner import wire
from backorder.timeutil import iso_ts

if TYPE_CHECKING:
    from backorder.actors.engine import Engine
    from backorder.actors.router import Router
    from backorder.config.settings import PlannerSettings
    from backorder.daemon.journal import Journal

log = structlog.get_logger()

WORKER = (sys.executable, "-m", "backorder.planner.worker")
STABLE_AFTER_S = 60.0  # a worker up this long resets the backoff
BIAS_RECHECK_S = 6 * 3600.0  # engine time until a biased SKU is run again
MAX_LINE = 64 * 1024 * 1024  # a reply for 100,000 SKUs is ~60 MB
STEPPED_ATTEMPTS = 3  # stepped clock: tries of a scheduled run before it is given up

_decoder = msgspec.json.Decoder(wire.Outbound)
_encoder = msgspec.json.Encoder()


class PlannerUnavailable(Exception):
    """The worker is down, restarting, did not answer in time or failed the run."""


class WorkerLost(PlannerUnavailable):
    """The run got no answer: the worker was not ready in time, exited or hung (a matter
    of the process and of wall time, not of the run's inputs: worth sending again)."""


class _Lines:
    """Lines from a byte stream (the worker's stdout)."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self.stream = stream
        self.buf = bytearray()

    async def next(self) -> bytes:
        while True:
            end = self.buf.find(b"\n")
            if end >= 0:
                line = bytes(self.buf[:end])
                del self.buf[: end + 1]
                return line
            if len(self.buf) > MAX_LINE:
                raise PlannerUnavailable("the planner worker sent a line over the limit")
            chunk = await self.stream.receive_some(1 << 20)
            if not chunk:
                raise WorkerLost("the planner worker exited")
            self.buf += chunk


class Planner:
    def __init__(self, settings: PlannerSettings, engine: Engine, router: Router, journal: Journal, db: str) -> None:
        self.settings = settings
        self.engine = engine
        self.router = router
        self.journal = journal
        self.db = str(Path(db).resolve())  # the worker may not share our working directory
        self.state = "off" if not settings.enabled else "starting"
        self.pid: int | None = None
        self.restarts = 0
        self.last_exit: str | None = None
        self.runs = 0
        self.failed_runs = 0
        self.last_run: dict | None = None
        self.last_error: str | None = None
        self.results: dict[str, wire.SkuResult] = {}
        self.site: wire.SiteFill | None = None  # the last whole run's service levels across SKUs
        self._proc: trio.Process | None = None
        self._lines: _Lines | None = None
        self._ready = trio.Event()
        self._gone = trio.Event()  # set when the current worker has exited and been let go
        self._lock = trio.Lock()
        self._run_ids = 0
        self._bias_due: tuple[float, list[str]] | None = None  # timer: biased SKUs to run again

    # --- the worker process ---------------------------------------------------------

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        if not self.settings.enabled:
            task_status.started()
            return
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._keep_worker)
            clock = self.engine.clock
            if isinstance(clock, SteppedClock):
                self._schedule(clock)
            else:
                nursery.start_soon(self._timer)
            task_status.started()

    async def _keep_worker(self) -> None:
        backoff = self.settings.restart_min_s
        while True:
            started = time.monotonic()
            try:
                await self._serve_one_worker()
            except (OSError, PlannerUnavailable) as exc:
                self.last_exit = str(exc)
            self._ready = trio.Event()
            self._proc = self._lines = None
            self._gone.set()
            self._gone = trio.Event()
            self.pid = None
            self.restarts += 1
            self.state = "restarting"
            if time.monotonic() - started > STABLE_AFTER_S:
                backoff = self.settings.restart_min_s
            log.warning("planner_worker_exited", reason=self.last_exit, restart_in_s=backoff, restarts=self.restarts)
            await trio.sleep(backoff)
            backoff = min(backoff * 2, self.settings.restart_max_s)

    async def _serve_one_worker(self) -> None:
        self.state = "starting"
        proc = await trio.lowlevel.open_process(list(WORKER), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        try:
            assert proc.stdout is not None
            lines = _Lines(proc.stdout)
            hello = None
            with trio.move_on_after(self.settings.start_timeout_s):
                hello = _decoder.decode(await lines.next())
            if isinstance(hello, wire.Ready):
                # outside the start timeout: a ready worker lives until it exits (or a run
                # that timed out kills it), however long that is
                self.pid = hello.pid
                self._proc, self._lines = proc, lines
                self.state = "ready"
                self._ready.set()
                log.info("planner_worker_ready", pid=hello.pid)
                await proc.wait()
            if proc.returncode is None:
                self.last_exit = "did not start in time"
            else:
                self.last_exit = f"exited with status {proc.returncode}"
        finally:
            with trio.CancelScope(shield=True):
                if proc.returncode is None:
                    proc.kill()
                await proc.wait()

    # --- runs -------------------------------------------------------------------------

    def inputs(self, only: str | None) -> list[wire.SkuInput]:
        skus = self.engine.world.skus
        if only is not None:
            chosen = [skus[only]] if only in skus else []
        else:
            chosen = [s for s in skus.values() if s.policy.mode != "manual"]
        return [
            wire.SkuInput(
                sku=s.sku,
                mode=s.policy.mode,
                service_level=self.settings.service_level if s.policy.service_level is None else s.policy.service_level,
                own_target=s.policy.service_level is not None,
                reorder_point=s.policy.reorder_point,
                order_up_to=s.policy.order_up_to,
                safety_stock=s.policy.safety_stock,
                lead_time_days=s.policy.lead_time_days,
                moq=s.policy.moq,
                pack_size=s.policy.pack_size,
                source=s.policy.source,
            )
            for s in chosen
        ]

    async def run_now(
        self, only: str | list[str] | None = None, cause: str = "planner.run", *, stepped_schedule: bool = False
    ) -> dict:
        """One run over every auto / suggest SKU (or the ones named); returns its summary
        once its events are durable. Raises Conflict (disabled, unavailable).

        ``stepped_schedule`` (a scheduled run under the stepped clock, see the module
        docstring): a run that got no answer (``WorkerLost``) is sent again to the next
        worker, up to ``STEPPED_ATTEMPTS`` tries, and each try waits for a starting worker
        as long as the keeper lets it start (``start_timeout_s``), not ``run_timeout_s``."""
        attempts = STEPPED_ATTEMPTS if stepped_schedule else 1
        ready_s = self.settings.start_timeout_s if stepped_schedule else self.settings.run_timeout_s
        if not self.settings.enabled:
            raise Conflict("planner_disabled", "the planner is off ([planner] enabled = false)")
        if isinstance(only, str) and only not in self.engine.world.skus:
            raise NotFound("unknown_sku", f"SKU {only!r} is not known")
        async with self._lock:
            self._run_ids += 1  # once per run, not per try: the correlation ids replay alike
            for attempt in range(1, attempts + 1):
                lost, gone = self._proc, self._gone  # the worker this attempt goes to (None: not ready yet)
                try:
                    return await self._run_locked(only, cause, ready_s)
                except WorkerLost as exc:
                    if attempt == attempts:
                        return self._failed(exc)
                    log.warning("planner_run_lost", cause=cause, reason=str(exc), attempt=attempt, of=attempts)
                    if lost is not None and self._proc is lost:
                        await gone.wait()  # the keeper has seen it go: the next attempt waits for its successor
                except PlannerUnavailable as exc:
                    return self._failed(exc)
            raise AssertionError("unreachable: the last attempt returns or raises")

    def _failed(self, exc: PlannerUnavailable) -> NoReturn:
        self.failed_runs += 1
        self.last_error = str(exc)
        raise Conflict("planner_unavailable", f"the planner worker is not available: {exc}") from None

    async def _run_locked(self, only: str | list[str] | None, cause: str, ready_s: float) -> dict:
        s = self.settings
        with trio.move_on_after(ready_s):
            await self._ready.wait()
        if not self._ready.is_set() or self._proc is None or self._lines is None:
            raise WorkerLost(f"worker {self.state}")
        proc, lines = self._proc, self._lines
        started = time.monotonic()
        if isinstance(only, list):
            named = set(only)
            inputs = [i for i in self.inputs(None) if i.sku in named]
        else:
            inputs = self.inputs(only)
        now = self.engine.now()
        await self.journal.flush()
        req = wire.RunRequest(
            run_id=self._run_ids,
            db=self.db,
            upto_seq=self.journal.committed_seq,
            now=now,
            params=wire.Params(
                history_days=s.history_days,
                min_history_days=s.min_history_days,
                max_change=s.max_change,
                review_days=s.review_days,
                handling_days=s.handling_days,
                cycle_days=s.cycle_days,
                min_lead_times=s.min_lead_times,
                service_target=s.service_target,
                site_service_level=s.service_level,
                service_floor=s.service_floor,
                # a run over some SKUs plans them at the last whole run's marginal
                site_marginal=None if only is None or self.site is None else self.site.marginal,
            ),
            skus=inputs,
        )
        self.state = "running"
        stepped = isinstance(self.engine.clock, SteppedClock)
        results: list[wire.SkuResult] = []
        tuned = 0
        reply = None
        try:
            assert proc.stdin is not None
            with trio.move_on_after(s.run_timeout_s):
                await proc.stdin.send_all(_encoder.encode(req) + b"\n")
                while True:
                    got = received(await lines.next())
                    if not isinstance(got, list):
                        reply = got
                        break
                    # each part applied as it comes: the SKU actors journal it while the
                    # worker plans the next part, and the loop serves others in between
                    results += got
                    tuned += await self._apply(got, cause, stepped)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise WorkerLost("the planner worker exited") from exc
        finally:
            if self.state == "running":
                self.state = "ready"
        if reply is None:
            proc.kill()  # hung: the keeper starts a new one
            raise WorkerLost(f"no complete answer within {s.run_timeout_s:g} s; the worker was restarted")
        if isinstance(reply, wire.RunFailed):
            raise PlannerUnavailable(reply.error)
        assert isinstance(reply, wire.RunReply)
        await self.journal.wait_durable(self.journal.last_seq)  # the run's events, all of them
        worker_s = reply.duration_s
        biased = sorted(r.sku for r in results if r.biased)
        if biased and isinstance(self.engine.clock, SteppedClock):
            self.engine.clock.at(now + BIAS_RECHECK_S, partial(self._quiet_run, biased, "planner.bias"))
        elif biased:
            self._bias_due = (now + BIAS_RECHECK_S, biased)
        self.runs += 1
        self.last_error = None
        kept = sum(1 for r in results if r.new is None)
        if reply.site is not None and only is None:
            self.site = reply.site
        self.last_run = {
            "run_id": reply.run_id,
            "at": iso_ts(now),
            "cause": cause,
            "skus": len(results),
            "tuned": tuned,
            "kept": kept,
            "biased": len(biased),
            "read_upto": reply.read_upto,
            "worker_s": round(worker_s, 3),
            "duration_s": round(time.monotonic() - started, 3),
            "site": None if reply.site is None else msgspec.to_builtins(reply.site),
        }
        log.info("planner_run", **self.last_run)
        return self.last_run

    async def _apply(self, results: list[wire.SkuResult], cause: str, stepped: bool) -> int:
        """Each result to its SKU actor; returns, once every actor has handled its own (and,
        under the stepped clock, decided what it caused), how many policy_tuned events they
        wrote (durable later: the run waits for them once).

        Without the stepped clock each SKU actor is a task of its own: a part goes out at
        once and each actor handles its result in a loop step of its own. Under it the SKU
        actors are one task (``Router(serial=True)``) that would handle a whole part in one
        step (a tuned SKU's promise recheck walks its backorder queue: 16 of them held the
        loop 30-40 ms), and every request waits until the actors are idle (``Stepper.quiet``).
        So there the SKUs go one at a time: each SKU's result, and what it caused (a settle's
        fills, the loans they ask for), is decided before the next is sent, whenever the
        worker sends its part, and the waiting requests are served in between."""
        self.results.update((r.sku, r) for r in results)
        todo = [r for r in results if r.new is not None]
        left = len(todo)
        journaled = 0
        finished = trio.Event()

        def done(outcome: str | None) -> None:
            nonlocal left, journaled
            left -= 1
            journaled += outcome is not None
            if not left:
                finished.set()

        corr = f"{cause}-{self._run_ids}"
        for r in todo:
            self.router.send(r.sku, Tune(result=r, done=done, corr=corr, actor=PLANNER))
            if stepped:
                await self._until_idle()
        if todo:
            await finished.wait()
        else:  # a part of SKUs kept as they were: still a turn for the others between parts
            await trio.lowlevel.checkpoint()
        return journaled

    async def _until_idle(self) -> None:
        """Until no actor has a message waiting; then two turns for the requests waiting for
        that (``Stepper.quiet``; trio may run this task first in a batch: the second turn is
        theirs) before anything more is sent."""
        while self.router.busy():
            await trio.lowlevel.checkpoint()
        await trio.lowlevel.checkpoint()
        await trio.lowlevel.checkpoint()

    async def _quiet_run(self, only: str | list[str] | None, cause: str) -> None:
        """A scheduled run: a failure is logged and shown in health, never raised (the
        clock's advance and the timer go on; every SKU keeps its levels). Under the stepped
        clock a run the worker did not complete is sent again (see the module docstring)."""
        try:
            await self.run_now(only, cause, stepped_schedule=isinstance(self.engine.clock, SteppedClock))
        except Conflict as exc:
            log.warning("planner_run_failed", cause=cause, reason=exc.message)

    # --- schedule ----------------------------------------------------------------------

    def next_due(self, now: float) -> float:
        interval = self.settings.interval_hours * 3600.0
        return (math.floor(now / interval) + 1) * interval

    def _schedule(self, clock: SteppedClock) -> None:
        async def due() -> None:
            await self._quiet_run(None, "planner.schedule")
            self._schedule(clock)

        clock.at(self.next_due(clock.now()), due)

    async def _timer(self) -> None:
        clock = self.engine.clock
        speed = clock.speed if isinstance(clock, SimClock) else 1.0
        due = self.next_due(clock.now())
        while True:
            now = clock.now()
            if self._bias_due is not None and now >= self._bias_due[0]:
                skus, self._bias_due = self._bias_due[1], None
                await self._quiet_run(skus, "planner.bias")
            if now >= due:
                await self._quiet_run(None, "planner.schedule")
                due = self.next_due(clock.now())
                continue
            await trio.sleep(min(max((due - now) / speed, 0.01), 60.0))

    # --- views --------------------------------------------------------------------------

    def status(self) -> dict:
        world = self.engine.world
        modes = {"manual": 0, "auto": 0, "suggest": 0}
        for s in world.skus.values():
            modes[s.policy.mode] += 1
        clock = self.engine.clock
        return {
            "enabled": self.settings.enabled,
            "worker": self.health(),
            "interval_hours": self.settings.interval_hours,
            "next_run": iso_ts(self.next_due(clock.now())) if self.settings.enabled else None,
            "runs": self.runs,
            "failed_runs": self.failed_runs,
            "last_run": self.last_run,
            "last_error": self.last_error,
            "modes": modes,
        }

    def health(self) -> dict:
        return {"state": self.state, "pid": self.pid, "restarts": self.restarts, "last_exit": self.last_exit}

    def explain(self, sku: str) -> dict:
        world = self.engine.world
        s = world.skus.get(sku)
        if s is None:
            raise NotFound("unknown_sku", f"SKU {sku!r} is not known")
        return {"sku": sku, **explain_view(s.policy, world.tuned.get(sku), self.results.get(sku), self.settings)}


def received(line: bytes) -> list[wire.SkuResult] | wire.Ready | wire.RunReply | wire.RunFailed:
    """One line of the worker's answer to a run: a part of its results (kept compact from
    here on, see ``compact``: the decoded lists die with the message), or its end."""
    msg = _decoder.decode(line)
    if isinstance(msg, wire.Results):
        return [compact(r) for r in msg.results]
    return msg


def compact(result: wire.SkuResult) -> wire.SkuResult:
    """A SKU's latest result as kept in memory until the next run: its daily series as
    arrays of doubles, which the garbage collector visits as one object each. As decoded
    lists (two per SKU, 60 distinct floats) a run's 2,000 results were visited float by
    float by the next young collection: 7-8 ms of one loop step (bench/planner.py)."""
    return msgspec.structs.replace(result, forecast=array("d", result.forecast), history=array("d", result.history))


def explain_view(policy, tuned, result: wire.SkuResult | None, settings: PlannerSettings) -> dict:
    """The planner's part of a SKU: its mode and target, the last policy_tuned (journaled)
    and the latest run's forecast and reasons (memory, since the daemon started).
    ``service_level``: the SKU's own target, or the site's; under service_target "site"
    the one it was last planned at is ``latest.service_level``."""
    own = policy.service_level is not None
    return {
        "mode": policy.mode,
        "service_level": policy.service_level if own else settings.service_level,
        "service_target": "sku" if own else settings.service_target,
        "levels": {
            "reorder_point": policy.reorder_point,
            "order_up_to": policy.order_up_to,
            "safety_stock": policy.safety_stock,
        },
        "last_tuned": None
        if tuned is None
        else {
            "at": iso_ts(tuned.ts),
            "mode": tuned.mode,
            "applied": tuned.applied,
            "old": msgspec.to_builtins(tuned.old),
            "new": msgspec.to_builtins(tuned.new),
            "demand_class": tuned.demand_class,
            "model": tuned.model,
            "forecast": msgspec.to_builtins(tuned.forecast),
            "reasons": tuned.reasons,
        },
        "latest": None
        if result is None
        else {
            "demand_class": result.demand_class,
            "model": result.model,
            "proposed": None if result.new is None else msgspec.to_builtins(result.new),
            "forecast": list(result.forecast),
            "history": list(result.history),
            "tracking_signal": result.tracking_signal,
            "service_level": result.service_level or None,
            "reasons": result.reasons,
        },
    }
