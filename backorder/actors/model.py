"""The in-memory model of a site and ``World.evolve``, the only code that mutates it.

Live, an actor decides, then ``emit``s events: each is applied here and appended to the
journal in the same synchronous step. On start the journal is replayed through the same
``evolve``. So there is one definition of what every fact means, and the state after a
replay is exactly the state before the crash.

Numbers kept per SKU (the names the protocol and the console use):
    on_hand      units at the site, not shipped
    allocated    units reserved to order lines (includes units in picking shipments)
    available    on_hand - allocated
    backordered  open, unallocated demand of waiting lines
    inbound      open purchase orders / transfers (ordered - received)
    position     on_hand + inbound - allocated - backordered
"""

from __future__ import annotations

import heapq
import math
import sys
from collections.abc import Callable
from decimal import Decimal

import msgspec

from backorder.actors import events as ev
from backorder.actors import promise_outcomes
from backorder.actors.allocation_plan import schedule
from backorder.actors.kpi import Kpi
from backorder.actors.queue_index import QueueIndex, SupplyCurve, expected_date
from backorder.actors.retention import ArchiveLookup, KeyFilter
from backorder.config.settings import ReorderPolicy, Settings
from backorder.timeutil import iso_date

HOUR = 3600.0
# The status of a shipment the 3PL fulfils until its webhook says it shipped.
AT_THREEPL = "at_threepl"
PICKING = frozenset({"picking", "label_pending", AT_THREEPL})  # statuses of a shipment not yet gone
# The site's shipped units are counted per minute for its pick rate (``site_picked``).
PICK_BUCKET_S = 60.0
# Bounded weights, quantities and prices keep every rank far inside this; the clamp is
# the last guard that a rank journaled in an ``allocated`` event is a finite number.
MAX_RANK = 1e300


def clamp_rank(x: float) -> float:
    """A rank out of range (or NaN) as the nearest finite rank (NaN: 0)."""
    if x != x:  # NaN
        return 0.0
    return MAX_RANK if x > 0 else -MAX_RANK


class Line:
    """One order line. Shared by its order and, while it waits, its SKU's queue."""

    __slots__ = (
        "order_id",
        "line_no",
        "sku",
        "qty",
        "unit_price",
        "requires_shipping",
        "rush",
        "value",
        "t_order",
        "arrival",
        "key",
        "allocated",
        "in_shipment",
        "shipped",
        "cancelled",
        "rule",
        "rank",
        "backordered_at_entry",
        "decided",
        "qtoken",
        "held",
        "expedited",
        "routed",
    )

    def __init__(
        self,
        order_id: str,
        line_no: int,
        sku: str,
        qty: int,
        unit_price: Decimal,
        requires_shipping: bool,
        rush: bool,
        t_order: float,
        total: Decimal | None = None,
    ) -> None:
        self.order_id = order_id
        self.line_no = line_no
        self.sku = sku
        self.qty = qty
        self.unit_price = unit_price
        self.requires_shipping = requires_shipping
        self.rush = rush
        # Ranking only (money stays Decimal): the line's total after its discount, before
        # tax (``events.line_total``), so a priority weight on value ranks by what the
        # customer pays for the goods, whatever the channel's tax and discount conventions.
        self.value = float(total) if total is not None else float(unit_price) * qty
        self.t_order = t_order
        self.arrival = 0
        self.key: tuple = ()
        self.allocated = 0  # reserved and not yet shipped (includes in_shipment)
        self.in_shipment = 0  # part of `allocated` assigned to a picking shipment
        self.shipped = 0
        self.cancelled = False
        self.rule = ""
        self.rank = 0.0
        self.backordered_at_entry = 0
        self.decided = False
        self.qtoken = 0  # nonzero while queued (see ServiceQueue)
        self.held = False  # its order waits for payment: it is in no queue yet
        self.expedited = False  # its order was expedited: it goes ahead of the others (queue_key)
        self.routed = False  # its order went to the 3PL: it takes no site stock

    @property
    def need(self) -> int:
        """Units still to be allocated (the line's backordered quantity while it waits)."""
        if self.cancelled or not self.requires_shipping or self.held or self.routed:
            return 0
        return self.qty - self.allocated - self.shipped


class Request:
    """A purchase order or transfer request raised for one SKU: one line of the purchase
    order ``po_id`` (the id of the PO's first request; several when requests for one
    source are consolidated, see ``[procurement] consolidate_hours``)."""

    __slots__ = (
        "request_id",
        "sku",
        "kind",
        "source",
        "qty",
        "received",
        "created_ts",
        "expected_date",
        "closed_ts",
        "position",
        "po_id",
        "send_after",
        "ordered",
        "status",
        "close_reason",
        "acknowledged",
        "asns",
    )

    def __init__(self, e: ev.RequestRaised) -> None:
        self.request_id = e.request_id
        self.sku = e.sku
        self.kind = e.kind
        self.source = e.source
        self.qty = e.qty  # what is expected in all (amended, acknowledged)
        self.received = 0  # every unit counted against it, over-delivery included
        self.created_ts = e.ts
        self.expected_date = e.expected_date
        self.closed_ts: float | None = None
        self.position = e.position
        self.po_id = e.po_id or e.request_id
        self.send_after = e.send_after or None  # None: the PO went out at once
        self.ordered = e.qty  # as raised
        # open | received (in full) | short_closed | cancelled
        self.status = "open"
        self.close_reason = ""
        self.acknowledged: int | None = None  # the quantity the supplier confirmed
        self.asns: dict[str, int] = {}  # ship notice reference -> units on their way

    @property
    def open_qty(self) -> int:
        return max(self.qty - self.received, 0) if self.closed_ts is None else 0

    @property
    def over_delivered(self) -> int:
        return max(self.received - self.qty, 0)

    @property
    def in_transit(self) -> int:
        """Units ship notices announced that have not been received yet."""
        return max(min(sum(self.asns.values()), self.qty) - self.received, 0) if self.closed_ts is None else 0


class Sku:
    __slots__ = (
        "sku",
        "policy",
        "on_hand",
        "allocated",
        "backordered",
        "queue",
        "inbound",
        "inbound_qty",
        "received",
        "adjusted",
        "shipped",
        "undecided",
        "holders",
        "known",
        "over_delivered",
        "_supply",
    )

    def __init__(self, sku: str, policy: ReorderPolicy) -> None:
        self.sku = sku
        self.policy = policy
        self.on_hand = 0
        self.allocated = 0
        self.backordered = 0
        self.queue: QueueIndex[Line] = QueueIndex()
        # open requests only; a change to one's open quantity or date calls supply_changed()
        self.inbound: dict[str, Request] = {}
        self.inbound_qty = 0
        self.received = 0
        self.adjusted = 0
        self.shipped = 0
        self.undecided: dict[Line, None] = {}  # queued lines not yet allocated or backordered
        self.holders: dict[Line, None] = {}  # lines holding allocated units
        self.known = False  # configured explicitly (config file / sku.configure)
        self.over_delivered = 0  # units received beyond what their requests expected
        # the cached supply curve with the (open requests, inbound units) it was built from
        self._supply: tuple[int, int, SupplyCurve] | None = None

    @property
    def available(self) -> int:
        return self.on_hand - self.allocated

    @property
    def position(self) -> int:
        return self.on_hand + self.inbound_qty - self.allocated - self.backordered

    def supply(self) -> SupplyCurve:
        """The open requests as a supply curve, built once per change of them. The count
        and units check is a guard for a change made without ``supply_changed`` (a date
        change alone is not caught by it: ``_request_confirmed`` calls supply_changed)."""
        cached = self._supply
        if cached is None or cached[0] != len(self.inbound) or cached[1] != self.inbound_qty:
            cached = self._supply = (len(self.inbound), self.inbound_qty, SupplyCurve(self.inbound.values()))
        return cached[2]

    def supply_changed(self) -> None:
        """An open request of this SKU was raised, received against, closed or re-dated."""
        self._supply = None

    def expected_date(self, line: Line) -> str | None:
        """Expected date of one of this SKU's waiting lines (see ``queue_index.expected_date``)."""
        _pos, ahead = self.queue.place(line)
        return expected_date(max(self.available, 0), self.supply(), ahead, line.need)


# Where a promised line's units come from besides a request id (``Promise.source``): the
# site's stock, or nothing open (today + the lead time).
STOCK = "stock"
LEAD_TIME = "lead_time"


class Promise:
    """A line's first promise (``lines_promised``) and the ship-by date its customer was last
    told (the promise, then each delay notice's ``promise_told``; see ``promise_rules``): the
    one record of the date told, which delay notices and depletion warnings judge against."""

    __slots__ = ("date", "source", "confidence", "told", "kind", "decided")

    def __init__(
        self, date: str, source: str, confidence: float, kind: str, told: str | None = None, decided: bool = False
    ) -> None:
        self.date = date
        self.source = source
        self.confidence = confidence
        self.told = date if told is None else told
        # what its date rests on, and whether it was counted kept or missed (``promise_outcomes``)
        self.kind = kind
        self.decided = decided


class Shipment:
    __slots__ = (
        "shipment_id",
        "order_id",
        "items",
        "status",
        "created_ts",
        "shipped_ts",
        "carrier",
        "tracking",
        "label_zpl",
        "label_pdf",
        "service",
        "carrier_ref",
        "rate_id",
        "label_notice",
        "tracking_status",
        "tracking_detail",
    )

    def __init__(self, shipment_id: str, order_id: str, items: list[tuple[int, str, int]], ts: float) -> None:
        self.shipment_id = shipment_id
        self.order_id = order_id
        self.items = items
        self.status = "picking"
        self.created_ts = ts
        self.shipped_ts: float | None = None
        self.carrier = ""
        self.tracking = ""
        self.label_zpl = ""
        self.label_pdf = ""  # base64, from a remote carrier
        self.service = ""
        self.carrier_ref = ""  # the remote carrier's shipment id
        self.rate_id = ""
        self.label_notice = ""  # label_pending: the outbox notice that buys the label
        self.tracking_status = ""  # "" | "in_transit" | "delivered" | "exception"
        self.tracking_detail = ""

    @property
    def units(self) -> int:
        return sum(q for _, _, q in self.items)


class Order:
    __slots__ = (
        "order_id",
        "spec",
        "lines",
        "shipments",
        "cancelled",
        "cancel_reason",
        "received_ts",
        "closed_ts",
        "hold",
        "expedited",
        "routed_to",
    )

    def __init__(self, order_id: str, spec: ev.OrderRecord, lines: list[Line], ts: float) -> None:
        self.order_id = order_id
        self.spec = spec  # the events.OrderRecord as accepted (amended, released)
        self.lines = lines
        self.shipments: list[str] = []
        self.cancelled = False
        self.cancel_reason = ""
        self.received_ts = ts
        self.closed_ts: float | None = None
        self.hold = ""  # why it waits for payment ("" = it does not)
        self.expedited = ""  # why a person expedited it ("" = nobody did)
        self.routed_to = ""  # the 3PL provider that fulfils it ("" = the site)

    @property
    def shipping_lines(self) -> list[Line]:
        return [ln for ln in self.lines if ln.requires_shipping]

    def status(self, shipments: dict[str, Shipment]) -> str:
        """The lifecycle name everyone sees (replies, the console, the audit)."""
        if self.cancelled:
            return "cancelled"
        # one pass over the lines (every submit's reply asks)
        ordered = shipped = need = allocated = 0
        decided = False
        for ln in self.lines:
            if ln.requires_shipping:
                ordered += ln.qty
                shipped += ln.shipped
                need += ln.need
                allocated += ln.allocated
                decided = decided or ln.decided
        if shipped >= ordered:
            return "shipped"
        if shipped:
            return "partially_shipped"
        if not decided:
            return "received"
        if need == 0:
            # at the 3PL, the order is being picked there
            if any(shipments[s].status in PICKING for s in self.shipments):
                return "picking"
            return "allocated"
        return "partially_allocated" if allocated else "backordered"


class Notice:
    """Delivery state of one outbox notice. ``event`` (the NoticeQueued with the content)
    is kept only while the notice may still be sent; a delivered notice keeps its state."""

    __slots__ = (
        "notice_id",
        "order_id",
        "request_id",
        "kind",
        "channel",
        "audience",
        "status",
        "attempts",
        "queued_ts",
        "last_ts",
        "last_error",
        "event",
    )

    def __init__(self, e: ev.NoticeQueued) -> None:
        self.notice_id = e.notice_id
        self.order_id = e.order_id
        self.request_id = e.request_id
        # a handful of distinct values over millions of notices: share one string each
        self.kind = sys.intern(e.kind)
        self.channel = sys.intern(e.channel)
        self.audience = sys.intern(e.audience)
        # "unrouted": its route cannot reach the customer (email, no address) or it was
        # queued before routes were required; it stays in the outbox, unsent
        self.status = "pending" if e.channel != "none" else "unrouted"
        self.attempts = 0
        self.queued_ts = e.ts
        self.last_ts = e.ts
        self.last_error = ""
        # an unrouted notice is never sent: its content stays in the journal only
        self.event: ev.NoticeQueued | None = e if self.status == "pending" else None


class World:
    """Every SKU, order, shipment and request, plus the counters behind the KPIs."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.default_policy = settings.default_policy
        self.skus: dict[str, Sku] = {}
        self.orders: dict[str, Order] = {}
        self.by_key: dict[tuple[str, str, str], str] = {}
        self.shipments: dict[str, Shipment] = {}
        self.by_tracking: dict[str, str] = {}  # tracking number -> shipment id (tracking webhooks)
        self.requests: dict[str, Request] = {}
        # purchase order id -> its requests (lines), in the order they were raised
        self.purchase_orders: dict[str, list[Request]] = {}
        # (kind, source) -> the purchase order still taking lines: its id and opening time
        self.open_po: dict[tuple[str, str], tuple[str, float]] = {}
        self.mode = settings.allocation.mode
        self.weights = settings.allocation.weights
        self.policy_journaled = False  # a policy_changed was applied: the file's [allocation] no longer is
        self.dead_letters: dict[int, ev.DeadLettered] = {}
        # (sku, receipt_id) -> (qty, request_id) of receipts sent with an idempotency key
        self.receipts: dict[tuple[str, str], tuple[int, str | None]] = {}
        # (channel, account or "*") -> {channel SKU: site SKU}, set by intake.alias
        self.aliases: dict[tuple[str, str], dict[str, str]] = {}
        self.seq = 0  # last journal seq applied
        # id counters (advanced by evolve so that a replay reproduces them)
        self.n_orders = self.n_shipments = self.n_requests = self.n_notices = 0
        self.n_letters = self.arrivals = 0
        # KPI counters
        self.bo_lines = self.bo_filled = self.bo_cancelled = 0
        self.lead_time_h_sum = 0.0
        self.lead_time_n = 0
        self.orders_shipped = 0
        self.inaccurate_orders: set[str] = set()
        self.double_shipments = 0
        self.shipped_by_day: dict[str, int] = {}
        # the windowed KPIs (backorder fill rate, unit fill rate at order, lead time,
        # accuracy post-backorder): per-day aggregates kept by the handlers below
        self.kpi = Kpi(settings.kpi.backorder_target_hours)
        # The outbox's delivery state (the date each customer was last told is its line's
        # Promise.told)
        self.notices: dict[str, Notice] = {}
        # derived (rebuilt by snapshot.restore): the notices still to deliver, and how many
        # notices are in each status, so stats need not scan every notice ever queued
        self.notices_pending: dict[str, Notice] = {}
        self.notice_status: dict[str, int] = {}
        self.warned: set[tuple[str, str]] = set()  # (order_id, request_id) given a depletion warning
        # derived (rebuilt by snapshot.restore): orders waiting for payment, not cancelled;
        # with the SKU queues, the orders a bulk action may touch without a scan of them all
        self.held_orders: dict[str, None] = {}
        # derived (rebuilt by snapshot.restore): orders in memory that ship complete; with
        # none, no line can lend (``allocation_plan.lend``) and a settle does not look
        self.ship_complete_orders = 0
        self.notice_failures = 0
        # (CHANNEL/ACCOUNT, sku) -> (notice id, quantity) of the last stock level queued for it:
        # the stock sync queues a level only when it changed, and an older level still in
        # the outbox is superseded by a newer one instead of being sent after it
        self.stock_told: dict[tuple[str, str], tuple[str, int]] = {}
        # notice id -> the feed a channel took it as, until it is delivered (``notice_feed``)
        self.notice_feeds: dict[str, str] = {}
        self.tuned: dict[str, ev.PolicyTuned] = {}  # the planner's last word on each SKU
        self.promises: dict[tuple[str, int], Promise] = {}  # (order_id, line_no) -> its promise
        # promise kind -> [kept, missed]: the record a new promise's confidence is drawn
        # from (``promise_outcomes``), counted as a promised line ships in full (kept) or
        # its promised day ends without it (missed)
        self.promise_outcomes: dict[str, list[int]] = {}
        # derived (rebuilt by snapshot.restore): (deadline, order_id, line_no) of the promises
        # not yet decided, earliest first: each is missed at the first event past its deadline
        self.promises_due: list[tuple[float, str, int]] = []
        self.promises_next_due = math.inf  # the first one's deadline: one compare per event
        # The 3PL (``threepl_rules``): whether new orders are routed to it (journaled by
        # threepl_routing), the orders at it not yet shipped, and how many it shipped
        self.threepl_on = False
        self.threepl_switched_ts: float | None = None
        self.threepl_switch_backlog = 0.0
        self.routed_open: dict[str, None] = {}
        self.routed_shipped = 0
        # per order at the 3PL, its last change asked for and the 3PL's answer (None until
        # it answers): ``threepl_changes``
        self.threepl_changes: dict[str, tuple[ev.ThreeplChangeRequested, ev.ThreeplChangeDone | None]] = {}
        # The site's pick backlog: units in site shipments awaiting pick, and the units the
        # site shipped per minute ([minute start, units], oldest first; a bounded window is
        # kept, see ``_count_picked``) with their sum: O(1) per event to keep, O(1) to read
        self.site_pick_units = 0
        self.site_picked: list[list[float]] = []
        self.site_picked_sum = 0
        # Retention (actors/retention.py): closed orders archived out of memory, their intake
        # keys in a Bloom filter (rebuilt at start) and the table behind it (set by the daemon)
        self.n_archived = 0
        self.archived_keys = KeyFilter()
        # closed requests and delivered / unrouted notices archived (records_archived): how
        # many requests, and how many notices per status (the outbox counts keep them)
        self.n_requests_archived = 0
        self.notices_archived: dict[str, int] = {}
        self.archive: ArchiveLookup | None = None
        self._apply = {
            ev.OrderReceived: self._order_received,
            ev.Allocated: self._allocated,
            ev.LinesAllocated: self._lines_allocated,
            ev.Deallocated: self._deallocated,
            ev.AllocationLent: self._deallocated,  # the lender's side; the borrower's is an ``allocated``
            ev.Received: self._received,
            ev.Adjusted: self._adjusted,
            ev.SkuConfigured: self._sku_configured,
            ev.RequestRaised: self._request_raised,
            ev.RequestConfirmed: self._request_confirmed,
            ev.RequestCancelled: self._request_ended,
            ev.RequestShortClosed: self._request_ended,
            ev.RequestAmended: self._request_amended,
            ev.RequestAcknowledged: self._request_acknowledged,
            ev.ShipNoticeRecorded: self._ship_notice_recorded,
            ev.ShipmentCreated: self._shipment_created,
            ev.ShipmentsCreated: self._shipments_created,
            ev.ShipmentShipped: self._shipment_shipped,
            ev.ShipmentLabelPending: self._shipment_label_pending,
            ev.ShipmentRated: self._shipment_rated,
            ev.ShipmentTracked: self._shipment_tracked,
            ev.UnitsShipped: self._units_shipped,
            ev.NoticeQueued: self._notice_queued,
            ev.NoticeAttempted: self._notice_attempted,
            ev.NoticeDelivered: self._notice_delivered,
            ev.NoticeFailed: self._notice_failed,
            ev.NoticeRetried: self._notice_retried,
            ev.NoticeFeed: self._notice_feed,
            ev.OrderCancelled: self._order_cancelled,
            ev.LineReleased: self._line_released,
            ev.LineBackordered: self._line_backordered,
            ev.PolicyChanged: self._policy_changed,
            ev.DeadLettered: self._dead_lettered,
            ev.DeadLetterRetried: self._dead_letter_retried,
            ev.DeadLetterDiscarded: self._dead_letter_discarded,
            ev.OrderReleased: self._order_released,
            ev.OrderAmended: self._order_amended,
            ev.AliasSet: self._alias_set,
            ev.JournalQuarantined: self._journal_quarantined,
            ev.OrderAddressSet: self._order_address_set,
            ev.ShipmentException: self._shipment_exception,
            ev.PickMismatched: self._pick_mismatched,
            ev.PolicyTuned: self._policy_tuned,
            ev.OrderExpedited: self._order_expedited,
            ev.OrderRouted: self._order_routed,
            ev.ThreeplRouting: self._threepl_routing,
            ev.LinesPromised: self._lines_promised,
            ev.ThreeplChangeRequested: self._threepl_change,
            ev.ThreeplChangeDone: self._threepl_change_done,
            ev.OrdersArchived: self._orders_archived,
            ev.RecordsArchived: self._records_archived,
        }
        for name, policy in settings.skus.items():
            self.sku(name).known = True
            self.skus[name].policy = policy

    # --- helpers used by decisions and views -------------------------------------

    @property
    def notices_queued(self) -> int:
        return len(self.notices) + sum(self.notices_archived.values())  # in memory, or archived

    @property
    def notices_sent(self) -> int:
        return self.notice_status.get("sent", 0)  # a sent notice never changes status again

    def sku(self, name: str) -> Sku:
        """The SKU, created with the site's default policy on first sight."""
        s = self.skus.get(name)
        if s is None:
            s = self.skus[name] = Sku(name, self.default_policy)
        return s

    def queue_key(self, line: Line) -> tuple:
        """Service order. Expedited lines first (``not expedited`` is False for them), then
        FIFO: order time, then arrival; or priority: highest rank first. Among expedited
        lines the same rule applies, so an expedite jumps the others without reordering
        the expedited ones between themselves.

        Rank = rush + value + age * hours waited. Every waiting line ages at the same rate,
        so ``age * now`` is common to all and the order depends only on the static part —
        the queue never needs re-sorting as time passes, yet old lines overtake new ones.
        An expedite re-keys only its own lines (``_order_expedited``).
        """
        if self.mode == "fifo":
            return (not line.expedited, line.t_order, line.arrival)
        return (not line.expedited, -self.static_score(line), line.arrival)

    def static_score(self, line: Line) -> float:
        w = self.weights
        score = w.rush * line.rush + w.value * line.value - w.age * (line.t_order / HOUR)
        return score if -MAX_RANK <= score <= MAX_RANK else clamp_rank(score)

    def rank(self, line: Line, now: float) -> float:
        """The rank shown to people: FIFO = hours waited; priority = the score now."""
        return self.ranker(now)(line)

    def ranker(self, now: float) -> Callable[[Line], float]:
        """``rank`` at ``now`` as a function of the line: a fill ranks every line it serves
        at one moment, so the mode and the common part are looked up once."""
        if self.mode == "fifo":

            def fifo(line: Line) -> float:
                rank = (now - line.t_order) / HOUR
                return round(rank, 3) if -MAX_RANK <= rank <= MAX_RANK else clamp_rank(rank)

            return fifo
        score, aged = self.static_score, self.weights.age * now / HOUR

        def priority(line: Line) -> float:
            rank = score(line) + aged
            return round(rank, 3) if -MAX_RANK <= rank <= MAX_RANK else clamp_rank(rank)

        return priority

    def next_id(self, kind: str) -> str:
        if kind == "order":
            return f"O{self.n_orders + 1:07d}"
        if kind == "shipment":
            return self.next_shipment_ids(1)[0]
        if kind == "notice":
            return f"N{self.n_notices + 1:07d}"
        raise ValueError(kind)

    def next_shipment_ids(self, k: int) -> list[str]:
        """The ids of the next ``k`` shipments, for shipments created together."""
        n = self.n_shipments
        return [f"S{i:07d}" for i in range(n + 1, n + k + 1)]

    def next_request_id(self, transfer: bool) -> str:
        return f"{'TR' if transfer else 'PO'}-{self.n_requests + 1:06d}"

    # --- evolve -----------------------------------------------------------------

    def evolve(self, e: ev.Event) -> None:
        if e.ts >= self.promises_next_due:
            self._promises_missed(e.ts)
        self._apply[type(e)](e)

    def _order_received(self, e: ev.OrderReceived) -> None:
        o = e.order
        lines = self._lines(e.order_id, o, o.lines, e.ts)
        order = self.orders[e.order_id] = Order(e.order_id, o, lines, e.ts)
        self.by_key[(o.channel, o.account, o.external_id)] = e.order_id
        self.n_orders = max(self.n_orders, int(e.order_id[1:]))
        order.hold = o.hold
        if order.hold:
            self.held_orders[e.order_id] = None
        if o.ship_complete:
            self.ship_complete_orders += 1
        self._place_lines(order)

    @staticmethod
    def _lines(order_id: str, o, specs, ts: float) -> list[Line]:
        """The order's lines, queued by the time the order was received: the source's
        ``created_at`` is only shown, else a source could date an order 0001-01-01 and
        jump every queue."""
        rush = o.rush or o.priority
        return [
            Line(order_id, i + 1, li.sku, li.qty, li.unit_price, li.requires_shipping, rush, ts, ev.line_total(li))
            for i, li in enumerate(specs)
        ]

    def _order_amended(self, e: ev.OrderAmended) -> None:
        """The old lines leave their queues (nothing was allocated to them: the rule that
        amends checks it), the new ones take their place, keeping the order's time."""
        order = self.orders[e.order_id]
        for line in order.lines:
            # the new lines are promised anew: a delay is judged against a live line's date
            self.promises.pop((e.order_id, line.line_no), None)
            if self._unqueue(line):
                self.sku(line.sku).undecided.pop(line, None)
                if line.backordered_at_entry:
                    self.bo_cancelled += 1  # a backordered line that will never be filled
                    self.kpi.line_gone((line.order_id, line.line_no), e.ts)
        order.spec = msgspec.structs.replace(
            order.spec,
            lines=e.lines,
            source_version=e.source_version or order.spec.source_version,
            totals=e.totals if e.totals is not None else order.spec.totals,
        )
        order.lines = self._lines(e.order_id, order.spec, e.lines, order.received_ts)
        if order.expedited:  # the new lines keep the order's place ahead
            for line in order.lines:
                line.expedited = True
        self._place_lines(order)

    def _order_address_set(self, e: ev.OrderAddressSet) -> None:
        order = self.orders[e.order_id]
        order.spec = msgspec.structs.replace(order.spec, shipping_address=e.shipping_address, needs_address=False)

    def _place_lines(self, order: Order) -> None:
        """A held order's lines wait for payment in no queue; the others join their queues."""
        if order.hold:
            for line in order.lines:
                line.held = True
        else:
            self._queue_lines(order.lines)

    def _unqueue(self, line: Line) -> int:
        """Take a line that leaves for good (released, or replaced by an amendment) out of
        its SKU's queue; returns the units it was waiting for (0: it was not queued)."""
        waiting = line.need
        if waiting:
            s = self.sku(line.sku)
            s.queue.remove(line)
            s.backordered -= waiting
        return waiting

    def _queue_lines(self, lines: list[Line]) -> None:
        for line in lines:
            if line.requires_shipping:
                s = self.sku(line.sku)
                self.arrivals += 1
                line.arrival = self.arrivals
                line.key = self.queue_key(line)
                s.queue.add(line)
                s.backordered += line.qty
                s.undecided[line] = None

    def _allocated(self, e: ev.Allocated) -> None:
        """Journals before ``lines_allocated`` (and a loan's allocation): one line per event."""
        self._allocate(self.sku(e.sku), [e], e.rule, e.ts)

    def _lines_allocated(self, e: ev.LinesAllocated) -> None:
        self._allocate(self.sku(e.sku), e.lines, e.rule, e.ts)

    def _allocate(self, s: Sku, allocs: list[ev.AllocatedLine] | list[ev.Allocated], rule: str, ts: float) -> None:
        """Units to lines of ``s``: each of ``allocs`` names its line, qty and rank, in
        service order. One pass for a whole fill: the SKU's counters and the KPI's records
        of backordered lines are updated once for all (per line they were ~½ of a 100,000-line
        fill's step), and the lines served in full leave the queue in one cut (a fill: its head)."""
        orders, kpi, holders, undecided = self.orders, self.kpi, s.holders, s.undecided
        served: list[Line] = []
        progress: list[tuple[tuple[str, int], int]] = []  # (line key, need) of the backordered at entry
        units = 0
        for a in allocs:
            line, qty = orders[a.order_id].lines[a.line_no - 1], a.qty
            line.allocated += qty
            line.rule, line.rank = rule, a.rank
            units += qty
            holders[line] = None
            need = line.need
            if need == 0:
                if not line.decided:  # served in full at once: its whole quantity at order time
                    kpi.line_served(ts, line.qty, line.qty)
                    line.decided = True
                    undecided.pop(line, None)  # a decided line is in no undecided set
                served.append(line)
            elif line.qtoken:
                s.queue.update(line)  # partly served: it waits for less
            if line.backordered_at_entry:
                progress.append(((a.order_id, a.line_no), need))
        s.allocated += units
        s.backordered -= units
        kpi.lines_progress(progress, ts)
        s.queue.remove_lines(served)

    def _deallocated(self, e: ev.Deallocated | ev.AllocationLent) -> None:
        line = self.orders[e.order_id].lines[e.line_no - 1]
        s = self.sku(e.sku)
        was_waiting = line.need > 0
        line.allocated -= e.qty
        s.allocated -= e.qty
        s.backordered += e.qty
        if not line.allocated:
            s.holders.pop(line, None)
        if not was_waiting:
            line.key = self.queue_key(line)  # the service rule may have changed since it was served
            s.queue.add(line)
        else:
            s.queue.update(line)  # it waits for more
        if line.backordered_at_entry:
            self.kpi.line_progress((line.order_id, line.line_no), e.ts, line.need)

    def _line_backordered(self, e: ev.LineBackordered) -> None:
        line = self.orders[e.order_id].lines[e.line_no - 1]
        line.backordered_at_entry = e.qty
        line.decided = True
        self.sku(e.sku).undecided.pop(line, None)
        self.bo_lines += 1
        self.kpi.line_served(e.ts, line.qty, line.qty - e.qty)
        self.kpi.line_backordered((line.order_id, line.line_no), e.ts, e.qty)

    def _received(self, e: ev.Received) -> None:
        s = self.sku(e.sku)
        s.on_hand += e.qty
        s.received += e.qty
        s.over_delivered += e.over_delivered
        if e.receipt_id is not None:
            self.receipts[(e.sku, e.receipt_id)] = (e.qty, e.request_id)
        if e.request_id is not None:
            self._count_against(s, self.requests[e.request_id], e.qty, e.ts)
        for m in e.matched:
            self._count_against(s, self.requests[m.request_id], m.qty, e.ts)

    def _count_against(self, s: Sku, r: Request, qty: int, ts: float) -> None:
        s.supply_changed()
        before = r.open_qty
        r.received += qty
        closes = r.received >= r.qty and r.closed_ts is None
        if closes:
            r.closed_ts = ts
            r.status = "received"
            s.inbound.pop(r.request_id, None)
            self.lead_time_h_sum += (ts - r.created_ts) / HOUR
            self.lead_time_n += 1
        s.inbound_qty -= before - r.open_qty
        self.kpi.request_received(r, ts, closes)

    def _adjusted(self, e: ev.Adjusted) -> None:
        s = self.sku(e.sku)
        s.on_hand += e.delta
        s.adjusted += e.delta

    def _sku_configured(self, e: ev.SkuConfigured) -> None:
        s = self.sku(e.sku)
        s.policy = e.policy
        s.known = True

    def _policy_tuned(self, e: ev.PolicyTuned) -> None:
        s = self.sku(e.sku)
        self.tuned[e.sku] = e
        if e.applied:
            new = e.new
            s.policy = msgspec.structs.replace(
                s.policy, reorder_point=new.reorder_point, order_up_to=new.order_up_to, safety_stock=new.safety_stock
            )

    def _request_raised(self, e: ev.RequestRaised) -> None:
        r = Request(e)
        self.requests[e.request_id] = r
        s = self.sku(e.sku)
        s.inbound[e.request_id] = r
        s.inbound_qty += r.qty
        s.supply_changed()
        self.n_requests = max(self.n_requests, int(e.request_id[3:]))
        self.kpi.request_raised(r)
        self._join_po(r)

    def _join_po(self, r: Request) -> None:
        self.purchase_orders.setdefault(r.po_id, []).append(r)
        if r.po_id == r.request_id:  # it opens a purchase order
            self.open_po[(r.kind, r.source)] = (r.po_id, r.created_ts)

    def po_taking_lines(self, kind: str, source: str, sku: str, now: float) -> str | None:
        """The purchase order a request for ``sku`` raised now for ``source`` joins: one
        opened within ``[procurement] consolidate_hours`` that has no line for the SKU yet
        (one line per item, so a supplier's answer about a SKU names one line). None: off,
        or no such PO: the request opens one."""
        hours = self.settings.procurement.consolidate_hours
        found = self.open_po.get((kind, source)) if hours > 0 else None
        if found is None or now - found[1] >= hours * HOUR:
            return None
        if any(r.sku == sku for r in self.purchase_orders[found[0]]):
            return None
        return found[0]

    def _request_confirmed(self, e: ev.RequestConfirmed) -> None:
        r = self.requests[e.request_id]
        r.expected_date = e.expected_date
        self.sku(r.sku).supply_changed()

    def _request_ended(self, e: ev.RequestCancelled | ev.RequestShortClosed) -> None:
        """Cancelled or closed short: what is still open will never come."""
        r = self.requests[e.request_id]
        s = self.sku(r.sku)
        s.supply_changed()
        s.inbound_qty -= r.open_qty
        s.inbound.pop(r.request_id, None)
        r.closed_ts = e.ts
        r.status = "cancelled" if isinstance(e, ev.RequestCancelled) else "short_closed"
        r.close_reason = e.reason

    def _request_amended(self, e: ev.RequestAmended) -> None:
        self._set_qty(self.requests[e.request_id], e.qty, e.ts)

    def _set_qty(self, r: Request, qty: int, ts: float) -> None:
        s = self.sku(r.sku)
        s.supply_changed()
        before = r.open_qty
        r.qty = qty
        s.inbound_qty += r.open_qty - before
        if r.closed_ts is None and r.received >= r.qty:  # what came is all there will be
            r.closed_ts = ts
            r.status = "received"
            s.inbound.pop(r.request_id, None)

    def _request_acknowledged(self, e: ev.RequestAcknowledged) -> None:
        r = self.requests[e.request_id]
        r.acknowledged = e.qty
        r.expected_date = e.expected_date
        self._set_qty(r, e.qty, e.ts)

    def _ship_notice_recorded(self, e: ev.ShipNoticeRecorded) -> None:
        r = self.requests[e.request_id]
        r.asns[e.reference] = e.qty
        r.expected_date = e.expected_date
        self.sku(r.sku).supply_changed()

    def _shipment_created(self, e: ev.ShipmentCreated) -> None:
        """Journals before ``shipments_created``: one shipment per event."""
        self._add_shipment(Shipment(e.shipment_id, e.order_id, e.items, e.ts))

    def _shipments_created(self, e: ev.ShipmentsCreated) -> None:
        add, ts = self._add_shipment, e.ts
        for c in e.shipments:
            add(Shipment(c.shipment_id, c.order_id, c.items, ts))

    def _add_shipment(self, sh: Shipment) -> None:
        """A shipment goes to picking with the units of its items."""
        self.shipments[sh.shipment_id] = sh
        order = self.orders[sh.order_id]
        order.shipments.append(sh.shipment_id)
        lines = order.lines
        for line_no, _sku, qty in sh.items:
            lines[line_no - 1].in_shipment += qty
            self.site_pick_units += qty
        self.n_shipments = max(self.n_shipments, int(sh.shipment_id[1:]))

    def _shipment_shipped(self, e: ev.ShipmentShipped) -> None:
        sh = self.shipments[e.shipment_id]
        if sh.status == "shipped":  # would be a double shipment: count it, never hide it
            self.double_shipments += 1
            self.inaccurate_orders.add(e.order_id)
        sh.status = "shipped"
        sh.shipped_ts = e.ts
        sh.carrier, sh.tracking, sh.label_zpl = e.carrier, e.tracking, e.label_zpl
        sh.label_pdf, sh.label_notice = e.label_pdf, ""
        if e.service:
            sh.service = e.service
        if e.carrier_ref:
            sh.carrier_ref = e.carrier_ref
        if e.tracking:
            self.by_tracking[e.tracking] = e.shipment_id
        order = self.orders[e.order_id]
        if order.routed_to and self.routed_open.pop(e.order_id, 0) is None:
            self.routed_shipped += 1
        if not any(self.shipments[s].status == "shipped" for s in order.shipments if s != e.shipment_id):
            self.orders_shipped += 1
            if any(ln.backordered_at_entry for ln in order.lines):
                self.kpi.order_shipped(e.order_id, e.ts)
        day = iso_date(e.ts)
        self.shipped_by_day[day] = self.shipped_by_day.get(day, 0) + 1

    def _shipment_label_pending(self, e: ev.ShipmentLabelPending) -> None:
        sh = self.shipments[e.shipment_id]
        sh.status = "label_pending"
        sh.carrier, sh.label_notice = e.carrier, e.notice_id

    def _shipment_rated(self, e: ev.ShipmentRated) -> None:
        sh = self.shipments[e.shipment_id]
        sh.carrier_ref, sh.rate_id, sh.service = e.carrier_ref, e.rate_id, e.service

    def _shipment_tracked(self, e: ev.ShipmentTracked) -> None:
        sh = self.shipments[e.shipment_id]
        sh.tracking_status, sh.tracking_detail = e.status, e.detail

    def _units_shipped(self, e: ev.UnitsShipped) -> None:
        line = self.orders[e.order_id].lines[e.line_no - 1]
        if line.routed:  # shipped by the 3PL from its own stock: the site's counts stay
            line.in_shipment -= e.qty
            line.shipped += e.qty
            if line.shipped > line.qty or line.sku != e.sku:
                self.inaccurate_orders.add(e.order_id)
            self._promise_settled(line, e.qty, e.ts)
            self._closed_if_shipped(e.order_id, e.ts)
            return
        self.site_pick_units -= e.qty
        self._count_picked(e.ts, e.qty)
        s = self.sku(e.sku)
        line.allocated -= e.qty
        line.in_shipment -= e.qty
        line.shipped += e.qty
        s.on_hand -= e.qty
        s.allocated -= e.qty
        s.shipped += e.qty
        if not line.allocated:
            s.holders.pop(line, None)
        if line.shipped > line.qty or line.sku != e.sku:
            self.inaccurate_orders.add(e.order_id)
        if line.shipped == line.qty and line.backordered_at_entry:
            self.bo_filled += 1
        self._promise_settled(line, e.qty, e.ts)
        self._closed_if_shipped(e.order_id, e.ts)

    def _closed_if_shipped(self, order_id: str, ts: float) -> None:
        """An order shipped in full is closed then (retention counts its days from there)."""
        order = self.orders[order_id]
        if order.closed_ts is None and order.status(self.shipments) == "shipped":
            order.closed_ts = ts

    def _orders_archived(self, e: ev.OrdersArchived) -> None:
        """Closed orders leave memory, with everything kept per order or per line of them
        (shipments, promises, dates told, depletion warnings, 3PL changes: what reads of
        them need is in their ``archived_orders`` record already). The KPI aggregates stay."""
        for oid in e.order_ids:
            order = self.orders.pop(oid)
            spec = order.spec
            self.ship_complete_orders -= spec.ship_complete
            key = (spec.channel, spec.account, spec.external_id)
            self.by_key.pop(key, None)
            self.archived_keys.add(key)
            for sid in order.shipments:
                sh = self.shipments.pop(sid)
                if sh.tracking and self.by_tracking.get(sh.tracking) == sid:
                    del self.by_tracking[sh.tracking]
            for ln in order.lines:
                self.promises.pop((oid, ln.line_no), None)  # closed: nothing left to tell
            self.threepl_changes.pop(oid, None)
        if self.warned:
            gone = set(e.order_ids)
            self.warned = {w for w in self.warned if w[0] not in gone}
        self.n_archived += len(e.order_ids)

    def _records_archived(self, e: ev.RecordsArchived) -> None:
        """Closed requests (whole purchase orders) and delivered notices leave memory; their
        records are in ``archived_records`` already. The notice counts by status stay (an
        archived notice is still one of the outbox's), as do the KPI aggregates."""
        for rid in e.request_ids:
            r = self.requests.pop(rid)
            # a closed request the lead time no longer reads (cancelled, or closed with no
            # receipt): still listed among the KPI's open ones live, not after a restore
            self.kpi.open_requests.pop(rid, None)
            self.purchase_orders.pop(r.po_id, None)
            key = (r.kind, r.source)
            if self.open_po.get(key, ("",))[0] == r.po_id:
                del self.open_po[key]  # past its consolidation window: it took no more lines
        self.n_requests_archived += len(e.request_ids)
        for nid in e.notice_ids:
            n = self.notices.pop(nid)
            self.notices_archived[n.status] = self.notices_archived.get(n.status, 0) + 1

    def _index_notice(self, n: Notice) -> None:
        """Count a new (or restored) notice in the derived status counts and pending index."""
        self.notices[n.notice_id] = n
        self.notice_status[n.status] = self.notice_status.get(n.status, 0) + 1
        if n.status == "pending":
            self.notices_pending[n.notice_id] = n

    def _notice_queued(self, e: ev.NoticeQueued) -> None:
        self.n_notices = max(self.n_notices, int(e.notice_id[1:]))
        self._index_notice(Notice(e))
        if e.order_id is not None:
            # (a notice journaled before promises existed has "told" dates of its own:
            # no record of them is kept, recovery promises such an order's open lines)
            for request_id in e.data.get("warned", ()):
                self.warned.add((e.order_id, request_id))
            for line_no, date in e.data.get("promise_told", ()):
                promise = self.promises.get((e.order_id, line_no))
                if promise is not None:
                    promise.told = date
        elif e.audience == "channel" and e.kind == "stock_level":
            for level in e.data["levels"]:
                self.stock_told[(e.channel, level["sku"])] = (e.notice_id, level["quantity"])

    def _lines_promised(self, e: ev.LinesPromised) -> None:
        for li in e.lines:
            key = (e.order_id, li.line_no)
            if key not in self.promises:
                kind = promise_outcomes.kind_of(li.source, self.requests)
                self.promises[key] = Promise(li.date, li.source, li.confidence, kind)
                deadline = promise_outcomes.deadline(li.date)
                heapq.heappush(self.promises_due, (deadline, e.order_id, li.line_no))
                if deadline < self.promises_next_due:
                    self.promises_next_due = deadline

    def _count_outcome(self, p: Promise, kept: bool) -> None:
        p.decided = True
        counts = self.promise_outcomes.get(p.kind)
        if counts is None:
            counts = self.promise_outcomes[p.kind] = [0, 0]
        counts[0 if kept else 1] += 1

    def _promise_settled(self, line: Line, qty: int, ts: float) -> None:
        """``qty`` units of ``line`` shipped at ``ts``: if they complete it before its
        promise was missed, the promise (if any) is kept (``promise_outcomes``)."""
        if not line.shipped - qty < line.qty <= line.shipped:
            return
        p = self.promises.get((line.order_id, line.line_no))
        if p is not None and not p.decided:
            self._count_outcome(p, promise_outcomes.kept(ts, p.date))

    def _promises_missed(self, now: float) -> None:
        """Before an event at ``now``: the promises whose day ended without their line
        shipped in full are missed; those of lines cancelled or amended away count nothing."""
        due = self.promises_due
        while due and due[0][0] <= now:
            deadline, order_id, line_no = heapq.heappop(due)
            p = self.promises.get((order_id, line_no))
            # (a line amended and promised anew has a promise of its own, due at its deadline)
            if p is None or p.decided or promise_outcomes.deadline(p.date) != deadline:
                continue
            order = self.orders[order_id]
            line = order.lines[line_no - 1]
            if order.cancelled or line.cancelled:
                p.decided = True  # withdrawn by the customer: nothing to count
            else:
                self._count_outcome(p, kept=False)
        self.promises_next_due = due[0][0] if due else math.inf

    def _notice_attempted(self, e: ev.NoticeAttempted) -> None:
        n = self.notices[e.notice_id]
        n.attempts = e.attempt
        n.last_ts = e.ts

    def _notice_delivered(self, e: ev.NoticeDelivered) -> None:
        n = self.notices[e.notice_id]
        self._notice_status(n, "sent")
        n.last_ts = e.ts
        n.last_error = ""
        n.event = None  # delivered: the content is in the journal, not needed in memory
        self.notice_feeds.pop(e.notice_id, None)

    def _notice_failed(self, e: ev.NoticeFailed) -> None:
        n = self.notices[e.notice_id]
        self.notice_failures += 1
        n.last_error = e.error
        n.last_ts = e.ts
        if e.dead:
            self._notice_status(n, "dead")

    def _notice_feed(self, e: ev.NoticeFeed) -> None:
        if e.state == "submitted":
            self.notice_feeds[e.notice_id] = e.feed_id
        else:  # refused by its report: a retry submits a new feed
            self.notice_feeds.pop(e.notice_id, None)

    def _notice_retried(self, e: ev.NoticeRetried) -> None:
        n = self.notices[e.notice_id]
        self._notice_status(n, "pending")
        n.attempts = 0
        n.last_ts = e.ts

    def _notice_status(self, n: Notice, status: str) -> None:
        """Move a notice to ``status``, keeping the derived count and pending index right."""
        counts = self.notice_status
        counts[n.status] -= 1
        counts[status] = counts.get(status, 0) + 1
        n.status = status
        if status == "pending":
            self.notices_pending[n.notice_id] = n
        else:
            self.notices_pending.pop(n.notice_id, None)

    def _order_cancelled(self, e: ev.OrderCancelled) -> None:
        order = self.orders[e.order_id]
        order.cancelled = True
        order.cancel_reason = e.reason
        self.held_orders.pop(e.order_id, None)
        order.closed_ts = e.ts
        for sid in order.shipments:
            sh = self.shipments[sid]
            if sh.status in ("picking", "label_pending"):
                sh.status = "cancelled"
                for line_no, _sku, qty in sh.items:
                    order.lines[line_no - 1].in_shipment -= qty
                    self.site_pick_units -= qty
            elif sh.status == AT_THREEPL:  # the 3PL cancelled it (``threepl_changes``)
                sh.status = "cancelled"
                for line_no, _sku, qty in sh.items:
                    order.lines[line_no - 1].in_shipment -= qty
                self.routed_open.pop(e.order_id, None)

    def _line_released(self, e: ev.LineReleased) -> None:
        line = self.orders[e.order_id].lines[e.line_no - 1]
        s = self.sku(e.sku)
        self._unqueue(line)
        s.allocated -= line.allocated
        line.allocated = 0
        line.cancelled = True
        s.holders.pop(line, None)
        s.undecided.pop(line, None)
        if line.backordered_at_entry:
            self.bo_cancelled += 1
            self.kpi.line_gone((line.order_id, line.line_no), e.ts)

    def _policy_changed(self, e: ev.PolicyChanged) -> None:
        self.mode, self.weights = e.mode, e.weights
        self.policy_journaled = True
        for s in self.skus.values():
            if s.queue:
                s.queue.rekey(self.queue_key)

    def _dead_lettered(self, e: ev.DeadLettered) -> None:
        self.dead_letters[e.letter_id] = e
        self.n_letters = max(self.n_letters, e.letter_id)

    def _dead_letter_retried(self, e: ev.DeadLetterRetried) -> None:
        if e.resolved:
            self.dead_letters.pop(e.letter_id, None)
            return
        letter = self.dead_letters.get(e.letter_id)
        if letter is not None:  # failed again: it stays, with the new cause
            self.dead_letters[e.letter_id] = msgspec.structs.replace(
                letter, attempts=letter.attempts + 1, cause=e.cause or letter.cause, error=e.error or letter.error
            )

    def _dead_letter_discarded(self, e: ev.DeadLetterDiscarded) -> None:
        self.dead_letters.pop(e.letter_id, None)

    def _order_released(self, e: ev.OrderReleased) -> None:
        order = self.orders[e.order_id]
        order.hold = ""
        self.held_orders.pop(e.order_id, None)
        if e.source_version:
            order.spec = msgspec.structs.replace(order.spec, source_version=e.source_version)
        for line in order.lines:
            line.held = False
        if not order.cancelled:
            self._queue_lines(order.lines)

    def _shipment_exception(self, e: ev.ShipmentException) -> None:
        self.kpi.exceptions += 1
        self.kpi.order_flagged(e.order_id, self.first_shipped_ts(self.orders[e.order_id]))

    def _pick_mismatched(self, e: ev.PickMismatched) -> None:
        self.kpi.pick_mismatches += 1
        self.kpi.order_flagged(e.order_id, self.first_shipped_ts(self.orders[e.order_id]))

    def first_shipped_ts(self, order: Order) -> float | None:
        """When the first shipment of an order that had a backordered line shipped (None:
        not shipped yet, or never backordered: the accuracy post-backorder does not count it)."""
        if not any(ln.backordered_at_entry for ln in order.lines):
            return None
        times = [sh.shipped_ts for s in order.shipments if (sh := self.shipments[s]).shipped_ts is not None]
        return min(times, default=None)

    def _order_expedited(self, e: ev.OrderExpedited) -> None:
        """Its waiting lines move ahead in their queues (re-queued under the new key); held
        lines get theirs when they are queued."""
        order = self.orders[e.order_id]
        order.expedited = e.reason
        for line in order.lines:
            line.expedited = True
            if line.qtoken:
                s = self.sku(line.sku)
                s.queue.remove(line)
                line.key = self.queue_key(line)
                s.queue.add(line)

    def _order_routed(self, e: ev.OrderRouted) -> None:
        """The order's lines leave their queues (the rule routes only a new order, before
        any SKU served it: nothing is allocated) and wait at the 3PL as one shipment."""
        order = self.orders[e.order_id]
        for line in order.lines:
            if line.requires_shipping:
                if self._unqueue(line):
                    self.sku(line.sku).undecided.pop(line, None)
                line.routed = True
                line.decided = True
        order.routed_to = e.provider
        sh = Shipment(e.shipment_id, e.order_id, e.items, e.ts)
        sh.status = AT_THREEPL
        self.shipments[e.shipment_id] = sh
        order.shipments.append(e.shipment_id)
        for line_no, _sku, qty in e.items:
            order.lines[line_no - 1].in_shipment += qty
        self.n_shipments = max(self.n_shipments, int(e.shipment_id[1:]))
        self.routed_open[e.order_id] = None

    def _threepl_change(self, e: ev.ThreeplChangeRequested) -> None:
        self.threepl_changes[e.order_id] = (e, None)

    def _threepl_change_done(self, e: ev.ThreeplChangeDone) -> None:
        asked = self.threepl_changes.get(e.order_id)
        if asked is not None and asked[0].notice_id == e.notice_id:  # an older change answers late: kept as it was
            self.threepl_changes[e.order_id] = (asked[0], e)

    def _threepl_routing(self, e: ev.ThreeplRouting) -> None:
        self.threepl_on = e.on
        self.threepl_switched_ts = e.ts
        self.threepl_switch_backlog = e.backlog_hours

    def _count_picked(self, ts: float, qty: int) -> None:
        """Count ``qty`` units shipped from the site at ``ts`` in its minute's bucket; buckets
        that left the pick-rate window go, so the list holds at most window/60 + 1 buckets
        and ``picked_since`` walks one or two of them."""
        minute = ts - ts % PICK_BUCKET_S
        picked = self.site_picked
        if picked and picked[-1][0] == minute:
            picked[-1][1] += qty
        else:
            picked.append([minute, qty])
            horizon = minute - self.settings.threepl.pick_rate_window_s - PICK_BUCKET_S
            while picked[0][0] < horizon:
                self.site_picked_sum -= int(picked.pop(0)[1])
        self.site_picked_sum += qty

    def picked_since(self, start: float) -> int:
        """Units the site shipped at or after ``start`` (to the minute): the sum less the
        oldest buckets, walked from the old end until the first inside the window."""
        total = self.site_picked_sum
        for minute, qty in self.site_picked:
            if minute + PICK_BUCKET_S > start:
                break
            total -= int(qty)
        return total

    def _journal_quarantined(self, e: ev.JournalQuarantined) -> None:
        """Nothing to apply: replay skips the quarantined event itself (Journal.quarantined)."""

    def _alias_set(self, e: ev.AliasSet) -> None:
        table = self.aliases.setdefault((e.channel, e.account), {})
        if e.sku is None:
            table.pop(e.channel_sku, None)
        else:
            table[e.channel_sku] = e.sku

    # --- views ------------------------------------------------------------------

    def expected_dates(self, s: Sku, upto: int | None = None) -> list[str | None]:
        """Expected date of each waiting line (queue order, the first ``upto``), from
        available stock and inbound supply: the allocation planner's dates
        (``allocation_plan.schedule``, what the what-if reads compare), so what a customer
        is told and what a what-if predicts come from one function.

        Available stock covers the head first; then open requests in date order. The line
        whose units come from the second request gets that request's date; a line no
        open supply covers gets None (a new reorder will give it a date)
        (``Sku.expected_date`` for one line anywhere in the queue).
        """
        return schedule(s.queue.lines(), s.available, s.supply(), upto)[2]
