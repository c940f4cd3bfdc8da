"""Fake carrier APIs on loopback, speaking the documented request and response shapes:
EasyPost (``/v2/shipments``, buy, label, refund; basic auth with the API key) and UPS
(OAuth client credentials, Rating ``Shop``, Shipping ``ship``, void). They check auth,
refuse malformed requests (422 / 400 with the carrier's error document), fail on purpose
(``fail``: the next matching requests get a scripted status), hold a purchase on request
(``hold_buy``: the test can kill the daemon mid-purchase) and count purchases per
reference, so a test can prove a label was bought exactly once."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

ZPL = "^XA^FO50,50^A0N,40,40^FDFAKE CARRIER LABEL^FS^XZ"
PDF = b"%PDF-1.4 fake carrier label\n%%EOF\n"

# (id, carrier, service, rate, delivery_days): the cheapest is slow, the fastest dear
RATES = [
    ("rate_ground", "USPS", "GroundAdvantage", "5.10", 5),
    ("rate_priority", "USPS", "Priority", "8.40", 2),
    ("rate_nda", "UPS", "NextDayAir", "31.00", 1),
    ("rate_none", "USPS", "Media", "4.99", None),
]


class FakeCarrier:
    """Shared state of a fake (guarded by ``lock``)."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status answered)
        self.fail: list[tuple[str, int, str]] = []  # (path fragment, status, message), used in order
        self.hold_buy: threading.Event | None = None  # set: purchases answer; clear: they wait
        self.buy_started = threading.Event()
        self.buys: dict[str, int] = {}  # reference -> purchases that went through
        self.refunds: list[str] = []
        self.shipments: dict[str, dict] = {}
        self.labels: dict[str, str] = {}  # UPS: reference -> tracking number of the label sold
        self.subscriptions: list[dict] = []  # UPS Track Alert subscription requests

    def count(self, method: str, fragment: str) -> int:
        with self.lock:
            return sum(1 for m, p, _ in self.requests if m == method and fragment in p)

    def scripted(self, path: str) -> tuple[int, str] | None:
        with self.lock:
            for i, (fragment, status, message) in enumerate(self.fail):
                if fragment in path:
                    del self.fail[i]
                    return status, message
        return None


class _Handler(BaseHTTPRequestHandler):
    fake: FakeCarrier

    def log_message(self, *args) -> None:
        pass

    def _send(self, status: int, doc: dict | bytes | str, ctype: str = "application/json") -> None:
        body = doc if isinstance(doc, bytes) else (doc.encode() if isinstance(doc, str) else json.dumps(doc).encode())
        path = urlparse(self.path).path
        with self.fake.lock:
            self.fake.requests.append((self.command, path, status))
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> dict:
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            return json.loads(raw) if raw else {}
        except ValueError:
            return {"_raw": raw.decode("latin-1")}


def _ep_error(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message, "errors": []}}


class _EasyPostHandler(_Handler):
    def _authorised(self) -> bool:
        expected = "Basic " + base64.b64encode(f"{self.fake.key}:".encode()).decode()
        return self.headers.get("Authorization") == expected

    def _route(self) -> None:
        url = urlparse(self.path)
        path, fake = url.path, self.fake
        if path.startswith("/files/"):  # label files: public URLs, no auth (like EasyPost's)
            if path.endswith(".zpl"):
                self._send(200, ZPL, "text/plain")
            else:
                self._send(200, PDF, "application/pdf")
            return
        if not self._authorised():
            self._send(401, _ep_error("APIKEY.INACTIVE", "This api key is no longer active."))
            return
        scripted = fake.scripted(path)
        if scripted is not None:
            status, message = scripted
            self._send(status, _ep_error("SHIPMENT.INVALID_PARAMS" if status < 500 else "INTERNAL", message))
            return
        parts = path.strip("/").split("/")  # v2 shipments [id] [action]
        if self.command == "POST" and parts == ["v2", "shipments"]:
            doc = self._body().get("shipment") or {}
            to, parcel = doc.get("to_address") or {}, doc.get("parcel") or {}
            if (
                not to.get("street1")
                or not doc.get("from_address")
                or not parcel.get("weight")
                or not doc.get("reference")
            ):
                self._send(
                    422, _ep_error("SHIPMENT.INVALID_PARAMS", "to_address, from_address, parcel.weight required")
                )
                return
            with fake.lock:
                sid = f"shp_{len(fake.shipments) + 1}"
                shipment = {
                    "id": sid,
                    "object": "Shipment",
                    "reference": doc["reference"],
                    "tracking_code": None,
                    "postage_label": None,
                    "selected_rate": None,
                    "rates": [
                        {
                            "id": f"{rid}_{sid}",
                            "object": "Rate",
                            "carrier": carrier,
                            "service": service,
                            "rate": rate,
                            "currency": "USD",
                            "delivery_days": days,
                            "shipment_id": sid,
                        }
                        for rid, carrier, service, rate, days in RATES
                    ],
                }
                fake.shipments[sid] = shipment
            self._send(201, shipment)
            return
        shipment = fake.shipments.get(parts[2]) if len(parts) >= 3 else None
        if shipment is None:
            self._send(404, _ep_error("NOT_FOUND", "The requested resource could not be found."))
            return
        action = parts[3] if len(parts) > 3 else ""
        if self.command == "GET" and action == "":
            self._send(200, shipment)
        elif self.command == "POST" and action == "buy":
            rate_id = (self._body().get("rate") or {}).get("id")
            rate = next((r for r in shipment["rates"] if r["id"] == rate_id), None)
            if rate is None:
                self._send(422, _ep_error("SHIPMENT.RATE.INVALID", f"rate {rate_id} is not a rate of this shipment"))
                return
            if shipment["tracking_code"]:
                self._send(422, _ep_error("SHIPMENT.POSTAGE.EXISTS", "Shipment already has postage"))
                return
            with fake.lock:
                fake.buys[shipment["reference"]] = fake.buys.get(shipment["reference"], 0) + 1
                shipment["tracking_code"] = f"EZ{1000 + sum(fake.buys.values())}"
                shipment["selected_rate"] = rate
                shipment["postage_label"] = {
                    "object": "PostageLabel",
                    "label_url": f"http://{self.headers['Host']}/files/{shipment['id']}.png",
                    "label_zpl_url": f"http://{self.headers['Host']}/files/{shipment['id']}.zpl",
                    "label_pdf_url": None,
                }
            fake.buy_started.set()
            if fake.hold_buy is not None:
                fake.hold_buy.wait(30)
            self._send(200, shipment)
        elif self.command == "GET" and action == "label":
            fmt = parse_qs(url.query).get("file_format", [""])[0].upper()
            if fmt not in ("PDF", "ZPL", "EPL2", "PNG") or not shipment["postage_label"]:
                self._send(422, _ep_error("SHIPMENT.LABEL.INVALID", f"cannot convert to {fmt!r}"))
                return
            shipment["postage_label"][f"label_{fmt.lower()}_url"] = (
                f"http://{self.headers['Host']}/files/{shipment['id']}.{fmt.lower()}"
            )
            self._send(200, shipment)
        elif self.command == "POST" and action == "refund":
            with fake.lock:
                fake.refunds.append(shipment["id"])
            self._send(200, {**shipment, "refund_status": "submitted"})
        else:
            self._send(404, _ep_error("NOT_FOUND", "no such route"))

    def do_GET(self) -> None:
        self._route()

    def do_POST(self) -> None:
        self._route()


class _UpsHandler(_Handler):
    def _route(self) -> None:
        path, fake = urlparse(self.path).path, self.fake
        if path == "/security/v1/oauth/token":
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            basic = "Basic " + base64.b64encode(fake.key.encode()).decode()  # key = "id:secret"
            if self.headers.get("Authorization") != basic or body != b"grant_type=client_credentials":
                self._send(401, {"response": {"errors": [{"code": "10401", "message": "ClientId is Invalid"}]}})
                return
            self._send(
                200, {"token_type": "Bearer", "access_token": "tok-1", "expires_in": "14399", "status": "approved"}
            )
            return
        if self.headers.get("Authorization") != "Bearer tok-1" or not self.headers.get("transId"):
            self._send(
                401, {"response": {"errors": [{"code": "250002", "message": "Invalid Authentication Information."}]}}
            )
            return
        scripted = fake.scripted(path)
        if scripted is not None:
            self._send(scripted[0], {"response": {"errors": [{"code": "120100", "message": scripted[1]}]}})
            return
        doc = self._body()
        if self.command == "POST" and path == "/api/rating/v2409/Shop":
            shipment = (doc.get("RateRequest") or {}).get("Shipment") or {}
            if not (shipment.get("ShipTo") or {}).get("Address", {}).get("PostalCode"):
                self._send(400, {"response": {"errors": [{"code": "111210", "message": "Missing ShipTo PostalCode"}]}})
                return
            rated = [
                {"Service": {"Code": "03"}, "TotalCharges": {"CurrencyCode": "USD", "MonetaryValue": "11.50"},
                 "GuaranteedDelivery": {"BusinessDaysInTransit": "4"}},
                {"Service": {"Code": "01"}, "TotalCharges": {"CurrencyCode": "USD", "MonetaryValue": "48.20"},
                 "GuaranteedDelivery": {"BusinessDaysInTransit": "1"}},
                {"Service": {"Code": "02"}, "TotalCharges": {"CurrencyCode": "USD", "MonetaryValue": "27.90"},
                 "GuaranteedDelivery": {"BusinessDaysInTransit": "2"}},
            ]  # fmt: skip
            self._send(200, {"RateResponse": {"RatedShipment": rated}})
        elif self.command == "POST" and path == "/api/shipments/v2409/ship":
            req = doc.get("ShipmentRequest") or {}
            fmt = ((req.get("LabelSpecification") or {}).get("LabelImageFormat") or {}).get("Code")
            shipment = req.get("Shipment") or {}
            ref = (shipment.get("ReferenceNumber") or {}).get("Value", "")
            if fmt not in ("ZPL", "GIF", "PDF", "EPL", "SPL") or not (shipment.get("Service") or {}).get("Code"):
                self._send(400, {"response": {"errors": [{"code": "120100", "message": "Invalid LabelImageFormat"}]}})
                return
            with fake.lock:
                fake.buys[ref] = fake.buys.get(ref, 0) + 1
                n = sum(fake.buys.values())
                tracking = fake.labels[ref] = f"1Z999AA1{n:010d}"
            if fake.hold_buy is not None:  # sold; the answer waits (the daemon may be killed meanwhile)
                fake.buy_started.set()
                fake.hold_buy.wait(30)
            self._send(
                200,
                {
                    "ShipmentResponse": {
                        "ShipmentResults": {
                            "ShipmentIdentificationNumber": tracking,
                            "PackageResults": [
                                {
                                    "TrackingNumber": tracking,
                                    "ShippingLabel": {
                                        "ImageFormat": {"Code": fmt},
                                        "GraphicImage": base64.b64encode(ZPL.encode()).decode(),
                                    },
                                }
                            ],
                        }
                    }
                },
            )
        elif self.command == "POST" and path == "/api/labels/v1/recovery":
            req = doc.get("LabelRecoveryRequest") or {}
            ref = ((req.get("ReferenceValues") or {}).get("ReferenceNumber") or {}).get("Value", "")
            fmt = ((req.get("LabelSpecification") or {}).get("LabelImageFormat") or {}).get("Code")
            tracking = fake.labels.get(ref)
            if tracking is None or fmt != "ZPL":
                self._send(400, {"response": {"errors": [{"code": "120535", "message": "No label found"}]}})
                return
            image = {"LabelImageFormat": {"Code": "ZPL"}, "GraphicImage": base64.b64encode(ZPL.encode()).decode()}
            results = {"TrackingNumber": tracking, "LabelImage": image}
            self._send(
                200, {"LabelRecoveryResponse": {"ShipmentIdentificationNumber": tracking, "LabelResults": results}}
            )
        elif self.command == "POST" and path == "/api/track/v1/subscription/standard/package":
            dest = doc.get("destination") or {}
            if not (doc.get("locale") and doc.get("trackingNumberList") and dest.get("url") and dest.get("credential")):
                self._send(400, {"response": {"errors": [{"code": "VSS300", "message": "Locale is required."}]}})
                return
            with fake.lock:
                fake.subscriptions.append(doc)
            self._send(200, {"validTrackingNumbers": doc["trackingNumberList"], "invalidTrackingNumbers": []})
        elif self.command == "DELETE" and path.startswith("/api/shipments/v2409/void/cancel/"):
            with fake.lock:
                fake.refunds.append(path.rsplit("/", 1)[1])
            self._send(
                200, {"VoidShipmentResponse": {"SummaryResult": {"Status": {"Code": "1", "Description": "Voided"}}}}
            )
        else:
            self._send(404, {"response": {"errors": [{"code": "404", "message": "no such route"}]}})

    def do_GET(self) -> None:
        self._route()

    def do_POST(self) -> None:
        self._route()

    def do_DELETE(self) -> None:
        self._route()


class CarrierServer:
    """``with CarrierServer("easypost", key) as s:`` a fake on loopback at ``s.url``."""

    def __init__(self, kind: str, key: str) -> None:
        self.fake = FakeCarrier(key)
        base = _EasyPostHandler if kind == "easypost" else _UpsHandler
        handler = type("Handler", (base,), {"fake": self.fake})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> CarrierServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.fake.hold_buy is not None:
            self.fake.hold_buy.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
