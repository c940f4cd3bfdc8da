"""The planner's policy arithmetic, written by hand and pure (no numpy, no I/O): the
demand classification, the lead-time demand and its spread, the fill-rate safety
stock, the cap on one run's change, MOQ and pack rounding. The forecasts and the
normal loss function come from statsforecast and scipy, in the worker
(``backorder.planner.worker``); these functions take their results as numbers.

References: Syntetos, Boylan & Croston (2005) for the ADI / CV² cut-offs; Silver, Pyke &
Thomas, *Inventory and Production Management in Supply Chains* (4th ed.), ch. 6, for the
fill-rate safety factor (G(k) = (1 - fill rate) · Q / σ) and the variance of demand over
a random lead time (σ² = E[L]·σe² + μ²·σL²); the undershoot of a reorder point by demand
in transactions of size Z has mean E[Z²] / (2·E[Z]) and second moment E[Z³] / (3·E[Z])
(renewal theory: the stationary excess, same chapter; Hadley & Whitin, *Analysis of
Inventory Systems*, 1963, ch. 4). Service levels set across SKUs (``site_fill_targets``):
the same book, ch. 7 (multi-item, service-constrained models and exchange curves).
The shape of the protection window's demand: normal by default (``NORMAL``), or a table
the worker computes from a skewed distribution of the same mean and spread (``Tail``; the
gamma: Burgin, "The gamma distribution and inventory control", Operational Research
Quarterly 26, 1975; Tyworth & O'Neill, "Robustness of the normal approximation of
lead-time demand in a distribution setting", Naval Research Logistics 44, 1997).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

# Syntetos-Boylan: average inter-demand interval and squared coefficient of variation of
# the non-zero demand sizes.
ADI_CUT = 1.32
CV2_CUT = 0.49
# A SKU's own lead times are smoothed, the newest weighing most: a supplier that slows
# down (or speeds up) is planned with its new pace after a few receipts, not after the
# whole window of them has turned over.
LEAD_ALPHA = 0.2

DemandClass = Literal["smooth", "erratic", "intermittent", "lumpy"]

# Hampel's identifier (Hampel 1974; Pearson 2002, the "three-sigma edit rule"): a value
# more than three scaled MADs above the median is an outlier; 1.4826 makes the MAD
# estimate σ at the normal.
HAMPEL_T = 3.0
MAD_SCALE = 1.4826


def adi_cv2(daily: Sequence[float]) -> tuple[float, float] | None:
    """(ADI, CV²) of a daily series, or None when it has no demand at all. ADI is the
    number of periods per period with demand; CV² is that of the non-zero sizes."""
    sizes = [x for x in daily if x > 0]
    if not sizes:
        return None
    adi = len(daily) / len(sizes)
    mean = sum(sizes) / len(sizes)
    var = sum((x - mean) ** 2 for x in sizes) / len(sizes)
    return adi, var / (mean * mean)


def demand_class(adi: float, cv2: float) -> DemandClass:
    """The Syntetos-Boylan quadrant (a value on a cut-off counts as the higher side)."""
    if adi < ADI_CUT:
        return "smooth" if cv2 < CV2_CUT else "erratic"
    return "intermittent" if cv2 < CV2_CUT else "lumpy"


def spike_bound(sizes: Sequence[float]) -> float | None:
    """The most a day with demand may count for the forecast: the median day size plus
    ``HAMPEL_T`` scaled MADs of the day sizes, the scale at least the Poisson sqrt(median)
    (days of independent customers' lines vary at least that much; with half the days
    the same size the MAD is 0). None with fewer than three days with demand.

    Over the days *with demand* of the whole window, not a rolling one: a promotion of a
    week is a minority of a SKU's demand days whether its demand comes daily or once a
    week, so the median and MAD are the SKU's ordinary days even while the spike is on.
    Only the sizes are bounded: how often a SKU sells (an intermittent series' zeros) is
    left as it is."""
    positive = sorted(x for x in sizes if x > 0)
    if len(positive) < 3:
        return None
    median = _median(positive)
    mad = _median(sorted(abs(x - median) for x in positive))
    scale = max(MAD_SCALE * mad, math.sqrt(median))
    return median + HAMPEL_T * scale


def _median(ordered: Sequence[float]) -> float:
    n = len(ordered)
    return ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2


def window_demand(forecast: Sequence[float], days: float) -> float:
    """Forecast demand over the next ``days`` days (a fraction of the last day counts
    pro rata; beyond the forecast's horizon its last day repeats)."""
    if days <= 0 or not forecast:
        return 0.0
    total = 0.0
    whole = int(days)
    for i in range(whole):
        total += forecast[min(i, len(forecast) - 1)]
    frac = days - whole
    if frac:
        total += frac * forecast[min(whole, len(forecast) - 1)]
    return total


def error_floor(daily_mean: float) -> float:
    """The least daily forecast error to plan with: that of Poisson demand of the same
    mean (sqrt of it). Counts of independent customers' orders vary at least that much;
    a model that fits the past more tightly (a short, regular history) has overfit it,
    and a safety stock of zero would follow."""
    return math.sqrt(max(daily_mean, 0.0))


def lead_time_demand_sd(lead_mean: float, error_var: float, daily_mean: float, lead_var: float) -> float:
    """Standard deviation of demand over a random lead time: sqrt(E[L]·σe² + μ²·σL²),
    with σe² the daily forecast error variance and μ the daily mean forecast."""
    return math.sqrt(max(lead_mean, 0.0) * max(error_var, 0.0) + daily_mean * daily_mean * max(lead_var, 0.0))


def undershoot(sizes: Sequence[float]) -> tuple[float, float]:
    """(mean, variance) of the amount by which demand in transactions of sizes Z carries
    the position below the reorder point when it triggers: E[U] = E[Z²] / (2·E[Z]),
    E[U²] = E[Z³] / (3·E[Z]) (the stationary excess of a renewal process; for a constant
    size z, U is uniform on [0, z]: z/2 and z²/12). An order is raised at the reorder
    point minus U, so U's mean adds to the reorder point and its variance to that of the
    demand the safety stock covers. (0, 0) without any sizes."""
    positive = [z for z in sizes if z > 0]
    if not positive:
        return 0.0, 0.0
    total = sum(positive)
    mean = sum(z * z for z in positive) / (2.0 * total)
    second = sum(z**3 for z in positive) / (3.0 * total)
    return mean, max(second - mean * mean, 0.0)


def lead_time(
    own: Sequence[float], quoted: float, ratios: Sequence[float], min_samples: int
) -> tuple[float, float, str]:
    """(mean, variance, basis) of the lead time to plan a SKU with.

    A lead time belongs to an item at a supplier, not to the supplier: one vendor ships a
    stocked part in 3 days and makes another to order in 21, so pooling their receipts
    would plan the first with the second's lead time and both with the spread between
    them. The SKU's own receipts are used once it has ``min_samples`` (unbiased variance,
    n - 1). Before that the quoted lead time is scaled by the supplier's record across its
    SKUs, as ratios of actual to quoted (dimensionless, so they pool): mean quoted·E[r],
    variance quoted²·Var[r]. Without either, the quoted value with no variance."""
    if len(own) >= max(min_samples, 2):
        return *recent_mean_var(own, LEAD_ALPHA), "own"
    if len(ratios) >= max(min_samples, 2):
        mean, var = mean_var(ratios)
        return quoted * mean, quoted * quoted * var, "source"
    return quoted, 0.0, "quoted"


def round_to_pack(qty: float, moq: int, pack: int) -> int:
    """An order quantity: at least ``moq``, a whole number of packs, never less than asked."""
    units = max(math.ceil(qty - 1e-9), moq, 1)
    return math.ceil(units / pack) * pack


def capped(old: int, new: int, max_change: float, min_step: int = 1) -> int:
    """``new``, moved no further from ``old`` than ``max_change`` of the larger of the two
    (at least ``min_step``): a run can halve or grow a level step by step, never jump it
    on one odd day, and a level of 0 can still leave 0."""
    limit = max(math.ceil(max_change * max(old, new)), min_step)
    return max(old - limit, min(old + limit, new))


def trigg_signal(errors: Sequence[float], alpha: float = 0.1) -> float:
    """Trigg's smoothed tracking signal in [-1, 1]: the exponentially smoothed error over
    the smoothed absolute error (0 without errors). Near ±1 the forecast errs on one side
    period after period: it is biased, not just noisy."""
    smoothed = mad = 0.0
    for e in errors:
        smoothed = alpha * e + (1 - alpha) * smoothed
        mad = alpha * abs(e) + (1 - alpha) * mad
    return smoothed / mad if mad > 0 else 0.0


def mean_var(samples: Sequence[float]) -> tuple[float, float]:
    """Mean and unbiased (n - 1) variance of two or more samples."""
    mean = sum(samples) / len(samples)
    return mean, sum((x - mean) ** 2 for x in samples) / (len(samples) - 1)


def recent_mean_var(samples: Sequence[float], alpha: float) -> tuple[float, float]:
    """Mean and variance of two or more samples (oldest first), the newest weighing most:
    weights (1 - alpha)^age, exponential smoothing's (Silver, Pyke & Thomas ch. 4 for the
    mean), the variance unbiased for such weights (Σw(x - m)² / (V1 - V2/V1), V1 = Σw,
    V2 = Σw²). alpha 0: ``mean_var``."""
    n = len(samples)
    weights = [(1.0 - alpha) ** (n - 1 - i) for i in range(n)]
    v1 = math.fsum(weights)
    v2 = math.fsum(w * w for w in weights)
    mean = math.fsum(w * x for w, x in zip(weights, samples, strict=True)) / v1
    spread = math.fsum(w * (x - mean) ** 2 for w, x in zip(weights, samples, strict=True))
    return mean, spread / (v1 - v2 / v1)


def levels(
    *,
    lead_time_demand: float,
    safety_stock: float,
    undershoot_units: float,
    cycle_demand: float,
    moq: int,
    pack: int,
) -> tuple[int, int, int]:
    """(reorder point, order-up-to, safety stock) in whole units: the reorder point covers
    the protection window's demand, the safety stock and the undershoot; order-up-to adds
    one order quantity (a cycle's demand, at least the MOQ, in whole packs)."""
    ss = max(math.ceil(safety_stock - 1e-9), 0)
    rop = max(math.ceil(lead_time_demand + ss + undershoot_units - 1e-9), ss)
    q = round_to_pack(max(cycle_demand, 1.0), moq, pack)
    return rop, rop + q, ss


# --- service levels set across SKUs ------------------------------------------------------

_UNIT = NormalDist()
K_MIN, K_MAX = -4.0, 6.0  # the safety factors planned with
K_STEP = 0.025
K_GRID = tuple(K_MIN + i * K_STEP for i in range(round((K_MAX - K_MIN) / K_STEP) + 1))


def normal_loss(k: float) -> float:
    """The unit normal loss G(k) = φ(k) - k·(1 - Φ(k)), expected shortfall of a standard
    normal beyond k (strictly decreasing, convex)."""
    return _UNIT.pdf(k) - k * (1.0 - _UNIT.cdf(k))


class Tail:
    """The protection window's demand D in units of its spread, for a reorder point
    m + k·σ (m, σ: D's mean and standard deviation): ``loss(k)`` = E[(D - m - kσ)⁺] / σ,
    the expected shortfall per unit of σ (G(k) for the normal), and ``exceed(k)`` =
    P(D > m + kσ), its slope (1 - Φ(k) for the normal). This base class is the normal;
    ``Tabulated`` holds another distribution's values on ``K_GRID``."""

    name = "normal"

    def loss(self, k: float) -> float:
        return normal_loss(k)

    def exceed(self, k: float) -> float:
        return 1.0 - _UNIT.cdf(k)

    def factor_exceeding(self, p: float) -> float:
        """The k with ``exceed(k)`` = p, for 0 < p < 1."""
        return -_UNIT.inv_cdf(p)  # not inv_cdf(1 - p): 1 - p rounds to 1 for a tiny p


NORMAL = Tail()


class Tabulated(Tail):
    """A skewed demand's ``loss`` and ``exceed`` on ``K_GRID``, computed by the worker
    (scipy) and interpolated linearly here; beyond the grid, its end values. ``exceed``
    must be non-increasing and ``loss`` decreasing, as they are for any distribution."""

    def __init__(self, name: str, loss: Sequence[float], exceed: Sequence[float]) -> None:
        if len(loss) != len(K_GRID) or len(exceed) != len(K_GRID):
            raise ValueError("a tail is tabulated on K_GRID")
        self.name = name
        self._loss = list(loss)
        self._exceed = list(exceed)
        self._rising = [-x for x in self._exceed]  # ascending, for bisect

    @staticmethod
    def _at(values: list[float], k: float) -> float:
        x = (min(max(k, K_MIN), K_MAX) - K_MIN) / K_STEP
        i = min(int(x), len(values) - 2)
        return values[i] + (x - i) * (values[i + 1] - values[i])

    def loss(self, k: float) -> float:
        return self._at(self._loss, k)

    def exceed(self, k: float) -> float:
        return self._at(self._exceed, k)

    def factor_exceeding(self, p: float) -> float:
        rising = self._rising
        i = bisect.bisect_left(rising, -p)
        if i <= 0:
            return K_MIN
        if i >= len(rising):
            return K_MAX
        lo, hi = rising[i - 1], rising[i]
        return K_GRID[i - 1] + (K_STEP * (-p - lo) / (hi - lo) if hi > lo else 0.0)


def expected_fill(k: float, sd: float, order_qty: float, tail: Tail = NORMAL) -> float:
    """Expected unit fill rate of a reorder point with safety factor ``k``: 1 - σ·G(k)/Q,
    within [0, 1] (G: the tail's loss; never less for a larger k)."""
    if sd <= 0 or order_qty <= 0:
        return 1.0
    return min(1.0, max(0.0, 1.0 - sd * tail.loss(k) / order_qty))


def factor_for_fill(fill_rate: float, sd: float, order_qty: float, tail: Tail = NORMAL) -> float:
    """The least k in [0, K_MAX] whose expected fill reaches ``fill_rate`` (bisection on
    the monotone G; K_MAX when even that falls short). k stops at 0: the reorder point
    never goes below the protection window's demand (``levels`` keeps safety stock >= 0)."""
    if expected_fill(0.0, sd, order_qty, tail) >= fill_rate:
        return 0.0
    if expected_fill(K_MAX, sd, order_qty, tail) < fill_rate:
        return K_MAX
    lo, hi = 0.0, K_MAX
    for _ in range(60):
        mid = (lo + hi) / 2
        if expected_fill(mid, sd, order_qty, tail) >= fill_rate:
            hi = mid
        else:
            lo = mid
    return hi


@dataclass(frozen=True, slots=True)
class Curve:
    """One SKU's fill-against-stock curve for the site allocation: expected fill
    1 - σ·G(k)/Q for safety stock k·σ (G: ``tail``'s loss). ``demand``: its expected daily demand (the weight
    of its fill in the site's unit fill rate). ``fixed``: a target of its own (set by a
    person): it keeps it and counts towards the site with it. ``weight``: what a unit
    short on this SKU costs against the others' (the worker: the wait of a short unit,
    its protection window in days); it tilts where the stock goes, not the site fill
    counted."""

    demand: float
    sd: float
    order_qty: float
    fixed: float | None = None
    tail: Tail = NORMAL
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class SiteAllocation:
    """Per SKU the chosen fill target (in the order given) and the safety factor behind it,
    the demand-weighted expected site fill they give, whether the site target is met,
    and the marginal fill per unit of safety stock they were chosen at (``marginal``:
    one number for every SKU not at a bound; pass it back to plan a subset of the SKUs
    alike)."""

    targets: list[float]
    factors: list[float]
    site_fill: float
    feasible: bool
    marginal: float


def _bounds(c: Curve, floor: float, cap: float) -> tuple[float, float]:
    """The safety factors a SKU's target may take: its own target's alone, or from the
    floor's to the cap's."""
    if c.fixed is not None:
        k = factor_for_fill(c.fixed, c.sd, c.order_qty, c.tail)
        return k, k
    lo = factor_for_fill(floor, c.sd, c.order_qty, c.tail)
    return lo, max(factor_for_fill(cap, c.sd, c.order_qty, c.tail), lo)


def _factor_at(c: Curve, marginal: float, k_lo: float, k_hi: float) -> float:
    """The k where one more unit of this SKU's safety stock adds ``marginal`` of
    weighted fill: w·d·P(D > m + kσ)/Q = marginal (the derivative of w·d·(1 - σ·G(k)/Q)
    by the safety stock k·σ; 1 - Φ(k) for the normal), within [k_lo, k_hi]."""
    if k_lo == k_hi or c.demand <= 0 or c.sd <= 0 or c.weight <= 0:
        return k_lo
    p = marginal * c.order_qty / (c.demand * c.weight)
    if p >= 1.0:
        return k_lo
    if p <= 0.0:
        return k_hi
    return min(max(c.tail.factor_exceeding(p), k_lo), k_hi)


def site_fill_targets(curves: Sequence[Curve], target: float, floor: float, cap: float) -> SiteAllocation:
    """Fill targets per SKU whose demand-weighted expected fill meets the site's ``target``
    at the least total safety stock (units), each within [``floor``, ``cap``].

    The site's unit fill rate is Σ dᵢ·fᵢ / Σ dᵢ; SKU i's fill at safety stock sᵢ = kᵢ·σᵢ is
    1 - σᵢ·G(kᵢ)/Qᵢ, concave in sᵢ, with slope Pᵢ(kᵢ)/Qᵢ (Pᵢ: the chance its demand
    passes the reorder point, 1 - Φ(kᵢ) for the normal). Minimising Σ sᵢ subject to the
    site's fill is then solved by equal marginals (Lagrange; the continuous form of the
    greedy "next unit where it adds most fill", Silver, Pyke & Thomas ch. 7):
    dᵢ·Pᵢ(kᵢ)/Qᵢ = λ for every SKU not at a bound. With ``weight``s wᵢ the marginals
    equalised are wᵢ·dᵢ·Pᵢ(kᵢ)/Qᵢ (the least weighted shortfall Σ wᵢ·dᵢ·(1 - fᵢ) for
    the stock; wᵢ a short unit's wait: expected backorders, Sherbrooke's METRIC), still
    stopping where the site's unweighted fill meets ``target``. The common λ is found by
    bisection on its logarithm, which is deterministic and has no ties to break: the
    result depends on the curves, not on their order. A SKU whose σ is large against its
    order quantity (lumpy, promoted) gets a lower target than a smooth one, where a point
    of fill costs less stock.

    Infeasible (every SKU at its cap still short of the target): every SKU at its cap,
    ``feasible`` False. SKUs with a ``fixed`` target keep it and count with it."""
    bounds = [_bounds(c, floor, cap) for c in curves]
    # fsum: exactly rounded, so the result does not depend on the order of the SKUs
    total = math.fsum(c.demand for c in curves if c.demand > 0)

    def at(marginal: float) -> tuple[list[float], float]:
        ks = [_factor_at(c, marginal, lo, hi) for c, (lo, hi) in zip(curves, bounds, strict=True)]
        if total <= 0:
            return ks, 1.0
        fill = math.fsum(
            c.demand * expected_fill(k, c.sd, c.order_qty, c.tail)
            for c, k in zip(curves, ks, strict=True)
            if c.demand > 0
        )
        return ks, fill / total

    # A smaller marginal buys more stock; the bracket's ends put every SKU at its cap
    # (1 - e^-70·Q/d rounds to 1) and at its floor (e^30·Q/d > 1) for any real Q and d.
    lo, hi = -70.0, 30.0
    ks, fill = at(math.exp(lo))
    if fill < target:
        marginal = math.exp(lo)
    else:
        for _ in range(60):
            mid = (lo + hi) / 2
            if at(math.exp(mid))[1] >= target:
                lo = mid
            else:
                hi = mid
        marginal = math.exp(lo)
        ks, fill = at(marginal)
    targets = [expected_fill(k, c.sd, c.order_qty, c.tail) for c, k in zip(curves, ks, strict=True)]
    return SiteAllocation(targets=targets, factors=ks, site_fill=fill, feasible=fill >= target, marginal=marginal)


def fill_targets_at(curves: Sequence[Curve], marginal: float, floor: float, cap: float) -> list[float]:
    """The expected fills ``site_fill_targets`` gives these SKUs at a known ``marginal``
    (a run over some SKUs only, planned at the last whole run's marginal)."""
    return [expected_fill(_factor_at(c, marginal, *_bounds(c, floor, cap)), c.sd, c.order_qty, c.tail) for c in curves]
