"""Shopify order webhooks (``orders/create``, ``orders/updated``, ``orders/paid``,
``orders/cancelled``), body = the REST Admin API order resource.

Semantics (Shopify docs): ``X-Shopify-Hmac-Sha256`` is the base64 HMAC-SHA256 of the raw
body with the app's client secret; the shop is ``X-Shopify-Shop-Domain``; the topic is
``X-Shopify-Topic``. ``id`` is a 64-bit integer (above 2^53: kept exact). ``created_at``
carries the shop's UTC offset. ``line_items[].price`` is the unit price before discounts,
``discount_allocations[].amount`` the discounts allocated to the line for all its units
(order-level codes included; ``total_discount`` when a payload has no allocations), ``id``
the line's id. Order money: ``total_line_items_price`` (before discounts),
``total_discounts``, ``total_shipping_price_set.shop_money.amount`` (else the shipping
lines' ``price``), ``total_tax``, ``total_price`` (the grand total). ``requires_shipping = false`` (and
``gift_card = true``) lines ship nothing. ``financial_status = "pending"`` means not paid
yet (a payment hold); ``cancelled_at`` set means cancelled. Rush service is the shipping
line's title / code.
"""

from __future__ import annotations

from backorder.intake import draft as d
from backorder.intake.jsonbody import decode

NAME = "shopify"
SIGNATURE_HEADER = "x-shopify-hmac-sha256"
DEFAULTS = {"hold_statuses": ["pending"], "rush_services": ["express", "overnight", "next day", "priority"]}
ORDER_TOPICS = {"orders/create", "orders/updated", "orders/paid", "orders/cancelled", "orders/edited"}


def account_hint(headers: dict[str, str]) -> str | None:
    return headers.get("x-shopify-shop-domain") or None


def topic(headers: dict[str, str]) -> str:
    return headers.get("x-shopify-topic", "")


def parse(body: bytes, headers: dict[str, str], profile) -> list[d.Draft]:
    doc = decode(body)
    t = topic(headers)
    if t not in ORDER_TOPICS:
        return [d.ignored("unsupported_topic", f"topic {t!r} is not an order topic we handle")]
    oid = d.ident(d.get(doc, "id", "$"), "$.id")
    if t == "orders/cancelled" or doc.get("cancelled_at"):
        return [d.Draft(kind="cancel", external_id=oid, message=d.text(doc.get("cancel_reason")) or "cancelled")]
    cust = d.opt_obj(doc.get("customer"), "$.customer")
    ship = d.opt_obj(doc.get("shipping_address"), "$.shipping_address")
    name = d.full_name(cust)
    lines = []
    for i, li in enumerate(d.arr(d.get(doc, "line_items", "$"), "$.line_items")):
        path = f"$.line_items[{i}]"
        d.obj(li, path)
        qty = li.get("quantity")
        price = d.money(li.get("price"), path + ".price")
        allocations = d.opt_arr(li.get("discount_allocations"), path + ".discount_allocations")
        if allocations:
            discount = d.amount_sum(allocations, "amount", path + ".discount_allocations")
        else:
            discount = d.money(li.get("total_discount"), path + ".total_discount")
        ships = bool(li.get("requires_shipping", True)) and not li.get("gift_card", False)
        sku = d.text(li.get("sku"), 64)
        if not sku and not ships:
            sku = f"NOSKU-{d.text(li.get('id'), 50)}"  # a gift card / digital line names no SKU
        lines.append(
            d.DraftLine(
                sku=sku,
                qty=qty,
                unit_price=price,
                discount=discount,
                requires_shipping=ships,
                name=d.text(li.get("name")),
                channel_line_id=d.text(li.get("id"), 128),
            )
        )
    shipping_lines = d.opt_arr(doc.get("shipping_lines"), "$.shipping_lines")
    service = " ".join(
        d.text(s.get("title")) + " " + d.text(s.get("code")) for s in shipping_lines if isinstance(s, dict)
    )
    shop_shipping = d.opt_obj(
        d.opt_obj(doc.get("total_shipping_price_set"), "$.total_shipping_price_set").get("shop_money"),
        "$.total_shipping_price_set.shop_money",
    )
    if "amount" in shop_shipping:
        shipping = d.money(shop_shipping["amount"], "$.total_shipping_price_set.shop_money.amount")
    else:
        shipping = d.amount_sum(shipping_lines, "price", "$.shipping_lines")
    subtotal = doc.get("total_line_items_price")
    total = d.money(doc.get("total_price"), "$.total_price")
    status = d.text(doc.get("financial_status"))
    return [
        d.Draft(
            external_id=oid,
            order_number=d.text(doc.get("name") or doc.get("order_number")),
            customer={"id": d.text(cust.get("id")), "name": name},
            email=d.text(doc.get("email") or doc.get("contact_email")),
            shipping_address={
                **d.address(ship, d.text(ship.get("name")), postal_code="zip"),
                "region": d.text(ship.get("province_code") or ship.get("province")),
            },
            created_at=d.utc(doc.get("created_at"), "$.created_at"),
            currency=d.text(doc.get("currency")),
            lines=lines,
            rush=d.matches(service, profile.rush_services),
            hold=f"payment {status}" if status in (profile.hold_statuses or ()) else "",
            total=total,
            totals=d.totals(
                subtotal=d.gross(lines) if subtotal is None else d.money(subtotal, "$.total_line_items_price"),
                discount=d.money(doc.get("total_discounts"), "$.total_discounts"),
                shipping=shipping,
                tax=d.money(doc.get("total_tax"), "$.total_tax"),
                total=total,
            ),
            version=d.version_ts(doc.get("updated_at")),
        )
    ]
