"""A fake ShipBob on loopback for the 3PL tests (imported as ``threepl_fakes``): the
documented request shapes (``POST /order`` with ``reference_id``, ``recipient``,
``products``, ``shipping_method``; ``GET /order?ReferenceIds=``; ``GET /inventory``), the
bearer token and the ``shipbob_channel_id`` header checked, a reference id refused the
second time (as ShipBob does: it must be unique in the account), creates counted per
reference id; and the signed ``order_shipped`` webhook ShipBob would send."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import time
from collections import Counter
from typing import Any
from urllib.parse import parse_qs, urlsplit

from channel_fakes import Answer, FakeApi

from backorder.demo_threepl import order_refusal


class FakeShipBob(FakeApi):
    def __init__(self, token: str, channel_id: str, stock: dict[str, int]) -> None:
        super().__init__("Bearer " + token)
        self.channel_id = channel_id
        self.stock = dict(stock)
        self.orders: dict[str, dict[str, Any]] = {}  # reference_id -> the order as created
        self.creates: Counter[str] = Counter()  # reference_id -> POST /order that took effect
        self.cancels: Counter[str] = Counter()  # reference_id -> cancels that took effect
        self.readdresses: Counter[str] = Counter()  # reference_id -> address updates that took effect
        self.picked: set[str] = set()  # reference ids picked on the floor: a cancel fails per shipment

    def pick(self, ref: str, labelled: bool = False) -> None:
        """The 3PL picked the order (its lookup still says Processing unless ``labelled``)."""
        with self.lock:
            self.picked.add(ref)
            if labelled:
                for sh in self.orders[ref]["shipments"]:
                    sh["status"] = "LabeledCreated"

    def authorised(self, headers) -> bool:
        return super().authorised(headers) and headers.get("shipbob_channel_id") == self.channel_id

    def error(self, status: int, message: str) -> Answer:
        return status, {"title": message}

    def route(self, method: str, path: str, body: Any) -> Answer:
        url = urlsplit(path)
        if method == "GET" and url.path == "/inventory":
            return 200, [{"sku": sku, "total_fulfillable_quantity": q} for sku, q in self.stock.items()]
        if method == "GET" and url.path == "/order":
            refs = parse_qs(url.query).get("ReferenceIds", [""])[0].split(",")
            return 200, [self.orders[r] for r in refs if r in self.orders]
        if method == "POST" and url.path == "/order":
            return self._create(body)
        by_id = {str(o["id"]): o for o in self.orders.values()}
        parts = url.path.strip("/").split("/")
        if method == "POST" and len(parts) == 3 and parts[0] == "order" and parts[2] == "cancel":
            return self._cancel(by_id.get(parts[1]))
        if method == "PUT" and len(parts) == 2 and parts[0] == "shipment" and parts[1].endswith(":updateAddress"):
            return self._readdress(parts[1].split(":")[0], body)
        return 404, {"title": f"no route {method} {url.path}"}

    def _create(self, body: Any) -> Answer:
        if (refused := order_refusal(body, self.orders)) is not None:
            return refused
        ref = body["reference_id"]
        for p in body["products"]:
            if not p.get("reference_id") or not isinstance(p.get("quantity"), int) or p["quantity"] < 1:
                return 422, {"title": f"bad product {p}"}
        n = 9000 + len(self.orders)
        order = {"id": n, "reference_id": ref, "status": "Processing", **body}
        order["shipments"] = [{"id": n * 10, "status": "Processing", "recipient": body["recipient"]}]
        self.orders[ref] = order
        self.creates[ref] += 1
        self.effects.append(body)
        for p in body["products"]:
            self.stock[p["reference_id"]] = self.stock.get(p["reference_id"], 0) - p["quantity"]
        return 201, order

    def _cancel(self, order: dict[str, Any] | None) -> Answer:
        """``POST /order/{id}/cancel``: each shipment's result; a picked one stays."""
        if order is None:
            return 404, {"title": "order not found"}
        ref = order["reference_id"]
        if ref in self.picked:
            results = [
                {
                    "action": "Cancel",
                    "is_success": False,
                    "reason": "Shipment is already picked",
                    "shipment_id": sh["id"],
                }
                for sh in order["shipments"]
            ]
            return 200, {"order_id": order["id"], "canceled_shipment_results": results, "status": order["status"]}
        order["status"] = "Cancelled"
        for sh in order["shipments"]:
            sh["status"] = "Cancelled"
        self.cancels[ref] += 1
        self.effects.append({"cancel": ref})
        results = [
            {"action": "Cancel", "is_success": True, "reason": None, "shipment_id": sh["id"]}
            for sh in order["shipments"]
        ]
        return 200, {"order_id": order["id"], "canceled_shipment_results": results, "status": "Cancelled"}

    def _readdress(self, shipment_id: str, body: Any) -> Answer:
        """``PUT /shipment/{id}:updateAddress`` (street_address1 and city required)."""
        if not isinstance(body, dict) or not body.get("street_address1") or not body.get("city"):
            return 400, {"title": "street_address1 and city are required"}
        for order in self.orders.values():
            for sh in order["shipments"]:
                if str(sh["id"]) == shipment_id:
                    sh["recipient"] = body
                    self.readdresses[order["reference_id"]] += 1
                    self.effects.append({"address": order["reference_id"], **body})
                    return 200, {"id": sh["id"], "recipient": body}
        return 404, {"title": "shipment not found"}


def sign(secret: str, webhook_id: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def shipped_webhook(
    port: int, secret: str, reference_id: str, tracking: str, *, bad_signature: bool = False, age_s: float = 0.0
) -> tuple[int, dict]:
    """POST ShipBob's ``order_shipped`` webhook for ``reference_id`` to the daemon's listener,
    signed ``age_s`` seconds ago (ShipBob's ``webhook-timestamp`` is wall-clock Unix seconds)."""
    doc = {
        "id": 9999,
        "reference_id": reference_id,
        "status": "Fulfilled",
        "shipments": [{"id": 1, "status": "Completed", "tracking": {"carrier": "USPS", "tracking_number": tracking}}],
    }
    body = json.dumps(doc).encode()
    wid, ts = f"msg_{reference_id}_{tracking}", str(int(time.time() - age_s))
    signature = sign("wrong" if bad_signature else secret, wid, ts, body)
    headers = {
        "Content-Type": "application/json",
        "webhook-id": wid,
        "webhook-timestamp": ts,
        "webhook-signature": signature,
        "shipbob-topic": "order_shipped",
    }
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", "/threepl/shipbob", body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"{}")
    finally:
        conn.close()


class FakeShipStation(FakeApi):
    """ShipStation V1: HTTP Basic ``api_key:api_secret``; ``POST /orders/createorder``
    creates, or updates the order with the same ``orderKey``; ``GET /products`` paged;
    ``GET /shipments?batchId=N``: the shipments a SHIP_NOTIFY points at (``ship`` adds them)."""

    def __init__(self, key: str, secret: str, stock: dict[str, int]) -> None:
        super().__init__("Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode())
        self.stock = dict(stock)
        self.orders: dict[str, dict[str, Any]] = {}  # orderKey -> the order
        self.creates: Counter[str] = Counter()  # orderKey -> createorder calls that took effect
        self.batches: dict[str, list[dict[str, Any]]] = {}

    def error(self, status: int, message: str) -> Answer:
        return status, {"Message": message, "ExceptionMessage": message}

    def ship(self, batch: str, order_key: str, tracking: str) -> None:
        with self.lock:
            self.batches.setdefault(batch, []).append(
                {"orderKey": order_key, "carrierCode": "ups", "trackingNumber": tracking, "voided": False}
            )
            if order_key in self.orders:
                self.orders[order_key]["orderStatus"] = "shipped"

    def route(self, method: str, path: str, body: Any) -> Answer:
        url = urlsplit(path)
        query = parse_qs(url.query)
        if method == "GET" and url.path == "/products":
            items = [{"sku": sku, "quantity": q} for sku, q in sorted(self.stock.items())]
            return 200, {"products": items, "total": len(items), "page": 1, "pages": 1}
        if method == "GET" and url.path == "/orders":
            number = query.get("orderNumber", [""])[0]
            return 200, {"orders": [o for o in self.orders.values() if o.get("orderNumber") == number]}
        if method == "GET" and url.path == "/shipments":
            return 200, {"shipments": self.batches.get(query.get("batchId", [""])[0], [])}
        if method == "POST" and url.path == "/orders/createorder":
            if not isinstance(body, dict) or not body.get("orderKey") or not (body.get("shipTo") or {}).get("street1"):
                return 400, {"Message": "The request is invalid.", "ExceptionMessage": "orderKey and shipTo required"}
            key = body["orderKey"]
            self.creates[key] += 1
            self.effects.append(body)
            self.orders.setdefault(key, {"orderId": 500 + len(self.orders), **body}).update(body)
            return 200, self.orders[key]
        return 404, {"Message": f"no route {method} {url.path}"}


def ship_notify(port: int, token: str, resource_url: str) -> tuple[int, dict]:
    """POST ShipStation's SHIP_NOTIFY webhook (unsigned: the secret is in the target URL)."""
    body = json.dumps({"resource_url": resource_url, "resource_type": "SHIP_NOTIFY"}).encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(
            "POST", f"/threepl/shipstation?token={token}", body=body, headers={"Content-Type": "application/json"}
        )
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"{}")
    finally:
        conn.close()
