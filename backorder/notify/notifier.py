"""The notifier actor: delivers the outbox's pending notices, exactly once as far as the
receiver can tell.

For each attempt: journal ``notice_attempted`` and wait until it is durable; render; send
through the notice's channel with its stable id; journal ``notice_delivered`` or
``notice_failed``. A delivered notice is never sent again (its status is in the model,
rebuilt from the journal). After a crash, a notice whose last attempt has no recorded
outcome is still ``pending`` and is sent again with the same id (Message-ID /
Idempotency-Key / file name), so the receiver can drop the repeat.

A notice that cannot be rendered (a template error) is ``dead`` at once, with the error:
the content is wrong, not the receiver, so it is neither retried nor counted against the
channel's breaker; so is one the receiver refuses as wrong (``Rejected``: a 4xx from a
sales channel's API, with its message). A receiver that refuses our credential
(``CredentialRejected``: 401/403) would refuse every notice alike: its breaker opens at
once, reported once (``channel_credential_rejected``, ``credential_errors``), and the
notice stays pending. A receiver still at work on a request it took (``NotYet``: an Amazon
feed not processed yet) is asked again with the same backoff, without charging its breaker
and without ever going dead for it (the receiver ends its work: Amazon's feed ends DONE,
FATAL or CANCELLED).
Failures to send back off exponentially with jitter
(``backoff_base_s * 2**(attempt-1)``, at most ``backoff_max_s``, +-``jitter``); after
``max_attempts`` the notice is ``dead`` until ``notifications.retry``. Each channel has a
circuit breaker: ``breaker_failures`` failures to send in a row open it for
``breaker_reset_s``, then one attempt probes it (a notice waiting for a breaker uses none of
its attempts). One worker per channel sends one notice at a time, earliest due first (a
heap per channel). Only committed notices are sent: the notifier learns of new ones from
the journal's commit listener, never before their cause is durable.

Write-back notices (audience ``channel``, ``backorder.writeback``) go to one channel per
sales channel account, ``CHANNEL/ACCOUNT``, each with its own worker and breaker; their
adapters build the request from the notice's data (no template). Stock levels are queued
here, by the stock sync: a journal listener marks the SKUs of committed events dirty, and
every ``[channels.NAME] stock_sync_s`` ``writeback_rules.stock_levels`` queues the changed
ones; a level that a newer one for the same account and SKU superseded is left out when
its notice is sent (all of them: the notice is recorded delivered without being sent).

Under the stepped clock (``clock.SteppedClock``) the same work runs in engine time, on the
clock's agenda instead of in worker tasks: a committed notice is due at its engine time,
a retry at the failure's engine time plus the backoff (its jitter drawn from a generator
seeded by the notice and the attempt, so two runs wait alike), the depletion check every
``depletion_check_s`` of engine time. Nothing is sent between advances; ``clock.advance``
sends, one notice at a time in due order, everything due by its target. The breakers stay
in wall time (they protect a receiver on the network): a notice due while its channel's
breaker is open is parked, uses no attempt, and is due again at the first advance after
the breaker half-opens.
"""

from __future__ import annotations

import heapq
import random
from functools import partial

import msgspec
import structlog
import trio

from backorder.actors import depletion_rules, notice_rules, promise_rules, writeback_rules
from backorder.actors import events as ev
from backorder.actors.engine import Engine
from backorder.clock import SteppedClock
from backorder.config.settings import NotificationSettings
from backorder.daemon.journal import NOTICE_KEYS
from backorder.errors import Conflict, NotFound
from backorder.notify.channels import Channel, CredentialRejected, NotYet, Rejected
from backorder.notify.filedrop import FileDropChannel
from backorder.notify.render import Rendered, Renderer, RenderError
from backorder.notify.smtp import SmtpChannel
from backorder.notify.webhook import WebhookChannel
from backorder.timeutil import iso_date

log = structlog.get_logger()


_WAKERS = frozenset({"notice_queued", "notice_retried"})


def _render_failure(exc: Exception) -> str:
    """The error a notice that could not be rendered is dead with."""
    if isinstance(exc, RenderError):
        return str(exc)  # "template error in KIND.txt: SecurityError: ..."
    return f"rendering failed: {type(exc).__name__}: {exc}"


class Breaker:
    def __init__(self, failures: int, reset_s: float) -> None:
        self.limit = failures
        self.reset_s = reset_s
        self.failures = 0
        self.open_until = 0.0
        self.credential_error = ""  # set while open because the receiver refused our credential

    def trip(self, credential_error: str) -> bool:
        """Open at once (every attempt would fail alike); True the first time for this
        credential problem, so it is reported once, not once per notice or probe."""
        first = not self.credential_error
        self.failures = max(self.failures, self.limit)
        self.open_until = trio.current_time() + self.reset_s
        self.credential_error = credential_error
        return first

    def failed(self) -> None:
        self.failures += 1
        if self.failures >= self.limit:
            self.open_until = trio.current_time() + self.reset_s

    def succeeded(self) -> None:
        self.failures = 0
        self.open_until = 0.0
        self.credential_error = ""

    @property
    def state(self) -> str:
        if self.failures < self.limit:
            return "closed"
        return "open" if trio.current_time() < self.open_until else "half_open"


async def depletion_check(engine: Engine, lines: int = depletion_rules.SLICE_LINES) -> None:
    """The periodic check (depletion warnings, then promised dates moved by an overdue or
    missing supply), one slice of SKUs at a time (``depletion_rules.slices``) with a
    checkpoint between slices: whole, it held the loop 0.27-0.44 s at 10,000 SKUs under
    priority allocation (README "The depletion check"). Other actors' steps may run between
    slices, so each slice names its own context and is decided at the engine time it runs;
    under the stepped clock nothing else changes the model meanwhile (requests wait for the
    advance, and the advance for this check), so a run's journal does not depend on where
    the slices fall."""
    world = engine.world
    while depletion_rules.counting(world):  # the recent demand, in steps (all of it after a restart)
        await trio.lowlevel.checkpoint()
    waiting = depletion_rules.waiting_skus(world)
    await trio.lowlevel.checkpoint()
    for skus in depletion_rules.slices(waiting, lines):
        engine.context("depletion_check", "notifier")
        now = engine.now()
        notice_rules.depletion(world, engine.emit, now, skus)
        promise_rules.overdue(world, engine.emit, now, skus)
        await trio.lowlevel.checkpoint()


class Notifier:
    """The notifier actor over ``engine`` (the model with its pending notices, the journal
    whose commits it follows, ``emit`` for the attempts' outcomes), with the settings of
    ``[notifications]`` (``cfg``; a reload gives new ones to ``configure``)."""

    def __init__(
        self,
        engine: Engine,
        cfg: NotificationSettings,
        channels: dict[str, Channel] | None = None,
        renderer: Renderer | None = None,
        carrier: Channel | None = None,
    ) -> None:
        self.engine = engine
        self.channels: dict[str, Channel] = channels or {}
        self.breakers: dict[str, Breaker] = {}
        self.configure(cfg, renderer)
        if carrier is not None:  # remote carriers' labels: the outbox channel "carrier"
            self.channels[carrier.name] = carrier
            self.breakers[carrier.name] = Breaker(cfg.breaker_failures, cfg.breaker_reset_s)
        # channel -> notice_id -> trio time it is due (pending, committed notices only)
        self.due: dict[str, dict[str, float]] = {name: {} for name in self.channels}
        self.heaps: dict[str, list[tuple[float, str]]] = {name: [] for name in self.channels}
        self.wakes = {name: trio.Event() for name in self.channels}
        self.random = random.Random()
        clock = engine.clock
        # engine-time scheduling on the clock's agenda (see the module docstring)
        self.stepped: SteppedClock | None = clock if isinstance(clock, SteppedClock) else None
        self.parked: dict[str, set[str]] = {name: set() for name in self.channels}  # stepped: behind an open breaker
        self._nursery: trio.Nursery | None = None  # workers of channels added by a reload start here
        # sales channel -> SKUs whose stock changed since its last stock sync (write-back)
        self.stock_dirty: dict[str, set[str]] = {}
        self._checked: tuple[str, int] | None = None  # stepped: (date, last seq) of the last depletion check

    def configure(self, cfg: NotificationSettings, renderer: Renderer | None = None) -> None:
        """Channel settings (SMTP, webhook, file drop), templates and breaker settings, at
        start and on reload; they apply to the next attempt. A channel object of another type
        (one a test injected) is left alone; breakers keep their state."""
        self.cfg = cfg
        fresh: dict[str, Channel] = {
            "email": SmtpChannel(cfg.smtp, cfg.message_id_domain),
            "webhook": WebhookChannel(cfg.webhook),
            "file": FileDropChannel(cfg.file),
        }
        if not self.channels:
            self.channels.update(fresh)
        for name, channel in fresh.items():
            if type(self.channels.get(name)) is type(channel):
                self.channels[name] = channel
        # write-back: one channel per sales channel account (``CHANNEL/ACCOUNT``), its own breaker
        from backorder.threepl import adapters as threepl_adapters
        from backorder.writeback import adapters

        outbound = adapters(self.engine.world.settings, self.engine) | threepl_adapters(
            self.engine.world.settings, self.engine
        )
        for name, channel in outbound.items():
            if name not in self.channels or type(self.channels[name]) is type(channel):
                self.channels[name] = channel
                self._add_channel(name)
        self.renderer = renderer or Renderer(cfg.templates_dir)
        for name in self.channels:
            breaker = self.breakers.setdefault(name, Breaker(cfg.breaker_failures, cfg.breaker_reset_s))
            breaker.limit, breaker.reset_s = cfg.breaker_failures, cfg.breaker_reset_s

    def _add_channel(self, name: str) -> None:
        """The queues of a channel added after start (a write-back account a reload added)."""
        if not hasattr(self, "due") or name in self.due:
            return  # at start, __init__ makes them for every channel
        self.due[name], self.heaps[name], self.parked[name] = {}, [], set()
        self.wakes[name] = trio.Event()
        if self._nursery is not None:
            self._nursery.start_soon(self._worker, name)
        for notice_id in list(self.engine.world.notices_pending):  # queued before it had a channel
            self._enqueue(notice_id)

    # --- feeding ------------------------------------------------------------------

    def on_commit(self, batch) -> None:
        """Journal listener: newly durable notices (and retried ones) become due now; under
        the stepped clock, at the engine time they were queued (or retried) at."""
        stepped = self.stepped is not None
        for row in batch:
            if row[2] in _WAKERS:
                self._enqueue(NOTICE_KEYS.decode(row[7]).notice_id, row[1] if stepped else None)

    def _enqueue(self, notice_id: str, at: float | None = None) -> None:
        n = self.engine.world.notices.get(notice_id)
        if n is None or n.status != "pending" or n.channel not in self.due:
            return
        at = self._now() if at is None else at
        if n.kind == "purchase_order":
            at = self._after_window(n.request_id, at)
        self._schedule(n.channel, notice_id, at)

    def _after_window(self, request_id: str | None, at: float) -> float:
        """A purchase order that takes lines for ``[procurement] consolidate_hours`` goes
        out when that window closes (``Request.send_after``, engine time), with every line."""
        r = self.engine.world.requests.get(request_id) if request_id else None
        if r is None or r.send_after is None:
            return at
        if self.stepped is not None:  # due times are engine times
            return max(at, r.send_after)
        wait = (r.send_after - self.engine.now()) / getattr(self.engine.clock, "speed", 1.0)
        return max(at, self._now() + wait)

    def _now(self) -> float:
        """The time notices are due in: trio's clock, or engine time under the stepped clock."""
        return self.stepped.now() if self.stepped is not None else trio.current_time()

    def _schedule(self, channel: str, notice_id: str, at: float) -> None:
        # ``due`` is the truth; the heap (or the agenda) may hold stale entries, dropped when they surface
        self.due[channel][notice_id] = at
        if self.stepped is not None:
            self.stepped.at(at, partial(self._due_stepped, channel, notice_id, at))
            return
        heapq.heappush(self.heaps[channel], (at, notice_id))
        self.wakes[channel].set()

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        self.engine.journal.listeners.append(self.on_commit)
        for notice_id in list(self.engine.world.notices_pending):  # all durable at start-up
            self._enqueue(notice_id)
        if self._stock_channels():
            self.engine.journal.listeners.append(self._stock_changed)
        if self.stepped is not None:  # no tasks: the clock's agenda runs the work
            if self.cfg.routes:
                self.stepped.at(self.stepped.now(), self._depletion_stepped)
            for channel, period in self._stock_channels().items():
                self.stepped.at(self.stepped.now() + period, partial(self._stock_stepped, channel, period))
            task_status.started()
            return
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for name in self.channels:
                nursery.start_soon(self._worker, name)
            for channel, period in self._stock_channels().items():
                nursery.start_soon(self._stock_sync, channel, period)
            if self.cfg.routes:  # with no route configured, nobody could be warned
                nursery.start_soon(self._depletion_checks)
            task_status.started()

    # --- delivering ---------------------------------------------------------------

    async def _worker(self, channel: str) -> None:
        due, heap, breaker = self.due[channel], self.heaps[channel], self.breakers[channel]
        while True:
            while heap and due.get(heap[0][1]) != heap[0][0]:
                heapq.heappop(heap)  # delivered, dead or rescheduled since it was pushed
            if not heap:
                await self.wakes[channel].wait()
                self.wakes[channel] = trio.Event()
                continue
            at, notice_id = heap[0]
            at = max(at, breaker.open_until)
            wait = at - trio.current_time()
            if wait > 0:
                with trio.move_on_after(wait):  # a new notice (or a retry) may be due sooner
                    await self.wakes[channel].wait()
                    self.wakes[channel] = trio.Event()
                continue
            await self.deliver(channel, notice_id)

    async def _due_stepped(self, channel: str, notice_id: str, at: float) -> None:
        """Stepped clock: the agenda item of one notice (a no-op if it was rescheduled since)."""
        if self.due[channel].get(notice_id) != at:
            return
        if self.breakers[channel].state == "open":
            self.parked[channel].add(notice_id)
            return
        await self.deliver(channel, notice_id)

    def unpark(self) -> None:
        """Stepped clock, at the start of an advance: notices parked behind a breaker that
        is no longer open are due again now."""
        for channel, parked in self.parked.items():
            if parked and self.breakers[channel].state != "open":
                for notice_id in sorted(parked):
                    if notice_id in self.due[channel]:
                        self._schedule(channel, notice_id, self._now())
                parked.clear()

    def backoff(self, attempt: int, notice_id: str | None = None) -> float:
        cfg = self.cfg
        base = min(cfg.backoff_base_s * 2 ** (attempt - 1), cfg.backoff_max_s)
        # stepped: the same jitter in every run (a str seed is hashed with SHA-512, not hash())
        rng = self.random if self.stepped is None or notice_id is None else random.Random(f"{notice_id}/{attempt}")
        return base * (1 + rng.uniform(-cfg.jitter, cfg.jitter))

    async def deliver(self, channel: str, notice_id: str) -> None:
        engine, due = self.engine, self.due[channel]
        n = engine.world.notices.get(notice_id)
        if n is None or n.status != "pending" or n.event is None:
            due.pop(notice_id, None)
            return
        notice = n.event
        if notice.audience == "channel" and notice.kind == "stock_level":
            # an older stock level must not overwrite a newer one: send only what is still current
            live = writeback_rules.live_levels(engine.world, notice)
            if not live:
                engine.context("notifier", notice_id)
                engine.emit(
                    ev.NoticeDelivered(
                        ts=engine.now(),
                        notice_id=notice_id,
                        order_id=None,
                        attempt=n.attempts,
                        response="superseded by newer levels",
                    )
                )
                due.pop(notice_id, None)
                return
            notice = msgspec.structs.replace(notice, data={**notice.data, "levels": live})
        attempt = n.attempts + 1
        engine.context("notifier", notice_id)
        engine.emit(
            ev.NoticeAttempted(
                ts=engine.now(), notice_id=notice_id, order_id=n.order_id, attempt=attempt, channel=channel
            )
        )
        await engine.journal.wait_durable(engine.journal.last_seq)
        error: str | None = None  # set when the attempt failed
        dead = False
        try:
            rendered = self.render(n.event)
        except Exception as exc:  # the content is wrong, not the receiver: no retry can fix it
            error, dead = _render_failure(exc), True
            if not isinstance(exc, RenderError):  # a bug, not a template: keep its traceback
                log.error("notice_render_failed", notice_id=notice_id, channel=channel, exc_info=True)
        else:
            try:
                receipt = await self.channels[channel].send(notice, rendered)
            except Rejected as exc:  # the receiver said the request is wrong: no retry can fix it
                error, dead = f"{type(exc).__name__}: {exc}", True
            except CredentialRejected as exc:  # every notice to it would fail alike
                error = f"{type(exc).__name__}: {exc}"
                if self.breakers[channel].trip(str(exc)):
                    log.error("channel_credential_rejected", channel=channel, error=str(exc), breaker="open")
            except NotYet as exc:  # the receiver is still at work on it: asked again later, its breaker spared
                error = f"{type(exc).__name__}: {exc}"  # never dead for it: the receiver ends its work
            except Exception as exc:  # any failure of the receiver is a failed attempt, counted by its breaker
                error, dead = f"{type(exc).__name__}: {exc}", attempt >= self.cfg.max_attempts
                self.breakers[channel].failed()
        if error is not None:
            engine.context("notifier", notice_id)
            engine.emit(
                ev.NoticeFailed(
                    ts=engine.now(),
                    notice_id=notice_id,
                    order_id=n.order_id,
                    attempt=attempt,
                    error=error[:500],
                    dead=dead,
                )
            )
            if dead:
                due.pop(notice_id, None)
            else:
                self._schedule(channel, notice_id, self._now() + self.backoff(attempt, notice_id))
            log.warning("notice_failed", notice_id=notice_id, channel=channel, attempt=attempt, error=error, dead=dead)
            return
        engine.context("notifier", notice_id)
        after = getattr(self.channels[channel], "delivered", None)
        if after is not None:  # the carrier channel ships what it bought, in this same commit
            after(n.event)
        engine.emit(
            ev.NoticeDelivered(
                ts=engine.now(), notice_id=notice_id, order_id=n.order_id, attempt=attempt, response=receipt[:200]
            )
        )
        self.breakers[channel].succeeded()
        due.pop(notice_id, None)

    def render(self, notice: ev.NoticeQueued):
        """The notice's content (and a supplier notice's documents); raises RenderError for a template error."""
        if notice.audience in ("channel", "carrier"):  # a request to an API, built by its adapter from ``data``
            return Rendered(subject=notice.subject, text="", html="")
        rendered = self.renderer.render(notice)
        if notice.kind == "purchase_order":
            from backorder.documents.purchase_order import attachments  # only supplier notices need it

            rendered.attachments = attachments(self.engine.world, notice.request_id)
        return rendered

    # --- operations -------------------------------------------------------------------

    def retry(self, notice_id: str | None, corr: str, actor: str) -> list[str]:
        """Dead notices (one, or all) go back to pending with fresh attempts, as ``actor`` asked."""
        world, engine = self.engine.world, self.engine
        if notice_id is not None:
            n = world.notices.get(notice_id)
            if n is None:
                raise NotFound("unknown_notice", f"no notice {notice_id!r}")
            if n.status != "dead":
                raise Conflict("notice_not_dead", f"notice {notice_id} is {n.status}; only dead notices are retried")
            ids = [notice_id]
        else:
            ids = [n.notice_id for n in world.notices.values() if n.status == "dead"]
        engine.context("notifications.retry", corr, actor)
        for nid in ids:
            engine.emit(ev.NoticeRetried(ts=engine.now(), notice_id=nid, order_id=world.notices[nid].order_id))
        for breaker in self.breakers.values():
            breaker.succeeded()  # an operator asked for a retry: probe at once
        for wake in self.wakes.values():
            wake.set()  # a worker waiting out an open breaker looks again now
        return ids

    def statistics(self) -> dict:
        return {name: b.state for name, b in self.breakers.items()}

    def credential_errors(self) -> dict[str, str]:
        """Channels whose breaker is open because the receiver refused our credential."""
        return {name: b.credential_error for name, b in self.breakers.items() if b.credential_error}

    # --- write-back stock levels ------------------------------------------------------

    def _stock_channels(self) -> dict[str, float]:
        """Sales channels with an account that receives stock levels -> their sync period."""
        settings = self.engine.world.settings
        names = {t.partition("/")[0] for t in writeback_rules.stock_targets(settings)}
        return {name: settings.channels[name].stock_sync_s for name in sorted(names)}

    def _stock_changed(self, batch) -> None:
        """Journal listener: mark the SKUs of committed events dirty for every stock sync.
        The only per-event cost of stock write-back: a set insert per committed SKU event,
        after the commit, never on the request path."""
        if not self.stock_dirty:
            return
        skus = {row[3] for row in batch if row[3] is not None}
        if skus:
            for dirty in self.stock_dirty.values():
                dirty |= skus

    def _stock_pass(self, channel: str) -> None:
        """Queue the changed available-to-sell of the SKUs dirty for ``channel`` to each of
        its accounts (``writeback_rules.stock_levels`` queues only real changes)."""
        engine = self.engine
        world = engine.world
        skus = self.stock_dirty.get(channel)
        if skus is None:  # the first pass: every SKU (a change while the daemon was down counts)
            skus = set(world.skus)
        self.stock_dirty[channel] = set()
        if not skus:
            return
        engine.context("stock_sync", channel)
        for target, wb in writeback_rules.stock_targets(world.settings).items():
            if target.partition("/")[0] == channel:
                writeback_rules.stock_levels(world, target, wb, skus, engine.emit, engine.now())

    async def _stock_sync(self, channel: str, period: float) -> None:
        """Coalescing: at most one stock level per SKU and account each ``stock_sync_s``."""
        while True:
            self._stock_pass(channel)
            await trio.sleep(period)

    async def _stock_stepped(self, channel: str, period: float) -> None:
        """Stepped clock: one stock pass, and the next one on the agenda."""
        assert self.stepped is not None
        self._stock_pass(channel)
        self.stepped.at(self.stepped.now() + period, partial(self._stock_stepped, channel, period))

    async def _depletion_checks(self) -> None:
        """Periodically warn customers whose lines wait for an overdue supply."""
        while True:
            await depletion_check(self.engine)
            await trio.sleep(self.cfg.depletion_check_s)

    async def _depletion_stepped(self) -> None:
        """Stepped clock: one depletion check, and the next one on the agenda. A check on
        the same date with nothing journaled since the last one would find nothing new:
        skipped, so a long advance costs one check per day, not one per period."""
        engine, clock = self.engine, self.stepped
        assert clock is not None
        now = clock.now()
        mark = (iso_date(now), engine.journal.last_seq)
        if mark != self._checked:
            await depletion_check(engine)
            self._checked = (mark[0], engine.journal.last_seq)
        clock.at(now + self.cfg.depletion_check_s, self._depletion_stepped)
