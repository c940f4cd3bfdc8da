"""Adapter and governance rules that need no daemon: the order of the checks, X12
separators declared by the ISA, money as Decimal, and the per-account profile merge."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from backorder.actors.model import World
from backorder.config.settings import Settings
from backorder.errors import Rejected
from backorder.intake import governance as g

FIX = Path(__file__).resolve().parents[1] / "intake" / "fixtures"
SETTINGS = msgspec.convert({
    "intake": {"max_body_bytes": 2048},
    "channels": {"shopify": {"secret_env": "BO_UNIT_SECRET", "currencies": ["EUR"],
                             "accounts": {"b.myshopify.com": {"currencies": ["USD"], "lenient_numbers": True}}}},
}, Settings)


def delivery(body: bytes, headers: dict, channel: str = "shopify", via: str = "socket") -> g.Delivery:
    return g.Delivery(channel=channel, account=None, headers=g.normalise_headers(headers), body=body, via=via)


def first_failure(d: g.Delivery) -> str:
    """Run the checks in the governed order and name the first that fails."""
    try:
        g.check_size(d, SETTINGS.intake)
        prof = g.profile(SETTINGS, d.channel, g.resolve_account(d))
        g.check_signature(d, prof)
        for draft in g.parse(d, prof):
            if draft.kind == "ignored":
                return draft.code
            g.validate(draft, d.channel, g.resolve_account(d), prof, World(SETTINGS), SETTINGS)
    except Rejected as exc:
        return exc.code
    return "ok"


def test_checks_run_size_then_signature_then_parse_then_topic(monkeypatch):
    monkeypatch.setenv("BO_UNIT_SECRET", "s3cret")
    junk = b"{" * 3000
    shop = {"X-Shopify-Shop-Domain": "a.myshopify.com", "X-Shopify-Topic": "orders/create"}
    # too large AND unsigned: size first (nothing reads a huge body, not even the HMAC)
    assert first_failure(delivery(junk, shop)) == "body_too_large"
    assert first_failure(delivery(b"{", shop)) == "signature_missing"
    assert first_failure(delivery(b"{", {**shop, "X-Shopify-Hmac-Sha256": "AAAA"})) == "signature_invalid"
    signed = {**shop, "X-Shopify-Hmac-Sha256": g.sign(b"{", b"s3cret")}
    assert first_failure(delivery(b"{", signed)) == "malformed_body"
    body = b'{"id": 1, "line_items": []}'
    other_topic = {**shop, "X-Shopify-Topic": "products/create", "X-Shopify-Hmac-Sha256": g.sign(body, b"s3cret")}
    assert first_failure(delivery(body, other_topic)) == "unsupported_topic"
    # channels without a scheme of their own: trusted over the socket, signed over HTTP
    csv = b"order_id,sku,qty\n"
    assert first_failure(delivery(csv, {}, "csv", via="socket")) == "malformed_body"
    assert first_failure(delivery(csv, {}, "csv", via="http")) == "signature_missing"


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
    assert [(ln.sku, ln.qty, ln.unit_price) for ln in drafts[0].lines] == [
        ("GRINDER-SS", "24", Decimal("12.50")), ("FILTER-100", "100", Decimal("1.10"))]
    assert drafts[0].account == "BUYERCO" and drafts[0].rush is True


def test_money_stays_decimal_and_quantities_need_the_lenient_profile():
    body = (FIX / "woocommerce" / "order_created.json").read_bytes().replace(b'"quantity": 2', b'"quantity": "2"')
    d = delivery(body, {"X-WC-Webhook-Topic": "order.created"}, "woocommerce")
    strict = g.profile(SETTINGS, "woocommerce", "default")
    (draft,) = g.parse(d, strict)
    assert draft.lines[0].unit_price == Decimal("17.50") and isinstance(draft.total, Decimal)
    with pytest.raises(Rejected) as exc:
        g.validate(draft, "woocommerce", "default", strict, World(SETTINGS), SETTINGS)
    assert exc.value.code == "invalid_quantity"
    lenient = msgspec.structs.replace(strict, lenient_numbers=True)
    order = g.validate(draft, "woocommerce", "default", lenient, World(SETTINGS), SETTINGS)
    assert order.lines[0].qty == 2 and order.lines[0].unit_price == Decimal("17.50")
