"""bench/throughput.py's order lines in process: the real router, actors and journal
(SQLite, synchronous=FULL, its group-commit thread) without the socket, timed in CPU
time of this process (all its threads), which load on a shared machine moves far less
than lines/s; and what each order line costs the trio scheduler: actor messages handled
and task steps (each a switch) per line, counted in a separate run. The garbage collector
runs as in the daemon (``daemon/collector.py``); its young collections are reported.

The requests are throughput.py's (4 streams, 1-3 lines over 1,000 SKUs, one receipt per
ten orders) taken round-robin, ``--window`` of them in flight (4 x 512 as there). A
request counts when its actor answered; the run ends when everything is durable.

    python bench/submit_step.py [--orders 20000] [--repeat 3] [--serial] [--quick]

``--serial`` runs every SKU's actor in one task (the router's mode under the stepped
clock): what the wake-up of a SKU task per order line costs.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import shutil
import statistics
import tempfile
import time
from collections import Counter
from functools import partial
from pathlib import Path

import msgspec
import trio
from common import exit_on_sigterm, result_name, save
from throughput import make_streams

from backorder import protocol as p
from backorder.actors.engine import Engine
from backorder.actors.router import Router, route
from backorder.actors.sku_actor import SkuHandler
from backorder.config.settings import Settings
from backorder.daemon.collector import Collector
from backorder.daemon.journal import Journal

NOW = 1.75e9


class FixedClock:
    def now(self) -> float:
        return NOW


class Answer:
    """The reply handle an actor answers; frees a window slot."""

    __slots__ = ("slots", "errors")

    def __init__(self, slots: trio.Semaphore, errors: Counter) -> None:
        self.slots = slots
        self.errors = errors

    def ok(self, result) -> None:
        self.slots.release()

    def error(self, code: str, message: str) -> None:
        self.errors[code] += 1
        self.slots.release()


class Steps(trio.abc.Instrument):
    """Counts task steps: every time the scheduler runs a task, a switch."""

    def __init__(self) -> None:
        self.steps = 0

    def before_task_step(self, task) -> None:
        self.steps += 1


def requests(n_orders: int, n_skus: int) -> tuple[list, list, int]:
    streams, lines = make_streams(n_orders, n_skus, 4)
    mixed = [r for r in itertools.chain.from_iterable(itertools.zip_longest(*streams)) if r is not None]
    configure = [p.SkuConfigure(sku=f"S{i:05d}", order_up_to=50, reorder_point=10) for i in range(n_skus)]
    return configure, [p.decode_request(r) for r in mixed], lines


async def drive(router: Router, reqs: list, window: int, errors: Counter) -> None:
    slots = trio.Semaphore(window)
    for i, req in enumerate(reqs):
        await slots.acquire()
        route(router, req, Answer(slots, errors), f"c{i}", "bench")
    for _ in range(window):  # every request answered
        await slots.acquire()


async def one_run(configure: list, reqs: list, lines: int, window: int, serial: bool, count: bool) -> dict:
    collector = Collector()
    folder = Path(tempfile.mkdtemp(prefix="bosubmit"))
    journal = Journal(folder / "j.db")
    steps = Steps()
    handled: Counter = Counter()
    real_sku_handle = SkuHandler.handle
    try:
        journal.open()
        async with trio.open_nursery() as nursery:
            await nursery.start(journal.run)
            engine = Engine(msgspec.convert({}, Settings), journal, FixedClock())  # type: ignore[arg-type]
            router = Router(engine, nursery, idle_s=30.0, serial=serial)
            if count:
                order_handle = router.order_actor.handle

                def counted_order(msg) -> None:
                    handled[f"order:{type(msg).__name__}"] += 1
                    order_handle(msg)

                def counted_sku(self, msg) -> None:
                    handled[f"sku:{type(msg).__name__}"] += 1
                    real_sku_handle(self, msg)

                router.order_actor.handle = counted_order  # type: ignore[method-assign]
                SkuHandler.handle = counted_sku  # type: ignore[method-assign]
            await router.start()
            errors: Counter = Counter()
            await drive(router, configure, 512, errors)
            await journal.flush()
            collector.install()  # the daemon's policy: young collections, survivors frozen
            handled.clear()
            if count:
                trio.lowlevel.add_instrument(steps)
            t0, c0 = time.perf_counter(), time.process_time()
            await drive(router, reqs, window, errors)
            await journal.flush()
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            if count:
                trio.lowlevel.remove_instrument(steps)
            if errors:
                raise SystemExit(f"errors: {dict(errors)}")
            nursery.cancel_scope.cancel()
        return {
            "seconds": wall,
            "cpu_s": cpu,
            "cpu_us_per_line": cpu / lines * 1e6,
            "task_steps_per_line": steps.steps / lines,
            "gc_us_per_line": collector.pause_total_s / lines * 1e6,  # young collections, wall time
            "messages_per_line": {k: round(v / lines, 3) for k, v in sorted(handled.items())},
        }
    finally:
        SkuHandler.handle = real_sku_handle  # type: ignore[method-assign]
        collector.uninstall()
        gc.unfreeze()
        journal.close()
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=20_000)
    ap.add_argument("--skus", type=int, default=1000)
    ap.add_argument("--window", type=int, default=4 * 512)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="10x fewer orders, for a smoke test")
    ap.add_argument(
        "--serial", action="store_true", help="one task for every SKU (Router(serial=True), as under the stepped clock)"
    )
    ap.add_argument("--name", default=None)
    args = ap.parse_args()
    exit_on_sigterm()
    n = args.orders // 10 if args.quick else args.orders
    configure, reqs, lines = requests(n, args.skus)
    run = partial(trio.run, one_run, configure, reqs, lines, args.window, args.serial)
    runs = [run(False) for _ in range(args.repeat)]
    counted = run(True)
    res: dict = {"orders": n, "order_lines": lines, "skus": args.skus, "serial": args.serial, "repeat": args.repeat}
    res["quick"] = args.quick
    for key in ("cpu_us_per_line", "gc_us_per_line", "seconds"):
        values = [r[key] for r in runs]
        res[key] = round(statistics.median(values), 2)
        res[f"{key}_range"] = [round(min(values), 2), round(max(values), 2)]
    res["lines_per_s"] = round(lines / res["seconds"])
    res["task_steps_per_line"] = round(counted["task_steps_per_line"], 3)
    res["messages_per_line"] = counted["messages_per_line"]
    save(args.name or result_name("submit_step", args.quick), res)


if __name__ == "__main__":
    main()
