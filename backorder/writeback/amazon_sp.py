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
order; its ``MessageID`` is the number of our notice id, so the processing report's result
names our notice) is PUT to that presigned ``url``; ``POST /feeds/2021-06-30/feeds``
``{feedType, marketplaceIds, inputFeedDocumentId}`` submits it and answers ``{feedId}``.

Feeds carry no idempotency key, so the feed id is ours to keep: it is journaled
(``notice_feed``, durable) before anything else, and every later attempt of the notice
reads that feed instead of submitting another. An attempt reads ``GET
/feeds/2021-06-30/feeds/{feedId}``: ``IN_QUEUE`` / ``IN_PROGRESS`` is ``NotYet`` (asked
again at the outbox's next retry, never a blocking loop); ``DONE``, ``FATAL`` or
``CANCELLED`` fetch the processing report (``GET /feeds/2021-06-30/documents/{
resultFeedDocumentId}`` answers ``{url, compressionAlgorithm?: GZIP}``; the report is an
``AmazonEnvelope`` of ``MessageType ProcessingReport``: ``ProcessingSummary`` counts and a
``Result`` per message with ``MessageID``, ``ResultCode`` Error | Warning,
``ResultMessageCode``, ``ResultDescription``). An error result for our message (or for the
whole feed, ``MessageID`` 0), a ``FATAL`` or ``CANCELLED`` feed is ``Rejected``: the notice is
dead with Amazon's words, and the feed is forgotten (``notice_feed`` "refused") so that a
``notifications.retry`` after a fix submits a new one. The one window left is a crash
between Amazon's answer to ``createFeed`` and the commit of its id (milliseconds): that
retry submits the acknowledgement again (Amazon cancels the order once).
"""

from __future__ import annotations

import gzip
import urllib.parse
import xml.etree.ElementTree as ET
from typing import Any
from xml.sax.saxutils import escape

from backorder.notify.channels import DeliveryError, NotYet, Rejected
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
        feed_id = self.feeds.feed_of(notice_id)
        if feed_id is None:
            feed_id = await self._submit(notice_id, data)
            await self.feeds.record(notice_id, feed_id, "submitted")
        feed = await self._call("GET", f"/feeds/2021-06-30/feeds/{urllib.parse.quote(feed_id, safe='')}") or {}
        status = str(feed.get("processingStatus", ""))
        if status in ("IN_QUEUE", "IN_PROGRESS"):
            raise NotYet(f"{self.name}: feed {feed_id} {status}")
        if status not in ("DONE", "FATAL", "CANCELLED"):
            raise DeliveryError(f"{self.name}: feed {feed_id} has processingStatus {status!r}")
        errors = []
        if feed.get("resultFeedDocumentId"):
            errors = report_errors(await self._report(str(feed["resultFeedDocumentId"])), message_id(notice_id))
        if status != "DONE" or errors:
            await self.feeds.record(notice_id, feed_id, "refused")
            why = "; ".join(errors) or "no processing report"
            raise Rejected(f"{self.name}: feed {feed_id} {status}: {why}")
        return f"feed {feed_id} DONE (order acknowledgement Failure processed)"

    async def _submit(self, notice_id: str, data: dict[str, Any]) -> str:
        """Create the feed document, upload the acknowledgement, submit the feed: its id."""
        content_type = "text/xml; charset=UTF-8"
        doc = await self._call("POST", "/feeds/2021-06-30/documents", {"contentType": content_type}) or {}
        if not doc.get("feedDocumentId") or not doc.get("url"):
            raise Rejected(f"{self.name}: createFeedDocument answered no feedDocumentId and url")
        xml = acknowledgement(self.wb.seller_id, data, message_id(notice_id))
        await self.api.upload(str(doc["url"]), xml.encode(), content_type)
        body = {
            "feedType": "POST_ORDER_ACKNOWLEDGEMENT_DATA",
            "marketplaceIds": [self.wb.marketplace_id],
            "inputFeedDocumentId": doc["feedDocumentId"],
        }
        feed = await self._call("POST", "/feeds/2021-06-30/feeds", body) or {}
        if not feed.get("feedId"):
            raise DeliveryError(f"{self.name}: createFeed answered no feedId")
        return str(feed["feedId"])

    async def _report(self, document_id: str) -> bytes:
        """The processing report's bytes (decompressed when Amazon says GZIP)."""
        doc = await self._call("GET", f"/feeds/2021-06-30/documents/{urllib.parse.quote(document_id, safe='')}") or {}
        if not doc.get("url"):
            raise DeliveryError(f"{self.name}: getFeedDocument answered no url for {document_id}")
        raw = await self.api.download(str(doc["url"]))
        if doc.get("compressionAlgorithm") == "GZIP":
            try:
                raw = gzip.decompress(raw)
            except (OSError, EOFError):
                raise DeliveryError(f"{self.name}: report {document_id} is not gzip") from None
        return raw

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


def message_id(notice_id: str) -> int:
    """The feed message's ``MessageID`` (a positive integer): the number of our notice id."""
    return int("".join(ch for ch in notice_id if ch.isdigit())[-18:] or "0") or 1


def report_errors(report: bytes, message: int) -> list[str]:
    """The errors a ``ProcessingReport`` gives our message (or the whole feed: ``MessageID``
    0), each as "code: description"; a report that is not one is an error of its own."""
    try:
        root = ET.fromstring(report)
    except ET.ParseError:
        return [f"the processing report is not XML: {report[:120].decode(errors='replace')}"]
    pr = root.find("Message/ProcessingReport")
    if pr is None:
        return ["the report has no ProcessingReport"]
    out = []
    errors = [r for r in pr.findall("Result") if (r.findtext("ResultCode") or "").strip() == "Error"]
    for r in errors:
        if (r.findtext("MessageID") or "0").strip() not in ("0", str(message)):
            continue  # another message's (our feeds carry one; kept for a shared feed)
        out.append(
            f"{(r.findtext('ResultMessageCode') or '').strip()}: {(r.findtext('ResultDescription') or '').strip()}"
        )
    if not errors and (pr.findtext("ProcessingSummary/MessagesWithError") or "0").strip() not in ("0", ""):
        out.append("MessagesWithError without a Result for our message")
    return out


def acknowledgement(seller_id: str, data: dict[str, Any], message: int = 1) -> str:
    """The ``POST_ORDER_ACKNOWLEDGEMENT_DATA`` document cancelling one whole order."""
    merchant = f"<MerchantOrderID>{escape(data['order_number'])}</MerchantOrderID>" if data.get("order_number") else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<AmazonEnvelope xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xsi:noNamespaceSchemaLocation="amzn-envelope.xsd">'
        f"<Header><DocumentVersion>1.01</DocumentVersion><MerchantIdentifier>{escape(seller_id)}</MerchantIdentifier>"
        f"</Header><MessageType>OrderAcknowledgement</MessageType><Message><MessageID>{message}</MessageID>"
        f"<OrderAcknowledgement><AmazonOrderID>{escape(data['external_id'])}</AmazonOrderID>{merchant}"
        "<StatusCode>Failure</StatusCode></OrderAcknowledgement></Message></AmazonEnvelope>\n"
    )
