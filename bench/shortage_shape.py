"""How well the planner's shape of lead-time demand predicts the shortfall it plans
against: the expected units short per cycle, E[(D - R)⁺], at a reorder point
R = m + k·σ (m, σ: the mean and spread of demand over the lead time), by the normal
(what the planner assumed before), by a gamma of the same m and σ (what it assumes now,
``backorder.planner.worker.gamma_tail``) and by simulation.

The simulation draws lead times from the policy lab's supplier model
(``backorder.lab.generator.deliveries``: the quoted lead time times a lognormal, one
delivery in ten 2-10 days late; the control site's suppliers: a tight lognormal and never
late) and demand over them as the lab's retail lines arrive (Poisson lines a day, 1 +
Poisson(0.8) units each). m and σ are computed from the draws, as a planner that knew
them exactly would; the lead time is the first delivery's (what the planner measures).
The last columns: the unit fill rate a 97 % target plans with each shape (order quantity
14 days of demand) and the fill the simulated demand gives that reorder point.

    python bench/shortage_shape.py [--draws 100000] [--seed 1] [--quick]
"""

from __future__ import annotations

import argparse

import numpy as np
from common import result_name, save

from backorder.lab.generator import ScenarioSpec, SkuSpec, deliveries
from backorder.planner import policy
from backorder.planner.worker import gamma_tail

DAY = 86400.0
TARGET = 0.97
CYCLE_DAYS = 14.0


def lead_times(scenario: str, quoted: float, n: int, seed: int) -> np.ndarray:
    spec = ScenarioSpec(skus=1, days=365, seed=seed, scenario=scenario)
    s = SkuSpec("X", 0, "smooth", 10.0, quoted, None, 1.0)
    return np.array([deliveries(spec, s, i, 0.0)[0].delay / DAY for i in range(n)])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--draws", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="20,000 draws, saved as shortage_shape_quick")
    args = ap.parse_args()
    if args.quick:
        args.draws = 20_000
    rng = np.random.default_rng(args.seed)
    rows = []
    for scenario in ("mixed", "control"):
        for quoted in (3.0, 7.0, 14.0, 21.0):
            lead = lead_times(scenario, quoted, args.draws, args.seed)
            for lines_a_day in (0.3, 1.0, 3.0):
                n = rng.poisson(lines_a_day * lead)
                demand = n + rng.poisson(0.8 * n)
                m, sd = float(demand.mean()), float(demand.std())
                q = CYCLE_DAYS * 1.8 * lines_a_day
                row = {"scenario": scenario, "quoted_lead_days": quoted, "lines_a_day": lines_a_day}
                row["mean"], row["sd"] = round(m, 2), round(sd, 2)
                for k in (1.0, 1.5, 2.0):
                    r = m + k * sd
                    row[f"k{k}"] = {
                        "normal": round(sd * policy.NORMAL.loss(k), 4),
                        "gamma": round(sd * gamma_tail(m, sd).loss(k), 4),
                        "simulated": round(float(np.maximum(demand - r, 0).mean()), 4),
                    }
                for shape, tail in (("normal", policy.NORMAL), ("gamma", gamma_tail(m, sd))):
                    k = policy.factor_for_fill(TARGET, sd, q, tail)
                    short = float(np.maximum(demand - (m + k * sd), 0).mean())
                    row[f"fill_{shape}"] = {"k": round(k, 3), "realised": round(1 - short / q, 4)}
                rows.append(row)
                print(
                    f"{scenario:8s} L={quoted:4.0f} {lines_a_day:3.1f} lines/d"
                    f"  k=1.5 short: normal {row['k1.5']['normal']:.3f} gamma {row['k1.5']['gamma']:.3f}"
                    f" sim {row['k1.5']['simulated']:.3f}"
                    f"  | 97 % planned: normal k={row['fill_normal']['k']:.2f} fills {row['fill_normal']['realised']:.2%},"
                    f" gamma k={row['fill_gamma']['k']:.2f} fills {row['fill_gamma']['realised']:.2%}"
                )
    fills = {shape: [r[f"fill_{shape}"]["realised"] for r in rows] for shape in ("normal", "gamma")}
    summary = {f"{shape}_fill_{f.__name__}": f(v) for shape, v in fills.items() for f in (min, max)}
    print(summary)
    save(
        result_name("shortage_shape", args.quick),
        {"draws": args.draws, "seed": args.seed, "target": TARGET, **summary, "rows": rows},
    )


if __name__ == "__main__":
    main()
