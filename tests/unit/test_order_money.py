"""An order's money in the core: exact line totals, the value priority ranks by, bounds on
every amount, and the journal / snapshot keeping it (and the address an order waits for)."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest

from backorder import protocol as p
from backorder.actors import events as ev
from backorder.actors import order_rules, sku_rules
from backorder.actors.carrier import LocalCarrier
from backorder.actors.model import World
from backorder.actors.snapshot import dump, restore
from backorder.config.settings import Settings, Weights
from backorder.errors import Rejected
from backorder.intake.draft import Draft, DraftLine
from backorder.order import Address

SETTINGS = msgspec.convert({"limits": {"max_money": 1000}}, Settings)
NOW = 1.75e9


def world_and_emit() -> tuple[World, list[ev.Event], object]:
    w = World(SETTINGS)
    log: list[ev.Event] = []

    def emit(e: ev.Event) -> None:
        w.evolve(e)
        log.append(e)

    return w, log, emit


def submit(w: World, emit, ext: str, lines: list[dict], **order) -> str:
    req = msgspec.convert(
        {"op": "order.submit", "channel": "web", "external_id": ext, "lines": lines, **order}, p.OrderSubmit
    )
    placed, _ = order_rules.submit(w, req, emit, NOW)
    return placed.order_id


def test_priority_ranks_a_line_by_its_total_after_discounts_not_its_list_price():
    w, _log, emit = world_and_emit()
    emit(ev.PolicyChanged(ts=NOW, mode="priority", weights=Weights(rush=0, value=1, age=0)))
    # list price 100 but 90 off (line total 10) / list price 20, no discount (line total 20)
    # / a channel's exact line total that qty x unit price does not give back (Amazon)
    a = submit(w, emit, "A", [{"sku": "S", "qty": 1, "unit_price": "100", "discount": "90"}])
    b = submit(w, emit, "B", [{"sku": "S", "qty": 1, "unit_price": "20"}])
    c = submit(w, emit, "C", [{"sku": "S", "qty": 3, "unit_price": "15.99", "discount": "3", "line_total": "44.97"}])
    values = {oid: w.orders[oid].lines[0].value for oid in (a, b, c)}
    assert values == {a: 10.0, b: 20.0, c: 44.97}
    assert [ln.order_id for ln in w.skus["S"].queue] == [c, b, a]
    spec = w.orders[c].spec.lines[0]
    assert ev.line_total(spec) == Decimal("44.97") and spec.unit_price * 3 - spec.discount == Decimal("44.97")
    assert ev.line_total(w.orders[a].spec.lines[0]) == Decimal("10")


def test_an_old_line_without_money_fields_replays_with_its_price_times_quantity():
    old = b'{"type":"order_amended","ts":1750000003.0,"order_id":"O0000002","lines":[{"sku":"A","qty":4,"unit_price":"1.25","requires_shipping":true}],"reason":"changed","source_version":null}'
    (line,) = ev.EVENT_DECODER.decode(old).lines
    assert (line.discount, line.line_total, line.channel_line_id) == (Decimal(0), None, "")
    assert ev.line_total(line) == Decimal("5.00")


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("totals", {"total": "-1"}),
        ("totals", {"tax": "NaN"}),
        ("totals", {"subtotal": "1000.01"}),
        ("totals", {"fees": "-1000.01"}),
        ("line", {"discount": "-0.01"}),
        ("line", {"line_total": "Infinity"}),
        ("line", {"line_total": "1e400"}),
    ],
)
def test_an_amount_out_of_bounds_is_refused_and_nothing_is_recorded(field, bad):
    w, log, emit = world_and_emit()
    line = {"sku": "S", "qty": 1, "unit_price": "5", **(bad if field == "line" else {})}
    with pytest.raises(Rejected) as exc:
        submit(w, emit, "X", [line], **({"totals": bad} if field == "totals" else {}))
    assert exc.value.code == "invalid_price" and log == [] and not w.orders


def test_a_fee_line_may_be_a_credit():
    w, _log, emit = world_and_emit()
    oid = submit(w, emit, "F", [{"sku": "S", "qty": 1, "unit_price": "5"}], totals={"fees": "-2.00", "total": "3.00"})
    assert w.orders[oid].spec.totals == ev.TotalsRecord(fees=Decimal("-2.00"), total=Decimal("3.00"))


def test_the_journal_and_a_snapshot_keep_the_money_and_the_address_an_order_waits_for():
    w, log, emit = world_and_emit()
    emit(ev.Received(ts=NOW, sku="S", qty=5))
    oid = submit(
        w,
        emit,
        "M",
        [
            {
                "sku": "S",
                "qty": 2,
                "unit_price": "9.99",
                "discount": "1.98",
                "line_total": "18.00",
                "channel_line_id": "L9",
            }
        ],
        totals={"subtotal": "19.98", "discount": "1.98", "shipping": "4.95", "tax": "3.45", "total": "26.40"},
        needs_address=True,
        shipping_address={"city": "Leeds", "postal_code": "LS1 4AP", "country_code": "GB"},
    )
    order = w.orders[oid]
    sku_rules.settle(w, w.skus["S"], emit, NOW)
    (sid,) = order_rules.settle_order(w, order, emit, NOW, auto_pick=LocalCarrier())  # not labelled: no street
    assert w.shipments[sid].status == "picking"
    with pytest.raises(Rejected) as exc:
        order_rules.ship(w, sid, LocalCarrier(), emit, NOW)
    assert exc.value.code == "address_needed"
    # the events decode as written; a replay and a snapshot give the same order back
    replayed = World(SETTINGS)
    for e in log:
        replayed.evolve(ev.EVENT_DECODER.decode(ev.encode_checked(e)))
    for other in (replayed, restore(SETTINGS, dump(w))):
        assert other.orders[oid].spec == order.spec and other.orders[oid].spec.needs_address is True
        assert other.orders[oid].lines[0].value == 18.0
    street = Address(name="A", address1="1 Park Row", city="Leeds", country_code="GB")
    assert order_rules.set_address(w, oid, street, "found", emit, NOW) is order
    assert order_rules.set_address(w, oid, street, "again", emit, NOW) is None  # the same: nothing
    assert (order.spec.needs_address, order.spec.shipping_address.address1) == (False, "1 Park Row")
    assert order_rules.ship(w, sid, LocalCarrier(), emit, NOW).status == "shipped"
    restored = restore(SETTINGS, dump(w))
    assert restored.orders[oid].spec == order.spec and restored.shipments[sid].status == "shipped"


def test_a_drafts_value_for_the_impact_score_is_its_line_totals():
    draft = Draft(
        lines=[
            DraftLine(sku="A", qty="3", unit_price=Decimal("15.99"), discount=Decimal(3), line_total=Decimal("44.97")),
            DraftLine(sku="B", qty=2, unit_price=Decimal("10"), discount=Decimal("1.50")),
        ]
    )
    assert draft.value() == Decimal("63.47")
