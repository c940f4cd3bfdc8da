"""BigCommerce REST API (``/stores/{store_hash}``), header ``X-Auth-Token``.

fulfillment: ``GET v2/orders/{id}/shipments``: one with our tracking number means a resend:
done. Else ``POST v2/orders/{id}/shipments`` with ``order_address_id`` (the order's first
shipping address, ``GET v2/orders/{id}/shipping_addresses``), ``tracking_number``,
``tracking_carrier`` and ``items [{order_product_id, quantity}]``: the shipped lines by the
channel's order product id when intake kept it, else every product still to ship
(``quantity - quantity_shipped`` from ``GET v2/orders/{id}/products``).

fulfillment_cancel: ``PUT v2/orders/{id} {"status_id": 5}`` (Cancelled).

stock_level: ``PUT v3/inventory/adjustments/absolute`` with ``{reason, items [{location_id,
sku, quantity}]}`` (absolute: a resend sets the same number).
"""

from __future__ import annotations

from typing import Any

from backorder.notify.channels import Rejected
from backorder.writeback.base import Adapter, line_refs
from backorder.writeback.http import credential

CANCELLED = 5  # BigCommerce order status id


class BigCommerceChannel(Adapter):
    async def _call(self, method: str, rest: str, body: Any = None) -> Any:
        token = credential(self.wb, self.name)
        return await self.api.call(method, f"/stores/{self.wb.store_hash}/{rest}", {"X-Auth-Token": token}, body)

    async def fulfillment(self, notice_id: str, data: dict[str, Any]) -> str:
        oid = data["external_id"]
        for sh in await self._call("GET", f"v2/orders/{oid}/shipments") or []:
            if sh.get("tracking_number") == data["tracking"]:
                return f"shipment {sh.get('id')} already there"
        addresses = await self._call("GET", f"v2/orders/{oid}/shipping_addresses") or []
        if not addresses:
            raise Rejected(f"{self.name}: order {oid} has no shipping address to ship to")
        refs = line_refs(data)
        if refs is None:
            products = await self._call("GET", f"v2/orders/{oid}/products") or []
            items = [
                {"order_product_id": p["id"], "quantity": int(p["quantity"]) - int(p.get("quantity_shipped", 0))}
                for p in products
                if int(p["quantity"]) > int(p.get("quantity_shipped", 0))
            ]
        else:
            items = [{"order_product_id": int(r) if r.isdigit() else r, "quantity": q} for r, q in refs.items()]
        body = {
            "order_address_id": addresses[0]["id"],
            "tracking_number": data["tracking"],
            "tracking_carrier": data["carrier"],
            "comments": f"backorder shipment {data['shipment_id']}",
            "items": items,
        }
        made = await self._call("POST", f"v2/orders/{oid}/shipments", body)
        return f"shipment {(made or {}).get('id')}"

    async def fulfillment_cancel(self, notice_id: str, data: dict[str, Any]) -> str:
        oid = data["external_id"]
        await self._call("PUT", f"v2/orders/{oid}", {"status_id": CANCELLED})
        return f"order {oid} cancelled"

    async def stock_level(self, notice_id: str, data: dict[str, Any]) -> str:
        """All levels of the notice in one absolute adjustment."""
        location = int(self.wb.location_id) if self.wb.location_id.isdigit() else 1
        body = {
            "reason": "backorder available-to-sell",
            "items": [{"location_id": location, "sku": lv["sku"], "quantity": lv["quantity"]} for lv in data["levels"]],
        }
        await self._call("PUT", "v3/inventory/adjustments/absolute", body)
        return f"{len(body['items'])} level(s) set"
