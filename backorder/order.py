"""The canonical order: the one shape every sales channel's order is normalised into.

Intake's adapters turn a Shopify, WooCommerce, CSV... delivery into these fields; a
client submits them directly with ``order.submit`` (``backorder.protocol.OrderSubmit`` is
this struct plus the request's ``op`` and ``id``). The constraints here are the wire's
validation of an order. The journal does not embed these structs: it records an accepted
order as its own ``events.OrderRecord``, so changing this shape never silently changes
the journal format. Pure data: no imports from the rest of the product but the numeric
bounds.
"""

from __future__ import annotations

import decimal
from typing import Annotated

import msgspec
from msgspec import Meta, Struct

from backorder.numbers import MAX_INT

Quantity = Annotated[int, Meta(gt=0, le=MAX_INT)]
# no control characters: a SKU is printed as one line of pick lists, labels and documents
Sku = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")]
Text = Annotated[str, Meta(max_length=512)]


class Customer(Struct, kw_only=True, forbid_unknown_fields=False):
    id: Text = ""
    name: Text = ""


class Address(Struct, kw_only=True):
    name: Text = ""
    company: Text = ""
    address1: Text = ""
    address2: Text = ""
    city: Text = ""
    region: Text = ""
    postal_code: Text = ""
    country_code: Text = ""
    phone: Text = ""


class OrderLine(Struct, kw_only=True):
    """One line with its money as the channel sent it, in the order's currency."""

    sku: Sku
    qty: Quantity
    unit_price: decimal.Decimal = decimal.Decimal(0)  # per unit, before discounts and tax
    requires_shipping: bool = True
    discount: decimal.Decimal = decimal.Decimal(0)  # allocated to this line, for all its units
    # What the line costs after its discount, before tax. Sent when the channel prices the
    # line as a whole (Amazon's ItemPrice): qty x unit_price need not give it back exactly.
    # None: qty x unit_price - discount.
    line_total: decimal.Decimal | None = None
    channel_line_id: Annotated[str, Meta(max_length=128)] = ""  # the channel's line id (writing fulfillment back)


class Totals(Struct, kw_only=True):
    """The order's money as the channel reported it, in the order's currency. Shown as
    sent, never recomputed: a channel that prices tax-inclusive does not add up as
    subtotal - discount + shipping + fees + tax."""

    subtotal: decimal.Decimal = decimal.Decimal(0)  # merchandise before discounts and tax
    discount: decimal.Decimal = decimal.Decimal(0)  # every discount of the order (lines and order level)
    shipping: decimal.Decimal = decimal.Decimal(0)  # shipping charged, before tax
    fees: decimal.Decimal = decimal.Decimal(0)  # handling, gift wrap, fee lines
    tax: decimal.Decimal = decimal.Decimal(0)
    total: decimal.Decimal = decimal.Decimal(0)  # the channel's grand total


class CanonicalOrder(Struct, kw_only=True):
    """An order as accepted (idempotent on channel, account, external_id)."""

    channel: Annotated[str, Meta(min_length=1, max_length=64)]
    account: Annotated[str, Meta(min_length=1, max_length=128)] = "default"
    external_id: Annotated[str, Meta(min_length=1, max_length=128)]
    order_number: Text = ""
    customer: Customer = msgspec.field(default_factory=Customer)
    email: Text = ""
    shipping_address: Address = msgspec.field(default_factory=Address)
    created_at: str | None = None
    currency: Annotated[str, Meta(pattern=r"^[A-Z]{3}$")] = "USD"
    lines: Annotated[list[OrderLine], Meta(min_length=1, max_length=1000)]
    rush: bool = False
    priority: bool = False
    ship_complete: bool = False
    # Why the order waits for payment ("" = it does not): a held order is recorded but its
    # lines join no queue until ``order.release`` (or a paid redelivery through intake).
    hold: Text = ""
    # The source's version of the order (its updated_at, RFC 3339 UTC with microseconds):
    # intake applies a redelivery only when it is not older than the version applied.
    source_version: Annotated[str, Meta(max_length=64)] | None = None
    totals: Totals | None = None  # None: the client sent no order totals
    # The channel withheld the street address (Amazon without restricted data): the order
    # is accepted and allocated, but no shipment is labelled until ``order.address``.
    needs_address: bool = False
