"""The queue index and supply curve against the walk they replace.

``walk`` below is the old way of answering a line's place and expected date: sort the
queue, then hand out available stock and open supply line by line from the head. It stays
here as the oracle: for random sequences of the rules' operations (the drivers of
test_rules_properties, plus re-dated requests), every read answer the daemon gives from
its maintained structures (``order.get``'s position and date, ``sku.get``'s dates,
``skus.board``'s coverage, the oldest wait) equals the walk's.
"""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st
from test_rules_properties import PROPS, Sim, hot_op_st, op_st, replayed, weights_st

from backorder.actors import board, sku_rules, snapshot, views
from backorder.actors.model import Sku, World
from backorder.actors.queue_index import LOAD, QueueIndex, SupplyCurve, covering_date, expected_date


def walk(s: Sku):
    """Per waiting line in service order: (line, units stock and open supply cover, its
    expected date or None when they do not cover it in full). The old read path, kept as
    the oracle."""
    supply = sorted(s.inbound.values(), key=lambda r: (r.expected_date, r.request_id))
    free = max(s.available, 0)
    idx = 0
    left = supply[0].open_qty if supply else 0
    for line in sorted(s.queue.lines(), key=lambda ln: ln.key):
        need = line.need
        take = min(free, need)
        free -= take
        need -= take
        got = take
        date = None if need else "now"
        while need and idx < len(supply):
            take = min(left, need)
            left -= take
            need -= take
            got += take
            date = supply[idx].expected_date
            if left == 0:
                idx += 1
                left = supply[idx].open_qty if idx < len(supply) else 0
        yield line, got, (None if need else date)


def board_by_walk(s: Sku) -> tuple[int, int, str | None]:
    covered_lines = covered_units = 0
    last_date = None
    for _line, got, date in walk(s):
        covered_units += got
        if date is None:
            break
        covered_lines += 1
        last_date = date
    return covered_lines, covered_units, last_date if s.queue and covered_lines == len(s.queue) else None


def assert_reads_match_walk(w: World) -> None:
    now = 0.0
    for s in w.skus.values():
        oracle = list(walk(s))
        assert [ln for ln, _, _ in oracle] == list(s.queue), "queue order"
        assert len(s.queue) == len(oracle)
        assert s.queue.units == sum(ln.need for ln, _, _ in oracle)
        for n, (line, _got, date) in enumerate(oracle):
            assert views.queue_place(w, line) == (n + 1, date), (line.order_id, line.line_no)
        assert w.expected_dates(s) == [date for _, _, date in oracle]
        row = board.board_row(s, now)
        assert (row["covered_lines"], row["covered_units"], row["covered_by"]) == board_by_walk(s)
        oldest = min((ln.t_order for ln, _, _ in oracle), default=None)
        assert (row["oldest_since"] is None) == (oldest is None)
        got = s.queue.oldest()
        assert (got.t_order if got else None) == oldest
        sku_rows = views.sku_view(w, s, now, 5)["waiting"]
        assert [r["expected_date"] for r in sku_rows] == [date for _, _, date in oracle[:5]]


class DatedSim(Sim):
    """The rules' drivers plus a supplier moving the date of an open request."""

    def op_confirm(self, name: str, pick: int, days: int) -> None:
        w = self.world
        s = w.skus.get(name)
        if s is None or not s.inbound:
            return
        rid = sorted(s.inbound)[pick % len(s.inbound)]
        date = f"2023-{11 + days // 30:02d}-{1 + days % 28:02d}"
        sku_rules.confirm(w, s, rid, date, self.emit, self.now)


confirm_st = st.tuples(st.just("confirm"), st.sampled_from(("A", "B")), st.integers(0, 3), st.integers(0, 59))


@PROPS
@given(
    mode=st.sampled_from(["fifo", "priority"]),
    weights=weights_st,
    ops=st.lists(st.one_of(op_st, hot_op_st, confirm_st), min_size=1, max_size=60),
)
def test_maintained_reads_equal_the_walk(mode, weights, ops):
    sim = DatedSim(mode, weights)
    for op in ops:
        sim.run(op)
        assert_reads_match_walk(sim.world)
    # the index and the supply curves rebuilt by a restart answer the same
    assert_reads_match_walk(replayed(sim.settings, sim.log))
    assert_reads_match_walk(snapshot.restore(sim.settings, snapshot.dump(sim.world)))


# --- the index alone, against a sorted list -----------------------------------------


class Item:
    __slots__ = ("key", "need", "qtoken", "t_order")

    def __init__(self, key: tuple, need: int, t_order: float) -> None:
        self.key, self.need, self.t_order, self.qtoken = key, need, t_order, 0


@PROPS
@given(
    seed=st.integers(0, 2**32),
    steps=st.integers(1, 4000),
    spread=st.sampled_from([1, 10, 1000]),
    tail=st.booleans(),
)
def test_index_equals_a_sorted_list(seed, steps, spread, tail):
    """Adds (in the middle or at the back), removals (head or anywhere, one or many at
    once), need changes and re-keys, over enough lines to split and empty buckets: order, places, units ahead,
    coverage and the oldest line equal a plain sorted list's."""
    rnd = random.Random(seed)
    q: QueueIndex[Item] = QueueIndex()
    queued: list[Item] = []
    arrival = 0
    for _ in range(steps):
        r = rnd.random()
        if r < 0.5 or not queued:
            arrival += 1
            first = arrival if tail else rnd.randrange(spread)
            item = Item((first, arrival), rnd.randint(1, 5), rnd.randrange(10**6))
            q.add(item)
            queued.append(item)
        elif r < 0.7:
            item = min(queued, key=lambda it: it.key) if rnd.random() < 0.5 else rnd.choice(queued)
            q.remove(item)
            q.remove(item)  # a second removal is a no-op
            queued.remove(item)
        elif r < 0.73:  # lines that leave together: a fill's head (cut whole) or any of them
            k = rnd.randint(1, min(len(queued), 3 * LOAD))
            head = rnd.random() < 0.7
            batch = sorted(queued, key=lambda it: it.key)[:k] if head else rnd.sample(queued, k)
            q.remove_lines(batch)
            for item in batch:
                queued.remove(item)
        elif r < 0.95:
            item = rnd.choice(queued)
            item.need = rnd.randint(1, 9)
            q.update(item)
        else:
            q.rekey(lambda it: (-it.key[0], it.key[1]))
    ordered = sorted(queued, key=lambda it: it.key)
    assert list(q) == ordered and len(q) == len(ordered)
    assert q.first(7) == ordered[:7]
    assert q.units == sum(it.need for it in ordered)
    if ordered:
        assert q.head() is ordered[0] is q[0]
        assert q.oldest().t_order == min(it.t_order for it in ordered)
    ahead = 0
    for n, it in enumerate(ordered):
        if n % 37 == 0 or n == len(ordered) - 1:
            assert q.place(it) == (n, ahead)
        ahead += it.need
    for supply in {0, 1, q.units // 3, q.units // 2, q.units - 1, q.units, q.units + 5}:
        total = fits = 0
        for it in ordered:
            if total + it.need > supply:
                break
            total += it.need
            fits += 1
        assert q.covered(supply) == fits, supply
    assert all(it.qtoken == 0 for it in set(ordered) ^ set(queued))


def test_a_queue_deeper_than_many_buckets_keeps_places_after_draining_the_head():
    q: QueueIndex[Item] = QueueIndex()
    items = [Item((i,), 1 + i % 3, float(i)) for i in range(LOAD * 9)]
    for it in items:
        q.add(it)
    for it in items[: LOAD * 4 + 3]:  # a receipt serving the head, bucket after bucket
        q.remove(it)
    rest = items[LOAD * 4 + 3 :]
    assert q.place(rest[-1]) == (len(rest) - 1, sum(it.need for it in rest[:-1]))
    assert q.oldest() is rest[0]


def test_supply_curve_dates():
    class Req:
        def __init__(self, rid: str, date: str, qty: int) -> None:
            self.request_id, self.expected_date, self.open_qty = rid, date, qty

    curve = SupplyCurve([Req("PO-2", "2024-03-10", 5), Req("PO-1", "2024-03-10", 3), Req("PO-3", "2024-03-01", 4)])
    assert curve.cumulative == [4, 7, 12] and curve.total == 12
    assert [curve.date_for(u) for u in (1, 4, 5, 12, 13)] == ["2024-03-01"] * 2 + ["2024-03-10"] * 2 + [None]
    assert expected_date(2, curve, 0, 2) == "now"
    assert expected_date(2, curve, 1, 2) == "2024-03-01"  # one unit from the first request
    assert expected_date(2, curve, 13, 2) is None
    assert covering_date(2, curve, 14) == "2024-03-10" and covering_date(2, curve, 15) is None


def test_compacting_the_oldest_heap_leaves_it_in_the_collectors_frozen_generation():
    """The daemon freezes whatever survives a young collection (daemon/collector.py): a
    compacted heap that were a new list would be scanned entry by entry by the next one
    (after the daily sweep, one 17-20 ms collection on bench/planner.py's site). In place,
    it stays frozen; its order is right."""
    import gc

    q: QueueIndex[Item] = QueueIndex()
    items = [Item((i,), 1, float(i)) for i in range(2000)]
    for it in items:
        q.add(it)
    for it in items[:1500]:  # served from the head: their heap entries stay (lazy deletion)
        q.remove(it)
    gc.collect()
    gc.freeze()
    try:
        q.forget_removed()
        young = {id(o) for o in gc.get_objects(0)}
        assert len(q._oldest) == 500 and id(q._oldest) not in young
    finally:
        gc.unfreeze()
    assert q.oldest() is items[1500]
    for it in items[1500:1510]:
        q.remove(it)
    assert q.oldest() is items[1510]  # still a heap
