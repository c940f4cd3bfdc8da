"""Amazon Selling Partner API, Orders v0, as delivered by a poller:
``{"envelope": "amazon-sp-api/orders-v0", "seller_id", "region", "retrieved_at",
"getOrder": <getOrder response>, "getOrderItems": [<getOrderItems response page>, ...]}``.

Semantics (SP-API Orders v0 reference): ``payload.AmazonOrderId`` (3-7-7) is the id;
``PurchaseDate`` is ISO 8601 UTC. ``OrderItems[].ItemPrice`` is the selling price of the
item *multiplied by the quantity ordered* (extended, excluding shipping and gift wrap);
``PromotionDiscount`` is also for the whole item; ``ItemTax``, ``ShippingPrice``,
``ShippingTax``, ``ShippingDiscount``, ``GiftWrapPrice``, ``GiftWrapTax`` are per item as
well; ``OrderItemId`` is the item's id. The line keeps ItemPrice − PromotionDiscount as
its exact total (a unit price of 47.97 / 3 would not give it back). In marketplaces that
price with VAT (EU, UK) ItemPrice includes it: kept as sent, ``ItemTax`` says how much.
Without a restricted data token ``ShippingAddress`` holds only City, StateOrRegion,
PostalCode and CountryCode: the order is accepted and waits for its address. ``OrderStatus = "Pending"`` means the
payment is not authorised yet (do not ship: a payment hold); ``Canceled`` ends the order;
``FulfillmentChannel = "AFN"`` orders are shipped by Amazon, not by this site.
``NumberOfItemsShipped + NumberOfItemsUnshipped`` must equal the items' quantities.
``BuyerInfo.BuyerEmail`` is often withheld (anonymised): list "email" in
``optional_fields``. Rush service is ``ShipmentServiceLevelCategory``.
"""

from __future__ import annotations

from decimal import Decimal

from backorder.errors import InvalidInput
from backorder.intake import draft as d

NAME = "amazon_sp"
SIGNATURE_HEADER = None
ENVELOPE = "amazon-sp-api/orders-v0"
DEFAULTS = {
    "hold_statuses": ["Pending"],
    "rush_services": ["Expedited", "NextDay", "SameDay", "SecondDay"],
    "optional_fields": ["email"],
}


def parse(body: bytes, headers: dict[str, str], profile) -> list[d.Draft]:
    env = d.envelope(body, ENVELOPE)
    order = d.obj(
        d.get(d.obj(d.get(env, "getOrder", "$"), "$.getOrder"), "payload", "$.getOrder"), "$.getOrder.payload"
    )
    oid = d.ident(d.get(order, "AmazonOrderId", "$.getOrder.payload"), "$.getOrder.payload.AmazonOrderId")
    status = d.text(order.get("OrderStatus"))
    seller = d.text(env.get("seller_id")) or None
    if status == "Canceled":
        return [d.Draft(kind="cancel", external_id=oid, account=seller, message="OrderStatus Canceled")]
    if order.get("FulfillmentChannel") == "AFN":
        afn = d.ignored("marketplace_fulfilled", "FulfillmentChannel AFN: Amazon ships this order", oid)
        afn.account = seller
        return [afn]
    total = d.opt_obj(order.get("OrderTotal"), "$.getOrder.payload.OrderTotal")
    currency = d.text(total.get("CurrencyCode"))
    items = []
    for n, page in enumerate(d.arr(d.get(env, "getOrderItems", "$"), "$.getOrderItems")):
        payload = d.obj(
            d.get(d.obj(page, f"$.getOrderItems[{n}]"), "payload", f"$.getOrderItems[{n}]"),
            f"$.getOrderItems[{n}].payload",
        )
        if d.text(payload.get("AmazonOrderId")) not in ("", oid):
            raise InvalidInput(
                "order_items_mismatch", f"getOrderItems[{n}] is for order {payload.get('AmazonOrderId')}, not {oid}"
            )
        items += d.arr(
            d.get(payload, "OrderItems", f"$.getOrderItems[{n}].payload"), f"$.getOrderItems[{n}].payload.OrderItems"
        )
    lines, units = [], 0
    sums = dict.fromkeys(("subtotal", "discount", "shipping", "fees", "tax"), Decimal(0))
    for i, it in enumerate(items):
        path = f"$.OrderItems[{i}]"
        d.obj(it, path)
        qty = it.get("QuantityOrdered")
        if isinstance(qty, int) and not isinstance(qty, bool):
            units += qty
            if qty == 0:
                continue  # an item the buyer cancelled: nothing to ship
        price = d.opt_obj(it.get("ItemPrice"), path + ".ItemPrice")

        def amount(key: str, item: dict = it, path: str = path) -> Decimal:
            return d.money(d.opt_obj(item.get(key), f"{path}.{key}").get("Amount"), f"{path}.{key}.Amount")

        extended, discount = amount("ItemPrice"), amount("PromotionDiscount")
        sums["subtotal"] += extended
        sums["discount"] += discount + amount("ShippingDiscount")
        sums["shipping"] += amount("ShippingPrice")
        sums["fees"] += amount("GiftWrapPrice")
        sums["tax"] += amount("ItemTax") + amount("ShippingTax") + amount("GiftWrapTax")
        lines.append(
            d.DraftLine(
                sku=d.text(it.get("SellerSKU"), 64),
                qty=qty,
                unit_price=d.unit(extended, qty),
                discount=discount,
                line_total=extended - discount,
                currency=d.text(price.get("CurrencyCode")) or None,
                name=d.text(it.get("Title")),
                channel_line_id=d.text(it.get("OrderItemId"), 128),
            )
        )
    counted = order.get("NumberOfItemsShipped"), order.get("NumberOfItemsUnshipped")
    if all(isinstance(c, int) for c in counted) and sum(counted) != units:
        raise InvalidInput(
            "order_items_mismatch",
            f"the order counts {sum(counted)} items (shipped + unshipped), its getOrderItems pages {units}",
        )
    addr = d.opt_obj(order.get("ShippingAddress"), "$.getOrder.payload.ShippingAddress")
    buyer = d.opt_obj(order.get("BuyerInfo"), "$.getOrder.payload.BuyerInfo")
    grand = d.money(total.get("Amount"), "$.getOrder.payload.OrderTotal.Amount") if total else Decimal(0)
    return [
        d.Draft(
            external_id=oid,
            account=seller,
            order_number=oid,
            customer={"id": "", "name": d.text(buyer.get("BuyerName"))},
            email=d.text(buyer.get("BuyerEmail")),
            shipping_address=d.address(
                addr,
                d.text(addr.get("Name")),
                company="CompanyName",
                address1="AddressLine1",
                address2="AddressLine2",
                city="City",
                region="StateOrRegion",
                postal_code="PostalCode",
                country_code="CountryCode",
                phone="Phone",
            ),
            created_at=d.utc(order.get("PurchaseDate"), "$.getOrder.payload.PurchaseDate"),
            currency=currency,
            lines=lines,
            rush=d.matches(d.text(order.get("ShipmentServiceLevelCategory")), profile.rush_services),
            priority=bool(order.get("IsPremiumOrder")),
            hold=f"OrderStatus {status}" if status in (profile.hold_statuses or ()) else "",
            total=grand,
            totals=d.totals(total=grand, **sums),
            # retrieved without a restricted data token: no street (governance decides)
            needs_address=not d.text(addr.get("AddressLine1")),
            version=d.version_ts(order.get("LastUpdateDate")),
        )
    ]
