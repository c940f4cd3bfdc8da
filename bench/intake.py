"""Intake throughput per channel: deliveries/s through the socket op (``order.ingest``,
pipelined over 2 connections) and through the webhook listener (HTTP/1.1 keep-alive, 8
senders), signature verification included (Shopify / WooCommerce natively, the other
channels with X-Backorder-Hmac-Sha256 over HTTP). Every delivery is a new order.

    python bench/intake.py [--quick] [--n 4000] [--flash 200000]

``--flash N`` (default 200,000; 20,000 with --quick) then sends a flash sale of N one-line
CSV orders as fast as ``backorder import`` can (one delivery per order, ``busy`` replies
sent again after a pause) into a small queue, and reports deliveries/s, busy refusals,
the intake queue's peak, the daemon's memory, and that every order is there after a
kill -9 and restart.

Deliveries are built from the test fixtures (tests/intake/fixtures) with fresh ids.
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import hashlib
import hmac
import http.client
import json
import os
import threading
import time

from common import ROOT, Daemon, exit_on_sigterm, health, ok, result_name, run_load, running, save

FIX = ROOT / "tests" / "intake" / "fixtures"
SECRET = "bench-secret"
CHANNELS = ["shopify", "woocommerce", "amazon_sp", "bigcommerce", "x12_850", "csv"]
CONFIG = """
[intake]
listen = "127.0.0.1:0"
queue_size = 4000
workers = 64
""" + "".join(f'\n[channels.{ch}]\nsecret_env = "BO_BENCH_SECRET"\n' for ch in CHANNELS)


def sign(body: bytes) -> str:
    return base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()


def deliveries(channel: str, n: int, offset: int) -> list[tuple[bytes, dict]]:
    out = []
    if channel == "x12_850":
        tpl = (FIX / "x12_850/two_pos.edi").read_bytes()
        for i in range(n):
            body = tpl.replace(b"PO-7788", f"P{offset + i}-".encode())
            out.append((body, {"X-Backorder-Hmac-Sha256": sign(body)}))
        return out
    if channel == "csv":
        head, *rows = (FIX / "csv/orders.csv").read_text().splitlines(keepends=True)
        for i in range(n):
            body = (head + "".join(r.replace("CSV-1001", f"B{offset + i}") for r in rows[:2])).encode()
            out.append((body, {"X-Backorder-Hmac-Sha256": sign(body)}))
        return out
    name = {
        "shopify": "shopify/orders_create.json",
        "woocommerce": "woocommerce/order_created.json",
        "amazon_sp": "amazon_sp/order_unshipped.json",
        "bigcommerce": "bigcommerce/order_created.json",
    }[channel]
    tpl = json.loads((FIX / name).read_text())
    for i in range(n):
        oid = offset + i
        d = json.loads(json.dumps(tpl))
        if channel == "shopify":
            d["id"] = 5820982911946154508 + oid
        elif channel == "woocommerce":
            d["id"] = oid
        elif channel == "amazon_sp":
            amz = f"902-{oid:07d}-1390916"
            d["getOrder"]["payload"]["AmazonOrderId"] = amz
            for page in d["getOrderItems"]:
                page["payload"]["AmazonOrderId"] = amz
        else:
            d["order"]["id"] = d["webhook"]["data"]["id"] = oid
            for p in d["products"]:
                p["order_id"] = oid
        body = json.dumps(d, ensure_ascii=False).encode()
        if channel == "shopify":
            headers = {
                "X-Shopify-Topic": "orders/create",
                "X-Shopify-Shop-Domain": "bench.myshopify.com",
                "X-Shopify-Hmac-Sha256": sign(body),
            }
        elif channel == "woocommerce":
            headers = {
                "X-WC-Webhook-Topic": "order.created",
                "X-WC-Webhook-Source": "https://bench.example/",
                "X-WC-Webhook-Signature": sign(body),
            }
        else:
            headers = {"X-Backorder-Hmac-Sha256": sign(body)}
        out.append((body, headers))
    return out


def socket_run(daemon: Daemon, channel: str, items: list[tuple[bytes, dict]]) -> dict:
    lines = [
        json.dumps(
            {
                "op": "order.ingest",
                "id": i,
                "channel": channel,
                "headers": h,
                "body_base64": base64.b64encode(b).decode(),
            }
        ).encode()
        + b"\n"
        for i, (b, h) in enumerate(items)
    ]
    res = run_load(daemon.sock, [lines[0::2], lines[1::2]], window=256)
    return {
        "deliveries_per_s": res["req_per_s"],
        "errors": res["errors"],
        "p50_ms": res["p50_ms"],
        "p99_ms": res["p99_ms"],
        "error_samples": res["error_samples"],
    }


def http_run(port: int, channel: str, items: list[tuple[bytes, dict]], senders: int = 8) -> dict:
    local = threading.local()
    errors = []

    def send(item) -> None:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        body, headers = item
        conn.request("POST", f"/webhooks/{channel}", body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        if resp.status != 200 or b'"accepted"' not in data:
            errors.append(f"{resp.status} {data[:200]!r}")

    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(senders) as pool:
        list(pool.map(send, items))
    elapsed = time.perf_counter() - t0
    return {"deliveries_per_s": round(len(items) / elapsed), "errors": len(errors), "error_samples": errors[:3]}


def flash_sale(n: int) -> dict:
    from backorder.intake import importer

    # the CSV goes in the daemon's temp folder: removed with it on exit
    with running("[intake]\nqueue_size = 1000\npriority_reserve = 100\n") as daemon:
        f = daemon.dir / "flash.csv"
        with f.open("w") as out:
            out.write("order_id,currency,email,sku,qty,unit_price,ship_address1,ship_country,rush\n")
            for i in range(n):
                out.write(
                    f"F{i},USD,c{i}@example.com,SALE-{i % 100},1,19.99,{i} Sale St,US,"
                    f"{'yes' if i % 1000 == 0 else ''}\n"
                )
        rss0 = daemon.rss_mib()
        t0 = time.perf_counter()
        summary = importer.run(str(daemon.sock), str(f), "csv", window=2000)
        elapsed = time.perf_counter() - t0
        intake = health(daemon.sock)["intake"]
        rss1 = daemon.rss_mib()
        daemon.kill9()
        daemon.start()
        orders_after_restart = ok(daemon.sock, {"op": "stats"})["counts"]["orders"]
    return {
        "orders": n,
        "seconds": round(elapsed, 1),
        "deliveries_per_s": round(n / elapsed),
        "accepted": summary["outcomes"].get("accepted", 0),
        "busy_refusals_resent": summary["busy_retries"],
        "queue_peak": intake["peak"],
        "queue_capacity": intake["capacity"],
        "rss_mib_before": round(rss0, 1),
        "rss_mib_after": round(rss1, 1),
        "rss_kib_per_order": round((rss1 - rss0) * 1024 / n, 2),
        "orders_after_kill9_restart": orders_after_restart,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--n", type=int, default=4000, help="deliveries per channel and entry point")
    ap.add_argument("--flash", type=int, default=None, help="orders in the flash sale (0: skip)")
    args = ap.parse_args()
    n = 400 if args.quick else args.n
    flash = args.flash if args.flash is not None else (20_000 if args.quick else 200_000)
    exit_on_sigterm()
    os.environ["BO_BENCH_SECRET"] = SECRET
    results: dict = {}
    with running(CONFIG) as daemon:
        port = health(daemon.sock)["intake"]["http_port"]
        for i, ch in enumerate(CHANNELS):
            sock_items = deliveries(ch, n, offset=1_000_000 * (2 * i + 1))
            http_items = deliveries(ch, n, offset=1_000_000 * (2 * i + 2))
            results[ch] = {"socket": socket_run(daemon, ch, sock_items), "http": http_run(port, ch, http_items)}
            print(ch, json.dumps(results[ch]), flush=True)
        rss = round(daemon.rss_mib(), 1)
    errors = sum(r["socket"]["errors"] + r["http"]["errors"] for r in results.values())
    save(
        result_name("intake", args.quick),
        {
            "deliveries_per_channel": n,
            "channels": results,
            "errors": errors,
            "socket_min_per_s": min(r["socket"]["deliveries_per_s"] for r in results.values()),
            "http_min_per_s": min(r["http"]["deliveries_per_s"] for r in results.values()),
            "rss_mib": rss,
            "flash_sale": flash_sale(flash) if flash else None,
        },
    )


if __name__ == "__main__":
    main()
