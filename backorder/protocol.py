"""Wire format of the control socket: one JSON object per line, both ways.

A request is ``{"op": "...", "id": <any JSON, echoed>, ...fields}``; a reply is
``{"id": ..., "ok": true, "result": {...}}`` or
``{"id": ..., "ok": false, "error": {"code": "...", "message": "..."}}``.

Every request type is a msgspec Struct tagged by ``op``, so decoding a line is one
typed, validated step. ``OP_TABLE`` lists every op with its role and route; the daemon
attaches a handler to each. Pure data: no trio and nothing of the daemon, so the pure
rules (order_rules) and synchronous tests import it directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

import msgspec
from msgspec import UNSET, Meta, Raw, Struct, UnsetType

from backorder.errors import InvalidInput, ProtocolError, Rejected
from backorder.numbers import MAX_INT, MAX_WEIGHT
from backorder.order import Address, CanonicalOrder, OrderLine, Quantity, Sku, Text, Totals

MAX_LINE = 1024 * 1024  # bytes per request line, newline excluded

NonNegInt = Annotated[int, Meta(ge=0)]
# Quantities and policy numbers: the schema's hard ceiling (backorder.numbers); the
# site's [limits] are checked by the rules that decide. Quantity, Sku and Text are the
# canonical order's (backorder.order).
Level = Annotated[int, Meta(ge=0, le=MAX_INT)]
Delta = Annotated[int, Meta(ge=-MAX_INT, le=MAX_INT)]
Weight = Annotated[float, Meta(ge=0, le=MAX_WEIGHT)]
IsoDate = Annotated[str, Meta(pattern=r"^\d{4}-\d{2}-\d{2}$")]


# --- requests ------------------------------------------------------------------


class Request(Struct, kw_only=True, tag_field="op"):
    id: Raw = Raw(b"null")


# The wire's name for the canonical order line (order.submit, order.amend).
OrderLineIn = OrderLine


def _fields_of(cls: type[Struct]) -> list[tuple]:
    """``cls``'s fields as ``msgspec.defstruct`` takes them: type, default and factory."""
    out: list[tuple] = []
    for f in msgspec.structs.fields(cls):
        if f.required:
            out.append((f.name, f.type))
        elif f.default_factory is not msgspec.NODEFAULT:
            out.append((f.name, f.type, msgspec.field(default_factory=f.default_factory)))
        else:
            out.append((f.name, f.type, f.default))
    return out


# order.submit is the canonical order (backorder.order) plus the request's ``op`` and
# ``id``. msgspec refuses a Struct with two field-carrying bases ("instance lay-out
# conflict"), so the request is built from the canonical order's fields rather than by
# inheriting them: it stays a ``Request``, its fields are declared once, and on the wire
# ``op`` and ``id`` still come first, byte for byte as before.
if TYPE_CHECKING:  # what the struct built below is, to a type checker: the canonical order's fields on a Request

    class OrderSubmit(Request, CanonicalOrder, tag="order.submit", kw_only=True): ...

else:
    OrderSubmit = msgspec.defstruct(
        "OrderSubmit", _fields_of(CanonicalOrder), bases=(Request,), tag="order.submit", kw_only=True, module=__name__
    )
OrderSubmit.__doc__ = """client -> order actor: create an order (idempotent on channel, account, external_id).

The canonical order (``backorder.order.CanonicalOrder``); the rules record it in the
journal as an ``events.OrderRecord``."""


class OrderCancel(Request, tag="order.cancel", kw_only=True):
    """client -> order actor: cancel an order that has not shipped."""

    order_id: str
    reason: Text = ""


class OrderGet(Request, tag="order.get", kw_only=True):
    """client -> read model: one order by order_id, or by (channel, account, external_id)."""

    order_id: str | None = None
    channel: str | None = None
    account: str = "default"
    external_id: str | None = None


# A page offset or a journal sequence number. Unbounded, such a number reaches SQLite
# (an OverflowError past 2^63 - 1) or itertools.islice (a ValueError past sys.maxsize);
# 2^53 - 1 is the largest integer every JSON client reads exactly, and no journal or page
# comes near it.
MAX_INDEX = 2**53 - 1
Index = Annotated[int, Meta(ge=0, le=MAX_INDEX)]


class OrdersList(Request, tag="orders.list", kw_only=True):
    """client -> read model: orders filtered by status and/or SKU, newest first, paged."""

    status: str | None = None
    sku: str | None = None
    limit: Annotated[int, Meta(ge=1, le=1000)] = 100
    offset: Index = 0


class StockReceive(Request, tag="stock.receive", kw_only=True):
    """client -> SKU actor: units arrived (optionally against a purchase order / transfer)."""

    sku: Sku
    qty: Quantity
    reference: Text | None = None
    # The sender's own id for this delivery: resending it (same SKU) changes nothing.
    receipt_id: Annotated[str, Meta(min_length=1, max_length=128)] | None = None


class StockAdjust(Request, tag="stock.adjust", kw_only=True):
    """client -> SKU actor: cycle count, as a signed delta or the counted quantity."""

    sku: Sku
    delta: Delta | None = None
    counted: Level | None = None
    reason: Text = ""


class SkuGet(Request, tag="sku.get", kw_only=True):
    """client -> read model: one SKU with its queue head and inbound supply."""

    sku: Sku
    lines: Annotated[int, Meta(ge=0, le=1000)] = 20


class SkusList(Request, tag="skus.list", kw_only=True):
    """client -> read model: SKUs, optionally only those with waiting demand, paged."""

    waiting: bool = False
    prefix: str = ""
    limit: Annotated[int, Meta(ge=1, le=10000)] = 100
    offset: Index = 0


class _PolicyNumbers(Request, kw_only=True):
    """A SKU and the numbers of a reorder policy (None: unchanged): what ``sku.configure``
    sets and ``whatif.policy`` tries. Not an op itself (not in ``OP_TABLE``)."""

    sku: Sku
    reorder_point: Level | None = None
    order_up_to: Level | None = None
    safety_stock: Level | None = None
    lead_time_days: Annotated[float, Meta(ge=0, le=3650)] | None = None
    moq: Quantity | None = None
    pack_size: Quantity | None = None


class SkuConfigure(_PolicyNumbers, tag="sku.configure", kw_only=True):
    """client -> SKU actor: set (part of) the reorder policy; unspecified fields keep their value."""

    source: Text | None = None
    backorder_threshold: Level | None = None
    mode: Literal["manual", "auto", "suggest"] | None = None  # who sets the three levels (planner)
    # this SKU's own target unit fill rate; "site": none of its own, the site's again
    service_level: Annotated[float, Meta(ge=0.5, le=0.999)] | Literal["site"] | None = None


class ProcurementList(Request, tag="procurement.list", kw_only=True):
    """client -> read model: purchase orders and transfer requests."""

    status: Literal["open", "closed", "all"] = "open"
    sku: str | None = None
    limit: Annotated[int, Meta(ge=1, le=10000)] = 100
    offset: Index = 0


class ProcurementConfirm(Request, tag="procurement.confirm", kw_only=True):
    """client -> SKU actor: the supplier confirmed (or moved) the expected date of a request."""

    request_id: str
    expected_date: IsoDate


class ShipmentsList(Request, tag="shipments.list", kw_only=True):
    """client -> read model: shipments, by status and/or order."""

    # at_threepl: routed to the 3PL, not yet shipped by it
    status: Literal["picking", "label_pending", "shipped", "cancelled", "all", "at_threepl"] = "picking"
    order_id: str | None = None
    limit: Annotated[int, Meta(ge=1, le=10000)] = 100
    offset: Index = 0


class ScanLine(Struct, kw_only=True, forbid_unknown_fields=True):
    """One SKU a picker scanned into a shipment, and how many units."""

    sku: Sku
    qty: Quantity


class PickConfirm(Request, tag="pick.confirm", kw_only=True):
    """client -> order actor: the shipment is picked; label it and ship it (once). With
    ``scanned``, only if the scan matches the shipment (else refused, and recorded)."""

    shipment_id: str
    scanned: Annotated[list[ScanLine], Meta(min_length=1, max_length=1000)] | None = None


class PolicyGet(Request, tag="policy.get", kw_only=True):
    """client -> read model: the allocation mode and priority weights."""


class WeightsUpdate(Struct, kw_only=True, forbid_unknown_fields=True):
    """Some of the priority weights (names as in ``settings.Weights``); a name left out
    keeps its current value. ``null`` is not a weight: leave the name out instead."""

    rush: Weight | UnsetType = UNSET
    value: Weight | UnsetType = UNSET
    age: Weight | UnsetType = UNSET

    def changes(self) -> dict[str, float]:
        return {f: v for f in self.__struct_fields__ if (v := getattr(self, f)) is not UNSET}


class PolicySet(Request, tag="policy.set", kw_only=True):
    """client -> order actor: switch FIFO / priority and (some of) the priority weights."""

    mode: Literal["fifo", "priority"]
    weights: WeightsUpdate | None = None


class AuditQuery(Request, tag="audit.query", kw_only=True):
    """client -> journal reader: durable events by order, SKU, actor and/or time, oldest first."""

    order_id: str | None = None
    sku: str | None = None
    since: str | None = None
    after_seq: Index = 0
    limit: Annotated[int, Meta(ge=1, le=10000)] = 100
    actor: str | None = None  # only the rows of commands this actor ordered


class Stats(Request, tag="stats", kw_only=True):
    """client -> read model: every KPI over 7 days, 30 days and since start, and the counts behind them."""


class Health(Request, tag="health", kw_only=True):
    """client -> daemon: liveness, journal lag, actors, restarts."""


class AtpLine(Struct, kw_only=True, forbid_unknown_fields=True):
    """A line of a prospective order (atp.check)."""

    sku: Sku
    qty: Quantity


class AtpCheck(Request, tag="atp.check", kw_only=True):
    """client -> read model: the promise each line of a prospective order would get, were it
    placed now (``sku`` and ``qty`` for one line, or ``lines``); nothing is created."""

    sku: Sku | None = None
    qty: Quantity | None = None
    lines: Annotated[list[AtpLine], Meta(max_length=1000)] = []
    ship_complete: bool = False
    rush: bool = False  # as order.submit's: under priority allocation its lines rank as rush


class ThreeplStatus(Request, tag="threepl.status", kw_only=True):
    """client -> read model: the 3PL's routing state, the site's pick backlog, the routed orders."""


# --- what-if: reads over the allocation planner (backorder.actors.whatif), nothing changes

WhatifLimit = Annotated[int, Meta(ge=0, le=10000)]  # affected lines listed (all are counted)


class WhatifReceipt(Request, tag="whatif.receipt", kw_only=True):
    """client -> read model: which waiting lines a receipt would serve, in what order, and their new dates."""

    sku: Sku | None = None
    request_id: Annotated[str, Meta(min_length=1, max_length=64)] | None = None
    qty: Quantity
    date: IsoDate | None = None  # when the units arrive; today (the default) = received now
    limit: WhatifLimit = 100


class WhatifDelay(Request, tag="whatif.delay", kw_only=True):
    """client -> read model: which customers' dates would move, and by how much, if a request came on ``date``."""

    request_id: Annotated[str, Meta(min_length=1, max_length=64)]
    date: IsoDate
    limit: WhatifLimit = 100


class WhatifPolicy(_PolicyNumbers, tag="whatif.policy", kw_only=True):
    """client -> read model: projected fill and inventory of a SKU under its policy and a candidate."""

    days: Annotated[int, Meta(ge=1, le=365)] = 90


class Subscribe(Request, tag="subscribe", kw_only=True):
    """client -> hub: stream events on this connection (topics: orders, stock, shipments, procurement, config, errors, intake)."""

    topics: list[str] = []


class DeadLettersList(Request, tag="deadletters.list", kw_only=True):
    """client -> supervisor: messages that crashed an actor."""


class DeadLettersRetry(Request, tag="deadletters.retry", kw_only=True):
    """client -> supervisor: deliver a dead-lettered message again; or (intake letters) a
    whole group: every letter with this ``cause`` (optionally of one channel)."""

    letter_id: Level | None = None
    cause: str | None = None
    channel: str | None = None


class OrderExpedite(Request, tag="order.expedite", kw_only=True):
    """client -> order actor: a person raises an order's priority; its waiting lines go
    ahead of every line not expedited (under FIFO too). ``reason`` is shown in the queue."""

    order_id: str
    reason: Annotated[str, Meta(min_length=1, max_length=512)]


class BulkFilter(Struct, kw_only=True, forbid_unknown_fields=True):
    """Which orders (or dead letters) a bulk action takes: every given field must match."""

    sku: Sku | None = None  # a line of this SKU still waits
    channel: Annotated[str, Meta(min_length=1, max_length=64)] | None = None
    account: Annotated[str, Meta(min_length=1, max_length=128)] | None = None
    min_waiting_hours: Annotated[float, Meta(ge=0, le=1_000_000)] = 0.0  # since received (a letter: since kept)


class OrdersBulk(Request, tag="orders.bulk", kw_only=True):
    """client -> order actor (cancel, expedite, release) or supervisor (retry dead
    letters): one action on a filtered set. ``dry_run`` answers the count, the ids and
    their digest; applying needs ``expect_count`` (and optionally ``expect_digest``) from
    it, else the set may have changed since the person confirmed (``bulk_changed``)."""

    action: Literal["cancel", "expedite", "release", "retry"]
    filter: BulkFilter = msgspec.field(default_factory=BulkFilter)
    reason: Text = ""
    dry_run: bool = False
    expect_count: Index | None = None
    expect_digest: Annotated[str, Meta(max_length=64)] | None = None


# --- order intake ----------------------------------------------------------------


class OrderIngest(Request, tag="order.ingest", kw_only=True):
    """client -> intake: one delivery exactly as a source sent it (raw body and headers)."""

    channel: Annotated[str, Meta(min_length=1, max_length=64)]
    account: Annotated[str, Meta(min_length=1, max_length=128)] | None = None
    headers: dict[str, str] = {}
    body: str | None = None
    body_base64: str | None = None


class OrderRelease(Request, tag="order.release", kw_only=True):
    """client -> order actor: lift the payment hold of an order; its lines join their queues."""

    order_id: str
    reason: Text = ""
    source_version: Annotated[str, Meta(max_length=64)] | None = None  # the version that released it


class OrderAmend(Request, tag="order.amend", kw_only=True):
    """client -> order actor: replace the lines of an order before any unit is allocated."""

    order_id: str
    lines: Annotated[list[OrderLineIn], Meta(min_length=1, max_length=1000)]
    reason: Text = ""
    source_version: Annotated[str, Meta(max_length=64)] | None = None  # the version with these lines
    totals: Totals | None = None  # the order's new totals (left out: they stay as they were)


class OrderAddress(Request, tag="order.address", kw_only=True):
    """client -> order actor: set the shipping address of an order not shipped yet (the
    street address its channel withheld, or a correction); clears ``needs_address``."""

    order_id: str
    shipping_address: Address
    reason: Text = ""


class DeadLettersDiscard(Request, tag="deadletters.discard", kw_only=True):
    """client -> intake: drop dead letters for good (one, or a cause group), with a reason."""

    letter_id: Level | None = None
    cause: str | None = None
    channel: str | None = None
    reason: Annotated[str, Meta(min_length=1, max_length=512)]


class IntakeAlias(Request, tag="intake.alias", kw_only=True):
    """client -> intake: map a channel SKU to a site SKU (journaled; ``sku: null`` removes)."""

    channel: Annotated[str, Meta(min_length=1, max_length=64)]
    account: Annotated[str, Meta(min_length=1, max_length=128)] = "*"
    channel_sku: Annotated[str, Meta(min_length=1, max_length=128)]
    sku: Sku | None = None


class SourcesHealth(Request, tag="sources.health", kw_only=True):
    """client -> intake: per channel and account, last delivery, outcome rates, silence."""


class LogLevel(Request, tag="log.level", kw_only=True):
    """client -> daemon: set the log level at run time (not journaled, not kept
    across a restart: [daemon] log_level applies again)."""

    level: Literal["debug", "info", "warning", "error"]


class ClockAdvance(Request, tag="clock.advance", kw_only=True):
    """client -> stepped clock: move engine time by ``seconds`` or to ``to`` (RFC 3339),
    exactly one of the two; the reply leaves once the work due by then has run and is durable."""

    seconds: float | None = None  # bounds checked by the daemon (> 0, finite, at most ten years)
    to: Annotated[str, Meta(max_length=64)] | None = None


class PlannerRun(Request, tag="planner.run", kw_only=True):
    """client -> planner: run the demand planner now (every auto / suggest SKU, or one);
    the reply leaves once its policy_tuned events are durable."""

    sku: Sku | None = None


class PlannerStatus(Request, tag="planner.status", kw_only=True):
    """client -> planner: the last run, the worker process, the schedule."""


class PlannerExplain(Request, tag="planner.explain", kw_only=True):
    """client -> planner: why the planner set (or left) a SKU's levels as it did."""

    sku: Sku


# --- notifications, labels, documents ------------------------------------------


class NotificationsList(Request, tag="notifications.list", kw_only=True):
    """client -> read model: outbox notices by delivery status and/or order, oldest first."""

    status: Literal["pending", "sent", "dead", "unrouted", "all"] = "all"
    order_id: str | None = None
    limit: Annotated[int, Meta(ge=1, le=10000)] = 100
    offset: Index = 0


class NotificationsRetry(Request, tag="notifications.retry", kw_only=True):
    """client -> notifier: send a dead notice again (``notice_id``), or every dead one (``all_dead``)."""

    notice_id: str | None = None
    all_dead: bool = False


class LabelGet(Request, tag="label.get", kw_only=True):
    """client -> read model: the stored label of a shipped shipment (ZPL text or base64 PDF)."""

    shipment_id: str
    format: Literal["zpl", "pdf"] = "zpl"


class ProcurementDocument(Request, tag="procurement.document", kw_only=True):
    """client -> read model: the document of a purchase order / transfer request."""

    request_id: str
    format: Literal["pdf", "csv", "x12_850"] = "pdf"


class PickListGet(Request, tag="picklist.get", kw_only=True):
    """client -> read model: a pick list for picking shipments (all of them when none is named)."""

    shipment_ids: Annotated[list[str], Meta(max_length=1000)] = []
    format: Literal["text", "pdf"] = "text"


class ProcurementCancel(Request, tag="procurement.cancel", kw_only=True):
    """client -> SKU actor: the request will not be delivered (nothing of it received yet)."""

    request_id: str
    reason: Text = ""


class ProcurementClose(Request, tag="procurement.close", kw_only=True):
    """client -> SKU actor: short-close: what has not come of the request never will."""

    request_id: str
    reason: Text = ""


class ProcurementAmend(Request, tag="procurement.amend", kw_only=True):
    """client -> SKU actor: change the quantity of an open request."""

    request_id: str
    qty: Quantity


class ProcurementAcknowledge(Request, tag="procurement.acknowledge", kw_only=True):
    """client / X12 855 -> SKU actor: the supplier confirmed the quantity it will send and the date."""

    request_id: str
    qty: Quantity
    expected_date: IsoDate


class ShipNoticeLine(Struct, kw_only=True, forbid_unknown_fields=True):
    sku: Sku
    qty: Quantity


class ProcurementShipNotice(Request, tag="procurement.ship_notice", kw_only=True):
    """client / X12 856 -> SKU actor: an advance ship notice: units of the request are on their way."""

    request_id: str
    lines: Annotated[list[ShipNoticeLine], Meta(min_length=1, max_length=1000)]
    expected_date: IsoDate
    reference: Annotated[str, Meta(min_length=1, max_length=128)]


# --- reads for the supervisor console ------------------------------------------


class SkusBoard(Request, tag="skus.board", kw_only=True):
    """TUI -> read model: SKU summaries with oldest wait, next inbound and coverage."""

    skus: list[Sku] | None = None  # only these SKUs (unknown names are skipped)
    waiting: bool = True  # without ``skus``: only SKUs with waiting lines
    limit: Annotated[int, Meta(ge=1, le=100000)] = 1000
    offset: Index = 0


class SkusStockout(Request, tag="skus.stockout", kw_only=True):
    """client -> read model: SKUs projected to stock out within their lead time, soonest first."""

    limit: Annotated[int, Meta(ge=1, le=10000)] = 100


class OrdersFind(Request, tag="orders.find", kw_only=True):
    """TUI -> read model: orders by order id, external id or order number (exact)."""

    query: Annotated[str, Meta(min_length=1, max_length=128)]
    limit: Annotated[int, Meta(ge=1, le=100)] = 20


# --- exceptions after shipping ----------------------------------------------------------

ExceptionKind = Literal["mis_pick", "short", "damaged", "wrong_address", "returned"]


class ExceptionLine(Struct, kw_only=True, forbid_unknown_fields=True):
    """An item of the shipment an exception concerns: its order line and how many units."""

    line_no: Annotated[int, Meta(ge=1, le=MAX_INT)]
    qty: Quantity


class ShipmentExceptionReport(Request, tag="shipment.exception", kw_only=True):
    """client -> order actor: record what went wrong with a shipped shipment (journaled;
    counts against the order's accuracy)."""

    shipment_id: str
    kind: ExceptionKind
    lines: Annotated[list[ExceptionLine], Meta(max_length=1000)] = []
    note: Text = ""


# --- the table of ops ----------------------------------------------------------------

Role = Literal["read", "write"]
# Who answers an op. The actor routes ("order", "sku", "procurement") send the request to
# the actor that owns the decision (backorder.actors.router); "procurement" is the SKU
# actor of the purchase order or transfer the request names. "intake": the intake
# (backorder.intake.ops). "read": answered at once from the model. "journal": read from
# the journal on a thread. "hub": the event stream of the connection. "notifier": the
# outbox sender. "supervisor": dead letters redelivered (to their actor or the intake).
# "daemon": the daemon's own settings (log level). "clock": the stepped engine clock.
# "planner": the demand planner's supervisor (backorder.daemon.planner).
# "bulk": orders.bulk, a filtered set: to the order actor, or (retry) redelivered as dead letters.
Route = Literal[
    "order",
    "sku",
    "procurement",
    "intake",
    "read",
    "journal",
    "hub",
    "notifier",
    "supervisor",
    "daemon",
    "clock",
    "planner",
    "bulk",
]
ACTOR_ROUTES: frozenset[str] = frozenset({"order", "sku", "procurement"})


@dataclass(frozen=True, slots=True)
class Op:
    """One row of the op table: the request struct (whose tag is the op's name), whether a
    ``read`` connection may send it, and who answers it. The daemon attaches one handler
    to each row (``backorder.daemon.handlers.HANDLERS``)."""

    request: type[Request]
    role: Role
    route: Route

    @property
    def name(self) -> str:
        return self.request.__struct_config__.tag  # type: ignore[return-value]


# Adding an op: a request struct above, a row here, a handler in the daemon's table.
# A ``write`` op is refused to a read-only connection (roles): every op that journals
# anything is one; so is ``log.level``, which changes the daemon's logging, not its state.
OP_TABLE: tuple[Op, ...] = (
    Op(OrderSubmit, "write", "order"),
    Op(OrderCancel, "write", "order"),
    Op(OrderGet, "read", "read"),
    Op(OrdersList, "read", "read"),
    Op(StockReceive, "write", "sku"),
    Op(StockAdjust, "write", "sku"),
    Op(SkuGet, "read", "read"),
    Op(SkusList, "read", "read"),
    Op(SkuConfigure, "write", "sku"),
    Op(ProcurementList, "read", "read"),
    Op(ProcurementConfirm, "write", "procurement"),
    Op(ShipmentsList, "read", "read"),
    Op(PickConfirm, "write", "order"),
    Op(PolicyGet, "read", "read"),
    Op(PolicySet, "write", "order"),
    Op(AuditQuery, "read", "journal"),
    Op(Stats, "read", "read"),
    Op(Health, "read", "read"),
    Op(Subscribe, "read", "hub"),
    Op(DeadLettersList, "read", "read"),
    Op(DeadLettersRetry, "write", "supervisor"),
    Op(SkusBoard, "read", "read"),
    Op(OrdersFind, "read", "read"),
    Op(LogLevel, "write", "daemon"),
    Op(NotificationsList, "read", "read"),
    Op(NotificationsRetry, "write", "notifier"),
    Op(LabelGet, "read", "read"),
    Op(ProcurementDocument, "read", "read"),
    Op(PickListGet, "read", "read"),
    Op(OrderIngest, "write", "intake"),
    Op(OrderRelease, "write", "order"),
    Op(OrderAmend, "write", "order"),
    Op(DeadLettersDiscard, "write", "intake"),
    Op(IntakeAlias, "write", "intake"),
    Op(SourcesHealth, "read", "intake"),
    Op(ClockAdvance, "write", "clock"),
    Op(OrderAddress, "write", "order"),
    Op(ShipmentExceptionReport, "write", "order"),
    Op(PlannerRun, "write", "planner"),
    Op(PlannerStatus, "read", "planner"),
    Op(PlannerExplain, "read", "planner"),
    Op(OrderExpedite, "write", "order"),
    Op(OrdersBulk, "write", "bulk"),
    Op(ProcurementCancel, "write", "procurement"),
    Op(ProcurementClose, "write", "procurement"),
    Op(ProcurementAmend, "write", "procurement"),
    Op(ProcurementAcknowledge, "write", "procurement"),
    Op(ProcurementShipNotice, "write", "procurement"),
    Op(ThreeplStatus, "read", "read"),
    Op(AtpCheck, "read", "read"),
    Op(WhatifReceipt, "read", "read"),
    Op(WhatifDelay, "read", "read"),
    Op(WhatifPolicy, "read", "read"),
    Op(SkusStockout, "read", "read"),
)

OPS = frozenset(op.name for op in OP_TABLE)
# The ops a read-only connection is refused (roles; see access.forbidden).
WRITE_OPS = frozenset(op.name for op in OP_TABLE if op.role == "write")
assert len(OPS) == len(OP_TABLE) == len({op.request for op in OP_TABLE}), "one row per op"

if TYPE_CHECKING:  # a union built from the table is opaque to a type checker
    AnyRequest = Request
else:  # the tagged union the decoder picks a struct from by ``op``
    AnyRequest = Union[tuple(op.request for op in OP_TABLE)]  # noqa: UP007 - built at run time


class _Head(Struct):
    """Just enough of a bad request to answer it: its id and op."""

    id: Raw = Raw(b"null")
    op: Any = None


REQUEST_DECODER = msgspec.json.Decoder(AnyRequest)
_HEAD_DECODER = msgspec.json.Decoder(_Head)
ENCODER = msgspec.json.Encoder(decimal_format="string")


def decode_request(line: bytes) -> AnyRequest:
    """Decode one request line, or raise Rejected with a stable code."""
    try:
        req = REQUEST_DECODER.decode(line)
        bytes(req.id).decode()  # msgspec does not check the UTF-8 of a Raw; the id is echoed
        return req
    except msgspec.ValidationError as exc:
        raise _classify(str(exc)) from None
    except msgspec.DecodeError as exc:
        raise ProtocolError("malformed_json", f"request is not valid JSON: {exc}") from None
    except UnicodeDecodeError:  # msgspec raises it for a string that is not UTF-8
        raise ProtocolError("malformed_json", "request is not valid UTF-8") from None
    except RecursionError:
        # msgspec recurses once per nesting level (even to skip an unknown field or a Raw
        # id) and raises this, recoverably, at the interpreter's recursion limit. Catching
        # it here costs the hot path nothing, where a depth pre-scan of every line would not.
        raise ProtocolError(
            "too_deep",
            "request nests arrays or objects deeper than the decoder allows "
            "(several hundred levels; no request needs more than 4)",
        ) from None


def request_id(line: bytes) -> Raw:
    """The id of a request that failed to decode (null when even that is unreadable)."""
    try:
        rid = _HEAD_DECODER.decode(line).id
        bytes(rid).decode()
        return rid
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return Raw(b"null")


def _classify(text: str) -> Rejected:
    # msgspec names the path of a nested error ("... - at `$.lines[0].qty`"); an error of
    # the top-level object itself has no path.
    top_level = " - at `$" not in text
    if top_level and text == "Object missing required field `op`":
        return ProtocolError("missing_op", "request has no 'op' field")
    if "`$.op`" in text:
        return ProtocolError("unknown_op", f"unknown op ({text}); known ops: {', '.join(sorted(OPS))}")
    if top_level and text.startswith("Expected `object`"):
        return ProtocolError("malformed_json", "a request must be a JSON object")
    if "`$.expected_date`" in text:
        return InvalidInput("invalid_date", f"expected_date must be a calendar date YYYY-MM-DD: {text}")
    for field in ("qty`", "delta`", "counted`"):
        if field in text and not text.startswith("Object missing required field"):
            return InvalidInput("invalid_quantity", f"quantities must be whole numbers > 0: {text}")
    return InvalidInput("invalid_request", text)


# --- replies -------------------------------------------------------------------


class ErrorBody(Struct):
    code: str
    message: str


class OkReply(Struct):
    id: Raw
    ok: bool
    result: Any


class ErrReply(Struct):
    id: Raw
    ok: bool
    error: ErrorBody


def ok(req_id: Raw, result: Any) -> OkReply:
    return OkReply(req_id, True, result)


def err(req_id: Raw, code: str, message: str) -> ErrReply:
    return ErrReply(req_id, False, ErrorBody(code, message))
