"""At each new engine day, the SKUs whose held units a loan may now take settle again.

No-harm lending (``allocation_plan.lend``) reads an overdue date as today: when the date
changes, a loan refused the day before (the lender's units would have come back only on
the new day, later than its order, which waits on a late supply and may complete any
moment) may move nothing on the new day. A SKU settles on its own events only (an order,
a receipt, a count, a cancellation): without this, such a loan waits for the SKU's next
one, days for a slow SKU. At midnight engine time (``retention.at_midnight``: the stepped
clock's agenda, or a sleep on the other clocks, as the retention sweep), each SKU
``sku_rules.may_lend`` names gets a ``Settle``; a settle that has nothing to lend or
allocate journals nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from backorder.actors import sku_rules
from backorder.actors.engine import SYSTEM
from backorder.actors.messages import Settle
from backorder.daemon.retention import at_midnight
from backorder.timeutil import iso_date

if TYPE_CHECKING:
    from backorder.actors.engine import Engine
    from backorder.actors.router import Router


class LendingDay:
    def __init__(self, engine: Engine, router: Router) -> None:
        self.engine = engine
        self.router = router

    async def settle(self) -> None:
        """Ask each SKU that may now lend to settle (its actor journals what it decides)."""
        corr = f"lending-day-{iso_date(self.engine.now())}"
        for sku in sku_rules.may_lend(self.engine.world):
            self.router.send(sku, Settle(corr=corr, actor=SYSTEM))

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        await at_midnight(self.engine.clock, self.settle, task_status=task_status)
