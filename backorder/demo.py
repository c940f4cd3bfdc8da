"""``backorder demo``: a simulated warehouse site driving a real daemon, watched in the console.

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

On a terminal the supervisor console (``backorder.tui``) runs in the foreground on the
demo's socket while the daemon and the driver thread run behind it; quitting the console
(``q``) stops the site. Otherwise a plain summary line is printed every two seconds. The
last line printed is machine-checkable::

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
import sys
import tempfile
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backorder import demo_feeds, demo_history, demo_scenarios, demo_services, demo_threepl
from backorder.client import CallError, Client
from backorder.demo_feeds import CITIES, FIRST_NAMES, LAST_NAMES
from backorder.launcher import Daemon, DaemonStartError
from backorder.timeutil import format_utc, parse_datetime

TICK_S = 0.2  # real seconds between driver steps
PLAIN_EVERY_S = 2.0  # real seconds between summary lines when stdout is not a terminal
ORDERS_PER_TICK = (1, 2, 2, 3, 3, 4)  # drawn uniformly: ~12.5 orders per real second
CHANNELS = (("web", 0.5), ("marketplace", 0.3), ("edi", 0.2))
DOCK_HOURS = range(6, 16)  # a due request is received at one of these hours (UTC)
SERVICE_LEVEL = 0.99  # the planner's target unit fill rate per SKU (auto mode, a demo with history)
CANCEL_AFTER_H = 48  # with history: customers cancel only orders waiting longer than this
START_HOUR = 20  # the simulated clock starts at 20:00 UTC today: the first night comes soon
SUPPLIERS = ("ACME", "GLOBEX", "INITECH")
ACCOUNTS = {"web": ("default",), "marketplace": ("amazon-eu", "ebay-us"), "edi": ("BIGBOX", "MEGAMART")}


class DemoError(Exception):
    """The daemon could not be started or went away."""


class _Stop(Exception):
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


def make_catalog(n: int, speed: float, rng: random.Random, planned: bool = False) -> list[Item]:
    """``n`` SKUs with Zipf-like demand and policies sized to that demand at this speed.

    The busiest fifth all start with stock and are never made to order; a fifth of all
    policies are lean (reorder point below the demand over the lead time), so those SKUs
    run out and backorder; some slow movers are made to order (reorder point 0) or start
    empty; a quarter are replenished by transfer from a sister site. Bulk EDI orders dent
    the rest now and then.

    ``planned``: the site of a demo with history, whose planner (``auto``) sets the levels:
    its suppliers are quicker (1 or 2 days), nothing is made to order, and the opening
    levels are sound (the planner tunes them from the first week on).
    """
    ranks = list(range(1, n + 1))
    rng.shuffle(ranks)
    weights = [1.0 / r**0.9 for r in ranks]
    total = sum(weights)
    units_per_real_s = sum(ORDERS_PER_TICK) / len(ORDERS_PER_TICK) / TICK_S * 1.7 * 3.3
    units_per_day = units_per_real_s * 86400.0 / speed
    items = []
    for i, (rank, w) in enumerate(zip(ranks, weights, strict=True), 1):
        busy = rank <= max(1, n // 5)
        daily = units_per_day * w / total
        transfer = rng.random() < 0.25
        if transfer:
            lead = 1
        elif planned:
            lead = rng.choices((1, 2), (65, 35))[0]
        else:
            lead = rng.choices((1, 2, 3, 4, 5), (35, 35, 15, 10, 5))[0]
        pack = rng.choice((1, 1, 1, 6, 12, 24))
        moq = rng.choice((1, 1, pack, 2 * pack, 50))
        if not busy and not planned and rng.random() < 0.12:
            rp = oup = 0  # made to order: reorder exactly what is backordered
        else:
            # demand over the lead time (+ half a day to the dock) times a cover factor
            lean = rng.random() < 0.2 and not planned
            cover = rng.uniform(0.5, 0.9) if lean else rng.uniform(1.1, 1.8)
            rp = round(daily * (lead + 0.5) * cover)
            oup = rp + max(pack, round(daily * rng.uniform(1.0, 3.0)))
        stocked = busy or rng.random() < 0.8
        opening = rng.randint(max(rp, (rp + oup) // 2), oup) if oup and stocked else 0
        items.append(
            Item(
                sku=f"SKU-{i:04d}",
                weight=w / total,
                price=f"{rng.uniform(2, 180):.2f}",
                reorder_point=rp,
                order_up_to=oup,
                lead_time_days=lead,
                pack_size=pack,
                moq=moq,
                source="transfer:SITE-B" if transfer else f"supplier:{rng.choice(SUPPLIERS)}",
                opening=opening,
            )
        )
    return items


def config_toml(
    db: Path,
    sock: Path,
    speed: float,
    start: str,
    items: list[Item],
    secret_files: dict[str, Path] | None = None,
    extra: list[str] | None = None,
    clock: str = "simulated",
    mode: str = "manual",
) -> str:
    q = json.dumps  # a JSON string is a valid TOML basic string
    out = [
        "# written by `backorder demo`",
        "[daemon]",
        f"db = {q(str(db))}",
        f"socket = {q(str(sock))}",
        f"clock = {q(clock)}",
        f"clock_speed = {float(speed)!r}",
        f"clock_start = {q(start)}",
        'log_level = "warning"',
        "",
        "[allocation]",
        'mode = "fifo"',
    ]
    if secret_files is not None:
        out += demo_feeds.config_toml(secret_files)
    out += extra or []
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
            *([f"mode = {q(mode)}", f"service_level = {SERVICE_LEVEL}"] if mode != "manual" else []),
        ]
    return "\n".join(out) + "\n"


# --- the daemon process ------------------------------------------------------------


class DaemonProcess(Daemon):
    """``backorder serve`` (the shared launcher, backorder/launcher.py) in its own session,
    so Ctrl-C reaches only the demo; config, journal and log in the demo's folder."""

    ready_interval = 0.05

    def __init__(self, config: Path, sock: Path, db: Path, log: Path, env: dict[str, str] | None = None) -> None:
        super().__init__(config.parent, config=config, db=db, socket=sock, log=log, new_session=True, env=env)
        self.sock = sock

    def start(self, timeout: float = 30.0) -> float:
        try:
            return super().start(timeout)
        except DaemonStartError as exc:
            raise DemoError(f"the {exc}") from None

    def stop(self, timeout: float = 20.0) -> int | None:  # type: ignore[override]
        """SIGTERM, wait for the graceful drain; SIGKILL if it does not come. Returns the exit code."""
        return super().stop(signal.SIGTERM, timeout, kill_on_timeout=True)


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

    def __init__(
        self, client: Client, items: list[Item], rng: random.Random, feeds: demo_feeds.Feeds | None = None
    ) -> None:
        self.c = client
        self.feeds = feeds
        self.orders_per_tick = ORDERS_PER_TICK
        self.patient = False  # customers cancel only orders past the fill target (a demo with history)
        self.scenario = demo_scenarios.make(demo_scenarios.DEFAULT)
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
        stats = self.c.call("stats")
        now = parse_datetime(stats["now"])
        self.scenario.step(self, now)
        if self.feeds is not None:
            n = self.rng.choice(ORDERS_PER_TICK) * self.scenario.orders_factor()
            self.counts.orders += self.feeds.deliver(n, now)
            self.feeds.tick(now)
        else:
            self.submit_orders(self.rng.choice(ORDERS_PER_TICK))
        self.receive_due(now)
        self.pick()
        if self.rng.random() < 0.05:
            self.move_a_date(now.date())
        if self.rng.random() < 0.04:
            self.cancel_one(now if self.patient else None)

    # customers
    def submit_orders(self, n: int, channel: str | None = None) -> None:
        """``n`` orders with ``order.submit`` (``channel``: the channel every one is booked to)."""
        reqs = [self._order() for _ in range(n)]
        if channel is not None:
            reqs = [{**r, "channel": channel} for r in reqs]
        self.submit_prepared(reqs)

    def submit_prepared(self, reqs: list[dict]) -> None:
        """``order.submit`` requests as given, counting the orders taken."""
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
            "shipping_address": {
                "name": f"{first} {last}",
                "address1": f"{rng.randrange(1, 200)} Main St",
                "city": city,
                "postal_code": postal,
                "country_code": country,
            },
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
        cap = self.scenario.pick_capacity()
        if cap is not None:
            shipments = shipments[:cap]
        if shipments:
            reqs = [{"op": "pick.confirm", "shipment_id": s["shipment_id"]} for s in shipments]
            self.counts.picks += sum(1 for x in self._check(self.c.pipeline(reqs)) if x["ok"])

    # impatient customers
    def cancel_one(self, now: dt.datetime | None = None) -> None:
        """A customer gives up: one backordered order, with ``now``: only one that has
        waited past the fill target (48 h) already, as patient customers do."""
        orders = self.c.call("orders.list", status="backordered", limit=200)["orders"]
        if now is not None:
            late = format_utc(now - dt.timedelta(hours=CANCEL_AFTER_H))
            orders = [o for o in orders if o.get("received_at") and o["received_at"] < late]
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


# --- the site in the background ----------------------------------------------------


class DemoSite:
    """The daemon process and the driver thread that plays the site against it.

    ``start()`` returns once the daemon serves and the opening stock is in; the driver
    then steps every ``TICK_S`` on its own thread (blocking ``Client``) until ``stop()``,
    which also stops the daemon and returns the final ``stats`` (None if unreachable).
    """

    def __init__(
        self,
        tmp: Path,
        sockdir: Path,
        skus: int,
        speed: float,
        rng: random.Random,
        history_days: int = 0,
        scenario: str = demo_scenarios.DEFAULT,
    ) -> None:
        self.tmp = tmp
        self.scenario = demo_scenarios.make(scenario)
        self.history_days = max(0, history_days)
        self.history: demo_history.HistoryResult | None = None
        self.startup_s = 0.0
        self.start_at = dt.datetime.now(dt.UTC).replace(hour=START_HOUR, minute=0, second=0, microsecond=0)
        self.items = make_catalog(max(1, skus), speed, rng, planned=self.history_days > 0)
        self.rng = rng
        self.speed = speed
        self.sockdir = sockdir
        self.secret_files = demo_feeds.write_secrets(tmp)  # made now, in the demo's folder only
        self.services = demo_services.Services(tmp, random.Random(rng.random()))
        # the flash sale's 3PL (its token and webhook secret made now, in the demo's folder only)
        self.threepl = (
            demo_threepl.FakeShipBob(tmp, demo_scenarios.sale_skus(self.items))
            if isinstance(self.scenario, demo_scenarios.FlashSale)
            else None
        )
        self.config = tmp / "backorder.toml"
        self.daemon = DaemonProcess(
            self.config, sockdir / "demo.sock", tmp / "demo.db", tmp / "daemon.log", self.services.env
        )
        self.driver: Driver | None = None
        self.units = 0
        self.error: str | None = None  # why the driver stopped early
        self._client: Client | None = None
        self._reader: Client | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-driver", daemon=True)

    @property
    def socket(self) -> Path:
        return self.daemon.sock

    def write_config(self, clock: str, start: dt.datetime) -> None:
        extra = self.services.config() + (demo_history.planner_toml() if self.history_days else [])
        if self.threepl is not None and clock == "simulated":  # not in the past: its poll would run per engine second
            extra += self.threepl.config()
        text = config_toml(
            self.tmp / "demo.db",
            self.daemon.sock,
            self.speed,
            format_utc(start),
            self.items,
            self.secret_files,
            extra,
            clock=clock,
            mode="auto" if self.history_days else "manual",
        )
        self.config.write_text(text)

    def start(self) -> None:
        """The receivers; the past (``history_days`` on the stepped clock, then a restart on
        the simulated clock where the past ended); the intake feeds; the driver thread."""
        self.services.start()
        if self.threepl is not None:
            self.threepl.start()
        t0 = time.monotonic()
        if self.history_days:
            self.write_config("stepped", self.start_at - dt.timedelta(days=self.history_days))
            self.daemon.start()
            with Client(str(self.daemon.sock), timeout=120) as c:
                past = Driver(c, self.items, self.rng)
                self.units = past.seed()
                self.history = demo_history.play(past, self.history_days)
            self.daemon.stop()
        self.write_config("simulated", self.start_at)
        self.daemon.start()
        self.startup_s = time.monotonic() - t0
        self._client = Client(str(self.daemon.sock))
        port = self._client.call("health")["intake"]["http_port"]
        if self.threepl is not None:
            self.threepl.intake_port = port  # where its shipment webhooks go
        feeds = demo_feeds.Feeds(
            port,
            str(self.daemon.sock),
            self.secret_files,
            self.items,
            [it.weight for it in self.items],
            self.rng,
            self._client.call,
        )
        self.driver = Driver(self._client, self.items, self.rng, feeds)
        self.driver.patient = self.history_days > 0
        self.driver.scenario = self.scenario
        self.scenario.opened = self.start_at  # the story's moments count from the opening
        if not self.history_days:
            self.units = self.driver.seed()
        self._thread.start()

    def _run(self) -> None:
        assert self.driver is not None
        next_tick = time.monotonic()
        while not self._stop.is_set():
            try:
                self.driver.step()
            except (OSError, ConnectionError, CallError) as exc:
                code = self.daemon.proc.poll() if self.daemon.proc else None
                self.error = f"lost the daemon ({exc}); exit code {code}"
                return
            next_tick += TICK_S
            self._stop.wait(max(0.0, next_tick - time.monotonic()))

    def stats(self) -> dict:
        """``stats`` on a connection of its own (the driver's belongs to its thread)."""
        if self._reader is None:
            self._reader = Client(str(self.daemon.sock))
        return self._reader.call("stats")

    def stop(self) -> dict | None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
        for c in (self._client, self._reader):
            if c is not None:
                c.close()
        final = _final_stats(self.daemon) if self.daemon.alive() else None
        code = self.daemon.stop()
        self.services.stop()
        if self.threepl is not None:
            self.threepl.stop()
        if code not in (0, None) and not self.error:
            self.error = f"the daemon exited with {code}"
        return final


# --- plain output (not a terminal) --------------------------------------------------


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f} %"


def _hours(x: float | None) -> str:
    return "—" if x is None else f"{x:.1f} h"


def plain_line(elapsed: float, st: dict, d: DriverCounts) -> str:
    k = st["counts"]
    return (
        f"[{elapsed:5.1f}s] sim {st['now']} orders={k['orders']} shipped={k['orders_shipped']} "
        f"shipped_today={k['shipments_today']} backordered_lines={k['backordered_lines_total']} "
        f"open_bo_lines={k['open_backorder_lines']} units_waiting={k['units_waiting']} "
        f"oldest_wait={_hours(k['oldest_wait_hours'])} reorders_open={k['reorders_open']} "
        f"reorders_closed={k['reorders_closed']} receipts={d.receipts} partial={d.partial_receipts} "
        f"date_moves={d.date_moves} cancels={d.cancels} fill={_pct(st['fulfillment_rate'])} "
        f"lead={_hours(st['avg_reorder_lead_time_hours'])} accuracy={_pct(st['order_accuracy'])}"
    )


# --- main --------------------------------------------------------------------------


def main(args) -> None:
    """On a terminal: the site in the background, the supervisor console in front; quitting
    the console stops the site. Otherwise (CI, a pipe): a plain summary line every 2 s."""
    if not args.speed > 0:
        sys.exit("backorder demo: --speed must be > 0 (simulated seconds per real second)")
    tmp = Path(tempfile.mkdtemp(prefix="backorder-demo-"))
    sockdir = Path(tempfile.mkdtemp(prefix="bo-", dir="/tmp"))  # AF_UNIX paths are short
    rng = random.Random(getattr(args, "seed", None))
    scenario = getattr(args, "scenario", None) or demo_scenarios.DEFAULT
    site = DemoSite(tmp, sockdir, args.skus, args.speed, rng, getattr(args, "history", 0), scenario)
    tui = sys.stdout.isatty() and sys.stdin.isatty() and not getattr(args, "plain", False)
    old = {s: signal.signal(s, _raise_stop) for s in (signal.SIGTERM, signal.SIGHUP)}
    rc = 0
    final: dict | None = None
    try:
        site.start()
        if not tui:
            print(
                f"backorder demo: {len(site.items)} SKUs, {site.units} opening units, speed {args.speed:g}x, "
                f"folder {tmp}",
                flush=True,
            )
            print(f"backorder demo: scenario {site.scenario.name}: {site.scenario.line}", flush=True)
            if site.history is not None:
                h = site.history
                print(
                    f"backorder demo: history days={h.days} orders={h.orders} planner_runs={h.planner_runs} "
                    f"history_s={h.real_s:.1f} startup_s={site.startup_s:.1f}",
                    flush=True,
                )
        try:
            if tui:
                run_console(site, args, tmp / "tui.log")
            else:
                run_plain(site, args)
        except (KeyboardInterrupt, _Stop):
            pass
        final = site.stop()
        if site.error:
            raise DemoError(site.error)
    except (KeyboardInterrupt, _Stop):
        pass
    except DemoError as exc:
        print(f"backorder demo: {exc}\n{site.daemon.log_tail()}", file=sys.stderr)
        rc = 1
    except (OSError, ConnectionError, CallError) as exc:
        print(f"backorder demo: lost the daemon: {exc}\n{site.daemon.log_tail()}", file=sys.stderr)
        rc = 1
    finally:
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)  # finish the clean-up whatever happens
        site.stop()
        for s, h in old.items():
            signal.signal(s, h)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        shutil.rmtree(sockdir, ignore_errors=True)
        if not (args.keep or rc):
            shutil.rmtree(tmp, ignore_errors=True)
        try:  # the terminal may be gone (a closed SSH session, tmux kill-session): clean up first
            if final is not None and site.driver is not None:
                if site.driver.feeds is not None:
                    print(feeds_line(site.driver.feeds.counts), flush=True)
                print(site.services.summary(), flush=True)
                if site.threepl is not None:
                    print(site.threepl.summary(), flush=True)
                print(f"  scenario {site.scenario.name} {' '.join(site.scenario.log) or '-'}", flush=True)
                print(final_line(final, site.driver.counts), flush=True)
            if args.keep or rc:
                print(f"backorder demo: kept {tmp} (config, journal demo.db, daemon.log, tui.log)", flush=True)
        except OSError:
            pass
    if rc:
        sys.exit(rc)


def run_plain(site: DemoSite, args) -> None:
    t0 = time.monotonic()
    deadline = t0 + args.duration if args.duration > 0 else float("inf")
    while time.monotonic() < deadline and not site.error:
        time.sleep(min(PLAIN_EVERY_S, max(0.0, deadline - time.monotonic())))
        assert site.driver is not None
        print(plain_line(time.monotonic() - t0, site.stats(), site.driver.counts), flush=True)


def run_console(site: DemoSite, args, log_file: Path) -> None:
    """The supervisor console in the foreground (it logs to ``log_file``, never stdout)."""
    import logging

    from backorder.tui.app import BackorderApp

    logging.basicConfig(filename=log_file, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    app = BackorderApp(str(site.socket))
    # the title bar tells the story (the sub-title is the console's connection state)
    app.title = f"backorder demo · {site.scenario.line} · {len(site.items)} SKUs · {args.speed:g}x"
    # SIGTERM / SIGHUP end the console like `q` (its terminal is restored on the way out).
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, lambda *_: app.exit())
    if args.duration > 0:
        app.call_later(lambda: app.set_timer(args.duration, app.exit))
    app.run()


def _final_stats(daemon: DaemonProcess) -> dict | None:
    try:
        with Client(str(daemon.sock), timeout=10) as c:
            return c.call("stats")
    except (OSError, ConnectionError, CallError):
        return None


def feeds_line(f: demo_feeds.FeedCounts) -> str:
    """The intake side of the run: deliveries per channel, outcomes, the bad ones sent."""
    chans = ",".join(f"{c}:{n}" for c, n in sorted(f.deliveries.items()))
    outs = ",".join(f"{c}:{n}" for c, n in sorted(f.outcomes.items()))
    bad = ",".join(f"{c}:{n}" for c, n in sorted(f.bad_sent.items()))
    return (
        f"  intake deliveries={chans or '-'} outcomes={outs or '-'} bad_sent={bad or '-'} "
        f"csv_imports={f.imports} aliases={f.aliases} recovered={f.recovered}"
    )


def final_line(st: dict, d: DriverCounts) -> str:
    k = st["counts"]
    fr = st["fulfillment_rate"]
    lt = st["avg_reorder_lead_time_hours"]
    acc = st["order_accuracy"]
    kpis = (
        f"  fulfillment {_pct(fr)} (target > 95 %), reorder lead time {_hours(lt)} (target < 48 h), "
        f"order accuracy {_pct(acc)} (target 100 %)"
    )
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
