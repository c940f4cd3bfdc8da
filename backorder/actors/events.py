"""Journal events: the facts the engine records, one msgspec Struct per kind.

Each event is appended to the journal *and* applied to the in-memory model by
``model.World.evolve`` — the one and only mutator of state — so a replay after a crash
rebuilds exactly what the live daemon had. Events that touch a SKU carry ``sku`` and
events that touch an order carry ``order_id``; the journal indexes both for the audit.
Decisions (which line gets a unit, when to reorder, when to ship) are made by actors and
recorded as these facts; ``evolve`` never decides anything.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec
import msgspec.inspect
from msgspec import Struct

from backorder.config.settings import ReorderPolicy, Weights
from backorder.numbers import Int53

# --- the order as the journal records it ------------------------------------------
# The journal's own structs, not the wire's (backorder.protocol) nor the canonical order
# (backorder.order): the rules convert an accepted order at the edge, so a change to the
# socket protocol cannot silently change what the journal holds. The JSON field names are
# the ones ``order_received`` and ``order_amended`` have always had. Journals written
# when the event embedded the ``order.submit`` request carry its ``"op"`` and ``"id"``
# inside ``order``: unknown fields, ignored on decode (tests/unit/test_old_journal.py).
# No validation beyond what replay needs (Int53 keeps a count exact in every JSON reader):
# the wire validated the order before it was accepted.


class CustomerRecord(Struct, kw_only=True, frozen=True):
    id: str = ""
    name: str = ""


class AddressRecord(Struct, kw_only=True, frozen=True):
    name: str = ""
    company: str = ""
    address1: str = ""
    address2: str = ""
    city: str = ""
    region: str = ""
    postal_code: str = ""
    country_code: str = ""
    phone: str = ""


class LineRecord(Struct, kw_only=True, frozen=True):
    sku: str
    qty: Int53
    unit_price: Decimal = Decimal(0)  # per unit, before discounts and tax (journals before: after discounts)
    requires_shipping: bool = True
    discount: Decimal = Decimal(0)  # allocated to the line (journals before: none)
    line_total: Decimal | None = None  # None: qty x unit_price - discount (see ``line_total``)
    channel_line_id: str = ""


def line_total(li: LineRecord) -> Decimal:
    """What the line costs after its discount, before tax: as the channel sent it, else
    qty x unit_price - discount (exact: Decimal, never rounded)."""
    if li.line_total is not None:
        return li.line_total
    return li.unit_price * li.qty - li.discount


class TotalsRecord(Struct, kw_only=True, frozen=True):
    """The order's money as the channel reported it (``order.Totals``)."""

    subtotal: Decimal = Decimal(0)
    discount: Decimal = Decimal(0)
    shipping: Decimal = Decimal(0)
    fees: Decimal = Decimal(0)
    tax: Decimal = Decimal(0)
    total: Decimal = Decimal(0)


class OrderRecord(Struct, kw_only=True, frozen=True):
    """An accepted order (the model keeps it as ``Order.spec``)."""

    channel: str
    account: str = "default"
    external_id: str
    order_number: str = ""
    customer: CustomerRecord = msgspec.field(default_factory=CustomerRecord)
    email: str = ""
    shipping_address: AddressRecord = msgspec.field(default_factory=AddressRecord)
    created_at: str | None = None
    currency: str = "USD"
    lines: list[LineRecord]
    rush: bool = False
    priority: bool = False
    ship_complete: bool = False
    hold: str = ""
    source_version: str | None = None
    totals: TotalsRecord | None = None  # journals before, and clients that send none: None
    needs_address: bool = False  # no shipment is labelled until the address is set


# --- events ------------------------------------------------------------------------


class Event(Struct, kw_only=True, frozen=True, tag_field="type"):
    ts: float  # engine clock, seconds since the epoch (UTC)


class OrderReceived(Event, tag="order_received", kw_only=True, frozen=True):
    """order actor: a new order was accepted, every field as submitted; its lines that
    need shipping join their SKUs' queues."""

    order_id: str
    order: OrderRecord


class Allocated(Event, tag="allocated", kw_only=True, frozen=True):
    """SKU actor: units reserved to a line, with the rule and rank that chose it."""

    sku: str
    order_id: str
    line_no: Int53
    qty: Int53
    rule: str
    rank: float


class AllocatedLine(Struct, kw_only=True, frozen=True, array_like=True, gc=False):
    """One line's share of a ``lines_allocated`` event: journaled as a JSON array
    ``[order_id, line_no, qty, rank]`` (a 100,000-line fill is one row of ~3 MB, not of ~12)."""

    order_id: str
    line_no: Int53
    qty: Int53
    rank: float


class LinesAllocated(Event, tag="lines_allocated", kw_only=True, frozen=True):
    """SKU actor: units reserved to waiting lines by one settle, in service order, all
    under ``rule``. One journal row per settle instead of one ``allocated`` per line: a
    receipt that fills 100,000 lines is one row (bench/fill.py). The journal links the row
    to each order it names (``order_links``), and the audit by order and the event stream
    show it as the ``allocated`` event of each line (``allocations``). Journals before it
    hold ``allocated`` events; both replay."""

    sku: str
    rule: str
    lines: list[AllocatedLine]


def allocations(e: LinesAllocated) -> list[Allocated]:
    """A ``lines_allocated`` event as the ``allocated`` events of its lines."""
    return [
        Allocated(ts=e.ts, sku=e.sku, order_id=a.order_id, line_no=a.line_no, qty=a.qty, rule=e.rule, rank=a.rank)
        for a in e.lines
    ]


class LineBackordered(Event, tag="line_backordered", kw_only=True, frozen=True):
    """SKU actor: a newly queued line could not be covered in full; ``qty`` units wait."""

    sku: str
    order_id: str
    line_no: Int53
    qty: Int53


class Deallocated(Event, tag="deallocated", kw_only=True, frozen=True):
    """SKU actor: units taken back from a line (a cycle count found less stock)."""

    sku: str
    order_id: str
    line_no: Int53
    qty: Int53


class AllocationLent(Event, tag="allocation_lent", kw_only=True, frozen=True):
    """SKU actor: ``qty`` units held for a ship-complete order that cannot complete before
    the SKU's next supply restores them were lent to a line that ships now (``allocation_plan.lend``).
    The lender's line (``order_id``/``line_no``) gives them back and waits again in its own
    place, so the next units go to it first; an ``allocated`` with rule ``lent`` to the
    borrower (``to_order_id``/``to_line_no``) follows. ``back_by``: the date the plan
    expects the lender's units back (its line's date); ``completes``: its order's date,
    the latest of its lines' (back_by <= completes); both as the plan has them after all
    of the settle's loans, so no later than before them (its order's date did not move
    later). Neither is read by replay: a journal written when a settle's first loan kept
    the date it was checked against (later than that, when a second loan of the settle
    brought it forward) replays the same."""

    sku: str
    order_id: str
    line_no: Int53
    qty: Int53
    to_order_id: str
    to_line_no: Int53
    back_by: str
    completes: str


class ReceiptMatch(Struct, kw_only=True, frozen=True):
    """Units of a receipt counted against one open request."""

    request_id: str
    qty: Int53


class Received(Event, tag="received", kw_only=True, frozen=True):
    """SKU actor: units arrived; ``request_id`` names the PO / transfer it counts against.

    A receipt naming no open request of the SKU is matched to the SKU's open requests,
    oldest expected date first (``matched``: the units counted against each). Units beyond
    the open quantity of the request(s) they count against are ``over_delivered``: kept as
    stock, counted against the (last) request, and flagged on it."""

    sku: str
    qty: Int53
    reference: str | None = None
    request_id: str | None = None
    receipt_id: str | None = None  # the sender's idempotency key, if it gave one
    matched: list[ReceiptMatch] = []
    over_delivered: Int53 = 0


class Adjusted(Event, tag="adjusted", kw_only=True, frozen=True):
    """SKU actor: a cycle count or correction changed on-hand by ``delta``."""

    sku: str
    delta: Int53
    reason: str


class SkuConfigured(Event, tag="sku_configured", kw_only=True, frozen=True):
    """SKU actor: the SKU's reorder policy (the whole policy after the change)."""

    sku: str
    policy: ReorderPolicy


class RequestRaised(Event, tag="request_raised", kw_only=True, frozen=True):
    """SKU actor (procurement rule): a purchase order or transfer request was raised."""

    request_id: str
    sku: str
    kind: str  # "po" | "transfer"
    source: str
    qty: Int53
    expected_date: str
    position: Int53  # inventory position that triggered it
    # The purchase order the request is a line of: the id of the PO's first request. None
    # (journals from before consolidation): a PO of its own, named by its own id.
    po_id: str | None = None
    # When the PO's document is sent (engine time): the end of the consolidation window
    # the PO opened; 0 = at once. Set on the request that opens the PO. (Not an optional
    # float: a non-finite value would be written as null and replay as "at once".)
    send_after: float = 0.0


class RequestConfirmed(Event, tag="request_confirmed", kw_only=True, frozen=True):
    """SKU actor: the source confirmed or moved the expected date of a request."""

    request_id: str
    sku: str
    expected_date: str


class RequestCancelled(Event, tag="request_cancelled", kw_only=True, frozen=True):
    """SKU actor: a request with nothing received was cancelled; none of it will come."""

    request_id: str
    sku: str
    reason: str
    open_qty: Int53  # what was still expected


class RequestShortClosed(Event, tag="request_short_closed", kw_only=True, frozen=True):
    """SKU actor: a request was closed short: what has not come (``open_qty``) never will."""

    request_id: str
    sku: str
    reason: str
    open_qty: Int53


class RequestAmended(Event, tag="request_amended", kw_only=True, frozen=True):
    """SKU actor: the quantity of an open request changed from ``was`` to ``qty``."""

    request_id: str
    sku: str
    qty: Int53
    was: Int53


class RequestAcknowledged(Event, tag="request_acknowledged", kw_only=True, frozen=True):
    """SKU actor: the supplier confirmed a request (X12 855): the quantity it will send
    (the request's quantity from now on) and the date."""

    request_id: str
    sku: str
    qty: Int53
    expected_date: str


class ShipNoticeRecorded(Event, tag="ship_notice_recorded", kw_only=True, frozen=True):
    """SKU actor: an advance ship notice (X12 856): ``qty`` units of the request are on
    their way under the supplier's ``reference``, arriving ``expected_date``."""

    request_id: str
    sku: str
    reference: str
    qty: Int53
    expected_date: str


class ShipmentCreated(Event, tag="shipment_created", kw_only=True, frozen=True):
    """order actor: allocated units of an order go to picking as one shipment."""

    shipment_id: str
    order_id: str
    items: list[tuple[Int53, str, Int53]]  # (line_no, sku, qty)


class CreatedShipment(Struct, kw_only=True, frozen=True, array_like=True):
    """One shipment of a ``shipments_created`` event: journaled as a JSON array
    ``[shipment_id, order_id, items]``, ``items`` as in ``shipment_created``."""

    shipment_id: str
    order_id: str
    items: list[tuple[Int53, str, Int53]]  # (line_no, sku, qty)


class ShipmentsCreated(Event, tag="shipments_created", kw_only=True, frozen=True):
    """order actor: allocated units of several orders go to picking, one shipment per
    order, in the order given. One journal row per batch instead of one
    ``shipment_created`` per order: the 100,000 orders a fill serves are ~100 rows, not
    100,000 (bench/fill.py). As for ``lines_allocated``, the journal links the row to each
    order it names, and the audit by order and the event stream show it as the
    ``shipment_created`` event of each shipment (``parts``). Journals before it hold
    ``shipment_created`` events; both replay."""

    shipments: list[CreatedShipment]


class ShipmentShipped(Event, tag="shipment_shipped", kw_only=True, frozen=True):
    """order actor: the shipment was picked, labelled and handed to the carrier."""

    shipment_id: str
    order_id: str
    carrier: str
    tracking: str
    label_zpl: str
    # a remote carrier's label: its PDF (base64; "" = rendered locally on request), the
    # service bought and the carrier's own shipment id (what a void names)
    label_pdf: str = ""
    service: str = ""
    carrier_ref: str = ""


class UnitsShipped(Event, tag="units_shipped", kw_only=True, frozen=True):
    """order actor: the units of one shipment item left the site (one per SKU item)."""

    sku: str
    order_id: str
    line_no: Int53
    qty: Int53
    shipment_id: str


class NoticeQueued(Event, tag="notice_queued", kw_only=True, frozen=True):
    """order / SKU actor: a notification was put in the outbox, in the same commit as the
    change that causes it. ``data`` is the template context (backorder/notify/templates),
    ``channel`` the delivery channel the route chose when it was queued."""

    notice_id: str
    order_id: str | None = None
    # customer: "backordered" | "delay" | "partially_shipped" | "shipped" | "cancelled" |
    # "depletion"; supplier: "purchase_order"
    kind: str
    email: str
    subject: str
    body: str
    channel: str = "none"  # "none" | "email" | "webhook" | "file"
    audience: str = "customer"  # "customer" | "supplier"
    request_id: str | None = None
    data: dict = {}


class NoticeAttempted(Event, tag="notice_attempted", kw_only=True, frozen=True):
    """notifier: a delivery attempt starts (durable before anything is sent)."""

    notice_id: str
    order_id: str | None = None
    attempt: Int53
    channel: str


class NoticeDelivered(Event, tag="notice_delivered", kw_only=True, frozen=True):
    """notifier: the receiver confirmed the notice; it is never sent again."""

    notice_id: str
    order_id: str | None = None
    attempt: Int53
    response: str = ""


class NoticeFailed(Event, tag="notice_failed", kw_only=True, frozen=True):
    """notifier: an attempt failed; ``dead`` once the attempts are used up."""

    notice_id: str
    order_id: str | None = None
    attempt: Int53
    error: str
    dead: bool = False


class NoticeFeed(Event, tag="notice_feed", kw_only=True, frozen=True):
    """notifier (a channel's adapter, mid-attempt): the channel took notice ``notice_id`` as
    its feed ``feed_id`` (``state`` "submitted": durable before the attempt goes on, so a
    retry reads that feed's processing report instead of submitting it again), or that
    feed's report refused it ("refused": a retry after a fix submits a new feed)."""

    notice_id: str
    order_id: str | None = None
    feed_id: str
    state: str


class NoticeRetried(Event, tag="notice_retried", kw_only=True, frozen=True):
    """notifications.retry: a dead notice goes back to pending with fresh attempts."""

    notice_id: str
    order_id: str | None = None


class OrderCancelled(Event, tag="order_cancelled", kw_only=True, frozen=True):
    """order actor: the order was cancelled; picking shipments are void."""

    order_id: str
    reason: str


class LineReleased(Event, tag="line_released", kw_only=True, frozen=True):
    """order actor: a cancelled line left its SKU's queue and gave back its units."""

    sku: str
    order_id: str
    line_no: Int53
    freed: Int53


class PolicyChanged(Event, tag="policy_changed", kw_only=True, frozen=True):
    """order actor: the site's allocation mode and priority weights."""

    mode: str
    weights: Weights


class DeadLettered(Event, tag="dead_lettered", kw_only=True, frozen=True):
    """supervisor: a message crashed an actor and was set aside."""

    letter_id: Int53
    actor: str
    message: str  # JSON of the message
    error: str
    sku: str | None = None
    order_id: str | None = None
    # intake letters (kind "intake"): ``message`` is the delivery (channel, account, headers,
    # body_base64: byte-exact), ``cause`` the rejection code, ``impact`` its score.
    kind: str = "actor"
    cause: str = ""
    channel: str | None = None
    account: str | None = None
    external_id: str | None = None
    impact: float = 0.0
    attempts: Int53 = 1


class DeadLetterRetried(Event, tag="dead_letter_retried", kw_only=True, frozen=True):
    """supervisor / intake: a dead letter was delivered again. ``resolved = false``: it
    failed again (intake) and stays, with one more attempt and the new cause."""

    letter_id: Int53
    resolved: bool = True
    outcome: str | None = None
    cause: str | None = None
    error: str | None = None


class DeadLetterDiscarded(Event, tag="dead_letter_discarded", kw_only=True, frozen=True):
    """intake: a dead letter was dropped for good by an operator, with the reason."""

    letter_id: Int53
    reason: str


class OrderReleased(Event, tag="order_released", kw_only=True, frozen=True):
    """order actor: the payment hold of an order was lifted; its lines join their queues."""

    order_id: str
    reason: str
    source_version: str | None = None  # the source's version that released it (journals before: none)


class OrderAmended(Event, tag="order_amended", kw_only=True, frozen=True):
    """order actor: the lines of an order nothing was allocated to yet were replaced (a
    source's change before allocation); the old lines left their queues."""

    order_id: str
    lines: list[LineRecord]
    reason: str
    source_version: str | None = None  # the source's version with these lines (journals before: none)
    totals: TotalsRecord | None = None  # the order's new totals (None: they stay as they were)


class AliasSet(Event, tag="alias_set", kw_only=True, frozen=True):
    """intake: a channel SKU maps to a site SKU for (channel, account; "*" = every account)."""

    channel: str
    account: str
    channel_sku: str
    sku: str | None  # None: the alias was removed


class JournalQuarantined(Event, tag="journal_quarantined", kw_only=True, frozen=True):
    """operator (``backorder journal quarantine``, daemon stopped): the event numbered
    ``seq`` cannot be replayed, and replay skips it from now on (the ``quarantine`` table).
    Its row stays in the journal untouched; ``body`` is a copy of it as text (bytes that are
    not UTF-8 shown as escapes), ``error`` why it failed, ``reason`` the operator's words."""

    seq: Int53
    original_type: str
    body: str
    error: str
    reason: str


class OrderAddressSet(Event, tag="order_address_set", kw_only=True, frozen=True):
    """order actor: the shipping address of an order not yet shipped was set (the one its
    channel withheld, or a correction); an order that needed its address may now be labelled."""

    order_id: str
    shipping_address: AddressRecord
    reason: str


class ShipmentException(Event, tag="shipment_exception", kw_only=True, frozen=True):
    """order actor (``shipment.exception``): something went wrong with a shipped shipment:
    ``kind`` mis_pick | short | damaged | wrong_address | returned; ``lines`` the items it
    concerns as (line_no, sku, qty), empty for the whole shipment. Counts against the
    order's accuracy."""

    shipment_id: str
    order_id: str
    kind: str
    lines: list[tuple[Int53, str, Int53]] = []
    note: str = ""


class PickMismatched(Event, tag="pick_mismatched", kw_only=True, frozen=True):
    """order actor: a ``pick.confirm`` scan did not match the shipment, so the pick was
    refused (``pick_mismatch``) and nothing shipped; recorded for the order's accuracy.
    ``expected`` and ``scanned`` are (sku, qty) per SKU, sorted by SKU."""

    shipment_id: str
    order_id: str
    expected: list[tuple[str, Int53]]
    scanned: list[tuple[str, Int53]]


class TunedLevels(Struct, kw_only=True, frozen=True):
    """The three levels the planner sets (before or after a run)."""

    reorder_point: Int53
    order_up_to: Int53
    safety_stock: Int53


class ForecastSummary(Struct, kw_only=True, frozen=True):
    """What the forecast said, in units: mean per day over the next 30 days, their total,
    the demand over the protection window (lead time + review), the daily forecast error
    (standard deviation), the lead time used (mean and standard deviation, days) and
    whether that lead time was measured from the journal or taken from the policy."""

    daily_mean: float
    next_30_days: float
    lead_time_demand: float
    error_sd: float
    lead_time_days: float
    lead_time_sd: float
    lead_time_measured: bool


class PolicyTuned(Event, tag="policy_tuned", kw_only=True, frozen=True):
    """planner -> SKU actor: the demand planner's levels for a SKU, with the ones they
    replace and why. ``applied``: they became the SKU's policy (mode auto); otherwise
    (mode suggest) they are a suggestion a person may apply with sku.configure.
    ``demand_class``: Syntetos-Boylan (smooth, erratic, intermittent, lumpy) or why none."""

    sku: str
    mode: str
    applied: bool
    old: TunedLevels
    new: TunedLevels
    demand_class: str
    model: str
    forecast: ForecastSummary
    reasons: list[str]


class OrderExpedited(Event, tag="order_expedited", kw_only=True, frozen=True):
    """order actor: a person raised an order's priority: its waiting lines go ahead of
    every line that is not expedited, under FIFO as under priority (``World.queue_key``).
    Who did it is the journal row's actor; ``reason`` is shown in the queue."""

    order_id: str
    reason: str


class ShipmentLabelPending(Event, tag="shipment_label_pending", kw_only=True, frozen=True):
    """order actor: a picked shipment waits for its label from a remote carrier (bought by
    the notifier through the outbox: ``notice_id`` is that ``label`` notice)."""

    shipment_id: str
    order_id: str
    carrier: str
    notice_id: str


class ShipmentRated(Event, tag="shipment_rated", kw_only=True, frozen=True):
    """notifier: the carrier created its shipment and the rate to buy was chosen; a retry
    after a crash buys (or finds bought) this same carrier shipment, never a second one."""

    shipment_id: str
    order_id: str
    carrier: str
    carrier_ref: str
    rate_id: str
    service: str
    amount: str


class ShipmentTracked(Event, tag="shipment_tracked", kw_only=True, frozen=True):
    """tracking webhook: the carrier reported the parcel ``in_transit``, ``delivered`` or
    in ``exception`` (``detail`` is the carrier's own status text)."""

    shipment_id: str
    order_id: str
    status: str
    detail: str = ""


class OrderRouted(Event, tag="order_routed", kw_only=True, frozen=True):
    """order actor: a new order goes to the third-party logistics provider (``provider``)
    instead of the site's pick queue, whole, as shipment ``shipment_id``: its lines leave
    their SKUs' queues and take no site stock; the 3PL's shipment webhook ships it."""

    order_id: str
    provider: str
    reason: str
    shipment_id: str
    items: list[tuple[Int53, str, Int53]]  # (line_no, sku, qty)


class ThreeplChangeRequested(Event, tag="threepl_change", kw_only=True, frozen=True):
    """order actor: a cancellation (``change`` "cancel") or a new shipping address
    (``change`` "address", ``shipping_address``) of an order at the 3PL was asked for; the
    ``threepl_change`` notice ``notice_id`` takes it to the 3PL. Nothing changes on the
    order until the 3PL answers (``threepl_change_done``)."""

    order_id: str
    notice_id: str
    change: str
    reason: str
    shipping_address: AddressRecord | None = None


class ThreeplChangeDone(Event, tag="threepl_change_done", kw_only=True, frozen=True):
    """notifier: the 3PL answered the change of notice ``notice_id``: ``outcome`` "applied"
    (the order's ``order_cancelled`` / ``order_address_set`` come in the same commit) or
    "too_late" (it was picked or shipped already: the order is unchanged), with its words."""

    order_id: str
    notice_id: str
    change: str
    outcome: str
    message: str


class ThreeplRouting(Event, tag="threepl_routing", kw_only=True, frozen=True):
    """order actor: routing new orders to the 3PL turned on or off, with the site's pick
    backlog in hours that crossed the threshold."""

    on: bool
    backlog_hours: float
    reason: str


class PromisedLine(Struct, kw_only=True, frozen=True):
    """One line's promise in ``lines_promised``: its ship-by ``date`` (YYYY-MM-DD),
    ``source`` ("from" on the wire: "stock", the request id whose units it waits for, or
    "lead_time") and ``confidence`` (the chance it holds, 0-1)."""

    line_no: Int53
    sku: str
    date: str
    source: str = msgspec.field(name="from")
    confidence: float


class LinesPromised(Event, tag="lines_promised", kw_only=True, frozen=True):
    """order actor: the ship-by dates an order's lines were promised when it was accepted
    (``promise_rules``), one event per order; a line keeps its first promise."""

    order_id: str
    lines: list[PromisedLine]


class OrdersArchived(Event, tag="orders_archived", kw_only=True, frozen=True):
    """retention sweep: these closed orders left memory at an engine-day boundary; their
    records were written to ``archived_orders`` in the same commit (actors/retention.py)."""

    order_ids: list[str]


class RecordsArchived(Event, tag="records_archived", kw_only=True, frozen=True):
    """retention sweep: these closed purchase orders / transfer requests (every line of
    each PO) and delivered or unrouted notices left memory at an engine-day boundary; their
    records were written to ``archived_records`` in the same commit (actors/retention.py)."""

    request_ids: list[str] = []
    notice_ids: list[str] = []


AnyEvent = (
    OrderReceived
    | Allocated
    | LinesAllocated
    | LineBackordered
    | Deallocated
    | AllocationLent
    | Received
    | Adjusted
    | SkuConfigured
    | RequestRaised
    | RequestConfirmed
    | RequestCancelled
    | RequestShortClosed
    | RequestAmended
    | RequestAcknowledged
    | ShipNoticeRecorded
    | ShipmentCreated
    | ShipmentsCreated
    | ShipmentShipped
    | UnitsShipped
    | NoticeQueued
    | NoticeAttempted
    | NoticeDelivered
    | NoticeFailed
    | NoticeRetried
    | NoticeFeed
    | OrderCancelled
    | LineReleased
    | PolicyChanged
    | DeadLettered
    | DeadLetterRetried
    | DeadLetterDiscarded
    | OrderReleased
    | OrderAmended
    | AliasSet
    | JournalQuarantined
    | OrderAddressSet
    | ShipmentException
    | PickMismatched
    | PolicyTuned
    | OrderExpedited
    | ShipmentLabelPending
    | ShipmentRated
    | ShipmentTracked
    | OrderRouted
    | ThreeplRouting
    | LinesPromised
    | ThreeplChangeRequested
    | ThreeplChangeDone
    | OrdersArchived
    | RecordsArchived
)

EVENT_DECODER = msgspec.json.Decoder(AnyEvent)
EVENT_ENCODER = msgspec.json.Encoder(decimal_format="string")


def _has_optional_float(t: msgspec.inspect.Type, seen: frozenset = frozenset()) -> bool:
    """Whether a type holds a ``float | None`` somewhere: there a non-finite float is
    written as ``null`` and read back as None, which a decode alone does not notice."""
    match t:
        case msgspec.inspect.UnionType(types=types):
            kinds = {type(x) for x in types}
            if {msgspec.inspect.FloatType, msgspec.inspect.NoneType} <= kinds:
                return True
            return any(_has_optional_float(x, seen) for x in types)
        case msgspec.inspect.StructType(cls=cls, fields=fields) if cls not in seen:
            return any(_has_optional_float(f.type, seen | {cls}) for f in fields)
        case msgspec.inspect.ListType(item_type=item) | msgspec.inspect.VarTupleType(item_type=item):
            return _has_optional_float(item, seen)
        case msgspec.inspect.DictType(value_type=value):
            return _has_optional_float(value, seen)
        case msgspec.inspect.TupleType(item_types=items):
            return any(_has_optional_float(x, seen) for x in items)
    return False


# the event types whose decoded body is compared with the event itself (encode_checked)
_COMPARED = frozenset(
    x.cls
    for x in msgspec.inspect.type_info(AnyEvent).types
    if _has_optional_float(x)  # type: ignore[attr-defined]
)

# Subscription topics -> event type tags.
TOPICS: dict[str, frozenset[str]] = {
    "orders": frozenset(
        {
            "order_received",
            "order_cancelled",
            "line_backordered",
            "notice_queued",
            "order_released",
            "order_amended",
            "order_address_set",
            "order_expedited",
            "lines_promised",
        }
    ),
    # a batch row is streamed as its parts (BATCHES): a lines_allocated row as the allocated
    # event of each of its lines, a shipments_created row as a shipment_created per shipment
    "stock": frozenset({"allocated", "deallocated", "allocation_lent", "received", "adjusted", "line_released"}),
    "shipments": frozenset(
        {
            "shipment_created",
            "shipment_shipped",
            "units_shipped",
            "shipment_exception",
            "pick_mismatched",
            "shipment_label_pending",
            "shipment_rated",
            "shipment_tracked",
            "order_routed",
            "threepl_routing",
            "threepl_change",
            "threepl_change_done",
        }
    ),
    "procurement": frozenset(
        {
            "request_raised",
            "request_confirmed",
            "request_cancelled",
            "request_short_closed",
            "request_amended",
            "request_acknowledged",
            "ship_notice_recorded",
        }
    ),
    "config": frozenset({"sku_configured", "policy_changed", "policy_tuned"}),
    "notifications": frozenset(
        {"notice_queued", "notice_attempted", "notice_delivered", "notice_failed", "notice_retried", "notice_feed"}
    ),
    "errors": frozenset({"dead_lettered", "dead_letter_retried", "dead_letter_discarded", "journal_quarantined"}),
    # intake_outcome and source_silent are not journaled: the intake service publishes them
    "intake": frozenset(
        {
            "intake_outcome",
            "source_silent",
            "dead_lettered",
            "dead_letter_retried",
            "dead_letter_discarded",
            "alias_set",
            "order_released",
            "order_amended",
        }
    ),
}


# Events whose effect on the model is confined to their own SKU's record (``Model.evolve``:
# a policy_tuned sets the SKU's levels and its planner record, nothing else): a read of
# another SKU, or of an order with no line on it, shows nothing they change, so its reply
# need not wait until they are durable (``Journal.fence``). A planner run journals one per
# SKU for seconds; without this every read in that time waited for a commit. Any other
# event may change anything a read shows, so every reply waits for it. Add a type here
# only if its ``evolve`` handler touches nothing but ``world.skus[e.sku]`` and
# ``world.tuned[e.sku]``.
SKU_CONFINED: frozenset[type] = frozenset({PolicyTuned})

# Events that stand for several events of one kind, each naming its order (one journal
# row for many): the tag of the batch -> the tag each of its parts is shown as in the
# audit by order and the event stream.
BATCHES = {"lines_allocated": "allocated", "shipments_created": "shipment_created"}
Batch = LinesAllocated | ShipmentsCreated


def parts(e: Batch) -> list[Allocated] | list[ShipmentCreated]:
    """A batch event as the events of its parts (``BATCHES``)."""
    if type(e) is LinesAllocated:
        return allocations(e)
    return [
        ShipmentCreated(ts=e.ts, shipment_id=c.shipment_id, order_id=c.order_id, items=c.items)
        for c in e.shipments  # type: ignore[union-attr]
    ]


def named_orders(e: Batch) -> list[str]:
    """The orders a batch event names, each once, in its order."""
    if type(e) is LinesAllocated:
        return list(dict.fromkeys(a.order_id for a in e.lines))
    return list(dict.fromkeys(c.order_id for c in e.shipments))  # type: ignore[union-attr]


def tag_of(ev: Event) -> str:
    return type(ev).__struct_config__.tag  # type: ignore[return-value]


class UnjournalableEvent(Exception):
    """Raised by ``encode_checked`` (so by ``Engine.emit``, before the event is applied or
    written) for an event the journal's decoder would refuse on replay: a number that is
    not finite (JSON has no inf/nan: msgspec writes ``null``), an integer beyond the
    schema's bounds, a string that cannot be UTF-8. ``event_type`` is the event's tag."""

    def __init__(self, event_type: str, reason: str) -> None:
        super().__init__(f"a {event_type} event cannot be journaled: {reason}")
        self.event_type = event_type
        self.reason = reason


def encode_checked(e: Event) -> bytes:
    """The event's journal body, decoded once more with the replay's own decoder, so that
    an event that would not replay is refused here rather than written (the journal always
    replays). A full decode rather than a check of chosen fields: it demands exactly what
    replay demands, for every event added later too. Cost (bench/event_check.py, the
    2-core test machine): +0.1-0.7 us per small event, +2.2 us for a one-line order; in
    bench/throughput.py daemon CPU per order line went from 67.7 to 73.9 us (medians of
    three noisy runs; lines/s did not move beyond the noise)."""
    try:
        body = EVENT_ENCODER.encode(e)
    except (UnicodeEncodeError, OverflowError, TypeError, ValueError) as exc:
        raise UnjournalableEvent(tag_of(e), str(exc)) from None
    try:
        decoded = EVENT_DECODER.decode(body)
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
        raise UnjournalableEvent(tag_of(e), str(exc)) from None
    if type(e) in _COMPARED and decoded != e:  # a non-finite float in an optional field
        raise UnjournalableEvent(tag_of(e), "a number that is not finite would replay as null")
    return body
