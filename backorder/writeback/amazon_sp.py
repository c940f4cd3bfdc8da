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

fulfillment_cancel: the Orders API has no cancellation; Amazon takes a seller's by the
Feeds API (2021-06-30): ``POST /feeds/2021-06-30/documents`` ``{contentType}`` answers
``{feedDocumentId, url}``; the ``POST_ORDER_ACKNOWLEDGEMENT_DATA`` XML (an
``AmazonEnvelope`` of ``MessageType OrderAcknowledgement``: ``AmazonOrderID``,
``MerchantOrderID`` = our order number, ``StatusCode Failure``, which cancels the whole
order) is PUT to that presigned ``url``; ``POST /feeds/2021-06-30/feeds`` ``{feedType,
marketplaceIds, inputFeedDocumentId}`` submits it. Feeds carry no idempotency key: a resend
after a crash submits the same acknowledgement again (the order is cancelled once).
"""

from __future__ import annotations

import urllib.parse
from typing import Any
from xml.sax.saxutils import escape

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

    async def fulfillment_cancel(self, notice_id: str, data: dict[str, Any]) -> str:
        content_type = "text/xml; charset=UTF-8"
        doc = await self._call("POST", "/feeds/2021-06-30/documents", {"contentType": content_type}) or {}
        if not doc.get("feedDocumentId") or not doc.get("url"):
            raise Rejected(f"{self.name}: createFeedDocument answered no feedDocumentId and url")
        await self.api.upload(str(doc["url"]), acknowledgement(self.wb.seller_id, data).encode(), content_type)
        body = {
            "feedType": "POST_ORDER_ACKNOWLEDGEMENT_DATA",
            "marketplaceIds": [self.wb.marketplace_id],
            "inputFeedDocumentId": doc["feedDocumentId"],
        }
        feed = await self._call("POST", "/feeds/2021-06-30/feeds", body) or {}
        return f"feed {feed.get('feedId')} (order acknowledgement Failure)"

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


def acknowledgement(seller_id: str, data: dict[str, Any]) -> str:
    """The ``POST_ORDER_ACKNOWLEDGEMENT_DATA`` document cancelling one whole order."""
    merchant = f"<MerchantOrderID>{escape(data['order_number'])}</MerchantOrderID>" if data.get("order_number") else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<AmazonEnvelope xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xsi:noNamespaceSchemaLocation="amzn-envelope.xsd">'
        f"<Header><DocumentVersion>1.01</DocumentVersion><MerchantIdentifier>{escape(seller_id)}</MerchantIdentifier>"
        "</Header><MessageType>OrderAcknowledgement</MessageType><Message><MessageID>1</MessageID>"
        f"<OrderAcknowledgement><AmazonOrderID>{escape(data['external_id'])}</AmazonOrderID>{merchant}"
        "<StatusCode>Failure</StatusCode></OrderAcknowledgement></Message></AmazonEnvelope>\n"
    )
