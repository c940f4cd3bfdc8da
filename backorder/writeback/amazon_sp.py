"""Amazon Selling Partner API, header ``x-amz-access-token`` (the LWA access token).

fulfillment: ``POST /orders/v0/orders/{orderId}/shipmentConfirmation`` with ``marketplaceId``
and ``packageDetail {packageReferenceId, carrierCode, trackingNumber, shipDate,
orderItems [{orderItemId, quantity}]}``. The package reference is the number of our
shipment id: Amazon treats a second confirmation with the same reference as an edit of the
first, so a resend is safe by the channel's own rule. Without the channel's OrderItemIds
from intake, the order's items still to ship come from ``GET
/orders/v0/orders/{orderId}/orderItems``.

stock_level: ``PATCH /listings/2021-08-01/items/{sellerId}/{sku}?marketplaceIds=...`` with
``{productType, patches [{op: replace, path: /attributes/fulfillment_availability, value:
[{fulfillment_channel_code: DEFAULT, quantity}]}]}`` (absolute).

No cancellation: the Orders API has none (Amazon takes a seller's cancellation by feed).
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from backorder.notify.channels import Rejected
from backorder.writeback.base import Adapter, line_refs
from backorder.writeback.http import credential


class AmazonSpChannel(Adapter):
    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        token = credential(self.wb, self.name)
        return await self.api.call(method, path, {"x-amz-access-token": token}, body)

    async def fulfillment(self, notice_id: str, data: dict[str, Any]) -> str:
        oid = urllib.parse.quote(data["external_id"], safe="")
        refs = line_refs(data)
        if refs is None:
            doc = await self._call("GET", f"/orders/v0/orders/{oid}/orderItems")
            refs = {
                it["OrderItemId"]: int(it.get("QuantityOrdered", 0)) - int(it.get("QuantityShipped", 0))
                for it in (doc or {}).get("payload", {}).get("OrderItems", [])
                if int(it.get("QuantityOrdered", 0)) > int(it.get("QuantityShipped", 0))
            }
        reference = str(int("".join(ch for ch in data["shipment_id"] if ch.isdigit()) or "0") or 1)
        body = {
            "marketplaceId": self.wb.marketplace_id,
            "packageDetail": {
                "packageReferenceId": reference,
                "carrierCode": data["carrier"],
                "trackingNumber": data["tracking"],
                "shipDate": data["ship_date"],
                "orderItems": [{"orderItemId": ref, "quantity": qty} for ref, qty in refs.items()],
            },
        }
        await self._call("POST", f"/orders/v0/orders/{oid}/shipmentConfirmation", body)
        return f"package {reference} confirmed"

    async def set_level(self, level: dict[str, Any]) -> None:
        sku = urllib.parse.quote(level["sku"], safe="")
        query = urllib.parse.urlencode({"marketplaceIds": self.wb.marketplace_id})
        body = {
            "productType": self.wb.product_type,
            "patches": [
                {
                    "op": "replace",
                    "path": "/attributes/fulfillment_availability",
                    "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": level["quantity"]}],
                }
            ],
        }
        path = f"/listings/2021-08-01/items/{urllib.parse.quote(self.wb.seller_id, safe='')}/{sku}?{query}"
        answer = await self._call("PATCH", path, body) or {}
        if answer.get("status") == "INVALID":  # a 200 that refuses the patch, with its issues
            issues = "; ".join(str(i.get("message", i)) for i in answer.get("issues", []))
            raise Rejected(f"{self.name}: listing {level['sku']} INVALID: {issues}")
