"""The wire format and the config file: stable error codes for bad input, ids echoed
verbatim, money as Decimal, config errors that name the key."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal

import msgspec
import pytest

from backorder import protocol as p
from backorder.config.settings import ConfigError, parse_settings
from backorder.errors import Rejected


def code_of(line: bytes) -> str:
    with pytest.raises(Rejected) as info:
        p.decode_request(line)
    assert info.value.message  # a human sentence goes with every code
    return info.value.code


def req(**fields) -> bytes:
    return json.dumps(fields).encode()


# --- decode_request error codes -------------------------------------------------------


@pytest.mark.parametrize("line", [b"{", b'{"op": "health",', b"not json", b"", b'{"op": "health"} trailing'])
def test_malformed_json(line):
    assert code_of(line) == "malformed_json"


@pytest.mark.parametrize("line", [b"[1, 2]", b'"health"', b"42", b"null"])
def test_json_that_is_not_an_object_is_malformed(line):
    # protocol._classify has a branch for exactly this ("a request must be a JSON object")
    assert code_of(line) == "malformed_json"


@pytest.mark.parametrize("line", [b"{}", b'{"id": 7}', req(id="x", sku="A", qty=1)])
def test_missing_op(line):
    assert code_of(line) == "missing_op"


@pytest.mark.parametrize("line", [req(op="order.delete"), req(op="STOCK.RECEIVE"), req(op=""), req(op=5), req(op=None)])
def test_unknown_op(line):
    assert code_of(line) == "unknown_op"


def test_unknown_op_lists_the_known_ones():
    with pytest.raises(Rejected) as info:
        p.decode_request(req(op="order.delete"))
    assert "order.submit" in info.value.message and "stock.receive" in info.value.message


@pytest.mark.parametrize(
    "line",
    [
        req(op="stock.receive", sku=5, qty=1),  # mistyped
        req(op="stock.receive", sku="", qty=1),  # empty SKU
        req(op="stock.receive", sku="A" * 65, qty=1),  # SKU too long
        req(op="order.cancel"),  # missing order_id
        req(op="order.submit", channel="web", external_id="1", lines=[]),  # no lines
        req(op="order.submit", channel="web", external_id="1", lines=[{"sku": "A", "qty": 1}], currency="euro"),
        req(op="order.submit", channel="web", external_id="1", lines=[{"sku": "A", "qty": 1, "unit_price": "x"}]),
        req(op="policy.set", mode="lifo"),
        req(op="orders.list", limit=0),
    ],
)
def test_invalid_request(line):
    assert code_of(line) == "invalid_request"


@pytest.mark.parametrize("date", ["next week", "2026-13-01x", "", 20260105])
def test_invalid_expected_date(date):
    assert code_of(req(op="procurement.confirm", request_id="PO-000001", expected_date=date)) == "invalid_date"


@pytest.mark.parametrize("qty", [0, -1, 1.5])
@pytest.mark.parametrize(
    "make",
    [
        lambda q: req(op="stock.receive", sku="A", qty=q),
        lambda q: req(op="order.submit", channel="web", external_id="1", lines=[{"sku": "A", "qty": q}]),
        lambda q: req(
            op="order.submit", channel="web", external_id="1", lines=[{"sku": "A", "qty": 1}, {"sku": "B", "qty": q}]
        ),
    ],
    ids=["receive", "order_line", "second_order_line"],
)
def test_invalid_quantity(make, qty):
    assert code_of(make(qty)) == "invalid_quantity"


@pytest.mark.parametrize(
    "line",
    [
        req(op="stock.adjust", sku="A", delta=1.5),
        req(op="stock.adjust", sku="A", counted=-1),
        req(op="stock.adjust", sku="A", counted=2.5),
        req(op="stock.receive", sku="A", qty="3"),
    ],
)
def test_invalid_quantity_for_counts_and_strings(line):
    assert code_of(line) == "invalid_quantity"


# --- ids ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw_id",
    [b"1", b'"abc"', b"null", b'{"n": [1, 2]}', b"1152921504606846977", b"12345678901234567890123", b"1.5e300"],
)
def test_id_is_echoed_verbatim_on_success_and_error(raw_id):
    good = b'{"op": "health", "id": ' + raw_id + b"}"
    assert bytes(p.decode_request(good).id) == raw_id
    bad = b'{"op": "stock.receive", "id": ' + raw_id + b', "sku": "A", "qty": 0}'
    assert code_of(bad) == "invalid_quantity"
    assert bytes(p.request_id(bad)) == raw_id
    reply = msgspec.json.decode(p.ENCODER.encode(p.err(p.request_id(bad), "invalid_quantity", "no")))
    assert reply["id"] == json.loads(raw_id)


@pytest.mark.parametrize("line", [b"{", b"[1]", b"garbage"])
def test_request_id_of_unreadable_line_is_null(line):
    assert bytes(p.request_id(line)) == b"null"


def test_unknown_op_still_echoes_its_id():
    line = req(op="nope", id="r-17")
    assert code_of(line) == "unknown_op"
    assert bytes(p.request_id(line)) == b'"r-17"'


# --- money and big numbers --------------------------------------------------------------


def test_money_is_decimal_and_big_ids_stay_exact():
    big = str(2**60)
    line = (
        b'{"op": "order.submit", "id": 1152921504606846977, "channel": "web", "external_id": "'
        + big.encode()
        + b'", "lines": [{"sku": "A", "qty": 3, "unit_price": "19.99"},'
        b' {"sku": "B", "qty": 1, "unit_price": 0.1}]}'
    )
    r = p.decode_request(line)
    assert isinstance(r, p.OrderSubmit)
    assert r.external_id == big == "1152921504606846976"
    assert bytes(r.id) == b"1152921504606846977"
    first, second = r.lines
    assert type(first.unit_price) is Decimal and first.unit_price == Decimal("19.99")
    assert first.unit_price * first.qty == Decimal("59.97")  # a float would give 59.97000000000001
    # a JSON number is read from its digits, not through a binary float
    assert type(second.unit_price) is Decimal and second.unit_price == Decimal("0.1")
    # and goes back out as a decimal string
    assert msgspec.json.decode(p.ENCODER.encode(r))["lines"][0]["unit_price"] == "19.99"


def test_protocol_module_does_not_import_trio():
    """The TUI (asyncio) imports the protocol; it must not drag trio in."""
    code = "import sys, backorder.protocol; sys.exit('trio' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# --- config -------------------------------------------------------------------------------


def config_error(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_settings(text, "site.toml")
    return str(info.value)


def test_config_wrong_type_names_the_key():
    msg = config_error('[daemon]\ngrace_s = "ten"\n')
    assert msg.startswith("site.toml: ")
    assert "`daemon.grace_s`" in msg and "float" in msg


def test_config_order_up_to_below_reorder_point_names_the_sku():
    msg = config_error("[skus.X]\nreorder_point = 10\norder_up_to = 5\n")
    assert "skus.X" in msg and "order_up_to" in msg and "reorder_point" in msg


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[daemon]\nbogus = 1\n", "bogus"),
        ('[allocation]\nmode = "lifo"\n', "allocation.mode"),
        ("[allocation.weights]\nage = -1\n", "allocation.weights.age"),
        # msgspec shows a dict key as `skus[...]`: the message must still say which SKU
        ("[skus.Y]\npack_size = 0\n", "skus.Y.pack_size"),
        ("[skus.Y]\nreorder_point = 1\norder_up_to = 5\n[skus.Z]\nmoq = 0\n", "skus.Z.moq"),
        ('[default_policy]\nsource = "fax:acme"\n', "default_policy"),
        ("[daemon]\nactor_idle_s = 0\n", "daemon.actor_idle_s"),
    ],
)
def test_config_errors_name_the_key(text, key):
    assert key in config_error(text)


def test_config_not_toml():
    assert "not valid TOML" in config_error("x = [")


def test_config_valid_round_trip():
    s = parse_settings(
        '[allocation]\nmode = "priority"\n[skus.X]\nreorder_point = 5\norder_up_to = 20\npack_size = 6\n'
    )
    assert s.allocation.mode == "priority"
    assert (s.skus["X"].reorder_point, s.skus["X"].order_up_to, s.skus["X"].pack_size) == (5, 20, 6)
    assert s.problems() == []
