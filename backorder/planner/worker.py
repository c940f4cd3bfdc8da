"""The planner worker: a process of its own (``python -m backorder.planner.worker``),
started and supervised by the daemon (``backorder.daemon.planner``), so that numpy,
scipy and statsforecast never load into the daemon and a forecast never runs on the
trio loop.

It reads run requests (``wire.RunRequest``) on stdin, one JSON line each, and answers
each with one line on stdout. Demand, receipts and purchase-order lead times come from
the journal file, opened read only and read incrementally (only events after the last
seq it has read, up to the seq the daemon names), so a daily run reads one day of events.

Models per Syntetos-Boylan class, chosen by their cost on the 2-core test machine (one
series of 365 daily points, h = 30): smooth and erratic demand -
SeasonalExponentialSmoothingOptimized(season_length=7) (0.1 ms; AutoETS with a weekly
season takes 65 ms, which would make 2,000 SKUs cost two minutes); intermittent -
CrostonSBA (0.04 ms); lumpy - ADIDA, Croston on temporally aggregated buckets (0.07 ms
without fitted values, 1.2 ms with). The error spread is that of the in-sample one-step
residuals (``fitted=True``).
"""

from __future__ import annotations

import math
import os
import sqlite3
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace

import msgspec
import numpy as np
from scipy.stats import gamma
from statsforecast.models import ADIDA, CrostonSBA, SeasonalExponentialSmoothingOptimized

from backorder.planner import policy, wire

DAY = 86400.0
HORIZON = 30  # days of forecast shown and journaled in summary
ERROR_DAYS = 90  # residuals the error spread is measured on
LEAD_SAMPLES = 20  # a SKU's most recent lead times planned with (a supplier's pace changes)
# Trigg's signal (alpha 0.1) beyond this: biased. Measured on bench/planner.py's stationary
# history (200 SKUs): 3 flagged at 0.6; a 28-day cumulative error over MAD beyond 4 had
# flagged 1,131 of 2,000 (its spread grows with the window: sd ~ sqrt(28)/0.8 ~ 6.6).
TRACKING_LIMIT = 0.6
GIANT_SHARE = 0.5  # one day with more than this share of the window's demand ...
GIANT_RATIO = 5.0  # ... and this many times the median day with demand is clipped
SERVICE_CAP = 0.999  # the highest fill target sku.configure takes
NICE = 10  # the worker's scheduling priority below the daemon's

_K = np.array(policy.K_GRID)


def gamma_tail(mean: float, sd: float) -> policy.Tail:
    """The shape of the protection window's demand as a gamma of its mean and spread,
    tabulated for the policy arithmetic (``policy.Tabulated``); the normal without a
    positive mean and spread.

    Why not the normal: that demand is a sum of customers' lines over a lead time that
    itself varies (late deliveries come days late, never days early), so it is skewed to
    the right, and a normal of the same mean and spread puts too little of it beyond a
    reorder point. Measured on the lab's supplier behaviour (bench/shortage_shape.py): at
    k = 1.5 the normal's expected shortfall was 0.31-0.58 of the simulated one, the
    gamma's 0.71-1.19 (with the control site's steadier suppliers 0.40-0.82 and 1.09-1.28:
    the gamma errs on the side of stock). Burgin 1975; Tyworth & O'Neill 1997. The gamma:
    E[(D - R)⁺] = m·P(D' > R) - R·P(D > R) with D' of shape a + 1 (a = (m/σ)², scale σ²/m)."""
    if mean <= 0 or sd <= 0:
        return policy.NORMAL
    a, scale = (mean / sd) ** 2, sd * sd / mean
    r = np.maximum(mean + _K * sd, 0.0)
    exceed = gamma.sf(r, a, scale=scale)
    # R <= 0: every unit of demand is short, E[(D - R)⁺] = m - R
    loss = np.where(r > 0, mean * gamma.sf(r, a + 1, scale=scale) - r * exceed, mean - (mean + _K * sd)) / sd
    return policy.Tabulated("gamma", np.maximum(loss, 0.0).tolist(), exceed.tolist())


class _Line(msgspec.Struct):
    sku: str
    qty: int
    requires_shipping: bool = True  # a service or digital line draws no stock: not demand


class _Order(msgspec.Struct):
    lines: list[_Line]


class _OrderReceived(msgspec.Struct):
    order: _Order


class _Match(msgspec.Struct):
    request_id: str


class _Received(msgspec.Struct):
    sku: str
    qty: int
    request_id: str | None = None
    matched: list[_Match] = []


class _Raised(msgspec.Struct):
    request_id: str
    sku: str
    kind: str
    source: str


class _Adjusted(msgspec.Struct):
    sku: str
    delta: int


class _Configured(msgspec.Struct):
    sku: str


_DECODERS = {
    "order_received": msgspec.json.Decoder(_OrderReceived),
    "received": msgspec.json.Decoder(_Received),
    "request_raised": msgspec.json.Decoder(_Raised),
    "adjusted": msgspec.json.Decoder(_Adjusted),
    "sku_configured": msgspec.json.Decoder(_Configured),
}
_TYPES = "('order_received','received','request_raised','adjusted','sku_configured')"


class History:
    """What the planner knows of the journal, kept between runs: daily demand per SKU
    (units ordered, by engine day), the day each SKU first appears (configured, stocked,
    ordered or reordered: its series starts there), negative adjustments per SKU, open
    requests and the measured raise -> first receipt lead times per source and SKU.

    Why not start at the first order: a series that opens on a demand day makes its first
    inter-demand interval 1 day whatever the real rate, and Croston's interval smoothing
    (alpha 0.1, started from that first value) then takes dozens of demands to forget it:
    a SKU ordered on 3 days in 28 was forecast at 3-4 times its rate."""

    def __init__(self) -> None:
        self.db: str | None = None
        self.conn: sqlite3.Connection | None = None
        self.seq = 0
        self.demand: dict[str, dict[int, float]] = defaultdict(dict)
        self.first_day: dict[str, int] = {}
        self.shrink: dict[str, int] = defaultdict(int)
        self.open: dict[str, tuple[str, str, float]] = {}  # request_id -> (source, sku, raised ts)
        # source -> SKU -> raise-to-first-receipt days, oldest first
        self.lead_times: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))

    def read(self, db: str, upto: int) -> None:
        if self.db != db:
            self.__init__()  # type: ignore[misc]
            self.db = db
            self.conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, check_same_thread=False)
        assert self.conn is not None
        skipped = {row[0] for row in self.conn.execute("SELECT seq FROM quarantine WHERE seq > ?", (self.seq,))}
        cur = self.conn.execute(
            f"SELECT seq, ts, type, body FROM events WHERE seq > ? AND seq <= ? AND type IN {_TYPES} ORDER BY seq",
            (self.seq, upto),
        )
        demand, first_day = self.demand, self.first_day
        while rows := cur.fetchmany(20000):
            for seq, ts, kind, body in rows:
                if seq in skipped:
                    continue
                e = _DECODERS[kind].decode(body)
                day = int(ts // DAY)
                if kind != "order_received":  # the SKU was on offer from then on, ordered or not
                    first_day.setdefault(e.sku, day)
                if kind == "order_received":
                    for line in e.order.lines:
                        if not line.requires_shipping:
                            continue
                        days = demand[line.sku]
                        days[day] = days.get(day, 0.0) + line.qty
                        first_day.setdefault(line.sku, day)
                elif kind == "request_raised":
                    src = ("transfer:" if e.kind == "transfer" else "supplier:") + e.source
                    self.open[e.request_id] = (src, e.sku, ts)
                elif kind == "received":
                    # a receipt naming no request counts against those it was matched to
                    for request_id in [m.request_id for m in e.matched] or [e.request_id]:
                        if request_id is not None and (raised := self.open.pop(request_id, None)) is not None:
                            src, sku, at = raised
                            self.lead_times[src][sku].append((ts - at) / DAY)
                elif kind == "adjusted" and e.delta < 0:
                    self.shrink[e.sku] += -e.delta
        self.seq = max(self.seq, upto)

    def own_lead_times(self, source: str, sku: str) -> list[float]:
        """The SKU's last ``LEAD_SAMPLES`` lead times from ``source`` (days)."""
        by_sku = self.lead_times.get(source)
        return by_sku[sku][-LEAD_SAMPLES:] if by_sku and sku in by_sku else []

    def lead_time_ratios(self, skus: Sequence[wire.SkuInput]) -> dict[str, list[float]]:
        """Per source: its SKUs' recent lead times over each SKU's quoted one (the
        policy's ``lead_time_days``), the supplier's record that pools across items."""
        out: dict[str, list[float]] = defaultdict(list)
        for s in skus:
            if s.lead_time_days > 0:
                out[s.source] += [x / s.lead_time_days for x in self.own_lead_times(s.source, s.sku)]
        return out

    def series(self, sku: str, today: int, window: int) -> np.ndarray | None:
        first = self.first_day.get(sku)
        if first is None:
            return None
        start = max(first, today - window)
        y = np.zeros(max(today - start, 0))
        for day, qty in self.demand[sku].items():
            if start <= day < today:
                y[day - start] = qty
        return y


def _keep(s: wire.SkuInput, reasons: list[str], **kw) -> wire.SkuResult:
    return wire.SkuResult(
        sku=s.sku,
        new=None,
        demand_class=kw.pop("demand_class", "none"),
        model=kw.pop("model", "none"),
        forecast=kw.pop("forecast", []),
        reasons=reasons,
        **kw,
    )


@dataclass(slots=True)
class Draft:
    """A SKU's forecast and demand spread, planned up to its fill target: what the site
    allocation (``policy.site_fill_targets``) needs of it, and what ``finish`` turns into
    levels once the target is chosen."""

    s: wire.SkuInput
    reasons: list[str]
    klass: str
    model: str
    forecast: list[float]
    history: list[float]
    daily_mean: float  # over the forecast's horizon (shown)
    demand: float  # expected daily demand over the protection window (the site's weight)
    ltd: float
    window: float
    sd: float  # of demand over the window, with the undershoot's spread
    error_sd: float
    cycle: float
    q: int
    under: float
    lead: float
    lead_var: float
    measured: bool
    tracking: float
    biased: bool
    tail: policy.Tail  # the shape of the window's demand (gamma_tail)

    def curve(self) -> policy.Curve:
        # The site allocation weighs a unit short on this SKU by how long its customer
        # waits for it: about the protection window, within which the order in flight
        # arrives (policy.Curve.weight; Sherbrooke's METRIC: backorders = demand x wait).
        # In days, not relative to the run's mean: a run over some SKUs, planned at the
        # last whole run's marginal, weighs them as the whole run did. docs/lab.md, seventh
        # round: the square of the window, and its root, were measured and not kept.
        return policy.Curve(
            demand=self.demand, sd=self.sd, order_qty=self.q, tail=self.tail, weight=max(self.window, 0.0)
        )


def plan(s: wire.SkuInput, hist: History, today: int, p: wire.Params, ratios: Sequence[float] = ()) -> wire.SkuResult:
    """One SKU's levels at its own fill target (or why it keeps its own)."""
    d = draft(s, hist, today, p, ratios)
    return d if isinstance(d, wire.SkuResult) else finish(d, s.service_level, p=p)


def draft(
    s: wire.SkuInput, hist: History, today: int, p: wire.Params, ratios: Sequence[float] = ()
) -> Draft | wire.SkuResult:
    """One SKU planned up to its fill target, or the result that keeps its levels (and
    why). ``ratios``: the SKU's source's receipts as actual over quoted lead time, across
    its SKUs (``History.lead_time_ratios``)."""
    reasons: list[str] = []
    y = hist.series(s.sku, today, p.history_days)
    if y is None or len(y) < p.min_history_days:
        days = 0 if y is None else len(y)
        return _keep(s, [f"{days} days of demand history; the planner needs {p.min_history_days}: levels kept"])
    if hist.shrink.get(s.sku):
        reasons.append(f"{hist.shrink[s.sku]} units of negative adjustments (counts) are not counted as demand")
    total = float(y.sum())
    nonzero = y[y > 0]
    if total <= 0:
        return _keep(s, [*reasons, f"no demand in the last {len(y)} days: levels kept"])
    if len(nonzero) == 1:
        return _keep(
            s,
            [*reasons, f"one day with demand ({total:g} units) in {len(y)} days: too little to forecast, levels kept"],
        )
    top = int(np.argmax(y))
    median = float(np.median(nonzero))
    if len(nonzero) >= 3 and y[top] > GIANT_SHARE * total and y[top] > GIANT_RATIO * median:
        rest = np.delete(nonzero, np.argmax(nonzero))
        clip = float(rest.max())
        reasons.append(f"one day of {y[top]:g} units ({y[top] / total:.0%} of the window's demand) counted as {clip:g}")
        y = y.copy()
        y[top] = clip
        nonzero = y[y > 0]
    bound = policy.spike_bound(nonzero.tolist())
    if bound is not None and (spikes := int((y > bound).sum())):
        # An unannounced promotion's days: a forecast that follows them raises the levels
        # run after run while the spike lasts, and the orders raised then arrive after it.
        reasons.append(
            f"{spikes} day(s) above {bound:.1f} units (median day + {policy.HAMPEL_T:g} scaled MADs, Hampel)"
            f" counted as {bound:.1f}"
        )
        y = np.minimum(y, bound)
        nonzero = y[y > 0]
    adi, cv2 = policy.adi_cv2(y.tolist()) or (math.inf, 0.0)
    klass = policy.demand_class(adi, cv2)
    reasons.append(f"{klass} demand (ADI {adi:.2f}, CV² {cv2:.2f})")
    if klass in ("smooth", "erratic"):
        model, name = SeasonalExponentialSmoothingOptimized(season_length=7), "SeasonalES(7)"
        if len(y) < 14:
            model, name = CrostonSBA(), "CrostonSBA"
    elif klass == "intermittent":
        model, name = CrostonSBA(), "CrostonSBA"
    else:
        model, name = ADIDA(), "ADIDA"
    horizon = max(HORIZON, math.ceil(s.lead_time_days + p.review_days + p.handling_days + p.cycle_days) + 1)
    out = model.forecast(y=y, h=horizon, fitted=True)
    fc = np.clip(np.nan_to_num(out["mean"]), 0.0, None)
    resid = (y - out["fitted"])[-ERROR_DAYS:]
    resid = resid[np.isfinite(resid)]
    error_sd = float(resid.std()) if len(resid) > 1 else float(y.std())
    tracking = policy.trigg_signal(resid.tolist())
    # Only where one period's error means something: an intermittent series' residuals are
    # mostly small negatives and a few large positives (Croston's forecast is a rate).
    biased = klass in ("smooth", "erratic") and abs(tracking) > TRACKING_LIMIT
    if biased:
        reasons.append(f"tracking signal {tracking:+.2f} (Trigg): the forecast is biased, run again early")
    own = hist.own_lead_times(s.source, s.sku)
    lead, lead_var, basis = policy.lead_time(own, s.lead_time_days, ratios, p.min_lead_times)
    measured = basis != "quoted"
    spread = f"{lead:.1f} ± {math.sqrt(lead_var):.1f} days"
    if basis == "own":
        reasons.append(f"lead time {spread} measured over this SKU's last {len(own)} receipts from {s.source}")
    elif basis == "source":
        reasons.append(
            f"lead time {spread}: the policy's {s.lead_time_days:g} days scaled by {s.source}'s actual/quoted"
            f" over {len(ratios)} receipts ({len(own)} of this SKU's, need {p.min_lead_times})"
        )
    else:
        reasons.append(
            f"lead time {lead:g} days from the policy ({len(own)} receipts of this SKU from {s.source},"
            f" {len(ratios)} of the source's; need {p.min_lead_times})"
        )
    window = lead + p.handling_days + p.review_days
    forecast = fc.tolist()
    ltd = policy.window_demand(forecast, window)
    daily = ltd / window if window > 0 else float(fc[0])
    floor = policy.error_floor(daily)
    if error_sd < floor:
        reasons.append(
            f"forecast error {error_sd:.2f}/day raised to the Poisson floor {floor:.2f} (sqrt of the daily mean)"
        )
        error_sd = floor
    sd = policy.lead_time_demand_sd(window, error_sd**2, daily, lead_var)
    cycle = policy.window_demand(forecast, p.cycle_days)
    q = policy.round_to_pack(max(cycle, 1.0), s.moq, s.pack_size)
    # A day with demand is about one transaction of an intermittent or lumpy series (the
    # reorder rule runs on each): it takes the position below the reorder point by U. In a
    # series with demand most days a day holds many small lines, U is a line's size, not
    # a day's: negligible, and not counted.
    under, under_var = (0.0, 0.0)
    if klass in ("intermittent", "lumpy"):
        under, under_var = policy.undershoot(nonzero.tolist())
    if under:
        reasons.append(
            f"{klass} orders undershoot the reorder point by {under:.1f} ± {math.sqrt(under_var):.1f} units:"
            " the mean is added, the spread counted in σ"
        )
        sd = math.sqrt(sd * sd + under_var)
    return Draft(
        s=s, reasons=reasons, klass=klass, model=name, forecast=forecast, history=y[-HORIZON:].tolist(),
        daily_mean=round(float(np.mean(fc[:HORIZON])), 3), demand=daily, ltd=ltd, window=window, sd=sd,
        error_sd=error_sd, cycle=cycle, q=q, under=under, lead=lead, lead_var=lead_var, measured=measured,
        tracking=tracking, biased=biased, tail=gamma_tail(ltd + under, sd),
    )  # fmt: skip


def finish(d: Draft, service_level: float, why: str = "", *, p: wire.Params) -> wire.SkuResult:
    """The draft's levels at fill target ``service_level`` (``why``: how it was chosen)."""
    s, sd, q, reasons = d.s, d.sd, d.q, list(d.reasons)

    k = policy.factor_for_fill(service_level, sd, q, d.tail)
    ss = max(k * sd, 0.0)
    rop, oup, ss_units = policy.levels(
        lead_time_demand=d.ltd,
        safety_stock=ss,
        undershoot_units=d.under,
        cycle_demand=d.cycle,
        moq=s.moq,
        pack=s.pack_size,
    )
    reasons.append(
        f"fill rate {service_level:.1%}{why}: safety factor k={k:.2f} on σ={sd:.1f} units over {d.window:.1f} days"
        f" ({d.tail.name}: the window's demand, mean {d.ltd + d.under:.1f})"
    )
    new_rop = policy.capped(s.reorder_point, rop, p.max_change)
    new_ss = min(policy.capped(s.safety_stock, ss_units, p.max_change), new_rop)
    new_oup = max(policy.capped(s.order_up_to, oup, p.max_change), new_rop, new_ss)
    if (new_rop, new_oup) != (rop, oup) or new_ss != ss_units:
        reasons.append(
            f"change capped at {p.max_change:.0%} per run (uncapped: reorder point {rop}, order-up-to {oup}, safety stock {ss_units})"
        )
    return wire.SkuResult(
        sku=s.sku,
        new=wire.Levels(reorder_point=new_rop, order_up_to=new_oup, safety_stock=new_ss),
        demand_class=d.klass,
        model=d.model,
        forecast=[round(x, 3) for x in d.forecast[:HORIZON]],
        history=d.history,
        daily_mean=d.daily_mean,
        lead_time_demand=round(d.ltd, 3),
        error_sd=round(d.error_sd, 3),
        lead_time_days=round(d.lead, 3),
        lead_time_sd=round(math.sqrt(d.lead_var), 3),
        lead_time_measured=d.measured,
        tracking_signal=round(d.tracking, 2),
        biased=d.biased,
        service_level=round(service_level, 4),
        reasons=reasons,
    )


def run(req: wire.RunRequest, hist: History, send) -> wire.RunReply:
    """Plan every SKU of the request, sending the results ``wire.CHUNK`` at a time."""
    t0 = time.perf_counter()
    hist.read(req.db, req.upto_seq)
    today = int(req.now // DAY)
    ratios = hist.lead_time_ratios(req.skus)
    p = req.params
    drafts = [draft(s, hist, today, p, ratios.get(s.source, ())) for s in req.skus]
    site, chosen = None, {}
    if p.service_target == "site":
        site, chosen = site_targets([d for d in drafts if isinstance(d, Draft)], p)
    results = [
        d if isinstance(d, wire.SkuResult) else finish(d, *chosen.get(d.s.sku, (d.s.service_level, "")), p=p)
        for d in drafts
    ]
    for start in range(0, len(results), wire.CHUNK):
        send(wire.Results(run_id=req.run_id, results=results[start : start + wire.CHUNK]))
    return wire.RunReply(
        run_id=req.run_id, read_upto=hist.seq, duration_s=time.perf_counter() - t0, skus=len(req.skus), site=site
    )


def site_targets(drafts: Sequence[Draft], p: wire.Params) -> tuple[wire.SiteFill, dict[str, tuple[float, str]]]:
    """Fill targets across the SKUs planned (``[planner] service_target = "site"``): the
    least safety stock whose demand-weighted expected fill meets the site's target; a SKU
    with a target of its own keeps it. Per SKU (target, why); the run's site figures. A
    run over some SKUs only (``site_marginal`` given) plans them at the last whole run's
    marginal, so one SKU run early is planned as it would be with all the others."""
    curves = [replace(d.curve(), fixed=d.s.service_level) if d.s.own_target else d.curve() for d in drafts]
    target, floor = p.site_service_level, p.service_floor
    if p.site_marginal is not None:
        marginal = p.site_marginal
        chosen = policy.fill_targets_at(curves, marginal, floor, SERVICE_CAP)
        feasible = True
        total = math.fsum(c.demand for c in curves if c.demand > 0)
        weighted = math.fsum(c.demand * f for c, f in zip(curves, chosen, strict=True) if c.demand > 0)
        fill = weighted / total if total else 1.0
    else:
        alloc = policy.site_fill_targets(curves, target, floor, SERVICE_CAP)
        chosen, fill, feasible, marginal = alloc.targets, alloc.site_fill, alloc.feasible, alloc.marginal
    whys: dict[str, tuple[float, str]] = {}
    for d, c, f in zip(drafts, curves, chosen, strict=True):
        if c.fixed is not None:
            whys[d.s.sku] = (c.fixed, " (this SKU's own target, set by a person)")
            continue
        spread = f"σ {d.sd:.1f} against an order of {d.q}"
        if f <= floor + 5e-4:
            why = f"the floor, {spread}"
        elif f >= SERVICE_CAP - 5e-4:
            why = f"the cap, {spread}"
        elif policy.expected_fill(0.0, d.sd, d.q, d.tail) >= f - 1e-6:  # k = 0: levels keep safety stock >= 0
            why = f"no safety stock: {spread} gives this much without it"
        else:
            why = (
                f"{spread}; the next unit of safety stock adds as much site fill, weighed by the "
                f"{d.window:.1f}-day wait of a unit short, here as on every SKU not at a bound"
            )
        whys[d.s.sku] = (max(min(f, SERVICE_CAP), floor), f" chosen for the site's {target:.1%} ({why})")
    site = wire.SiteFill(
        target=target,
        expected=round(fill, 4),
        feasible=feasible,
        marginal=marginal,
        skus=len(curves),
        own_targets=sum(c.fixed is not None for c in curves),
    )
    return site, whys


def main() -> None:
    # Background work: on a machine with two cores the forecasting must not take the
    # daemon's core when both want one (reads during a run waited up to 250 ms at nice 0,
    # bench/planner.py on the shared test machine).
    os.nice(NICE)
    decoder = msgspec.json.Decoder(wire.Inbound)
    encoder = msgspec.json.Encoder()
    out = sys.stdout.buffer
    hist = History()

    def send(msg: wire.Outbound) -> None:
        out.write(encoder.encode(msg) + b"\n")
        out.flush()

    send(wire.Ready(pid=os.getpid()))
    for line in sys.stdin.buffer:
        req = decoder.decode(line)
        try:
            reply: wire.Outbound = run(req, hist, send)
        except Exception as exc:  # a bad run is answered; the worker stays up for the next
            send(wire.RunFailed(run_id=req.run_id, error=f"{type(exc).__name__}: {exc}"))
            continue
        send(reply)


if __name__ == "__main__":
    main()
