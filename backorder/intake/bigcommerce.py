"""BigCommerce, as delivered by a fetcher: ``{"envelope": "bigcommerce/orders-v2",
"store_hash", "webhook": <the webhook callback>, "order": <GET /v2/orders/{id}>,
"products": [<GET /v2/orders/{id}/products>], "shipping_addresses": [...]}``.

Semantics (BigCommerce docs): the callback is ``{"scope": "store/order/created", "store_id",
"data": {"type": "order", "id": N}, "hash", "created_at", "producer": "stores/{hash}"}``
(the webhook itself carries no signature: the fetcher authenticates with the API). V2
amounts are decimal strings; ``date_created`` is RFC 2822 (``"Tue, 05 Mar 2019 21:40:37
+0000"``). ``products[].price_ex_tax`` is the unit price before tax (``price_inc_tax`` with it),
``total_ex_tax`` extended, before discounts; ``applied_discounts[].amount`` the
discounts on the line (coupons included); ``id`` the order product's id.
``type = "digital"`` products ship nothing. Order money: ``subtotal_ex_tax``,
``discount_amount`` + ``coupon_discount``, ``shipping_cost_ex_tax``,
``handling_cost_ex_tax`` + ``wrapping_cost_ex_tax`` (fees), ``total_tax``,
``total_inc_tax`` (the grand total). ``items_total`` is the order's unit count.
``status_id`` 5 Cancelled / 6 Declined end the order; the payment-hold statuses are by
name (default "Pending", "Awaiting Payment", "Manual Verification Required"). Rush is the
shipping address's ``shipping_method``.
"""

from __future__ import annotations

from decimal import Decimal

from backorder.errors import InvalidInput
from backorder.intake import draft as d

NAME = "bigcommerce"
SIGNATURE_HEADER = None
ENVELOPE = "bigcommerce/orders-v2"
DEFAULTS = {
    "hold_statuses": ["Pending", "Awaiting Payment", "Manual Verification Required"],
    "rush_services": ["express", "overnight", "next day", "priority"],
}
SCOPES = {"store/order/created", "store/order/updated", "store/order/statusUpdated"}
ENDED = {5, 6}  # Cancelled, Declined


def parse(body: bytes, headers: dict[str, str], profile) -> list[d.Draft]:
    env = d.envelope(body, ENVELOPE)
    hook = d.obj(d.get(env, "webhook", "$"), "$.webhook")
    scope = d.text(hook.get("scope"))
    if scope not in SCOPES:
        return [d.ignored("unsupported_topic", f"scope {scope!r} is not an order scope we handle")]
    order = d.obj(d.get(env, "order", "$"), "$.order")
    oid = d.ident(d.get(order, "id", "$.order"), "$.order.id")
    hook_id = d.opt_obj(hook.get("data"), "$.webhook.data").get("id")
    if hook_id is not None and d.ident(hook_id, "$.webhook.data.id") != oid:
        raise InvalidInput("order_items_mismatch", f"the webhook is for order {hook_id}, the fetched order is {oid}")
    status_id = order.get("status_id")
    status = d.text(order.get("status"))
    store = d.text(env.get("store_hash")) or None
    if isinstance(status_id, int) and status_id in ENDED:
        return [d.Draft(kind="cancel", external_id=oid, account=store, message=f"status {status}")]
    lines, units = [], 0
    for i, p in enumerate(d.arr(d.get(env, "products", "$"), "$.products")):
        path = f"$.products[{i}]"
        d.obj(p, path)
        if p.get("order_id") is not None and d.ident(p["order_id"], path + ".order_id") != oid:
            raise InvalidInput("order_items_mismatch", f"{path} belongs to order {p['order_id']}, not {oid}")
        qty = p.get("quantity")
        if isinstance(qty, int):
            units += qty
        discount = d.amount_sum(
            d.opt_arr(p.get("applied_discounts"), path + ".applied_discounts"), "amount", path + ".applied_discounts"
        )
        extended = p.get("total_ex_tax")
        lines.append(
            d.DraftLine(
                sku=d.text(p.get("sku"), 64),
                qty=qty,
                unit_price=d.money(p.get("price_ex_tax"), path + ".price_ex_tax"),
                discount=discount,
                line_total=None if extended is None else d.money(extended, path + ".total_ex_tax") - discount,
                requires_shipping=p.get("type", "physical") != "digital",
                name=d.text(p.get("name")),
                channel_line_id=d.text(p.get("id"), 128),
            )
        )
    items_total = order.get("items_total")
    if isinstance(items_total, int) and items_total != units:
        raise InvalidInput("order_items_mismatch", f"items_total is {items_total}, the products add up to {units}")
    addrs = d.opt_arr(env.get("shipping_addresses"), "$.shipping_addresses")
    ship = d.obj(addrs[0], "$.shipping_addresses[0]") if addrs else {}
    bill = d.opt_obj(order.get("billing_address"), "$.order.billing_address")
    service = " ".join(d.text(a.get("shipping_method")) for a in addrs if isinstance(a, dict))

    def money(key: str) -> Decimal:
        return d.money(order.get(key), f"$.order.{key}")

    grand = money("total_inc_tax")
    subtotal = order.get("subtotal_ex_tax")
    return [
        d.Draft(
            external_id=oid,
            account=store,
            order_number=oid,
            customer={"id": d.text(order.get("customer_id")), "name": d.full_name(bill)},
            email=d.text(bill.get("email") or ship.get("email")),
            shipping_address=d.address(
                ship,
                d.full_name(ship),
                address1="street_1",
                address2="street_2",
                region="state",
                postal_code="zip",
                country_code="country_iso2",
            ),
            created_at=d.rfc2822_utc(order.get("date_created"), "$.order.date_created"),
            currency=d.text(order.get("currency_code")),
            lines=lines,
            rush=d.matches(service, profile.rush_services),
            hold=f"status {status}" if status in (profile.hold_statuses or ()) else "",
            total=grand,
            totals=d.totals(
                subtotal=d.gross(lines) if subtotal is None else d.money(subtotal, "$.order.subtotal_ex_tax"),
                discount=money("discount_amount") + money("coupon_discount"),
                shipping=money("shipping_cost_ex_tax"),
                fees=money("handling_cost_ex_tax") + money("wrapping_cost_ex_tax"),
                tax=money("total_tax"),
                total=grand,
            ),
            version=d.version_ts(order.get("date_modified"), rfc2822=True),
        )
    ]
