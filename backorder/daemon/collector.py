"""Garbage collection for a heap of long-lived model objects: small young collections,
and whatever survives one is frozen (never scanned again).

Almost everything the daemon allocates either dies at once (freed by its reference
count) or lives as long as its order (the model: orders, lines, promises, shipments,
queue entries). CPython's collector rescans survivors in the older generations again
and again, and every collection is a pause of the trio loop proportional to the objects
it scans. With the old thresholds (100,000 young objects) each young collection scanned
about 100,000 model objects that all survived: a 40-50 ms (CPU) stall every ~2 s at 2,000
orders/s (bench/latency.py), which was the p99. An older-generation pass would scan
every order since the start (seconds).

So: a young collection every ``YOUNG`` tracked allocations (a few ms), then ``gc.freeze()``
moves its survivors (and anything older that is not frozen yet) to the permanent
generation, which no collection scans. Each object is scanned once, in its first young
collection. The price: a reference cycle that is still alive at its first young
collection and becomes garbage later is never reclaimed (an object freed by its
reference count always is, frozen or not). None was found: after runs of
bench/latency.py (12,000-40,000 orders), unfreezing and collecting everything found no
garbage (README, "The p99's tail").
"""

from __future__ import annotations

import gc
import time

YOUNG = 5_000  # tracked allocations between young collections: ~3 ms of scanning each (measured)


class Collector:
    """Installs the policy (once per process) and keeps the pause figures for ``health``."""

    def __init__(self) -> None:
        self.collections = 0
        self.pause_s = 0.0  # the last collection, wall time
        self.pause_max_s = 0.0
        self.pause_total_s = 0.0
        # the collecting thread's CPU time: on a loaded machine the wall time also counts
        # waiting for a core
        self.pause_cpu_max_s = 0.0
        self._started = self._started_cpu = 0.0
        self.installed = False

    def install(self, young: int = YOUNG) -> None:
        """Collect and freeze what exists now (what recovery built), then collect young
        objects every ``young`` allocations and freeze their survivors."""
        gc.collect()
        gc.freeze()
        # Older-generation thresholds hardly matter: their generations are kept empty, so
        # an older pass scans only the young objects too.
        gc.set_threshold(young, 10, 10)
        if not self.installed:
            gc.callbacks.append(self._callback)
            self.installed = True
        gc.enable()

    def uninstall(self) -> None:
        """Stop freezing survivors (the thresholds stay as they are)."""
        if self.installed:
            gc.callbacks.remove(self._callback)
            self.installed = False

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started, self._started_cpu = time.perf_counter(), time.thread_time()
            return
        gc.freeze()  # the survivors of this collection: long-lived, never scanned again
        pause = time.perf_counter() - self._started
        self.pause_cpu_max_s = max(self.pause_cpu_max_s, time.thread_time() - self._started_cpu)
        self.collections += 1
        self.pause_s = pause
        self.pause_total_s += pause
        self.pause_max_s = max(self.pause_max_s, pause)

    def statistics(self) -> dict:
        young, _older, _oldest = gc.get_threshold()
        return {
            "collections": self.collections,
            "young_threshold": young,
            "pause_ms": round(self.pause_s * 1000, 3),
            "pause_max_ms": round(self.pause_max_s * 1000, 3),
            "pause_total_ms": round(self.pause_total_s * 1000, 1),
            "pause_cpu_max_ms": round(self.pause_cpu_max_s * 1000, 3),
            # not gc.get_freeze_count(): it walks every frozen object (the whole model)
        }


COLLECTOR = Collector()  # the process's collector is one: so is the policy
