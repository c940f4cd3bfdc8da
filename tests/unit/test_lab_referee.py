"""The lab's referee on hand-made journals: each figure's formula, worked by hand, and
the invariants it flags."""

from __future__ import annotations

from decimal import Decimal

import pytest

from backorder.actors import events as ev
from backorder.lab.referee import calibration, figures

DAY = 86400.0


def order(ts, oid, *lines, ship=True):
    recs = [ev.LineRecord(sku=sku, qty=qty, unit_price=Decimal(price)) for sku, qty, price in lines]
    if not ship:
        recs.append(ev.LineRecord(sku="GIFT", qty=1, unit_price=Decimal(50), requires_shipping=False))
    return ev.OrderReceived(ts=ts, order_id=oid, order=ev.OrderRecord(channel="lab", external_id=oid, lines=recs))


def alloc(ts, sku, oid, qty, line_no=1, rule="fifo"):
    return ev.Allocated(ts=ts, sku=sku, order_id=oid, line_no=line_no, qty=qty, rule=rule, rank=0.0)


def ship(ts, sku, oid, qty, sid, line_no=1):
    return [
        ev.UnitsShipped(ts=ts, sku=sku, order_id=oid, line_no=line_no, qty=qty, shipment_id=sid),
        ev.ShipmentShipped(ts=ts, shipment_id=sid, order_id=oid, carrier="local", tracking="T", label_zpl=""),
    ]


def journal():
    """A: 10 on hand; O1 takes 4 at once; O2 wants 10, gets 6, waits 2 days for 4 from
    PO-1 (20 units, raised day 1, received day 3); O3 wants 2 B that never come (and a
    gift card that ships nothing). Window: days 0-10."""
    return [
        ev.Received(ts=0.0, sku="A", qty=10, reference="opening"),
        order(0.0, "O1", ("A", 4, "2")),
        alloc(0.0, "A", "O1", 4),
        *ship(0.0, "A", "O1", 4, "S1"),
        order(DAY, "O2", ("A", 10, "4")),
        alloc(DAY, "A", "O2", 6),
        ev.LineBackordered(ts=DAY, sku="A", order_id="O2", line_no=1, qty=4),
        ev.RequestRaised(
            ts=DAY, request_id="PO-1", sku="A", kind="po", source="lab", qty=20, expected_date="x", position=-4
        ),
        *ship(DAY, "A", "O2", 6, "S2"),
        ev.Received(ts=3 * DAY, sku="A", qty=20, reference="PO-1", request_id="PO-1"),
        alloc(3 * DAY, "A", "O2", 4),
        *ship(3 * DAY, "A", "O2", 4, "S3"),
        order(4 * DAY, "O3", ("B", 2, "10"), ship=False),
        ev.LineBackordered(ts=4 * DAY, sku="B", order_id="O3", line_no=1, qty=2),
    ]


def test_the_figures_of_a_hand_made_journal():
    f = figures(enumerate(journal(), start=1), 0.0, 10 * DAY)
    assert f["order_lines"] == 3 and f["units_ordered"] == 16  # the gift card is not a shipping line
    assert f["fill_rate"] == pytest.approx((4 + 6 + 0) / 16, abs=1e-4)
    assert f["lines_backordered"] == pytest.approx(2 / 3, abs=1e-4)
    # O2 waited 2 days; O3 never filled: it counts to the window's end, 6 days
    assert f["backorder_age_p50_days"] == pytest.approx(4.0)
    assert f["backorder_age_p95_days"] == pytest.approx(2 + 0.95 * 4)
    assert f["backordered_lines_unfilled"] == 1
    # A: 6 units for 1 day, 0 for 2 days, 16 for 7 days = 118 unit-days over 10 days
    assert f["on_hand_units"] == pytest.approx(11.8)
    assert f["on_hand_value"] == pytest.approx(11.8 * 3)  # A's mean selling price (2 and 4)
    assert f["purchase_orders"] == 1 and f["purchase_orders_open_at_end"] == 0
    assert f["reorder_lead_days_mean"] == pytest.approx(2.0)
    assert f["shipped_by_promise"] == "n/a"
    assert all(i["ok"] for i in f["invariants"].values()), f["invariants"]


def test_each_skus_share_of_the_figures_adds_up_to_the_sites():
    f = figures(enumerate(journal(), start=1), 0.0, 10 * DAY, per_sku=True)
    assert f["per_sku"] == {
        "A": {"units_ordered": 14, "units_filled": 10, "on_hand_units": pytest.approx(11.8)},
        "B": {"units_ordered": 2, "units_filled": 0, "on_hand_units": 0.0},
    }
    assert "per_sku" not in figures(enumerate(journal(), start=1), 0.0, 10 * DAY)


def test_the_window_leaves_the_warm_up_out():
    f = figures(enumerate(journal(), start=1), 2 * DAY, 10 * DAY)
    assert f["order_lines"] == 1 and f["fill_rate"] == 0.0  # only O3 was ordered in the window
    # A over days 2-10: 0 for 1 day, 16 for 7 days
    assert f["on_hand_units"] == pytest.approx(16 * 7 / 8)
    assert f["purchase_orders"] == 0


def test_the_invariants_it_flags():
    bad = [
        ev.Received(ts=0.0, sku="A", qty=2, reference=None),
        order(0.0, "O1", ("A", 3, "1")),
        order(0.0, "O2", ("A", 1, "1")),
        alloc(0.0, "A", "O2", 1),  # FIFO: O1 came first and waits
        alloc(0.0, "A", "O1", 3),  # 4 allocated > 2 on hand
        *ship(0.0, "A", "O2", 1, "S1"),
        *ship(0.0, "A", "O2", 1, "S1"),  # the same shipment twice, 2 shipped of 1 ordered
    ]
    inv = figures(enumerate(bad, start=1), 0.0, DAY)["invariants"]
    assert not inv["fifo_order_of_service"]["ok"] and "O1/1 waits" in inv["fifo_order_of_service"]["example"]
    assert not inv["no_over_allocation"]["ok"]
    assert not inv["no_double_shipment"]["ok"] and inv["no_double_shipment"]["violations"] == 2
    assert inv["stock_never_negative"]["ok"] and inv["journal_decodes"]["ok"]
    negative = [ev.Received(ts=0.0, sku="A", qty=1, reference=None), ev.Adjusted(ts=1.0, sku="A", delta=-2, reason="x")]
    assert not figures(enumerate(negative, start=1), 0.0, DAY)["invariants"]["stock_never_negative"]["ok"]


def test_priority_allocations_are_not_held_to_fifo():
    evs = [
        ev.Received(ts=0.0, sku="A", qty=1, reference=None),
        order(0.0, "O1", ("A", 1, "1")),
        order(0.0, "O2", ("A", 1, "1")),
        alloc(0.0, "A", "O2", 1, rule="priority"),
    ]
    assert figures(enumerate(evs, start=1), 0.0, DAY)["invariants"]["fifo_order_of_service"]["ok"]


def promise(ts: float, order_id: str, date: str, confidence: float = 0.98) -> ev.LinesPromised:
    line = ev.PromisedLine(line_no=1, sku="A", date=date, source="stock", confidence=confidence)
    return ev.LinesPromised(ts=ts, order_id=order_id, lines=[line])


def test_lines_shipped_by_their_first_promise_once_promises_are_journaled():
    assert figures(enumerate(journal(), start=1), 0.0, 10 * DAY)["shipped_by_promise"] == "n/a"
    promised = [
        *journal()[:2],
        promise(0.0, "O1", "1970-01-01"),  # shipped that day
        *journal()[2:6],
        promise(DAY, "O2", "1970-01-03"),  # its rest ships Jan 4: late
        promise(DAY, "O2", "1970-01-09"),  # a later promise: not held to
        *journal()[6:],
    ]
    f = figures(enumerate(promised, start=1), 0.0, 10 * DAY)
    assert f["lines_promised"] == 2 and f["shipped_by_promise"] == 0.5


def test_calibration_buckets_lines_by_the_confidence_of_their_first_promise():
    promised = [
        *journal()[:2],
        promise(0.0, "O1", "1970-01-01", 0.98),  # shipped that day: kept
        *journal()[2:6],
        promise(DAY, "O2", "1970-01-03", 0.75),  # ships Jan 4: missed
        promise(DAY, "O2", "1970-01-09", 0.5),  # a later promise: not held to
        *journal()[6:],
    ]
    f = figures(enumerate(promised, start=1), 0.0, 10 * DAY)
    rows = {row["bucket"]: row for row in f["promise_calibration"]}
    assert list(rows) == ["<0.7", "0.7-0.8", "0.8-0.9", "0.9-0.95", ">=0.95"]
    assert rows[">=0.95"] == {"bucket": ">=0.95", "lines": 1, "mean_confidence": 0.98, "shipped_by_promise": 1.0}
    assert rows["0.7-0.8"] == {"bucket": "0.7-0.8", "lines": 1, "mean_confidence": 0.75, "shipped_by_promise": 0.0}
    assert rows["<0.7"]["lines"] == 0 and rows["<0.7"]["shipped_by_promise"] is None
    assert f["promise_brier"] == round(((0.98 - 1) ** 2 + 0.75**2) / 2, 4)
    assert figures(enumerate(journal(), start=1), 0.0, 10 * DAY)["promise_brier"] == "n/a"


def test_calibration_edges_belong_to_the_upper_bucket_and_one_to_the_last():
    table, brier = calibration([(0.7, True), (0.95, True), (1.0, False), (0.0, False)])
    assert [row["lines"] for row in table] == [1, 1, 0, 0, 2]
    assert brier == round((0.3**2 + 0.05**2 + 1.0 + 0.0) / 4, 4)
    assert calibration([]) == (
        [{**row, "lines": 0, "mean_confidence": None, "shipped_by_promise": None} for row in table],
        None,
    )


def delay(ts: float, order_id: str, line_no: int = 1) -> ev.NoticeQueued:
    data = {"lines": [{"line_no": line_no}]}
    return ev.NoticeQueued(
        ts=ts, notice_id=f"N{ts}", order_id=order_id, kind="delay", email="", subject="", body="", data=data
    )


def test_a_late_line_counts_as_told_only_with_a_delay_notice_before_its_promise_passed():
    late = [*journal()[:6], promise(DAY, "O2", "1970-01-03"), *journal()[6:]]  # ships Jan 4: late
    f = figures(enumerate(late, start=1), 0.0, 10 * DAY)  # a run that routes no notices: nothing to judge
    assert (f["late_lines_told_in_time"], f["late_lines_untold"]) == ("n/a", "n/a")
    told_late = [*late, delay(3 * DAY, "O2")]  # on Jan 4: the promised day (Jan 3) had passed
    f = figures(enumerate(told_late, start=1), 0.0, 10 * DAY)
    assert (f["late_lines_told_in_time"], f["late_lines_untold"]) == (0.0, 1)
    told = [*late[:7], delay(2 * DAY, "O2"), *late[7:]]
    f = figures(enumerate(told, start=1), 0.0, 10 * DAY)
    assert (f["late_lines_told_in_time"], f["late_lines_untold"]) == (1.0, 0)


def test_a_line_cancelled_before_its_promise_passed_broke_no_promise():
    evs = [
        order(0.0, "O1", ("A", 2, "1")),
        ev.LineBackordered(ts=0.0, sku="A", order_id="O1", line_no=1, qty=2),
        promise(0.0, "O1", "1970-01-05"),
        ev.OrderCancelled(ts=DAY, order_id="O1", reason="changed my mind"),
    ]
    assert figures(enumerate(evs, start=1), 0.0, 10 * DAY)["shipped_by_promise"] == "n/a"


def _ship_complete(ts, oid, *lines):
    recs = [ev.LineRecord(sku=sku, qty=qty, unit_price=Decimal(1)) for sku, qty in lines]
    return ev.OrderReceived(
        ts=ts, order_id=oid, order=ev.OrderRecord(channel="lab", external_id=oid, lines=recs, ship_complete=True)
    )


def _stranding(lend: bool) -> list[ev.Event]:
    """L (ship-complete: 2 A + 1 B) takes 2 A received day 1, B never comes; S (1 A) waits
    from day 1.5; day 3 a receipt of 1 A goes to L's place... or, lending, S ships on a
    loan on day 1.5 and L gets the day-3 unit back."""
    out: list[ev.Event] = [
        _ship_complete(0.5 * DAY, "L", ("A", 2), ("B", 1)),
        ev.LineBackordered(ts=0.5 * DAY, sku="A", order_id="L", line_no=1, qty=2),
        ev.LineBackordered(ts=0.5 * DAY, sku="B", order_id="L", line_no=2, qty=1),
        ev.Received(ts=DAY, sku="A", qty=2, reference=None),
        alloc(DAY, "A", "L", 2),
        order(1.5 * DAY, "S", ("A", 1, "1")),
    ]
    if lend:
        out += [
            ev.AllocationLent(
                ts=1.5 * DAY,
                sku="A",
                order_id="L",
                line_no=1,
                qty=1,
                to_order_id="S",
                to_line_no=1,
                back_by="d3",
                completes="d9",
            ),
            alloc(1.5 * DAY, "A", "S", 1, rule="lent"),
            *ship(1.5 * DAY, "A", "S", 1, "S1"),
            ev.Received(ts=3 * DAY, sku="A", qty=1, reference=None),
            alloc(3 * DAY, "A", "L", 1),
        ]
    else:
        out += [
            ev.LineBackordered(ts=1.5 * DAY, sku="A", order_id="S", line_no=1, qty=1),
            ev.Received(ts=3 * DAY, sku="A", qty=1, reference=None),
            alloc(3 * DAY, "A", "S", 1),
            *ship(3 * DAY, "A", "S", 1, "S1"),
        ]
    return out


def test_units_held_for_an_incomplete_ship_complete_order_while_a_shippable_line_waits_are_stranded():
    held = figures(enumerate(_stranding(lend=False), start=1), 0.0, 5 * DAY)
    # day 1's receipt: its 2 units held for L, S not there yet (nothing to strand); at the
    # day 2 and day 3 boundaries (taken before that instant's events): 2 held while S
    # waits for 1 -> 1 stranded each; day 3's receipt went to S
    assert held["stranded_received_units"] == 0
    assert held["stranded_unit_days"] == 2
    assert held["stranded_received_share"] == 0.0
    # L never completes (B never comes), so it could not complete before A's next receipt
    # (day 3): the issue's narrower count is the same
    assert held["stranded_past_supply_unit_days"] == 2
    assert held["stranded_past_supply_received_units"] == 0
    lent = figures(enumerate(_stranding(lend=True), start=1), 0.0, 5 * DAY)
    assert lent["stranded_unit_days"] == 0 and lent["stranded_received_units"] == 0
    assert lent["stranded_past_supply_unit_days"] == 0
    assert all(i["ok"] for i in lent["invariants"].values()), lent["invariants"]


def test_a_receipt_that_goes_to_an_order_that_cannot_ship_while_a_line_could_is_stranded():
    events = [
        _ship_complete(0.0, "L", ("A", 2), ("B", 1)),
        order(0.0, "S", ("A", 1, "1")),
        ev.LineBackordered(ts=0.0, sku="A", order_id="L", line_no=1, qty=2),
        ev.LineBackordered(ts=0.0, sku="A", order_id="S", line_no=1, qty=1),
        ev.Received(ts=DAY / 2, sku="A", qty=2, reference=None),
        alloc(DAY / 2, "A", "L", 2),
        ev.Received(ts=DAY / 2 + 60, sku="A", qty=5, reference=None),
        alloc(DAY / 2 + 60, "A", "S", 1),
        *ship(DAY / 2 + 60, "A", "S", 1, "S1"),
    ]
    f = figures(enumerate(events, start=1), 0.0, 2 * DAY)
    # the first receipt (2 units) left 2 held for L while S waited for 1: 1 stranded; the
    # second served S: none
    assert f["stranded_received_units"] == 1
    assert f["stranded_past_supply_received_units"] == 1  # L had not completed by A's next receipt
    assert f["stranded_received_share"] == pytest.approx(1 / 7, abs=1e-4)
    assert f["stranded_unit_days"] == 0  # nothing stranded at the day-1 boundary


def test_a_lender_cancelled_after_its_loan_does_not_wait_in_the_order_of_service():
    """L was filled, lent its unit to S and waits again; L is cancelled: a later line's
    allocation is not a FIFO violation (the referee once kept a line filled before its
    cancellation waiting)."""
    events = [
        *_stranding(lend=True)[:9],  # up to S shipped on the loan; L waits for 1
        ev.OrderCancelled(ts=2 * DAY, order_id="L", reason="customer"),
        ev.LineReleased(ts=2 * DAY, sku="A", order_id="L", line_no=1, freed=1),
        ev.LineReleased(ts=2 * DAY, sku="B", order_id="L", line_no=2, freed=0),
        order(2.5 * DAY, "T", ("A", 1, "1")),
        ev.Received(ts=3 * DAY, sku="A", qty=2, reference=None),
        alloc(3 * DAY, "A", "T", 1),
    ]
    f = figures(enumerate(events, start=1), 0.0, 5 * DAY)
    assert f["invariants"]["fifo_order_of_service"]["ok"], f["invariants"]
    assert f["stranded_unit_days"] == 0


def test_units_an_order_holds_for_its_own_waiting_line_are_not_stranded():
    """L (ship-complete, 5 A) holds 3 and waits for 2: its own line could ship with more,
    but no other order's line waits: nothing is stranded."""
    events = [
        _ship_complete(0.0, "L", ("A", 5)),
        ev.Received(ts=DAY / 2, sku="A", qty=3, reference=None),
        alloc(DAY / 2, "A", "L", 3),
    ]
    f = figures(enumerate(events, start=1), 0.0, 3 * DAY)
    assert f["stranded_received_units"] == 0 and f["stranded_unit_days"] == 0
    events.append(order(1.5 * DAY, "S", ("A", 1, "1")))  # now another order could ship with one
    f = figures(enumerate(events, start=1), 0.0, 3 * DAY)
    assert f["stranded_unit_days"] == 2  # 1 at the day-2 and at the day-3 boundary


def test_units_of_an_order_that_completes_before_the_skus_next_receipt_are_stranded_only_broadly():
    """As above without lending, but L's B arrives on day 2.5, before A's next receipt (day
    3): L completes and ships then. At the day-2 boundary 1 unit is stranded by the broad
    count, not by the issue's (no loan could have served S without delaying L). With B on
    day 3.5 instead, L could not complete before A's receipt: both count it."""
    events = [
        *_stranding(lend=False)[:6],  # L holds 2 A from day 1, S (1 A) arrives day 1.5
        ev.LineBackordered(ts=1.5 * DAY, sku="A", order_id="S", line_no=1, qty=1),
        ev.Received(ts=2.5 * DAY, sku="B", qty=1, reference=None),
        alloc(2.5 * DAY, "B", "L", 1, line_no=2),
        *ship(2.5 * DAY, "A", "L", 2, "SL"),
        ev.UnitsShipped(ts=2.5 * DAY, sku="B", order_id="L", line_no=2, qty=1, shipment_id="SL"),
        ev.Received(ts=3 * DAY, sku="A", qty=1, reference=None),
        alloc(3 * DAY, "A", "S", 1),
        *ship(3 * DAY, "A", "S", 1, "S1"),
    ]
    f = figures(enumerate(events, start=1), 0.0, 5 * DAY)
    assert f["stranded_unit_days"] == 1 and f["stranded_past_supply_unit_days"] == 0
    assert all(i["ok"] for i in f["invariants"].values()), f["invariants"]
    late = [
        *events[:7],
        ev.Received(ts=3 * DAY, sku="A", qty=1, reference=None),
        alloc(3 * DAY, "A", "S", 1),
        *ship(3 * DAY, "A", "S", 1, "S1"),
        ev.Received(ts=3.5 * DAY, sku="B", qty=1, reference=None),
        alloc(3.5 * DAY, "B", "L", 1, line_no=2),
    ]
    f = figures(enumerate(late, start=1), 0.0, 5 * DAY)
    assert f["stranded_unit_days"] == 2 and f["stranded_past_supply_unit_days"] == 2


def test_a_receipt_held_for_an_order_that_completes_before_the_next_receipt_is_stranded_only_broadly():
    """L (ship-complete: 2 A + 1 B) takes A's first receipt while S (1 A) waits; B comes
    30 s later and L ships, before A's next receipt: broadly 1 stranded, by the issue none."""
    events = [
        _ship_complete(0.0, "L", ("A", 2), ("B", 1)),
        order(0.0, "S", ("A", 1, "1")),
        ev.Received(ts=DAY / 2, sku="A", qty=2, reference=None),
        alloc(DAY / 2, "A", "L", 2),
        ev.Received(ts=DAY / 2 + 30, sku="B", qty=1, reference=None),
        alloc(DAY / 2 + 30, "B", "L", 1, line_no=2),
        *ship(DAY / 2 + 30, "A", "L", 2, "SL"),
        ev.Received(ts=DAY / 2 + 60, sku="A", qty=1, reference=None),
        alloc(DAY / 2 + 60, "A", "S", 1),
    ]
    f = figures(enumerate(events, start=1), 0.0, 2 * DAY)
    assert f["stranded_received_units"] == 1 and f["stranded_past_supply_received_units"] == 0
    assert f["stranded_past_supply_received_share"] == 0.0


# --- the issue's figure: judged by the dates expected at that moment --------------------
# These journals replay into the daemon's model (its ids, every request raised), which the
# expected figures read their dates from; the hand-made journals above do not ("n/a").


def _raised(request_id: str, sku: str, qty: int, date: str) -> ev.RequestRaised:
    return ev.RequestRaised(
        ts=0.0, request_id=request_id, sku=sku, kind="po", source="lab", qty=qty, expected_date=date, position=0
    )


def _expecting(b_expected: str, b_arrives: float, a_expected: str = "1970-01-05") -> list[ev.Event]:
    """L (ship-complete: 2 A + 1 B) holds 2 A from day 0.5; S (1 A) waits from day 1.5.
    A's next supply (5) is expected on ``a_expected`` (Jan 5: day 4) and comes on day
    3.5; L's B is expected on ``b_expected`` and comes at ``b_arrives``."""
    lo, so = "O0000001", "O0000002"
    events = [
        _raised("PO-000001", "B", 1, b_expected),
        _raised("PO-000002", "A", 5, a_expected),
        ev.Received(ts=0.5 * DAY, sku="A", qty=2, reference=None),
        _ship_complete(0.5 * DAY, lo, ("A", 2), ("B", 1)),
        alloc(0.5 * DAY, "A", lo, 2),
        ev.LineBackordered(ts=0.5 * DAY, sku="B", order_id=lo, line_no=2, qty=1),
        order(1.5 * DAY, so, ("A", 1, "1")),
        ev.LineBackordered(ts=1.5 * DAY, sku="A", order_id=so, line_no=1, qty=1),
        ev.Received(ts=3.5 * DAY, sku="A", qty=5, reference="PO-000002", request_id="PO-000002"),
        alloc(3.5 * DAY, "A", so, 1),
        ev.Received(ts=b_arrives, sku="B", qty=1, reference="PO-000001", request_id="PO-000001"),
        alloc(b_arrives, "B", lo, 1, line_no=2),
    ]
    return sorted(events, key=lambda e: e.ts)  # (stable: each instant's events keep their order)


def test_an_order_expected_to_complete_before_the_next_supply_is_not_stranded_by_the_issues_count():
    """L's B was due on Jan 2 (day 1): from day 2 it is overdue, expected any moment
    (today), before A's next supply (Jan 5): lending L's A would move its date, so the
    issue's count leaves it out, although B came only on day 5, after A's receipt (day
    3.5): with hindsight L could not complete before it (the day-2 and day-3 boundaries)."""
    f = figures(enumerate(_expecting("1970-01-02", 5 * DAY), start=1), 0.0, 6 * DAY)
    assert f["stranded_unit_days"] == 2 and f["stranded_past_supply_unit_days"] == 2
    assert f["stranded_expected_unit_days"] == 0
    assert all(i["ok"] for i in f["invariants"].values()), f["invariants"]


def test_an_order_expected_to_complete_after_the_next_supply_is_stranded_by_the_issues_count():
    """L's B is expected on Jan 7 (day 6), after A's next supply (Jan 5): lending L's A
    would not move its date, so both boundaries (days 2 and 3) count by the dates
    expected then, although B came early (day 3, before A's receipt at day 3.5) and, with
    hindsight, L completed before A's next receipt."""
    f = figures(enumerate(_expecting("1970-01-07", 3 * DAY), start=1), 0.0, 6 * DAY)
    assert f["stranded_unit_days"] == 2 and f["stranded_expected_unit_days"] == 2
    assert f["stranded_past_supply_unit_days"] == 0
    assert "stranded_expected_unavailable" not in f


def test_a_day_boundary_is_judged_by_the_dates_of_the_day_it_closes():
    """B was due Jan 2, A is due Jan 3. The day-2 boundary closes Jan 2: L's B is due that
    day, A's units would come back a day later: not stranded by the issue's count. The
    day-3 boundary closes Jan 3: B is overdue (read as Jan 3) and A is due that day: a
    loan would have moved nothing all day: 1 unit-day."""
    f = figures(enumerate(_expecting("1970-01-02", 5 * DAY, "1970-01-03"), start=1), 0.0, 6 * DAY)
    assert f["stranded_unit_days"] == 2 and f["stranded_expected_unit_days"] == 1


def test_a_ship_complete_line_needing_more_than_the_held_units_could_not_ship_with_them():
    """L (ship-complete: 1 A + 1 B) holds 1 A that B never comes for; W (ship-complete,
    2 A) waits: 1 unit would not ship it, nothing is stranded. S (2 A, ships what it has)
    could ship 1 from day 1.5: then 1 is at the day-2 and day-3 boundaries, by every count
    (B has no open supply: L cannot complete before any)."""
    lo, wo, so = "O0000001", "O0000002", "O0000003"
    events = [
        _raised("PO-000001", "A", 5, "1970-01-09"),
        ev.Received(ts=0.5 * DAY, sku="A", qty=1, reference=None),
        _ship_complete(0.5 * DAY, lo, ("A", 1), ("B", 1)),
        alloc(0.5 * DAY, "A", lo, 1),
        ev.LineBackordered(ts=0.5 * DAY, sku="B", order_id=lo, line_no=2, qty=1),
        _ship_complete(0.6 * DAY, wo, ("A", 2)),
        ev.LineBackordered(ts=0.6 * DAY, sku="A", order_id=wo, line_no=1, qty=2),
    ]
    f = figures(enumerate(events, start=1), 0.0, 3 * DAY)
    assert f["stranded_unit_days"] == 0 and f["stranded_expected_unit_days"] == 0
    events += [
        order(1.5 * DAY, so, ("A", 2, "1")),
        ev.LineBackordered(ts=1.5 * DAY, sku="A", order_id=so, line_no=1, qty=2),
    ]
    f = figures(enumerate(events, start=1), 0.0, 3 * DAY)
    assert f["stranded_unit_days"] == 2 and f["stranded_past_supply_unit_days"] == 2
    assert f["stranded_expected_unit_days"] == 2


def test_the_issues_count_is_na_for_a_journal_the_model_cannot_replay():
    f = figures(enumerate(_stranding(lend=False), start=1), 0.0, 5 * DAY)
    assert f["stranded_past_supply_unit_days"] == 2
    assert f["stranded_expected_unit_days"] == "n/a" and f["stranded_expected_received_share"] == "n/a"
    assert "order_received" in f["stranded_expected_unavailable"]
