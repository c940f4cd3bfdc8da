"""What starting a snapshot costs the trio loop: a fork of the daemon against a spawn.

A process holding ``--mib`` MiB of small Python objects (the year-long daemon is ~300 MiB
resident) runs a trio loop with a task that sleeps 1 ms over and over and records how
late it wakes. Each round opens a 100 ms window and, in its middle, either does nothing
(``none``: the loop's lateness from the machine alone), spawns an interpreter the way
``daemon/snapchild.py`` starts its child (``spawn``: ``os.posix_spawn``), or forks with a
child that exits at once (``fork``: what the daemon did before; the page tables of the
whole resident memory are copied). The modes alternate round by round, so they share the
machine's load. Reported per mode: the median / p90 / max of each window's largest
lateness, and the median / max CPU time of the call on the loop's thread
(``time.thread_time``), which load barely moves.

    python bench/snapshot_pause.py [--mib 300] [--rounds 20] [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import trio
from common import exit_on_sigterm, result_name, save

MODES = ("none", "spawn", "fork")


def resident_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def start(mode: str) -> int | None:
    if mode == "spawn":
        argv = [sys.executable, "-c", "pass"]
        return os.posix_spawn(sys.executable, argv, os.environ)
    if mode == "fork":
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            os._exit(0)
        return pid
    return None


async def window(mode: str) -> tuple[float, float]:
    """The largest lateness of a 1 ms sleep in a 100 ms window around ``start(mode)``,
    and the loop thread's CPU time in that call (both in ms)."""
    late: list[float] = []
    done = False

    async def ticker() -> None:
        while not done:
            t = time.perf_counter()
            await trio.sleep(0.001)
            late.append(time.perf_counter() - t - 0.001)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ticker)
        await trio.sleep(0.05)
        before = len(late)
        cpu0 = time.thread_time()
        pid = start(mode)
        cpu = time.thread_time() - cpu0
        await trio.sleep(0.05)
        done = True
    if pid is not None:
        await trio.to_thread.run_sync(os.waitpid, pid, 0)  # reaped outside the window
    return max(late[before:], default=0.0) * 1000, cpu * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=300, help="resident memory to hold, in MiB")
    ap.add_argument("--rounds", type=int, default=20, help="windows per mode")
    ap.add_argument("--quick", action="store_true", help="60 MiB, 5 rounds")
    args = ap.parse_args()
    exit_on_sigterm()
    if args.quick:
        args.mib, args.rounds = 60, 5
    model = []
    while resident_mib() < args.mib:  # ~260 bytes per entry: small objects, as the model is
        model.extend({"id": i, "name": str(i), "qty": (i, i + 1)} for i in range(100_000))
    late: dict[str, list[float]] = {m: [] for m in MODES}
    cpu: dict[str, list[float]] = {m: [] for m in MODES}

    async def run() -> None:
        for _ in range(args.rounds):
            for mode in MODES:
                lateness, used = await window(mode)
                late[mode].append(lateness)
                cpu[mode].append(used)

    load = os.getloadavg()[0]
    trio.run(run)

    def q(values: list[float], p: float) -> float:
        return round(sorted(values)[min(len(values) - 1, int(p * len(values)))], 2)

    res = {
        "resident_mib": round(resident_mib(), 1),
        "objects": len(model),
        "rounds": args.rounds,
        "load_before": round(load, 2),
        "load_after": round(os.getloadavg()[0], 2),
        **{
            mode: {
                "window_late_ms_median": round(statistics.median(late[mode]), 2),
                "window_late_ms_p90": q(late[mode], 0.9),
                "window_late_ms_max": round(max(late[mode]), 2),
                "call_cpu_ms_median": round(statistics.median(cpu[mode]), 3),
                "call_cpu_ms_max": round(max(cpu[mode]), 3),
            }
            for mode in MODES
        },
        "quick": args.quick,
        "targets": {"spawn.call_cpu_ms_max": 20},
    }
    print(res, flush=True)
    save(result_name("snapshot_pause", args.quick), res)


if __name__ == "__main__":
    main()
