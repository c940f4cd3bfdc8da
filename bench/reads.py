"""Reads over deep queues: per-op daemon time at 1k / 10k / 100k waiting lines on one SKU,
a reconciliation burst of pipelined ``order.get``, and another client's latency during it.

SKU "HOT" (reorder point 0, order-up-to 2 x the deepest queue) raises one purchase order
at the first shortage, so every waiting line has an expected date from it. Single-line
orders for 1 unit of HOT are pipelined (4 connections, no stock) until the queue is 1k,
then 10k, then 100k deep; at each depth, per op, a batch of requests is pipelined on one
connection and the daemon's CPU time (user + system, /proc) over the batch is divided by
the batch size: "daemon time per request", whatever else runs on the machine (the clock
tick is 10 ms: 5,000 requests resolve 2 us). The
``order.get`` requests name orders spread evenly over the queue (a walk from the head
costs half the queue on average).

Then, at the deepest queue, the reconciliation: one connection pipelines ``--reconcile``
``order.get`` requests (``--window`` 4096 in flight: an ERP re-reading its open orders after an outage),
while a second connection sends one ``order.get`` every 5 ms and times each reply. Reported:
the burst's seconds, and the probe's p50 / p99 / max during it, next to its p99 with no
burst (the "normal p99"). Targets: < 1 ms of daemon time per read at 100k, the 50,000
requests in < 5 s, the probe's p99 during the burst no worse than the normal p99 at
2,000 orders/s (25 ms, bench/latency.py).

It only speaks the protocol, so it runs against any checkout: ``PYTHONPATH=<other tree>
python bench/reads.py`` measures that tree's daemon (the "before" figures in the README).
With a daemon that walks the queue, ``--max-seconds`` bounds each measurement: a batch
stops early and the reconciliation's rate is extrapolated (reported as such); a smaller
``--window`` keeps the requests already sent when it stops from taking minutes.

    python bench/reads.py [--depths 1000,10000,100000] [--reconcile 50000] [--quick]
"""

from __future__ import annotations

import argparse
import json
import selectors
import socket
import time

from common import encode, exit_on_sigterm, ok, result_name, run_load, running, save, wait_journal_idle

OPS = {
    "order.get": lambda i: {"op": "order.get", "channel": "bench", "external_id": f"h{i}"},
    "orders.list": lambda i: {"op": "orders.list", "sku": "HOT", "status": "backordered", "limit": 20},
    "skus.board": lambda i: {"op": "skus.board", "skus": ["HOT"]},
    "sku.get": lambda i: {"op": "sku.get", "sku": "HOT", "lines": 20},
}


def fill_queue(d, start: int, stop: int) -> None:
    streams: list[list[bytes]] = [[] for _ in range(4)]
    for i in range(start, stop):
        streams[i % 4].append(
            encode(
                {
                    "op": "order.submit",
                    "id": i,
                    "channel": "bench",
                    "external_id": f"h{i}",
                    "lines": [{"sku": "HOT", "qty": 1, "unit_price": "5.00"}],
                }
            )
        )
    res = run_load(d.sock, streams, window=512)
    if res["errors"]:
        raise RuntimeError(f"order.submit failed: {res['error_samples']}")
    wait_journal_idle(d.sock)


class Conn:
    """One blocking-free connection: pipelined lines out, reply lines counted in."""

    def __init__(self, path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(str(path))
        self.sock.setblocking(False)
        self.out = bytearray()
        self.buf = b""
        self.errors = 0
        self.sample = ""

    def replies(self) -> list[bytes]:
        try:
            data = self.sock.recv(1 << 20)
        except BlockingIOError:
            return []
        if not data:
            raise RuntimeError("daemon closed the connection")
        parts = (self.buf + data).split(b"\n")
        self.buf = parts.pop()
        for line in parts:
            if b'"ok":false' in line:
                self.errors += 1
                self.sample = self.sample or line.decode()[:300]
        return parts

    def flush(self) -> None:
        if self.out:
            try:
                del self.out[: self.sock.send(self.out)]
            except BlockingIOError:
                pass

    def close(self) -> None:
        self.sock.close()


def batch(d, lines: list[bytes], window: int, max_seconds: float) -> tuple[int, float, float]:
    """Pipeline ``lines`` on one connection (``window`` in flight); stop sending after
    ``max_seconds``. Returns (replies, wall seconds, daemon CPU seconds)."""
    c = Conn(d.sock)
    sel = selectors.DefaultSelector()
    sel.register(c.sock, selectors.EVENT_READ)
    cpu0, t0 = d.cpu_seconds(), time.perf_counter()
    sent = done = 0
    try:
        while True:
            if sent < len(lines) and sent - done < window and time.perf_counter() - t0 < max_seconds:
                n = min(len(lines), done + window) - sent
                c.out += b"".join(lines[sent : sent + n])
                sent += n
            c.flush()
            if sel.select(timeout=0 if c.out else 0.05):
                done += len(c.replies())
            if done == sent and (sent == len(lines) or time.perf_counter() - t0 >= max_seconds):
                break
        wall, cpu = time.perf_counter() - t0, d.cpu_seconds() - cpu0
    finally:
        c.close()
    if c.errors:
        raise RuntimeError(f"{c.errors} errors, e.g. {c.sample}")
    return done, wall, cpu


def per_op(d, depth: int, count: int, max_seconds: float) -> dict:
    out = {}
    for op, make in OPS.items():
        spread = [make((k * 7919) % depth) for k in range(count)]  # spread over the queue
        lines = [encode({"id": k, **req}) for k, req in enumerate(spread)]
        done, wall, cpu = batch(d, lines, 256, max_seconds)
        out[op] = {
            "requests": done,
            "daemon_us_per_op": round(cpu / done * 1e6, 1),
            "wall_us_per_op": round(wall / done * 1e6, 1),
        }
        print(f"depth {depth:>7} {op:<12} {out[op]}", flush=True)
    return out


def probe_latencies(d, seconds: float, burst: list[bytes] | None, max_seconds: float, window: int = 4096) -> dict:
    """A probe connection sends one order.get every 5 ms (after the previous reply) and
    times each; with ``burst``, another connection pipelines those lines meanwhile."""
    probe = Conn(d.sock)
    sel = selectors.DefaultSelector()
    sel.register(probe.sock, selectors.EVENT_READ, probe)
    heavy = None
    if burst is not None:
        heavy = Conn(d.sock)
        sel.register(heavy.sock, selectors.EVENT_READ, heavy)
    sent = done = 0
    lat: list[float] = []
    t0 = time.perf_counter()
    next_probe = t0
    probe_sent_at: float | None = None
    burst_s: float | None = None
    k = 0
    cpu0 = d.cpu_seconds()
    try:
        while True:
            now = time.perf_counter()
            if heavy is not None and burst_s is None:
                if sent < len(burst) and sent - done < window and now - t0 < max_seconds:
                    n = min(len(burst), done + window) - sent
                    heavy.out += b"".join(burst[sent : sent + n])
                    sent += n
                heavy.flush()
            if probe_sent_at is None and now >= next_probe:
                probe.out += encode({"id": k, **OPS["order.get"](k * 104729 % 1000)})
                k += 1
                probe_sent_at = now
            probe.flush()
            if burst_s is None and heavy is not None:
                finished = done == sent and (sent == len(burst) or now - t0 >= max_seconds)
                if finished:
                    burst_s = now - t0
            elif heavy is None and now - t0 >= seconds:
                break
            if burst_s is not None and probe_sent_at is None:
                break
            wait = 0.0 if (probe.out or (heavy is not None and heavy.out)) else 0.002
            for key, _ in sel.select(timeout=wait):
                conn = key.data
                got = conn.replies()
                if conn is heavy:
                    done += len(got)
                elif got:
                    t = time.perf_counter()
                    lat.append(t - probe_sent_at)
                    probe_sent_at = None
                    next_probe = t + 0.005
    finally:
        probe.close()
        if heavy is not None:
            heavy.close()
    for c in (probe, heavy):
        if c is not None and c.errors:
            raise RuntimeError(f"{c.errors} errors, e.g. {c.sample}")
    lat.sort()

    def pct(q: float) -> float:
        return round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1000, 2)

    res = {"probes": len(lat), "p50_ms": pct(0.5), "p99_ms": pct(0.99), "max_ms": round(lat[-1] * 1000, 2)}
    if burst is not None:
        # the daemon's CPU over the burst (and the probes): what the burst costs on a
        # machine of its own, whatever else shares this one
        res.update(burst_requests=done, burst_seconds=round(burst_s, 3), daemon_cpu_s=round(d.cpu_seconds() - cpu0, 2))
        if done < len(burst):  # stopped by --max-seconds: the rate it had, extrapolated
            res["burst_seconds_extrapolated"] = round(burst_s * len(burst) / done, 1)
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--depths", default="1000,10000,100000")
    ap.add_argument("--count", type=int, default=5000, help="requests per op and depth")
    ap.add_argument("--reconcile", type=int, default=50_000)
    ap.add_argument("--max-seconds", type=float, default=60.0, help="bound on each measurement")
    ap.add_argument("--window", type=int, default=4096, help="requests in flight in the burst")
    ap.add_argument("--quick", action="store_true", help="depths 1k and 10k, 5,000 in the burst")
    args = ap.parse_args()
    exit_on_sigterm()
    depths = [int(x) for x in args.depths.split(",")]
    reconcile = args.reconcile
    if args.quick:
        depths, reconcile = [x for x in depths if x <= 10_000] or depths[:1], reconcile // 10
    deepest = max(depths)
    res: dict = {"depths": {}, "quick": args.quick}
    with running() as d:
        ok(d.sock, {"op": "sku.configure", "sku": "HOT", "reorder_point": 0, "order_up_to": 2 * deepest})
        have = 0
        for depth in sorted(depths):
            fill_queue(d, have, depth)
            have = depth
            sku = ok(d.sock, {"op": "sku.get", "sku": "HOT", "lines": 1})
            if sku["waiting_lines"] != depth:
                raise RuntimeError(f"expected {depth} waiting lines, got {sku['waiting_lines']}")
            res["depths"][str(depth)] = per_op(d, depth, args.count, args.max_seconds)
        res["probe_alone"] = probe_latencies(d, 3.0, None, args.max_seconds)
        print("probe alone", res["probe_alone"], flush=True)
        burst = [encode({"id": k, **OPS["order.get"]((k * 7919) % deepest)}) for k in range(reconcile)]
        res["reconcile"] = {"depth": deepest, **probe_latencies(d, 0.0, burst, args.max_seconds, args.window)}
        print("reconcile", res["reconcile"], flush=True)
    worst = max(v["daemon_us_per_op"] for v in res["depths"][str(deepest)].values())
    res["summary"] = {
        "worst_read_daemon_ms_at_deepest": round(worst / 1000, 3),
        "reconcile_seconds": res["reconcile"].get("burst_seconds_extrapolated", res["reconcile"]["burst_seconds"]),
        "probe_p99_ms_during_reconcile": res["reconcile"]["p99_ms"],
        "probe_p99_ms_alone": res["probe_alone"]["p99_ms"],
    }
    res["targets"] = {"worst_read_daemon_ms_at_deepest": 1.0, "reconcile_seconds": 5.0, "probe_p99_ms": 25.0}
    save(result_name("reads", args.quick), res)
    print(json.dumps(res["summary"]))


if __name__ == "__main__":
    main()
