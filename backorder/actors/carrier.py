"""Carriers are adapters. The built-in local carrier assigns tracking numbers itself, at
pick time, inside the order actor. A remote carrier (EasyPost, UPS: ``backorder/notify/
carriers.py`` speaks their APIs) is only named here: picking a shipment for it puts the
shipment in ``label_pending`` and queues a ``label`` notice in the outbox, and the label is
bought off the hot path by the notifier. Which carrier labels an order is ``route`` (config:
``fulfillment.carrier`` and its per-channel / per-service routing); which of a carrier's
rates it buys is ``choose_rate``. No external service is called from here."""

from __future__ import annotations

import decimal
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import msgspec

from backorder.config.settings import FulfillmentSettings
from backorder.documents.cells import one_line

if TYPE_CHECKING:
    from backorder.actors.model import Order, Shipment


class Carrier(Protocol):
    name: str
    remote: bool

    def tracking_number(self, shipment_id: str) -> str:
        """A tracking number for the shipment; must be the same for the same shipment."""
        ...


class LocalCarrier:
    """Tracking numbers 'BO' + 10 digits + a mod-10 check digit, derived from the shipment id."""

    name = "local"
    remote = False

    def __init__(self, site: str = "1") -> None:
        self.site = site

    def tracking_number(self, shipment_id: str) -> str:
        digits = f"{int(self.site) % 100:02d}{int(shipment_id[1:]):08d}"
        check = (10 - sum((3 if i % 2 == 0 else 1) * int(d) for i, d in enumerate(digits)) % 10) % 10
        return f"BO{digits}{check}"


class RemoteCarrier:
    """A carrier whose labels are bought through its API, off the trio hot path."""

    remote = True

    def __init__(self, name: str) -> None:
        self.name = name

    def tracking_number(self, shipment_id: str) -> str:
        raise TypeError(f"{self.name} assigns tracking numbers when the label is bought")


# ``fulfillment.carrier`` -> the carrier it names (config lists the same names).
CARRIERS: dict[str, Callable[[], Carrier]] = {
    "local": LocalCarrier,
    "easypost": lambda: RemoteCarrier("easypost"),
    "ups": lambda: RemoteCarrier("ups"),
}


def route(fulfillment: FulfillmentSettings, channel: str, rush: bool) -> str:
    """The carrier that labels an order: by its channel, else by its service level, else the default."""
    by_channel = fulfillment.carrier_by_channel.get(channel)
    if by_channel is not None:
        return by_channel
    return fulfillment.carrier_by_service.get("rush" if rush else "standard", fulfillment.carrier)


class Rate(msgspec.Struct, frozen=True, kw_only=True):
    """One offer of a carrier for a shipment (``rate_id`` is the carrier's own id)."""

    rate_id: str
    carrier: str  # the carrier that moves the parcel (EasyPost: USPS, UPS, ...)
    service: str
    amount: decimal.Decimal
    days: int | None = None  # delivery days the carrier states; None = not stated


def choose_rate(rates: list[Rate], rush: bool, max_days: int = 0) -> Rate | None:
    """Rush: the fastest rate (a rate with no stated days is slowest), the cheapest among
    equally fast. Standard: the cheapest delivering within ``max_days`` (0 = any), the
    fastest among equally cheap. Ties end on the rate id, so the choice is repeatable."""
    if not rates:
        return None
    slow = 10**6

    def days(r: Rate) -> int:
        return slow if r.days is None else r.days

    if rush:
        return min(rates, key=lambda r: (days(r), r.amount, r.rate_id))
    within = [r for r in rates if not max_days or days(r) <= max_days] or rates
    return min(within, key=lambda r: (r.amount, days(r), r.rate_id))


def _zpl_text(value: str) -> str:
    # ^ and ~ are ZPL command prefixes; keep labels from being re-programmed by an address,
    # and a line break in it from breaking the field
    return one_line(value.replace("^", " ").replace("~", " "))[:60]


def ship_to(order: Order) -> list[str]:
    """The label's address lines, empty ones included (the ZPL label keeps their places)."""
    a = order.spec.shipping_address
    return [a.name, a.company, a.address1, a.address2, f"{a.postal_code} {a.city} {a.region}".strip(), a.country_code]


def zpl_label(order: Order, shipment: Shipment, carrier: str, tracking: str) -> str:
    """A 4x6 in label at 203 dpi (812 x 1218 dots) with a Code 128 tracking barcode."""
    body = [f"^FO50,{130 + 45 * i}^A0N,36,36^FD{_zpl_text(text)}^FS" for i, text in enumerate(ship_to(order)) if text]
    return "\n".join(
        [
            "^XA",
            "^PW812",
            "^LL1218",
            "^CI28",
            "^FO50,50^A0N,40,40^FDSHIP TO:^FS",
            *body,
            f"^FO50,520^A0N,32,32^FDOrder {_zpl_text(order.spec.order_number or order.order_id)}"
            f"  Shipment {shipment.shipment_id}  Units {shipment.units}^FS",
            f"^FO50,580^A0N,32,32^FDCarrier {_zpl_text(carrier)}^FS",
            f"^FO50,650^BY3^BCN,200,Y,N,N^FD{tracking}^FS",
            "^XZ",
        ]
    )
