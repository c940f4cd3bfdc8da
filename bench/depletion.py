"""What the depletion check costs the daemon (``notifier.depletion_check``: the depletion
warnings and the overdue promise recheck, run on the trio loop every ``[notifications]
depletion_check_s`` of engine time) and one ``skus.stockout`` read
(``depletion_rules.stockouts``), at 2,000 and 10,000 SKUs. In process, no daemon: the
check the notifier runs, on a model built by the real rules, with a trio task beside it
that measures how long the loop was held (the longest gap between its turns).

    python bench/depletion.py [--quick]

Each SKU: 41 units received 20 days ago, four past orders of 10 (one rush) served from
them, then three orders of 4 backordered behind a purchase order and promised (so every SKU
has demand, waiting lines told a date and open supply). Under priority allocation each waiting line
is also projected against the rush demand (a rush weight of 1,000 hours: rush outranks
a waiting line for six weeks, so no SKU is passed over — the worst case); under FIFO a SKU whose stock and open supply
cover its waiting lines is passed over. Measured: the first check (it warns, and it counts
the recent demand of every order once, as after a restart), then the steady check (nobody
new to warn: what it costs every hour) done whole in one synchronous call (as before the
check was sliced: its loop stall is its length) and sliced (the daemon's way: the stall is
the longest slice), then the read.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time

import msgspec
import trio
from common import result_name, save

from backorder import protocol as p
from backorder.actors import depletion_rules, notice_rules, order_rules, promise_rules, sku_rules
from backorder.actors.engine import Engine
from backorder.actors.events import Event
from backorder.actors.model import World
from backorder.clock import SteppedClock
from backorder.config.settings import Settings
from backorder.notify.notifier import depletion_check

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
DAY = 86400.0


def build(skus: int, mode: str) -> World:
    settings = msgspec.convert(
        {
            "default_policy": {"reorder_point": 0, "order_up_to": 10, "lead_time_days": 7},
            "notifications": {"routes": {"web": "file"}, "file": {"dir": "/nonexistent"}},
            "allocation": {"mode": mode, "weights": {"rush": 1000.0}},
        },
        Settings,
    )
    w = World(settings)
    emit = w.evolve
    n = 0

    def order(sku: str, qty: int, now: float, rush: bool = False) -> None:
        nonlocal n
        n += 1
        req = msgspec.convert(
            {
                "op": "order.submit",
                "channel": "web",
                "external_id": f"X{n}",
                "email": "c@example.com",
                "rush": rush,
                "lines": [{"sku": sku, "qty": qty}],
            },
            p.OrderSubmit,
        )
        o, _ = order_rules.submit(w, req, emit, now)
        sku_rules.settle(w, w.skus[sku], emit, now)
        promise_rules.promise_order(w, o, emit, now)  # the date its customer is told

    for i in range(skus):
        sku = f"SKU-{i:06d}"
        sku_rules.configure(w, w.sku(sku), {}, emit, T0 - 21 * DAY)
        sku_rules.receive(w, w.skus[sku], 41, None, emit, T0 - 20 * DAY)
        for k in range(4):
            order(sku, 10, T0 - (19 - k) * DAY, rush=k == 0)
        for k in range(3):
            order(sku, 4, T0 - DAY + k * 60)
    return w


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


class Recorded:
    """What the engine needs of a journal, in memory: counts the events."""

    def __init__(self) -> None:
        self.last_seq = 0
        self.cause = self.corr = self.actor = ""

    def append_body(self, e: Event, body: bytes, sku: str | None, order_id: str | None) -> int:
        self.last_seq += 1
        return self.last_seq


def on_loop(check) -> tuple[float, float, float]:
    """(ms the loop was held at most, in CPU time and in wall time; ms the check took) of
    ``await check()`` in a trio loop with a task beside it taking a turn whenever it can.
    The loop's thread's CPU time between two turns of that task is the work that held it;
    on a loaded machine the wall time adds the stretches the OS gave the core to others."""
    gaps: list[tuple[float, float]] = []
    took: list[float] = []

    async def main() -> None:
        started = trio.Event()

        async def beside() -> None:
            last = time.thread_time(), time.perf_counter()
            started.set()
            while True:
                await trio.lowlevel.checkpoint()
                now = time.thread_time(), time.perf_counter()
                gaps.append((now[0] - last[0], now[1] - last[1]))
                last = now

        async with trio.open_nursery() as nursery:
            nursery.start_soon(beside)
            await started.wait()
            t0 = time.perf_counter()
            await check()
            took.append(time.perf_counter() - t0)
            seen = len(gaps)
            while len(gaps) == seen:  # its turn after the last stretch the check held
                await trio.lowlevel.checkpoint()
            nursery.cancel_scope.cancel()

    trio.run(main)
    return max(cpu for cpu, _ in gaps) * 1000, max(wall for _, wall in gaps) * 1000, took[0] * 1000


def measure(skus: int, mode: str, repeat: int) -> dict:
    t0 = time.perf_counter()
    w = build(skus, mode)
    built = time.perf_counter() - t0
    gc.collect()
    gc.freeze()  # as the daemon does once its model is loaded (daemon/recovery.py)
    gc.set_threshold(100_000, 50, 100)
    journal = Recorded()
    clock = SteppedClock(T0)  # engine time stands still: every check sees the same day
    engine = Engine(w.settings, journal, clock, world=w)

    async def sliced() -> None:
        await depletion_check(engine)

    async def whole() -> None:  # one synchronous call: the check before it was sliced
        engine.context("depletion_check", "notifier")
        notice_rules.depletion(w, engine.emit, clock.now())
        promise_rules.overdue(w, engine.emit, clock.now())

    first_stall, first_wall, first = on_loop(sliced)
    warned = journal.last_seq
    clock._now = T0 + 3600  # an hour later: nobody new to warn
    steady_whole = [on_loop(whole) for _ in range(repeat)]
    steady_sliced = [on_loop(sliced) for _ in range(repeat)]
    assert journal.last_seq == warned, "a steady check warned again"
    read = timed(lambda: depletion_rules.stockouts(w, T0 + 3600), repeat)
    listed = len(depletion_rules.stockouts(w, T0 + 3600))
    return {
        "skus": skus,
        "mode": mode,
        "orders": len(w.orders),
        "waiting_lines": sum(len(s.queue) for s in w.skus.values()),
        "build_s": round(built, 2),
        "warnings_first_check": warned,
        "first_check_ms": round(first, 2),
        "first_check_max_stall_ms": round(first_stall, 2),
        "first_check_max_stall_wall_ms": round(first_wall, 2),
        "steady_whole_ms": round(statistics.median(t for _, _, t in steady_whole), 2),
        "steady_whole_stall_ms": round(statistics.median(cpu for cpu, _, _ in steady_whole), 2),
        "steady_check_ms": round(statistics.median(t for _, _, t in steady_sliced), 2),
        "steady_check_max_stall_ms": round(max(cpu for cpu, _, _ in steady_sliced), 2),
        "steady_check_max_stall_wall_ms": round(max(wall for _, wall, _ in steady_sliced), 2),
        "stockout_read_ms": round(statistics.median(read), 2),
        "stockout_listed": listed,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    sizes, repeat = ((200, 1000), 5) if args.quick else ((2000, 10000), 7)
    out = {f"{mode}_{n}": measure(n, mode, repeat) for mode in ("priority", "fifo") for n in sizes}
    for r in out.values():
        print(
            f"{r['mode']:>8} {r['skus']:>6} SKUs, {r['waiting_lines']} waiting lines: first check {r['first_check_ms']} ms "
            f"({r['warnings_first_check']} events, loop held at most {r['first_check_max_stall_ms']} ms CPU, "
            f"{r['first_check_max_stall_wall_ms']} ms wall); steady check whole {r['steady_whole_ms']} ms "
            f"(held {r['steady_whole_stall_ms']} ms CPU) / sliced {r['steady_check_ms']} ms (held at most "
            f"{r['steady_check_max_stall_ms']} ms CPU, {r['steady_check_max_stall_wall_ms']} ms wall); "
            f"skus.stockout {r['stockout_read_ms']} ms"
        )
    big = out[f"priority_{sizes[1]}"]
    out["steady_check_ms_at_largest"] = big["steady_check_ms"]
    out["max_stall_ms_at_largest"] = max(big["first_check_max_stall_ms"], big["steady_check_max_stall_ms"])
    out["fifo_steady_check_ms_at_largest"] = out[f"fifo_{sizes[1]}"]["steady_check_ms"]
    out["stockout_read_ms_at_largest"] = big["stockout_read_ms"]
    save(result_name("depletion", args.quick), out)


if __name__ == "__main__":
    main()
