"""Fake sales-channel APIs on loopback for the write-back tests (imported as
``channel_fakes``): real sockets (http.server on its own thread), each speaking the
documented request shapes of its channel, checking the auth header, refusing malformed
calls with the channel's own error body, failing on purpose, and keeping state (Shopify's
fulfillment orders close once fulfilled), so a test can assert the effect happened once."""

from __future__ import annotations

import base64
import gzip
import json
import threading
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = tuple[int, Any]


class FakeApi:
    """Base: ``fail`` lists statuses answered (with an error body) to the next requests
    instead of handling them; ``timeout_next`` requests are held past the client's timeout;
    ``stall``, when set by a test, holds every mutating request AFTER it took effect until
    ``release`` is set (the daemon can be killed while it waits for the answer)."""

    auth_header = "Authorization"

    def __init__(self, credential: str) -> None:
        self.credential = credential
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []  # every request: method, path, body, status
        self.effects: list[dict[str, Any]] = []  # the writes that took effect
        self.fail: list[int] = []
        self.timeout_next = 0
        self.stall = False
        self.stalled = threading.Event()
        self.release = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeApi:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def authorised(self, headers) -> bool:
        return headers.get(self.auth_header) == self.credential

    def error(self, status: int, message: str) -> Answer:
        return status, {"errors": message}

    def route(self, method: str, path: str, body: Any) -> Answer:
        raise NotImplementedError

    def calls(self, method: str | None = None, contains: str = "") -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if (method is None or r["method"] == method) and contains in r["path"]]

    def _handler(self):
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                record = {"method": self.command, "path": self.path, "headers": dict(self.headers), "raw": raw}
                with api.lock:
                    api.requests.append(record)
                    hold = api.timeout_next > 0
                    api.timeout_next -= hold
                    fail = api.fail.pop(0) if api.fail and not hold else None
                if hold:
                    api.release.wait(3)
                    status, doc = 500, {"errors": "held"}
                elif not api.authorised(self.headers):
                    status, doc = api.error(
                        401, "[API] Invalid API key or access token (unrecognized login or wrong password)"
                    )
                elif fail is not None:
                    status, doc = api.error(fail, "Internal error (on purpose)")
                else:
                    try:
                        text = self.headers.get("Content-Type", "").startswith("text/")
                        body = raw.decode() if text else json.loads(raw) if raw else None
                    except ValueError:
                        status, doc = api.error(400, "body is not JSON")
                    else:
                        with api.lock:
                            status, doc = api.route(self.command, self.path, body)
                record["status"] = status
                if api.stall and self.command != "GET" and status < 300:
                    api.stalled.set()
                    api.release.wait(30)
                # bytes are sent as they are (a report a presigned URL serves)
                out = doc if isinstance(doc, bytes) else json.dumps(doc).encode() if doc is not None else b""
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                except OSError:  # the client is gone (killed while waiting): nothing to answer
                    pass

            do_GET = do_POST = do_PUT = do_PATCH = _serve

        return Handler


class FakeShopify(FakeApi):
    """Shopify Admin REST ``/admin/api/2024-07``: orders with fulfillment orders; a
    fulfillment closes what it fulfils; ``inventory_levels/set.json``."""

    auth_header = "X-Shopify-Access-Token"
    prefix = "/admin/api/2024-07/"

    def __init__(self, credential: str) -> None:
        super().__init__(credential)
        self.orders: dict[str, dict[str, Any]] = {}
        self.levels: dict[tuple[int, int], int] = {}

    def add_order(self, order_id: str, lines: list[tuple[int, int]]) -> None:
        """``lines``: (line_item_id, quantity); one fulfillment order holds them all."""
        self.orders[order_id] = {
            "cancelled_at": None,
            "fulfillments": [],
            "fulfillment_order": {
                "id": 9000 + int(order_id),
                "status": "open",
                "line_items": [
                    {"id": 100 + li, "line_item_id": li, "quantity": q, "fulfillable_quantity": q} for li, q in lines
                ],
            },
        }

    def route(self, method: str, path: str, body: Any) -> Answer:
        if not path.startswith(self.prefix):
            return 404, {"errors": "Not Found"}
        rest = path[len(self.prefix) :]
        parts = rest.split("/")
        if method == "GET" and len(parts) == 3 and parts[0] == "orders" and parts[1] in self.orders:
            o = self.orders[parts[1]]
            if parts[2] == "fulfillments.json":
                return 200, {"fulfillments": o["fulfillments"]}
            if parts[2] == "fulfillment_orders.json":
                return 200, {"fulfillment_orders": [o["fulfillment_order"]]}
        if method == "GET" and len(parts) == 2 and parts[0] == "orders" and parts[1][:-5] in self.orders:
            return 200, {
                "order": {"id": int(parts[1][:-5]), "cancelled_at": self.orders[parts[1][:-5]]["cancelled_at"]}
            }
        if method == "POST" and len(parts) == 3 and parts[2] == "cancel.json" and parts[1] in self.orders:
            self.orders[parts[1]]["cancelled_at"] = "2024-03-01T00:00:00Z"
            self.effects.append({"cancel": parts[1]})
            return 200, {"order": {"id": int(parts[1])}}
        if method == "POST" and rest == "fulfillments.json":
            return self._fulfil(body)
        if method == "POST" and rest == "inventory_levels/set.json":
            if not isinstance(body, dict) or not all(
                isinstance(body.get(k), int) for k in ("location_id", "inventory_item_id", "available")
            ):
                return 422, {"errors": {"inventory_item_id": ["is required"]}}
            self.levels[(body["location_id"], body["inventory_item_id"])] = body["available"]
            self.effects.append({"level": body})
            return 200, {"inventory_level": body}
        return 404, {"errors": "Not Found"}

    def _fulfil(self, body: Any) -> Answer:
        f = body.get("fulfillment") if isinstance(body, dict) else None
        groups = f.get("line_items_by_fulfillment_order") if isinstance(f, dict) else None
        if not isinstance(groups, list) or not groups:
            return 400, {"errors": {"fulfillment": "Required parameter missing or invalid"}}
        info = f.get("tracking_info")
        if not isinstance(info, dict) or not isinstance(info.get("number"), str):
            return 422, {"errors": ["tracking_info number is invalid"]}
        by_id = {o["fulfillment_order"]["id"]: o for o in self.orders.values()}
        fulfilled = []
        for g in groups:
            order = by_id.get(g.get("fulfillment_order_id"))
            if order is None:
                return 422, {"errors": [f"Fulfillment order {g.get('fulfillment_order_id')} does not exist."]}
            fo = order["fulfillment_order"]
            if fo["status"] == "closed":
                return 422, {"errors": ["Fulfillment order is closed."]}
            lines = g.get("fulfillment_order_line_items")
            wanted = (
                {li["id"]: li["fulfillable_quantity"] for li in fo["line_items"]}
                if lines is None
                else {x["id"]: x["quantity"] for x in lines}
            )
            for li in fo["line_items"]:
                q = wanted.pop(li["id"], 0)
                if q > li["fulfillable_quantity"]:
                    return 422, {"errors": ["Invalid fulfillment order line item quantity requested."]}
            if wanted:
                return 422, {"errors": [f"Fulfillment order line items {sorted(wanted)} do not exist."]}
            fulfilled.append((order, fo, lines))
        fid = 7000 + len(self.effects)
        for order, fo, lines in fulfilled:
            take = {x["id"]: x["quantity"] for x in lines} if lines is not None else None
            for li in fo["line_items"]:
                li["fulfillable_quantity"] -= li["fulfillable_quantity"] if take is None else take.get(li["id"], 0)
            fo["status"] = (
                "closed" if all(li["fulfillable_quantity"] == 0 for li in fo["line_items"]) else "in_progress"
            )
            order["fulfillments"].append({"id": fid, "status": "success", "tracking_number": info["number"]})
        self.effects.append({"fulfillment": f})
        return 201, {"fulfillment": {"id": fid, "status": "success"}}


class FakeWooCommerce(FakeApi):
    """WooCommerce REST v3 ``/wp-json/wc/v3``: Basic auth with key:secret; order status,
    order notes, product stock by ``products/batch`` (an ``error`` per refused object)."""

    def __init__(self, key: str, secret: str) -> None:
        super().__init__("Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode())
        self.orders: dict[str, dict[str, Any]] = {}
        self.stock: dict[str, int] = {}

    def error(self, status: int, message: str) -> Answer:
        code = "woocommerce_rest_cannot_view" if status == 401 else "woocommerce_rest_error"
        return status, {"code": code, "message": message, "data": {"status": status}}

    def route(self, method: str, path: str, body: Any) -> Answer:
        parts = path.removeprefix("/wp-json/wc/v3/").split("/")
        if parts[0] == "orders" and parts[1] in self.orders:
            o = self.orders[parts[1]]
            if len(parts) == 3 and parts[2] == "notes":
                if method == "GET":
                    return 200, o["notes"]
                if not isinstance(body, dict) or not isinstance(body.get("note"), str) or not body["note"]:
                    return 400, {
                        "code": "rest_missing_callback_param",
                        "message": "Missing parameter(s): note",
                        "data": {"status": 400},
                    }
                o["notes"].append(
                    {"id": len(o["notes"]) + 1, "note": body["note"], "customer_note": body.get("customer_note", False)}
                )
                self.effects.append({"note": parts[1]})
                return 201, o["notes"][-1]
            if len(parts) == 2 and method == "PUT":
                if not isinstance(body, dict) or body.get("status") not in {"completed", "cancelled", "processing"}:
                    return 400, {
                        "code": "rest_invalid_param",
                        "message": "Invalid parameter(s): status",
                        "data": {"status": 400},
                    }
                o["status"] = body["status"]
                self.effects.append({"status": (parts[1], body["status"])})
                return 200, {"id": int(parts[1]), "status": body["status"]}
        if parts == ["products", "batch"] and method == "POST":
            updates = body.get("update") if isinstance(body, dict) else None
            if not isinstance(updates, list) or len(updates) > 100:
                return 400, {
                    "code": "rest_invalid_param",
                    "message": "Invalid parameter(s): update",
                    "data": {"status": 400},
                }
            answers = []
            for u in updates:
                if not isinstance(u.get("stock_quantity"), int) or not isinstance(u.get("id"), int):
                    error = {"code": "woocommerce_rest_invalid_id", "message": "Invalid ID.", "data": {"status": 400}}
                    answers.append({"id": u.get("id", 0), "error": error})
                    continue
                self.stock[str(u["id"])] = u["stock_quantity"]
                self.effects.append({"stock": (str(u["id"]), u["stock_quantity"])})
                answers.append({"id": u["id"], "stock_quantity": u["stock_quantity"]})
            return 200, {"update": answers}
        return 404, {
            "code": "woocommerce_rest_shop_order_invalid_id",
            "message": "Invalid ID.",
            "data": {"status": 404},
        }


class FakeBigCommerce(FakeApi):
    """BigCommerce ``/stores/{hash}``: X-Auth-Token; v2 order shipments (one shipping
    address, products), v3 absolute inventory adjustments."""

    auth_header = "X-Auth-Token"

    def __init__(self, credential: str, store_hash: str) -> None:
        super().__init__(credential)
        self.prefix = f"/stores/{store_hash}/"
        self.orders: dict[str, dict[str, Any]] = {}
        self.inventory: dict[str, int] = {}

    def error(self, status: int, message: str) -> Answer:
        return status, [{"status": status, "message": message}]

    def add_order(self, order_id: str, products: list[tuple[int, int]]) -> None:
        self.orders[order_id] = {
            "address": 55,
            "status_id": 11,
            "products": [{"id": p, "quantity": q, "quantity_shipped": 0} for p, q in products],
            "shipments": [],
        }

    def route(self, method: str, path: str, body: Any) -> Answer:
        if not path.startswith(self.prefix):
            return 404, [{"status": 404, "message": "The requested resource was not found."}]
        parts = path[len(self.prefix) :].split("/")
        if parts[:2] == ["v2", "orders"] and len(parts) >= 3 and parts[2] in self.orders:
            o = self.orders[parts[2]]
            tail = parts[3] if len(parts) > 3 else ""
            if method == "GET" and tail == "shipments":
                return 200, o["shipments"]
            if method == "GET" and tail == "shipping_addresses":
                return 200, [{"id": o["address"]}]
            if method == "GET" and tail == "products":
                return 200, o["products"]
            if method == "POST" and tail == "shipments":
                return self._ship(o, body)
            if method == "PUT" and tail == "":
                if not isinstance(body, dict) or not isinstance(body.get("status_id"), int):
                    return 400, [{"status": 400, "message": "The field 'status_id' is invalid."}]
                o["status_id"] = body["status_id"]
                self.effects.append({"status": (parts[2], body["status_id"])})
                return 200, {"id": int(parts[2]), "status_id": body["status_id"]}
        if method == "PUT" and parts == ["v3", "inventory", "adjustments", "absolute"]:
            items = body.get("items") if isinstance(body, dict) else None
            if not items or not all(isinstance(i.get("quantity"), int) and "location_id" in i for i in items):
                return 422, {
                    "status": 422,
                    "title": "Input is invalid",
                    "errors": {"items": "location_id and quantity are required"},
                }
            for i in items:
                self.inventory[i["sku"]] = i["quantity"]
            self.effects.append({"inventory": items})
            return 200, {"transaction_id": "t-1"}
        return 404, [{"status": 404, "message": "The requested resource was not found."}]

    def _ship(self, o: dict[str, Any], body: Any) -> Answer:
        if not isinstance(body, dict) or body.get("order_address_id") != o["address"]:
            return 400, [{"status": 400, "message": "The field 'order_address_id' is invalid."}]
        items = body.get("items")
        ids = {p["id"]: p for p in o["products"]}
        if not items or any(i.get("order_product_id") not in ids for i in items):
            return 400, [{"status": 400, "message": "The field 'items' is invalid."}]
        for i in items:
            p = ids[i["order_product_id"]]
            if p["quantity_shipped"] + i["quantity"] > p["quantity"]:
                return 400, [
                    {
                        "status": 400,
                        "message": "The quantity specified is greater than the quantity of the product that is available to ship.",
                    }
                ]
        for i in items:
            ids[i["order_product_id"]]["quantity_shipped"] += i["quantity"]
        sid = len(o["shipments"]) + 1
        o["shipments"].append({"id": sid, "tracking_number": body.get("tracking_number", "")})
        self.effects.append({"shipment": body})
        return 201, {"id": sid, "order_id": 1, "tracking_number": body.get("tracking_number")}


class FakeS3(FakeApi):
    """A presigned URL's host: ``PUT /upload/ID`` keeps the text, ``GET /download/ID``
    serves a report's bytes (no auth header: the URL is the credential)."""

    def __init__(self) -> None:
        super().__init__("")
        self.documents: dict[str, str] = {}
        self.reports: dict[str, bytes] = {}

    def authorised(self, headers) -> bool:
        return True

    def route(self, method: str, path: str, body: Any) -> Answer:
        if method == "PUT" and path.startswith("/upload/") and isinstance(body, str):
            self.documents[path.split("/")[2].split("?")[0]] = body
            return 200, None
        if method == "GET" and path.startswith("/download/"):
            found = self.reports.get(path.split("/")[2].split("?")[0])
            return (200, found) if found is not None else (404, {"errors": "NoSuchKey"})
        return 400, {"errors": "PUT text to /upload/ID"}


class FakeAmazon(FakeApi):
    """SP-API: x-amz-access-token; confirmShipment (204; the same packageReferenceId again
    edits the package, never a second one), orderItems, Listings Items patch; Feeds
    2021-06-30: createFeedDocument, createFeed, getFeed (``IN_PROGRESS`` for ``feed_polls``
    reads, then ``DONE``), getFeedDocument of the processing report (gzip, served by the
    fake S3): an error result for each order acknowledged that ``refused_orders`` names."""

    auth_header = "x-amz-access-token"

    def __init__(self, credential: str) -> None:
        super().__init__(credential)
        self.items: dict[str, list[dict[str, Any]]] = {}
        self.packages: dict[tuple[str, str], dict[str, Any]] = {}
        self.listings: dict[str, int] = {}
        self.invalid_skus: set[str] = set()  # listings that answer 200 with status INVALID
        self.s3 = FakeS3()  # where feed documents are uploaded
        self.feeds: list[dict[str, Any]] = []  # createFeed bodies, with the document uploaded
        self.feed_polls = 0  # getFeed answers IN_PROGRESS this many times per feed, then DONE
        self.refused_orders: dict[str, str] = {}  # AmazonOrderID -> the report's error for it

    def __enter__(self) -> FakeAmazon:
        self.s3.__enter__()
        super().__enter__()
        return self

    def __exit__(self, *exc) -> None:
        super().__exit__(*exc)
        self.s3.__exit__(*exc)

    def processing_report(self, document: str) -> bytes:
        """The ``ProcessingReport`` of an order acknowledgement feed, as Amazon writes it."""
        root = ET.fromstring(document)
        results = []
        for message in root.findall("Message"):
            order = message.findtext("OrderAcknowledgement/AmazonOrderID") or ""
            if order in self.refused_orders:
                results.append(
                    f"<Result><MessageID>{message.findtext('MessageID')}</MessageID><ResultCode>Error</ResultCode>"
                    f"<ResultMessageCode>18028</ResultMessageCode>"
                    f"<ResultDescription>{self.refused_orders[order]}</ResultDescription></Result>"
                )
        total = len(root.findall("Message"))
        return (
            '<?xml version="1.0" encoding="UTF-8"?><AmazonEnvelope><Header><DocumentVersion>1.02</DocumentVersion>'
            "<MerchantIdentifier>M_SELLER</MerchantIdentifier></Header><MessageType>ProcessingReport</MessageType>"
            "<Message><MessageID>1</MessageID><ProcessingReport><DocumentTransactionID>5001</DocumentTransactionID>"
            "<StatusCode>Complete</StatusCode><ProcessingSummary>"
            f"<MessagesProcessed>{total}</MessagesProcessed><MessagesSuccessful>{total - len(results)}"
            f"</MessagesSuccessful><MessagesWithError>{len(results)}</MessagesWithError>"
            "<MessagesWithWarning>0</MessagesWithWarning></ProcessingSummary>"
            + "".join(results)
            + "</ProcessingReport></Message></AmazonEnvelope>"
        ).encode()

    def error(self, status: int, message: str) -> Answer:
        code = "Unauthorized" if status in (401, 403) else "InvalidInput"
        return status, {"errors": [{"code": code, "message": message}]}

    def route(self, method: str, path: str, body: Any) -> Answer:
        bare = path.split("?")[0]
        parts = bare.strip("/").split("/")
        if parts[:3] == ["orders", "v0", "orders"] and len(parts) == 5 and parts[3] in self.items:
            oid = parts[3]
            if method == "GET" and parts[4] == "orderItems":
                return 200, {"payload": {"AmazonOrderId": oid, "OrderItems": self.items[oid]}}
            if method == "POST" and parts[4] == "shipmentConfirmation":
                pkg = body.get("packageDetail") if isinstance(body, dict) else None
                if not isinstance(body, dict) or not body.get("marketplaceId") or not isinstance(pkg, dict):
                    return 400, {
                        "errors": [{"code": "InvalidInput", "message": "marketplaceId and packageDetail are required"}]
                    }
                ref = pkg.get("packageReferenceId")
                if (
                    not (isinstance(ref, str) and ref.isdigit())
                    or not pkg.get("orderItems")
                    or not pkg.get("trackingNumber")
                ):
                    return 400, {"errors": [{"code": "InvalidInput", "message": "packageDetail is invalid"}]}
                known = {it["OrderItemId"] for it in self.items[oid]}
                if any(i.get("orderItemId") not in known for i in pkg["orderItems"]):
                    return 400, {"errors": [{"code": "InvalidInput", "message": "orderItemId is not in this order"}]}
                self.packages[(oid, ref)] = pkg
                self.effects.append({"package": (oid, ref)})
                return 204, None
        if method == "POST" and bare == "/feeds/2021-06-30/documents":
            if not isinstance(body, dict) or not str(body.get("contentType", "")).startswith("text/xml"):
                return 400, {"errors": [{"code": "InvalidInput", "message": "contentType is required"}]}
            doc_id = f"amzn1.tortuga.4.na.D{len(self.feeds) + len(self.s3.documents) + 1}"
            return 201, {"feedDocumentId": doc_id, "url": f"{self.s3.url}/upload/{doc_id}?X-Amz-Signature=x"}
        if method == "POST" and bare == "/feeds/2021-06-30/feeds":
            doc = self.s3.documents.get(str((body or {}).get("inputFeedDocumentId")))
            if (
                doc is None
                or body.get("feedType") != "POST_ORDER_ACKNOWLEDGEMENT_DATA"
                or not body.get("marketplaceIds")
            ):
                return 400, {"errors": [{"code": "InvalidInput", "message": "no such feed document or feed type"}]}
            self.feeds.append({**body, "document": doc, "polls": 0})
            self.effects.append({"feed": body["inputFeedDocumentId"]})
            return 202, {"feedId": f"F{len(self.feeds)}"}
        if method == "GET" and parts[:3] == ["feeds", "2021-06-30", "feeds"] and len(parts) == 4:
            n = int(parts[3][1:]) if parts[3][1:].isdigit() else 0
            if not 1 <= n <= len(self.feeds):
                return 404, {"errors": [{"code": "NotFound", "message": f"feed {parts[3]} not found"}]}
            feed = self.feeds[n - 1]
            feed["polls"] += 1
            out = {"feedId": parts[3], "feedType": feed["feedType"], "createdTime": "2024-03-01T00:00:00Z"}
            if feed["polls"] <= self.feed_polls:
                return 200, {**out, "processingStatus": "IN_PROGRESS"}
            report_id = f"R{n}"
            self.s3.reports.setdefault(report_id, gzip.compress(self.processing_report(feed["document"])))
            return 200, {**out, "processingStatus": "DONE", "resultFeedDocumentId": report_id}
        if method == "GET" and parts[:3] == ["feeds", "2021-06-30", "documents"] and len(parts) == 4:
            if parts[3] not in self.s3.reports:
                return 404, {"errors": [{"code": "NotFound", "message": f"document {parts[3]} not found"}]}
            url = f"{self.s3.url}/download/{parts[3]}?X-Amz-Signature=y"
            return 200, {"feedDocumentId": parts[3], "url": url, "compressionAlgorithm": "GZIP"}
        if parts[:2] == ["listings", "2021-08-01"] and method == "PATCH" and len(parts) == 5:
            patch = (body or {}).get("patches", [{}])[0]
            if "marketplaceIds=" not in path or patch.get("path") != "/attributes/fulfillment_availability":
                return 400, {"errors": [{"code": "InvalidInput", "message": "invalid patch"}]}
            if parts[4] in self.invalid_skus:
                issue = {"code": "90220", "message": "'fulfillment_availability' is not allowed", "severity": "ERROR"}
                return 200, {"sku": parts[4], "status": "INVALID", "submissionId": "s0", "issues": [issue]}
            self.listings[parts[4]] = patch["value"][0]["quantity"]
            self.effects.append({"listing": (parts[4], self.listings[parts[4]])})
            return 200, {"sku": parts[4], "status": "ACCEPTED", "submissionId": "s1", "issues": []}
        return 404, {"errors": [{"code": "NotFound", "message": "Resource not found"}]}
