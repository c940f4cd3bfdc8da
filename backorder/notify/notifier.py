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
channel's breaker. Failures to send back off exponentially with jitter
(``backoff_base_s * 2**(attempt-1)``, at most ``backoff_max_s``, +-``jitter``); after
``max_attempts`` the notice is ``dead`` until ``notifications.retry``. Each channel has a
circuit breaker: ``breaker_failures`` failures to send in a row open it for
``breaker_reset_s``, then one attempt probes it (a notice waiting for a breaker uses none of
its attempts). One worker per channel sends one notice at a time, earliest due first (a
heap per channel). Only committed notices are sent: the notifier learns of new ones from
the journal's commit listener, never before their cause is durable.

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

import structlog
import trio

from backorder.actors import events as ev
from backorder.actors import notice_rules
from backorder.actors.engine import Engine
from backorder.clock import SteppedClock
from backorder.config.settings import NotificationSettings
from backorder.daemon.journal import NOTICE_KEYS
from backorder.errors import Conflict, NotFound
from backorder.notify.channels import Channel, CredentialError, RejectedError
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
        self.tripped = False  # opened by a credential failure, not yet reported as fixed

    def failed(self) -> None:
        self.failures += 1
        if self.failures >= self.limit:
            self.open_until = trio.current_time() + self.reset_s

    def trip(self) -> bool:
        """Open at once (the receiver refused our credentials); True if it was not open yet,
        i.e. this failure is the one to report."""
        first = self.state != "open" and not self.tripped
        self.failures = max(self.failures, self.limit)
        self.open_until = trio.current_time() + self.reset_s
        self.tripped = True
        return first

    def succeeded(self) -> None:
        self.failures = 0
        self.open_until = 0.0
        self.tripped = False

    @property
    def state(self) -> str:
        if self.failures < self.limit:
            return "closed"
        return "open" if trio.current_time() < self.open_until else "half_open"


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
        self.credential_failures = 0  # breaker openings for refused credentials (each reported once)
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
        self.renderer = renderer or Renderer(cfg.templates_dir)
        for name in self.channels:
            breaker = self.breakers.setdefault(name, Breaker(cfg.breaker_failures, cfg.breaker_reset_s))
            breaker.limit, breaker.reset_s = cfg.breaker_failures, cfg.breaker_reset_s

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
        self._schedule(n.channel, notice_id, self._now() if at is None else at)

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
        if self.stepped is not None:  # no tasks: the clock's agenda runs the work
            if self.cfg.routes:
                self.stepped.at(self.stepped.now(), self._depletion_stepped)
            task_status.started()
            return
        async with trio.open_nursery() as nursery:
            for name in self.channels:
                nursery.start_soon(self._worker, name)
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
                receipt = await self.channels[channel].send(n.event, rendered)
            except RejectedError as exc:  # the receiver refused the request itself: a retry cannot help
                error, dead = f"{type(exc).__name__}: {exc}", True
            except CredentialError as exc:  # every notice to it would fail alike: stop them all, report once
                error, dead = f"{type(exc).__name__}: {exc}", False
                if self.breakers[channel].trip():
                    self.credential_failures += 1
                    log.error("channel_credentials_refused", channel=channel, notice_id=notice_id, error=str(exc))
                self._schedule(channel, notice_id, self._now())  # waits behind the open breaker
                engine.context("notifier", notice_id)
                engine.emit(
                    ev.NoticeFailed(
                        ts=engine.now(), notice_id=notice_id, order_id=n.order_id, attempt=attempt, error=error[:500]
                    )
                )
                return
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
        if notice.audience == "carrier":  # a request to a carrier's API, built by its adapter
            return Rendered(subject=notice.subject, text="", html="")
        rendered = self.renderer.render(notice)
        if notice.kind == "purchase_order":
            from backorder.documents.purchase_order import attachments  # only supplier notices need it

            rendered.attachments = attachments(self.engine.world, notice.request_id)
        return rendered

    # --- operations -------------------------------------------------------------------

    def retry(self, notice_id: str | None, corr: str) -> list[str]:
        """Dead notices (one, or all) go back to pending with fresh attempts."""
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
        engine.context("notifications.retry", corr)
        for nid in ids:
            engine.emit(ev.NoticeRetried(ts=engine.now(), notice_id=nid, order_id=world.notices[nid].order_id))
        for breaker in self.breakers.values():
            breaker.succeeded()  # an operator asked for a retry: probe at once
        for wake in self.wakes.values():
            wake.set()  # a worker waiting out an open breaker looks again now
        return ids

    def statistics(self) -> dict:
        return {name: b.state for name, b in self.breakers.items()}

    async def _depletion_checks(self) -> None:
        """Periodically warn customers whose lines wait for an overdue supply."""
        while True:
            engine = self.engine
            engine.context("depletion_check", "notifier")
            notice_rules.depletion(engine.world, engine.emit, engine.now())
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
            engine.context("depletion_check", "notifier")
            notice_rules.depletion(engine.world, engine.emit, now)
            self._checked = (mark[0], engine.journal.last_seq)
        clock.at(now + self.cfg.depletion_check_s, self._depletion_stepped)
