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

Changes (``threepl_change``, ``actors.threepl_changes``): ShipBob looks the order up by
``reference_id``: ``Cancelled`` already is a resend (done); ``Fulfilled`` /
``PartiallyFulfilled`` / ``Completed``, or a shipment ``LabeledCreated`` / ``Completed``, is
too late; else ``POST /order/{id}/cancel`` (any ``canceled_shipment_results[]`` without
``is_success``: too late, with its ``reason``) or ``PUT /shipment/{id}:updateAddress`` per
open shipment (``recipient_name``, ``street_address1/2``, ``city``, ``state``, ``zip_code``,
``country_code``, ``company_name``, ``phone_number``, ``email``). ShipStation finds it by
``GET /orders?orderNumber=`` and ``orderKey``: ``shipped`` is too late, else ``createorder``
with the same ``orderKey`` replaces it (``orderStatus: cancelled``, or the new ``shipTo``).

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
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from backorder.actors import threepl_changes
from backorder.actors.events import NoticeQueued
from backorder.config.settings import ThreeplSettings
from backorder.notify.channels import DeliveryError, Rejected
from backorder.notify.render import Rendered
from backorder.secrets import read_secret
from backorder.writeback.http import Api, basic, credential

if TYPE_CHECKING:
    from backorder.actors.engine import Engine

# ShipBob's order statuses once it shipped, and shipment statuses once picked and labelled:
# a cancellation or a new address is too late
SHIPBOB_SHIPPED = frozenset({"Fulfilled", "PartiallyFulfilled", "Completed"})
SHIPBOB_PICKED = frozenset({"LabeledCreated", "Completed"})
WEBHOOK_TOLERANCE_S = 300.0  # Standard Webhooks: a signed timestamp older or newer than this is refused


class Shipped:
    """One shipment a webhook reports: our order id, the carrier and tracking number."""

    __slots__ = ("carrier", "order_id", "tracking")

    def __init__(self, order_id: str, carrier: str, tracking: str) -> None:
        self.order_id, self.carrier, self.tracking = order_id, carrier, tracking


def webhook_secret(cfg: ThreeplSettings) -> str:
    """The webhook signing secret ("" when it cannot be read: every delivery is refused)."""
    return read_secret(cfg.webhook_secret_env, cfg.webhook_secret_file)


APPLIED, TOO_LATE = "applied", "too_late"


class Provider(ABC):
    """The 3PL as a delivery channel of the outbox, plus its inventory and webhook sides;
    each provider (below) implements the six abstract members from its documented API.
    ``engine`` (the outbox's channel has one) takes the 3PL's answer to a change."""

    name = "threepl"

    def __init__(self, cfg: ThreeplSettings, engine: Engine | None = None) -> None:
        self.cfg = cfg
        self.name = f"threepl/{cfg.provider}"
        self.api = Api(self.name, cfg)  # type: ignore[arg-type]  # same fields as a write-back table
        self.engine = engine
        self.answers: dict[str, tuple[str, str]] = {}  # notice id -> the 3PL's answer to a change, until journaled

    async def send(self, notice: NoticeQueued, rendered: Rendered) -> str:
        if notice.kind == "threepl_order":
            return await self.create_order(notice.data)
        if notice.kind == "threepl_change":
            outcome, message = await self.change(notice.data)
            self.answers[notice.notice_id] = (outcome, message)
            return f"{outcome}: {message}"
        raise Rejected(f"{self.name}: no {notice.kind!r} notices to a 3PL")

    def delivered(self, notice: NoticeQueued) -> None:
        """After a successful send, in the commit of ``notice_delivered``: the 3PL's answer
        to a change is journaled, and the change made when the 3PL made it."""
        answer = self.answers.pop(notice.notice_id, None)
        if answer is None or self.engine is None:
            return
        engine = self.engine
        threepl_changes.answered(engine.world, notice, answer[0], answer[1], engine.emit, engine.now())

    @abstractmethod
    async def change(self, data: dict[str, Any]) -> tuple[str, str]:
        """Cancel (``data["change"]`` "cancel") or re-address ("address", to
        ``data["recipient"]``) the order at the 3PL: (APPLIED or TOO_LATE, the 3PL's words).
        Safe to repeat: a resend after a crash finds the change made and answers APPLIED."""

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

    async def _find(self, ref: str) -> dict[str, Any] | None:
        """Our order at ShipBob, looked up by its reference id (our order id)."""
        found = await self.api.call("GET", f"/order?ReferenceIds={quote(ref)}", self.auth())
        for o in found if isinstance(found, list) else []:
            if isinstance(o, dict) and o.get("reference_id") == ref:
                return o
        return None

    async def create_order(self, data: dict[str, Any]) -> str:
        ref = data["order_id"]
        there = await self._find(ref)
        if there is not None:
            return f"order {there.get('id')} already there"
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

    async def change(self, data: dict[str, Any]) -> tuple[str, str]:
        ref = data["order_id"]
        o = await self._find(ref)
        if o is None:  # its create is still on its way (or dead): retried with backoff
            raise DeliveryError(f"{self.name}: order {ref} is not at ShipBob (yet)")
        oid, status = o.get("id"), str(o.get("status") or "")
        shipments = [sh for sh in o.get("shipments") or [] if isinstance(sh, dict)]
        if data["change"] == "cancel" and status == "Cancelled":
            return APPLIED, f"order {oid} is cancelled"  # a resend after a crash: done already
        gone = [sh for sh in shipments if sh.get("status") in SHIPBOB_PICKED]
        if status in SHIPBOB_SHIPPED or gone:
            return TOO_LATE, f"order {oid} is {status or 'under way'}" + "".join(
                f"; shipment {sh.get('id')} {sh.get('status')}" for sh in gone
            )
        if data["change"] == "cancel":
            doc = await self.api.call("POST", f"/order/{oid}/cancel", self.auth()) or {}
            refused = [x for x in doc.get("canceled_shipment_results") or [] if not (x or {}).get("is_success")]
            if refused:
                return TOO_LATE, "; ".join(
                    f"shipment {x.get('shipment_id')}: {x.get('reason') or 'not cancelled'}" for x in refused
                )
            return APPLIED, f"order {oid} cancelled"
        r = data["recipient"]
        body = {
            "recipient_name": r["name"],
            "company_name": r["company"],
            "street_address1": r["address1"],
            "street_address2": r["address2"],
            "city": r["city"],
            "state": r["region"],
            "zip_code": r["postal_code"],
            "country_code": r["country_code"],
            "phone_number": r["phone"],
            "email": data["email"],
        }
        open_ = [sh for sh in shipments if sh.get("status") != "Cancelled"]
        for sh in open_:  # the same address again on a resend: safe to repeat
            await self.api.call("PUT", f"/shipment/{sh.get('id')}:updateAddress", self.auth(), body)
        return APPLIED, f"order {oid}: address of shipment(s) {', '.join(str(sh.get('id')) for sh in open_)} updated"

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
        made = await self.api.call("POST", "/orders/createorder", self.auth(), self._order(data, "awaiting_shipment"))
        return f"order {(made or {}).get('orderId')}"

    async def change(self, data: dict[str, Any]) -> tuple[str, str]:
        key = data["order_id"]
        doc = await self.api.call("GET", f"/orders?orderNumber={quote(data['order_number'])}", self.auth()) or {}
        o = next((x for x in doc.get("orders") or [] if isinstance(x, dict) and x.get("orderKey") == key), None)
        if o is None:  # its create is still on its way (or dead): retried with backoff
            raise DeliveryError(f"{self.name}: order {key} is not at ShipStation (yet)")
        status = str(o.get("orderStatus") or "")
        if data["change"] == "cancel" and status == "cancelled":
            return APPLIED, f"order {o.get('orderId')} is cancelled"  # a resend after a crash: done already
        if status in ("shipped", "cancelled"):
            return TOO_LATE, f"order {o.get('orderId')} is {status}"
        # createorder with the same orderKey updates the order: cancelled, or its new shipTo
        new_status = "cancelled" if data["change"] == "cancel" else status or "awaiting_shipment"
        await self.api.call("POST", "/orders/createorder", self.auth(), self._order(data, new_status))
        return APPLIED, f"order {o.get('orderId')} " + ("cancelled" if data["change"] == "cancel" else "re-addressed")

    def _order(self, data: dict[str, Any], status: str) -> dict[str, Any]:
        """The createorder body (the whole order: ShipStation replaces it by ``orderKey``)."""
        r = data["recipient"]
        body: dict[str, Any] = {
            "orderKey": data["order_id"],
            "orderNumber": data["order_number"],
            "orderDate": data["created_at"] or "",
            "orderStatus": status,
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
        return body

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
