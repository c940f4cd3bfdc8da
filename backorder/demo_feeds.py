"""The demo site's order feeds: orders arrive the way a real site's do.

Shopify and WooCommerce post signed webhooks to the daemon's own HTTP intake listener
(``[intake] listen``); now and then an Amazon SP-API envelope and an X12 850 interchange
arrive the same way, signed with the generic ``X-Backorder-Hmac-Sha256`` scheme; B2B
customers' orders collect in a CSV file that is imported at "night" (02:00 simulated)
through the governed flow (``backorder import``'s code). A small share of deliveries is
bad on purpose (one in ``BAD_EVERY``, the kinds in turn), so the intake screen has
something to show:

- a bad signature (a Shopify store that rotated its secret): counted and sampled, never kept;
- an unknown SKU (WooCommerce still sends a retired name, ``LEGACY-…``): a dead letter,
  until the site adds the alias (``intake.alias``) and retries the cause group, which
  accepts those orders exactly once;
- a malformed body (a truncated JSON document): a dead letter that stays.

The signing secrets are made at run time (``secrets.token_hex``) into files in the demo's
temporary folder (``secret_file``), never written anywhere else.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import random
import secrets
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backorder.intake import importer
from backorder.intake.governance import sign  # the signature every source's scheme uses

SHOP_DOMAIN = "demo-coffee.myshopify.com"
WOO_SOURCE = "https://shop.demo.example/"
CHANNEL_WEIGHTS = (("shopify", 0.5), ("woocommerce", 0.3), ("amazon_sp", 0.1), ("x12_850", 0.06), ("csv", 0.04))
BAD_EVERY = 30  # every 30th delivery over HTTP is bad: an unknown SKU, a bad signature, a malformed body, in turn
BAD_KINDS = ("unknown_sku", "bad_signature", "malformed")
NIGHT_HOUR = 2  # the CSV batch is imported at this simulated hour
ALIAS_AFTER = 2  # unknown-SKU dead letters before the site fixes the alias and retries the group
SECRET_CHANNELS = ("shopify", "woocommerce", "amazon_sp", "x12_850", "csv")
FIRST_NAMES = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Radia", "Linus", "Margaret", "Dennis")
LAST_NAMES = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Thompson", "Perlman", "Hamilton")
CITIES = (
    ("Lyon", "FR", "69002"),
    ("Leeds", "GB", "LS1 4AP"),
    ("Austin", "US", "78701"),
    ("Porto", "PT", "4000-322"),
    ("Graz", "AT", "8010"),
    ("Osaka", "JP", "530-0001"),
)


def write_secrets(folder: Path) -> dict[str, Path]:
    """One fresh signing secret per channel, in an owner-only file under ``folder``."""
    out = {}
    for ch in SECRET_CHANNELS:
        path = folder / f"secret-{ch}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(24) + "\n")
        out[ch] = path
    return out


def config_toml(secret_files: dict[str, Path]) -> list[str]:
    """The ``[intake]`` and ``[channels.*]`` tables of the demo's config."""
    q = json.dumps
    out = ["", "[intake]", 'listen = "127.0.0.1:0"']
    for ch in SECRET_CHANNELS:
        out += ["", f"[channels.{ch}]", f"secret_file = {q(str(secret_files[ch]))}", "known_skus_only = true"]
    return out


def _iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class FeedCounts:
    """What the feeds sent and how the daemon answered (``outcome`` per order)."""

    deliveries: Counter[str] = field(default_factory=Counter)  # per channel
    outcomes: Counter[str] = field(default_factory=Counter)  # accepted, rejected, duplicate, ...
    bad_sent: Counter[str] = field(default_factory=Counter)  # bad_signature, unknown_sku, malformed
    imports: int = 0  # nightly CSV batches
    aliases: int = 0  # intake.alias calls
    recovered: int = 0  # orders accepted by a dead-letter retry


class Feeds:
    """Builds and sends the deliveries. ``deliver(n, now)`` sends ``n`` orders over HTTP
    (or into tonight's CSV batch); ``tick(now)`` imports the batch at night and fixes the
    unknown-SKU alias once enough letters wait. ``call`` is the driver's socket call."""

    def __init__(
        self,
        port: int,
        socket: str,
        secret_files: dict[str, Path],
        items: list[Any],
        weights: list[float],
        rng: random.Random,
        call,
    ) -> None:
        self.port = port
        self.socket = socket
        self.keys = {ch: p.read_text().strip().encode() for ch, p in secret_files.items()}
        self.items = items
        self.weights = weights
        self.rng = rng
        self.call = call
        self.counts = FeedCounts()
        self.seq = 0
        self.http_sent = 0
        self.csv_rows: list[str] = []
        self.csv_file = secret_files["csv"].parent / "night-import.csv"
        self.last_import: dt.date | None = None
        self.legacy: dict[str, str] = {}  # channel SKU -> site SKU, once aliased
        self.unknown_waiting = 0

    # --- the day's work --------------------------------------------------------

    def deliver(self, n: int, now: dt.datetime) -> int:
        """``n`` orders from the channels; returns how many the daemon accepted."""
        accepted = 0
        for _ in range(n):
            channel = self.rng.choices([c for c, _ in CHANNEL_WEIGHTS], [w for _, w in CHANNEL_WEIGHTS])[0]
            self.seq += 1
            if channel == "csv":
                self.csv_rows += self._csv_rows(now)
                continue
            self.http_sent += 1
            bad = BAD_KINDS[(self.http_sent // BAD_EVERY) % len(BAD_KINDS)] if self.http_sent % BAD_EVERY == 0 else ""
            accepted += self._send(channel, now, bad)
        return accepted

    def tick(self, now: dt.datetime) -> None:
        """At night, import the CSV batch; after a few unknown-SKU letters, fix the alias
        and retry the group (the orders are accepted once, the screen shows the recovery)."""
        if now.hour == NIGHT_HOUR and self.last_import != now.date() and self.csv_rows:
            self.import_csv()
            self.last_import = now.date()
        if self.unknown_waiting >= ALIAS_AFTER:
            self.fix_unknown_skus()

    def import_csv(self) -> dict:
        header = "order_id,order_date,currency,email,sku,qty,unit_price,ship_name,ship_address1,ship_city,ship_postal_code,ship_country"
        self.csv_file.write_text("\n".join([header, *self.csv_rows]) + "\n")
        self.csv_rows = []
        summary = importer.run(self.socket, str(self.csv_file), "csv")
        self.counts.imports += 1
        self.counts.deliveries["csv"] += 1
        for outcome, k in summary.get("outcomes", {}).items():
            self.counts.outcomes[outcome] += k
        return summary

    def fix_unknown_skus(self) -> None:
        for legacy, sku in sorted(self.legacy.items()):
            self.call("intake.alias", channel="woocommerce", channel_sku=legacy, sku=sku)
            self.counts.aliases += 1
        self.legacy.clear()
        res = self.call("deadletters.retry", cause="unknown_sku")
        self.counts.recovered += sum(len(r.get("orders") or ()) for r in res["results"] if r["outcome"] == "accepted")
        self.unknown_waiting = 0

    # --- one delivery ------------------------------------------------------------

    def _send(self, channel: str, now: dt.datetime, bad: str) -> int:
        if bad == "bad_signature":
            channel = "shopify"  # the store that rotated its secret
        lines = self._lines(channel)
        if bad == "unknown_sku":
            channel = "woocommerce"
            legacy = "LEGACY-" + lines[0][0].removeprefix("SKU-")
            self.legacy[legacy] = lines[0][0]
            lines[0] = (legacy, lines[0][1], lines[0][2])
        body, headers = BUILDERS[channel](self, now, lines)
        if bad == "malformed":
            body = body[: len(body) // 2]
        key = self.keys[channel]
        if bad == "bad_signature":
            key = b"rotated-" + key
        headers[SIGNATURE_HEADERS[channel]] = sign(body, key)
        if bad:
            self.counts.bad_sent[bad] += 1
        status, reply = self._post(channel, body, headers)
        self.counts.deliveries[channel] += 1
        accepted = 0
        for o in reply.get("orders") or ():
            self.counts.outcomes[o["outcome"]] += 1
            accepted += o["outcome"] == "accepted"
        if not reply.get("orders"):
            self.counts.outcomes[reply.get("outcome") or f"http_{status}"] += 1
        if reply.get("code") == "unknown_sku":
            self.unknown_waiting += 1
        return accepted

    def _post(self, channel: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("POST", f"/webhooks/{channel}", body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        try:
            reply = json.loads(data) if data else {}
        except ValueError:
            reply = {}
        return resp.status, reply if isinstance(reply, dict) else {}

    def _lines(self, channel: str) -> list[tuple[str, int, str]]:
        rng = self.rng
        chosen = {it.sku: it for it in rng.choices(self.items, self.weights, k=rng.choice((1, 1, 2, 3)))}
        qtys = (2, 4, 6, 10, 12, 24) if channel in ("x12_850", "csv") else (1, 1, 1, 2, 2, 3)
        return [(it.sku, rng.choice(qtys), it.price) for it in chosen.values()]

    def _person(self) -> dict[str, str]:
        rng = self.rng
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        city, country, postal = rng.choice(CITIES)
        return {
            "first": first,
            "last": last,
            "email": f"{first.lower()}.{last.lower()}@example.com",
            "street": f"{rng.randrange(1, 200)} Main St",
            "city": city,
            "country": country,
            "postal": postal,
        }

    def _csv_rows(self, now: dt.datetime) -> list[str]:
        p = self._person()
        oid = f"B2B-{self.seq:06d}"
        return [
            f"{oid},{_iso(now)},USD,{p['email']},{sku},{qty},{price},{p['first']} {p['last']},"
            f"{p['street']},{p['city']},{p['postal']},{p['country']}"
            for sku, qty, price in self._lines("csv")
        ]


def _shopify(f: Feeds, now: dt.datetime, lines: list[tuple[str, int, str]]) -> tuple[bytes, dict[str, str]]:
    p = f._person()
    n = 1000 + f.seq
    doc = {
        "id": 5_820_000_000_000 + f.seq,
        "name": f"#{n}",
        "order_number": n,
        "email": p["email"],
        "created_at": _iso(now),
        "currency": "USD",
        "financial_status": "paid",
        "customer": {
            "id": f.rng.randrange(1, 5000),
            "email": p["email"],
            "first_name": p["first"],
            "last_name": p["last"],
        },
        "shipping_address": {
            "first_name": p["first"],
            "last_name": p["last"],
            "name": f"{p['first']} {p['last']}",
            "address1": p["street"],
            "city": p["city"],
            "zip": p["postal"],
            "country_code": p["country"],
        },
        "shipping_lines": [{"title": "Standard", "code": "STANDARD", "price": "0.00"}],
        "line_items": [
            {
                "id": 13_642_000_000 + f.seq * 10 + i,
                "sku": sku,
                "quantity": q,
                "price": price,
                "requires_shipping": True,
            }
            for i, (sku, q, price) in enumerate(lines)
        ],
    }
    headers = {
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Shop-Domain": SHOP_DOMAIN,
        "X-Shopify-Webhook-Id": f"demo-{f.seq}",
        "Content-Type": "application/json",
    }
    return json.dumps(doc).encode(), headers


def _woocommerce(f: Feeds, now: dt.datetime, lines: list[tuple[str, int, str]]) -> tuple[bytes, dict[str, str]]:
    p = f._person()
    addr = {
        "first_name": p["first"],
        "last_name": p["last"],
        "address_1": p["street"],
        "city": p["city"],
        "postcode": p["postal"],
        "country": p["country"],
    }
    doc = {
        "id": f.seq,
        "number": str(f.seq),
        "status": "processing",
        "currency": "EUR",
        "date_created_gmt": now.strftime("%Y-%m-%dT%H:%M:%S"),
        "billing": {**addr, "email": p["email"]},
        "shipping": addr,
        "set_paid": True,
        "line_items": [
            {"id": f.seq * 10 + i, "quantity": q, "sku": sku, "price": float(price), "total": f"{q * float(price):.2f}"}
            for i, (sku, q, price) in enumerate(lines)
        ],
        "shipping_lines": [{"method_title": "Standard", "method_id": "flat_rate", "total": "0.00"}],
    }
    headers = {
        "X-WC-Webhook-Topic": "order.created",
        "X-WC-Webhook-Source": WOO_SOURCE,
        "X-WC-Webhook-Resource": "order",
        "X-WC-Webhook-Event": "created",
        "X-WC-Webhook-ID": "12",
        "X-WC-Webhook-Delivery-ID": str(f.seq),
        "Content-Type": "application/json",
    }
    return json.dumps(doc).encode(), headers


def _amazon(f: Feeds, now: dt.datetime, lines: list[tuple[str, int, str]]) -> tuple[bytes, dict[str, str]]:
    p = f._person()
    oid = f"902-{f.rng.randrange(10**7):07d}-{f.seq:07d}"
    items = [
        {
            "SellerSKU": sku,
            "OrderItemId": f"{f.seq:08d}{i:04d}",
            "QuantityOrdered": q,
            "ItemPrice": {"CurrencyCode": "EUR", "Amount": f"{q * float(price):.2f}"},
        }
        for i, (sku, q, price) in enumerate(lines)
    ]
    doc = {
        "envelope": "amazon-sp-api/orders-v0",
        "seller_id": "A2DEMOSELLER",
        "retrieved_at": _iso(now),
        "getOrder": {
            "payload": {
                "AmazonOrderId": oid,
                "PurchaseDate": _iso(now),
                "OrderStatus": "Unshipped",
                "FulfillmentChannel": "MFN",
                "ShipmentServiceLevelCategory": "Standard",
                "OrderTotal": {"CurrencyCode": "EUR", "Amount": "0.00"},
                "ShippingAddress": {
                    "Name": f"{p['first']} {p['last']}",
                    "AddressLine1": p["street"],
                    "City": p["city"],
                    "PostalCode": p["postal"],
                    "CountryCode": p["country"],
                },
                "BuyerInfo": {"BuyerEmail": p["email"]},
            }
        },
        "getOrderItems": [{"payload": {"AmazonOrderId": oid, "OrderItems": items}}],
    }
    return json.dumps(doc).encode(), {"Content-Type": "application/json"}


def _x12_850(f: Feeds, now: dt.datetime, lines: list[tuple[str, int, str]]) -> tuple[bytes, dict[str, str]]:
    p = f._person()
    ctl = f"{f.seq:09d}"
    po = f"PO-{700000 + f.seq}"
    body = [
        "ST*850*0001",
        f"BEG*00*SA*{po}**{now:%Y%m%d}",
        "CUR*BY*USD",
        f"N1*ST*{p['first']} {p['last']}*92*WH{f.seq % 9}",
        f"N3*{p['street']}",
        f"N4*{p['city']}**{p['postal']}*{p['country']}",
    ]
    body += [f"PO1*{i}*{q}*EA*{price}*PE*VP*{sku}" for i, (sku, q, price) in enumerate(lines, 1)]
    body += [f"CTT*{len(lines)}"]
    body += [f"SE*{len(body) + 1}*0001"]
    isa = (
        f"ISA*00*{'':10}*00*{'':10}*ZZ*{'BIGBOX':15}*ZZ*{'BACKORDERSITE':15}*{now:%y%m%d}*{now:%H%M}"
        f"*U*00401*{ctl}*0*P*>"
    )
    seg = [isa, f"GS*PO*BIGBOX*BACKORDERSITE*{now:%Y%m%d}*{now:%H%M}*{f.seq}*X*004010", *body]
    seg += [f"GE*1*{f.seq}", f"IEA*1*{ctl}"]
    return ("~\n".join(seg) + "~\n").encode(), {"Content-Type": "application/edi-x12"}


BUILDERS = {"shopify": _shopify, "woocommerce": _woocommerce, "amazon_sp": _amazon, "x12_850": _x12_850}
SIGNATURE_HEADERS = {
    "shopify": "X-Shopify-Hmac-Sha256",
    "woocommerce": "X-WC-Webhook-Signature",
    "amazon_sp": "X-Backorder-Hmac-Sha256",
    "x12_850": "X-Backorder-Hmac-Sha256",
}
