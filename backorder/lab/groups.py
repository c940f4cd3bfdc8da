"""Where a policy gains or loses: each seed's figures split by the kind of SKU, as the
generator made it (``SkuSpec``): its demand pattern, whether its supplier changed pace
mid-run (and by how much), and its quoted lead time.

Within a group the static sweep is a curve of its own (the group's fill rate against
its mean on hand, one point per number of safety days), and each other policy is
placed on it as the whole site is (``report.compare_seed``): its inventory over the
curve's at its own fill rate, "n/a" off the curve (a group the policy fills beyond the
sweep's last point, or below its first). The groups' units add up to the site's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from backorder.lab.generator import SkuSpec
from backorder.lab.report import compare_seed

DIMENSIONS: dict[str, Callable[[SkuSpec], str]] = {
    "demand pattern": lambda s: s.pattern,
    "supplier pace": lambda s: "steady" if s.lead_shift_day is None else f"x{s.lead_shift_factor:g} mid-run",
    "quoted lead time": lambda s: f"{s.lead_time_days:g} d",
}


def split(specs: Sequence[SkuSpec], per_sku: Mapping[str, Mapping[str, Mapping[str, float]]]) -> dict[str, Any]:
    """For one seed: per dimension, per group (in name order), its SKUs and, per policy
    (``per_sku``: policy -> SKU -> the referee's ``per_sku`` figures), the group's
    ``fill_rate``, ``on_hand_units`` and, for a policy not of the sweep,
    ``inventory_vs_static_at_same_fill``."""
    out: dict[str, Any] = {}
    for dim, key in DIMENSIONS.items():
        members: dict[str, list[str]] = {}
        for s in specs:
            members.setdefault(key(s), []).append(s.sku)
        rows: dict[str, Any] = {}
        for group in sorted(members):
            figs: dict[str, dict[str, Any]] = {}
            for policy, skus in per_sku.items():
                got = [skus[k] for k in members[group] if k in skus]
                ordered = sum(f["units_ordered"] for f in got)
                figs[policy] = {
                    "fill_rate": round(sum(f["units_filled"] for f in got) / ordered, 4) if ordered else None,
                    "on_hand_units": round(sum(f["on_hand_units"] for f in got), 2),
                    "units_ordered": ordered,
                }
            for policy, row in compare_seed(figs).items():
                if not policy.startswith("static-"):
                    figs[policy]["inventory_vs_static_at_same_fill"] = row.get("inventory_vs_static_at_same_fill")
            rows[group] = {"skus": len(members[group]), "policies": figs}
        out[dim] = rows
    return out
