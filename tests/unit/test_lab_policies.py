"""The lab's policies (the ERP's static min/max arithmetic) and the report's matched
comparisons, on hand-made figures."""

from __future__ import annotations

import pytest

from backorder.lab import policies, report
from backorder.lab.referee import calibration


def test_the_static_rule_is_the_erps_min_max():
    # 2 units/day, quoted lead time 7 days, 3 safety days: 14 + 6 = 20; + 14 days' review = 48
    assert policies.static_levels(2.0, 7.0, 3) == (20, 48)
    assert policies.static_levels(0.0, 7.0, 21) == (0, 1)  # no history: an order-up-to of one
    assert policies.static_levels(0.1, 5.0, 0) == (1, 3)  # rounded up, never down


def test_policy_names():
    names = [p.name for p in policies.parse(["static", "planner-priority", "static-7"])]
    assert names[: len(policies.STATIC_SWEEP)] == [f"static-{n}" for n in policies.STATIC_SWEEP]
    assert names[-1] == "planner-priority" and names.count("static-7") == 1
    prio = policies.parse(["planner-priority"])[0]
    assert prio.planner and prio.allocation == "priority" and "[planner]" in prio.config()
    assert "[planner]" not in policies.parse(["static-3"])[0].config()
    with pytest.raises(ValueError, match="unknown policy"):
        policies.parse(["static-x"])


def fig(fill, units, age=10.0, lines=0.1, pos=100):
    return {
        "fill_rate": fill,
        "on_hand_units": units,
        "backorder_age_p95_days": age,
        "lines_backordered": lines,
        "purchase_orders": pos,
    }


def test_matched_inventory_and_matched_fill_interpolate_the_static_sweep():
    runs = {
        "static-0": fig(0.80, 1000),
        "static-7": fig(0.90, 2000, age=10.0, lines=0.10, pos=100),
        "static-14": fig(0.95, 3000),
        "planner-fifo": fig(0.93, 1500, age=6.0, lines=0.04, pos=105),
    }
    c = report.compare_seed(runs)["planner-fifo"]
    # at 1,500 units the sweep fills 85 %: the planner is 8 points better
    assert c["static_fill_at_same_inventory"] == pytest.approx(0.85)
    assert c["fill_gain_at_same_inventory"] == pytest.approx(0.08)
    # the sweep needs 2,600 units for 93 %: the planner holds 1,500, 42.3 % less
    assert c["static_inventory_at_same_fill"] == pytest.approx(2600)
    assert c["inventory_vs_static_at_same_fill"] == pytest.approx(1500 / 2600 - 1, abs=1e-4)
    assert c["backorder_age_p95_days_vs_baseline"] == pytest.approx(-0.4)
    assert c["lines_backordered_vs_baseline"] == pytest.approx(-0.6)
    assert c["purchase_orders_vs_baseline"] == pytest.approx(0.05)
    # outside the swept range: no extrapolation
    runs["planner-fifo"] = fig(0.99, 500)
    c = report.compare_seed(runs)["planner-fifo"]
    assert c["static_fill_at_same_inventory"] is None and c["inventory_vs_static_at_same_fill"] is None


def test_the_summary_pairs_seeds_and_the_markdown_names_unavailable_policies():
    by_seed = {
        1: {"static-0": fig(0.8, 1000), "static-7": fig(0.9, 2000), "planner-fifo": fig(0.9, 1500)},
        2: {"static-0": fig(0.7, 1000), "static-7": fig(0.9, 2000), "planner-fifo": fig(0.9, 1000)},
    }
    s = report.summarise(by_seed)
    inv = s["policies"]["planner-fifo"]["compared"]["on_hand_units_vs_baseline"]
    assert inv == {"mean": pytest.approx(-0.375), "min": -0.5, "max": -0.25}
    for runs in by_seed.values():
        for f in runs.values():
            f["invariants"] = {"stock_never_negative": {"ok": True, "violations": 0}}
    md = report.markdown(
        {
            "summary": s,
            "spec": {"scenario": "mixed", "skus": 10, "days": 5, "warmup_days": 2},
            "seeds": [1, 2],
            "unavailable": {"planner-priority": "unknown_op: planner.run"},
            "runs": [{"policy": p, "seed": k, "figures": f} for k, r in by_seed.items() for p, f in r.items()],
        }
    )
    assert "| planner-priority | not available: unknown_op: planner.run |" in md
    assert "| planner-fifo | 90.0% |" in md and "Invariants: all held" in md


def test_the_markdown_shows_each_runs_confidence_buckets_and_brier_score():
    f = fig(0.9, 1500)
    f["invariants"] = {}
    f["promise_calibration"], f["promise_brier"] = calibration([(0.98, True), (0.98, False), (0.6, True)])
    md = report.markdown(
        {
            "summary": report.summarise({1: {"planner-fifo": f}}),
            "spec": {"scenario": "mixed", "skus": 10, "days": 5, "warmup_days": 2},
            "seeds": [1],
            "runs": [{"policy": "planner-fifo", "seed": 1, "figures": f}],
        }
    )
    assert "| planner-fifo seed 1 | >=0.95 | 2 | 0.980 | 50.0% |" in md
    assert "| planner-fifo seed 1 | <0.7 | 1 | 0.600 | 100.0% |" in md
    assert "| planner-fifo seed 1 | 0.7-0.8 | 0 | n/a | n/a |" in md
    assert f"| planner-fifo seed 1 | Brier score | | {f['promise_brier']} | |" in md
