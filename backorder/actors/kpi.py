"""The KPIs a manager steers by, kept as per-day aggregates that ``World.evolve`` updates.

Every figure is a sum over engine days (UTC, ``int(ts // 86400)``), so a window (the last
7 days, the last 30, since start) is a sum over at most that many buckets, never a scan of
the orders; replaying the journal through ``evolve`` rebuilds the buckets exactly, and a
snapshot carries them (``dump`` / ``load``). Pure and synchronous: no trio, no I/O.

What is counted, and on which day (docs/operations.md, "KPIs", says the same for people):

- Backorder fill rate (lines, and units beside it). A line backordered at intake is *due*
  once its outcome is known: filled (fully allocated) within ``[kpi]
  backorder_target_hours`` of being backordered -> a hit, counted on the day it filled;
  cancelled (or replaced by an amendment) while waiting -> a miss, on that day; not filled
  by the target -> a miss, on the day the target passed, whatever happens later. Lines
  still waiting and not yet past the target are not counted yet. Units: the backordered
  units of each due line; the hits are the units allocated to it before its target passed.
- Unit fill rate at order time: units allocated when the line was first served ÷ units
  ordered, on the day it was served.
- Reorder lead time: requests closed by their last receipt (raise -> that receipt, on its
  day), plus every open request past its expected date by its age so far (counted in
  every window, flagged ``open_overdue``); mean, p50 and p90 (nearest rank), per source.
- Order accuracy post-backorder: orders with a backordered line, counted on the day their
  first shipment shipped; inaccurate when a ``shipment.exception`` or a refused pick scan
  (``pick_mismatched``) was recorded for the order, whenever it was recorded.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
from typing import Any, Protocol

DAY_S = 86400.0
HOUR_S = 3600.0
WINDOWS: tuple[tuple[str, int | None], ...] = (("7d", 7), ("30d", 30), ("all", None))

# Bucket fields, in the order ``dump`` writes them.
FIELDS = (
    "bo_lines_due",
    "bo_lines_hit",
    "bo_units_due",
    "bo_units_hit",
    "units_ordered",
    "units_at_order",
    "bo_orders_shipped",
    "bo_orders_flagged",
)


def day_of(ts: float) -> int:
    return int(ts // DAY_S)


class TargetChanged(ValueError):
    """Saved aggregates were kept under another ``backorder_target_hours``."""


class Bucket:
    """The counts of one engine day, and the lead times (source, hours) of the requests
    closed that day."""

    __slots__ = (*FIELDS, "leads")

    def __init__(self) -> None:
        self.bo_lines_due = self.bo_lines_hit = self.bo_units_due = self.bo_units_hit = 0
        self.units_ordered = self.units_at_order = 0
        self.bo_orders_shipped = self.bo_orders_flagged = 0
        self.leads: list[tuple[str, float]] = []


class Pending:
    """A backordered line whose outcome is not known yet: when its target passes, how many
    units it was backordered for, and how many of those it got before the target."""

    __slots__ = ("due_ts", "units", "got")

    def __init__(self, due_ts: float, units: int, got: int = 0) -> None:
        self.due_ts = due_ts
        self.units = units
        self.got = got


class OpenRequest(Protocol):
    """What the lead time reads of a purchase order / transfer (``model.Request``)."""

    request_id: str
    source: str
    created_ts: float
    expected_date: str
    closed_ts: float | None


class Kpi:
    """The aggregates (one per World). ``target_s``: ``[kpi] backorder_target_hours``."""

    def __init__(self, target_hours: float) -> None:
        self.target_hours = target_hours
        self.target_s = target_hours * HOUR_S
        self.days: dict[int, Bucket] = {}
        # (order_id, line_no) -> Pending, in the order the lines were backordered
        self.pending: dict[tuple[str, int], Pending] = {}
        self.pending_sorted = True  # due times ascend in insertion order (the clock never went back)
        self._last_due = -math.inf
        # every lead time closed, sorted, overall ("") and per source: since-start percentiles
        # without sorting every request on each read
        self.leads_sorted: dict[str, list[float]] = {}
        self.lead_sum: dict[str, float] = {}
        # open requests (the model's objects) and the time of their last receipt
        self.open_requests: dict[str, OpenRequest] = {}
        self.last_receipt: dict[str, float] = {}
        self.flagged: set[str] = set()  # orders with a recorded exception
        self.exceptions = 0  # shipment.exception records
        self.pick_mismatches = 0  # refused pick scans

    def bucket(self, day: int) -> Bucket:
        b = self.days.get(day)
        if b is None:
            b = self.days[day] = Bucket()
        return b

    # --- called by World.evolve ---------------------------------------------------

    def line_served(self, ts: float, qty: int, allocated: int) -> None:
        """A line was served for the first time: ``allocated`` of its ``qty`` units at once."""
        b = self.bucket(day_of(ts))
        b.units_ordered += qty
        b.units_at_order += allocated

    def line_backordered(self, key: tuple[str, int], ts: float, units: int) -> None:
        due = ts + self.target_s
        if due < self._last_due:
            self.pending_sorted = False
        self._last_due = max(self._last_due, due)
        self.pending[key] = Pending(due, units)

    def line_progress(self, key: tuple[str, int], ts: float, need: int) -> None:
        """Units were allocated to (or taken back from) a line; ``need``: what it still waits for."""
        self.lines_progress([(key, need)], ts)

    def lines_progress(self, progress: list[tuple[tuple[str, int], int]], ts: float) -> None:
        """``line_progress`` of many lines at once (a fill's): (key, need) per line. The
        lines filled by their target add to one bucket (today's), counted once."""
        pending, resolve = self.pending, self._resolve
        hits = hit_units = 0
        for key, need in progress:
            p = pending.get(key)
            if p is None:
                continue
            if ts <= p.due_ts:
                p.got = max(p.units - need, 0)
                if need == 0:  # a hit, the common case of a fill: counted below, in one go
                    del pending[key]
                    hits += 1
                    hit_units += p.units
            elif need == 0:
                resolve(key, p, ts, filled=True)
        if hits:
            if not pending:  # nothing left out of order: the next read may stop early again
                self.pending_sorted, self._last_due = True, -math.inf
            b = self.bucket(day_of(ts))
            b.bo_lines_due += hits
            b.bo_units_due += hit_units
            b.bo_lines_hit += hits
            b.bo_units_hit += hit_units

    def line_gone(self, key: tuple[str, int], ts: float) -> None:
        """A waiting line was cancelled or replaced: a miss (if it was still due)."""
        p = self.pending.get(key)
        if p is not None:
            self._resolve(key, p, ts, filled=False)

    def _resolve(self, key: tuple[str, int], p: Pending, ts: float, filled: bool) -> None:
        del self.pending[key]
        if not self.pending:  # nothing left out of order: the next read may stop early again
            self.pending_sorted, self._last_due = True, -math.inf
        hit = filled and ts <= p.due_ts
        b = self.bucket(day_of(min(ts, p.due_ts)))
        b.bo_lines_due += 1
        b.bo_units_due += p.units
        b.bo_lines_hit += hit
        b.bo_units_hit += p.units if hit else p.got

    def request_raised(self, r: OpenRequest) -> None:
        self.open_requests[r.request_id] = r

    def request_received(self, r: OpenRequest, ts: float, closed: bool) -> None:
        if r.request_id not in self.open_requests:
            return
        self.last_receipt[r.request_id] = ts
        if closed:
            self._lead_closed(r.request_id, r.source, (ts - r.created_ts) / HOUR_S, ts)

    def _lead_closed(self, request_id: str, source: str, hours: float, ts: float) -> None:
        self.open_requests.pop(request_id, None)
        self.last_receipt.pop(request_id, None)
        self.bucket(day_of(ts)).leads.append((source, hours))
        for key in ("", source):
            bisect.insort(self.leads_sorted.setdefault(key, []), hours)
            self.lead_sum[key] = self.lead_sum.get(key, 0.0) + hours

    def order_shipped(self, order_id: str, ts: float) -> None:
        """The first shipment of an order that had a backordered line shipped."""
        b = self.bucket(day_of(ts))
        b.bo_orders_shipped += 1
        b.bo_orders_flagged += order_id in self.flagged

    def order_flagged(self, order_id: str, shipped_ts: float | None) -> None:
        """An exception was recorded for an order; ``shipped_ts``: when its first shipment
        shipped, if it was a backordered order already counted as shipped."""
        if order_id in self.flagged:
            return
        self.flagged.add(order_id)
        if shipped_ts is not None:
            self.bucket(day_of(shipped_ts)).bo_orders_flagged += 1

    # --- reads --------------------------------------------------------------------

    def _days(self, today: int, span: int | None) -> list[Bucket]:
        if span is None:
            return list(self.days.values())
        if span < len(self.days):
            return [b for d in range(today - span + 1, today + 1) if (b := self.days.get(d)) is not None]
        first = today - span + 1
        return [b for d, b in self.days.items() if first <= d <= today]

    def _overdue(self, now: float) -> dict[int, list[int]]:
        """Lines still waiting past their target (misses, counted on the target's day), as
        [lines, units, units got in time] per day. In due order unless the clock went back,
        so the walk stops at the first line not yet due."""
        out: dict[int, list[int]] = {}
        for p in self.pending.values():
            if p.due_ts >= now:  # filled at its target it would still be a hit
                if self.pending_sorted:
                    break
                continue
            day = out.get(int(p.due_ts // DAY_S))
            if day is None:
                day = out[int(p.due_ts // DAY_S)] = [0, 0, 0]
            day[0] += 1
            day[1] += p.units
            day[2] += p.got
        return out

    def _open_leads(self, now: float, today: str) -> tuple[list[tuple[str, float]], list[tuple[str, float, float]]]:
        """(open requests past their expected date: (source, age in hours)), (requests
        closed by something other than a full receipt, e.g. a short-close, that had
        receipts: (source, raise -> last receipt in hours, day of that receipt))."""
        overdue, closed = [], []
        for r in self.open_requests.values():
            status = getattr(r, "status", "open")
            if r.closed_ts is None and status == "open":
                if r.expected_date < today:
                    overdue.append((r.source, (now - r.created_ts) / HOUR_S))
            elif status != "cancelled" and r.request_id in self.last_receipt:
                last = self.last_receipt[r.request_id]
                closed.append((r.source, (last - r.created_ts) / HOUR_S, last))
        return overdue, closed

    def report(self, now: float, today_iso: str) -> dict[str, Any]:
        """Every KPI over every window: numerator, denominator, value (see the module doc).
        Cost grows with the days kept, the lines waiting past their target, the open requests
        and the requests closed in the last 30 days, not with the orders: bench/kpi_report.py
        (a year of a busy site: 386 days, 50,000 requests closed over 20 sources, 10,000
        lines past target, 300 late open requests) reads in 10-18 ms at the median on the
        shared 2-core test machine."""
        today = day_of(now)
        overdue = self._overdue(now)
        open_leads, other_closed = self._open_leads(now, today_iso)
        out: dict[str, Any] = {name: {**meta, "windows": []} for name, meta in DEFINITIONS.items()}
        for window, span in WINDOWS:
            first = None if span is None else today - span + 1
            buckets = self._days(today, span)
            late = [0, 0, 0]  # lines, units, units got in time
            for d, counts in overdue.items():
                if first is None or d >= first:
                    late = [a + b for a, b in zip(late, counts, strict=True)]

            def total(field: str, bs: list[Bucket] = buckets) -> int:
                return sum(getattr(b, field) for b in bs)

            since = _iso_day(first) if first is not None else (_iso_day(min(self.days)) if self.days else None)
            head = {"window": window, "since": since}
            out["backorder_fill_rate_lines"]["windows"].append(
                _ratio(head, total("bo_lines_hit"), total("bo_lines_due") + late[0])
            )
            out["backorder_fill_rate_units"]["windows"].append(
                _ratio(
                    head,
                    total("bo_units_hit") + late[2],
                    total("bo_units_due") + late[1],
                )
            )
            out["unit_fill_rate_at_order"]["windows"].append(
                _ratio(head, total("units_at_order"), total("units_ordered"))
            )
            out["order_accuracy_post_backorder"]["windows"].append(
                _ratio(
                    head,
                    total("bo_orders_shipped") - total("bo_orders_flagged"),
                    total("bo_orders_shipped"),
                )
            )
            extra = [(s, h) for s, h, ts in other_closed if first is None or day_of(ts) >= first]
            out["reorder_lead_time_hours"]["windows"].append(
                self._lead_window(head, buckets, span is None, extra, open_leads)
            )
        return out

    def _lead_window(
        self,
        head: dict[str, Any],
        buckets: list[Bucket],
        since_start: bool,
        extra: list[tuple[str, float]],
        open_leads: list[tuple[str, float]],
    ) -> dict[str, Any]:
        more: dict[str, list[float]] = {}
        for source, hours in extra + open_leads:
            for key in ("", source):
                more.setdefault(key, []).append(hours)
        if since_start:
            sources = set(self.leads_sorted) | set(more)
            base = {k: self.leads_sorted.get(k, []) for k in sources}
            sums = {k: self.lead_sum.get(k, 0.0) for k in sources}
        else:
            base, sums = {}, {}
            for b in buckets:
                for source, hours in b.leads:
                    for key in ("", source):
                        base.setdefault(key, []).append(hours)
                        sums[key] = sums.get(key, 0.0) + hours
            for values in base.values():
                values.sort()
        n_open: dict[str, int] = {}
        for source, _h in open_leads:
            for key in ("", source):
                n_open[key] = n_open.get(key, 0) + 1

        def figures(key: str) -> dict[str, Any]:
            closed = base.get(key, [])
            added = sorted(more.get(key, []))
            n = len(closed) + len(added)
            hours = sums.get(key, 0.0) + sum(added)
            return {
                "numerator": round(hours, 2),
                "denominator": n,
                "value": round(hours / n, 2) if n else None,
                "p50": _rank(closed, added, 0.5),
                "p90": _rank(closed, added, 0.9),
                "open_overdue": n_open.get(key, 0),
            }

        named = sorted(k for k in set(base) | set(more) if k)
        return {**head, **figures(""), "by_source": {s: figures(s) for s in named}}

    # --- snapshot -----------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        return {
            "target_hours": self.target_hours,
            "days": [[d, [getattr(b, f) for f in FIELDS], b.leads] for d, b in self.days.items()],
            "pending": [[oid, ln, p.due_ts, p.units, p.got] for (oid, ln), p in self.pending.items()],
            "last_receipt": self.last_receipt,
            # kept as summed live: summed again from the buckets, in another order, a float
            # total could differ in its last bit from the one the live daemon showed
            "lead_sum": self.lead_sum,
            "flagged": sorted(self.flagged),
            "counts": [self.exceptions, self.pick_mismatches],
        }

    def load(self, data: dict[str, Any], requests: dict[str, Any]) -> None:
        """Restore what ``dump`` wrote; ``requests``: the restored model's requests (the open
        ones are rebuilt from them, the sorted lead times from the buckets). A snapshot
        taken under another target would mix two definitions: refused (ValueError), so the
        journal is replayed instead."""
        if data.get("target_hours") != self.target_hours:
            raise TargetChanged("snapshot KPIs were kept under another [kpi] backorder_target_hours")
        for d, values, leads in data["days"]:
            b = self.days[d] = Bucket()
            for f, v in zip(FIELDS, values, strict=True):
                setattr(b, f, v)
            b.leads = [(s, h) for s, h in leads]
            for source, hours in b.leads:
                for key in ("", source):
                    self.leads_sorted.setdefault(key, []).append(hours)
        for values in self.leads_sorted.values():
            values.sort()
        self.lead_sum = dict(data["lead_sum"])
        for oid, ln, due, units, got in data["pending"]:
            self.line_backordered((oid, ln), due - self.target_s, units)
            self.pending[(oid, ln)].due_ts, self.pending[(oid, ln)].got = due, got
        self.last_receipt = dict(data["last_receipt"])
        self.flagged = set(data["flagged"])
        self.exceptions, self.pick_mismatches = data["counts"]
        for rid, r in requests.items():
            if r.closed_ts is None or rid in self.last_receipt:
                self.open_requests[rid] = r


def _iso_day(day: int) -> str:
    return (dt.date(1970, 1, 1) + dt.timedelta(days=day)).isoformat()


def _ratio(head: dict[str, Any], num: int, den: int) -> dict[str, Any]:
    return {**head, "numerator": num, "denominator": den, "value": round(num / den, 4) if den else None}


def _rank(a: list[float], b: list[float], q: float) -> float | None:
    """The nearest-rank ``q`` quantile of the union of sorted lists ``a`` and ``b``: the
    k-th smallest, k = ceil(q * n), found by a binary search over how many of the k come
    from ``b`` (O(log len(b)), no merge of the since-start list on every read)."""
    n = len(a) + len(b)
    if n == 0:
        return None
    k = max(math.ceil(q * n), 1)  # 1-based rank
    lo, hi = max(0, k - len(a)), min(k, len(b))
    while True:
        j = (lo + hi) // 2  # j of the k smallest come from b, i = k - j from a
        i = k - j
        if j < hi and a[i - 1] > b[j]:
            lo = j + 1  # a's part reaches too far: take more from b
        elif j > lo and b[j - 1] > a[i]:
            hi = j - 1  # b's part reaches too far: take fewer from b
        else:
            last = max(a[i - 1] if i else -math.inf, b[j - 1] if j else -math.inf)
            return round(last, 2)


DEFINITIONS: dict[str, dict[str, Any]] = {
    "backorder_fill_rate_lines": {
        "formula": "backordered_lines_filled_within_target / backordered_lines_due",
        "target": 0.95,
        "help": (
            "Of the lines backordered at intake whose outcome is known in the window, the share "
            "fully allocated within [kpi] backorder_target_hours of being backordered. A line is "
            "due when it fills, when it is cancelled or replaced while waiting (a miss), or when "
            "its target passes unfilled (a miss, on that day); lines still waiting within their "
            "target are not counted yet."
        ),
    },
    "backorder_fill_rate_units": {
        "formula": "backordered_units_filled_within_target / backordered_units_due",
        "target": 0.95,
        "help": (
            "The same lines weighted by units: of the units backordered on the due lines, those "
            "allocated before each line's target passed (a cancelled line keeps the units it got)."
        ),
    },
    "unit_fill_rate_at_order": {
        "formula": "units_allocated_at_order / units_ordered",
        "target": 0.95,
        "help": (
            "Units allocated when each line was first served (at order time, or when a payment "
            "hold was lifted) divided by the units ordered, by the day the line was served."
        ),
    },
    "reorder_lead_time_hours": {
        "formula": "sum(request_lead_time_hours) / requests_counted",
        "target": 48.0,
        "help": (
            "Purchase orders and transfers: closed ones from raise to their last receipt (on the "
            "day of that receipt), plus every open one past its expected date by its age so far "
            "(open_overdue, in every window). Mean, p50 and p90 (nearest rank), overall and per source."
        ),
    },
    "order_accuracy_post_backorder": {
        "formula": "backordered_orders_shipped_without_exception / backordered_orders_shipped",
        "target": 1.0,
        "help": (
            "Orders that had a backordered line, by the day their first shipment shipped: the "
            "share with no recorded exception, i.e. no shipment.exception (mis_pick, short, "
            "damaged, wrong_address, returned) and no refused pick scan (pick_mismatch) for the order."
        ),
    },
}
