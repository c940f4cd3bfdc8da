"""The flash sale's 3PL: a small fake ShipBob on loopback, started by the demo (like the
SMTP sink and the webhook receiver of ``demo_services``).

It speaks the shapes the daemon's ShipBob adapter uses (``backorder/threepl/providers.py``):
``GET /inventory`` (the sale SKUs' ``total_fulfillable_quantity``), ``GET
/order?ReferenceIds=`` and ``POST /order`` (a ``reference_id`` refused the second time, as
ShipBob does), each checked for the bearer token and the ``shipbob_channel_id`` header.
``SHIP_AFTER_S`` real seconds after it accepted an order it "ships" it: an
``order_shipped`` webhook to the daemon's ``POST /threepl/shipbob``, signed per Standard
Webhooks (``webhook-id``, ``webhook-timestamp``, ``webhook-signature: v1,BASE64(HMAC)``),
sent once (again only if the daemon did not answer 200). With ``auto_ship=False`` its
owner ships each order itself (``ship``): the policy lab's flash sale does, in engine time.

The API token and the webhook signing secret are made at run time into owner-only files in
the demo's temporary folder (the config names the files), never committed.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import heapq
import hmac
import http.client
import json
import os
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

CHANNEL_ID = "demo-3pl"
STOCK_PER_SKU = 5000  # units the 3PL holds of each sale SKU
SHIP_AFTER_S = 1.5  # real seconds from accepting an order to its shipment webhook
RETRY_S = 1.0
MAX_SENDS = 5
# Routing turns on when the site's pickers fall behind (a backlog of one hour), off at 0.3 h
BACKLOG_ON_H, BACKLOG_OFF_H = 1.0, 0.3


def _secret_file(path: Path, value: str) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    return path


def order_refusal(body: Any, known: dict[str, Any]) -> tuple[int, dict] | None:
    """ShipBob's answer to a create-order body that is not an order it takes (its documented
    required fields, a ``reference_id`` it already has), or None. The tests' fake uses it too."""
    if not isinstance(body, dict):
        return 400, {"title": "body must be an order"}
    address = (body.get("recipient") or {}).get("address") or {}
    missing = [k for k in ("reference_id", "recipient", "products", "shipping_method") if not body.get(k)]
    missing += [f"recipient.address.{k}" for k in ("address1", "city", "country") if not address.get(k)]
    if missing:
        return 422, {"title": "validation failed: " + ", ".join(missing)}
    if body["reference_id"] in known:
        return 422, {"title": f"reference_id {body['reference_id']} already exists"}
    return None


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _serve(self, method: str) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        status, doc = self.server.fake.answer(method, self.path, dict(self.headers.items()), raw)
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def log_message(self, format: str, *args: object) -> None:  # quiet: the console owns the terminal
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeShipBob


class FakeShipBob:
    """The 3PL: its stock of the sale SKUs, the orders it took, the shipments it reported."""

    def __init__(self, folder: Path, skus: list[str], *, auto_ship: bool = True) -> None:
        self.auto_ship = auto_ship
        self.token = secrets.token_hex(24)
        self.webhook_secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
        self.token_file = _secret_file(folder / "secret-threepl-token", self.token)
        self.secret_file = _secret_file(folder / "secret-threepl-webhook", self.webhook_secret)
        self.stock = dict.fromkeys(skus, STOCK_PER_SKU)
        self.lock = threading.Lock()
        self.orders: dict[str, dict[str, Any]] = {}  # reference_id -> the order as created
        self.creates: collections.Counter[str] = collections.Counter()
        self.shipped: collections.Counter[str] = collections.Counter()  # reference_id -> webhooks answered 200
        self.refused = 0  # requests without the token / channel header
        self.webhook_failures = 0
        self.intake_port: int | None = None  # the daemon's listener, known once it serves
        self._due: list[tuple[float, int, str]] = []  # (when, seq, reference_id) to ship
        self._sends: collections.Counter[str] = collections.Counter()
        self._wake = threading.Condition(self.lock)
        self._stopped = False
        self._http: _Server | None = None
        self._threads: list[threading.Thread] = []

    # the API
    def answer(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, Any]:
        h = {k.lower(): v for k, v in headers.items()}
        good = hmac.compare_digest(h.get("authorization", ""), "Bearer " + self.token)
        url = urlsplit(path)
        with self.lock:
            if not (good and h.get("shipbob_channel_id") == CHANNEL_ID):
                self.refused += 1
                return 401, {"title": "unauthorised"}
            if method == "GET" and url.path == "/inventory":
                return 200, [{"sku": s, "total_fulfillable_quantity": q} for s, q in self.stock.items()]
            if method == "GET" and url.path == "/order":
                refs = parse_qs(url.query).get("ReferenceIds", [""])[0].split(",")
                return 200, [self.orders[r] for r in refs if r in self.orders]
            if method == "POST" and url.path == "/order":
                try:
                    body = json.loads(raw)
                except ValueError:
                    return 400, {"title": "body is not JSON"}
                return self._create(body)
        return 404, {"title": f"no route {method} {url.path}"}

    def _create(self, body: Any) -> tuple[int, Any]:
        if (refused := order_refusal(body, self.orders)) is not None:
            return refused
        ref = body["reference_id"]
        for p in body["products"]:
            sku, qty = p.get("reference_id"), p.get("quantity")
            if not isinstance(qty, int) or qty < 1 or self.stock.get(sku, 0) < qty:
                return 422, {"title": f"cannot fulfil {p}"}
        for p in body["products"]:
            self.stock[p["reference_id"]] -= p["quantity"]
        order = {"id": 70000 + len(self.orders), "status": "Processing", **body, "shipments": []}
        self.orders[ref] = order
        self.creates[ref] += 1
        if self.auto_ship:
            heapq.heappush(self._due, (time.monotonic() + SHIP_AFTER_S, len(self.orders), ref))
            self._wake.notify()
        return 201, order

    # the shipment webhooks
    def webhook(self, ref: str) -> tuple[bytes, dict[str, str]]:
        """The signed ``order_shipped`` delivery of order ``ref``: (body, headers)."""
        order = self.orders[ref]
        tracking = {"carrier": "UPS", "tracking_number": f"1ZDEMO{order['id']:010d}"}
        body = json.dumps(
            {"id": order["id"], "reference_id": ref, "status": "Fulfilled", "shipments": [{"tracking": tracking}]}
        ).encode()
        wid, ts = f"msg_{secrets.token_hex(8)}", str(int(time.time()))
        key = base64.b64decode(self.webhook_secret[len("whsec_") :])
        sig = base64.b64encode(hmac.new(key, f"{wid}.{ts}.".encode() + body, hashlib.sha256).digest()).decode()
        headers = {"Content-Type": "application/json", "webhook-id": wid, "webhook-timestamp": ts}
        return body, {**headers, "webhook-signature": f"v1,{sig}"}

    def _post(self, ref: str) -> bool:
        assert self.intake_port is not None
        body, headers = self.webhook(ref)
        conn = http.client.HTTPConnection("127.0.0.1", self.intake_port, timeout=10)
        try:
            conn.request("POST", "/threepl/shipbob", body, headers)
            return conn.getresponse().status == 200
        except OSError:
            return False
        finally:
            conn.close()

    def _ship_loop(self) -> None:
        while True:
            with self.lock:
                while not self._stopped and (not self._due or self._due[0][0] > time.monotonic()):
                    self._wake.wait(0.2 if self._due else None)
                if self._stopped:
                    return
                _, seq, ref = heapq.heappop(self._due)
                if self.intake_port is None:  # the daemon is still starting: later
                    heapq.heappush(self._due, (time.monotonic() + RETRY_S, seq, ref))
                    continue
                self._sends[ref] += 1
            if not self.ship(ref):
                with self.lock:
                    if self._sends[ref] < MAX_SENDS:
                        heapq.heappush(self._due, (time.monotonic() + RETRY_S, seq, ref))

    def ship(self, ref: str) -> bool:
        """Send order ``ref``'s shipment webhook once; whether the daemon answered 200."""
        ok = self._post(ref)
        with self.lock:
            if ok:
                self.shipped[ref] += 1
                self.orders[ref]["status"] = "Fulfilled"
            else:
                self.webhook_failures += 1
        return ok

    # the server
    @property
    def url(self) -> str:
        assert self._http is not None
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    def start(self) -> None:
        self._http = _Server(("127.0.0.1", 0), _Handler)
        self._http.fake = self
        self._threads = [
            threading.Thread(target=self._http.serve_forever, name="demo-3pl", daemon=True),
            threading.Thread(target=self._ship_loop, name="demo-3pl-ship", daemon=True),
        ]
        for t in self._threads:
            t.start()

    def config(self, **overrides: object) -> list[str]:
        """The ``[threepl]`` table: ShipBob on this server, a quick inventory poll, routing
        once the pick backlog reaches ``BACKLOG_ON_H``; ``overrides`` replace those numbers
        (``backlog_on_hours=2.0``)."""
        q = json.dumps
        lines = [
            "",
            "[threepl]",
            "enabled = true",
            'provider = "shipbob"',
            f"base_url = {q(self.url)}",
            f"credential_file = {q(str(self.token_file))}",
            f"webhook_secret_file = {q(str(self.secret_file))}",
            f"channel_id = {q(CHANNEL_ID)}",
            f"backlog_on_hours = {BACKLOG_ON_H}",
            f"backlog_off_hours = {BACKLOG_OFF_H}",
            "pick_rate_window_s = 3600.0",
            "min_pick_rate_per_hour = 10.0",
            "inventory_poll_s = 1.0",
            "timeout_s = 5.0",
        ]
        for key, value in overrides.items():
            lines = [f"{key} = {value}" if ln.startswith(f"{key} = ") else ln for ln in lines]
        return lines

    def summary(self) -> str:
        with self.lock:
            return (
                f"  threepl orders={len(self.orders)} shipped={sum(1 for n in self.shipped.values() if n)} "
                f"webhook_failures={self.webhook_failures} refused={self.refused}"
            )

    def stop(self) -> None:
        with self.lock:
            self._stopped = True
            self._wake.notify_all()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
        for t in self._threads:
            t.join(5)
