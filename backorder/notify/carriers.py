"""Remote carriers, written from their documented REST APIs, and the outbox channel that
buys, voids and tracks their labels.

A carrier adapter (``CarrierApi``) does four things, each a blocking HTTP exchange run in
a worker thread by ``CarrierChannel`` (never on the trio hot path):

- ``rate``: the carrier's offers for a parcel, as ``actors.carrier.Rate`` (and the carrier's
  own shipment id when it keeps one, so a retry buys that same shipment);
- ``buy``: the label of the chosen rate: tracking number, ZPL and PDF;
- ``void``: a bought label is voided (refunded) when its order was cancelled meanwhile;
- ``tracking``: a tracking webhook's body, signature checked, as ``(tracking, status, detail)``.

EasyPost (``https://api.easypost.com``): basic auth with the API key as user; ``POST
/v2/shipments`` with ``to_address``, ``from_address``, ``parcel`` and ``reference`` (our
shipment id) returns the shipment with its ``rates``; ``POST /v2/shipments/{id}/buy`` with
``{"rate": {"id": ...}}`` returns ``tracking_code`` and ``postage_label``; ``GET
/v2/shipments/{id}/label?file_format=ZPL|PDF`` adds ``label_zpl_url`` / ``label_pdf_url``;
``POST /v2/shipments/{id}/refund`` voids. A retry after a crash first reads ``GET
/v2/shipments/{id}``: a shipment already bought is never bought again. Tracker webhooks
are ``Event`` objects (``description: tracker.updated``, ``result`` a ``Tracker``) signed
``X-Hmac-Signature: hmac-sha256-hex=<HMAC-SHA256 of the body>`` under the webhook secret.

UPS (``https://onlinetools.ups.com``): an OAuth client-credentials token (``POST
/security/v1/oauth/token``, basic auth with the client id and secret), kept until it
expires; ``POST /api/rating/v2409/Shop`` for the rates (``RatedShipment``); ``POST
/api/shipments/v2409/ship`` with ``LabelImageFormat`` ``ZPL`` and ``ReferenceNumber`` = our
shipment id for the label (UPS returns one image format per request: the PDF is rendered
locally by ``label.get``); ``DELETE /api/shipments/v2409/void/cancel/{id}`` voids. UPS keeps
no shipment before it is bought, so a retried purchase (an attempt cut off by a crash or a
lost answer) first asks Label Recovery (``POST /api/labels/v1/recovery`` with
``ReferenceValues {ReferenceNumber: our shipment id, ShipperNumber}``): a label bought
already is taken back instead of bought again; an error answer means none was bought (a
shipment cancelled meanwhile asks the same, and a label found is voided). With
``webhook_url`` set, each bought label's tracking number is subscribed to Track Alert
(``POST /api/track/v1/subscription/standard/package``, ``destination {url, credentialType:
Bearer, credential}``: the webhook secret); UPS posts each event there with that
``credential`` header (compared in constant time) and ``trackingNumber``, ``activityStatus
{type, code, description}``: type I / P / O in transit, D delivered, X / RS exception, M
(label created) and the rest are ignored.

Failures are classified as the outbox needs them: 401/403 is ``CredentialRejected`` (the
carrier's breaker opens at once, reported once), any other 4xx ``Rejected`` (dead at
once with the carrier's message: a retry cannot fix the request), 5xx, 408, 429 and
network errors ``DeliveryError`` (retried with backoff).
"""

from __future__ import annotations

import base64
import decimal
import hashlib
import hmac
import json
import os
import time
import unicodedata
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Protocol

import structlog
import trio

from backorder.actors import events as ev
from backorder.actors import order_rules
from backorder.actors.carrier import Rate, choose_rate
from backorder.actors.engine import Engine
from backorder.config.settings import CarriersSettings, RemoteCarrierSettings
from backorder.notify.channels import CredentialRejected, DeliveryError, Rejected
from backorder.notify.render import Rendered
from backorder.secrets import read_secret, why_missing

log = structlog.get_logger()


class BadSignature(Exception):
    """A tracking webhook whose signature does not verify (or with no secret configured)."""


@dataclass(frozen=True)
class Parcel:
    """What a label is bought for: our shipment id (the carrier's reference), the address,
    the weight and the service level."""

    reference: str
    to: ev.AddressRecord
    weight_oz: float
    rush: bool
    retry: bool = False  # an earlier attempt may have bought it (UPS looks it up first)


@dataclass(frozen=True)
class Label:
    tracking: str
    label_zpl: str
    label_pdf: str  # base64; "" = the carrier sent none
    service: str
    carrier_ref: str


class CarrierApi(Protocol):
    name: str

    def rate(self, parcel: Parcel) -> tuple[str, list[Rate]]: ...

    def buy(self, carrier_ref: str, rate_id: str, parcel: Parcel) -> Label: ...

    def void(self, carrier_ref: str, tracking: str) -> str: ...

    def bought(self, carrier_ref: str, reference: str, rate_id: str) -> Label | None: ...

    def tracking(self, headers: dict[str, str], body: bytes) -> list[tuple[str, str, str]]: ...


def required_secret(env: str, file: str, what: str) -> str:
    """A carrier's secret (``backorder.secrets``); none is a refused credential."""
    value = read_secret(env, file)
    if not value:
        raise CredentialRejected(f"{what} is not configured (or empty): {why_missing(env, file)}")
    return value


def _message(body: bytes) -> str:
    """The carrier's own error message from an error reply (EasyPost ``error.message``,
    UPS ``response.errors[].message``), else the start of the body."""
    try:
        doc = json.loads(body)
    except ValueError:
        return body[:200].decode("utf-8", "replace")
    if isinstance(doc, dict):
        err = doc.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        errors = (doc.get("response") or {}).get("errors") if isinstance(doc.get("response"), dict) else None
        if errors:
            return "; ".join(str(e.get("message", e)) for e in errors if isinstance(e, dict))
    return json.dumps(doc)[:200]


def http(method: str, url: str, headers: dict[str, str], body: bytes | None, timeout: float, who: str) -> bytes:
    req = urllib.request.Request(url, data=body, headers={"User-Agent": "backorder", **headers}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.read()
    except urllib.error.HTTPError as exc:
        text = f"{who}: HTTP {exc.code}: {_message(exc.read())}"
        exc.close()
        if exc.code in (401, 403):
            raise CredentialRejected(text) from None
        if 400 <= exc.code < 500 and exc.code not in (408, 409, 425, 429):
            raise Rejected(text) from None
        raise DeliveryError(text) from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        raise DeliveryError(f"{who}: {getattr(exc, 'reason', exc)}") from None


def _json(method: str, url: str, headers: dict[str, str], doc: dict | None, timeout: float, who: str) -> dict:
    body = None if doc is None else json.dumps(doc).encode()
    hdrs = {**headers, "Accept": "application/json"}
    if body is not None:
        hdrs["Content-Type"] = "application/json"
    raw = http(method, url, hdrs, body, timeout, who)
    try:
        out = json.loads(raw) if raw else {}
    except ValueError:
        raise DeliveryError(f"{who}: the reply is not JSON") from None
    return out if isinstance(out, dict) else {}


def _days(value: object) -> int | None:
    try:
        return None if value in (None, "") else int(str(value))
    except ValueError:
        return None


class EasyPost:
    name = "easypost"
    production = "https://api.easypost.com"

    def __init__(self, cfg: RemoteCarrierSettings) -> None:
        self.cfg = cfg
        self.base = (cfg.base_url or self.production).rstrip("/")

    def _auth(self) -> dict[str, str]:
        key = required_secret(self.cfg.key_env, self.cfg.key_file, "carriers.easypost API key")
        return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}

    def _call(self, method: str, path: str, doc: dict | None = None) -> dict:
        return _json(method, self.base + path, self._auth(), doc, self.cfg.timeout_s, "easypost")

    def rate(self, parcel: Parcel) -> tuple[str, list[Rate]]:
        a, f = parcel.to, self.cfg.from_address
        shipment = {
            "reference": parcel.reference,
            "to_address": {
                "name": a.name,
                "company": a.company,
                "street1": a.address1,
                "street2": a.address2,
                "city": a.city,
                "state": a.region,
                "zip": a.postal_code,
                "country": a.country_code,
                "phone": a.phone,
            },
            "from_address": {
                "name": f.name,
                "company": f.company,
                "street1": f.street1,
                "street2": f.street2,
                "city": f.city,
                "state": f.state,
                "zip": f.zip,
                "country": f.country,
                "phone": f.phone,
            },
            "parcel": {"weight": round(parcel.weight_oz, 1)},
            "options": {"label_format": "ZPL"},
        }
        out = self._call("POST", "/v2/shipments", {"shipment": shipment})
        rates = [
            Rate(
                rate_id=str(r["id"]),
                carrier=str(r.get("carrier", "")),
                service=str(r.get("service", "")),
                amount=decimal.Decimal(str(r.get("rate", "0"))),
                days=_days(r.get("delivery_days")),
            )
            for r in out.get("rates") or []
            if isinstance(r, dict) and r.get("id")
        ]
        return str(out.get("id", "")), rates

    def buy(self, carrier_ref: str, rate_id: str, parcel: Parcel) -> Label:
        shipment = self._call("GET", f"/v2/shipments/{carrier_ref}")
        if not shipment.get("tracking_code"):  # not bought yet (a retry after a crash finds it bought)
            shipment = self._call("POST", f"/v2/shipments/{carrier_ref}/buy", {"rate": {"id": rate_id}})
        label = shipment.get("postage_label") or {}
        for fmt, key in (("ZPL", "label_zpl_url"), ("PDF", "label_pdf_url")):
            if not label.get(key):
                label = self._call("GET", f"/v2/shipments/{carrier_ref}/label?file_format={fmt}").get(
                    "postage_label"
                ) or {**label}
        if not label.get("label_zpl_url") or not label.get("label_pdf_url"):
            raise DeliveryError(f"easypost: shipment {carrier_ref} has no ZPL or PDF label yet")
        zpl = http("GET", str(label["label_zpl_url"]), {}, None, self.cfg.timeout_s, "easypost label")
        pdf = http("GET", str(label["label_pdf_url"]), {}, None, self.cfg.timeout_s, "easypost label")
        selected = shipment.get("selected_rate") or {}
        return Label(
            tracking=str(shipment.get("tracking_code", "")),
            label_zpl=zpl.decode("utf-8", "replace"),
            label_pdf=base64.b64encode(pdf).decode(),
            service=f"{selected.get('carrier', '')} {selected.get('service', '')}".strip(),
            carrier_ref=carrier_ref,
        )

    def bought(self, carrier_ref: str, reference: str, rate_id: str) -> Label | None:
        """The label of carrier shipment ``carrier_ref`` if it was bought (enough to void it), else None."""
        tracking = str(self._call("GET", f"/v2/shipments/{carrier_ref}").get("tracking_code") or "")
        return Label(tracking, "", "", "", carrier_ref) if tracking else None

    def void(self, carrier_ref: str, tracking: str) -> str:
        out = self._call("POST", f"/v2/shipments/{carrier_ref}/refund")
        return f"refund {out.get('refund_status', 'submitted')}"

    def tracking(self, headers: dict[str, str], body: bytes) -> list[tuple[str, str, str]]:
        try:
            secret = required_secret(self.cfg.webhook_secret_env, self.cfg.webhook_secret_file, "webhook secret")
        except CredentialRejected:
            raise BadSignature("no webhook secret is configured for easypost") from None
        key = unicodedata.normalize("NFKD", secret).encode()
        expected = "hmac-sha256-hex=" + hmac.new(key, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, headers.get("x-hmac-signature", "")):
            raise BadSignature("X-Hmac-Signature does not match the body")
        doc = json.loads(body)
        if not isinstance(doc, dict) or doc.get("description") not in ("tracker.updated", "tracker.created"):
            return []
        t = doc.get("result")
        if not isinstance(t, dict):
            return []
        status = _EASYPOST_STATUS.get(str(t.get("status", "")))
        if status is None or not isinstance(t.get("tracking_code"), str) or not t["tracking_code"]:
            return []
        return [(str(t["tracking_code"]), status, str(t.get("status_detail") or t.get("status") or ""))]


# EasyPost tracker statuses -> ours ("pre_transit", "unknown", "cancelled": no change)
_EASYPOST_STATUS = {
    "in_transit": "in_transit",
    "out_for_delivery": "in_transit",
    "available_for_pickup": "in_transit",
    "delivered": "delivered",
    "return_to_sender": "exception",
    "failure": "exception",
    "error": "exception",
}

# UPS service codes and their names (the ones the Shop request returns most)
_UPS_SERVICES = {
    "01": "Next Day Air",
    "02": "2nd Day Air",
    "03": "Ground",
    "12": "3 Day Select",
    "13": "Next Day Air Saver",
    "14": "Next Day Air Early",
    "59": "2nd Day Air A.M.",
}


# UPS Track Alert activity types -> ours ("M": label created, and the rest: no change)
_UPS_STATUS = {"I": "in_transit", "P": "in_transit", "O": "in_transit", "D": "delivered", "X": "exception"}
_UPS_STATUS["RS"] = "exception"


class Ups:
    name = "ups"
    production = "https://onlinetools.ups.com"
    version = "v2409"

    def __init__(self, cfg: RemoteCarrierSettings) -> None:
        self.cfg = cfg
        self.base = (cfg.base_url or self.production).rstrip("/")
        self._token: tuple[str, float] | None = None  # (access token, monotonic expiry)

    def _auth(self) -> dict[str, str]:
        if self._token is None or time.monotonic() >= self._token[1]:
            cid = required_secret(self.cfg.key_env, self.cfg.key_file, "carriers.ups client id")
            secret = required_secret(self.cfg.secret_env, self.cfg.secret_file, "carriers.ups client secret")
            basic = base64.b64encode(f"{cid}:{secret}".encode()).decode()
            raw = http(
                "POST",
                self.base + "/security/v1/oauth/token",
                {
                    "Authorization": f"Basic {basic}",
                    "Content-Type": "application/x-www-form-urlencoded",
                    "x-merchant-id": self.cfg.account_number,
                },
                b"grant_type=client_credentials",
                self.cfg.timeout_s,
                "ups oauth",
            )
            doc = json.loads(raw)
            # renew a minute early: a token expiring in flight is a 401, which trips the breaker
            self._token = (str(doc["access_token"]), time.monotonic() + max(int(doc.get("expires_in", 0)) - 60, 0))
        return {
            "Authorization": f"Bearer {self._token[0]}",
            "transId": os.urandom(8).hex(),
            "transactionSrc": "backorder",
        }

    def _call(self, method: str, path: str, doc: dict | None = None) -> dict:
        try:
            return _json(method, self.base + path, self._auth(), doc, self.cfg.timeout_s, "ups")
        except CredentialRejected:
            self._token = None  # an expired or revoked token: ask for a new one next time
            raise

    def _shipment(self, parcel: Parcel, service: str | None) -> dict:
        a, f = parcel.to, self.cfg.from_address
        shipper_addr = {
            "AddressLine": [x for x in (f.street1, f.street2) if x],
            "City": f.city,
            "StateProvinceCode": f.state,
            "PostalCode": f.zip,
            "CountryCode": f.country,
        }
        out: dict = {
            "Shipper": {"Name": f.company or f.name, "ShipperNumber": self.cfg.account_number, "Address": shipper_addr},
            "ShipFrom": {"Name": f.company or f.name, "Address": shipper_addr},
            "ShipTo": {
                "Name": a.company or a.name,
                "AttentionName": a.name,
                "Phone": {"Number": a.phone},
                "Address": {
                    "AddressLine": [x for x in (a.address1, a.address2) if x],
                    "City": a.city,
                    "StateProvinceCode": a.region,
                    "PostalCode": a.postal_code,
                    "CountryCode": a.country_code,
                },
            },
            "Package": {
                "PackagingType": {"Code": "02"},
                "PackageWeight": {"UnitOfMeasurement": {"Code": "LBS"}, "Weight": f"{parcel.weight_oz / 16:.1f}"},
            },
        }
        if service is not None:
            out["Service"] = {"Code": service}
            out["Package"]["Packaging"] = out["Package"].pop("PackagingType")
            out["PaymentInformation"] = {
                "ShipmentCharge": {"Type": "01", "BillShipper": {"AccountNumber": self.cfg.account_number}}
            }
            out["ReferenceNumber"] = {"Value": parcel.reference}
        return out

    def rate(self, parcel: Parcel) -> tuple[str, list[Rate]]:
        doc = {"RateRequest": {"Request": {"RequestOption": "Shop"}, "Shipment": self._shipment(parcel, None)}}
        out = self._call("POST", f"/api/rating/{self.version}/Shop", doc)
        rated = (out.get("RateResponse") or {}).get("RatedShipment") or []
        if isinstance(rated, dict):
            rated = [rated]
        rates = []
        for r in rated:
            code = str((r.get("Service") or {}).get("Code", ""))
            days = _days((r.get("GuaranteedDelivery") or {}).get("BusinessDaysInTransit"))
            amount = decimal.Decimal(str((r.get("TotalCharges") or {}).get("MonetaryValue", "0")))
            rates.append(
                Rate(rate_id=code, carrier="UPS", service=_UPS_SERVICES.get(code, code), amount=amount, days=days)
            )
        return "", rates

    def buy(self, carrier_ref: str, rate_id: str, parcel: Parcel) -> Label:
        label = self.recover(parcel.reference, rate_id) if parcel.retry else None
        if label is None:
            label = self._ship(rate_id, parcel)
        if self.cfg.webhook_url and label.tracking:
            self.subscribe(label.tracking)  # a failure retries: the label is recovered, not bought again
        return label

    def recover(self, reference: str, rate_id: str) -> Label | None:
        """The label UPS already sold for our shipment ``reference`` (Label Recovery), or None."""
        doc = {
            "LabelRecoveryRequest": {
                "LabelSpecification": {
                    "LabelImageFormat": {"Code": "ZPL"},
                    "LabelStockSize": {"Height": "6", "Width": "4"},
                },
                "ReferenceValues": {
                    "ReferenceNumber": {"Value": reference},
                    "ShipperNumber": self.cfg.account_number,
                },
            }
        }
        try:
            out = self._call("POST", "/api/labels/v1/recovery", doc)
        except Rejected:  # UPS answers an error when it sold no label by that reference
            return None
        resp = out.get("LabelRecoveryResponse") or {}
        results = resp.get("LabelResults") or {}
        if isinstance(results, list):
            results = results[0] if results else {}
        tracking = str(results.get("TrackingNumber") or "")
        if not tracking:
            return None
        image = (results.get("LabelImage") or {}).get("GraphicImage", "")
        return Label(
            tracking=tracking,
            label_zpl=base64.b64decode(image).decode("utf-8", "replace") if image else "",
            label_pdf="",
            service=f"UPS {_UPS_SERVICES.get(rate_id, rate_id)}",
            carrier_ref=str(resp.get("ShipmentIdentificationNumber") or tracking),
        )

    def subscribe(self, tracking: str) -> None:
        """Ask Track Alert to post this parcel's events to ``webhook_url``."""
        credential = required_secret(
            self.cfg.webhook_secret_env, self.cfg.webhook_secret_file, "ups webhook credential"
        )
        doc = {
            "locale": "en_US",
            "countryCode": "US",
            "trackingNumberList": [tracking],
            "destination": {"url": self.cfg.webhook_url, "credentialType": "Bearer", "credential": credential},
        }
        out = self._call("POST", "/api/track/v1/subscription/standard/package", doc)
        if tracking in (out.get("invalidTrackingNumbers") or []):
            raise Rejected(f"ups: Track Alert refused tracking number {tracking}")

    def _ship(self, rate_id: str, parcel: Parcel) -> Label:
        doc = {
            "ShipmentRequest": {
                "Request": {"RequestOption": "nonvalidate"},
                "Shipment": self._shipment(parcel, rate_id),
                "LabelSpecification": {
                    "LabelImageFormat": {"Code": "ZPL"},
                    "LabelStockSize": {"Height": "6", "Width": "4"},
                },
            }
        }
        out = self._call("POST", f"/api/shipments/{self.version}/ship", doc)
        results = (out.get("ShipmentResponse") or {}).get("ShipmentResults") or {}
        packages = results.get("PackageResults") or {}
        if isinstance(packages, list):
            packages = packages[0] if packages else {}
        image = (packages.get("ShippingLabel") or {}).get("GraphicImage", "")
        return Label(
            tracking=str(packages.get("TrackingNumber", "")),
            label_zpl=base64.b64decode(image).decode("utf-8", "replace") if image else "",
            label_pdf="",
            service=f"UPS {_UPS_SERVICES.get(rate_id, rate_id)}",
            carrier_ref=str(results.get("ShipmentIdentificationNumber", "")),
        )

    def bought(self, carrier_ref: str, reference: str, rate_id: str) -> Label | None:
        """UPS keeps no shipment before the purchase: the label sold for our shipment
        ``reference`` is found by Label Recovery, with the shipment id its void needs."""
        return self.recover(reference, rate_id)

    def void(self, carrier_ref: str, tracking: str) -> str:
        out = self._call("DELETE", f"/api/shipments/{self.version}/void/cancel/{carrier_ref}")
        status = ((out.get("VoidShipmentResponse") or {}).get("SummaryResult") or {}).get("Status") or {}
        return f"void {status.get('Description', 'submitted')}"

    def tracking(self, headers: dict[str, str], body: bytes) -> list[tuple[str, str, str]]:
        try:
            secret = required_secret(self.cfg.webhook_secret_env, self.cfg.webhook_secret_file, "webhook credential")
        except CredentialRejected:
            raise BadSignature("no webhook credential is configured for ups") from None
        if not hmac.compare_digest(headers.get("credential", "").encode(), secret.encode()):
            raise BadSignature("the credential header does not match")
        doc = json.loads(body)
        status = doc.get("activityStatus") if isinstance(doc, dict) else None
        if not isinstance(status, dict) or not isinstance(doc.get("trackingNumber"), str):
            return []
        ours = _UPS_STATUS.get(str(status.get("type") or ""))
        tracking = doc["trackingNumber"].strip()  # UPS's own example pads it with a space
        if ours is None or not tracking:
            return []
        return [(tracking, ours, str(status.get("description") or status.get("code") or ""))]


APIS = {"easypost": EasyPost, "ups": Ups}


class CarrierChannel:
    """The outbox channel ``carrier``: a ``label`` notice buys the label of a
    ``label_pending`` shipment (rate shopping first, journaled as ``shipment_rated`` so a
    retry buys that same carrier shipment), a ``label_void`` notice voids a label bought
    for an order cancelled meanwhile. ``delivered`` runs once the notifier has the receipt:
    it ships the shipment, in the same commit as ``notice_delivered``."""

    name = "carrier"

    def __init__(self, engine: Engine, cfg: CarriersSettings) -> None:
        self.engine = engine
        self.configure(cfg)
        self.bought: dict[str, Label] = {}  # notice id -> the label of a purchase not yet journaled
        self._limiter = trio.CapacityLimiter(2)

    def configure(self, cfg: CarriersSettings) -> None:
        self.cfg = cfg
        self.apis: dict[str, CarrierApi] = {"easypost": EasyPost(cfg.easypost), "ups": Ups(cfg.ups)}

    async def _run(self, fn, *args):
        # abandon_on_cancel: a cut attempt is repeated (with the same carrier shipment for EasyPost)
        return await trio.to_thread.run_sync(lambda: fn(*args), limiter=self._limiter, abandon_on_cancel=True)

    async def send(self, n: ev.NoticeQueued, r: Rendered) -> str:
        world, engine = self.engine.world, self.engine
        data = n.data
        api = self.apis.get(str(data.get("carrier")))
        if api is None:
            raise Rejected(f"no carrier adapter named {data.get('carrier')!r}")
        sh = world.shipments[str(data["shipment_id"])]
        if n.kind == "label_void":
            return await self._run(api.void, str(data.get("carrier_ref", "")), str(data.get("tracking", "")))
        if sh.status != "label_pending":  # cancelled while its label was pending
            if sh.status == "cancelled" and sh.rate_id:
                # rated, so a purchase went out: an attempt cut off by a crash or a lost
                # answer may have bought it (EasyPost: its shipment; UPS: Label Recovery by
                # our shipment id); then ``delivered`` queues its void (``label_void``)
                label = await self._run(api.bought, sh.carrier_ref, sh.shipment_id, sh.rate_id)
                if label is not None:
                    self.bought[n.notice_id] = label
                    return f"bought before the cancel: tracking {label.tracking}, to be voided"
            return f"skipped: shipment {sh.shipment_id} is {sh.status}"
        order = world.orders[sh.order_id]
        parcel = Parcel(
            reference=sh.shipment_id,
            to=order.spec.shipping_address,
            weight_oz=sh.units * self.cfg_for(api.name).parcel_weight_oz,
            rush=order.spec.rush,
            retry=world.notices[n.notice_id].attempts > 1,
        )
        if not sh.rate_id:
            carrier_ref, rates = await self._run(api.rate, parcel)
            rate = choose_rate(rates, parcel.rush, world.settings.fulfillment.standard_max_days)
            if rate is None:
                raise Rejected(f"{api.name}: no rate offered for shipment {sh.shipment_id}")
            engine.context("notifier", n.notice_id)
            engine.emit(
                ev.ShipmentRated(
                    ts=engine.now(),
                    shipment_id=sh.shipment_id,
                    order_id=sh.order_id,
                    carrier=api.name,
                    carrier_ref=carrier_ref,
                    rate_id=rate.rate_id,
                    service=f"{rate.carrier} {rate.service}".strip(),
                    amount=str(rate.amount),
                )
            )
            await engine.journal.wait_durable(engine.journal.last_seq)
        label = await self._run(api.buy, sh.carrier_ref, sh.rate_id, parcel)
        if not label.tracking:
            raise DeliveryError(f"{api.name}: the purchase returned no tracking number")
        self.bought[n.notice_id] = label
        return f"tracking {label.tracking} ({label.service})"

    def cfg_for(self, name: str) -> RemoteCarrierSettings:
        return self.cfg.ups if name == "ups" else self.cfg.easypost

    def delivered(self, n: ev.NoticeQueued) -> None:
        """After a successful send, before ``notice_delivered``: the bought label ships the shipment."""
        label = self.bought.pop(n.notice_id, None)
        if n.kind != "label" or label is None:
            return
        engine = self.engine
        order_rules.label_bought(
            engine.world,
            str(n.data["shipment_id"]),
            label.tracking,
            label.label_zpl,
            label.label_pdf,
            label.service,
            label.carrier_ref,
            engine.emit,
            engine.now(),
        )
