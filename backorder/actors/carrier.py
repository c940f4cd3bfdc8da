"""Carriers are adapters. The built-in local carrier assigns tracking numbers itself;
a real carrier implements the same two members, is registered in ``CARRIERS`` and is
chosen by name in config (``fulfillment.carrier``). No external service is called from
here."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from backorder.documents.cells import one_line

if TYPE_CHECKING:
    from backorder.actors.model import Order, Shipment


class Carrier(Protocol):
    name: str

    def tracking_number(self, shipment_id: str) -> str:
        """A tracking number for the shipment; must be the same for the same shipment."""
        ...


class LocalCarrier:
    """Tracking numbers 'BO' + 10 digits + a mod-10 check digit, derived from the shipment id."""

    name = "local"

    def __init__(self, site: str = "1") -> None:
        self.site = site

    def tracking_number(self, shipment_id: str) -> str:
        digits = f"{int(self.site) % 100:02d}{int(shipment_id[1:]):08d}"
        check = (10 - sum((3 if i % 2 == 0 else 1) * int(d) for i, d in enumerate(digits)) % 10) % 10
        return f"BO{digits}{check}"


# ``fulfillment.carrier`` -> the carrier it names (config lists the same names).
CARRIERS: dict[str, Callable[[], Carrier]] = {"local": LocalCarrier}


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
