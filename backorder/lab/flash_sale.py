"""The policy lab's flash-sale scenario (``backorder lab --scenario flash-sale``): does
order -> ship p95 stay within a bound when the 3PL takes the overflow, and does every
order routed to it ship exactly once, even across a ``kill -9`` of the daemon?

The lab's other sites ship allocated units at once (``auto_pick``): they have no pick
capacity, so a pick backlog, and with it the 3PL, never appears there. This scenario has a
driver of its own with a pick capacity: a real ``backorder serve`` on the stepped clock
(15-minute steps), ``[threepl]`` on against the demo's fake ShipBob on loopback
(``demo_threepl``: its documented shapes, auth checked), and the site's pickers confirm
the oldest picking shipments, ``pick_rate`` units an hour. Demand: a few SKUs at a base
rate, and a spike on some of them (the sale) far beyond that capacity. The 3PL ships an
order ``handling_hours`` of engine time after the driver first saw it there, by its
signed webhook. At ``kill_at_hour`` the driver ``kill -9``s the daemon while an advance
is sending orders to the 3PL, restarts it on the same journal and goes on.

The figures come from the journal (``referee``): order -> ship (the order's last
``shipment_shipped`` - its ``order_received``, engine time) p50 / p95 / max, overall and
for the routed and the site's orders; the routed orders, and how many shipped exactly
once (one ``shipment_shipped`` of their 3PL shipment, every unit shipped once); any
shipment shipped twice anywhere; the orders never shipped. The fake 3PL adds what only it
sees: the creates per order (1 each: exactly once at the 3PL).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from backorder.actors import events as ev
from backorder.client import CallError, Client
from backorder.demo_threepl import FakeShipBob
from backorder.lab.generator import rng
from backorder.lab.referee import _pct, read_journal
from backorder.launcher import Daemon, wait_until
from backorder.timeutil import iso_ts, parse_ts

START = "2026-01-05T09:00:00Z"  # engine time of hour 0 (a Monday morning)
STEP_S = 900.0  # one step: 15 minutes of engine time
ADDRESS = {"name": "Ada Park", "address1": "1 Main St", "city": "Springfield", "country_code": "US"}
SITE_STOCK = 100_000  # units the site holds of every SKU: the limit is picking, not stock


@dataclass(frozen=True)
class FlashSpec:
    """The flash-sale site: demand, pick capacity, the 3PL's handling, the bound, the kill."""

    seed: int = 1
    hours: int = 24  # hours of demand; the run goes on until every order shipped
    skus: int = 6
    sale_skus: int = 2  # the first ones: the sale's, the only ones the 3PL holds
    base_per_hour: float = 20.0  # orders an hour on every SKU, all day
    burst: int = 400  # sale orders, over the sale hours
    sale_from_hour: int = 2
    sale_hours: int = 2
    pick_rate: int = 60  # units the site picks an hour
    handling_hours: float = 3.0  # the 3PL ships an order this long after it got it
    backlog_on_hours: float = 2.0  # [threepl] routing on at this pick backlog, off at half
    p95_bound_hours: float = 4.0  # the configured bound the referee checks order -> ship p95 against
    kill_at_hour: float | None = 3.0  # kill -9 the daemon during the advance to this hour (None: never)
    threepl: bool = True  # False: the same site with [threepl] off (the comparison)


def sku(i: int) -> str:
    return f"FS-{i:02d}"


def demand(spec: FlashSpec) -> list[list[tuple[str, str, int]]]:
    """Per step, the orders placed in it, each ``(external id, sku, qty)``: Poisson base
    demand on every SKU, and the sale's orders spread evenly over the sale steps on the
    sale SKUs. Seeded by (seed, step): a step's orders do not depend on the others."""
    steps = int(spec.hours * 3600 / STEP_S)
    sale = range(int(spec.sale_from_hour * 4), int((spec.sale_from_hour + spec.sale_hours) * 4))
    out: list[list[tuple[str, str, int]]] = []
    for k in range(steps):
        r = rng(spec.seed, 7919, k)
        n = int(r.poisson(spec.base_per_hour * STEP_S / 3600))
        if k in sale:
            i = k - sale.start
            n_sale = spec.burst // len(sale) + (1 if i < spec.burst % len(sale) else 0)
        else:
            n_sale = 0
        orders = [(f"b{k}-{j}", sku(int(r.integers(spec.skus))), 1) for j in range(n)]
        orders += [(f"s{k}-{j}", sku(int(r.integers(spec.sale_skus))), 1 + int(r.poisson(0.3))) for j in range(n_sale)]
        out.append(orders)
    return out


def site_config(spec: FlashSpec, fake: FakeShipBob) -> str:
    threepl = fake.config(
        backlog_on_hours=spec.backlog_on_hours,
        backlog_off_hours=spec.backlog_on_hours / 2,
        min_pick_rate_per_hour=float(spec.pick_rate),
        inventory_poll_s=STEP_S,  # engine seconds: one poll a step (the demo's 1 s would be 900)
        enabled="true" if spec.threepl else "false",
    )
    return "\n".join(
        [
            "strict_skus = false",
            "[daemon]",
            'clock = "stepped"',
            f'clock_start = "{START}"',
            'log_level = "warning"',
            "[intake]",
            'listen = "127.0.0.1:0"',
            *threepl,
            "",
        ]
    )


class FlashSaleRun:
    """One run in ``workdir``: the fake 3PL, a fresh daemon and journal, the whole sale
    played to it (``run``), with the ``kill -9`` and restart of ``spec.kill_at_hour``."""

    def __init__(self, spec: FlashSpec, workdir: Path) -> None:
        self.spec = spec
        self.workdir = Path(workdir)
        self.seen: dict[str, int] = {}  # routed order id -> the step the driver first saw it at the 3PL
        self.kill: dict[str, Any] = {"at_hour": spec.kill_at_hour, "done": False}

    def run(self) -> dict[str, Any]:
        spec = self.spec
        self.workdir.mkdir(parents=True, exist_ok=True)
        fake = FakeShipBob(self.workdir, [sku(i) for i in range(spec.sale_skus)], auto_ship=False)
        fake.start()
        (self.workdir / "backorder.toml").write_text(site_config(spec, fake))
        daemon = Daemon(self.workdir)
        t0 = time.perf_counter()
        try:
            self._start(daemon, fake)
            steps = self._play(daemon, fake)
            daemon.stop(timeout=60, kill_on_timeout=True)
        finally:
            if daemon.alive():
                daemon.kill9()
            daemon.cleanup()
            fake.stop()
        seconds = time.perf_counter() - t0
        figs = referee(daemon.db, spec)
        with fake.lock:
            creates = Counter(fake.creates)
            shipped = Counter(fake.shipped)
        figs["threepl_creates_max"] = max(creates.values(), default=0)
        figs["threepl_orders"] = len(creates)
        figs["threepl_webhooks_max"] = max(shipped.values(), default=0)
        figs["exactly_once"] = bool(
            figs["exactly_once"] and figs["threepl_creates_max"] <= 1 and figs["threepl_orders"] == figs["routed"]
        )
        return {
            "spec": asdict(spec),
            "steps": steps,
            "seconds": round(seconds, 1),
            "kill": self.kill,
            "daemon_starts": daemon.starts,
            "figures": figs,
        }

    def _start(self, daemon: Daemon, fake: FakeShipBob) -> None:
        daemon.start(timeout=60)
        with daemon.client() as c:
            fake.intake_port = c.call("health")["intake"]["http_port"]

    def _setup(self, c: Client) -> None:
        skus = [sku(i) for i in range(self.spec.skus)]
        c.pipeline([{"op": "sku.configure", "sku": s} for s in skus])
        c.pipeline([{"op": "stock.receive", "sku": s, "qty": SITE_STOCK, "reference": "opening"} for s in skus])
        c.call("clock.advance", seconds=1)  # the first poll of the 3PL's inventory

    def _play(self, daemon: Daemon, fake: FakeShipBob) -> int:
        """Every step: the orders placed in it, the site's picks, the 3PL's shipments due,
        then the advance; until all orders were placed and nothing waits. Returns the steps."""
        spec = self.spec
        per_step = demand(spec)
        start = parse_ts(START)
        picks_per_step = spec.pick_rate * STEP_S / 3600
        credit = 0.0
        with daemon.client(timeout=600) as c:
            self._setup(c)
        k = 0
        while True:
            with daemon.client(timeout=600) as c:
                orders = per_step[k] if k < len(per_step) else []
                self._ok(c.pipeline([self._submit(key, s, q) for key, s, q in orders]), "order.submit")
                credit += picks_per_step
                picking = c.call("shipments.list", status="picking", limit=max(int(credit), 1))["shipments"]
                units = 0
                confirm = []
                for sh in picking:
                    n = sum(it["qty"] for it in sh["items"])
                    if units + n > credit:
                        break
                    units += n
                    confirm.append({"op": "pick.confirm", "shipment_id": sh["shipment_id"]})
                self._ok(c.pipeline(confirm), "pick.confirm")
                credit = min(credit - units, 1.0)  # a step's unused capacity is not kept for later
                at_3pl = c.call("shipments.list", status="at_threepl", limit=10_000)["shipments"]
                for sh in at_3pl:
                    first = self.seen.setdefault(sh["order_id"], k)
                    if (k - first) * STEP_S >= spec.handling_hours * 3600 and sh["order_id"] in fake.orders:
                        fake.ship(sh["order_id"])
            k += 1
            to = iso_ts(start + 1 + k * STEP_S)
            if not self.kill["done"] and spec.kill_at_hour is not None and k * STEP_S >= spec.kill_at_hour * 3600:
                self._kill_during_advance(daemon, fake, to)
            with daemon.client(timeout=600) as c:
                c.call("clock.advance", to=to)
            if k >= len(per_step) and not picking and not at_3pl:
                return k

    def _kill_during_advance(self, daemon: Daemon, fake: FakeShipBob, to: str) -> None:
        """Send the advance from a thread and ``kill -9`` the daemon as soon as the 3PL has
        taken one more order during it (the outbox sends the creates inside the advance), or
        when the advance is answered first; then start it again on the same journal."""
        with fake.lock:
            before = sum(fake.creates.values())
        answered = threading.Event()

        def advance() -> None:
            try:
                with daemon.client(timeout=600) as c:
                    c.call("clock.advance", to=to)
            except (OSError, CallError):
                pass  # killed under it: the driver sends it again after the restart
            answered.set()

        thread = threading.Thread(target=advance, daemon=True)
        thread.start()

        def created() -> bool:
            with fake.lock:
                return answered.is_set() or sum(fake.creates.values()) > before

        wait_until(created, 120, 0.001)
        mid_send = not answered.is_set()
        daemon.kill9()
        thread.join(30)
        with fake.lock:
            at_kill = sum(fake.creates.values())
        self._start(daemon, fake)
        self.kill.update(done=True, engine_time=to, during_sends=mid_send, threepl_creates_at_kill=at_kill)

    @staticmethod
    def _submit(key: str, s: str, qty: int) -> dict:
        return {
            "op": "order.submit",
            "channel": "lab",
            "external_id": key,
            "shipping_address": ADDRESS,
            "lines": [{"sku": s, "qty": qty, "unit_price": "10.00"}],
        }

    @staticmethod
    def _ok(replies: list[dict], what: str) -> None:
        bad = [r["error"] for r in replies if not r["ok"]]
        if bad:
            raise RuntimeError(f"{what} refused: {bad[0]['code']}: {bad[0]['message']}")


def referee(db: Path, spec: FlashSpec) -> dict[str, Any]:
    """The scenario's figures from the journal alone (see the module's docstring)."""
    events, bad = read_journal(db)
    received: dict[str, float] = {}
    routed: dict[str, str] = {}  # order id -> its 3PL shipment
    qty: Counter[tuple[str, int]] = Counter()
    shipped_units: Counter[tuple[str, int]] = Counter()
    ships: Counter[str] = Counter()  # shipment -> shipment_shipped events
    last_ship: dict[str, float] = {}
    for _, e in events:
        if isinstance(e, ev.OrderReceived):
            received[e.order_id] = e.ts
            for n, ln in enumerate(e.order.lines, 1):
                qty[(e.order_id, n)] = ln.qty
        elif isinstance(e, ev.OrderRouted):
            routed[e.order_id] = e.shipment_id
        elif isinstance(e, ev.ShipmentShipped):
            ships[e.shipment_id] += 1
            last_ship[e.order_id] = max(e.ts, last_ship.get(e.order_id, e.ts))
        elif isinstance(e, ev.UnitsShipped):
            shipped_units[(e.order_id, e.line_no)] += e.qty
    complete = {oid for oid in received if all(shipped_units[k] == q for k, q in qty.items() if k[0] == oid)}

    def hours(ids) -> list[float]:
        return [(last_ship[o] - received[o]) / 3600 for o in ids if o in complete and o in last_ship]

    every, at_3pl = hours(received), hours(routed)
    at_site = hours(o for o in received if o not in routed)
    over = [k for k, q in qty.items() if shipped_units[k] > q]
    twice = [s for s, n in ships.items() if n > 1]
    once = [o for o, s in routed.items() if ships[s] == 1 and o in complete]
    p95 = _pct(every, 95)
    return {
        "orders": len(received),
        "orders_unshipped": len(received) - len(complete),
        "order_to_ship_p50_hours": _round(_pct(every, 50)),
        "order_to_ship_p95_hours": _round(p95),
        "order_to_ship_max_hours": _round(max(every, default=None)),
        "site_p95_hours": _round(_pct(at_site, 95)),
        "routed_p95_hours": _round(_pct(at_3pl, 95)),
        "p95_bound_hours": spec.p95_bound_hours,
        "p95_within_bound": p95 is not None and p95 <= spec.p95_bound_hours,
        "routed": len(routed),
        "routed_shipped_exactly_once": len(once),
        "shipments_shipped_twice": len(twice),
        "lines_over_shipped": len(over),
        "exactly_once": bad == 0 and not twice and not over and len(once) == len(routed),
        "journal_bodies_refused": bad,
        "routing_switches": sum(1 for _, e in events if isinstance(e, ev.ThreeplRouting)),
    }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


def run_one(spec: FlashSpec, workdir: Path | None = None) -> dict[str, Any]:
    """One run (in ``workdir``, kept; else in a temporary folder, removed)."""
    if workdir is not None:
        return FlashSaleRun(spec, workdir).run()
    tmp = Path(tempfile.mkdtemp(prefix="bofs"))
    try:
        return FlashSaleRun(spec, tmp).run()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_flash_sale(
    spec: FlashSpec, seeds: list[int], out: Path, *, keep_journals: bool = False, say: Callable[[str], None] = print
) -> dict[str, Any]:
    """Per seed, the sale with the 3PL on (and the kill) and, to compare, off (no kill);
    the result, also written as ``report.json`` and ``report.md`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    runs = []
    for seed in seeds:
        for on in (True, False):
            one = replace(spec, seed=seed, threepl=on, kill_at_hour=spec.kill_at_hour if on else None)
            name = f"threepl-{'on' if on else 'off'}"
            result = run_one(one, out / "runs" / f"{name}-seed{seed}" if keep_journals else None)
            f = result["figures"]
            say(
                f"  seed {seed} {name}: {f['orders']:,} orders in {result['seconds']} s; order -> ship p95 "
                f"{f['order_to_ship_p95_hours']} h (bound {f['p95_bound_hours']} h), routed {f['routed']}, "
                f"exactly once {f['exactly_once']}"
            )
            runs.append({"name": name, "seed": seed, **result})
    report = {"scenario": "flash-sale", "seeds": seeds, "runs": runs}
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "report.md").write_text(markdown(report))
    return report


COLUMNS = (
    "orders",
    "order_to_ship_p50_hours",
    "order_to_ship_p95_hours",
    "order_to_ship_max_hours",
    "p95_within_bound",
    "routed",
    "routed_shipped_exactly_once",
    "threepl_creates_max",
    "exactly_once",
    "orders_unshipped",
)


def markdown(report: dict[str, Any]) -> str:
    """The runs side by side, and what each run's kill hit."""
    rows = []
    for r in report["runs"]:
        k = r["kill"]
        kill = "-"
        if k.get("done"):
            kill = f"{k['engine_time']} ({'while sending to the 3PL' if k['during_sends'] else 'between sends'})"
        rows.append(
            f"| {r['name']} | {r['seed']} | " + " | ".join(str(r["figures"][c]) for c in COLUMNS) + f" | {kill} |"
        )
    s = report["runs"][0]["spec"] if report["runs"] else asdict(FlashSpec())
    return (
        "# Flash sale\n\n"
        f"{s['hours']} h of demand on {s['skus']} SKUs ({s['base_per_hour']:g} orders/h), a sale of {s['burst']} "
        f"orders on {s['sale_skus']} of them over {s['sale_hours']} h; the site picks {s['pick_rate']} units/h; "
        f"the 3PL ships {s['handling_hours']:g} h after it got an order; bound on order -> ship p95: "
        f"{s['p95_bound_hours']:g} h.\n\n"
        "| run | seed | " + " | ".join(COLUMNS) + " | kill -9 |\n"
        "|---|---|" + "---|" * len(COLUMNS) + "---|\n" + "\n".join(rows) + "\n"
    )
