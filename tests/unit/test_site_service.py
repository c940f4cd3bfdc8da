"""Service levels set across SKUs (backorder.planner.policy.site_fill_targets): per-SKU
fill targets whose demand-weighted expected fill meets the site's target at the least
safety stock. Hand-checked cases and properties; the loss function is the textbook one."""

from __future__ import annotations

import math
from dataclasses import replace
from statistics import NormalDist

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from backorder.planner import policy
from backorder.planner.policy import Curve

FLOOR, CAP = 0.80, 0.999


def stock(curves, alloc) -> float:
    return sum(k * c.sd for c, k in zip(curves, alloc.factors, strict=True))


def site_fill(curves, targets) -> float:
    total = sum(c.demand for c in curves)
    return sum(c.demand * f for c, f in zip(curves, targets, strict=True)) / total


def test_the_loss_function_is_the_textbook_one():
    # G(0) = φ(0) = 0.3989; G(1) = 0.0833; G(2) = 0.0085 (Silver, Pyke & Thomas, table)
    assert policy.normal_loss(0.0) == pytest.approx(0.3989, abs=1e-4)
    assert policy.normal_loss(1.0) == pytest.approx(0.0833, abs=1e-4)
    assert policy.normal_loss(2.0) == pytest.approx(0.0085, abs=1e-4)
    # G(k) = (1 - fill)·Q/σ: fill 98 %, Q 100, σ 24 asks for k = 1.00
    assert policy.factor_for_fill(0.98, 24, 100) == pytest.approx(1.0, abs=0.01)
    assert policy.expected_fill(1.0, 24, 100) == pytest.approx(0.98, abs=1e-3)


def test_a_lumpy_sku_gets_a_lower_target_than_a_smooth_one_for_less_stock_than_equal_targets():
    # Same demand, same order quantity; the second's σ is five times the first's (lumpy).
    smooth, lumpy = Curve(demand=10, sd=15, order_qty=140), Curve(demand=10, sd=75, order_qty=140)
    alloc = policy.site_fill_targets([smooth, lumpy], 0.97, FLOOR, CAP)
    assert alloc.feasible and alloc.site_fill >= 0.97 - 1e-9
    assert alloc.targets[0] > 0.97 > alloc.targets[1]
    # both at 97 % each: the same site fill, more safety stock
    equal = [policy.factor_for_fill(0.97, c.sd, c.order_qty) for c in (smooth, lumpy)]
    assert stock([smooth, lumpy], alloc) < equal[0] * 15 + equal[1] * 75
    # every SKU off its bounds is at the same marginal: d·(1 - Φ(k))/Q
    tails = [c.demand * NormalDist().cdf(-k) / c.order_qty for c, k in zip([smooth, lumpy], alloc.factors, strict=True)]
    assert tails[0] == pytest.approx(tails[1], rel=1e-6)


def test_a_target_set_by_a_person_is_kept_and_counted():
    own = Curve(demand=10, sd=75, order_qty=140, fixed=0.99)
    other = Curve(demand=10, sd=15, order_qty=140)
    alloc = policy.site_fill_targets([own, other], 0.97, FLOOR, CAP)
    assert alloc.targets[0] == pytest.approx(0.99, abs=1e-6)
    assert alloc.factors[0] == pytest.approx(policy.factor_for_fill(0.99, 75, 140))
    # the other SKU needs only what makes the site 97 % with the first at 99 %: its floor
    assert alloc.targets[1] == pytest.approx(max(FLOOR, policy.expected_fill(0.0, 15, 140)))


def test_an_unreachable_site_target_puts_every_sku_at_its_cap_and_says_so():
    # σ so large against Q that 0.999 needs k beyond the loss table: the cap is not reached
    curves = [Curve(demand=1, sd=1e9, order_qty=1), Curve(demand=1, sd=1, order_qty=10)]
    alloc = policy.site_fill_targets(curves, 0.999, FLOOR, CAP)
    assert not alloc.feasible
    assert alloc.factors[0] == policy.K_MAX and alloc.targets[1] == pytest.approx(CAP, abs=1e-4)


def test_a_target_every_floor_meets_costs_no_safety_stock_beyond_the_floors():
    curves = [Curve(demand=5, sd=2, order_qty=70), Curve(demand=1, sd=1, order_qty=14)]
    alloc = policy.site_fill_targets(curves, 0.80, FLOOR, CAP)
    assert alloc.feasible
    assert alloc.factors == [policy.factor_for_fill(FLOOR, c.sd, c.order_qty) for c in curves]


curve = st.builds(
    Curve,
    demand=st.floats(min_value=0.05, max_value=500),
    sd=st.floats(min_value=0.0, max_value=2000),
    order_qty=st.integers(min_value=1, max_value=10_000),
)
# weighted by a short unit's wait (the worker: the protection window in days; any positive scale)
weighted = st.builds(
    Curve,
    demand=st.floats(min_value=0.05, max_value=500),
    sd=st.floats(min_value=0.0, max_value=2000),
    order_qty=st.integers(min_value=1, max_value=10_000),
    weight=st.one_of(st.just(1.0), st.floats(min_value=1.0, max_value=3600.0)),
)


@given(st.floats(min_value=-4, max_value=6), st.floats(min_value=0, max_value=6), curve)
def test_more_stock_never_gives_less_expected_fill(k, more, c):
    assert policy.expected_fill(k + more, c.sd, c.order_qty) >= policy.expected_fill(k, c.sd, c.order_qty)


@given(st.lists(weighted, min_size=1, max_size=12), st.floats(min_value=0.80, max_value=0.995))
def test_the_chosen_targets_meet_a_feasible_site_target_within_their_bounds(curves, target):
    alloc = policy.site_fill_targets(curves, target, FLOOR, CAP)
    at_cap = [policy.expected_fill(policy.factor_for_fill(CAP, c.sd, c.order_qty), c.sd, c.order_qty) for c in curves]
    feasible = site_fill(curves, at_cap) >= target
    assert alloc.feasible == feasible
    if feasible:
        assert site_fill(curves, alloc.targets) >= target - 1e-9
    for c, k, f in zip(curves, alloc.factors, alloc.targets, strict=True):
        assert 0.0 <= k <= policy.K_MAX
        assert f >= min(FLOOR, policy.expected_fill(policy.K_MAX, c.sd, c.order_qty)) - 1e-9
        assert k <= policy.factor_for_fill(CAP, c.sd, c.order_qty) + 1e-9 or k == policy.factor_for_fill(
            FLOOR, c.sd, c.order_qty
        )


@given(st.lists(weighted, min_size=2, max_size=8), st.floats(min_value=0.85, max_value=0.99), st.randoms())
def test_the_allocation_does_not_depend_on_the_order_of_the_skus(curves, target, rnd):
    alloc = policy.site_fill_targets(curves, target, FLOOR, CAP)
    order = list(range(len(curves)))
    rnd.shuffle(order)
    shuffled = policy.site_fill_targets([curves[i] for i in order], target, FLOOR, CAP)
    assert [shuffled.targets[order.index(i)] for i in range(len(curves))] == alloc.targets


@given(st.lists(curve, min_size=2, max_size=6), st.floats(min_value=0.85, max_value=0.99))
def test_no_equal_targets_reach_the_site_target_with_less_stock(curves, target):
    # the same fill target for every SKU (the per-SKU planning) reaching the site's
    # expected fill holds at least as much safety stock as the site allocation
    alloc = policy.site_fill_targets(curves, target, FLOOR, CAP)
    assume(alloc.feasible)
    equal_ks = [policy.factor_for_fill(target, c.sd, c.order_qty) for c in curves]
    fills = [policy.expected_fill(k, c.sd, c.order_qty) for c, k in zip(curves, equal_ks, strict=True)]
    assume(site_fill(curves, fills) >= target)
    equal = sum(k * c.sd for c, k in zip(curves, equal_ks, strict=True))
    assert stock(curves, alloc) <= equal * (1 + 1e-6) + 1e-6


@pytest.mark.parametrize("weights", [(1.0, 1.0, 1.0), (7.0, 21.0, 14.0)])
def test_a_subset_planned_at_the_whole_runs_marginal_gets_the_whole_runs_targets(weights):
    specs = [(10, 15, 140), (3, 40, 42), (50, 30, 700)]
    curves = [Curve(demand=d, sd=s, order_qty=q, weight=w) for (d, s, q), w in zip(specs, weights, strict=True)]
    alloc = policy.site_fill_targets(curves, 0.97, FLOOR, CAP)
    again = policy.fill_targets_at(curves[1:2], alloc.marginal, FLOOR, CAP)
    assert again[0] == pytest.approx(alloc.targets[1], abs=1e-9)
    assert not math.isnan(again[0])


def test_a_long_wait_sku_gets_more_of_the_stock_at_the_same_site_fill():
    # Two SKUs alike but for the wait of a unit short (their protection windows, 7 and
    # 21 days): weighted by it, the long one's target rises, the short one's falls, the
    # site's fill still meets the target, and the weighted marginals are equal.
    short = Curve(demand=10, sd=15, order_qty=140, weight=7.0)
    long_ = replace(short, weight=21.0)
    plain = policy.site_fill_targets([replace(short, weight=1.0), replace(long_, weight=1.0)], 0.98, FLOOR, CAP)
    alloc = policy.site_fill_targets([short, long_], 0.98, FLOOR, CAP)
    assert plain.targets[0] == pytest.approx(plain.targets[1])
    assert alloc.feasible and alloc.site_fill >= 0.98 - 1e-9
    assert 0.0 < alloc.factors[0] < alloc.factors[1]  # both off their bounds
    assert alloc.targets[1] > plain.targets[1] > alloc.targets[0]
    assert alloc.site_fill == pytest.approx(plain.site_fill, abs=1e-6)
    # the same fill, moved to where a short unit waits longer, costs some stock
    assert stock([short, long_], alloc) > stock([short, long_], plain)
    curves = [short, long_]
    tails = [
        c.weight * c.demand * NormalDist().cdf(-k) / c.order_qty for c, k in zip(curves, alloc.factors, strict=True)
    ]
    assert tails[0] == pytest.approx(tails[1], rel=1e-6)
    # only the ratio of the weights counts
    scaled = policy.site_fill_targets([replace(short, weight=1.0), replace(long_, weight=3.0)], 0.98, FLOOR, CAP)
    assert scaled.targets == pytest.approx(alloc.targets, abs=1e-9)
