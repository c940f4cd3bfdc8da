"""The supervisor console under load: 10,000 SKUs with waiting demand, ~200 events/s.

A real daemon; 10,000 one-line orders for 10,000 SKUs with no stock (each line waits, each
SKU raises a purchase order). The console (``BackorderApp``) runs headless in this process
(``run_test``, 160x48) while a feeder thread sends, at a paced rate, new orders and small
receipts for random SKUs (each receipt fills waiting lines: ``received`` + ``allocated``
+ ``shipment_created`` ...), so that the console's subscription carries ~200 events/s.
Measured:

- ``load_s``: connect, first full load of the 10,000 rows and first paint;
- ``events_per_s``: event lines the console received per second during the run;
- ``lag_ms``: event -> row, for probe receipts: from sending a ``stock.receive`` for a SKU
  to that SKU's row in the table showing the new on-hand (includes the daemon's reply,
  the coalescing window ``refresh_s`` = 0.3 s, the ``skus.board`` round trip and the redraw);
- ``apply_ms``: time the dashboard spends applying one refresh (table cells, sort, feed);
- ``loop_stall_ms``: how late a 20 ms heartbeat on the console's event loop ran — what a
  keypress would wait for (the UI's responsiveness; Textual paints at most 60 fps).

    python bench/tui.py [--skus 10000] [--rate 200] [--seconds 20] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import random
import statistics
import time

from common import encode, exit_on_sigterm, result_name, run_load, running, save

from backorder.client import Client
from backorder.tui.app import BackorderApp
from backorder.tui.screens.dashboard import DashboardScreen

CONFIG = """
[default_policy]
reorder_point = 0
order_up_to = 0
lead_time_days = 3
"""


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 1)


def summary(values: list[float]) -> dict:
    return {
        "n": len(values),
        "p50": pct(values, 0.5),
        "p95": pct(values, 0.95),
        "max": pct(values, 1.0),
        "mean": round(statistics.fmean(values), 1) if values else None,
    }


def feed(sock: str, skus: int, ops_per_s: float, go, stop, ops) -> None:
    """Orders and receipts at ``ops_per_s`` (each op -> ~3 events), in its own process like
    any integrator (a thread here would compete with the console for the GIL)."""
    go.wait()
    client = Client(sock)
    rng = random.Random(3)
    period = 1.0 / ops_per_s
    n = 0
    next_t = time.perf_counter()
    while not stop.is_set():
        batch = []
        for _ in range(10):
            n += 1
            sku = f"SKU-{rng.randrange(skus):05d}"
            if n % 2:
                batch.append(
                    {
                        "op": "order.submit",
                        "channel": "bench",
                        "external_id": f"F{n}",
                        "lines": [{"sku": sku, "qty": 1}],
                    }
                )
            else:
                batch.append({"op": "stock.receive", "sku": sku, "qty": 1})
        client.pipeline(batch)
        with ops.get_lock():
            ops.value += len(batch)
        next_t += 10 * period
        stop.wait(max(0.0, next_t - time.perf_counter()))
    client.close()


async def run_console(sock: str, skus: int, rate: float, seconds: float) -> dict:
    app = BackorderApp(sock)
    events = 0
    on_event = app._on_event

    def counting(msg: dict) -> None:
        nonlocal events
        events += 1
        on_event(msg)

    app.conn.on_event = counting
    apply_ms: list[float] = []
    orig_dispatch = app._dispatch

    def timed_dispatch(changes) -> None:
        t0 = time.perf_counter()
        orig_dispatch(changes)
        apply_ms.append((time.perf_counter() - t0) * 1000)

    app._dispatch = timed_dispatch  # type: ignore[method-assign]
    sort_ms: list[float] = []
    orig_reorder = DashboardScreen._reorder

    def timed_reorder(self) -> None:
        t0 = time.perf_counter()
        orig_reorder(self)
        sort_ms.append((time.perf_counter() - t0) * 1000)

    DashboardScreen._reorder = timed_reorder  # type: ignore[method-assign]
    stalls: list[float] = []
    lags: list[float] = []
    # the feeder process is started before the app owns the (headless) terminal, then released
    ctx = multiprocessing.get_context("spawn")
    go, stop, ops = ctx.Event(), ctx.Event(), ctx.Value("i", 0)
    feeder = ctx.Process(target=feed, args=(sock, skus, rate / 3.0, go, stop, ops), daemon=True)
    feeder.start()
    t_start = time.perf_counter()
    async with app.run_test(size=(160, 48)) as pilot:
        while not app.loaded:
            await pilot.pause(0.05)
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, DashboardScreen)
        table = screen.query_one("#skus")
        load_s = time.perf_counter() - t_start
        rows = table.row_count

        async def heartbeat() -> None:
            period = 0.02
            while True:
                t0 = time.perf_counter()
                await asyncio.sleep(period)
                stalls.append(max(0.0, (time.perf_counter() - t0 - period) * 1000))

        beat = asyncio.create_task(heartbeat())
        go.set()
        probe = Client(sock)
        rng = random.Random(5)
        e0, t0 = events, time.perf_counter()
        apply_ms.clear()
        sort_ms.clear()
        try:
            while time.perf_counter() - t0 < seconds:
                sku = f"SKU-{rng.randrange(skus):05d}"
                before = app.live.rows.get(sku, {}).get("on_hand")
                if before is None:
                    await pilot.pause(0.05)
                    continue
                sent = time.perf_counter()
                got = await asyncio.to_thread(probe.call, "stock.receive", sku=sku, qty=1)
                want = str(got["on_hand"])
                while time.perf_counter() - sent < 10:
                    if sku not in app.live.rows or str(table.get_cell(sku, "on_hand")) == want:
                        break
                    await asyncio.sleep(0.01)
                if sku in app.live.rows:
                    lags.append((time.perf_counter() - sent) * 1000)
                await pilot.pause(0.2)
        finally:
            elapsed = time.perf_counter() - t0
            stop.set()
            feeder.join(10)
            probe.close()
            beat.cancel()
        got_events = events - e0
        sorts = len(sort_ms)
    return {
        "skus_waiting_at_start": rows,
        "load_s": round(load_s, 2),
        "seconds": round(elapsed, 1),
        "feeder_ops": ops.value,
        "sorts": sorts,
        "sort_ms": summary(sort_ms),
        "events_per_s": round(got_events / elapsed),
        "lag_ms": summary(lags),
        "apply_ms": summary(apply_ms),
        "loop_stall_ms": summary(stalls),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--skus", type=int, default=10_000)
    ap.add_argument("--rate", type=float, default=200.0, help="target events per second")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--quick", action="store_true", help="1,000 SKUs, 8 s")
    args = ap.parse_args()
    if args.quick:
        args.skus, args.seconds = 1000, 8.0
    exit_on_sigterm()
    with running(CONFIG) as d:
        orders = [
            encode(
                {
                    "op": "order.submit",
                    "channel": "bench",
                    "external_id": f"B{i}",
                    "lines": [{"sku": f"SKU-{i:05d}", "qty": 2}],
                }
            )
            for i in range(args.skus)
        ]
        load = run_load(d.sock, [orders], window=256)
        assert load["errors"] == 0, load
        result = asyncio.run(run_console(str(d.sock), args.skus, args.rate, args.seconds))
    result = {
        "skus": args.skus,
        "target_events_per_s": args.rate,
        **result,
        # flat copies of the headline figures for run_all.py's table
        "lag_p95_ms": result["lag_ms"]["p95"],
        "stall_p95_ms": result["loop_stall_ms"]["p95"],
    }
    save(result_name("tui", args.quick), result)


if __name__ == "__main__":
    main()
