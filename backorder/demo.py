"""``backorder demo``: a simulated warehouse site driving a real daemon, shown live.

The demo writes a config for a site of ``--skus`` SKUs into a temporary folder, starts
``backorder serve`` on it with a simulated clock (``--speed`` simulated seconds per real
second, so one simulated day passes in 24 s by default) and then plays the site:

- orders arrive from three channels (web, marketplace, EDI) with skewed demand: a few hot
  SKUs take most of it, so their stock runs out, lines are backordered and the daemon
  raises purchase orders / transfers;
- the dock receives each request on its expected date, at a dock hour of that day (an
  overdue request at once), against its ``reference``; sometimes a supplier short-ships
  and promises the rest for the next day (``procurement.confirm``); sometimes a supplier
  moves a date;
- pickers confirm every shipment in ``picking``; a few customers cancel backordered orders.

The summary (KPIs from ``stats``, the SKUs with most units waiting, the latest notable
events from a ``subscribe`` connection) is a ``rich`` live view on a terminal and a plain
line every two seconds otherwise. The last line printed is machine-checkable::

    demo finished: orders=412 shipped=377 backordered_lines=96 reorders=58 receipts=21 ...

Everything goes through the public socket protocol with the blocking ``Client``; the demo
never touches the daemon's files.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backorder.client import CallError, Client

TICK_S = 0.2  # real seconds between driver steps
RENDER_S = 0.5  # real seconds between screen refreshes (~2x/s)
PLAIN_EVERY_S = 2.0  # real seconds between summary lines when stdout is not a terminal
ORDERS_PER_TICK = (1, 2, 2, 3, 3, 4)  # drawn uniformly: ~12.5 orders per real second
CHANNELS = (("web", 0.5), ("marketplace", 0.3), ("edi", 0.2))
DOCK_HOURS = range(6, 16)  # a due request is received at one of these hours (UTC)
START_HOUR = 20  # the simulated clock starts at 20:00 UTC today: the first night comes soon
SUPPLIERS = ("ACME", "GLOBEX", "INITECH")
FIRST_NAMES = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Radia", "Linus", "Margaret", "Dennis")
LAST_NAMES = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Thompson", "Perlman", "Hamilton")
CITIES = (("Lyon", "FR", "69002"), ("Leeds", "GB", "LS1 4AP"), ("Austin", "US", "78701"),
          ("Porto", "PT", "4000-322"), ("Graz", "AT", "8010"), ("Osaka", "JP", "530-0001"))
ACCOUNTS = {"web": ("default",), "marketplace": ("amazon-eu", "ebay-us"), "edi": ("BIGBOX", "MEGAMART")}


class DemoError(Exception):
    """The daemon could not be started or went away."""


class _Stop(Exception):  # noqa: N818 - a signal, not an error
    """SIGTERM / SIGHUP: stop like Ctrl-C."""


# --- the simulated site ------------------------------------------------------------


@dataclass(slots=True)
class Item:
    sku: str
    weight: float  # share of demand
    price: str  # unit price, a decimal string
    reorder_point: int
    order_up_to: int
    lead_time_days: int
    pack_size: int
    moq: int
    source: str
    opening: int  # units received before the first order


def make_catalog(n: int, speed: float, rng: random.Random) -> list[Item]:
    """``n`` SKUs with Zipf-like demand and policies sized to that demand at this speed.

    The busiest fifth all start with stock and are never made to order; a fifth of all
    policies are lean (reorder point below the demand over the lead time), so those SKUs
    run out and backorder; some slow movers are made to order (reorder point 0) or start
    empty; a quarter are replenished by transfer from a sister site. Bulk EDI orders dent
    the rest now and then.
    """
    ranks = list(range(1, n + 1))
    rng.shuffle(ranks)
    weights = [1.0 / r ** 0.9 for r in ranks]
    total = sum(weights)
    units_per_real_s = sum(ORDERS_PER_TICK) / len(ORDERS_PER_TICK) / TICK_S * 1.7 * 3.3
    units_per_day = units_per_real_s * 86400.0 / speed
    items = []
    for i, (rank, w) in enumerate(zip(ranks, weights, strict=True), 1):
        busy = rank <= max(1, n // 5)
        daily = units_per_day * w / total
        transfer = rng.random() < 0.25
        lead = 1 if transfer else rng.choices((1, 2, 3, 4, 5), (35, 35, 15, 10, 5))[0]
        pack = rng.choice((1, 1, 1, 6, 12, 24))
        moq = rng.choice((1, 1, pack, 2 * pack, 50))
        if not busy and rng.random() < 0.12:
            rp = oup = 0  # made to order: reorder exactly what is backordered
        else:
            # demand over the lead time (+ half a day to the dock) times a cover factor
            cover = rng.uniform(0.5, 0.9) if rng.random() < 0.2 else rng.uniform(1.1, 1.8)
            rp = round(daily * (lead + 0.5) * cover)
            oup = rp + max(pack, round(daily * rng.uniform(1.0, 3.0)))
        stocked = busy or rng.random() < 0.8
        opening = rng.randint(max(rp, (rp + oup) // 2), oup) if oup and stocked else 0
        items.append(Item(
            sku=f"SKU-{i:04d}", weight=w / total, price=f"{rng.uniform(2, 180):.2f}",
            reorder_point=rp, order_up_to=oup, lead_time_days=lead, pack_size=pack, moq=moq,
            source="transfer:SITE-B" if transfer else f"supplier:{rng.choice(SUPPLIERS)}",
            opening=opening,
        ))
    return items


def config_toml(db: Path, sock: Path, speed: float, start: str, items: list[Item]) -> str:
    q = json.dumps  # a JSON string is a valid TOML basic string
    out = [
        "# written by `backorder demo`",
        "[daemon]",
        f"db = {q(str(db))}",
        f"socket = {q(str(sock))}",
        'clock = "simulated"',
        f"clock_speed = {float(speed)!r}",
        f"clock_start = {q(start)}",
        'log_level = "warning"',
        "",
        "[allocation]",
        'mode = "fifo"',
    ]
    for it in items:
        out += [
            "",
            f"[skus.{q(it.sku)}]",
            f"reorder_point = {it.reorder_point}",
            f"order_up_to = {it.order_up_to}",
            f"lead_time_days = {it.lead_time_days}",
            f"pack_size = {it.pack_size}",
            f"moq = {it.moq}",
            f"source = {q(it.source)}",
        ]
    return "\n".join(out) + "\n"


# --- the daemon process ------------------------------------------------------------


class DaemonProcess:
    """``backorder serve`` in its own session (so Ctrl-C reaches only the demo)."""

    def __init__(self, config: Path, sock: Path, log: Path) -> None:
        self.config, self.sock, self.log = config, sock, log
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> None:
        with open(self.log, "ab") as logf:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "backorder", "serve", "--config", str(self.config)],
                stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                cwd=self.config.parent, start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise DemoError(f"the daemon exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with Client(str(self.sock), timeout=5) as c:
                    if c.call("health")["status"] == "serving":
                        return
            except (OSError, ConnectionError, CallError):
                pass
            time.sleep(0.05)
        raise DemoError(f"the daemon did not answer health within {timeout:.0f} s:\n{self.log_tail()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM, wait for the graceful drain; SIGKILL if it does not come. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def log_tail(self, n: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""


# --- the event feed ----------------------------------------------------------------


class EventFeed(threading.Thread):
    """Reads ``subscribe`` event lines on its own connection; keeps the notable ones.

    Fills and shipments are only notable for lines that were backordered, which is the
    story the demo tells: backordered -> reorder -> receipt -> filled -> shipped.
    """

    def __init__(self, sock: Path, keep: int = 8) -> None:
        super().__init__(name="demo-events", daemon=True)
        self.client = Client(str(sock), timeout=None)
        self.recent: collections.deque[str] = collections.deque(maxlen=keep)
        self.counts: collections.Counter[str] = collections.Counter()
        self.story = Story()
        self.client.call("subscribe", topics=["orders", "stock", "shipments", "procurement"])

    def run(self) -> None:
        pending, self.client.events = self.client.events, []
        for msg in pending:
            self._take(msg)
        while True:
            try:
                msg = self.client.read_line()
            except (OSError, ConnectionError, ValueError):
                return
            self._take(msg)

    def stop(self) -> None:
        try:
            self.client.sock.shutdown(2)  # SHUT_RDWR: wakes the blocked read
        except OSError:
            pass
        self.join(5)
        self.client.close()

    def _take(self, msg: dict) -> None:
        e = msg.get("event")
        if not isinstance(e, dict):
            return
        self.counts[e.get("type", "?")] += 1
        text = self.story.describe(e)
        if text:
            self.recent.append(f"{_hhmm(e.get('ts'))}  {text}")


class Story:
    """Turns events into one-line descriptions, following backordered lines to their shipment."""

    def __init__(self) -> None:
        self.waiting: set[tuple[str, int]] = set()  # (order_id, line_no) that were backordered
        self.shipments: set[str] = set()  # shipments that carry a backordered line

    def describe(self, e: dict) -> str | None:
        kind, oid = e.get("type"), e.get("order_id")
        match kind:
            case "line_backordered":
                self.waiting.add((oid, e["line_no"]))
                return f"backordered  {oid} line {e['line_no']}: {e['qty']} x {e['sku']}"
            case "request_raised":
                what = "transfer" if e["kind"] == "transfer" else "PO"
                return (f"reorder      {e['request_id']} {what} {e['qty']} x {e['sku']} "
                        f"from {e['source']}, due {e['expected_date']}")
            case "request_confirmed":
                return f"date moved   {e['request_id']} ({e['sku']}) now due {e['expected_date']}"
            case "received" if e.get("request_id"):
                return f"received     {e['qty']} x {e['sku']} against {e['request_id']}"
            case "allocated" if (oid, e["line_no"]) in self.waiting:
                return f"filled       {oid} line {e['line_no']}: {e['qty']} x {e['sku']} ({e['rule']})"
            case "shipment_created":
                lines = {(oid, n) for n, _sku, _qty in e["items"]}
                if lines & self.waiting:
                    self.shipments.add(e["shipment_id"])
            case "shipment_shipped" if e["shipment_id"] in self.shipments:
                self.shipments.discard(e["shipment_id"])
                return f"shipped      {oid} {e['shipment_id']} after backorder, tracking {e['tracking']}"
            case "order_cancelled":
                self.waiting = {w for w in self.waiting if w[0] != oid}
                return f"cancelled    {oid}: {e['reason']}"
        return None


def _hhmm(ts: Any) -> str:
    if not isinstance(ts, (int, float)):
        return "--:--"
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%a %H:%M")


# --- the driver --------------------------------------------------------------------


@dataclass
class DriverCounts:
    orders: int = 0
    picks: int = 0  # shipments confirmed
    receipts: int = 0  # against a PO / transfer
    partial_receipts: int = 0
    date_moves: int = 0
    cancels: int = 0
    errors: collections.Counter[str] = field(default_factory=collections.Counter)


class Driver:
    """The people of the site: customers, pickers, the dock, suppliers. One step per tick."""

    def __init__(self, client: Client, items: list[Item], rng: random.Random) -> None:
        self.c = client
        self.items = items
        self.rng = rng
        self.weights = [it.weight for it in items]
        self.seq = collections.Counter[str]()
        self.counts = DriverCounts()
        self.short_shipped: set[str] = set()
        self.open_requests: list[dict] = []

    def seed(self) -> int:
        """Opening stock (receipts without reference); returns the units received."""
        reqs = [{"op": "stock.receive", "sku": it.sku, "qty": it.opening} for it in self.items if it.opening]
        self._check(self.c.pipeline(reqs))
        return sum(r["qty"] for r in reqs)

    def step(self) -> None:
        """One tick: orders, dock, picking, now and then a cancel or a date move."""
        self.submit_orders(self.rng.choice(ORDERS_PER_TICK))
        stats = self.c.call("stats")
        now = dt.datetime.fromisoformat(stats["now"].replace("Z", "+00:00"))
        self.receive_due(now)
        self.pick()
        if self.rng.random() < 0.05:
            self.move_a_date(now.date())
        if self.rng.random() < 0.04:
            self.cancel_one()

    # customers
    def submit_orders(self, n: int) -> None:
        reqs = [self._order() for _ in range(n)]
        for reply in self._check(self.c.pipeline(reqs)):
            if reply["ok"]:
                self.counts.orders += 1

    def _order(self) -> dict:
        rng = self.rng
        channel = rng.choices([c for c, _ in CHANNELS], [w for _, w in CHANNELS])[0]
        self.seq[channel] += 1
        n = self.seq[channel]
        chosen = {it.sku: it for it in rng.choices(self.items, self.weights, k=rng.choice((1, 1, 2, 3)))}
        if channel == "edi":  # business customers buy by the case
            qtys = (2, 4, 6, 10, 12, 24)
            external_id = f"EDI850-{n:06d}"
        else:
            qtys = (1, 1, 1, 2, 2, 3)
            external_id = f"W{100000 + n}" if channel == "web" else f"MKT-{rng.randrange(16**6):06X}-{n}"
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        city, country, postal = rng.choice(CITIES)
        return {
            "op": "order.submit",
            "channel": channel,
            "account": rng.choice(ACCOUNTS[channel]),
            "external_id": external_id,
            "order_number": f"#{n}",
            "customer": {"id": f"C{rng.randrange(1, 5000):05d}", "name": f"{first} {last}"},
            "email": f"{first.lower()}.{last.lower()}@example.com",
            "shipping_address": {"name": f"{first} {last}", "address1": f"{rng.randrange(1, 200)} Main St",
                                 "city": city, "postal_code": postal, "country_code": country},
            "currency": "EUR" if country in ("FR", "PT", "AT") else "USD",
            "lines": [{"sku": it.sku, "qty": rng.choice(qtys), "unit_price": it.price} for it in chosen.values()],
            "rush": rng.random() < (0.05 if channel == "edi" else 0.15),
            "ship_complete": rng.random() < (0.3 if channel == "edi" else 0.05),
        }

    # the dock
    def receive_due(self, now: dt.datetime) -> None:
        """Receive every open request due by now: overdue ones at once, today's at their dock hour."""
        today = now.date().isoformat()
        self.open_requests = self.c.call("procurement.list", status="open", limit=10000)["requests"]
        receipts, promises = [], []
        for r in self.open_requests:
            rid, date = r["request_id"], r["expected_date"]
            if not (date < today or (date == today and now.hour >= dock_hour(rid))):
                continue
            qty = r["qty"] - r["received"]
            if qty >= 4 and rid not in self.short_shipped and self.rng.random() < 0.12:
                qty = max(1, round(qty * self.rng.uniform(0.4, 0.8)))  # short-shipped: rest tomorrow
                self.short_shipped.add(rid)
                tomorrow = (now.date() + dt.timedelta(days=1)).isoformat()
                promises.append({"op": "procurement.confirm", "request_id": rid, "expected_date": tomorrow})
                self.counts.partial_receipts += 1
            receipts.append({"op": "stock.receive", "sku": r["sku"], "qty": qty, "reference": rid})
        if receipts:
            self.counts.receipts += sum(1 for x in self._check(self.c.pipeline(receipts)) if x["ok"])
        if promises:
            self.counts.date_moves += sum(1 for x in self._check(self.c.pipeline(promises)) if x["ok"])

    # suppliers
    def move_a_date(self, today: dt.date) -> None:
        later = [r for r in self.open_requests if r["expected_date"] > today.isoformat()]
        if not later:
            return
        r = self.rng.choice(later)
        new = dt.date.fromisoformat(r["expected_date"]) + dt.timedelta(days=self.rng.choice((-1, 1, 2)))
        new = max(new, today)
        if self._call_counted("procurement.confirm", request_id=r["request_id"], expected_date=new.isoformat()):
            self.counts.date_moves += 1

    # pickers
    def pick(self) -> None:
        shipments = self.c.call("shipments.list", status="picking", limit=1000)["shipments"]
        if shipments:
            reqs = [{"op": "pick.confirm", "shipment_id": s["shipment_id"]} for s in shipments]
            self.counts.picks += sum(1 for x in self._check(self.c.pipeline(reqs)) if x["ok"])

    # impatient customers
    def cancel_one(self) -> None:
        orders = self.c.call("orders.list", status="backordered", limit=200)["orders"]
        if orders:
            o = self.rng.choice(orders)
            if self._call_counted("order.cancel", order_id=o["order_id"], reason="customer gave up waiting"):
                self.counts.cancels += 1

    def _call_counted(self, op: str, **fields: Any) -> bool:
        try:
            self.c.call(op, **fields)
            return True
        except CallError as exc:
            self.counts.errors[f"{op}: {exc.code}"] += 1
            return False

    def _check(self, replies: list[dict]) -> list[dict]:
        for r in replies:
            if not r["ok"]:
                self.counts.errors[r["error"]["code"]] += 1
        return replies


def dock_hour(request_id: str) -> int:
    """The hour (UTC) the truck for this request arrives on its expected date."""
    return DOCK_HOURS[zlib.crc32(request_id.encode()) % len(DOCK_HOURS)]


# --- what is shown -----------------------------------------------------------------


@dataclass
class Snapshot:
    stats: dict
    top: list[dict]
    next_due: dict[str, str]
    events: list[str]
    event_total: int
    counts: DriverCounts
    elapsed: float
    start: dt.datetime


def snapshot(c: Client, driver: Driver, feed: EventFeed | None, elapsed: float, start: dt.datetime) -> Snapshot:
    stats = c.call("stats")
    waiting = c.call("skus.list", waiting=True, limit=10000)["skus"]
    waiting.sort(key=lambda s: (-s["backordered"], -s["waiting_lines"], s["sku"]))
    next_due: dict[str, str] = {}
    for r in driver.open_requests:
        if r["sku"] not in next_due or r["expected_date"] < next_due[r["sku"]]:
            next_due[r["sku"]] = r["expected_date"]
    return Snapshot(stats, waiting[:15], next_due, list(feed.recent) if feed else [],
                    sum(feed.counts.values()) if feed else 0, driver.counts, elapsed, start)


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f} %"


def _hours(x: float | None) -> str:
    return "—" if x is None else f"{x:.1f} h"


def kpi_rows(st: dict) -> list[tuple[str, str, str, bool | None]]:
    """(name, value, target, met) for the three headline KPIs."""
    fr, lt, acc = st["fulfillment_rate"], st["avg_reorder_lead_time_hours"], st["order_accuracy"]
    t = st["targets"]
    return [
        ("Backorder fulfillment rate", _pct(fr), f"> {_pct(t['fulfillment_rate'])}",
         None if fr is None else fr > t["fulfillment_rate"]),
        ("Avg reorder lead time", _hours(lt), f"< {t['avg_reorder_lead_time_hours']:.0f} h",
         None if lt is None else lt < t["avg_reorder_lead_time_hours"]),
        ("Order accuracy", _pct(acc), _pct(t["order_accuracy"]),
         None if acc is None else acc >= t["order_accuracy"]),
    ]


def sim_day(snap: Snapshot) -> str:
    now = dt.datetime.fromisoformat(snap.stats["now"].replace("Z", "+00:00"))
    day = (now.date() - snap.start.date()).days
    return f"{now:%a %Y-%m-%d %H:%M} UTC (day {day})"


def plain_line(snap: Snapshot) -> str:
    st, k, d = snap.stats, snap.stats["counts"], snap.counts
    return (
        f"[{snap.elapsed:5.1f}s] sim {st['now']} orders={k['orders']} shipped={k['orders_shipped']} "
        f"shipped_today={k['shipments_today']} backordered_lines={k['backordered_lines_total']} "
        f"open_bo_lines={k['open_backorder_lines']} units_waiting={k['units_waiting']} "
        f"oldest_wait={_hours(k['oldest_wait_hours'])} reorders_open={k['reorders_open']} "
        f"reorders_closed={k['reorders_closed']} receipts={d.receipts} partial={d.partial_receipts} "
        f"date_moves={d.date_moves} cancels={d.cancels} fill={_pct(st['fulfillment_rate'])} "
        f"lead={_hours(st['avg_reorder_lead_time_hours'])} accuracy={_pct(st['order_accuracy'])}"
    )


def render(snap: Snapshot, speed: float, width: int = 150, height: int = 50):
    """The live view. Wide terminals get KPIs and counts beside the SKU table; narrower
    ones stack them, with as many SKU rows as the height leaves room for."""
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    st, k, d = snap.stats, snap.stats["counts"], snap.counts
    head = Text.assemble(
        ("backorder demo", "bold"), "  ·  ", (sim_day(snap), "cyan"),
        f"  ·  {speed:g}x  ·  {snap.elapsed:.0f} s  ·  Ctrl-C to stop",
    )

    kpis = Table(title="KPIs", title_justify="left", expand=True)
    kpis.add_column("metric")
    kpis.add_column("value", justify="right")
    kpis.add_column("target", justify="right")
    for name, value, target, met in kpi_rows(st):
        style = "dim" if met is None else ("green" if met else "red")
        kpis.add_row(name, Text(value, style=style), target)
    wide = width >= 130

    counts = Table.grid(padding=(0, 2))
    counts.add_column()
    counts.add_column(justify="right")
    for label, value in (
        ("orders (shipped)", f"{k['orders']:,} ({k['orders_shipped']:,})"),
        ("shipments today", f"{k['shipments_today']:,}"),
        ("open backorder lines", f"{k['open_backorder_lines']:,}"),
        ("units waiting", f"{k['units_waiting']:,}"),
        ("oldest wait", _hours(k["oldest_wait_hours"])),
        ("backordered lines (filled)", f"{k['backordered_lines_total']:,} ({k['backordered_lines_filled']:,})"),
        ("reorders open / closed", f"{k['reorders_open']:,} / {k['reorders_closed']:,}"),
        ("receipts (partial)", f"{d.receipts:,} ({d.partial_receipts:,})"),
        ("date moves · cancels", f"{d.date_moves:,} · {d.cancels:,}"),
        ("events seen", f"{snap.event_total:,}"),
        ("unexpected errors", f"{sum(d.errors.values()):,}"),
    ):
        counts.add_row(label, value)

    top = Table(title="SKUs with most units waiting", title_justify="left", expand=True)
    for col, just in (("SKU", "left"), ("waiting", "right"), ("lines", "right"), ("on hand", "right"),
                      ("avail", "right"), ("inbound", "right"), ("position", "right"), ("ROP", "right"),
                      ("due", "left")):
        top.add_column(col, justify=just)  # type: ignore[arg-type]
    rows = snap.top if wide else snap.top[:max(3, min(len(snap.top), height - 30))]
    for s in rows:
        top.add_row(s["sku"], Text(str(s["backordered"]), style="bold red" if s["backordered"] else ""),
                    str(s["waiting_lines"]), str(s["on_hand"]), str(s["available"]), str(s["inbound"]),
                    str(s["position"]), str(s["reorder_point"]), snap.next_due.get(s["sku"], "—")[5:] or "—")
    if not snap.top:
        top.add_row("(nothing waiting)", *[""] * 8)

    counts_panel = Panel(counts, title="counts", title_align="left")
    body = Table.grid(expand=True, padding=(0, 1))
    if wide:
        body.add_column(ratio=2)
        body.add_column(ratio=3)
        body.add_row(Group(kpis, counts_panel), top)
    else:
        body.add_column(ratio=1)
        body.add_column(ratio=1)
        body.add_row(kpis, counts_panel)
        body = Group(body, top)
    events = Panel("\n".join(snap.events) or "(waiting for events)", title="latest events", title_align="left")
    return Group(head, body, events)


# --- main --------------------------------------------------------------------------


def main(args) -> None:
    if not args.speed > 0:
        sys.exit("backorder demo: --speed must be > 0 (simulated seconds per real second)")
    rng = random.Random(getattr(args, "seed", None))
    tmp = Path(tempfile.mkdtemp(prefix="backorder-demo-"))
    sockdir = Path(tempfile.mkdtemp(prefix="bo-", dir="/tmp"))  # AF_UNIX paths are short
    start = dt.datetime.now(dt.UTC).replace(hour=START_HOUR, minute=0, second=0, microsecond=0)
    items = make_catalog(max(1, args.skus), args.speed, rng)
    config = tmp / "backorder.toml"
    config.write_text(config_toml(tmp / "demo.db", sockdir / "demo.sock", args.speed,
                                  start.isoformat().replace("+00:00", "Z"), items))
    daemon = DaemonProcess(config, sockdir / "demo.sock", tmp / "daemon.log")
    tty = sys.stdout.isatty()
    old = {s: signal.signal(s, _raise_stop) for s in (signal.SIGTERM, signal.SIGHUP)}
    rc = 0
    final: dict | None = None
    driver: Driver | None = None
    try:
        daemon.start()
        with Client(str(daemon.sock)) as c:
            driver = Driver(c, items, rng)
            units = driver.seed()
            if not tty:
                print(f"backorder demo: {len(items)} SKUs, {units} opening units, speed {args.speed:g}x, "
                      f"folder {tmp}", flush=True)
            feed = EventFeed(daemon.sock)
            feed.start()
            try:
                run(c, driver, feed, daemon, args, start, tty)
            except (KeyboardInterrupt, _Stop):
                pass
            finally:
                feed.stop()
        final = _final_stats(daemon)
    except (KeyboardInterrupt, _Stop):
        pass
    except DemoError as exc:
        print(f"backorder demo: {exc}", file=sys.stderr)
        rc = 1
    except (OSError, ConnectionError) as exc:
        print(f"backorder demo: lost the daemon: {exc}\n{daemon.log_tail()}", file=sys.stderr)
        rc = 1
    finally:
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)  # finish the clean-up whatever happens
        code = daemon.stop()
        if code not in (0, None) and not rc:  # a failure already reported includes the log
            print(f"backorder demo: the daemon exited with {code}; log: {daemon.log}", file=sys.stderr)
            print(daemon.log_tail(), file=sys.stderr)
            rc = rc or 1
        for s, h in old.items():
            signal.signal(s, h)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if final is not None and driver is not None:
            print(final_line(final, driver.counts), flush=True)
        shutil.rmtree(sockdir, ignore_errors=True)
        if args.keep or rc:
            print(f"backorder demo: kept {tmp} (config, journal demo.db, daemon.log)", flush=True)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if rc:
        sys.exit(rc)


def run(c: Client, driver: Driver, feed: EventFeed, daemon: DaemonProcess, args, start: dt.datetime,
        tty: bool) -> None:
    t0 = time.monotonic()
    deadline = t0 + args.duration if args.duration > 0 else float("inf")
    next_tick = t0
    next_show = t0
    every = RENDER_S if tty else PLAIN_EVERY_S

    def tick() -> Snapshot | None:
        nonlocal next_tick, next_show
        if not daemon.alive():
            code = daemon.proc.returncode if daemon.proc else None
            raise DemoError(f"the daemon exited with {code}:\n{daemon.log_tail()}")
        driver.step()
        now = time.monotonic()
        snap = None
        if now >= next_show:
            snap = snapshot(c, driver, feed, now - t0, start)
            next_show = now + every
        next_tick += TICK_S
        time.sleep(max(0.0, next_tick - time.monotonic()))
        return snap

    if not tty:
        while time.monotonic() < deadline:
            snap = tick()
            if snap:
                print(plain_line(snap), flush=True)
        return

    from rich.console import Console
    from rich.live import Live

    console = Console()
    with Live(console=console, auto_refresh=False, transient=False, vertical_overflow="crop") as live:
        while time.monotonic() < deadline:
            snap = tick()
            if snap:
                live.update(render(snap, args.speed, console.width, console.height), refresh=True)


def _final_stats(daemon: DaemonProcess) -> dict | None:
    try:
        with Client(str(daemon.sock), timeout=10) as c:
            return c.call("stats")
    except (OSError, ConnectionError, CallError):
        return None


def final_line(st: dict, d: DriverCounts) -> str:
    k = st["counts"]
    fr = st["fulfillment_rate"]
    lt = st["avg_reorder_lead_time_hours"]
    acc = st["order_accuracy"]
    kpis = (f"  fulfillment {_pct(fr)} (target > 95 %), reorder lead time {_hours(lt)} (target < 48 h), "
            f"order accuracy {_pct(acc)} (target 100 %)")
    return (
        f"{kpis}\n"
        f"demo finished: orders={k['orders']} shipped={k['orders_shipped']} "
        f"backordered_lines={k['backordered_lines_total']} filled_lines={k['backordered_lines_filled']} "
        f"reorders={k['reorders_open'] + k['reorders_closed']} reorders_closed={k['reorders_closed']} "
        f"receipts={d.receipts} picks={d.picks} cancels={d.cancels} units_waiting={k['units_waiting']} "
        f"fulfillment_rate={'' if fr is None else fr} lead_time_h={'' if lt is None else lt} "
        f"order_accuracy={'' if acc is None else acc} errors={sum(d.errors.values())} sim_now={st['now']}"
    )


def _raise_stop(signum, frame) -> None:
    raise _Stop(signal.Signals(signum).name)
