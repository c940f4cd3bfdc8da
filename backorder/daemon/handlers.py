"""One function per op, attached to the ops of ``protocol.OP_TABLE`` in ``HANDLERS``: reads
are answered from the model at once; changes go to the actor that owns the decision
(``router.route``); the audit query reads the journal on a thread. ``handle`` is one dict
lookup by the request's type."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import msgspec
import structlog
import trio

from backorder import protocol as p
from backorder.actors import board, bulk_rules, depletion_rules, promise_rules, retention, threepl_rules, views
from backorder.actors.events import TOPICS
from backorder.actors.router import route
from backorder.daemon import logging as dlog
from backorder.daemon.journal import audit_record, order_records
from backorder.daemon.planner import explain_view
from backorder.daemon.whatif_ops import whatif_delay, whatif_policy, whatif_receipt
from backorder.errors import Conflict, InvalidInput, NotFound, Rejected
from backorder.intake import ops as intake_ops
from backorder.notify import views as notify_views
from backorder.timeutil import iso_ts, parse_ts

if TYPE_CHECKING:
    from backorder.actors.engine import Engine
    from backorder.actors.router import Router
    from backorder.config.settings import Settings
    from backorder.daemon.app import Daemon
    from backorder.daemon.integrity import Deferred
    from backorder.daemon.journal import AuditReader
    from backorder.daemon.planner import Planner
    from backorder.daemon.server import Connection, Hub, Reply
    from backorder.daemon.stepping import Stepper
    from backorder.intake.service import IntakeService
    from backorder.notify.notifier import Notifier
    from backorder.threepl.service import ThreeplService

log = structlog.get_logger()


@dataclass(frozen=True, slots=True)
class Context:
    """What the op handlers may reach: the engine (model, clock, emit), the router, the
    event hub, the audit reader, the intake, the notifier, the settings (changed in place
    by a reload, so this reference stays current), the daemon's health report and, under
    the stepped clock, what moves it."""

    engine: Engine
    router: Router
    hub: Hub
    audit: AuditReader
    intake: IntakeService
    notifier: Notifier
    settings: Settings
    health: Callable[[], dict]
    stepper: Stepper | None = None
    planner: Planner | None = None
    threepl: ThreeplService | None = None
    journal_check: Deferred | None = None  # the deferred integrity check (refuses writes once failed)

    @classmethod
    def of(cls, daemon: Daemon) -> Context:
        """The handlers' view of a serving daemon (every collaborator exists by then)."""
        return cls(
            engine=daemon.engine,
            router=daemon.router,
            hub=daemon.hub,
            audit=daemon.audit,
            intake=daemon.intake,
            notifier=daemon.notifier,
            settings=daemon.settings,
            health=daemon.health,
            stepper=daemon.stepper,
            planner=daemon.planner,
            threepl=daemon.threepl,
            journal_check=daemon.integrity,
        )


Handler = Callable[[Context, "Connection", Any, "Reply", str], None]


def handle(ctx: Context, conn: Connection, req: p.Request, reply: Reply, corr: str) -> None:
    """Answer or route one decoded request. Raises Rejected for bad input, and for a write
    once the journal failed its deferred integrity check (reads are still served)."""
    check = ctx.journal_check
    if check is not None and check.refuses_writes and req.__struct_config__.tag in p.WRITE_OPS:
        raise Conflict(
            "journal_damaged",
            "the journal failed its integrity check: writes are refused, reads are served; "
            "see health.startup.integrity and docs/operations.md ('When the journal is damaged')",
        )
    HANDLERS[type(req)](ctx, conn, req, reply, corr)


# --- changes: the actor that owns the decision answers ------------------------------


def to_actor(ctx: Context, conn: Connection, req: p.Request, reply: Reply, corr: str) -> None:
    """Send a change to its actor (the op's route in protocol.OP_TABLE); the actor replies."""
    route(ctx.router, req, reply, corr, conn.actor)


# --- reads, answered at once from the model -----------------------------------------


def order_get(ctx: Context, conn: Connection, req: p.OrderGet, reply: Reply, corr: str) -> None:
    """One order, by order_id or by (channel, account, external_id); archived ones from SQLite."""
    found = _find_order(ctx, req)
    if isinstance(found, dict):  # archived: read from SQLite
        reply.ok(found)
    else:  # shows the order and, per line, its SKU's queue and supply
        detail = views.order_detail(ctx.engine.world, found, ctx.engine.now())
        reply.ok(detail, skus={ln.sku for ln in found.lines})


def orders_list(ctx: Context, conn: Connection, req: p.OrdersList, reply: Reply, corr: str) -> None:
    """Orders filtered by status and/or SKU, newest first, paged."""
    world = ctx.engine.world
    status, sku, limit, offset = req.status, req.sku, req.limit, req.offset
    orders = reversed(world.orders.values())
    if sku is not None:
        orders = (o for o in orders if any(ln.sku == sku for ln in o.lines))
    if status is not None:
        orders = (o for o in orders if o.status(world.shipments) == status)
    page = _page(orders, offset, limit)
    reply.ok({"orders": [views.order_summary(world, o) for o in page], "offset": offset, "limit": limit})


def sku_get(ctx: Context, conn: Connection, req: p.SkuGet, reply: Reply, corr: str) -> None:
    """One SKU with its queue head and inbound supply."""
    sku = req.sku
    s = ctx.engine.world.skus.get(sku)
    if s is None:
        raise NotFound("unknown_sku", f"SKU {sku!r} is not known")
    out = views.sku_view(ctx.engine.world, s, ctx.engine.now(), req.lines)
    if ctx.planner is not None:
        out["planner"] = explain_view(
            s.policy, ctx.engine.world.tuned.get(sku), ctx.planner.results.get(sku), ctx.planner.settings
        )
    reply.ok(out, skus=(sku,))


def skus_list(ctx: Context, conn: Connection, req: p.SkusList, reply: Reply, corr: str) -> None:
    """SKUs, optionally only those with waiting demand, paged."""
    waiting, prefix, limit, offset = req.waiting, req.prefix, req.limit, req.offset
    skus = (s for s in ctx.engine.world.skus.values() if (not waiting or s.queue) and s.sku.startswith(prefix))
    reply.ok({"skus": [views.sku_summary(s) for s in _page(skus, offset, limit)], "offset": offset, "limit": limit})


def skus_stockout(ctx: Context, conn: Connection, req: p.SkusStockout, reply: Reply, corr: str) -> None:
    """SKUs projected to stock out within their lead time, soonest first (``depletion_rules``)."""
    found = depletion_rules.stockouts(ctx.engine.world, ctx.engine.now())
    reply.ok({"skus": [msgspec.to_builtins(x) for x in found[: req.limit]], "total": len(found)})


def procurement_list(ctx: Context, conn: Connection, req: p.ProcurementList, reply: Reply, corr: str) -> None:
    """Purchase orders and transfer requests, by status and/or SKU, paged."""
    status, sku, limit, offset = req.status, req.sku, req.limit, req.offset
    now, world = ctx.engine.now(), ctx.engine.world
    reqs = (
        r
        for r in world.requests.values()
        if (sku is None or r.sku == sku) and (status == "all" or (status == "open") == (r.closed_ts is None))
    )
    if status == "open":  # open requests are never archived
        found = [views.request_view(r, now) for r in _page(reqs, offset, limit)]
    else:  # the closed ones archived out of memory ([retention]) first: they are the oldest
        found = retention.paged(world, "request", sku, None, reqs, lambda r: views.request_view(r, now), offset, limit)
    reply.ok({"requests": found, "offset": offset, "limit": limit})


def shipments_list(ctx: Context, conn: Connection, req: p.ShipmentsList, reply: Reply, corr: str) -> None:
    """Shipments by status and/or order, paged."""
    world = ctx.engine.world
    status, order_id, limit, offset = req.status, req.order_id, req.limit, req.offset
    if order_id is not None:
        order = world.orders.get(order_id)
        pool = [world.shipments[s] for s in order.shipments] if order else []
    else:
        pool = world.shipments.values()
    shs = (sh for sh in pool if status == "all" or sh.status == status)
    reply.ok(
        {"shipments": [views.shipment_view(sh) for sh in _page(shs, offset, limit)], "offset": offset, "limit": limit}
    )


def policy_get(ctx: Context, conn: Connection, req: p.PolicyGet, reply: Reply, corr: str) -> None:
    """The allocation mode and the priority weights."""
    world = ctx.engine.world
    reply.ok({"mode": world.mode, "weights": msgspec.to_builtins(world.weights)})


def stats(ctx: Context, conn: Connection, req: p.Stats, reply: Reply, corr: str) -> None:
    """The headline KPIs, with the notification and intake counts behind them."""
    world = ctx.engine.world
    now = ctx.engine.now()
    result = views.stats(world, now)
    result["notifications"] = notify_views.stats(world, now)
    result["intake"] = {"rejections": ctx.intake.rejection_counts(), "queue": ctx.intake.queue_view()}
    modes = {"manual": 0, "auto": 0, "suggest": 0}
    for s in world.skus.values():
        modes[s.policy.mode] += 1
    result["policy_modes"] = modes  # who sets each SKU's levels (the planner: auto / suggest)
    result["planner"] = ctx.planner.health() if ctx.planner is not None else None  # the console's health line
    reply.ok(result)


def health(ctx: Context, conn: Connection, req: p.Health, reply: Reply, corr: str) -> None:
    """Liveness and journal lag, with the role of this connection (what it may do)."""
    reply.ok({**ctx.health(), "role": conn.role})


def skus_board(ctx: Context, conn: Connection, req: p.SkusBoard, reply: Reply, corr: str) -> None:
    """SKU summaries with oldest wait, next inbound and coverage (the console's board)."""
    reply.ok(board.board(ctx.engine.world, ctx.engine.now(), req.skus, req.waiting, req.offset, req.limit))


def orders_find(ctx: Context, conn: Connection, req: p.OrdersFind, reply: Reply, corr: str) -> None:
    """Orders whose order id, external id or order number is the query."""
    reply.ok(board.find_orders(ctx.engine.world, req.query, req.limit))


def deadletters_list(ctx: Context, conn: Connection, req: p.DeadLettersList, reply: Reply, corr: str) -> None:
    """Every dead letter, highest impact first, and the letters grouped by cause."""
    reply.ok(intake_ops.list_letters(ctx))


def notify_view(ctx: Context, conn: Connection, req: p.Request, reply: Reply, corr: str) -> None:
    """The notification, label and document ops, answered by backorder.notify.views."""
    notify_views.handle(ctx, req, reply, corr)


def orders_bulk(ctx: Context, conn: Connection, req: p.OrdersBulk, reply: Reply, corr: str) -> None:
    """A bulk action on a filtered set: the order actor decides orders; retry redelivers dead letters."""
    if req.action != "retry":
        ctx.router.call_order(req, reply, corr, conn.actor)  # selected and applied in one step there
        return
    world = ctx.engine.world
    sel = bulk_rules.selection(bulk_rules.select_letters(world, req.filter, ctx.engine.now()))
    if req.dry_run:
        reply.ok({"action": "retry", "dry_run": True, **sel.view()})
        return
    bulk_rules.check(req, sel)
    letters = [world.dead_letters[i] for i in sel.ids]
    conn.nursery.start_soon(_bulk_retry, ctx, conn, letters, reply, corr, sel)


class _Outcome:
    """The reply of one dead letter a bulk retry redelivers to its actor."""

    def __init__(self) -> None:
        self.done = trio.Event()
        self.code = ""

    def ok(self, result) -> None:
        self.done.set()

    def error(self, code: str, message: str) -> None:
        self.code = code
        self.done.set()


async def _bulk_retry(ctx: Context, conn: Connection, letters: list, reply: Reply, corr: str, sel) -> None:
    # A task of the connection, like _audit: a failure costs this request only.
    actor = conn.actor
    try:
        results = []
        intake = [x for x in letters if x.kind == "intake"]
        if intake:
            done = await ctx.intake.retry_letters(intake, corr, actor)
            results += [{"letter_id": r["letter_id"], "code": r["code"]} for r in done["results"]]
        for x in letters:
            if x.kind == "intake":
                continue
            outcome = _Outcome()
            try:
                ctx.router.retry_letter(x.letter_id, outcome, corr, actor)
            except Rejected as exc:
                outcome.error(exc.code, exc.message)
            await outcome.done.wait()
            results.append({"letter_id": x.letter_id, "code": outcome.code})
    except Exception as exc:
        log.exception("request_failed", op="orders.bulk", conn=conn.id)
        reply.error("internal_error", f"{type(exc).__name__}: {exc}")
        return
    reply.ok({"action": "retry", "dry_run": False, **sel.view(), "results": results})


# --- the rest: the supervisor, the hub, the journal, the daemon -----------------------


def deadletters_retry(ctx: Context, conn: Connection, req: p.DeadLettersRetry, reply: Reply, corr: str) -> None:
    """Redeliver a dead letter: intake letters (or a cause group) to the intake, others to their actor."""
    if intake_ops.wants_intake_retry(ctx, req):
        intake_ops.retry(ctx, conn, req, reply, corr)
        return
    letter_id = req.letter_id
    if letter_id is None:
        raise InvalidInput("invalid_request", "give letter_id, or cause (and optionally channel)")
    ctx.router.retry_letter(letter_id, reply, corr, conn.actor)


def subscribe(ctx: Context, conn: Connection, req: p.Subscribe, reply: Reply, corr: str) -> None:
    """Stream the events of the named topics (all when none) on this connection."""
    topics = req.topics
    unknown = [t for t in topics if t not in TOPICS]
    if unknown:
        raise NotFound("unknown_topic", f"unknown topic(s) {', '.join(unknown)}; known: {', '.join(TOPICS)}")
    names = topics or list(TOPICS)
    conn.event_types = frozenset().union(*(TOPICS[t] for t in names))
    ctx.hub.add(conn)
    reply.ok({"topics": names, "seq": ctx.engine.journal.committed_seq})


def audit_query(ctx: Context, conn: Connection, req: p.AuditQuery, reply: Reply, corr: str) -> None:
    """Durable events by order, SKU, actor and/or time, read from the journal on a thread."""
    since = None
    if req.since is not None:
        try:
            since = parse_ts(req.since)
        except ValueError:
            raise InvalidInput("invalid_date", f"since {req.since!r} is not an RFC 3339 timestamp") from None
    # A heavy read: run in turn with this connection's other ones, within its reply budget.
    conn.queue_heavy(partial(_audit, ctx, req, since, reply))


def log_level(ctx: Context, conn: Connection, req: p.LogLevel, reply: Reply, corr: str) -> None:
    """Set the log level until the next restart or reload; answer the level it replaced."""
    level = req.level
    was = dlog.current_level()
    dlog.set_level(level)
    reply.ok({"level": level, "was": was})


def clock_advance(ctx: Context, conn: Connection, req: p.ClockAdvance, reply: Reply, corr: str) -> None:
    """Move the stepped clock; reply once the engine-time work due by then has run and is durable."""
    stepper = ctx.stepper
    if stepper is None:
        raise Conflict(
            "clock_not_stepped",
            f'the engine clock is {ctx.engine.clock.kind!r}; clock.advance needs [daemon] clock = "stepped"',
        )
    stepper.target(req.seconds, req.to)  # refuses bad input at once, before the advance queues
    conn.nursery.start_soon(_advance, stepper, req, reply, stepper.take_turn())


async def _advance(stepper: Stepper, req: p.ClockAdvance, reply: Reply, turn) -> None:
    # A task of the connection's nursery, like _audit: a failure costs this request only.
    try:
        now = await stepper.advance(req.seconds, req.to, turn)
    except Rejected as exc:  # a `to` an advance queued ahead of this one has already passed
        reply.error(exc.code, exc.message)
        return
    except Exception as exc:
        log.exception("request_failed", op="clock.advance", conn=reply.conn.id)
        reply.error("internal_error", f"{type(exc).__name__}: {exc}")
        return
    reply.ok({"now": iso_ts(now)})


def _planner(ctx: Context):
    if ctx.planner is None or not ctx.planner.settings.enabled:
        raise Conflict("planner_disabled", "the planner is off ([planner] enabled = false)")
    return ctx.planner


def planner_run(ctx: Context, conn: Connection, req: p.PlannerRun, reply: Reply, corr: str) -> None:
    """Run the planner now; reply once its policy_tuned events are durable."""
    planner = _planner(ctx)
    if req.sku is not None and req.sku not in ctx.engine.world.skus:
        raise NotFound("unknown_sku", f"SKU {req.sku!r} is not known")
    conn.nursery.start_soon(_planner_run, planner, req, reply)


async def _planner_run(planner: Planner, req: p.PlannerRun, reply: Reply) -> None:
    # A task of the connection's nursery, like _advance: a failure costs this request only.
    try:
        result = await planner.run_now(req.sku)
    except Rejected as exc:
        reply.error(exc.code, exc.message)
        return
    except Exception as exc:
        log.exception("request_failed", op="planner.run", conn=reply.conn.id)
        reply.error("internal_error", f"{type(exc).__name__}: {exc}")
        return
    reply.ok(result)


def planner_status(ctx: Context, conn: Connection, req: p.PlannerStatus, reply: Reply, corr: str) -> None:
    """The planner's last run, its worker process and its schedule (also when it is off)."""
    if ctx.planner is None:
        raise Conflict("planner_disabled", "the planner is off ([planner] enabled = false)")
    reply.ok(ctx.planner.status())


def planner_explain(ctx: Context, conn: Connection, req: p.PlannerExplain, reply: Reply, corr: str) -> None:
    """Why a SKU has the levels it has: its mode, the last policy_tuned, the latest forecast."""
    reply.ok(_planner(ctx).explain(req.sku), skus=(req.sku,))


def threepl_status(ctx: Context, conn: Connection, req: p.ThreeplStatus, reply: Reply, corr: str) -> None:
    """The 3PL's routing state, the site's pick backlog and the routed orders."""
    engine = ctx.engine
    cfg = engine.world.settings.threepl
    breaker = ctx.notifier.statistics().get(threepl_rules.target(cfg))
    view = threepl_rules.status_view(engine.world, cfg, engine.threepl_inventory, breaker, engine.now())
    view["webhooks"] = dict(ctx.threepl.counts) if ctx.threepl is not None else {}
    reply.ok(view)


def atp_check(ctx: Context, conn: Connection, req: p.AtpCheck, reply: Reply, corr: str) -> None:
    """The promise each line of a prospective order would get (promise_rules.check)."""
    if (req.sku is None) != (req.qty is None) or (req.sku is not None) == bool(req.lines):
        raise InvalidInput("invalid_request", "give either 'sku' and 'qty' or 'lines' (a list of {sku, qty})")
    lines = [(req.sku, req.qty)] if req.sku is not None and req.qty is not None else [(x.sku, x.qty) for x in req.lines]
    world = ctx.engine.world
    reply.ok({"lines": promise_rules.check(world, lines, ctx.engine.now(), req.ship_complete, req.rush)})


# Every op of protocol.OP_TABLE and the function that answers it (tests/unit/test_op_table.py
# checks that the two match, row for row).
HANDLERS: dict[type[p.Request], Handler] = {
    **{op.request: to_actor for op in p.OP_TABLE if op.route in p.ACTOR_ROUTES},
    p.OrderGet: order_get,
    p.OrdersList: orders_list,
    p.SkuGet: sku_get,
    p.SkusList: skus_list,
    p.SkusStockout: skus_stockout,
    p.ProcurementList: procurement_list,
    p.ShipmentsList: shipments_list,
    p.PolicyGet: policy_get,
    p.Stats: stats,
    p.Health: health,
    p.SkusBoard: skus_board,
    p.OrdersFind: orders_find,
    p.DeadLettersList: deadletters_list,
    p.NotificationsList: notify_view,
    p.LabelGet: notify_view,
    p.ProcurementDocument: notify_view,
    p.PickListGet: notify_view,
    p.NotificationsRetry: notify_view,
    p.DeadLettersRetry: deadletters_retry,
    p.Subscribe: subscribe,
    p.AuditQuery: audit_query,
    p.LogLevel: log_level,
    p.OrderIngest: intake_ops.order_ingest,
    p.IntakeAlias: intake_ops.intake_alias,
    p.SourcesHealth: intake_ops.sources_health,
    p.DeadLettersDiscard: intake_ops.deadletters_discard,
    p.ClockAdvance: clock_advance,
    p.PlannerRun: planner_run,
    p.PlannerStatus: planner_status,
    p.PlannerExplain: planner_explain,
    p.OrdersBulk: orders_bulk,
    p.ThreeplStatus: threepl_status,
    p.AtpCheck: atp_check,
    p.WhatifReceipt: whatif_receipt,
    p.WhatifDelay: whatif_delay,
    p.WhatifPolicy: whatif_policy,
}
assert HANDLERS.keys() == {op.request for op in p.OP_TABLE}, "an op without a handler: handle() would fail"


async def _audit(ctx: Context, req: p.AuditQuery, since: float | None, reply: Reply) -> None:
    # Run by the connection's heavy-read task: an exception here would close the connection
    # with every reply it is owed, so it costs this one request instead.
    try:
        rows = await ctx.audit.query(
            order_id=req.order_id, sku=req.sku, since=since, after_seq=req.after_seq, limit=req.limit, actor=req.actor
        )
        if req.order_id is None:
            records = [audit_record(row) for row in rows]
        else:  # a fill's lines_allocated row shows as this order's allocated records
            records = [rec for row in rows for rec in order_records(row, req.order_id)]
    except Exception as exc:
        log.exception("request_failed", op="audit.query", conn=reply.conn.id)
        reply.error("internal_error", f"{type(exc).__name__}: {exc}")
        return
    reply.ok({"records": records, "next_after_seq": records[-1]["seq"] if records else req.after_seq})
    await trio.lowlevel.checkpoint()


def _find_order(ctx: Context, req: p.OrderGet):
    world = ctx.engine.world
    if req.order_id is not None:
        order = world.orders.get(req.order_id)
    elif req.channel is not None and req.external_id is not None:
        oid = world.by_key.get((req.channel, req.account, req.external_id))
        order = world.orders.get(oid) if oid else None
    else:
        raise InvalidInput("invalid_request", "give order_id, or channel and external_id")
    if order is None:
        key = (req.channel, req.account, req.external_id) if req.channel and req.external_id else None
        archived = retention.archived_detail(world, req.order_id, key)
        if archived is not None:
            return archived
        raise NotFound("unknown_order", "no such order")
    return order


def _page(items, offset: int, limit: int) -> list:
    out = []
    for n, item in enumerate(items):
        if n >= offset + limit:
            break
        if n >= offset:
            out.append(item)
    return out
