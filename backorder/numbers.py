"""Hard numeric ceilings shared by the wire schema, the settings and the journal's events.

Every integer the daemon accepts or records stays within ±(2**53 - 1): JSON consumers that
read numbers as doubles (JavaScript, jq, spreadsheets) stay exact, SQLite's int64 holds
it, and the arithmetic on it (sums of positions, ``qty / pack_size`` as a float) cannot
overflow. These are ceilings of the schema; the operator's limits (``[limits]
max_quantity``, ``max_money``) are far below them and checked where requests are decided.
"""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

MAX_INT = 2**53 - 1
# A priority weight: hours of waiting per unit of its factor. 1e6 hours is over a century;
# with quantities and prices under their ceilings the rank stays far inside a double's range.
MAX_WEIGHT = 1e6
# The largest [limits] max_money an operator may set (a unit price, in currency units).
MAX_MONEY = 10**15

Int53 = Annotated[int, Meta(ge=-MAX_INT, le=MAX_INT)]
Count53 = Annotated[int, Meta(ge=0, le=MAX_INT)]
Positive53 = Annotated[int, Meta(gt=0, le=MAX_INT)]
