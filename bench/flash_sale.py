"""Flash sale: order -> ship p95 with the 3PL off and on, at the same demand.

The real daemon under the stepped clock (engine time moves only by ``clock.advance``, so
both runs see exactly the same demand and picking), a fake ShipBob on loopback (inventory,
order creation; it "ships" each order a fixed handling time after it was created, through
the daemon's signed webhook; ``--threepl-hours``, 3 by default), and a simulated site that picks ``--pick-rate`` units an
hour (``pick.confirm`` of the oldest picking shipments, a quarter of that each 15-minute
step). Demand: ``--base`` one-unit orders an hour for ``--hours``, plus a flash sale of
``--burst`` orders spread over the hours 2-4. Both runs continue until every order shipped.

Order -> ship = the shipment's ``shipped_at`` - the order's ``received_at``, both engine
time. Reported: p50/p95/max in hours for each run, the orders routed, the creates the 3PL
saw per reference id (1 each: exactly once) and the routing switches.

    python bench/flash_sale.py [--quick] [--base 20] [--burst 400] [--hours 24] [--pick-rate 60]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import http.client
import json
import os
import sqlite3
import threading
from collections import Counter
from contextlib import closing
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from common import ok, result_name, running, save

STEP_S = 900.0  # one simulation step: 15 minutes of engine time
SECRET = "bench-secret"
TOKEN = "bench-token"
ADDRESS = {"name": "Ada", "address1": "1 Main St", "city": "Springfield", "country_code": "US"}


class Fake3pl:
    """ShipBob's documented shapes, just enough: ``GET /inventory``, ``GET /order``, ``POST /order``."""

    def __init__(self, stock: int) -> None:
        self.creates: Counter[str] = Counter()
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _serve(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = urlsplit(self.path).path
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    status, doc = 401, {"title": "bad token"}
                elif path == "/inventory":
                    status, doc = 200, [{"sku": f"S{i}", "total_fulfillable_quantity": stock} for i in range(10)]
                elif path == "/order" and self.command == "GET":
                    status, doc = 200, []
                elif path == "/order":
                    ref = json.loads(raw)["reference_id"]
                    with fake.lock:
                        fake.creates[ref] += 1
                    status, doc = 201, {"id": len(fake.creates), "reference_id": ref}
                else:
                    status, doc = 404, {"title": "no route"}
                out = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def ship_webhook(port: int, order_id: str) -> int:
    body = json.dumps(
        {"reference_id": order_id, "shipments": [{"tracking": {"carrier": "USPS", "tracking_number": f"T{order_id}"}}]}
    ).encode()
    wid, ts = f"msg_{order_id}", "1735689600"
    mac = hmac.new(SECRET.encode(), f"{wid}.{ts}.".encode() + body, hashlib.sha256).digest()
    headers = {"webhook-id": wid, "webhook-timestamp": ts, "webhook-signature": "v1," + base64.b64encode(mac).decode()}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/threepl/shipbob", body=body, headers=headers)
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def demand(hours: int, base: int, burst: int) -> list[int]:
    """Orders per 15-minute step: ``base`` an hour throughout, ``burst`` over hours 2-4."""
    steps = hours * 4
    per = [base // 4 + (1 if s % 4 < base % 4 else 0) for s in range(steps)]
    flash = list(range(8, 16))  # hours 2-4
    for k in range(burst):
        per[flash[k % len(flash)]] += 1
    return per


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def run(threepl_on: bool, per_step: list[int], pick_rate: int, fake: Fake3pl, handling_s: float) -> dict:
    os.environ["BO_BENCH_3PL_TOKEN"] = TOKEN
    os.environ["BO_BENCH_3PL_HOOK"] = SECRET
    config = (
        'clock = "stepped"\nclock_start = "2026-01-05T09:00:00Z"\n'  # continues [daemon]
        '[intake]\nlisten = "127.0.0.1:0"\n'
        f"[threepl]\nenabled = {'true' if threepl_on else 'false'}\n"
        f'base_url = "{fake.url}"\ncredential_env = "BO_BENCH_3PL_TOKEN"\nwebhook_secret_env = "BO_BENCH_3PL_HOOK"\n'
        f"backlog_on_hours = 2.0\nbacklog_off_hours = 1.0\nmin_pick_rate_per_hour = {pick_rate}.0\n"
        "inventory_poll_s = 3600.0\n"
    )
    with running(config) as d:
        sock = d.sock
        port = ok(sock, {"op": "health"})["intake"]["http_port"]
        for i in range(10):
            ok(sock, {"op": "sku.configure", "sku": f"S{i}"})
            ok(sock, {"op": "stock.receive", "sku": f"S{i}", "qty": 100_000})
        ok(sock, {"op": "clock.advance", "seconds": 1})  # the first inventory poll
        per_pick = pick_rate // 4
        seen: dict[str, float] = {}  # routed order -> engine step it was first seen at the 3PL
        n = 0
        step = 0
        while True:
            if step < len(per_step):
                for _ in range(per_step[step]):
                    ok(
                        sock,
                        {
                            "op": "order.submit",
                            "channel": "web",
                            "external_id": f"e{n}",
                            "shipping_address": ADDRESS,
                            "lines": [{"sku": f"S{n % 10}", "qty": 1}],
                        },
                    )
                    n += 1
            picking = ok(sock, {"op": "shipments.list", "status": "picking", "limit": per_pick})["shipments"]
            for sh in picking:
                ok(sock, {"op": "pick.confirm", "shipment_id": sh["shipment_id"]})
            routed = ok(sock, {"op": "shipments.list", "status": "at_threepl", "limit": 10000})["shipments"]
            for sh in routed:
                seen.setdefault(sh["order_id"], step)
                if (step - seen[sh["order_id"]]) * STEP_S >= handling_s:
                    assert ship_webhook(port, sh["order_id"]) == 200
            ok(sock, {"op": "clock.advance", "seconds": STEP_S})
            step += 1
            if step >= len(per_step) and not picking and not routed:
                break
        times = []
        routed_ids = []
        for k in range(n):
            got = ok(sock, {"op": "order.get", "channel": "web", "external_id": f"e{k}"})
            received = got["received_at"]
            shipped = [s["shipped_at"] for s in got["shipments"] if s["shipped_at"]]
            assert got["status"] == "shipped" and shipped, got["order_id"]
            times.append((iso(shipped[0]) - iso(received)) / 3600.0)
            if got["routed_to"]:
                routed_ids.append(got["order_id"])
        status = ok(sock, {"op": "threepl.status"})
        with closing(sqlite3.connect(f"file:{d.db}?mode=ro", uri=True)) as db:
            (switches,) = db.execute("SELECT COUNT(*) FROM events WHERE type = 'threepl_routing'").fetchone()
    return {
        "threepl": threepl_on,
        "orders": n,
        "routed": len(routed_ids),
        "p50_h": round(percentile(times, 0.50), 2),
        "p95_h": round(percentile(times, 0.95), 2),
        "max_h": round(max(times), 2),
        "routed_shipped": status["routed_shipped"],
        "creates_per_reference_max": max((fake.creates[r] for r in routed_ids), default=0),
        "routing_switches": switches,
        "steps": step,
    }


def iso(text: str) -> float:
    from backorder.timeutil import parse_ts

    return parse_ts(text)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--base", type=int, default=20, help="orders an hour outside the sale")
    ap.add_argument("--burst", type=int, default=400, help="orders of the flash sale (hours 2-4)")
    ap.add_argument("--hours", type=int, default=24)
    ap.add_argument("--pick-rate", type=int, default=60, help="units the site picks an hour")
    ap.add_argument("--threepl-hours", type=float, default=3.0, help="the 3PL ships an order this long after it got it")
    args = ap.parse_args()
    if args.quick:
        args.burst, args.hours = 240, 10
    per_step = demand(args.hours, args.base, args.burst)
    fake = Fake3pl(stock=100_000)
    handling_s = args.threepl_hours * 3600.0
    off = run(False, per_step, args.pick_rate, fake, handling_s)
    on = run(True, per_step, args.pick_rate, fake, handling_s)
    save(
        result_name("flash_sale", args.quick),
        {
            "demand": {"base_per_h": args.base, "burst": args.burst, "hours": args.hours, "pick_rate": args.pick_rate},
            "threepl_handling_h": args.threepl_hours,
            "off": off,
            "on": on,
            "p95_off_h": off["p95_h"],
            "p95_on_h": on["p95_h"],
        },
    )


if __name__ == "__main__":
    main()
