"""The simulated site: per-SKU demand, the orders it arrives in, and the supplier.

Every random draw comes from a numpy generator seeded by (run seed, stream, SKU index)
or (run seed, stream, SKU index, n-th purchase order of that SKU), never by one stream
for the whole run. So every policy sees the same order lines, and a SKU's demand does
not change when another SKU is added; the supplier treats a SKU's n-th purchase order
the same way under every policy (how late, how partial), whatever its quantity (its date
only decides whether a mid-run change of the supplier's pace applies).

Time is in seconds from the scenario's start (day 0 = the first warm-up day).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

DAY = 86400.0
Scenario = Literal["mixed", "control"]
PATTERNS = ("smooth", "seasonal", "trend", "intermittent", "lumpy", "promotion")
# the mixed site's share of SKUs per demand pattern (the control site is all "smooth")
PATTERN_WEIGHTS = (0.30, 0.20, 0.15, 0.15, 0.10, 0.10)

# stream tags: one independent random stream per purpose (numpy SeedSequence entropy)
_SKU, _DEMAND, _ORDERS, _SUPPLIER = 1, 2, 3, 4


def rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(list(key)))


@dataclass(frozen=True, slots=True)
class SkuSpec:
    """What the site knows of a SKU before the run: its pattern, price and supplier."""

    sku: str
    index: int
    pattern: str
    unit_price: float
    lead_time_days: float  # the supplier's quoted lead time (what an ERP types in)
    lead_shift_day: float | None  # from this day on the supplier's lead time is ...
    lead_shift_factor: float  # ... multiplied by this


@dataclass(frozen=True, slots=True)
class DemandLine:
    t: float  # seconds from the scenario start
    sku: str
    qty: int


@dataclass(frozen=True, slots=True)
class SimOrder:
    """One customer order: its lines, flags, and how long the customer waits."""

    key: str  # the order's external id, unique in the run
    t: float
    lines: tuple[DemandLine, ...]
    rush: bool = False
    priority: bool = False
    ship_complete: bool = False
    patience_days: float | None = None  # cancels if not fully allocated by then (None: waits)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One delivery of a purchase order: ``delay`` seconds after the order was raised."""

    delay: float
    fraction: float  # of the ordered quantity (the parts of one order add up to 1)


@dataclass(frozen=True, slots=True)
class ScenarioSpec:
    skus: int = 200
    days: int = 90  # measured days, after the warm-up
    warmup_days: int = 28
    seed: int = 1
    scenario: Scenario = "mixed"
    step_hours: float = 6.0  # the driver's clock step

    @property
    def total_days(self) -> int:
        return self.warmup_days + self.days


def sku_name(index: int) -> str:
    return f"LAB-{index:05d}"


def sku_spec(spec: ScenarioSpec, index: int) -> SkuSpec:
    r = rng(spec.seed, _SKU, index)
    control = spec.scenario == "control"
    pattern = "smooth" if control else PATTERNS[int(r.choice(len(PATTERNS), p=PATTERN_WEIGHTS))]
    price = round(float(np.exp(r.uniform(np.log(2.0), np.log(200.0)))), 2)
    lead = float(r.choice([3, 5, 7, 10, 14, 21]))
    shift_day: float | None = None
    factor = 1.0
    if not control and r.random() < 0.3:  # a third of the suppliers change pace mid-run
        shift_day = spec.warmup_days + spec.days * float(r.uniform(0.3, 0.7))
        factor = float(r.choice([0.6, 1.5, 2.0]))
    return SkuSpec(sku_name(index), index, pattern, price, lead, shift_day, factor)


def sku_specs(spec: ScenarioSpec) -> list[SkuSpec]:
    return [sku_spec(spec, i) for i in range(spec.skus)]


def _day_rates(s: SkuSpec, r: np.random.Generator, days: int) -> tuple[np.ndarray, str]:
    """Expected order lines per day, and the kind of line quantities."""
    base = float(np.exp(r.normal(np.log(1.0), 0.6)))  # lines/day, a long tail of fast movers
    d = np.arange(days, dtype=float)
    rate = np.full(days, base)
    kind = "retail"
    if s.pattern == "seasonal":
        weekly = 1 + float(r.uniform(0.2, 0.5)) * np.sin(2 * math.pi * (d + float(r.uniform(0, 7))) / 7)
        yearly = 1 + float(r.uniform(0.3, 0.6)) * np.sin(2 * math.pi * (d + float(r.uniform(0, 365))) / 365)
        rate = base * weekly * yearly
    elif s.pattern == "trend":
        rate = base * np.clip(1 + float(r.uniform(-0.6, 1.2)) * d / 365, 0.2, None)
    elif s.pattern == "intermittent":
        rate = np.full(days, float(r.uniform(0.08, 0.3)))
    elif s.pattern == "lumpy":
        rate = np.full(days, float(r.uniform(0.04, 0.12)))
        kind = "b2b"
    elif s.pattern == "promotion":
        for _ in range(int(r.integers(1, 4))):
            start = int(r.integers(0, max(1, days - 7)))
            rate[start : start + int(r.integers(3, 8))] *= float(r.uniform(3, 6))
    return rate, kind


def demand(spec: ScenarioSpec, s: SkuSpec) -> list[DemandLine]:
    """The SKU's order lines over the whole run (warm-up included), in time order."""
    r = rng(spec.seed, _DEMAND, s.index)
    rate, kind = _day_rates(s, r, spec.total_days)
    counts = r.poisson(rate)
    out: list[DemandLine] = []
    for day, n in enumerate(counts.tolist()):
        if not n:
            continue
        # business hours, to the minute
        minutes = np.sort(r.integers(8 * 60, 20 * 60, size=n))
        if kind == "b2b":
            qtys = r.integers(10, 51, size=n)
        elif s.pattern == "intermittent":
            qtys = 1 + r.poisson(1.5, size=n)
        else:
            qtys = 1 + r.poisson(0.8, size=n)
        for m, q in zip(minutes.tolist(), qtys.tolist(), strict=True):
            out.append(DemandLine(day * DAY + m * 60.0, s.sku, int(q)))
    return out


def orders(spec: ScenarioSpec, specs: list[SkuSpec]) -> list[SimOrder]:
    """Every SKU's lines grouped into customer orders, day by day, in time order.

    The grouping draws from a stream per day: which lines share an order (and the
    orders' flags) may change when SKUs are added, the lines themselves do not.
    """
    by_day: dict[int, list[DemandLine]] = {}
    for s in specs:
        for line in demand(spec, s):
            by_day.setdefault(int(line.t // DAY), []).append(line)
    out: list[SimOrder] = []
    for day in sorted(by_day):
        lines = sorted(by_day[day], key=lambda li: (li.t, li.sku))
        r = rng(spec.seed, _ORDERS, day)
        i = 0
        while i < len(lines):
            size = int(r.choice([1, 2, 3, 4], p=[0.6, 0.2, 0.12, 0.08]))
            group = tuple(lines[i : i + size])
            i += size
            flags = r.random(4)
            patience = float(r.uniform(2, 14)) if flags[3] < 0.35 else None
            out.append(
                SimOrder(
                    key=f"d{day}-{len(out)}",
                    t=group[0].t,
                    lines=group,
                    rush=bool(flags[0] < 0.05),
                    priority=bool(flags[1] < 0.05),
                    ship_complete=bool(flags[2] < 0.10),
                    patience_days=patience,
                )
            )
    return out


def deliveries(spec: ScenarioSpec, s: SkuSpec, nth: int, raised_at: float) -> list[Delivery]:
    """How the supplier answers the SKU's ``nth`` purchase order (0-based), raised at
    ``raised_at``: lead times vary around the quoted one (and shift mid-run for some
    suppliers); some deliveries are late, some come in two parts."""
    r = rng(spec.seed, _SUPPLIER, s.index, nth)
    control = spec.scenario == "control"
    lead = s.lead_time_days
    if s.lead_shift_day is not None and raised_at >= s.lead_shift_day * DAY:
        lead *= s.lead_shift_factor
    draws = r.random(2)
    noise = float(r.lognormal(0.0, 0.05 if control else 0.25))
    late = float(r.uniform(2, 10))
    split = float(r.uniform(0.4, 0.8))
    rest_after = float(r.uniform(3, 10))
    days = lead * noise
    if not control and draws[0] < 0.10:
        days += late
    if not control and draws[1] < 0.15:
        return [Delivery(days * DAY, split), Delivery((days + rest_after) * DAY, 1.0 - split)]
    return [Delivery(days * DAY, 1.0)]


@dataclass(slots=True)
class Site:
    """A whole scenario, generated once and shared by every policy's run."""

    spec: ScenarioSpec
    skus: list[SkuSpec] = field(default_factory=list)
    orders: list[SimOrder] = field(default_factory=list)

    @classmethod
    def generate(cls, spec: ScenarioSpec) -> Site:
        specs = sku_specs(spec)
        return cls(spec, specs, orders(spec, specs))

    def warmup_daily_demand(self) -> dict[str, float]:
        """Mean units per day of each SKU over the warm-up: the history an ERP sets its
        static reorder points from."""
        units = {s.sku: 0 for s in self.skus}
        end = self.spec.warmup_days * DAY
        for o in self.orders:
            if o.t >= end:
                break
            for line in o.lines:
                units[line.sku] += line.qty
        return {sku: u / max(1, self.spec.warmup_days) for sku, u in units.items()}

    def line_count(self) -> int:
        return sum(len(o.lines) for o in self.orders)
