"""WooCommerce REST API v3 order webhooks (``order.created``, ``order.updated``,
``order.deleted``), body = the v3 order resource.

Semantics (WooCommerce docs): ``X-WC-Webhook-Signature`` is the base64 HMAC-SHA256 of the
raw body with the webhook's secret; ``X-WC-Webhook-Topic`` the topic; the shop is
``X-WC-Webhook-Source`` (its URL). When a webhook is created WooCommerce pings the URL
with the form body ``webhook_id=N`` and no signature: acknowledged and ignored.
``date_created_gmt`` is UTC without an offset (``date_created`` is the shop's local time).
``line_items[].subtotal`` is the line's extended amount before discounts, ``total``
after them (both before tax: ``subtotal_tax``, ``total_tax``), ``id`` the line's id;
``price`` is a float and therefore not used. Order money: ``discount_total``,
``shipping_total``, ``fee_lines[].total``, ``total_tax``, ``total`` (the grand total);
the subtotal is the lines' ``subtotal`` summed. ``quantity`` is an integer, but plugins
and stores that edit orders by hand send it as a numeric string: accepted by default. Status ``pending`` (awaiting
payment) and ``on-hold`` (awaiting confirmation) are payment holds; ``cancelled``,
``refunded``, ``failed`` and ``trash`` end the order.
"""

from __future__ import annotations

import re
from decimal import Decimal
from urllib.parse import urlsplit

from backorder.intake import draft as d
from backorder.intake.jsonbody import decode

NAME = "woocommerce"
SIGNATURE_HEADER = "x-wc-webhook-signature"
DEFAULTS = {
    "hold_statuses": ["pending", "on-hold"],
    "rush_services": ["express", "overnight", "next_day"],
    "lenient_numbers": True,
}
ENDED = {"cancelled", "refunded", "failed", "trash"}
_PING = re.compile(rb"^webhook_id=\d+$")


def account_hint(headers: dict[str, str]) -> str | None:
    src = headers.get("x-wc-webhook-source", "")
    try:
        host = urlsplit(src).hostname
    except ValueError:  # e.g. "http://[oops/": not a URL; the header is read before any signature
        host = None
    return (host or src.strip("/")[:128]) or None


def is_ping(headers: dict[str, str], body: bytes) -> bool:
    return SIGNATURE_HEADER not in headers and bool(_PING.match(body.strip()))


def parse(body: bytes, headers: dict[str, str], profile) -> list[d.Draft]:
    t = headers.get("x-wc-webhook-topic", "")
    if t not in ("order.created", "order.updated", "order.deleted"):
        decode(body)
        return [d.ignored("unsupported_topic", f"topic {t!r} is not an order topic we handle")]
    doc = decode(body)
    oid = d.ident(d.get(doc, "id", "$"), "$.id")
    status = d.text(doc.get("status"))
    if t == "order.deleted" or status in ENDED:
        return [d.Draft(kind="cancel", external_id=oid, message=f"status {status or 'deleted'}")]
    bill = d.opt_obj(doc.get("billing"), "$.billing")
    ship = d.opt_obj(doc.get("shipping"), "$.shipping")
    lines, subtotal = [], Decimal(0)
    for i, li in enumerate(d.arr(d.get(doc, "line_items", "$"), "$.line_items")):
        path = f"$.line_items[{i}]"
        d.obj(li, path)
        qty = li.get("quantity")
        total = d.money(li.get("total"), path + ".total")
        # an absent subtotal: no discount on the line
        before = d.money(li.get("subtotal"), path + ".subtotal") if li.get("subtotal") is not None else total
        subtotal += before
        lines.append(
            d.DraftLine(
                sku=d.text(li.get("sku"), 64),
                qty=qty,
                unit_price=d.unit(before, qty),
                discount=before - total,
                line_total=total,
                name=d.text(li.get("name")),
                channel_line_id=d.text(li.get("id"), 128),
            )
        )
    service = " ".join(
        d.text(s.get("method_id")) + " " + d.text(s.get("method_title"))
        for s in d.opt_arr(doc.get("shipping_lines"), "$.shipping_lines")
        if isinstance(s, dict)
    )
    grand = d.money(doc.get("total"), "$.total")
    return [
        d.Draft(
            external_id=oid,
            order_number=d.text(doc.get("number")),
            customer={"id": d.text(doc.get("customer_id")), "name": d.full_name(bill)},
            email=d.text(bill.get("email")),
            shipping_address=d.address(
                ship,
                d.full_name(ship),
                address1="address_1",
                address2="address_2",
                region="state",
                postal_code="postcode",
                country_code="country",
            ),
            created_at=d.utc(doc.get("date_created_gmt"), "$.date_created_gmt"),
            currency=d.text(doc.get("currency")),
            lines=lines,
            rush=d.matches(service, profile.rush_services),
            hold=f"status {status}" if status in (profile.hold_statuses or ()) else "",
            total=grand,
            totals=d.totals(
                subtotal=subtotal,
                discount=d.money(doc.get("discount_total"), "$.discount_total"),
                shipping=d.money(doc.get("shipping_total"), "$.shipping_total"),
                fees=d.amount_sum(d.opt_arr(doc.get("fee_lines"), "$.fee_lines"), "total", "$.fee_lines"),
                tax=d.money(doc.get("total_tax"), "$.total_tax"),
                total=grand,
            ),
            version=d.version_ts(doc.get("date_modified_gmt")),
        )
    ]
