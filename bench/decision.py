"""Decision quality: the policy lab (backorder.lab, docs/lab.md) on the mixed site and on
the stationary control site. Every policy replays the same generated site through its
own real daemon on the stepped clock; every figure comes from that daemon's journal.

Full run: 2,000 SKUs x 365 days (+28 warm-up), 5 paired seeds, the static sweep
(0-28 safety days: on the mixed site only 28 days fill as much as the planner) and both
planner policies, on both scenarios: 120 runs, about 10 hours on two cores one at a time
and about 7 with ``--jobs 2`` (a static run of the full size, 782,165 order lines, takes
4.5 minutes alone and 4.8-6.4 beside another; a planner run ~15 minutes beside another);
``--resume`` lets it run in parts, and ``bench/lab_combine.py`` joins reports of seeds
run apart. ``--quick``: 200 SKUs x 90 days, one seed, five points of the sweep (a few
minutes). ``--policies`` runs a chosen set (the README's full tables:
``static-5,static-7,static-10,static-14,static-21,static-28,planner-fifo``).

    python bench/decision.py [--quick] [--skus N --days D --seeds K] [--policies P,...] [--out DIR] [--resume] [--jobs N]

``--resume``: the runs happen under the output folder (not a temp one) and every finished
run is kept there (``backorder/lab/stored.py``); a second call with the same arguments
reuses the runs this code already made and runs only the rest, so the full benchmark can
be run in parts (stop it at any time). ``--jobs N``: N runs at once, each in a process of
its own (the report is the same).

Saves decision.json (decision_quick.json) with the targets' figures flat at the top
(``mixed.*``, ``control.*``: the planner with FIFO against static-7 and against the
sweep), and both lab reports (JSON + markdown) under bench/results/decision[_quick]/.
A planner the daemon does not know is reported "not available" and its figures are null.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from common import RESULTS, exit_on_sigterm, result_name, save

from backorder.lab.generator import ScenarioSpec
from backorder.lab.report import markdown
from backorder.lab.run import run_lab

PLANNER = "planner-fifo"  # the planner the targets name; planner-priority is reported alongside


def targets(report: dict) -> dict:
    """The issue's figures for one scenario: the planner against static-7 and the sweep."""
    p = report["summary"]["policies"]
    base = p.get("static-7", {}).get("mean", {})
    out: dict = {
        "static7_fill_rate": base.get("fill_rate"),
        "static7_backorder_age_p95_days": base.get("backorder_age_p95_days"),
        "static7_on_hand_units": base.get("on_hand_units"),
        "planner_available": PLANNER in p,
        "unavailable": report["unavailable"],
    }
    planner = p.get(PLANNER)
    if planner is None:
        return out
    c = planner["compared"]

    def mean(key: str):
        return c.get(key, {}).get("mean")

    out |= {
        "planner_fill_rate": planner["mean"].get("fill_rate"),
        "planner_on_hand_vs_static7": mean("on_hand_units_vs_baseline"),
        "planner_p95_age_vs_static7": mean("backorder_age_p95_days_vs_baseline"),
        "planner_lines_backordered_vs_static7": mean("lines_backordered_vs_baseline"),
        "planner_inventory_vs_static_at_same_fill": mean("inventory_vs_static_at_same_fill"),
        "planner_fill_gain_at_same_inventory": mean("fill_gain_at_same_inventory"),
        "planner_pos_vs_static7": mean("purchase_orders_vs_baseline"),
    }
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--skus", type=int, default=None)
    ap.add_argument("--days", type=int, default=None)
    ap.add_argument("--seeds", type=int, default=None)
    ap.add_argument("--scenarios", default="mixed,control")
    ap.add_argument("--out", default=None, help="folder for the lab reports (default bench/results/decision)")
    ap.add_argument(
        "--policies",
        default=None,
        help="comma-separated, as `backorder lab --policies` (default: the whole static sweep and both planners; "
        "--quick: five points of the sweep and both planners)",
    )
    ap.add_argument("--resume", action="store_true", help="keep finished runs under --out and reuse them")
    ap.add_argument("--jobs", type=int, default=1, help="runs at once, each in a process of its own")
    args = ap.parse_args()
    exit_on_sigterm()
    skus = args.skus or (200 if args.quick else 2000)
    days = args.days or (90 if args.quick else 365)
    seeds = list(range(1, (args.seeds or (1 if args.quick else 5)) + 1))
    sweep = "static-0,static-3,static-7,static-14,static-21" if args.quick else "static"
    names = args.policies.split(",") if args.policies else [*sweep.split(","), "planner-fifo", "planner-priority"]
    name = result_name("decision", args.quick)
    out = Path(args.out) if args.out else RESULTS / name
    result: dict = {"skus": skus, "days": days, "seeds": seeds}
    for scenario in args.scenarios.split(","):
        spec = ScenarioSpec(skus=skus, days=days, scenario=scenario)  # type: ignore[arg-type]
        if args.resume:
            report = run_lab(spec, names, seeds, out / scenario, resume=True, jobs=args.jobs)
        else:
            with tempfile.TemporaryDirectory(prefix="lab-") as tmp:
                report = run_lab(spec, names, seeds, Path(tmp), jobs=args.jobs)
        (out / scenario).mkdir(parents=True, exist_ok=True)
        (out / scenario / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        (out / scenario / "report.md").write_text(markdown(report))
        result[scenario] = targets(report)
        result[scenario]["run_seconds"] = {f"{r['policy']}/seed{r['seed']}": r["seconds"] for r in report["runs"]}
    save(name, result)


if __name__ == "__main__":
    main()
