"""What the console knows about the site, and which parts of it events made stale.

Events from ``subscribe`` do not carry the numbers the screens show (a ``received`` event
says 40 units arrived, not what the SKU row looks like now), so an event only marks what
it touched as *dirty*; the app re-fetches the dirty parts at most every ``refresh_s``
(coalescing: 200 events on one SKU in that window cost one ``skus.board`` of one SKU).
Plain Python, no Textual: unit-testable and cheap.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field

from backorder import timeutil

HISTORY_BUCKET_S = 600  # one sparkline point per 10 minutes of engine time
HISTORY_POINTS = 36  # six hours
FEED_KEEP = 500

# Which screens care about which event types (beyond the SKU and the stats).
_SHIPMENTS = {"shipment_created", "shipment_shipped", "order_cancelled"}
_PROCUREMENT = {
    "request_raised",
    "request_confirmed",
    "received",
    "request_cancelled",
    "request_short_closed",
    "request_amended",
    "request_acknowledged",
    "ship_notice_recorded",
}
_INTAKE = {
    "intake_outcome",
    "source_silent",
    "dead_lettered",
    "dead_letter_retried",
    "dead_letter_discarded",
    "alias_set",
}
_NOTIFICATIONS = {
    "notice_queued",
    "notice_attempted",
    "notice_delivered",
    "notice_failed",
    "notice_retried",
    "notice_feed",
}


@dataclass
class Changes:
    """What one refresh changed: the screens redraw just that."""

    rows: dict[str, dict | None] = field(default_factory=dict)  # sku -> new row, None = gone
    stats: bool = False
    skus: set[str] = field(default_factory=set)  # every SKU an event touched
    orders: set[str] = field(default_factory=set)
    shipments: bool = False
    procurement: bool = False
    policy: bool = False
    intake: bool = False  # sources, dead letters or rejections moved (the intake screen)
    notifications: bool = False  # a notice was queued, attempted, delivered, failed or retried
    feed: list[tuple[str, str]] = field(default_factory=list)  # (style, text) lines
    reload: bool = False  # everything was (re)loaded: redraw all


class LiveState:
    def __init__(self) -> None:
        self.rows: dict[str, dict] = {}  # SKUs with waiting lines, as skus.board gives them
        self.stats: dict | None = None
        self.history: collections.OrderedDict[int, int] = collections.OrderedDict()
        self.feed: collections.deque[tuple[str, str]] = collections.deque(maxlen=FEED_KEEP)
        self.pending = Changes()
        self.dirty_stats = False
        self.last_seq = 0
        self.now: float | None = None  # the engine clock at the last stats (waits count from it)

    # --- events in ------------------------------------------------------------

    def note(self, msg: dict) -> None:
        """Mark what an event line touched. Called for every event: keep it cheap."""
        e = msg.get("event")
        if not isinstance(e, dict):
            return
        self.last_seq = max(self.last_seq, int(msg.get("seq") or 0))
        kind = e.get("type")
        p = self.pending
        self.dirty_stats = True
        sku = e.get("sku")
        if sku:
            p.skus.add(sku)
        if kind == "shipment_created":
            p.skus.update(item[1] for item in e.get("items") or ())
        oid = e.get("order_id")
        if oid:
            p.orders.add(oid)
        if kind in _SHIPMENTS:
            p.shipments = True
        if kind in _PROCUREMENT:
            p.procurement = True
        if kind == "policy_changed":
            p.policy = True
        if kind in _INTAKE:
            p.intake = True
        if kind in _NOTIFICATIONS:
            p.notifications = True
        if kind == "lagged":  # the daemon dropped events for us: everything may be stale
            p.reload = True
        line = describe(e, msg.get("at"))
        if line is not None:
            self.feed.append(line)
            p.feed.append(line)

    def take(self) -> Changes:
        out, self.pending = self.pending, Changes()
        return out

    # --- replies in -----------------------------------------------------------

    def load_rows(self, rows: list[dict]) -> None:
        self.rows = {r["sku"]: _since(r) for r in rows if r["waiting_lines"]}

    def apply_rows(self, asked: set[str], rows: list[dict], changes: Changes) -> None:
        """Fold a ``skus.board`` reply for the SKUs ``asked`` into the table of waiting SKUs."""
        got = {r["sku"]: _since(r) for r in rows}
        for sku in asked:
            row = got.get(sku)
            if row is not None and row["waiting_lines"]:
                if self.rows.get(sku) != row:
                    self.rows[sku] = row
                    changes.rows[sku] = row
            elif self.rows.pop(sku, None) is not None:
                changes.rows[sku] = None

    def set_stats(self, stats: dict) -> None:
        self.stats = stats
        now = parse_ts(stats.get("now"))
        if now is None:
            return
        self.now = now
        bucket = int(now // HISTORY_BUCKET_S)
        self.history[bucket] = stats["counts"]["open_backorder_lines"]
        self.history.move_to_end(bucket)
        while len(self.history) > HISTORY_POINTS or (
            self.history and next(iter(self.history)) <= bucket - HISTORY_POINTS
        ):
            self.history.popitem(last=False)

    def sparkline(self) -> list[float]:
        """Open backorder lines per bucket over the last six hours (gaps repeat the last value)."""
        if not self.history:
            return []
        last = next(reversed(self.history))
        first = next(iter(self.history))
        out: list[float] = []
        value = self.history[first]
        for b in range(first, last + 1):
            value = self.history.get(b, value)
            out.append(float(value))
        return out


def parse_ts(text: str | None) -> float | None:
    """RFC 3339 -> seconds since the epoch (None for None or garbage)."""
    if not text:
        return None
    try:
        return timeutil.parse_ts(text)
    except (ValueError, AttributeError, OverflowError):
        return None


def _since(row: dict) -> dict:
    """Keep ``oldest_since`` as a number too: waits are shown as (engine now - since), so
    they stay current as the clock moves, and rows sort by it without being re-fetched."""
    row["since_ts"] = parse_ts(row.get("oldest_since"))
    return row


def wait_hours(row: dict, now: float | None) -> float | None:
    since = row.get("since_ts")
    if since is None or now is None:
        return row.get("oldest_wait_hours")
    return max(0.0, (now - since) / 3600.0)


def hhmm(at: str | None) -> str:
    """'2026-01-05T09:00:00Z' -> '01-05 09:00'."""
    if not at or len(at) < 16:
        return "--:--"
    return f"{at[5:10]} {at[11:16]}"


def describe(e: dict, at: str | None) -> tuple[str, str] | None:
    """One feed line (style, text) for the notable events; None for the rest."""
    t = hhmm(at)
    match e.get("type"):
        case "line_backordered":
            return "warning", f"{t} backordered {e['order_id']}/{e['line_no']}: {e['qty']} x {e['sku']}"
        case "request_raised":
            what = "transfer" if e.get("kind") == "transfer" else "PO"
            return "accent", (
                f"{t} reorder    {e['request_id']} {what} {e['qty']} x {e['sku']} due {e['expected_date']}"
            )
        case "request_confirmed":
            return "accent", f"{t} date moved {e['request_id']} {e['sku']} -> {e['expected_date']}"
        case "received":
            ref = f" ({e['request_id']})" if e.get("request_id") else ""
            over = f", {e['over_delivered']} over-delivered" if e.get("over_delivered") else ""
            return "success", f"{t} received   {e['qty']} x {e['sku']}{ref}{over}"
        case "request_cancelled" | "request_short_closed":
            how = "cancelled" if e["type"] == "request_cancelled" else "closed short"
            return "warning", f"{t} {how} {e['request_id']} {e['sku']}: {e['open_qty']} will not come"
        case "request_acknowledged":
            return "accent", f"{t} confirmed  {e['request_id']} {e['qty']} x {e['sku']} due {e['expected_date']}"
        case "ship_notice_recorded":
            return "accent", f"{t} shipped to us {e['request_id']} {e['qty']} x {e['sku']} due {e['expected_date']}"
        case "request_amended":
            return "accent", f"{t} amended    {e['request_id']} {e['sku']} {e['was']} -> {e['qty']}"
        case "shipment_shipped":
            return "success", f"{t} shipped    {e['order_id']} {e['shipment_id']} {e.get('tracking', '')}"
        case "order_cancelled":
            return "warning", f"{t} cancelled  {e['order_id']}: {e.get('reason', '')}"
        case "adjusted":
            return "", f"{t} adjusted   {e['sku']} {e['delta']:+d} {e.get('reason', '')}"
        case "policy_changed":
            return "accent", f"{t} policy     {e['mode']}"
        case "dead_lettered" if e.get("kind") == "intake":
            return "error", (
                f"{t} rejected   {e.get('channel')}/{e.get('account')} {e.get('external_id') or ''}:"
                f" {e.get('cause')} (dead letter {e.get('letter_id')})"
            )
        case "source_silent":
            return "warning", f"{t} silent     {e.get('channel')}/{e.get('account')} since {e.get('last_delivery_at')}"
        case "notice_failed" if e.get("dead"):
            return "error", f"{t} notice     {e['notice_id']} {e.get('order_id') or ''} dead: {e.get('error')}"
        case "dead_lettered":
            return (
                "error",
                f"{t} ERROR      {e.get('actor')} {e.get('sku') or e.get('order_id') or ''}: {e.get('error')}",
            )
        case "lagged":
            return "error", f"{t} ERROR      the console missed {e.get('missed')} events; reloaded"
    return None
