"""How often each kind of delivery promise is kept: what a promise's ``confidence`` means.

A promise's kind is what its date rests on: the site's ``stock``, an open request of one
supplier or transfer source (``po:SUPPLIER``, ``transfer:SOURCE``: a source's record is
its own), or the ``lead_time`` alone. A promise is kept when its line ships in full on or
before its first promised ship-by day, counted as it ships; it is missed once that day
has ended without it (``deadline``), counted at the first event after the day (a late line
that ships later is certain to miss: waiting for it to ship would hide the misses of every
line still late, and the record would lean towards kept). A line cancelled (or amended
away) before its day ended counts nothing, as a promise the customer withdrew; one
cancelled after it was missed stays missed.

A new promise's confidence is the mean of a Beta posterior for its kind: the prior is
centred on the rule-of-thumb value ``promise_rules`` gives the promise (0.98 stock, 0.9 a
supplier's confirmed word, the percentile of a measured lead time, 0.6 otherwise) with
the weight of ``[promises] confidence_prior_weight`` promises, so a site with no outcomes
yet promises as before and its own record takes over as it grows. The counts are kept by
the model from ``lines_promised``, ``units_shipped`` and the times of the events (no event
of their own), so a replay rebuilds them. Pure.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING

from backorder.timeutil import parse_ts

if TYPE_CHECKING:
    from backorder.actors.model import Request

DAY = 86400.0
# ``Promise.source`` besides a request id (the model's STOCK and LEAD_TIME)
_NOT_A_REQUEST = frozenset(("stock", "lead_time"))
_KINDS: dict[tuple[str, str], str] = {}  # (request kind, source) -> the promise kind


def kind_of(source: str, requests: Mapping[str, Request]) -> str:
    """The kind of a promise whose units come from ``source`` (``stock``, ``lead_time`` or
    an open request's id). Every promise of a kind shares one string."""
    if source in _NOT_A_REQUEST:
        return source
    r = requests.get(source)
    if r is None:  # (a promise always names an open request: a guard, not a case)
        return "request"
    key = (r.kind, r.source)
    kind = _KINDS.get(key)
    if kind is None:  # a site has few sources: one string each, not one per promise
        kind = _KINDS[key] = sys.intern(f"{r.kind}:{r.source}")
    return kind


@lru_cache(maxsize=4096)
def deadline(promised_date: str) -> float:
    """The engine time a promise of ship-by day ``promised_date`` is missed at, unless its
    line shipped in full before: the end of that day, UTC (any time on the day counts)."""
    return parse_ts(promised_date[:10]) + DAY


def kept(shipped_ts: float, promised_date: str) -> bool:
    """Whether a line shipped in full at ``shipped_ts`` kept its promise."""
    return shipped_ts < deadline(promised_date)


@lru_cache(maxsize=4096)  # asked once per promised line; the counts move slowly
def posterior(prior: float, weight: float, kept: int, missed: int) -> float:
    """The Beta posterior mean (three decimals) of a kind with ``kept`` and ``missed``
    outcomes, its prior centred on ``prior`` (0-1) with the weight of ``weight`` promises."""
    return round((prior * weight + kept) / (weight + kept + missed), 3)
