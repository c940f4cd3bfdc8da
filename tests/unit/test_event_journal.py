"""The journal always replays (no event is written that replay would refuse): every event type, over generated
values, is either refused by the encoder-side check (``events.encode_checked``) or
decodes back exactly as it was.

The strategies are derived from each event's own schema (``msgspec.inspect``), members
of ``AnyEvent`` included automatically, so an event added later is covered without a
change here. Two properties:

* hostile values (integers far past 2**64, inf and nan, decimals like 1E+999999999,
  lone surrogates, long unicode strings, values that break a field's constraints): the
  check refuses, or the event round-trips exactly;
* values within the schema: the check accepts, and the event round-trips exactly (so the
  check refuses nothing the journal can hold).
"""

from __future__ import annotations

import math
from decimal import Decimal

import msgspec
import msgspec.inspect as mi
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backorder.actors import events as ev
from backorder.config.settings import ReorderPolicy
from backorder.numbers import MAX_INT

EVENTS = ev.AnyEvent.__args__  # type: ignore[attr-defined]
EXTREME_INTS = [
    0,
    -1,
    MAX_INT,
    MAX_INT + 1,
    -MAX_INT,
    -MAX_INT - 1,
    2**63,
    -(2**63) - 1,
    2**64,
    10**21,
    10**400,
    -(10**400),
]
EXTREME_FLOATS = [math.inf, -math.inf, math.nan, 1e308, -1e308, -0.0, 5e-324, 1e6, 1e6 + 1]
EXTREME_DECIMALS = [
    Decimal("Infinity"),
    Decimal("-Infinity"),
    Decimal("1E+999999999"),
    Decimal("-0"),
    Decimal("1E-999999999"),
    Decimal("12345678901234567890.123456789"),
]
HOSTILE_TEXT = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["\ud800", "a\udfffb", "\x00", "\u2028", "🧾" * 3, "x[/]"]),
    st.integers(500, 2000).map(lambda n: "é" * n),
)
JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-MAX_INT, MAX_INT),
    st.text(max_size=10),
    st.floats(allow_nan=False, allow_infinity=False),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=6,
)


def _bounds(t, lo_default: int, hi_default: int) -> tuple[int, int]:
    lo = t.ge if t.ge is not None else (t.gt + 1 if t.gt is not None else lo_default)
    hi = t.le if t.le is not None else (t.lt - 1 if t.lt is not None else hi_default)
    return lo, hi


def values(t: mi.Type, hostile: bool) -> st.SearchStrategy:
    """Values of the msgspec type ``t``: within its schema, or (hostile) anything Python
    could put there."""
    match t:
        case mi.IntType():
            lo, hi = _bounds(t, -MAX_INT, MAX_INT)
            valid = st.one_of(st.integers(lo, hi), st.sampled_from([lo, hi]))
            return st.one_of(valid, st.sampled_from(EXTREME_INTS), st.integers()) if hostile else valid
        case mi.FloatType():
            lo = t.ge if t.ge is not None else t.gt
            hi = t.le if t.le is not None else t.lt
            valid = st.floats(
                min_value=lo,
                max_value=hi,
                allow_nan=False,
                allow_infinity=False,
                exclude_min=t.gt is not None,
                exclude_max=t.lt is not None,
            )
            return st.one_of(valid, st.sampled_from(EXTREME_FLOATS)) if hostile else valid
        case mi.DecimalType():
            valid = st.decimals(allow_nan=False, allow_infinity=False, places=4, min_value=-(10**12), max_value=10**12)
            return st.one_of(valid, st.sampled_from(EXTREME_DECIMALS)) if hostile else valid
        case mi.StrType():
            if t.pattern is not None:
                valid = st.from_regex(t.pattern, fullmatch=True)
            else:
                valid = st.text(min_size=t.min_length or 0, max_size=min(t.max_length or 40, 40))
            return st.one_of(valid, HOSTILE_TEXT) if hostile else valid
        case mi.BoolType():
            return st.booleans()
        case mi.NoneType():
            return st.none()
        case mi.LiteralType():
            return st.sampled_from(t.values)
        case mi.RawType():
            return JSON_VALUES.map(lambda v: msgspec.Raw(msgspec.json.encode(v)))
        case mi.AnyType():
            # free-form (the template context of a notice): JSON's own values, which decode
            # as they were; a Python tuple or a non-finite float would come back changed
            return JSON_VALUES
        case mi.UnionType():
            return st.one_of([values(x, hostile) for x in t.types])
        case mi.ListType():
            return st.lists(
                values(t.item_type, hostile), min_size=t.min_length or 0, max_size=min(t.max_length or 3, 3)
            )
        case mi.VarTupleType():
            return st.lists(values(t.item_type, hostile), max_size=3).map(tuple)
        case mi.TupleType():
            return st.tuples(*[values(x, hostile) for x in t.item_types])
        case mi.DictType():
            return st.dictionaries(st.text(max_size=8), values(t.value_type, hostile), max_size=3)
        case mi.StructType():
            required = {f.name: values(f.type, hostile) for f in t.fields if f.required}
            optional = {f.name: values(f.type, hostile) for f in t.fields if not f.required}
            return st.fixed_dictionaries(required, optional=optional).map(lambda kw: t.cls(**kw))
    raise AssertionError(f"no strategy for {t!r}: teach values() this type")


def check(e: ev.Event) -> bytes | None:
    """The journal body, or None when the check refuses the event."""
    try:
        return ev.encode_checked(e)
    except ev.UnjournalableEvent:
        return None


@pytest.mark.parametrize("cls", EVENTS, ids=lambda c: c.__struct_config__.tag)
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_hostile_values_are_refused_or_round_trip_exactly(cls, data):
    e = data.draw(values(mi.type_info(cls), hostile=True))
    body = check(e)
    if body is not None:
        decoded = ev.EVENT_DECODER.decode(body)
        assert decoded == e
        assert ev.EVENT_ENCODER.encode(decoded) == body


@pytest.mark.parametrize("cls", EVENTS, ids=lambda c: c.__struct_config__.tag)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_values_within_the_schema_are_journaled_and_round_trip(cls, data):
    e = data.draw(values(mi.type_info(cls), hostile=False))
    body = check(e)
    assert body is not None, e
    assert ev.EVENT_DECODER.decode(body) == e


REFUSED = [
    ev.Allocated(ts=0.0, sku="A", order_id="O1", line_no=1, qty=1, rule="priority", rank=math.inf),
    ev.Allocated(ts=0.0, sku="A", order_id="O1", line_no=1, qty=1, rule="priority", rank=math.nan),
    # one bad line of a batch refuses the whole settle's row
    ev.LinesAllocated(
        ts=0.0,
        sku="A",
        rule="priority",
        lines=[
            ev.AllocatedLine(order_id="O1", line_no=1, qty=1, rank=0.5),
            ev.AllocatedLine(order_id="O2", line_no=1, qty=1, rank=math.nan),
        ],
    ),
    ev.LinesAllocated(
        ts=0.0, sku="A", rule="fifo", lines=[ev.AllocatedLine(order_id="O1", line_no=MAX_INT + 1, qty=1, rank=0.0)]
    ),
    ev.DeadLettered(ts=0.0, letter_id=1, actor="intake", message="{}", error="", impact=math.inf),
    ev.Received(ts=0.0, sku="A", qty=10**400),
    ev.Adjusted(ts=0.0, sku="A", delta=-(MAX_INT + 1), reason=""),
    ev.Received(ts=0.0, sku="\ud800", qty=1),
    ev.Received(ts=math.inf, sku="A", qty=1),
]


@pytest.mark.parametrize("event", REFUSED, ids=lambda e: ev.tag_of(e))
def test_what_msgspec_would_write_but_not_read_back_is_refused(event):
    with pytest.raises(ev.UnjournalableEvent) as info:
        ev.encode_checked(event)
    assert info.value.event_type == ev.tag_of(event)


def test_a_nan_price_is_journaled_as_it_was_sent():
    """A decimal keeps its text: even NaN (the rules refuse it) would replay as written."""
    order = ev.OrderRecord(
        channel="web", external_id="x", lines=[ev.LineRecord(sku="A", qty=1, unit_price=Decimal("NaN"))]
    )
    body = ev.encode_checked(ev.OrderReceived(ts=0.0, order_id="O0000001", order=order))
    assert ev.EVENT_ENCODER.encode(ev.EVENT_DECODER.decode(body)) == body


@pytest.mark.parametrize("level", [math.inf, -math.inf, math.nan])
def test_a_non_finite_optional_float_is_refused_not_journaled_as_null(level):
    """JSON has no inf/nan: msgspec writes null, which a ``float | None`` field reads back
    as None, so a decode alone would pass an event that replays differently."""
    e = ev.SkuConfigured(ts=0.0, sku="A", policy=ReorderPolicy(service_level=level))
    with pytest.raises(ev.UnjournalableEvent, match="not finite"):
        ev.encode_checked(e)
    fine = ev.SkuConfigured(ts=0.0, sku="A", policy=ReorderPolicy(service_level=0.9))
    assert ev.EVENT_DECODER.decode(ev.encode_checked(fine)) == fine
