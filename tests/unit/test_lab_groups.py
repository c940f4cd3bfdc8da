"""The lab's split by kind of SKU (backorder.lab.groups): each group's figures are its
SKUs' and each group has its own static sweep to place a policy on."""

from __future__ import annotations

import pytest

from backorder.lab.generator import SkuSpec
from backorder.lab.groups import split
from backorder.lab.report import group_tables


def spec(sku: str, pattern: str, lead: float, shift: float | None = None) -> SkuSpec:
    return SkuSpec(sku, 0, pattern, 10.0, lead, 40.0 if shift else None, shift or 1.0)


def figs(ordered: int, filled: int, on_hand: float) -> dict[str, float]:
    return {"units_ordered": ordered, "units_filled": filled, "on_hand_units": on_hand}


SPECS = [spec("S1", "smooth", 3), spec("S2", "smooth", 7, 2.0), spec("P1", "promotion", 7)]
PER_SKU = {
    "static-3": {"S1": figs(100, 80, 10), "S2": figs(100, 90, 20), "P1": figs(50, 30, 5)},
    "static-7": {"S1": figs(100, 90, 20), "S2": figs(100, 100, 40), "P1": figs(50, 40, 15)},
    # smooth: 180 / 200 = 90 % with 25 units
    "planner": {"S1": figs(100, 85, 10), "S2": figs(100, 95, 15), "P1": figs(50, 45, 40)},
}


def test_a_groups_figures_are_its_skus_and_its_own_sweep_places_a_policy():
    got = split(SPECS, PER_SKU)
    smooth = got["demand pattern"]["smooth"]
    assert smooth["skus"] == 2
    assert smooth["policies"]["static-7"] == {"fill_rate": 0.95, "on_hand_units": 60, "units_ordered": 200}
    assert smooth["policies"]["planner"]["fill_rate"] == 0.9
    # the smooth sweep: 85 % at 30 units, 95 % at 60; 90 % needs 45: the planner's 25 is -44 %
    assert smooth["policies"]["planner"]["inventory_vs_static_at_same_fill"] == pytest.approx(25 / 45 - 1, abs=1e-4)
    assert "inventory_vs_static_at_same_fill" not in smooth["policies"]["static-3"]
    # the promoted SKU fills 90 %, beyond its sweep's 80 %: off the curve, not extrapolated
    promo = got["demand pattern"]["promotion"]["policies"]["planner"]
    assert promo["fill_rate"] == 0.9 and promo["inventory_vs_static_at_same_fill"] is None
    assert set(got["supplier pace"]) == {"steady", "x2 mid-run"}
    assert set(got["quoted lead time"]) == {"3 d", "7 d"}
    assert got["quoted lead time"]["7 d"]["policies"]["static-7"]["units_ordered"] == 150


def test_the_tables_name_each_group_and_a_policy_off_the_sweep():
    md = "\n".join(group_tables({1: split(SPECS, PER_SKU)}))
    assert "Seed 1, by demand pattern" in md
    assert "| smooth | 2 | 200 | 85.0% / 30 | 95.0% / 60 | 90.0% / 25 (-44%) |" in md
    assert "| promotion | 1 | 50 | 60.0% / 5 | 80.0% / 15 | 90.0% / 40 (off the sweep) |" in md
