"""``backorder demo --scenario NAME``: short stories the demo site plays, each explained in
one line (the console's title bar, the plain output, README).

A scenario is told the simulated time on every driver step and acts at known moments,
counted from the demo's opening (20:00 simulated, after the history): one real second is
one simulated hour at the default speed, so "+14 h" comes 14 s into the demo.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from backorder.demo import Driver, Item

SLIP_SUPPLIER = "ACME"  # as procurement.list names the source
SLIP_AT_H = 14  # hours after the opening: 10:00 the next morning
SLIP_DAYS = 3
SALE_FROM_H, SALE_TO_H = 12, 20  # 08:00 to 16:00 the next day
SALE_SKUS = 3  # the hottest SKUs go on sale
SALE_FACTOR = 4  # orders per tick during the sale
SALE_PICKS = 6  # shipments the site's pickers confirm per tick in the flash-sale story: the sale outruns them


@dataclass
class Scenario:
    """The default story: nothing scripted (``normal-week``)."""

    name: str
    line: str
    opened: dt.datetime | None = None
    log: list[str] = field(default_factory=list)  # what the story did, for the summary

    def hours(self, now: dt.datetime) -> float:
        if self.opened is None:
            self.opened = now
        return (now - self.opened).total_seconds() / 3600

    def step(self, driver: Driver, now: dt.datetime) -> None:
        self.hours(now)

    def orders_factor(self) -> int:
        return 1

    def pick_capacity(self) -> int | None:
        """Shipments the pickers confirm per tick (None: every one waiting)."""
        return None


def sale_skus(items: list[Item]) -> list[str]:
    """The SKUs the flash sale is on: the hottest ``SALE_SKUS`` of the catalog."""
    return [it.sku for it in sorted(items, key=lambda it: -it.weight)[:SALE_SKUS]]


@dataclass
class SupplierSlip(Scenario):
    """ACME calls at 10:00: every open purchase order of theirs comes three days later.
    Customers already told a date get a ``delay`` notice (a move later than
    ``[promises] tolerance_days``)."""

    slipped: int = 0
    done: bool = False

    def step(self, driver: Driver, now: dt.datetime) -> None:
        if self.done or self.hours(now) < SLIP_AT_H:
            return
        self.done = True
        open_ = driver.c.call("procurement.list", status="open", limit=10000)["requests"]
        self.waiting_customer(driver, [r for r in open_ if r["source"] == SLIP_SUPPLIER])
        reqs = [
            {
                "op": "procurement.confirm",
                "request_id": r["request_id"],
                "expected_date": (dt.date.fromisoformat(r["expected_date"]) + dt.timedelta(days=SLIP_DAYS)).isoformat(),
            }
            for r in open_
            if r["source"] == SLIP_SUPPLIER
        ]
        if reqs:
            self.slipped = sum(1 for x in driver._check(driver.c.pipeline(reqs)) if x["ok"])
        self.log.append(f"slip_at={now:%Y-%m-%dT%H:%MZ} slipped_requests={self.slipped}")

    @staticmethod
    def waiting_customer(driver: Driver, acme: list[dict]) -> None:
        """Just before the call, an EDI customer (routed to the file channel) orders one more unit than is on the
        shelf of the ACME SKU whose open supply has the most units nobody waits for yet: a
        site that fills well may have no customer waiting on ACME at 10:00, and the story is
        about the one who is (their line waits for that supply, so the slip moves it)."""
        best, spare_best = None, 0
        for r in acme:
            sku = driver.c.call("sku.get", sku=r["sku"])
            spare = sku["inbound"] - sku["backordered"]
            if spare > spare_best:
                best, spare_best = sku, spare
        if best is None:
            return
        price = next(it.price for it in driver.items if it.sku == best["sku"])
        order = driver._order()
        order.update(channel="x12_850", account="BIGBOX", external_id="EDI850-BEFORE-THE-SLIP", ship_complete=False)
        order["lines"] = [{"sku": best["sku"], "qty": max(best["available"], 0) + 1, "unit_price": price}]
        driver.submit_prepared([order])


@dataclass
class FlashSale(Scenario):
    """08:00 to 16:00: the three hottest SKUs on sale, four times the orders, mostly for them.
    The site's pickers confirm at most ``SALE_PICKS`` shipments a tick, so the pick backlog
    grows and the daemon routes new orders the 3PL's stock covers to the demo's 3PL
    (``demo_threepl``), which ships them by its signed webhook."""

    on: bool = False
    saved: list[float] | None = None

    def step(self, driver: Driver, now: dt.datetime) -> None:
        h = self.hours(now)
        feeds = driver.feeds
        if feeds is None:
            return
        if not self.on and SALE_FROM_H <= h < SALE_TO_H:
            self.on, self.saved = True, list(feeds.weights)
            hot = sorted(range(len(feeds.weights)), key=lambda i: -feeds.weights[i])[:SALE_SKUS]
            boost = sum(feeds.weights) * 2 / max(1, len(hot))  # the sale SKUs take ~2/3 of demand
            feeds.weights = [w + (boost if i in hot else 0.0) for i, w in enumerate(feeds.weights)]
            self.log.append(f"sale_from={now:%Y-%m-%dT%H:%MZ} skus={','.join(driver.items[i].sku for i in hot)}")
        elif self.on and h >= SALE_TO_H:
            self.on = False
            if self.saved is not None:
                feeds.weights = self.saved
            self.log.append(f"sale_to={now:%Y-%m-%dT%H:%MZ}")

    def orders_factor(self) -> int:
        return SALE_FACTOR if self.on else 1

    def pick_capacity(self) -> int | None:
        return SALE_PICKS


SCENARIOS = {
    "normal-week": lambda: Scenario(
        "normal-week",
        "a normal week: orders from five channels, the planner in auto on 10 days of history",
    ),
    "supplier-slip": lambda: SupplierSlip(
        "supplier-slip",
        f"supplier slip: at 10:00 tomorrow ACME moves every open PO {SLIP_DAYS} days later; waiting customers are told",
    ),
    "flash-sale": lambda: FlashSale(
        "flash-sale",
        f"flash sale 08:00-16:00 tomorrow: {SALE_SKUS} hottest SKUs, {SALE_FACTOR}x the orders; the 3PL takes the overflow",
    ),
}
DEFAULT = "normal-week"


def make(name: str) -> Scenario:
    return SCENARIOS[name]()
