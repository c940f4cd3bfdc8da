"""Bench only: the daemon's long trio loop steps, seen from inside its loop.

A benchmark that wants them puts this folder first on the daemon's ``PYTHONPATH`` and
names a file in ``BENCH_LOOP_STEPS`` (``bench/planner.py`` does): Python imports this
module at start-up, and it wraps ``trio.run`` so that the daemon's loop runs with an
``Instrument`` that times every task step, in wall time and in the loop thread's CPU
time, and writes each step over ``LONG_S`` in either to that file, one line each:
``<unix time at its end> <wall ms> <cpu ms> <task name>``.

Why: a read's reply latency, seen by a client, is what the issue is about, but on a
machine shared by several engineers it swings with everyone's load; a step's CPU time
is what the loop itself spent without yielding, and load barely moves it. The variable
is taken out of the environment here, so the processes the daemon starts (the planner
worker, the snapshot child) do not time themselves. The product code knows nothing of it.
"""

from __future__ import annotations

import os

_PATH = os.environ.pop("BENCH_LOOP_STEPS", None)
LONG_S = 0.002

if _PATH:
    import time

    import trio

    class LoopSteps(trio.abc.Instrument):
        def __init__(self, path: str) -> None:
            self.out = open(path, "a", buffering=1)  # for the process's life: closed at its exit
            self.wall = self.cpu = 0.0

        def before_task_step(self, task) -> None:
            self.wall = time.perf_counter()
            self.cpu = time.thread_time()

        def after_task_step(self, task) -> None:
            wall = time.perf_counter() - self.wall
            cpu = time.thread_time() - self.cpu
            if wall > LONG_S or cpu > LONG_S:
                self.out.write(f"{time.time():.4f} {wall * 1000:.3f} {cpu * 1000:.3f} {task.name}\n")

    _run = trio.run

    def _run_with_steps(*args, instruments=(), **kwargs):
        return _run(*args, instruments=(*instruments, LoopSteps(_PATH)), **kwargs)

    trio.run = _run_with_steps
