"""The planner's hand-written policy arithmetic (backorder.planner.policy): the
Syntetos-Boylan classification, lead-time demand and its spread, the fill-rate loss
target, undershoot, MOQ / pack rounding and the cap on one run's change. The gamma shape
of the lead-time demand (the worker's, scipy) is tested in test_demand_shape.py."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backorder.planner import policy

qty = st.integers(min_value=0, max_value=10**6)


@pytest.mark.parametrize(
    ("daily", "klass"),
    [
        ([5, 6, 5, 4, 5, 6, 5], "smooth"),  # every day, steady sizes
        ([1, 20, 2, 30, 1, 25, 3], "erratic"),  # every day, sizes all over
        ([4, 0, 0, 5, 0, 0, 4, 0], "intermittent"),  # one day in 2.7, steady sizes
        ([1, 0, 0, 40, 0, 0, 2, 0], "lumpy"),  # rare and wildly sized
    ],
)
def test_syntetos_boylan_quadrants(daily, klass):
    adi, cv2 = policy.adi_cv2(daily)
    assert policy.demand_class(adi, cv2) == klass


def test_the_cutoffs_are_the_published_ones_and_count_to_the_higher_side():
    assert (policy.ADI_CUT, policy.CV2_CUT) == (1.32, 0.49)
    assert policy.demand_class(1.32, 0.0) == "intermittent"
    assert policy.demand_class(1.0, 0.49) == "erratic"
    assert policy.adi_cv2([0, 0, 0]) is None


def test_adi_and_cv2_by_hand():
    adi, cv2 = policy.adi_cv2([2, 0, 4, 0])  # two demand days in four; sizes 2 and 4: mean 3, var 1
    assert adi == 2.0 and cv2 == pytest.approx(1 / 9)


def test_window_demand_counts_a_fraction_of_the_last_day_and_repeats_past_the_horizon():
    fc = [1.0, 2.0, 3.0]
    assert policy.window_demand(fc, 2) == 3.0
    assert policy.window_demand(fc, 2.5) == 4.5
    assert policy.window_demand(fc, 5) == 1 + 2 + 3 + 3 + 3
    assert policy.window_demand(fc, 0) == 0.0


def test_lead_time_demand_spread_is_the_random_lead_time_formula():
    # σ² = E[L]·σe² + μ²·σL²: 4 days, error 2/day, 10/day, lead time sd 1 day -> 16 + 100
    assert policy.lead_time_demand_sd(4, 4.0, 10.0, 1.0) == pytest.approx(math.sqrt(116))
    assert policy.lead_time_demand_sd(4, 4.0, 10.0, 0.0) == pytest.approx(4.0)  # fixed lead time: σe·sqrt(L)


def test_the_error_floor_is_poisson():
    assert policy.error_floor(9.0) == 3.0 and policy.error_floor(0.0) == 0.0


def test_fill_rate_loss_target():
    # (1 - fill)·Q/σ = 0.15 = G(0.66); without uncertainty no safety stock
    assert policy.normal_loss(policy.factor_for_fill(0.97, 20, 100)) == pytest.approx(0.15, abs=1e-6)
    assert policy.factor_for_fill(0.97, 0, 100) == 0.0


def test_trigg_signal_sees_one_sided_errors_not_noise():
    assert policy.trigg_signal([2.0] * 40) == pytest.approx(1.0)  # always under: biased
    assert abs(policy.trigg_signal([1.0, -1.0] * 20)) < 0.2  # alternating: noise
    assert policy.trigg_signal([]) == 0.0


def test_undershoot_of_lumpy_orders():
    # Constant size 10: U is uniform on [0, 10] -> mean E[Z²]/2E[Z] = 100/20 = 5,
    # variance E[Z³]/3E[Z] - 25 = 1000/30 - 25 = 8.33 = 10²/12.
    assert policy.undershoot([10, 10]) == (pytest.approx(5.0), pytest.approx(100 / 12))
    # Sizes 10 and 50 (B2B lines): E[Z] = 30, E[Z²] = 1300, E[Z³] = 63000 -> mean
    # 1300/60 = 21.7, E[U²] = 63000/90 = 700, variance 700 - 21.7² = 230.6 (σ 15.2).
    mean, var = policy.undershoot([10, 0, 50])
    assert mean == pytest.approx(1300 / 60)
    assert var == pytest.approx(700 - (1300 / 60) ** 2)
    assert policy.undershoot([0, 0]) == (0.0, 0.0)


@given(st.floats(min_value=0, max_value=1e6), st.integers(1, 500), st.integers(1, 500))
def test_order_quantities_respect_moq_and_packs_and_never_undershoot(asked, moq, pack):
    q = policy.round_to_pack(asked, moq, pack)
    assert q % pack == 0 and q >= moq and q >= asked - 1e-9 and q >= 1
    assert q - pack < max(asked, moq, 1)  # the smallest such quantity


@given(qty, qty, st.floats(min_value=0.01, max_value=2.0))
def test_one_run_moves_a_level_at_most_its_share_and_towards_the_target(old, new, share):
    got = policy.capped(old, new, share)
    assert abs(got - old) <= max(math.ceil(share * max(old, new)), 1)
    assert min(old, new) <= got <= max(old, new)  # never overshoots, never moves away
    if abs(new - old) <= share * max(old, new):
        assert got == new


def test_a_level_of_zero_can_leave_zero():
    assert policy.capped(0, 100, 0.5) == 50
    assert policy.capped(50, 100, 0.5) == 100


@given(
    st.floats(min_value=0, max_value=1e5),
    st.floats(min_value=0, max_value=1e5),
    st.floats(min_value=0, max_value=1e3),
    st.floats(min_value=0, max_value=1e5),
    st.integers(1, 100),
    st.integers(1, 100),
)
def test_levels_are_consistent_for_the_reorder_rule(ltd, ss, under, cycle, moq, pack):
    rop, oup, safety = policy.levels(
        lead_time_demand=ltd, safety_stock=ss, undershoot_units=under, cycle_demand=cycle, moq=moq, pack=pack
    )
    assert 0 <= safety <= rop < oup  # what ReorderPolicy.problems asks, and an order is never empty
    assert rop >= ltd + ss - 1e-6
    assert (oup - rop) % pack == 0 and oup - rop >= moq


def test_a_skus_own_lead_times_are_its_own_not_its_suppliers_pool():
    # the same supplier ships one SKU in ~3 days, another in ~21: each is planned with its own
    ratios = [1.0, 0.67, 1.33, 1.0, 1.05, 0.95]
    fast = policy.lead_time([3.0, 2.0, 4.0, 3.0], 3.0, ratios, 3)
    slow = policy.lead_time([21.0, 22.0, 20.0, 21.0], 21.0, ratios, 3)
    assert fast[2] == slow[2] == "own"
    assert 2.9 < fast[0] < 3.2 and 20.8 < slow[0] < 21.1
    assert fast[1] == pytest.approx(slow[1])  # the same spread around each one's own pace


def test_recent_lead_times_weigh_most_and_equal_weights_are_the_plain_estimate():
    # equal weights (alpha 0): mean and unbiased variance, (1 + 0 + 1) / 2
    assert policy.recent_mean_var([3.0, 2.0, 4.0], 0.0) == (pytest.approx(3.0), pytest.approx(1.0))
    # weights 0.8², 0.8, 1: mean 7.52 / 2.44; variance Σw(x - m)² / (V1 - V2 / V1)
    w = [0.64, 0.8, 1.0]
    m = (3 * 0.64 + 2 * 0.8 + 4) / 2.44
    v = sum(wi * (x - m) ** 2 for wi, x in zip(w, [3, 2, 4], strict=True)) / (2.44 - sum(x * x for x in w) / 2.44)
    assert policy.recent_mean_var([3.0, 2.0, 4.0], 0.2) == (pytest.approx(m), pytest.approx(v))
    # a supplier that doubles its pace: 17 receipts at 10 days, then 3 at 20. The plain
    # mean of the 20 says 11.5 days; the smoothed one is near half way after 3 receipts.
    history = [10.0] * 17 + [20.0] * 3
    assert policy.mean_var(history)[0] == pytest.approx(11.5)
    mean, var = policy.lead_time(history, 10.0, [], 3)[:2]
    assert mean > 14.5 and var > 0


def test_too_few_own_receipts_scale_the_quoted_lead_time_by_the_suppliers_record():
    # actual / quoted across the supplier's SKUs: mean 1.1, variance ((-0.1)² + 0.1²... ) / (n - 1)
    ratios = [1.0, 1.2, 1.0, 1.2]
    mean, var, basis = policy.lead_time([9.0], 10.0, ratios, 3)
    assert basis == "source"
    assert mean == pytest.approx(11.0)
    assert var == pytest.approx(100 * (4 * 0.01) / 3)  # quoted² · Var[r], n - 1
    assert policy.lead_time([], 7.0, [1.0], 3) == (7.0, 0.0, "quoted")  # nothing measured yet


# The unit normal loss G(k) = φ(k) - k(1 - Φ(k)), tabulated in Silver, Pyke & Thomas
# (appendix B): G(0) = 0.3989, G(0.5) = 0.1978, G(1) = 0.0833, G(1.5) = 0.0293, G(2) = 0.0085.
@pytest.mark.parametrize(("loss", "k"), [(0.3989, 0.0), (0.1978, 0.5), (0.0833, 1.0), (0.0293, 1.5), (0.0085, 2.0)])
def test_the_safety_factor_inverts_the_tabulated_loss_function(loss, k):
    # σ = Q = 1: a fill rate of 1 - G asks for exactly the k of G
    assert policy.factor_for_fill(1.0 - loss, 1.0, 1.0) == pytest.approx(k, abs=0.005)


def test_fill_rate_safety_stock_is_the_textbook_one_not_a_cycle_service_z():
    # fill rate 98 %, order quantity 100, σ over the lead time 24: G(k) = 0.02 * 100 / 24
    # = 0.0833, so k = 1.00 and the safety stock is 24 units (a 98 % cycle service level
    # would ask for z = 2.05: 49 units). A larger order covers more demand per stockout,
    # so it needs less: Q = 400 gives G(k) = 0.333, k = 0.14.
    assert policy.factor_for_fill(0.98, 24, 100) * 24 == pytest.approx(24, abs=0.2)
    assert policy.factor_for_fill(0.98, 24, 400) == pytest.approx(0.14, abs=0.01)


def _plan_series(daily):
    pytest.importorskip("statsforecast")
    from backorder.planner import wire
    from backorder.planner.worker import History, plan

    hist = History()
    hist.first_day["s"] = 0
    hist.demand["s"] = {day: float(q) for day, q in enumerate(daily) if q}
    sku = wire.SkuInput(
        sku="s", mode="auto", service_level=0.97, reorder_point=0, order_up_to=0, safety_stock=0,
        lead_time_days=7.0, moq=1, pack_size=1, source="supplier:x",
    )  # fmt: skip
    params = wire.Params(
        history_days=365, min_history_days=28, max_change=1.0, review_days=0.0, handling_days=0.0,
        cycle_days=14.0, min_lead_times=3,
    )  # fmt: skip
    return plan(sku, hist, len(daily), params)


def test_an_intermittent_skus_reorder_point_takes_in_the_undershoot_and_its_spread():
    # 6 units every third day: intermittent (ADI 3, CV² 0). Each order takes the position
    # below the reorder point by U, uniform on [0, 6]: mean 3 is added, variance 3 widens σ.
    res = _plan_series([6 if d % 3 == 0 else 0 for d in range(60)])
    assert res.demand_class == "intermittent"
    assert any("undershoot the reorder point by 3.0 ± 1.7 units" in r for r in res.reasons)
    assert res.new is not None
    assert res.new.reorder_point >= res.lead_time_demand + res.new.safety_stock + 3 - 1
    # A smooth SKU's day is many small lines: no undershoot from its day sizes.
    smooth = _plan_series([5 + d % 3 for d in range(60)])
    assert smooth.demand_class == "smooth"
    assert not any("undershoot" in r for r in smooth.reasons)


def test_a_promotions_days_are_bounded_at_three_scaled_mads_above_the_median_day():
    # ordinary days of 2-4 units (median 3, MAD 1: σ 1.4826 against the Poisson floor
    # sqrt(3) = 1.73, which is larger) and a week of a promotion at 20-40
    days = [2, 3, 4, 3, 2, 3, 4, 3, 2, 3, 4, 3, 20, 35, 40, 30]
    assert policy.spike_bound(days) == pytest.approx(3 + 3 * math.sqrt(3))
    # a wide ordinary spread is the SKU's own: B2B lines of 10-50 units are not spikes
    b2b = [10, 50, 25, 40, 15, 33, 47, 12, 28]
    assert policy.spike_bound(b2b) == pytest.approx(28 + 3 * 1.4826 * 13)
    assert max(b2b) < policy.spike_bound(b2b)
    # zeros (days without demand) are not sizes; too few days say nothing
    assert policy.spike_bound([0, 0, 5, 0, 5]) is None
    assert policy.spike_bound([0, 5, 0, 5, 0, 5]) == pytest.approx(5 + 3 * math.sqrt(5))  # MAD 0: the floor


@given(st.lists(st.integers(min_value=0, max_value=500), min_size=3, max_size=60), st.integers(1, 10_000))
def test_a_larger_spike_counts_no_more(days, extra):
    bound = policy.spike_bound(days)
    if bound is None:
        return
    sizes = sorted(x for x in days if x > 0)
    assert bound >= sizes[(len(sizes) - 1) // 2]  # never below the median day
    top = max(days)
    if top > bound:  # an outlier already: making it larger moves neither the median nor the MAD
        bigger = list(days)
        bigger[days.index(top)] = top + extra
        assert policy.spike_bound(bigger) == pytest.approx(bound)


def test_a_promotion_week_does_not_carry_the_reorder_point_with_it():
    # 2 units every other day for ten weeks, then a week of 40 a day ending yesterday: the
    # forecast and the reorder point follow the ordinary days, not the spike
    base = [2 if d % 2 == 0 else 0 for d in range(70)]
    promo = base + [40] * 7
    calm = _plan_series(base + [2 if d % 2 == 0 else 0 for d in range(7)])
    res = _plan_series(promo)
    assert any("Hampel" in r and "7 day(s)" in r for r in res.reasons)
    assert res.new is not None and calm.new is not None
    # bounded at 2 + 3·sqrt(2) = 6.2 a day for the week, the lead-time demand is under 4 times
    # the calm one's (without the bound: 30 times)
    assert res.lead_time_demand < 4 * calm.lead_time_demand
    assert res.new.reorder_point < 4 * calm.new.reorder_point
