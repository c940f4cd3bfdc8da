"""Adapter and governance rules: the order of the checks (as the daemon's intake runs
them), X12 separators declared by the ISA, money as Decimal, and the per-account profile
merge."""

from __future__ import annotations

import base64
import http.client
import json
import tomllib
from collections import Counter
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from backorder.actors.model import World
from backorder.config.settings import Settings
from backorder.errors import Rejected
from backorder.intake import governance as g

FIX = Path(__file__).resolve().parents[1] / "intake" / "fixtures"
CONFIG = """
[intake]
listen = "127.0.0.1:0"
max_body_bytes = 2048

[channels.shopify]
secret_env = "BO_UNIT_SECRET"
currencies = ["EUR"]

[channels.shopify.accounts."b.myshopify.com"]
currencies = ["USD"]
lenient_numbers = true
"""
SETTINGS = msgspec.convert(tomllib.loads(CONFIG), Settings)


def delivery(body: bytes, headers: dict, channel: str = "shopify", via: str = "socket") -> g.Delivery:
    return g.Delivery(channel=channel, account=None, headers=g.normalise_headers(headers), body=body, via=via)


@pytest.fixture(scope="module")
def intake(make_module_daemon):
    """A daemon with the intake of ``CONFIG``: the checks run in whatever order its code
    runs them, over the control socket and over the webhook listener."""
    d = make_module_daemon(CONFIG, start=False)
    d.env = {"BO_UNIT_SECRET": "s3cret"}
    d.start()
    return d


def first_failure(daemon, d: g.Delivery) -> str:
    """The code the daemon's intake answers ``d`` with: the first check that fails."""
    with daemon.client() as c:
        if d.via == "socket":
            result = c.call(
                "order.ingest", channel=d.channel, headers=d.headers, body_base64=base64.b64encode(d.body).decode()
            )
        else:
            conn = http.client.HTTPConnection("127.0.0.1", c.call("health")["intake"]["http_port"], timeout=30)
            try:
                conn.request("POST", f"/webhooks/{d.channel}", body=d.body, headers=d.headers)
                result = json.loads(conn.getresponse().read())
            finally:
                conn.close()
    return result["code"] or result["outcome"]


def test_checks_run_size_then_signature_then_parse_then_topic(intake):
    key = b"s3cret"
    junk = b"{" * 3000
    shop = {"X-Shopify-Shop-Domain": "a.myshopify.com", "X-Shopify-Topic": "orders/create"}
    # too large AND unsigned: size first (nothing reads a huge body, not even the HMAC)
    assert first_failure(intake, delivery(junk, shop)) == "body_too_large"
    assert first_failure(intake, delivery(b"{", shop)) == "signature_missing"
    assert first_failure(intake, delivery(b"{", {**shop, "X-Shopify-Hmac-Sha256": "AAAA"})) == "signature_invalid"
    signed = {**shop, "X-Shopify-Hmac-Sha256": g.sign(b"{", key)}
    assert first_failure(intake, delivery(b"{", signed)) == "malformed_body"
    body = b'{"id": 1, "line_items": []}'
    other_topic = {**shop, "X-Shopify-Topic": "products/create", "X-Shopify-Hmac-Sha256": g.sign(body, key)}
    assert first_failure(intake, delivery(body, other_topic)) == "unsupported_topic"
    # channels without a scheme of their own: trusted over the socket, signed over HTTP
    csv = b"order_id,sku,qty\n"
    assert first_failure(intake, delivery(csv, {}, "csv", via="socket")) == "malformed_body"
    assert first_failure(intake, delivery(csv, {}, "csv", via="http")) == "signature_missing"


def test_account_profile_keys_win_over_the_channel_and_adapter_defaults():
    a = g.profile(SETTINGS, "shopify", "a.myshopify.com")
    b = g.profile(SETTINGS, "shopify", "b.myshopify.com")
    assert (a.currencies, a.lenient_numbers, a.hold_statuses) == (["EUR"], None, ["pending"])
    assert (b.currencies, b.lenient_numbers, b.secret_env) == (["USD"], True, "BO_UNIT_SECRET")


@pytest.mark.parametrize("elem,comp,term", [("*", ">", "~"), ("|", "^", "\n"), ("\x1d", ":", "\x1c")])
def test_x12_separators_are_whatever_the_isa_declares(elem, comp, term):
    text = (FIX / "x12_850" / "two_pos.edi").read_text().replace("~\n", "~")
    assert text[3] == "*" and text[104] == ">" and text[105] == "~"
    converted = text.replace("*", "\0").replace("~", term).replace(">", comp).replace("\0", elem)
    d = delivery(converted.encode("latin-1"), {}, "x12_850")
    prof = g.profile(SETTINGS, "x12_850", "default")
    drafts = g.parse(d, prof)
    assert [dr.external_id for dr in drafts] == ["PO-778812", "PO-778813"]
    assert [(ln.sku, ln.qty, ln.unit_price, ln.channel_line_id, ln.item_ids) for ln in drafts[0].lines] == [
        ("GRINDER-SS", "24", Decimal("12.50"), "1", []),
        ("FILTER-100", "100", Decimal("1.10"), "2", []),
    ]
    assert drafts[0].totals == {
        "subtotal": Decimal("410.00"),
        "discount": 0,
        "shipping": 0,
        "fees": 0,
        "tax": 0,
        "total": Decimal("410.00"),
    }
    assert drafts[0].account == "BUYERCO" and drafts[0].rush is True


def test_an_x12_line_without_a_vendor_part_number_carries_its_other_item_ids_in_order():
    """The PO1 id pairs that are not ours go to governance's cross-reference, in the order
    they are tried (BP, IN, UP, EN, UK, SK); ids of other qualifiers are not item ids."""
    text = (FIX / "x12_850" / "two_pos.edi").read_text()
    text = text.replace("PO1*1*6*EA*7.25*PE*VP*MUG-RED~", "PO1*7*6*EA*7.25*PE*UK*10614141000415*MG*M-9*BP*BX-1~")
    prof = g.profile(SETTINGS, "x12_850", "default")
    drafts = g.parse(delivery(text.encode(), {}, "x12_850"), prof)
    (line,) = drafts[1].lines
    assert (line.sku, line.channel_line_id, line.item_ids) == ("", "7", [("BP", "BX-1"), ("UK", "10614141000415")])
    with pytest.raises(Rejected) as exc:
        g.validate(drafts[1], "x12_850", "BUYERCO", prof, World(SETTINGS), SETTINGS)
    assert exc.value.code == "missing_sku" and "BP BX-1, UK 10614141000415" in exc.value.message
    mapped = msgspec.structs.replace(prof, item_xref={"UK:10614141000415": "MUG-RED"})
    order = g.validate(drafts[1], "x12_850", "BUYERCO", mapped, World(SETTINGS), SETTINGS)
    assert [(ln.sku, ln.qty, ln.channel_line_id) for ln in order.lines] == [("MUG-RED", 6, "7")]


def test_woocommerce_quantities_sent_as_numeric_strings_are_accepted_by_default():
    """WooCommerce's default profile is lenient: a quantity "2" is 2 (an account may turn it off)."""
    body = (FIX / "woocommerce" / "order_created.json").read_bytes().replace(b'"quantity": 2', b'"quantity": "2"')
    d = delivery(body, {"X-WC-Webhook-Topic": "order.created"}, "woocommerce")
    default = g.profile(SETTINGS, "woocommerce", "default")
    (draft,) = g.parse(d, default)
    assert draft.lines[0].unit_price == Decimal("20.00") and isinstance(draft.total, Decimal)
    order = g.validate(draft, "woocommerce", "default", default, World(SETTINGS), SETTINGS)
    assert order.lines[0].qty == 2 and order.lines[0].line_total == Decimal("35.00")
    strict = msgspec.structs.replace(default, lenient_numbers=False)
    with pytest.raises(Rejected) as exc:
        g.validate(draft, "woocommerce", "default", strict, World(SETTINGS), SETTINGS)
    assert exc.value.code == "invalid_quantity"


# --- odd but well-formed JSON: every adapter answers Rejected, never an exception ----------

ODD_VALUES = [
    None,
    True,
    0,
    -1,
    5,
    Decimal("1.5"),
    "",
    "x",
    [],
    [1],
    ["a"],
    {},
    {"a": 1},
    [{}],
    10**30,
    "1e400",
    "0001-01-01T00:00:00+05:00",
    "9999-12-31T23:00:00-05:00",
]
JSON_FIXTURES = [
    ("shopify", "shopify/orders_create.json", {"x-shopify-topic": "orders/create"}),
    ("shopify", "shopify/orders_cancelled.json", {"x-shopify-topic": "orders/cancelled"}),
    ("woocommerce", "woocommerce/order_created.json", {"x-wc-webhook-topic": "order.created"}),
    ("amazon_sp", "amazon_sp/order_unshipped.json", {}),
    ("bigcommerce", "bigcommerce/order_created.json", {}),
]


def _paths(node, path=()):
    yield path
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in children:
        yield from _paths(child, (*path, key))


def _replaced(doc, path, value):
    if not path:
        return value
    out = msgspec.json.decode(msgspec.json.encode(doc))
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


def _read_whole(channel: str, body: bytes, headers: dict) -> None:
    """Parse and validate as the intake service does; only Rejected may come out."""
    prof = g.profile(SETTINGS, channel, "default")
    for draft in g.parse(g.Delivery(channel=channel, account=None, headers=headers, body=body), prof):
        g.impact(draft, prof)
        if draft.kind == "order":
            float(draft.value())
            g.validate(draft, channel, "default", prof, World(SETTINGS), SETTINGS)


@pytest.mark.parametrize(("channel", "fixture", "headers"), JSON_FIXTURES, ids=[f for _c, f, _h in JSON_FIXTURES])
def test_every_field_replaced_by_an_odd_type_is_rejected_cleanly(channel, fixture, headers):
    """Each field of a real payload (and the payload itself) replaced by a value of another
    JSON type: a list for an object, a number for a string, out-of-range dates and amounts."""
    doc = msgspec.json.decode((FIX / fixture).read_bytes())
    _read_whole(channel, msgspec.json.encode(doc), headers)  # the real payload itself reads cleanly
    outcomes = Counter()
    for path in _paths(doc):
        for value in ODD_VALUES:
            body = msgspec.json.encode(_replaced(doc, path, value))
            try:  # anything but Rejected (a crash) fails the test here
                _read_whole(channel, body, headers)
                outcomes["read"] += 1
            except Rejected:
                outcomes["rejected"] += 1
    # the mutations reached validation: many are refused, and fields that are free text read
    assert outcomes["rejected"] > 0 and outcomes["read"] > 0, outcomes


def test_x12_elements_replaced_by_odd_text_are_rejected_cleanly():
    text = (FIX / "x12_850" / "two_pos.edi").read_text()
    elem, term = text[3], text[105]
    _read_whole("x12_850", text.encode(), {})  # the real interchange itself reads cleanly
    segments = text.split(term)
    outcomes = Counter()
    for i, seg in enumerate(segments):
        elements = seg.split(elem)
        for j in range(1, len(elements)):
            for value in ("²", "", "9E999999", "-1", "00010101", "２０２４０１０１", "NaN", "sNaN", "1" * 5000):
                changed = [*elements[:j], value, *elements[j + 1 :]]
                body = term.join([*segments[:i], elem.join(changed), *segments[i + 1 :]]).encode()
                try:  # anything but Rejected (a crash) fails the test here
                    _read_whole("x12_850", body, {})
                    outcomes["read"] += 1
                except Rejected:
                    outcomes["rejected"] += 1
    assert outcomes["rejected"] > 0 and outcomes["read"] > 0, outcomes


def test_json_nested_too_deep_is_a_malformed_body():
    body = b'{"id": 1, "line_items": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    with pytest.raises(Rejected) as exc:
        _read_whole("shopify", body, {"x-shopify-topic": "orders/create"})
    assert exc.value.code == "malformed_body"


def test_a_woocommerce_source_header_that_is_no_url_names_no_host():
    from backorder.intake import woocommerce

    assert woocommerce.account_hint({"x-wc-webhook-source": "http://[oops/"}) == "http://[oops"


HUGE_AMOUNTS = [
    (
        "shopify",
        "shopify/orders_create.json",
        {"x-shopify-topic": "orders/create"},
        ("line_items", 0, "discount_allocations"),
        [{"amount": "9E999999"}, {"amount": "9E999999"}],
    ),
    (
        "woocommerce",
        "woocommerce/order_created.json",
        {"x-wc-webhook-topic": "order.created"},
        ("fee_lines",),
        [{"total": "9E999999"}, {"total": "9E999999"}],
    ),
    (
        "bigcommerce",
        "bigcommerce/order_created.json",
        {},
        ("products", 0, "applied_discounts"),
        [{"amount": "-9E999999"}, {"amount": "9E999999"}],
    ),
    (
        "amazon_sp",
        "amazon_sp/order_unshipped.json",
        {},
        ("getOrderItems", 1, "payload", "OrderItems", 0, "ShippingPrice"),
        {"Amount": "9E999999"},
    ),
]


@pytest.mark.parametrize(
    ("channel", "fixture", "headers", "path", "value"), HUGE_AMOUNTS, ids=[c for c, *_ in HUGE_AMOUNTS]
)
def test_amounts_whose_sum_would_overflow_decimal_are_refused_as_read(channel, fixture, headers, path, value):
    """An adapter sums and subtracts a payload's amounts (totals, discounts): amounts so
    large that Decimal would overflow are refused with invalid_price when read."""
    doc = _replaced(msgspec.json.decode((FIX / fixture).read_bytes()), path, value)
    with pytest.raises(Rejected) as exc:
        _read_whole(channel, msgspec.json.encode(doc), headers)
    assert exc.value.code == "invalid_price" and "out of range" in exc.value.message
