"""What-if reads on a deep queue: daemon time of ``whatif.receipt``, ``whatif.delay`` and
``whatif.policy`` on one SKU with 10,000 waiting lines (target: < 50 ms each, p95).

SKU "HOT" (reorder point 0, order-up-to 4,000) raises a purchase order each time its
position falls to 0, so the queue waits for three requests with three dates. Single-line
orders for 1-3 units are pipelined until ``--depth`` lines wait. Then each what-if is sent
``--count`` times, one at a time on one connection (nothing queued ahead of it), with
varied arguments (quantities, dates, requests, candidate levels). The daemon's time per
request is the ``ms`` of its canonical ``request`` log line (``[logging] requests =
"all"``, level debug from ``log.level`` after the fill): from reading the request to its
reply leaving, on the daemon's clock, whatever else runs on the machine. The client's
round trip is reported beside it.

    python bench/whatif.py [--depth 10000] [--count 200] [--quick]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import time

from common import encode, exit_on_sigterm, ok, result_name, run_load, running, save, wait_journal_idle

from backorder.client import Client

TARGET_MS = 50.0


def fill_queue(d, depth: int) -> None:
    streams: list[list[bytes]] = [[] for _ in range(4)]
    for i in range(depth):
        line = {"sku": "HOT", "qty": 1 + i % 3, "unit_price": "5.00"}
        streams[i % 4].append(
            encode({"op": "order.submit", "id": i, "channel": "bench", "external_id": f"w{i}", "lines": [line]})
        )
    res = run_load(d.sock, streams, window=512)
    if res["errors"]:
        raise RuntimeError(f"order.submit failed: {res['error_samples']}")
    wait_journal_idle(d.sock)


def requests(k: int, rids: list[str], today: str) -> dict[str, dict]:
    """The k-th request of each what-if (arguments vary with k)."""
    later = (dt.date.fromisoformat(today) + dt.timedelta(days=1 + k % 20)).isoformat()
    return {
        "whatif.receipt": {"op": "whatif.receipt", "sku": "HOT", "qty": 50 + (k * 97) % 5000},
        "whatif.receipt@date": {
            "op": "whatif.receipt",
            "request_id": rids[k % len(rids)],
            "qty": 100 + (k * 31) % 3000,
            "date": later,
        },
        "whatif.delay": {"op": "whatif.delay", "request_id": rids[k % len(rids)], "date": later},
        "whatif.policy": {
            "op": "whatif.policy",
            "sku": "HOT",
            "reorder_point": 100 + k % 50,
            "order_up_to": 3000 + 10 * (k % 50),
            "lead_time_days": 3 + k % 5,
        },
    }


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 3)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--depth", type=int, default=10_000)
    ap.add_argument("--count", type=int, default=200, help="requests per what-if")
    ap.add_argument("--quick", action="store_true", help="50 requests per what-if (the depth stays 10,000)")
    args = ap.parse_args()
    exit_on_sigterm()
    count = 50 if args.quick else args.count
    res: dict = {"depth": args.depth, "count": count, "quick": args.quick, "ops": {}}
    with running('[logging]\nrequests = "all"\n') as d:
        ok(d.sock, {"op": "sku.configure", "sku": "HOT", "reorder_point": 0, "order_up_to": 4000, "lead_time_days": 7})
        t0 = time.perf_counter()
        fill_queue(d, args.depth)
        res["fill_seconds"] = round(time.perf_counter() - t0, 2)
        sku = ok(d.sock, {"op": "sku.get", "sku": "HOT", "lines": 1})
        if sku["waiting_lines"] != args.depth:
            raise RuntimeError(f"expected {args.depth} waiting lines, got {sku['waiting_lines']}")
        rids = [r["request_id"] for r in sku["inbound_requests"]]
        res["open_requests"] = len(rids)
        today = dt.datetime.now(dt.UTC).date().isoformat()  # the engine runs on the wall clock here
        ok(d.sock, {"op": "log.level", "level": "debug"})
        wall: dict[str, dict[int, float]] = {}
        with Client(str(d.sock)) as c:
            for k in range(count):
                for name, req in requests(k, rids, today).items():
                    fields = {key: v for key, v in req.items() if key != "op"}
                    t = time.perf_counter()
                    c.call(req["op"], **fields)
                    wall.setdefault(name, {})[k] = (time.perf_counter() - t) * 1000
        ok(d.sock, {"op": "log.level", "level": "warning"})
        time.sleep(0.2)
        log_text = d.log.read_text(errors="replace")
    daemon_ms = _request_lines(log_text)
    names = list(requests(0, ["x"], "2024-01-01"))
    per_op: dict[str, list[float]] = {n: [] for n in names}
    for i, ms in enumerate(daemon_ms):  # one at a time, in the order sent
        per_op[names[i % len(names)]].append(ms)
    for name in names:
        ms, rt = per_op[name], list(wall[name].values())
        res["ops"][name] = {
            "requests": len(ms),
            "daemon_p50_ms": pct(ms, 0.5),
            "daemon_p95_ms": pct(ms, 0.95),
            "daemon_max_ms": round(max(ms), 3),
            "round_trip_p50_ms": pct(rt, 0.5),
            "round_trip_p95_ms": pct(rt, 0.95),
            "mean_ms": round(statistics.fmean(ms), 3),
        }
        print(f"{name:<22} {res['ops'][name]}", flush=True)
    res["worst_p95_ms"] = max(v["daemon_p95_ms"] for v in res["ops"].values())
    res["target_ms"] = TARGET_MS
    save(result_name("whatif", args.quick), res)


def _request_lines(log_text: str) -> list[float]:
    """The ``ms`` of every whatif request line, in log order."""
    out = []
    for raw in log_text.splitlines():
        if "whatif" not in raw:
            continue
        try:
            rec = json.loads(raw)
        except ValueError:
            continue
        if rec.get("event") == "request" and str(rec.get("op", "")).startswith("whatif") and rec.get("ms") is not None:
            out.append(float(rec["ms"]))
    return out


if __name__ == "__main__":
    main()
