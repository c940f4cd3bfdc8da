"""The KPI aggregates (backorder/actors/kpi.py) as plain sync tests: the percentile of a
large sorted list and a few extra values without merging them, and the edges of the
backorder fill rate's target."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from backorder.actors.kpi import DAY_S, HOUR_S, Kpi, _rank

HOURS = st.floats(min_value=0, max_value=1e5, allow_nan=False)


@given(st.lists(HOURS, max_size=60), st.lists(HOURS, max_size=8), st.sampled_from([0.5, 0.9, 0.01, 1.0]))
def test_rank_of_two_sorted_lists_is_the_nearest_rank_of_their_union(a, b, q):
    a, b = sorted(a), sorted(b)
    union = sorted(a + b)
    expected = round(union[max(math.ceil(q * len(union)), 1) - 1], 2) if union else None
    assert _rank(a, b, q) == expected


def fill(k: Kpi, now: float) -> tuple[int, int]:
    w = next(w for w in k.report(now, "2099-01-01")["backorder_fill_rate_lines"]["windows"] if w["window"] == "all")
    return w["numerator"], w["denominator"]


def test_a_line_filled_at_its_target_is_a_hit_a_second_later_a_miss_counted_at_the_target():
    t0 = 100 * DAY_S
    k = Kpi(48)
    k.line_backordered(("O1", 1), t0, 2)
    k.line_backordered(("O2", 1), t0, 2)
    k.line_progress(("O1", 1), t0 + 48 * HOUR_S, 0)  # exactly at the target
    assert fill(k, t0 + 48 * HOUR_S) == (1, 1)  # O2 is not past its target yet: not counted
    assert fill(k, t0 + 48 * HOUR_S + 1) == (1, 2)  # now it is: a miss
    k.line_progress(("O2", 1), t0 + 48 * HOUR_S + 1, 1)  # one unit, too late
    k.line_gone(("O2", 1), t0 + 60 * HOUR_S)  # then cancelled: still the one miss
    assert fill(k, t0 + 100 * DAY_S) == (1, 2)
    units = k.report(t0 + 100 * DAY_S, "2099-01-01")["backorder_fill_rate_units"]["windows"][2]
    assert (units["numerator"], units["denominator"]) == (2, 4)  # the late unit does not count
    # both counted on the day of their outcome: the target's day for the miss
    assert {d: b.bo_lines_due for d, b in k.days.items()} == {102: 2}


def test_a_clock_that_went_back_still_finds_every_line_past_target():
    k = Kpi(1)
    k.line_backordered(("O1", 1), 10 * HOUR_S, 1)
    k.line_backordered(("O2", 1), 5 * HOUR_S, 1)  # earlier than the line before it
    assert not k.pending_sorted
    assert fill(k, 7 * HOUR_S) == (0, 1)  # O2 is past its target, O1 is not


KEYS = st.integers(0, 6).map(lambda i: (f"O{i}", 1))


@given(
    backordered=st.lists(st.tuples(KEYS, st.integers(0, 5 * 86400), st.integers(1, 5)), max_size=8),
    progress=st.lists(st.tuples(KEYS, st.integers(0, 5)), max_size=12),
    at=st.integers(0, 8 * 86400),
)
def test_the_progress_of_many_lines_at_once_counts_as_line_by_line(backordered, progress, at):
    """A fill reports its lines' progress in one call (``lines_progress``): the same
    aggregates, pending lines and flags as one ``line_progress`` per line in that order,
    hits, late fills and partial allocations mixed."""
    t0 = 100 * DAY_S
    one_by_one, batched = Kpi(48), Kpi(48)
    for k in (one_by_one, batched):
        for key, after, units in backordered:
            k.line_backordered(key, t0 + after, units)
    for key, need in progress:
        one_by_one.line_progress(key, t0 + at, need)
    batched.lines_progress(progress, t0 + at)
    a, b = one_by_one.dump(), batched.dump()
    assert sorted(a.pop("days")) == sorted(b.pop("days"))
    assert a == b
    assert (one_by_one.pending_sorted, one_by_one._last_due) == (batched.pending_sorted, batched._last_due)
