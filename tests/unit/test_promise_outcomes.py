"""How often promises are kept and what a promise's confidence is drawn from
(backorder/actors/promise_outcomes.py): the pure rule, then the model's counts built by
the real rules, rebuilt by a replay and kept by a snapshot."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from test_promise_rules import DAY, T0, order, promised, world

from backorder.actors import events as ev
from backorder.actors import order_rules, promise_outcomes, sku_rules
from backorder.actors.carrier import LocalCarrier
from backorder.actors.model import World
from backorder.actors.snapshot import dump, restore
from backorder.actors.views import stats

# --- the pure rule -------------------------------------------------------------------


def test_a_kind_with_no_outcomes_gives_the_rule_of_thumb_value():
    assert promise_outcomes.posterior(0.98, 10.0, 0, 0) == 0.98
    assert promise_outcomes.posterior(0.6, 10.0, 0, 0) == 0.6


def test_the_posterior_is_the_beta_mean_around_the_prior():
    # 0.9 x 10 pseudo-promises + 0 kept of 5: 9 / 15
    assert promise_outcomes.posterior(0.9, 10.0, 0, 5) == 0.6
    assert promise_outcomes.posterior(0.6, 10.0, 10, 0) == 0.8  # (6 + 10) / 20
    assert promise_outcomes.posterior(0.9, 10.0, 900, 100) == round(909 / 1010, 3)  # its record takes over


@given(
    st.floats(0.0, 1.0),
    st.floats(0.01, 1000.0),
    st.integers(0, 10_000),
    st.integers(0, 10_000),
)
def test_the_posterior_stays_a_probability_and_moves_with_the_record(prior, weight, kept, missed):
    p = promise_outcomes.posterior(prior, weight, kept, missed)
    assert 0.0 <= p <= 1.0 and p == round(p, 3)
    assert promise_outcomes.posterior(prior, weight, kept + 1, missed) >= p  # one more kept: never lower
    assert promise_outcomes.posterior(prior, weight, kept, missed + 1) <= p  # one more missed: never higher


def test_a_line_shipped_any_time_on_its_promised_day_kept_it():
    day = 19_800 * DAY  # 2024-03-18T00:00:00Z
    assert promise_outcomes.kept(day + DAY - 1, "2024-03-18")
    assert promise_outcomes.kept(day - 5 * DAY, "2024-03-18")
    assert not promise_outcomes.kept(day + DAY, "2024-03-18")


def test_a_promise_from_a_request_is_of_its_suppliers_kind():
    w, _ = world()
    o = order(w, "o1", ("A", 3))  # waits for a PO from the policy's supplier
    ((_, rid, _),) = promised(w, o)
    r = w.requests[rid]
    assert promise_outcomes.kind_of(rid, w.requests) == f"po:{r.source}"
    assert w.promises[(o.order_id, 1)].kind == f"po:{r.source}"
    assert promise_outcomes.kind_of("stock", w.requests) == "stock"
    assert promise_outcomes.kind_of("lead_time", w.requests) == "lead_time"


# --- the model's counts, by the real rules -------------------------------------------


def ship_all(w: World, o, now: float) -> None:
    """Send the order's allocated units to picking and ship them at ``now``."""
    for sid in order_rules.settle_order(w, o, w.emit, now):
        order_rules.ship(w, sid, LocalCarrier(), w.emit, now)


def supplied(w: World, n: int, ordered_at: float, received_at: float) -> list:
    """``n`` orders of 1 A, each waiting for the PO of 1 it raises (A's order-up-to is 0),
    promised its date (+ 7 days + 1), received and shipped at ``received_at``."""
    orders = [order(w, f"o{ordered_at}-{i}", ("A", 1), now=ordered_at) for i in range(n)]
    for rid in list(w.skus["A"].inbound):
        sku_rules.receive(w, w.skus["A"], w.requests[rid].qty, rid, w.emit, received_at)
    for o in orders:
        ship_all(w, o, received_at)
    return orders


def test_promises_of_a_supplier_shipped_late_lower_the_next_ones_confidence_and_kept_ones_raise_it():
    w, log = world(order_up_to=0)
    first = supplied(w, 3, T0, T0 + 12 * DAY)  # promised 03-09, shipped 03-13: missed
    (conf,) = {c for o in first for _, _, c in promised(w, o)}
    assert conf == 0.6  # nothing known of the supplier yet: the rule of thumb
    ((kind, counts),) = w.promise_outcomes.items()
    assert kind.startswith("po:") and counts == [0, 3]
    # the next PO of the same supplier: its promises carry the record (6 + 0) / 13
    later = supplied(w, 2, T0 + 12 * DAY, T0 + 30 * DAY)
    assert {c for o in later for _, _, c in promised(w, o)} == {round(6 / 13, 3)}
    assert w.promise_outcomes[kind] == [0, 5]
    supplied(w, 1, T0 + 14 * DAY, T0 + 15 * DAY)  # early: kept
    assert w.promise_outcomes[kind] == [1, 5]
    after = order(w, "after", ("A", 99), now=T0 + 15 * DAY)
    assert promised(w, after)[0][2] == round((6 + 1) / 16, 3)
    assert stats(w, T0 + 15 * DAY)["promises"] == {kind: {"kept": 1, "missed": 5}}
    # a replay of the journal rebuilds the same counts, and a snapshot keeps them
    replayed, _ = world()
    for e in log:
        replayed.evolve(e)
    assert replayed.promise_outcomes == w.promise_outcomes
    assert restore(w.settings, dump(w)).promise_outcomes == w.promise_outcomes
    assert {k: p.kind for k, p in restore(w.settings, dump(w)).promises.items()} == {
        k: p.kind for k, p in w.promises.items()
    }


def test_a_line_from_stock_shipped_the_same_day_counts_kept_and_a_cancelled_line_counts_nothing():
    w, _ = world()
    sku_rules.adjust(w, w.skus["B"], 5, None, "count", w.emit, T0)
    shipped = order(w, "o1", ("B", 1))  # ship by 03-02
    ship_all(w, shipped, T0 + 3600)
    assert w.promise_outcomes == {"stock": [1, 0]}
    cancelled = order(w, "o2", ("B", 1))
    order_rules.cancel(w, cancelled.order_id, "changed my mind", w.emit, T0 + 7200)  # before its day ended
    sku_rules.adjust(w, w.skus["A"], 1, None, "count", w.emit, T0 + 5 * DAY)  # an event days later
    assert w.promise_outcomes == {"stock": [1, 0]}
    assert promised(w, order(w, "o3", ("B", 1), now=T0 + 5 * DAY))[0][2] == round((0.98 * 10 + 1) / 11, 3)


def test_a_promise_is_missed_at_the_first_event_after_its_day_ended_even_before_its_line_ships():
    w, log = world(order_up_to=0)
    o = order(w, "o1", ("A", 1))  # waits for its PO: ship by 03-09
    (rid,) = w.skus["A"].inbound
    sku_rules.adjust(w, w.skus["B"], 1, None, "count", w.emit, T0 + 8 * DAY + 86399)  # 03-09 23:59:59
    assert w.promise_outcomes == {}
    sku_rules.adjust(w, w.skus["B"], 1, None, "count", w.emit, T0 + 9 * DAY)  # 03-10: the day has ended
    kind = w.promises[(o.order_id, 1)].kind
    assert w.promise_outcomes == {kind: [0, 1]}
    # the next promise of the supplier knows it before the late line ships, and its
    # shipping counts nothing more; nor does cancelling a line after its promise was missed
    late = order(w, "o2", ("A", 1), now=T0 + 9 * DAY)  # ship by 03-17
    assert promised(w, late)[0][2] == round(6 / 11, 3)
    sku_rules.receive(w, w.skus["A"], w.requests[rid].qty, rid, w.emit, T0 + 10 * DAY)
    ship_all(w, o, T0 + 10 * DAY)
    assert w.promise_outcomes == {kind: [0, 1]}
    sku_rules.adjust(w, w.skus["B"], 1, None, "count", w.emit, T0 + 20 * DAY)
    order_rules.cancel(w, late.order_id, "too late", w.emit, T0 + 20 * DAY)
    assert w.promise_outcomes == {kind: [0, 2]}
    replayed, _ = world(order_up_to=0)
    for e in log:
        replayed.evolve(e)
    assert replayed.promise_outcomes == w.promise_outcomes


def test_a_snapshot_taken_before_a_deadline_misses_the_promise_as_the_live_model_does():
    w, log = world(order_up_to=0)
    order(w, "o1", ("A", 1))  # ship by 03-09
    restored = restore(w.settings, dump(w))
    later = ev.Adjusted(ts=T0 + 9 * DAY, sku="B", delta=1, reason="count")
    w.evolve(later)
    restored.evolve(later)
    assert restored.promise_outcomes == w.promise_outcomes != {}
    assert dump(restored) == dump(w)


def test_a_line_shipped_in_two_parts_is_judged_once_when_its_last_units_ship():
    w, _ = world()
    sku_rules.adjust(w, w.skus["B"], 1, None, "count", w.emit, T0)
    o = order(w, "o1", ("B", 3))  # 1 from stock, 2 waiting: promised the supply's date
    ship_all(w, o, T0)
    assert w.promise_outcomes == {}  # a part shipped decides nothing
    (rid,) = w.skus["B"].inbound
    sku_rules.receive(w, w.skus["B"], w.requests[rid].qty, rid, w.emit, T0 + DAY)
    ship_all(w, o, T0 + DAY)
    kind = w.promises[(o.order_id, 1)].kind
    assert w.promise_outcomes == {kind: [1, 0]}
