"""The intake service: one governed flow for the socket op, the webhook listener, the
import command and dead-letter retries.

``offer`` runs the stateless checks at once (size, signature, parse) and puts the
delivery in a bounded two-lane queue: rush / high-value / priority-customer deliveries in
the priority lane, which the workers always serve first and which has capacity reserved
(``priority_reserve``), so a flood of ordinary orders can neither starve nor block them.
When the queue is full the caller is told ``busy`` (HTTP: 503 + Retry-After) and nothing
is recorded: the source redelivers. Workers decide each order (dedupe, hold release,
cancellation, validation) and hand it to the order actor; deliveries for the same
(channel, account, order id) are decided one after the other.
"""

from __future__ import annotations

import base64
import itertools
import random
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import TYPE_CHECKING

import msgspec
import structlog
import trio

from backorder import protocol as p
from backorder.actors import events as ev
from backorder.actors import order_rules
from backorder.actors.engine import SYSTEM, intake_actor
from backorder.actors.router import route
from backorder.errors import InternalError, LimitError, Rejected
from backorder.intake import governance as g
from backorder.intake.adapters import account_hint
from backorder.intake.draft import Draft
from backorder.timeutil import iso_ts

if TYPE_CHECKING:
    from backorder.actors.engine import Engine
    from backorder.actors.router import Router
    from backorder.config.settings import IntakeSettings, Settings, ValidationProfile
    from backorder.daemon.server import Hub

log = structlog.get_logger()
# Draft kinds of a supplier's answer to a purchase order (X12 855 / 856): procurement ops
SUPPLY_KINDS = frozenset({"acknowledge", "cancel_supply", "ship_notice"})
OUTCOMES = ("accepted", "duplicate", "updated", "rejected", "ignored")
HTTP_STATUS = {
    "signature_missing": 401,
    "signature_invalid": 401,
    "body_too_large": 413,
    "malformed_body": 400,
    "account_mismatch": 403,
    "adapter_error": 500,
    "internal_error": 500,
}
# Where unauthenticated deliveries are counted when they name an account the configuration
# does not list: anyone can invent account names, and one Source each would grow without end.
UNVERIFIED = "(unverified)"
# Where deliveries are counted once ``max_sources`` (channel, account) pairs are tracked.
OTHER = "(other)"
SAMPLE_HEADERS = 32  # headers kept per bad-signature sample, each name and value truncated
SAMPLE_BODY = 2048  # body bytes kept per sample
_ENC = msgspec.json.Encoder(decimal_format="string")


class Source:
    """Health of one (channel, account): in memory, since the daemon started."""

    __slots__ = ("deliveries", "outcomes", "codes", "last_at", "bad_signatures", "samples", "silent_reported")

    def __init__(self, samples: int) -> None:
        self.deliveries = 0
        self.outcomes: Counter[str] = Counter()
        self.codes: Counter[str] = Counter()
        self.last_at = 0.0
        self.bad_signatures = 0
        self.samples: deque[dict] = deque(maxlen=samples)
        self.silent_reported = False


class Work:
    __slots__ = ("delivery", "drafts", "error", "done", "corr", "letter", "lane", "retried_by")

    def __init__(self, delivery, drafts, error, done, corr, letter=None, lane=1, retried_by=None) -> None:
        self.delivery = delivery
        self.drafts: list[Draft] = drafts
        self.error: Rejected | None = error
        self.done: Callable[[dict], None] | None = done
        self.corr = corr
        self.letter = letter
        self.lane = lane
        self.retried_by: str | None = retried_by  # who retried the dead letter (its journal actor)


class _Waiter:
    """A reply target for the order actor that a trio task can await."""

    __slots__ = ("event", "result")

    def __init__(self) -> None:
        self.event = trio.Event()
        self.result: tuple = ()

    def ok(self, result) -> None:
        self.result = (True, result)
        self.event.set()

    def error(self, code: str, message: str) -> None:
        self.result = (False, (code, message))
        self.event.set()


class IntakeService:
    def __init__(self, settings: Settings, engine: Engine, router: Router, hub: Hub) -> None:
        """``settings``: the running settings, read at each use; ``engine`` journals the
        decisions; ``router`` reaches the order actor; ``hub`` publishes the outcomes."""
        self.settings = settings
        self.engine = engine
        self.router = router
        self.hub = hub
        self.lanes: tuple[deque[Work], deque[Work]] = (deque(), deque())  # priority, normal
        self.pending = 0  # queued + being decided
        self.peak = 0
        self.busy_refusals = 0
        # carrier tracking webhooks (POST /carriers/NAME/tracking), by outcome
        self.carrier_webhooks = {"accepted": 0, "unchanged": 0, "ignored": 0, "bad_signature": 0, "unknown_shipment": 0}
        self.lot = trio.lowlevel.ParkingLot()
        self.keys: dict[tuple, trio.Event] = {}
        self.sources: dict[tuple[str, str], Source] = {}
        self.http_port: int | None = None
        self._corr = itertools.count(1)

    @property
    def cfg(self) -> IntakeSettings:
        """Read at each use, so a configuration reload (SIGHUP) applies at once; only
        ``workers`` is fixed at start."""
        return self.settings.intake

    # --- entry -------------------------------------------------------------------

    def offer(self, d: g.Delivery, done: Callable[[dict], None], corr: str | None = None) -> None:
        """Check and queue one delivery; ``done(result)`` is called with its outcome.
        Raises Rejected("busy") when the queue is full (nothing recorded) and
        Rejected("unknown_channel")."""
        settings = self.settings
        g.channel_settings(settings, d.channel)
        corr = corr or f"i{next(self._corr)}"
        account = g.resolve_account(d)
        try:
            g.check_size(d, self.cfg)
            prof = g.profile(settings, d.channel, account)
            g.check_signature(d, prof)
        except Rejected as exc:  # not authenticated: counted and sampled, never an order
            self._untrusted(d, account, exc)
            done(self._result(d.channel, account, [_item(Draft(), "rejected", exc.code, exc.message)]))
            return
        drafts, error = self._parse(d, prof, signed=d.via == "http")
        urgent = any(dr.rush or dr.priority or float(dr.value()) >= self.cfg.high_value for dr in drafts) or bool(
            prof.priority
        )
        limit = self.cfg.queue_size if urgent else max(self.cfg.queue_size - self.cfg.priority_reserve, 1)
        if self.pending >= limit:
            self.busy_refusals += 1
            raise LimitError(
                "busy", f"intake is saturated ({self.pending} deliveries waiting); retry in {self.cfg.retry_after_s} s"
            )
        self._enqueue(Work(d, drafts, error, done, corr, lane=0 if urgent else 1))

    def _parse(
        self, d: g.Delivery, prof: ValidationProfile | None = None, *, signed: bool
    ) -> tuple[list[Draft], Rejected | None]:
        """The drafts of a delivery, or the error its dead letter keeps; ``prof`` defaults
        to the profile of the delivery's account; a ``signed`` delivery (HTTP) may only book
        orders to the account that signed it. An adapter that fails in a way it did not
        foresee costs this delivery only: it becomes ``adapter_error`` and so a dead letter
        (the delivery is authenticated by now), logged with its traceback."""
        try:
            if prof is None:
                prof = g.profile(self.settings, d.channel, g.resolve_account(d))
            drafts = g.parse(d, prof)
            if signed:
                g.check_account(d, drafts, self.settings)
            return drafts, None
        except Rejected as exc:
            return [], exc
        except Exception as exc:
            log.exception("intake_adapter_failed", channel=d.channel, account=d.account, via=d.via)
            return [], InternalError("adapter_error", _describe(exc))

    def _enqueue(self, work: Work) -> None:
        self.lanes[work.lane].append(work)
        self.pending += 1
        self.peak = max(self.peak, self.pending)
        self.lot.unpark()

    async def ingest(self, d: g.Delivery, corr: str | None = None) -> dict:
        """offer + wait for the outcome and for its events to be durable (HTTP, import)."""
        box: list[dict] = []
        done = trio.Event()

        def finish(result: dict) -> None:
            box.append(result)
            done.set()

        self.offer(d, finish, corr)
        await done.wait()
        journal = self.engine.journal
        await journal.wait_durable(journal.last_seq)
        return box[0]

    # --- workers ----------------------------------------------------------------

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            for _ in range(self.cfg.workers):
                nursery.start_soon(self._worker)
            nursery.start_soon(self._watch_silence)
            task_status.started()

    async def _worker(self) -> None:
        while True:
            while not (self.lanes[0] or self.lanes[1]):
                await self.lot.park()
            work = (self.lanes[0] or self.lanes[1]).popleft()
            try:
                result = await self._decide(work)
            except Exception as exc:  # a bug must cost one delivery, never the intake, and lose nothing
                log.exception("intake_failed", channel=work.delivery.channel)
                result = self._failed(work, exc)
            finally:
                self.pending -= 1
            work.done(result)

    def _failed(self, work: Work, exc: Exception) -> dict:
        """The outcome of a delivery whose decision raised: kept whole as a dead letter
        (``internal_error``; a retry re-decides every order in it, and the ones already
        recorded come back as duplicates), counted and published."""
        d = work.delivery
        account = d.account or "default"
        error = InternalError("internal_error", _describe(exc))
        result = self._result(d.channel, account, [_item(Draft(), "rejected", error.code, error.message)])
        try:
            self._record_letter(
                work, account, [(None, account, error)], result, lambda acct: g.profile(self.settings, d.channel, acct)
            )
        except Exception:
            log.exception("intake_dead_letter_failed", channel=d.channel)
        self._count(d.channel, account, result["orders"])
        self._publish(result)
        return result

    async def _decide(self, work: Work) -> dict:
        d = work.delivery
        hint = d.account or account_hint(d.channel, d.headers)
        profiles: dict[str, tuple[object, ValidationProfile]] = {}

        def profile(account: str) -> ValidationProfile:
            """The account's validation profile, built once per delivery (reused only
            while the settings are the same: a reload between drafts applies at once)."""
            settings = self.settings
            cached = profiles.get(account)
            if cached is None or cached[0] is not settings:
                cached = profiles[account] = (settings, g.profile(settings, d.channel, account))
            return cached[1]

        items: list[dict] = []
        rejected: list[tuple[Draft | None, str, Rejected]] = []
        if work.error is not None:
            account = hint or "default"
            items.append(_item(Draft(), "rejected", work.error.code, work.error.message))
            rejected.append((None, account, work.error))
        for draft in work.drafts:
            account = hint or draft.account or "default"
            if draft.kind == "ignored":
                items.append(_item(draft, "ignored", draft.code, draft.message))
                continue
            key = (d.channel, account, draft.external_id)
            while key in self.keys:  # the same order is being decided: after it
                await self.keys[key].wait()
            self.keys[key] = trio.Event()
            try:
                item = await self._decide_one(draft, d.channel, account, work.corr, profile)
            finally:
                self.keys.pop(key).set()
            items.append(item)
            if item["outcome"] == "rejected":
                rejected.append((draft, account, Rejected(item["code"], item["message"])))
        account = hint or next((dr.account for dr in work.drafts if dr.account), None) or "default"
        result = self._result(d.channel, account, items)
        self._record_letter(work, account, rejected, result, profile)
        self._count(d.channel, account, items)
        self._publish(result)
        return result

    async def _decide_one(
        self, draft: Draft, channel: str, account: str, corr: str, profile: Callable[[str], ValidationProfile]
    ) -> dict:
        if draft.kind in SUPPLY_KINDS:
            return await self._supplier_answer(draft, corr, intake_actor(channel, account))
        world = self.engine.world
        settings = self.settings
        actor = intake_actor(channel, account)  # the source's orders are journaled as its own
        oid = world.by_key.get((channel, account, draft.external_id))
        if draft.kind == "cancel":
            if oid is None:
                return _item(draft, "ignored", "unknown_order", "a cancellation of an order never received")
            order = world.orders[oid]
            if order.cancelled:
                return _item(draft, "duplicate", "", "already cancelled", oid, "cancelled")
            ok, res = await self._call(p.OrderCancel(order_id=oid, reason=draft.message), corr, actor)
            if not ok:
                return _item(draft, "rejected", res[0], res[1], oid)
            return _item(draft, "updated", "", "cancelled", oid, res["status"])
        if oid is not None and _older(draft.version, world.orders[oid].spec.source_version):
            order = world.orders[oid]
            return _item(
                draft,
                "duplicate",
                "",
                f"an older version of the order ({draft.version}; {order.spec.source_version} is applied)",
                oid,
                order.status(world.shipments),
            )
        prof = profile(account)
        try:
            spec = g.validate(draft, channel, account, prof, world, settings)
        except Rejected as exc:
            if oid is not None:  # a redelivery of a known order that no longer validates: still known
                return _item(draft, "duplicate", "", f"already received ({exc.code} ignored)", oid)
            return _item(draft, "rejected", exc.code, exc.message)
        if oid is not None:
            order = world.orders[oid]
            if order.hold and not spec.hold and not order.cancelled:
                # paid with other lines (one delivery): the lines first, while still held,
                # else the release records the new version over lines it never applied
                if order_rules.amendable(order) and not order_rules.same_lines(spec.lines, order.spec.lines):
                    ok, res = await self._call(
                        p.OrderAmend(
                            order_id=oid,
                            lines=spec.lines,
                            reason="changed at source",
                            source_version=spec.source_version,
                            totals=spec.totals,
                        ),
                        corr,
                        actor,
                    )
                    if not ok:
                        return _item(draft, "rejected", res[0], res[1], oid)
                ok, res = await self._call(
                    p.OrderRelease(order_id=oid, reason="paid", source_version=spec.source_version), corr, actor
                )
                if not ok:
                    return _item(draft, "rejected", res[0], res[1], oid)
                return _item(draft, "updated", "", "payment hold released", oid, res["status"])
            # a redelivery with other lines, of an order nothing was allocated to yet
            if order_rules.amendable(order) and not order_rules.same_lines(spec.lines, order.spec.lines):
                ok, res = await self._call(
                    p.OrderAmend(
                        order_id=oid,
                        lines=spec.lines,
                        reason="changed at source",
                        source_version=spec.source_version,
                        totals=spec.totals,
                    ),
                    corr,
                    actor,
                )
                if not ok:
                    return _item(draft, "rejected", res[0], res[1], oid)
                return _item(draft, "updated", "", "lines changed before allocation", oid, res["status"])
            if order.spec.needs_address and not spec.needs_address and not order.cancelled:
                # the source now gives the street address it withheld (Amazon with restricted data)
                ok, res = await self._call(
                    p.OrderAddress(order_id=oid, shipping_address=spec.shipping_address, reason="address from source"),
                    corr,
                    actor,
                )
                if not ok:
                    return _item(draft, "rejected", res[0], res[1], oid)
                return _item(draft, "updated", "", "shipping address supplied", oid, res["status"])
            return _item(draft, "duplicate", "", "already received", oid, order.status(world.shipments))
        ok, res = await self._call(spec, corr, actor)
        if not ok:
            return _item(draft, "rejected", res[0], res[1])
        outcome = "duplicate" if res.get("duplicate") else "accepted"
        out = _item(draft, outcome, "", "", res["order_id"], res["status"], spec.hold)
        # each line's promise, as order.submit answers it (a held order's lines have none yet)
        out["lines"] = [
            {"line_no": li["line_no"], "sku": li["sku"], "promise": li.get("promise")} for li in res["lines"]
        ]
        return out

    async def _supplier_answer(self, draft: Draft, corr: str, actor: str) -> dict:
        """A supplier's answer to one line of a purchase order (X12 855 / 856), as the
        procurement op on the request that is that line: the PO's request for the SKU."""
        world = self.engine.world
        sup = draft.supply
        po, sku = sup["po"], sup["sku"]
        lines = [r for r in world.purchase_orders.get(po, ()) if r.sku == sku]
        r = next((r for r in lines if r.closed_ts is None), lines[-1] if lines else None)
        if r is None:
            return _item(draft, "rejected", "unknown_request", f"purchase order {po!r} has no line for {sku!r}")
        date = sup.get("expected_date") or r.expected_date  # no date given: the date stands
        req: p.Request
        if draft.kind == "cancel_supply":
            if r.status == "cancelled":  # sent again
                return {**_item(draft, "duplicate", "", "already cancelled"), "request_id": r.request_id}
            req = p.ProcurementCancel(request_id=r.request_id, reason=sup["reason"])
        elif draft.kind == "acknowledge":
            if r.acknowledged == sup["qty"] and r.expected_date == date:  # sent again
                return {**_item(draft, "duplicate", "", "already acknowledged"), "request_id": r.request_id}
            req = p.ProcurementAcknowledge(request_id=r.request_id, qty=sup["qty"], expected_date=date)
        else:
            req = p.ProcurementShipNotice(
                request_id=r.request_id,
                lines=[p.ShipNoticeLine(sku=sku, qty=sup["qty"])],
                expected_date=date,
                reference=sup["reference"],
            )
        w = _Waiter()
        try:
            route(self.router, req, w, corr, actor)
        except Rejected as exc:
            return {**_item(draft, "rejected", exc.code, exc.message), "request_id": r.request_id}
        await w.event.wait()
        ok, res = w.result
        if not ok:
            return {**_item(draft, "rejected", res[0], res[1]), "request_id": r.request_id}
        outcome = "duplicate" if res.get("duplicate") else "updated"
        return {**_item(draft, outcome, "", "", None, res["status"]), "request_id": r.request_id}

    async def _call(self, req, corr: str, actor: str) -> tuple[bool, object]:
        """Ask the order actor; transient failures (a crashed actor) are retried with
        exponential backoff and jitter, then reported as ``transient_failure``."""
        cfg = self.cfg
        for attempt in range(cfg.retry_attempts + 1):
            w = _Waiter()
            self.router.call_order(req, w, corr, actor)
            await w.event.wait()
            ok, res = w.result
            if ok or res[0] != "internal_error":
                return ok, res
            delay = min(cfg.retry_max_s, cfg.retry_base_s * 2**attempt) * random.uniform(0.5, 1.0)
            log.warning("intake_retry", attempt=attempt + 1, error=res[1], delay_s=round(delay, 3))
            await trio.sleep(delay)
        return False, ("transient_failure", f"failed {cfg.retry_attempts + 1} times: {res[1]}")

    # --- recording -----------------------------------------------------------------

    def _record_letter(
        self, work: Work, account: str, rejected: list, result: dict, profile: Callable[[str], ValidationProfile]
    ) -> None:
        engine = self.engine
        if work.letter is None:
            engine.context("intake", work.corr, intake_actor(work.delivery.channel, account))
        else:
            engine.context("deadletters.retry", work.corr, work.retried_by or SYSTEM)
        now = engine.now()
        if work.letter is not None:
            first = rejected[0][2] if rejected else None
            engine.emit(
                ev.DeadLetterRetried(
                    ts=now,
                    letter_id=work.letter,
                    resolved=first is None,
                    outcome=result["outcome"],
                    cause=first.code if first else None,
                    error=first.message if first else None,
                )
            )
            result["letter_id"] = work.letter
            return
        if not rejected:
            return
        d = work.delivery
        draft, _acct, first = rejected[0]
        prof = profile(account)
        message = _ENC.encode(
            {
                "channel": d.channel,
                "account": d.account,
                "headers": d.headers,
                "body_base64": base64.b64encode(d.body).decode(),
                "via": d.via,
            }
        ).decode()
        letter = engine.world.n_letters + 1
        text = "; ".join(f"{dr.external_id or '?'}: {e.message}" if dr else e.message for dr, _a, e in rejected)
        engine.emit(
            ev.DeadLettered(
                ts=now,
                letter_id=letter,
                actor="intake",
                message=message,
                error=text[:2000],
                kind="intake",
                cause=first.code,
                channel=d.channel,
                account=account,
                external_id=draft.external_id if draft else None,
                impact=sum(g.impact(dr, prof) for dr, _a, _e in rejected),
            )
        )
        result["letter_id"] = letter

    def _source(self, channel: str, account: str) -> Source:
        """The Source of (channel, account); past ``max_sources`` new pairs share
        (channel, "(other)"), so the table and the ``sources.health`` reply stay bounded."""
        src = self.sources.get((channel, account))
        if src is None:
            if len(self.sources) >= self.cfg.max_sources:
                account = OTHER
                src = self.sources.get((channel, account))
            if src is None:
                src = self.sources[(channel, account)] = Source(self.cfg.signature_samples)
        return src

    def _count(self, channel: str, account: str, items: list[dict]) -> None:
        src = self._source(channel, account)
        src.deliveries += 1
        src.last_at = time.time()
        src.silent_reported = False
        for it in items:
            src.outcomes[it["outcome"]] += 1
            if it["outcome"] == "rejected":
                src.codes[it["code"]] += 1

    def _untrusted(self, d: g.Delivery, claimed: str, exc: Rejected) -> None:
        """Count and sample a delivery that failed authentication. The account it claims
        is only a claim: unless the configuration lists it, the delivery is counted under
        (channel, "(unverified)"), with the claim kept in the sample. Memory stays bounded
        by the configuration, whatever names a caller invents."""
        cfg = self.settings.channels.get(d.channel)
        account = claimed if cfg is not None and claimed in cfg.accounts else UNVERIFIED
        src = self._source(d.channel, account)
        self._count(d.channel, account, [{"outcome": "rejected", "code": exc.code}])
        if exc.code.startswith("signature"):
            src.bad_signatures += 1
            headers = {k[:64]: v[:256] for k, v in itertools.islice(d.headers.items(), SAMPLE_HEADERS)}
            src.samples.append(
                {
                    "at": iso_ts(time.time()),
                    "code": exc.code,
                    "via": d.via,
                    "account": claimed[:128],
                    "headers": headers,
                    "body_base64": base64.b64encode(d.body[:SAMPLE_BODY]).decode(),
                    "bytes": len(d.body),
                }
            )
        log.warning(
            "intake_untrusted", channel=d.channel, account=claimed[:128], code=exc.code, reason=exc.message, via=d.via
        )
        self._publish(self._result(d.channel, account, [{"outcome": "rejected", "code": exc.code}]))

    def _result(self, channel: str, account: str, items: list[dict]) -> dict:
        outcomes = {it["outcome"] for it in items}
        overall = next(
            (o for o in ("rejected", "accepted", "updated", "duplicate", "ignored") if o in outcomes), "ignored"
        )
        first = next((it for it in items if it["outcome"] == overall), {})
        return {
            "outcome": overall,
            "code": first.get("code", ""),
            "message": first.get("message", ""),
            "channel": channel,
            "account": account,
            "orders": items,
        }

    def _publish(self, result: dict) -> None:
        hub = self.hub
        if not hub.subscribers:
            return
        body = _ENC.encode(
            {
                "type": "intake_outcome",
                "channel": result["channel"],
                "account": result["account"],
                "outcome": result["outcome"],
                "code": result.get("code", ""),
                "orders": [[it.get("external_id", ""), it["outcome"], it.get("order_id")] for it in result["orders"]],
            }
        )
        self._hub_line("intake_outcome", body)

    def _hub_line(self, kind: str, body: bytes) -> None:
        journal = self.engine.journal
        self.hub.publish([(journal.committed_seq, self.engine.now(), kind, None, None, None, None, body, None)])

    async def _watch_silence(self) -> None:
        period = max(min(self.cfg.silent_after_s / 4, 60.0), 0.5)
        while True:
            await trio.sleep(period)
            for (channel, account), src in self.sources.items():
                if self._silent(src) and not src.silent_reported:
                    src.silent_reported = True
                    log.warning(
                        "source_silent", channel=channel, account=account, quiet_s=round(time.time() - src.last_at)
                    )
                    self._hub_line(
                        "source_silent",
                        _ENC.encode(
                            {
                                "type": "source_silent",
                                "channel": channel,
                                "account": account,
                                "last_delivery_at": iso_ts(src.last_at),
                            }
                        ),
                    )

    def _silent(self, src: Source) -> bool:
        """A source that has delivered before and has been quiet for ``silent_after_s``."""
        return src.deliveries >= 2 and time.time() - src.last_at > self.cfg.silent_after_s

    # --- views and dead letters ----------------------------------------------------

    def health(self) -> dict:
        out = []
        for (channel, account), src in sorted(self.sources.items()):
            n = sum(src.outcomes.values()) or 1
            out.append(
                {
                    "channel": channel,
                    "account": account,
                    "deliveries": src.deliveries,
                    "last_delivery_at": iso_ts(src.last_at) if src.last_at else None,
                    "outcomes": {o: src.outcomes.get(o, 0) for o in OUTCOMES},
                    "accepted_rate": round(src.outcomes["accepted"] / n, 4),
                    "rejected_rate": round(src.outcomes["rejected"] / n, 4),
                    "rejections": dict(src.codes),
                    "bad_signatures": src.bad_signatures,
                    "signature_samples": list(src.samples),
                    "silent": self._silent(src),
                }
            )
        return {"sources": out, "queue": self.queue_view()}

    def queue_view(self) -> dict:
        return {
            "pending": self.pending,
            "priority_waiting": len(self.lanes[0]),
            "normal_waiting": len(self.lanes[1]),
            "capacity": self.cfg.queue_size,
            "peak": self.peak,
            "busy_refusals": self.busy_refusals,
            "http_port": self.http_port,
            "carrier_webhooks": dict(self.carrier_webhooks),
        }

    def rejection_counts(self) -> dict[str, int]:
        return {
            f"{ch}/{acct}/{code}": n
            for (ch, acct), src in sorted(self.sources.items())
            for code, n in sorted(src.codes.items())
        }

    async def retry_letters(self, letters: list, corr: str, actor: str = SYSTEM) -> dict:
        """Run stored deliveries through the governed flow again (highest impact first).
        The signature is not checked again: it was when the delivery was kept."""
        out = []
        for letter in letters:
            data = msgspec.json.decode(letter.message)
            d = g.Delivery(
                channel=data["channel"],
                account=data.get("account"),
                headers=data["headers"],
                body=base64.b64decode(data["body_base64"]),
                via="retry",
            )
            # a delivery that came signed over HTTP is held to the account that signed it, again
            drafts, error = self._parse(d, signed=data.get("via") == "http")
            # decided here, not by a worker: no one to call back
            work = Work(d, drafts, error, None, corr, letter=letter.letter_id, lane=0, retried_by=actor)
            self.pending += 1
            try:
                res = await self._decide(work)
            finally:
                self.pending -= 1
            out.append(
                {"letter_id": letter.letter_id, "outcome": res["outcome"], "code": res["code"], "orders": res["orders"]}
            )
        return {"retried": len(out), "resolved": sum(1 for r in out if r["outcome"] != "rejected"), "results": out}


def _item(
    draft: Draft,
    outcome: str,
    code: str = "",
    message: str = "",
    order_id: str | None = None,
    status: str | None = None,
    hold: str = "",
) -> dict:
    out = {
        "external_id": draft.external_id,
        "outcome": outcome,
        "code": code,
        "message": message,
        "order_id": order_id,
        "status": status,
    }
    if hold:
        out["hold"] = hold
    return out


def _older(version: str | None, applied: str | None) -> bool:
    """Whether a delivery's version is older than the one applied to its order (a replay,
    or a redelivery overtaken by a newer one). Equal versions are not older: two updates
    within the same second of a source's clock are applied in the order they came."""
    return version is not None and applied is not None and version < applied


def _describe(exc: BaseException) -> str:
    """An unexpected exception as a dead letter keeps it: its class and message."""
    return f"{type(exc).__name__}: {exc}"[:1000]


def letter_impact(letter, now: float) -> float:
    """Impact of a dead letter now: its base score plus its age."""
    if letter.kind != "intake":
        return 0.0
    return round(letter.impact + g.AGE_IMPACT_PER_H * max(now - letter.ts, 0) / 3600, 2)
