"""Compare the policies of a lab run: against static-7, at matched inventory and at
matched fill rate, seed by seed (paired: every policy of a seed saw the same site).

The static sweep gives, per seed, a curve of fill rate against mean on-hand units (one
point per number of safety days). A policy's fill rate is compared with the curve's at
the policy's own inventory, and its inventory with the curve's at the policy's own fill
rate (linear interpolation between sweep points; outside the sweep: "n/a"), so no policy
wins by holding more stock.
"""

from __future__ import annotations

from typing import Any

import numpy as np

BASELINE = "static-7"
# the figures of the table, in order: key, column title, format
COLUMNS = (
    ("fill_rate", "fill rate", "{:.1%}"),
    ("lines_backordered", "lines backordered", "{:.1%}"),
    ("backorder_age_p50_days", "age p50 (d)", "{:.2f}"),
    ("backorder_age_p95_days", "age p95 (d)", "{:.2f}"),
    ("on_hand_units", "on hand (units)", "{:,.0f}"),
    ("on_hand_value", "on hand (value)", "{:,.0f}"),
    ("purchase_orders", "POs raised", "{:,.0f}"),
    ("reorder_lead_days_mean", "reorder lead (d)", "{:.1f}"),
    ("orders_cancelled", "cancelled orders", "{:,.0f}"),
    ("shipped_by_promise", "shipped by promise", "{:.1%}"),
    ("stranded_received_share", "received units stranded", "{:.2%}"),
    ("stranded_expected_received_share", "received units stranded (issue's)", "{:.2%}"),
    ("stranded_past_supply_received_share", "stranded past next supply (hindsight)", "{:.2%}"),
)


def _static_curve(runs: dict[str, dict[str, Any]]) -> tuple[np.ndarray, np.ndarray] | None:
    pts = sorted(
        (f["on_hand_units"], f["fill_rate"])
        for name, f in runs.items()
        if name.startswith("static-") and f.get("fill_rate") is not None
    )
    if len(pts) < 2:
        return None
    inv = np.array([p[0] for p in pts])
    fill = np.maximum.accumulate(np.array([p[1] for p in pts]))  # more stock never fills less
    return inv, fill


def _interp(x: float, xs: np.ndarray, ys: np.ndarray) -> float | None:
    if x < xs[0] or x > xs[-1]:
        return None
    return float(np.interp(x, xs, ys))


def _inventory_at_fill(fill: float, inv: np.ndarray, fills: np.ndarray) -> float | None:
    """The sweep's inventory at a fill rate (the first point reaching it on a flat part)."""
    if fill < fills[0] or fill > fills[-1]:
        return None
    i = int(np.searchsorted(fills, fill, side="left"))
    if i == 0 or fills[i] == fill:
        return float(inv[i])
    f0, f1 = fills[i - 1], fills[i]
    return float(inv[i - 1] + (inv[i] - inv[i - 1]) * (fill - f0) / (f1 - f0))


def _ratio(a: Any, b: Any) -> float | None:
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)) or not b:
        return None
    return round(a / b - 1.0, 4)


def compare_seed(runs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per policy of one seed: its changes against static-7 and the matched comparisons."""
    base = runs.get(BASELINE)
    curve = _static_curve(runs)
    out: dict[str, dict[str, Any]] = {}
    for name, f in runs.items():
        row: dict[str, Any] = {}
        if base is not None:
            for key in ("fill_rate", "on_hand_units", "backorder_age_p95_days", "lines_backordered", "purchase_orders"):
                row[f"{key}_vs_baseline"] = _ratio(f.get(key), base.get(key))
        if curve is not None and f.get("fill_rate") is not None:
            inv, fills = curve
            static_fill = _interp(f["on_hand_units"], inv, fills)
            static_inv = _inventory_at_fill(f["fill_rate"], inv, fills)
            row["static_fill_at_same_inventory"] = None if static_fill is None else round(static_fill, 4)
            row["fill_gain_at_same_inventory"] = None if static_fill is None else round(f["fill_rate"] - static_fill, 4)
            row["static_inventory_at_same_fill"] = None if static_inv is None else round(static_inv, 2)
            row["inventory_vs_static_at_same_fill"] = _ratio(f["on_hand_units"], static_inv)
        out[name] = row
    return out


def _mean(values: list[Any]) -> float | None:
    xs = [v for v in values if isinstance(v, (int, float))]
    return float(np.mean(xs)) if xs else None


def summarise(by_seed: dict[int, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """Mean figures and comparisons over the seeds, per policy (with min and max of each
    comparison, so a reader sees whether a gain holds on every seed)."""
    comparisons = {seed: compare_seed(runs) for seed, runs in by_seed.items()}
    names: list[str] = []
    for runs in by_seed.values():
        names += [n for n in runs if n not in names]
    policies: dict[str, Any] = {}
    for name in names:
        figs = [runs[name] for runs in by_seed.values() if name in runs]
        mean = {}
        for key, _, _ in COLUMNS:
            values = [f.get(key) for f in figs]
            mean[key] = _mean(values) if any(isinstance(v, (int, float)) for v in values) else values[0]
        comp: dict[str, Any] = {}
        for key in sorted({k for c in comparisons.values() for k in c.get(name, {})}):
            values = [c[name].get(key) for c in comparisons.values() if name in c]
            xs = [v for v in values if isinstance(v, (int, float))]
            comp[key] = {"mean": _mean(xs), "min": min(xs) if xs else None, "max": max(xs) if xs else None}
        policies[name] = {"seeds": len(figs), "mean": mean, "compared": comp}
    return {"baseline": BASELINE, "policies": policies, "per_seed": comparisons}


def combine(reports: list[dict[str, Any]], drop: frozenset[str] = frozenset()) -> dict[str, Any]:
    """One report from several of the same site spec, each with its own seeds: the full
    benchmark run in parts (another day, another machine, a later seed). Every run
    keeps its own record (its code digest among them), and the summary is computed again
    over every seed as ``run_lab`` would. ``drop`` leaves out policies that are not part
    of the sweep (the sweep makes the curve every other policy is placed on, so it stays
    whole). Raises ``ValueError`` for reports of different sites or a (policy, seed) run
    given twice."""
    if not reports:
        raise ValueError("no report to combine")
    if bad := sorted(n for n in drop if n.startswith("static-")):
        raise ValueError(f"the static sweep cannot be dropped ({', '.join(bad)}): it is the curve of the comparisons")
    spec = reports[0]["spec"]
    if any(r["spec"] != spec for r in reports[1:]):
        raise ValueError("the reports are of different sites (their spec differs)")
    names: list[str] = []
    runs: dict[tuple[int, str], dict[str, Any]] = {}
    groups: dict[str, Any] = {}
    unavailable: dict[str, str] = {}
    for r in reports:
        names += [n for n in r["policies"] if n not in names and n not in drop]
        unavailable |= {n: why for n, why in r.get("unavailable", {}).items() if n not in drop}
        for run in r["runs"]:
            key = (run["seed"], run["policy"])
            if key in runs:
                raise ValueError(f"{run['policy']} seed {run['seed']} is in two reports")
            if run["policy"] not in drop:
                runs[key] = run
        groups |= {str(seed): dims for seed, dims in r.get("groups", {}).items()}
    seeds = sorted({seed for seed, _ in runs})
    ordered = [runs[seed, name] for seed in seeds for name in names if (seed, name) in runs]
    by_seed: dict[int, dict[str, dict[str, Any]]] = {}
    for run in ordered:
        by_seed.setdefault(run["seed"], {})[run["policy"]] = run["figures"]
    out: dict[str, Any] = {
        "spec": spec,
        "seeds": seeds,
        "policies": names,
        "unavailable": unavailable,
        "runs": ordered,
        "summary": summarise(by_seed),
    }
    if groups:  # each group's policies in the report's order, whatever order a part ran them in
        out["groups"] = {
            str(seed): {
                dim: {
                    group: {**row, "policies": {n: row["policies"][n] for n in names if n in row["policies"]}}
                    for group, row in rows.items()
                }
                for dim, rows in groups[str(seed)].items()
            }
            for seed in seeds
            if str(seed) in groups
        }
    return out


COMPARED = (  # the comparison table's columns after the policy, in order
    "fill_gain_at_same_inventory",
    "inventory_vs_static_at_same_fill",
    "backorder_age_p95_days_vs_baseline",
    "lines_backordered_vs_baseline",
    "purchase_orders_vs_baseline",
)


def _comparison_row(label: str, values: dict[str, Any]) -> str:
    """One row of the comparison table: ``values`` maps each of ``COMPARED`` to a ratio
    (or None, shown "n/a"); the first is a difference of fill rates, in points."""
    cells = ["n/a" if values.get(k) is None else f"{values[k]:+.1%}" for k in COMPARED]
    cells[0] += " (points)"
    return f"| {label} | " + " | ".join(cells) + " |"


def _calibration_rows(report: dict[str, Any]) -> list[str]:
    """Per run with promises: its confidence buckets (lines, mean confidence, share shipped
    by promise) and Brier score, so a reader sees whether a promise's confidence holds."""
    out: list[str] = []
    for run in report["runs"]:
        table = run["figures"].get("promise_calibration")
        if not isinstance(table, list):
            continue
        if not out:
            out = [
                "",
                "| run | confidence | lines | mean confidence | shipped by promise |",
                "|---|---|---|---|---|",
            ]
        name = f"{run['policy']} seed {run['seed']}"
        for row in table:
            mean, kept = row["mean_confidence"], row["shipped_by_promise"]
            out.append(
                f"| {name} | {row['bucket']} | {row['lines']:,} | {'n/a' if mean is None else f'{mean:.3f}'} "
                f"| {'n/a' if kept is None else f'{kept:.1%}'} |"
            )
        out.append(f"| {name} | Brier score | | {run['figures']['promise_brier']} | |")
    return out


def group_tables(by_seed: dict[Any, dict[str, Any]]) -> list[str]:
    """The split by kind of SKU (``backorder.lab.groups``, ``lab --by-group``): one table
    per seed and dimension, each group's fill rate / mean on hand under each policy and
    a non-sweep policy's inventory against the group's own sweep in brackets."""
    lines: list[str] = []
    for seed, dims in by_seed.items():
        for dim, rows in dims.items():
            policies = list(next(iter(rows.values()))["policies"]) if rows else []
            lines += [
                "",
                f"Seed {seed}, by {dim}: fill rate / mean on hand (inventory vs the group's sweep at the same fill)",
                "",
                "| group | SKUs | units ordered | " + " | ".join(policies) + " |",
                "|---" * (3 + len(policies)) + "|",
            ]
            for group, row in rows.items():
                cells = []
                for p in policies:
                    f = row["policies"][p]
                    cell = "n/a" if f["fill_rate"] is None else f"{f['fill_rate']:.1%} / {f['on_hand_units']:,.0f}"
                    if "inventory_vs_static_at_same_fill" in f:
                        v = f["inventory_vs_static_at_same_fill"]
                        cell += " (off the sweep)" if v is None else f" ({v:+.0%})"
                    cells.append(cell)
                ordered = max(f["units_ordered"] for f in row["policies"].values())
                lines.append(f"| {group} | {row['skus']} | {ordered:,} | " + " | ".join(cells) + " |")
    return lines


def markdown(report: dict[str, Any]) -> str:
    """The report as markdown: one row per policy (means over the seeds), then the
    comparisons of every policy that is not part of the static sweep."""
    summary = report["summary"]
    head = "| policy | " + " | ".join(title for _, title, _ in COLUMNS) + " |"
    rows = [head, "|" + "---|" * (len(COLUMNS) + 1)]
    for name, p in summary["policies"].items():
        cells = []
        for key, _, fmt in COLUMNS:
            v = p["mean"].get(key)
            cells.append("n/a" if v is None else fmt.format(v) if isinstance(v, (int, float)) else str(v))
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    for name, why in report.get("unavailable", {}).items():
        rows.append(f"| {name} | not available: {why} |" + " |" * (len(COLUMNS) - 1))
    spec = report["spec"]
    lines = [
        f"Scenario `{spec['scenario']}`: {spec['skus']} SKUs x {spec['days']} days "
        f"(+{spec['warmup_days']} warm-up), seeds {', '.join(map(str, report['seeds']))}; "
        "means over the seeds.",
        "",
        *rows,
    ]
    others = {n: p for n, p in summary["policies"].items() if not n.startswith("static-")}
    if others:
        lines += [
            "",
            "| policy vs static sweep | fill at same inventory | inventory at same fill "
            "| p95 age vs static-7 | lines backordered vs static-7 | POs vs static-7 |",
            "|---|---|---|---|---|---|",
        ]
        for name, p in others.items():
            lines.append(_comparison_row(name, {k: p["compared"].get(k, {}).get("mean") for k in COMPARED}))
        if len(report["seeds"]) > 1:  # the same seed by seed: does a mean hold on every seed?
            for seed, comparisons in summary["per_seed"].items():
                lines += [_comparison_row(f"{n} seed {seed}", c) for n, c in comparisons.items() if n in others]
    bad = [
        f"{run['policy']} seed {run['seed']}: {inv}"
        for run in report["runs"]
        for inv, r in run["figures"]["invariants"].items()
        if not r["ok"]
    ]
    lines += _calibration_rows(report)
    if report.get("groups"):
        lines += group_tables(report["groups"])
    lines += ["", "Invariants: " + ("all held on every run." if not bad else "VIOLATED: " + "; ".join(bad))]
    return "\n".join(lines) + "\n"
