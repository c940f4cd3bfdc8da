"""The canonical order (backorder.order), the wire's order.submit built on it, and the
journal's own record of an accepted order, converted at the edge by the rules."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest

from backorder import protocol as p
from backorder.actors import events as ev
from backorder.actors.order_rules import line_records, order_record
from backorder.errors import Rejected
from backorder.order import CanonicalOrder

# Written by the code in which OrderSubmit was declared field by field in the protocol.
OLD_WIRE = (
    b'{"op":"order.submit","id":3,"channel":"w","account":"default","external_id":"e","order_number":"",'
    b'"customer":{"id":"","name":""},"email":"","shipping_address":{"name":"","company":"","address1":"",'
    b'"address2":"","city":"","region":"","postal_code":"","country_code":"","phone":""},"created_at":null,'
    b'"currency":"USD","lines":[{"sku":"A","qty":1,"unit_price":"0","requires_shipping":true}],"rush":false,'
    b'"priority":false,"ship_complete":false,"hold":"","source_version":null}'
)

FULL = msgspec.json.decode(
    b'{"op":"order.submit","id":"r1","channel":"shopify","account":"shop-1","external_id":"E-1","order_number":"#1",'
    b'"customer":{"id":"c1","name":"Ada"},"email":"ada@example.com","shipping_address":{"name":"Ada L",'
    b'"company":"ACME","address1":"1 Road","address2":"Flat 2","city":"London","region":"LDN","postal_code":"N1",'
    b'"country_code":"GB","phone":"+44"},"created_at":"2026-01-05T09:00:00Z","currency":"GBP",'
    b'"lines":[{"sku":"A","qty":2,"unit_price":"9.50","discount":"1.00","line_total":"18.00","channel_line_id":"L1"},'
    b'{"sku":"B","qty":1,"requires_shipping":false}],'
    b'"rush":true,"priority":true,"ship_complete":true,"hold":"payment","source_version":"v2",'
    b'"totals":{"subtotal":"19.00","discount":"1.00","shipping":"4.95","fees":"0.50","tax":"3.00","total":"26.45"},'
    b'"needs_address":true}',
    type=p.OrderSubmit,
)


def test_order_submit_is_the_canonical_order_plus_op_and_id():
    assert p.OrderSubmit.__struct_fields__ == ("id", *CanonicalOrder.__struct_fields__)
    assert issubclass(p.OrderSubmit, p.Request)
    wire = {f.name: (f.type, f.default, f.default_factory) for f in msgspec.structs.fields(p.OrderSubmit)}
    for f in msgspec.structs.fields(CanonicalOrder):
        assert wire[f.name] == (f.type, f.default, f.default_factory), f.name


def test_the_wire_bytes_are_unchanged_but_for_the_fields_added_since():
    req = p.decode_request(OLD_WIRE)
    assert isinstance(req, p.OrderSubmit)
    # the order's money and needs_address came later: an old request reads with their defaults
    new_fields = {"totals": None, "needs_address": False}
    new_line_fields = {"discount": "0", "line_total": None, "channel_line_id": ""}
    assert p.ENCODER.encode(req) == OLD_WIRE.replace(
        b'"requires_shipping":true}', b'"requires_shipping":true,' + msgspec.json.encode(new_line_fields)[1:]
    ).replace(b'"source_version":null}', b'"source_version":null,' + msgspec.json.encode(new_fields)[1:])
    # the canonical order's constraints are the request's
    with pytest.raises(Rejected) as info:
        p.decode_request(OLD_WIRE.replace(b'"qty":1', b'"qty":0'))
    assert info.value.code == "invalid_quantity"
    with pytest.raises(Rejected) as info:
        p.decode_request(OLD_WIRE.replace(b'"currency":"USD"', b'"currency":"usd"'))
    assert info.value.code == "invalid_request"


def test_the_journal_records_every_field_of_the_order_and_none_of_the_request():
    assert ev.OrderRecord.__struct_fields__ == CanonicalOrder.__struct_fields__
    record = order_record(FULL)
    wire = msgspec.json.decode(p.ENCODER.encode(FULL))
    del wire["op"], wire["id"]
    assert msgspec.json.decode(ev.EVENT_ENCODER.encode(record)) == wire
    assert msgspec.json.decode(ev.EVENT_ENCODER.encode(line_records(FULL.lines))) == wire["lines"]
    assert record.lines[0].unit_price == Decimal("9.50")
    assert (record.lines[0].line_total, record.lines[0].channel_line_id) == (Decimal("18.00"), "L1")
    assert record.totals is not None and record.totals.total == Decimal("26.45") and record.needs_address
