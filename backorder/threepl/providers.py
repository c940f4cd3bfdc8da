"""The 3PL adapters, from the providers' documented request shapes.

ShipBob (API 2.0+, ``Authorization: Bearer`` personal access token, header
``shipbob_channel_id``): ``threepl_order`` first looks the order up by our order id
(``GET /order?ReferenceIds=ID``): one there means a resend after a crash: done. Else ``POST
/order`` with ``reference_id`` (our order id: unique within the account, so the 3PL refuses
a second one too), ``order_number``, ``recipient {name, address {address1, address2,
company_name, city, state, zip_code, country}, email, phone_number}``, ``products
[{reference_id: SKU, name, quantity}]``, ``shipping_method``, ``type: DTC``. Inventory:
``GET /inventory`` (``[{sku or reference_id, total_fulfillable_quantity}]``). Shipment
webhook ``order_shipped``: the order (``reference_id``) with ``shipments[].tracking
{carrier, tracking_number}``, signed per the Standard Webhooks scheme ShipBob uses
(``webhook-id``, ``webhook-timestamp``, ``webhook-signature: v1,BASE64(HMAC-SHA256(secret,
"ID.TIMESTAMP.BODY"))``), refused when ``webhook-timestamp`` is more than
``WEBHOOK_TOLERANCE_S`` (5 minutes, the scheme's recommendation) from our wall clock either
way: a captured delivery cannot be replayed later.

ShipStation (V1, HTTP Basic ``api_key:api_secret``): ``POST /orders/createorder`` with
``orderKey`` = our order id (ShipStation updates the order with that key instead of adding
a second: a resend is safe), ``orderNumber``, ``orderDate``, ``orderStatus:
awaiting_shipment``, ``shipTo {name, company, street1, street2, city, state, postalCode,
country, phone}``, ``items [{sku, quantity, lineItemKey}]``, ``requestedShippingService``.
Inventory: ``GET /products?pageSize=500&page=N``, every page (``products[].sku``; the
quantity is read from ``quantity``, which V1's product model does not document: an account
whose stock lives elsewhere reports 0 and nothing is routed). SHIP_NOTIFY webhook: ``{resource_url, resource_type}``; the shipments are fetched from
``resource_url`` (only under ``base_url``: the webhook cannot make us call another host)
and carry ``orderKey``, ``carrierCode``, ``trackingNumber``. ShipStation V1 does not sign
its webhooks: the target URL carries our secret (``?token=SECRET``), compared in constant
time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from abc import ABC, abstractmethod
from typing import Any
from urllib.parse import quote

from backorder.actors.events import NoticeQueued
from backorder.config.settings import ThreeplSettings
from backorder.notify.channels import Rejected
from backorder.notify.render import Rendered
from backorder.secrets import read_secret
from backorder.writeback.http import Api, basic, credential

WEBHOOK_TOLERANCE_S = 300.0  # Standard Webhooks: a signed timestamp older or newer than this is refused


class Shipped:
    """One shipment a webhook reports: our order id, the carrier and tracking number."""

    __slots__ = ("carrier", "order_id", "tracking")

    def __init__(self, order_id: str, carrier: str, tracking: str) -> None:
        self.order_id, self.carrier, self.tracking = order_id, carrier, tracking


def webhook_secret(cfg: ThreeplSettings) -> str:
    """The webhook signing secret ("" when it cannot be read: every delivery is refused)."""
    return read_secret(cfg.webhook_secret_env, cfg.webhook_secret_file)


class Provider(ABC):
    """The 3PL as a delivery channel of the outbox, plus its inventory and webhook sides;
    each provider (below) implements the five abstract members from its documented API."""

    name = "threepl"

    def __init__(self, cfg: ThreeplSettings) -> None:
        self.cfg = cfg
        self.name = f"threepl/{cfg.provider}"
        self.api = Api(self.name, cfg)  # type: ignore[arg-type]  # same fields as a write-back table

    async def send(self, notice: NoticeQueued, rendered: Rendered) -> str:
        if notice.kind != "threepl_order":
            raise Rejected(f"{self.name}: no {notice.kind!r} notices to a 3PL")
        return await self.create_order(notice.data)

    @abstractmethod
    def auth(self) -> dict[str, str]: ...

    @abstractmethod
    async def create_order(self, data: dict[str, Any]) -> str: ...

    @abstractmethod
    async def inventory(self) -> dict[str, int]: ...

    @abstractmethod
    def verify(self, headers: dict[str, str], query: dict[str, str], body: bytes) -> bool: ...

    @abstractmethod
    async def shipped(self, doc: Any) -> list[Shipped]: ...


class ShipBob(Provider):
    def auth(self) -> dict[str, str]:
        headers = {"Authorization": "Bearer " + credential(self.cfg, self.name)}  # type: ignore[arg-type]
        if self.cfg.channel_id:
            headers["shipbob_channel_id"] = self.cfg.channel_id
        return headers

    async def create_order(self, data: dict[str, Any]) -> str:
        ref = data["order_id"]
        found = await self.api.call("GET", f"/order?ReferenceIds={quote(ref)}", self.auth())
        for o in found if isinstance(found, list) else []:
            if isinstance(o, dict) and o.get("reference_id") == ref:
                return f"order {o.get('id')} already there"
        r = data["recipient"]
        body = {
            "reference_id": ref,
            "order_number": data["order_number"],
            "type": "DTC",
            "shipping_method": data["shipping_method"],
            "recipient": {
                "name": r["name"],
                "address": {
                    "address1": r["address1"],
                    "address2": r["address2"],
                    "company_name": r["company"],
                    "city": r["city"],
                    "state": r["region"],
                    "zip_code": r["postal_code"],
                    "country": r["country_code"],
                },
                "email": data["email"],
                "phone_number": r["phone"],
            },
            "products": [{"reference_id": i["sku"], "name": i["sku"], "quantity": i["qty"]} for i in data["items"]],
        }
        made = await self.api.call("POST", "/order", self.auth(), body)
        return f"order {(made or {}).get('id')}"

    async def inventory(self) -> dict[str, int]:
        doc = await self.api.call("GET", "/inventory", self.auth())
        items = doc.get("items", []) if isinstance(doc, dict) else doc or []
        out: dict[str, int] = {}
        for it in items:
            sku = it.get("sku") or it.get("reference_id")
            if isinstance(sku, str) and sku:
                out[sku] = out.get(sku, 0) + int(it.get("total_fulfillable_quantity") or 0)
        return out

    def verify(self, headers: dict[str, str], query: dict[str, str], body: bytes, now: float | None = None) -> bool:
        secret = webhook_secret(self.cfg)
        wid, ts, sigs = headers.get("webhook-id"), headers.get("webhook-timestamp"), headers.get("webhook-signature")
        if not (secret and wid and ts and sigs and ts.isdigit()):
            return False
        if abs((time.time() if now is None else now) - int(ts)) > WEBHOOK_TOLERANCE_S:
            return False  # stale or from the future: a replay, or a clock too far off to trust
        key = secret.encode()
        if secret.startswith("whsec_"):
            key = base64.b64decode(secret[len("whsec_") :] + "==")
        mac = hmac.new(key, f"{wid}.{ts}.".encode() + body, hashlib.sha256).digest()
        want = base64.b64encode(mac).decode()
        return any(hmac.compare_digest(s.partition(",")[2], want) for s in sigs.split() if s.startswith("v1,"))

    async def shipped(self, doc: Any) -> list[Shipped]:
        if not isinstance(doc, dict):
            return []
        ref = doc.get("reference_id")
        out = []
        for sh in doc.get("shipments") or []:
            tr = (sh or {}).get("tracking") or {}
            if isinstance(ref, str) and tr.get("tracking_number"):
                out.append(Shipped(ref, str(tr.get("carrier") or "shipbob"), str(tr["tracking_number"])))
        return out


class ShipStation(Provider):
    def auth(self) -> dict[str, str]:
        return {"Authorization": basic(credential(self.cfg, self.name))}  # type: ignore[arg-type]

    async def create_order(self, data: dict[str, Any]) -> str:
        r = data["recipient"]
        body: dict[str, Any] = {
            "orderKey": data["order_id"],
            "orderNumber": data["order_number"],
            "orderDate": data["created_at"] or "",
            "orderStatus": "awaiting_shipment",
            "customerEmail": data["email"],
            "billTo": {"name": r["name"]},
            "shipTo": {
                "name": r["name"],
                "company": r["company"],
                "street1": r["address1"],
                "street2": r["address2"],
                "city": r["city"],
                "state": r["region"],
                "postalCode": r["postal_code"],
                "country": r["country_code"],
                "phone": r["phone"],
            },
            "items": [
                {"lineItemKey": f"{data['order_id']}-{i['line_no']}", "sku": i["sku"], "quantity": i["qty"]}
                for i in data["items"]
            ],
            "requestedShippingService": data["shipping_method"],
        }
        if self.cfg.channel_id:
            body["advancedOptions"] = {"storeId": int(self.cfg.channel_id) if self.cfg.channel_id.isdigit() else 0}
        made = await self.api.call("POST", "/orders/createorder", self.auth(), body)
        return f"order {(made or {}).get('orderId')}"

    async def inventory(self) -> dict[str, int]:
        out: dict[str, int] = {}
        page, pages = 1, 1
        while page <= pages and page <= 100:
            doc = await self.api.call("GET", f"/products?pageSize=500&page={page}", self.auth()) or {}
            for it in doc.get("products", []):
                sku = it.get("sku")
                if isinstance(sku, str) and sku:
                    out[sku] = out.get(sku, 0) + int(it.get("quantity") or 0)
            pages = int(doc.get("pages") or 1)
            page += 1
        return out

    def verify(self, headers: dict[str, str], query: dict[str, str], body: bytes) -> bool:
        secret = webhook_secret(self.cfg)
        return bool(secret) and hmac.compare_digest(query.get("token", ""), secret)

    async def shipped(self, doc: Any) -> list[Shipped]:
        if not isinstance(doc, dict) or doc.get("resource_type") not in ("SHIP_NOTIFY", "ITEM_SHIP_NOTIFY"):
            return []
        url = str(doc.get("resource_url") or "")
        base = self.api.base
        if not url.startswith(base + "/"):
            raise Rejected(f"{self.name}: resource_url {url[:200]!r} is not under {base}")
        found = await self.api.call("GET", url[len(base) :], self.auth()) or {}
        return [
            Shipped(str(s["orderKey"]), str(s.get("carrierCode") or "shipstation"), str(s["trackingNumber"]))
            for s in found.get("shipments", [])
            if isinstance(s, dict) and s.get("orderKey") and s.get("trackingNumber") and not s.get("voided")
        ]


PROVIDERS: dict[str, type[Provider]] = {"shipbob": ShipBob, "shipstation": ShipStation}
