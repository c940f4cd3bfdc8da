"""Replay a generated site through a real ``backorder serve`` on the stepped clock.

Everything goes over the daemon's socket, as an integration would: the driver submits
the customers' orders, moves the clock (``clock.advance``) one step at a time, learns of
the purchase orders the daemon raised from ``procurement.list``, answers them as the
simulated supplier with ``stock.receive`` (referencing the request, with a receipt id),
and cancels the orders of customers who waited longer than their patience (after an
``order.get`` says they still wait; the cancellation reaches the site at the next step). Shipping is the site's ``auto_pick``: allocated
units ship at once. Nothing is read from the daemon's memory; the figures come from its
journal afterwards (``referee``).

Within a step the requests go in a fixed order (the advance, cancellations, receipts,
then orders in time order; then the reads), each batch pipelined over one connection, so
a run is a fixed sequence of requests and advances: the same journal, event for event.
"""

from __future__ import annotations

import heapq
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from backorder.client import CallError, Client
from backorder.lab import policies
from backorder.lab.generator import DAY, Site, SkuSpec, deliveries
from backorder.launcher import Daemon, DaemonStartError
from backorder.timeutil import iso_ts, parse_ts

START = "2026-01-05T00:00:00Z"  # a Monday; engine time of the scenario's day 0
WAITING = frozenset({"received", "backordered", "partially_allocated", "partially_shipped"})
# what an unavailable planner looks like from outside: its ops, fields or config unknown,
# or the planner off in a config the daemon took
UNAVAILABLE_CODES = frozenset({"unknown_op", "invalid_request", "planner_disabled"})
PAGE = 10000  # procurement.list's largest page
CONFIG = "backorder.toml"  # the run's configuration, beside its journal (the referee reads it too)
PLANNER_RUN_ATTEMPTS = 3


class PolicyUnavailable(Exception):
    """The daemon does not know what the policy needs (the planner's config or ops)."""


class DriverError(RuntimeError):
    """The daemon refused a request the driver makes for any policy (a bug of the lab)."""


# With ``notices``: customer notices are journaled (unrouted: the lab's orders carry no
# e-mail address), so the referee sees which slipped promises were told in time
# (``late_lines_told_in_time``); the notifier's hourly depletion and promise checks then
# run on the stepped clock too (replay-deterministic like the rest: test_lab). Off by
# default: the checks cost run time, and the figures most runs compare do not need them.
NOTICES = """
[notifications.routes]
"*" = "email"
"""


def site_config(policy: policies.Policy, start: str = START, notices: bool = False) -> str:
    return f"""
strict_skus = false

[daemon]
clock = "stepped"
clock_start = "{start}"
log_level = "warning"
integrity_check = false

[fulfillment]
auto_pick = true

[sources.lab]
name = "Lab Supply"
{NOTICES if notices else ""}
{policy.config()}
"""


@dataclass(slots=True)
class RunInfo:
    """What the driver did; the figures are the referee's."""

    policy: str
    seed: int
    db: Path
    socket: str
    start_ts: float
    measure_from: float
    end_ts: float
    seconds: float = 0.0
    requests: int = 0
    lines_sent: int = 0
    purchase_orders_answered: int = 0
    cancels_sent: int = 0
    daemon: Daemon | None = field(default=None, repr=False)

    def record(self) -> dict:
        """The run as JSON-ready data (without the daemon handle)."""
        return {
            "policy": self.policy,
            "seed": self.seed,
            "db": str(self.db),
            "socket": self.socket,
            "start_ts": self.start_ts,
            "measure_from": self.measure_from,
            "end_ts": self.end_ts,
            "seconds": round(self.seconds, 2),
            "requests": self.requests,
            "lines_sent": self.lines_sent,
            "purchase_orders_answered": self.purchase_orders_answered,
            "cancels_sent": self.cancels_sent,
        }


def _check(replies: list[dict], what: str, allow: frozenset[str] = frozenset()) -> None:
    for r in replies:
        if not r["ok"] and r["error"]["code"] not in allow:
            raise DriverError(f"{what} refused: {r['error']['code']}: {r['error']['message']}")


def _unavailable(reply: dict) -> str | None:
    if not reply["ok"] and reply["error"]["code"] in UNAVAILABLE_CODES:
        return f"{reply['error']['code']}: {reply['error']['message'][:160]}"
    return None


class Driver:
    """One run: a fresh daemon and journal in ``workdir``, set up for ``policy``, then the
    whole site played to it (``run``); ``on_start`` is told the socket once it serves."""

    def __init__(
        self,
        site: Site,
        policy: policies.Policy,
        workdir: Path,
        *,
        on_start: Callable[[RunInfo], None] | None = None,
        window: int = 512,
        notices: bool = False,
    ) -> None:
        self.notices = notices
        self.site = site
        self.policy = policy
        self.workdir = Path(workdir)
        self.on_start = on_start
        self.window = window
        self.by_sku: dict[str, SkuSpec] = {s.sku: s for s in site.skus}
        self.po_count: dict[str, int] = {}  # purchase orders seen per SKU (the supplier's n)
        self.receipts: list[tuple[float, str, int, str, int]] = []  # (due, request, part, sku, qty)
        self.patience: list[tuple[float, int, str]] = []  # (due, order seq, order_id)
        self.requests_seen = 0

    def run(self) -> RunInfo:
        spec = self.site.spec
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / CONFIG).write_text(site_config(self.policy, notices=self.notices))
        db = self.workdir / "journal.db"
        if db.exists():
            for p in self.workdir.glob("journal.db*"):
                p.unlink()
        daemon = Daemon(self.workdir, db=db)
        start_ts = parse_ts(START)
        info = RunInfo(
            policy=self.policy.name,
            seed=spec.seed,
            db=db,
            socket=str(daemon.socket),
            start_ts=start_ts,
            measure_from=start_ts + spec.warmup_days * DAY,
            end_ts=start_ts + spec.total_days * DAY,
            daemon=daemon,
        )
        try:
            daemon.start(timeout=60)
        except DaemonStartError as exc:
            daemon.cleanup()
            refusal = _last_line(str(exc))
            if self.policy.planner and "planner" in refusal:
                raise PolicyUnavailable(f"the daemon refused the planner's config: {refusal}") from None
            raise
        if self.on_start is not None:
            self.on_start(info)
        t0 = time.perf_counter()
        try:
            with daemon.client(timeout=600) as c:
                self._setup(c, info)
                self._replay(c, info)
        except BaseException:
            daemon.cleanup()
            raise
        info.seconds = time.perf_counter() - t0
        return info

    def _pipeline(self, c: Client, reqs: list[dict], info: RunInfo) -> list[dict]:
        info.requests += len(reqs)
        return c.pipeline(reqs, window=self.window) if reqs else []

    def _setup(self, c: Client, info: RunInfo) -> None:
        """Opening stock (an order-up-to's worth), then each SKU's policy. The stock comes
        first: a SKU configured with nothing on hand would raise a purchase order at once;
        a receipt needs a known SKU, hence a first configure with nothing to reorder."""
        daily = self.site.warmup_daily_demand()
        confs = [policies.configure_request(self.policy, s, daily[s.sku]) for s in self.site.skus]
        blank = [{"op": "sku.configure", "sku": s.sku, "reorder_point": 0, "order_up_to": 0} for s in self.site.skus]
        _check(self._pipeline(c, blank, info), "sku.configure")
        receipts = [
            {"op": "stock.receive", "sku": q["sku"], "qty": q["order_up_to"], "reference": "opening"}
            for q in confs
            if q["order_up_to"] > 0
        ]
        _check(self._pipeline(c, receipts, info), "opening stock")
        _check(self._pipeline(c, confs, info), "sku.configure")
        if self.policy.planner:
            replies = self._pipeline(c, [policies.handover_request(s) for s in self.site.skus], info)
            if why := next(filter(None, map(_unavailable, replies)), None):
                raise PolicyUnavailable(f"sku.configure with a planner mode: {why}")
            _check(replies, "sku.configure (planner mode)")
            # a daemon that ignores an unknown field takes ``mode`` silently: the op tells
            reply = self._planner_run(c, info)
            if why := _unavailable(reply):
                raise PolicyUnavailable(f"planner.run: {why}")
            _check([reply], "planner.run")  # a run that did not happen would change the replay
        if self.policy.allocation != "fifo":
            _check(self._pipeline(c, [{"op": "policy.set", "mode": self.policy.allocation}], info), "policy.set")

    def _planner_run(self, c: Client, info: RunInfo) -> dict:
        """The first run, before any advance. Its worker may still be starting (slowly on a
        loaded machine) or be replaced meanwhile: a ``planner_unavailable`` is asked again,
        as the daemon sends its scheduled runs again under the stepped clock."""
        for _ in range(PLANNER_RUN_ATTEMPTS):
            reply = c.request("planner.run")
            info.requests += 1
            if reply["ok"] or reply["error"]["code"] != "planner_unavailable":
                break
        return reply

    def _replay(self, c: Client, info: RunInfo) -> None:
        """Two round trips per step: the writes (the advance, the cancellations decided at
        the step before, the deliveries due, the orders placed), then the reads that see
        their outcome (the impatient customers' orders, the new purchase orders). Every
        round trip waits for a journal commit, so their number, not the daemon's speed,
        sets the pace of a run."""
        spec = self.site.spec
        step = spec.step_hours * 3600.0
        orders = self.site.orders
        n_steps = int(round(spec.total_days * DAY / step))
        oi = 0
        cancels: list[dict] = []
        for k in range(1, n_steps + 1):
            t = k * step
            reqs: list[dict] = [{"op": "clock.advance", "to": iso_ts(info.start_ts + t)}, *cancels]
            while self.receipts and self.receipts[0][0] <= t:
                _, request_id, part, sku, qty = heapq.heappop(self.receipts)
                reqs.append(
                    {
                        "op": "stock.receive",
                        "sku": sku,
                        "qty": qty,
                        "reference": request_id,
                        "receipt_id": f"{request_id}/{part}",
                    }
                )
            first_order = len(reqs)
            batch = []
            while oi < len(orders) and orders[oi].t <= t:
                o = orders[oi]
                batch.append((oi, o))
                reqs.append(
                    {
                        "op": "order.submit",
                        "channel": "lab",
                        "external_id": o.key,
                        "lines": [{"sku": li.sku, "qty": li.qty, "unit_price": self._price(li.sku)} for li in o.lines],
                        "rush": o.rush,
                        "priority": o.priority,
                        "ship_complete": o.ship_complete,
                    }
                )
                info.lines_sent += len(o.lines)
                oi += 1
            replies = self._pipeline(c, reqs, info)
            # an order whose last units shipped since its customer looked is no longer cancellable
            _check(replies[: 1 + len(cancels)], "clock.advance or order.cancel", allow=frozenset({"already_shipped"}))
            _check(replies[1 + len(cancels) :], "a receipt or an order")
            info.cancels_sent += len(cancels)
            for (seq, o), reply in zip(batch, replies[first_order:], strict=True):
                waits = any(li["backordered"] for li in reply["result"]["lines"])
                if waits and o.patience_days is not None:
                    heapq.heappush(self.patience, (o.t + o.patience_days * DAY, seq, reply["result"]["order_id"]))
            cancels = self._look(c, t, info)

    def _price(self, sku: str) -> str:
        return f"{self.by_sku[sku].unit_price:.2f}"

    def _look(self, c: Client, t: float, info: RunInfo) -> list[dict]:
        """One round trip of reads after the step's writes: the orders of customers whose
        patience ran out (those still waiting cancel, at the next step), and the purchase
        orders raised since the last look (``procurement.list`` lists every request oldest
        first, so the new ones are those past the count seen), which the supplier schedules."""
        due = []
        while self.patience and self.patience[0][0] <= t:
            due.append(heapq.heappop(self.patience)[2])
        reads = [{"op": "order.get", "order_id": oid} for oid in due]
        reads.append({"op": "procurement.list", "status": "all", "offset": self.requests_seen, "limit": PAGE})
        replies = self._pipeline(c, reads, info)
        _check(replies, "order.get or procurement.list")
        page = replies[-1]["result"]["requests"]
        while True:
            self._schedule(page, t, info)
            if len(page) < PAGE:
                break
            page = c.call("procurement.list", status="all", offset=self.requests_seen, limit=PAGE)["requests"]
            info.requests += 1
        return [
            {"op": "order.cancel", "order_id": oid, "reason": "customer tired of waiting"}
            for oid, look in zip(due, replies, strict=False)
            if look["result"]["status"] in WAITING
        ]

    def _schedule(self, page: list[dict], t: float, info: RunInfo) -> None:
        """The supplier's deliveries of newly seen purchase orders."""
        self.requests_seen += len(page)
        for r in page:
            nth = self.po_count.get(r["sku"], 0)
            self.po_count[r["sku"]] = nth + 1
            s = self.by_sku.get(r["sku"])
            if s is None or r["kind"] != "po":
                continue
            info.purchase_orders_answered += 1
            parts = deliveries(self.site.spec, s, nth, t)
            left = r["qty"]
            for part, d in enumerate(parts):
                qty = left if part == len(parts) - 1 else min(left, max(1, round(r["qty"] * d.fraction)))
                left -= qty
                if qty > 0:
                    heapq.heappush(self.receipts, (t + d.delay, r["request_id"], part, r["sku"], qty))


def _last_line(text: str) -> str:
    """The daemon's last log line (its refusal), without the run's config path."""
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    last = lines[-1] if lines else text
    return re.sub(r"^\S+\.toml: ", "", last)[:300]


def stop(info: RunInfo) -> None:
    """A clean stop of the run's daemon (the journal complete and closed)."""
    if info.daemon is not None:
        try:
            info.daemon.stop(timeout=60, kill_on_timeout=True)
        except CallError:
            pass
        info.daemon.cleanup()
