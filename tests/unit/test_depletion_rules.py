"""The stock-out projection and the depletion causes (backorder/actors/depletion_rules.py),
on plain numbers and on a model built by the real rules."""

from __future__ import annotations

import math

import msgspec
from hypothesis import given
from hypothesis import strategies as st
from model_support import policy_tuned, recording_world

from backorder import protocol as p
from backorder.actors import depletion_rules as dr
from backorder.actors import events as ev
from backorder.actors import notice_rules, order_rules, promise_rules, sku_rules
from backorder.actors.model import World

T0 = 1_709_251_200.0  # 2024-03-01T00:00:00Z
DAY = 86400.0


def test_stock_drains_at_the_rate():
    assert dr.days_to_stockout(10, 2.0, []) == 5.0


def test_supply_refills_before_the_level_reaches_zero():
    # 10 - 2*3 = 4 left on day 3, +10 -> 14, gone 7 days later
    assert dr.days_to_stockout(10, 2.0, [(3.0, 10.0)]) == 10.0


def test_supply_after_the_stockout_does_not_move_it():
    assert dr.days_to_stockout(4, 2.0, [(5.0, 100.0)]) == 2.0


def test_overdue_supply_counts_as_arriving_now():
    assert dr.days_to_stockout(-5, 1.0, [(-3.0, 10.0)]) == 5.0


def test_waiting_demand_beyond_stock_is_a_stockout_now_whatever_the_rate():
    assert dr.days_to_stockout(-1, 0.0, []) == 0.0
    assert dr.days_to_stockout(0, 1.0, []) == 0.0
    assert dr.days_to_stockout(-math.inf, 1.0, []) == 0.0


def test_no_demand_means_no_date():
    assert dr.days_to_stockout(0, 0.0, []) is None
    assert dr.days_to_stockout(10, 0.0, [(1.0, 5.0)]) is None


def test_pathological_rates_give_no_date_and_no_overflow():
    for rate in (1e-300, 5e-324, -1.0, math.nan, math.inf, -math.inf):
        assert dr.days_to_stockout(10, rate, []) is None, rate
    assert dr.days_to_stockout(1e308, 1e-8, []) is None  # 1e316 days: past the horizon, not an OverflowError
    assert dr.days_to_stockout(math.inf, 1.0, []) is None
    assert dr.days_to_stockout(2**63, 1.0, [(1.0, 2**63)]) is None


def test_pathological_supply_is_ignored():
    bad = [(math.nan, 5.0), (1.0, math.inf), (1.0, math.nan), (1.0, -4.0), (1e300, 5.0), (math.inf, 5.0)]
    assert dr.days_to_stockout(10, 2.0, bad) == 5.0


finite = st.floats(allow_nan=True, allow_infinity=True)
supply = st.lists(st.tuples(finite, finite), max_size=8)


@given(net=finite, rate=finite, supply=supply)
def test_any_input_gives_none_or_a_day_within_the_horizon(net, rate, supply):
    days = dr.days_to_stockout(net, rate, supply)
    assert days is None or 0.0 <= days <= dr.HORIZON_DAYS


@given(
    net=st.integers(-1000, 1000),
    rate=st.floats(0.01, 100),
    supply=st.lists(st.tuples(st.floats(-5, 400), st.floats(0, 1000)), max_size=6),
    more=st.tuples(st.floats(0, 400), st.floats(1, 1000)),
)
def test_more_supply_never_brings_the_stockout_earlier(net, rate, supply, more):
    before = dr.days_to_stockout(net, rate, supply)
    after = dr.days_to_stockout(net, rate, [*supply, more])
    if before is not None and after is not None:
        assert after >= before - 1e-9
    assert not (before is None and after is not None)


# --- on the model --------------------------------------------------------------------


def world(mode: str = "fifo", rush: float = 24.0, **sku) -> tuple[World, list[ev.Event]]:
    return recording_world(
        {
            "skus": {"A": {"reorder_point": 0, "order_up_to": 10, **sku}},
            "notifications": {"routes": {"*": "email"}},
            "allocation": {"mode": mode, "weights": {"rush": rush}},
        }
    )


def order(w: World, ext: str, qty: int, now: float = T0, **fields):
    req = msgspec.convert(
        {"op": "order.submit", "channel": "web", "external_id": ext, "lines": [{"sku": "A", "qty": qty}], **fields},
        p.OrderSubmit,
    )
    o, _ = order_rules.submit(w, req, w.emit, now)
    sku_rules.settle(w, w.skus["A"], w.emit, now)
    promise_rules.promise_order(w, o, w.emit, now)  # as the order actor does before it replies
    return o


def depletion_notices(log):
    return [e for e in log if isinstance(e, ev.NoticeQueued) and e.kind == "depletion"]


def test_the_recent_demand_rate_drains_the_stock():
    w, _ = world()
    s = w.skus["A"]
    sku_rules.receive(w, s, 100, None, w.emit, T0 - 20 * DAY)
    order(w, "past", 56, T0 - 10 * DAY, email="a@x.example")  # 56 units in 28 days: 2 a day
    proj = dr.project(w, s, T0)
    assert proj is not None
    assert (proj.basis, proj.rate, proj.net, proj.days, proj.date) == ("recent", 2.0, 44, 22.0, "2024-03-23")
    assert dr.stockouts(w, T0) == []  # 22 days is beyond the 7-day lead time
    sku_rules.configure(w, s, {"lead_time_days": 30.0}, w.emit, T0)
    (listed,) = dr.stockouts(w, T0)
    assert (listed.sku, listed.date, listed.days, listed.lead_time_days) == ("A", "2024-03-23", 22.0, 30.0)
    assert dr.project(w, s, T0 + 19 * DAY) is None  # the order left the 28-day window: no demand


def test_the_planner_forecast_wins_over_the_recent_rate():
    w, _ = world()
    s = w.skus["A"]
    sku_rules.receive(w, s, 30, None, w.emit, T0)
    w.evolve(policy_tuned("A", T0, daily_mean=10.0, lead_time_days=5.0, lead_time_sd=0.5))
    proj = dr.project(w, s, T0)
    assert proj is not None
    assert (proj.basis, proj.rate, proj.days, proj.lead_time_days) == ("forecast", 10.0, 3.0, 5.0)
    assert [x.sku for x in dr.stockouts(w, T0)] == ["A"]


def test_a_sku_without_demand_has_no_stockout_date():
    w, _ = world()
    assert dr.project(w, w.skus["A"], T0) is None


def test_priority_demand_ahead_of_a_waiting_line_warns_its_customer_once():
    w, log = world(mode="priority", rush=1000.0)
    s = w.skus["A"]
    sku_rules.receive(w, s, 60, None, w.emit, T0 - 20 * DAY)
    order(w, "past", 56, T0 - 10 * DAY, email="r@x.example", rush=True)  # 2 rush units a day
    waiting = order(w, "o1", 14, email="a@x.example")  # backordered, PO of 20 due 03-08
    assert w.promises[(waiting.order_id, 1)].told == "2024-03-09"  # + the handling day
    notice_rules.depletion(w, w.emit, T0)
    (notice,) = depletion_notices(log)
    assert (notice.order_id, notice.data["cause"], notice.data["warned"]) == (
        waiting.order_id,
        "priority_demand",
        ["priority_demand:A"],
    )
    # ~18 rush units before 03-09 take 18 of the 20 coming: this line's 10 are not covered
    assert notice.data["lines"] == [{"line_no": 1, "sku": "A", "told_date": "2024-03-09", "projected_date": None}]
    notice_rules.depletion(w, w.emit, T0 + HOUR_S)
    assert len(depletion_notices(log)) == 1  # once per order and cause


def two_supplies(told_later: bool) -> tuple[World, list[ev.Event], str]:
    """A line of 10 promised ship-by 03-09 from the first of two POs (20 units due 03-08,
    50 due 03-15), 2 rush units a day ranking ahead of it; with ``told_later`` its customer
    was since told 03-20 (a delay notice), and the supply came back to those dates."""
    w, log = world(mode="priority", rush=1000.0)
    s = w.skus["A"]
    sku_rules.receive(w, s, 60, None, w.emit, T0 - 20 * DAY)
    order(w, "past", 56, T0 - 10 * DAY, email="r@x.example", rush=True)
    waiting = order(w, "o1", 14, email="a@x.example")  # 4 from stock, 10 wait for PO-000001
    sku_rules.configure(w, s, {"reorder_point": 30, "order_up_to": 60}, w.emit, T0)  # raises PO-000002
    po1, po2 = sorted(s.inbound)

    def move(rid: str, date: str) -> None:  # as the SKU actor does: the move, then the recheck
        sku_rules.confirm(w, s, rid, date, w.emit, T0)
        promise_rules.recheck(w, s, w.emit, T0)

    if told_later:
        move(po2, "2024-03-25")
        move(po1, "2024-03-19")  # the line now ships by 03-20: its customer is told so
        move(po1, "2024-03-08")  # back again: earlier dates are not told
    move(po2, "2024-03-15")
    promise = w.promises[(waiting.order_id, 1)]
    assert (promise.date, promise.told) == ("2024-03-09", "2024-03-20" if told_later else "2024-03-09")
    return w, log, waiting.order_id


def test_a_depletion_warning_compares_against_the_date_the_promise_last_told():
    # told 03-09: the ~16 rush units before its PO arrives take it, the line waits for the
    # second PO and ships by 03-16, later than told
    w, log, order_id = two_supplies(told_later=False)
    notice_rules.depletion(w, w.emit, T0)
    (notice,) = depletion_notices(log)
    assert (notice.order_id, notice.data["cause"]) == (order_id, "priority_demand")
    assert notice.data["lines"] == [
        {"line_no": 1, "sku": "A", "told_date": "2024-03-09", "projected_date": "2024-03-16"}
    ]
    # told 03-20 since: 03-16 is no slip. (The backordered notice's 03-08, the record the
    # check used to read, would have warned.)
    w, log, _ = two_supplies(told_later=True)
    notice_rules.depletion(w, w.emit, T0)
    assert depletion_notices(log) == []


def test_fifo_never_warns_of_priority_demand():
    w, log = world(mode="fifo", rush=1000.0)
    s = w.skus["A"]
    sku_rules.receive(w, s, 60, None, w.emit, T0 - 20 * DAY)
    order(w, "past", 56, T0 - 10 * DAY, email="r@x.example", rush=True)
    order(w, "o1", 14, email="a@x.example")
    notice_rules.depletion(w, w.emit, T0)
    assert depletion_notices(log) == []


def test_a_rush_weight_the_line_outgrows_soon_does_not_warn():
    w, log = world(mode="priority", rush=24.0)  # rush outranks it for one day only: 2 units
    s = w.skus["A"]
    sku_rules.receive(w, s, 60, None, w.emit, T0 - 20 * DAY)
    order(w, "past", 56, T0 - 10 * DAY, email="r@x.example", rush=True)
    order(w, "o1", 14, email="a@x.example")
    notice_rules.depletion(w, w.emit, T0)
    assert depletion_notices(log) == []


def test_a_line_left_with_no_supply_is_warned_of_the_stockout():
    w, log = world()
    waiting = order(w, "o1", 3, email="a@x.example")
    s = w.skus["A"]
    (rid,) = s.inbound
    w.emit(ev.RequestCancelled(ts=T0, request_id=rid, sku="A", reason="supplier gone", open_qty=13))
    assert not s.inbound  # no replan: nothing covers the line now
    notice_rules.depletion(w, w.emit, T0)
    (notice,) = depletion_notices(log)
    assert (notice.data["cause"], notice.data["warned"]) == ("stockout", ["stockout:A"])
    assert (waiting.order_id, "stockout:A") in w.warned
    notice_rules.depletion(w, w.emit, T0 + DAY)
    assert len(depletion_notices(log)) == 1


HOUR_S = 3600.0


def busy_site(n_skus: int) -> tuple[World, list[ev.Event]]:
    """Under priority allocation: SKUs draining at 2 rush units a day, each with a line
    waiting for a PO that the rush demand will take (a warning), and one whose PO is
    overdue (a delay notice from the promise recheck)."""
    w, log = recording_world(
        {
            "default_policy": {"reorder_point": 0, "order_up_to": 10},
            "notifications": {"routes": {"*": "email"}},
            "allocation": {"mode": "priority", "weights": {"rush": 1000.0}},
        }
    )
    for i in range(n_skus):
        sku = f"S{i:03d}"
        sku_rules.configure(w, w.sku(sku), {}, w.emit, T0 - 21 * DAY)
        sku_rules.receive(w, w.skus[sku], 60, None, w.emit, T0 - 20 * DAY)
        for ext, qty, at, rush in ((f"r{i}", 56, T0 - 10 * DAY, True), (f"w{i}", 14, T0 - 9 * DAY, False)):
            req = msgspec.convert(
                {
                    "op": "order.submit",
                    "channel": "web",
                    "external_id": ext,
                    "email": "c@x.example",
                    "rush": rush,
                    "lines": [{"sku": sku, "qty": qty}],
                },
                p.OrderSubmit,
            )
            o, _ = order_rules.submit(w, req, w.emit, at)
            sku_rules.settle(w, w.skus[sku], w.emit, at)
            promise_rules.promise_order(w, o, w.emit, at)
    return w, log


@given(st.lists(st.integers(0, 7), max_size=30), st.integers(1, 12))
def test_slices_cover_each_waiting_sku_once_in_name_order_and_stay_small(queues, lines):
    w, _ = world()
    for i, n in enumerate(queues):
        s = w.sku(f"K{i:02d}")
        for k in range(n):
            order_rules.submit(
                w,
                msgspec.convert(
                    {
                        "op": "order.submit",
                        "channel": "web",
                        "external_id": f"{i}-{k}",
                        "lines": [{"sku": s.sku, "qty": 1}],
                    },
                    p.OrderSubmit,
                ),
                w.emit,
                T0,
            )
        sku_rules.settle(w, s, w.emit, T0)
    got = list(dr.slices(dr.waiting_skus(w), lines))
    assert [s for batch in got for s in batch] == dr.waiting_skus(w)
    assert [s.sku for s in dr.waiting_skus(w)] == sorted(f"K{i:02d}" for i, n in enumerate(queues) if n)
    for batch in got:
        assert batch
        # a slice stops at the SKU that reaches the bound: without it, it is under the bound
        assert sum(len(s.queue) for s in batch[:-1]) < lines


def test_the_sliced_check_yields_between_slices_and_decides_what_the_whole_check_does():
    import trio

    from backorder.actors.engine import Engine
    from backorder.clock import SteppedClock
    from backorder.notify.notifier import depletion_check

    whole, whole_log = busy_site(12)
    now = T0 + 8 * DAY  # the POs (raised 9 days before T0, due 7 days later) are overdue
    notice_rules.depletion(whole, whole.emit, now)
    promise_rules.overdue(whole, whole.emit, now)

    sliced, _ = busy_site(12)
    appended: list[ev.Event] = []

    class Journal:
        last_seq, cause, corr, actor = 0, "", "", ""

        def append_body(self, e, body, sku, order_id) -> int:
            appended.append(e)
            self.last_seq += 1
            return self.last_seq

    engine = Engine(sliced.settings, Journal(), SteppedClock(now), world=sliced)
    turns = []

    async def main() -> None:
        started = trio.Event()

        async def beside() -> None:  # a turn in every batch of trio's run queue
            started.set()
            while True:
                await trio.lowlevel.checkpoint()
                turns.append(len(appended))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(beside)
            await started.wait()
            await depletion_check(engine, lines=5)  # 12 SKUs x 1 waiting line: 3 slices
            nursery.cancel_scope.cancel()

    trio.run(main)

    def decided(events) -> list:
        return sorted(
            (e.order_id, e.kind, repr(sorted(e.data.items()))) for e in events if isinstance(e, ev.NoticeQueued)
        )

    assert decided(appended) == decided([e for e in whole_log if e.ts == now])
    # each waiting line's PO is overdue: a warning and a delay notice per customer
    assert sorted(kind for _, kind, _ in decided(appended)) == ["delay"] * 12 + ["depletion"] * 12
    assert any(0 < n < len(appended) for n in turns)  # another task ran between two slices


def test_recent_demand_counts_in_steps_and_every_order_once_even_after_archiving():
    w, _ = world()
    for k in range(7):
        order(w, f"o{k}", 4, T0 - DAY)
    stepped, whole = dr.RecentDemand(), dr.RecentDemand()
    steps = 0
    while not stepped.update(w, budget=3):
        steps += 1
    whole.update(w)
    assert steps == 2 and stepped.rate("A", T0) == whole.rate("A", T0) == (1.0, 0.0)  # 28 units / 28 days
    # closed orders leave memory: the orders after them are still counted, once
    w.emit(ev.OrdersArchived(ts=T0, order_ids=list(w.orders)[:5]))
    order(w, "later", 28, T0)
    assert stepped.update(w) and stepped.rate("A", T0) == (2.0, 0.0)
    assert stepped.update(w) and stepped.rate("A", T0) == (2.0, 0.0)
