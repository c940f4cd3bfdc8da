"""The policies the lab compares, as what the daemon is told: config lines and requests.

* ``static-N``: min/max with FIFO allocation as an ERP sets it from history (Tryton,
  Odoo and ERPNext default to this): reorder point = mean daily demand x quoted lead time
  + N safety days x mean daily demand; order-up-to = reorder point + a review quantity
  (``REVIEW_DAYS`` of mean demand).
* ``planner-fifo`` / ``planner-priority``: the SKUs start from the same values as
  static-7, in ``mode = "auto"`` with the site's ``[planner]`` on, so the planner tunes
  them; the second also allocates by priority (``policy.set``). A daemon that does not know
  the planner (a config error at start, ``unknown_op``, a refused ``mode``) makes the
  policy "not available", not a failure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from backorder.lab.generator import SkuSpec

REVIEW_DAYS = 14.0  # the order-up-to's review quantity, in days of mean demand
PLANNER_START_SAFETY_DAYS = 7  # the values a planner SKU starts from (static-7's)
STATIC_SWEEP = (0, 1, 2, 3, 5, 7, 10, 14, 21, 28)
SERVICE_LEVEL = 0.97
SOURCE = "supplier:lab"


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    safety_days: int  # static values (for a planner policy: its starting values)
    planner: bool = False
    allocation: str = "fifo"

    def config(self) -> str:
        """Config lines this policy adds to the site's."""
        out = [f'[allocation]\nmode = "{self.allocation}"\n']
        if self.planner:
            # the site's target; service_target as a user gets it by default
            out.append(f"[planner]\nenabled = true\ninterval_hours = 24\nservice_level = {SERVICE_LEVEL}\n")
        return "\n".join(out)


def parse(names: list[str]) -> list[Policy]:
    """``static`` (the whole sweep), ``static-N``, ``planner-fifo``, ``planner-priority``."""
    out: list[Policy] = []
    for name in names:
        if name == "static":
            out += [Policy(f"static-{n}", n) for n in STATIC_SWEEP]
        elif name.startswith("static-") and name[7:].isdigit():
            out.append(Policy(name, int(name[7:])))
        elif name == "planner-fifo":
            out.append(Policy(name, PLANNER_START_SAFETY_DAYS, planner=True))
        elif name == "planner-priority":
            out.append(Policy(name, PLANNER_START_SAFETY_DAYS, planner=True, allocation="priority"))
        else:
            raise ValueError(f"unknown policy {name!r} (static, static-N, planner-fifo, planner-priority)")
    return list({p.name: p for p in out}.values())  # each once, in the order first named


def static_levels(daily: float, lead_time_days: float, safety_days: float) -> tuple[int, int]:
    """(reorder point, order-up-to) of an ERP's min/max rule from mean daily demand."""
    reorder_point = math.ceil(daily * lead_time_days + safety_days * daily)
    order_up_to = reorder_point + max(1, math.ceil(daily * REVIEW_DAYS))
    return reorder_point, order_up_to


def configure_request(policy: Policy, s: SkuSpec, daily: float) -> dict[str, Any]:
    """The ``sku.configure`` request that sets one SKU up under ``policy``."""
    rop, out = static_levels(daily, s.lead_time_days, policy.safety_days)
    req = {
        "op": "sku.configure",
        "sku": s.sku,
        "reorder_point": rop,
        "order_up_to": out,
        "safety_stock": 0,
        "lead_time_days": s.lead_time_days,
        "source": SOURCE,
    }
    return req


def handover_request(s: SkuSpec) -> dict[str, Any]:
    """The ``sku.configure`` that hands a SKU, set up with static values, to the planner."""
    return {"op": "sku.configure", "sku": s.sku, "mode": "auto"}
