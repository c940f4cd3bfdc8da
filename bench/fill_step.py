"""The parts of bench/fill.py's receipt, in process, on their own: the SKU actor's step
(decide, encode and check, apply, queue the journal rows) and the commit of those rows;
then the order actor's shipments for the N orders served (in ``Settled`` chunks, as the
daemon tells it) and the commit of those.

N one-line orders of one unit of HOT wait (no stock); then one receipt of N units against
its purchase order. Timed: the step and the shipments (wall and CPU time of this process,
so the figure on a machine shared with other work says more than bench/fill.py's wall
time) and the journal's commit of what each queued (SQLite, synchronous=FULL, on this
thread). The daemon's GC settings are used (frozen after the set-up, threshold 100,000).

    python bench/fill_step.py [--lines 100000] [--repeat 3] [--quick]
"""

from __future__ import annotations

import argparse
import gc
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import msgspec
from common import exit_on_sigterm, result_name, save

from backorder import protocol as p
from backorder.actors import order_rules, sku_rules
from backorder.actors.engine import Engine
from backorder.actors.messages import SETTLED_CHUNK
from backorder.config.settings import Settings
from backorder.daemon.journal import Journal

NOW = 1.75e9


class FixedClock:
    def now(self) -> float:
        return NOW


def one_fill(n: int) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="bofill"))
    journal = Journal(folder / "j.db")
    try:
        journal.open()
        engine = Engine(msgspec.convert({}, Settings), journal, FixedClock())  # type: ignore[arg-type]
        w, emit = engine.world, engine.emit
        s = w.sku("HOT")
        sku_rules.configure(w, s, {"reorder_point": 0, "order_up_to": 2 * n}, emit, NOW)
        for i in range(n):
            req = p.decode_request(
                msgspec.json.encode(
                    {
                        "op": "order.submit",
                        "channel": "bench",
                        "external_id": f"h{i}",
                        "lines": [{"sku": "HOT", "qty": 1}],
                    }
                )
            )
            order_rules.submit(w, req, emit, NOW)
            sku_rules.settle(w, s, emit, NOW)
        journal._commit(journal._pending, links=journal._links)  # the set-up, durable
        journal._pending, journal._links = [], []
        (po,) = s.inbound
        gc.collect()
        gc.freeze()
        gc.set_threshold(100_000, 50, 100)  # as the daemon runs (daemon/recovery.py)
        t0, c0 = time.perf_counter(), time.process_time()
        allocs = sku_rules.record_receipt(w, s, sku_rules.match_receipt(w, s, n, po, NOW), emit, NOW)
        step_s, step_cpu = time.perf_counter() - t0, time.process_time() - c0
        rows, links = journal._pending, journal._links
        t0 = time.perf_counter()
        journal._commit(rows, links=links)
        commit_s = time.perf_counter() - t0
        if len(allocs) != n or s.backordered:
            raise SystemExit(f"the receipt allocated {len(allocs)} lines, {s.backordered} units still wait")
        journal._pending, journal._links = [], []
        served = [w.orders[oid] for oid in dict.fromkeys(a.order_id for a in allocs)]
        t0, c0 = time.perf_counter(), time.process_time()
        for start in range(0, len(served), SETTLED_CHUNK):  # the order actor, one Settled at a time
            order_rules.settle_orders(w, served[start : start + SETTLED_CHUNK], emit, NOW)
        ship_s, ship_cpu = time.perf_counter() - t0, time.process_time() - c0
        ship_rows, ship_links = journal._pending, journal._links
        t0 = time.perf_counter()
        journal._commit(ship_rows, links=ship_links)
        ship_commit_s = time.perf_counter() - t0
        if len(w.shipments) != n:
            raise SystemExit(f"{len(w.shipments)} shipments for {n} orders served")
        return {
            "step_s": step_s,
            "step_cpu_s": step_cpu,
            "commit_s": commit_s,
            "rows": len(rows),
            "bytes": sum(len(r[7]) for r in rows),
            "shipments_s": ship_s,
            "shipments_cpu_s": ship_cpu,
            "shipments_commit_s": ship_commit_s,
            "shipment_rows": len(ship_rows),
            "shipment_bytes": sum(len(r[7]) for r in ship_rows),
        }
    finally:
        gc.unfreeze()
        journal.close()
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="10x fewer lines, for a smoke test")
    args = ap.parse_args()
    exit_on_sigterm()
    n = args.lines // 10 if args.quick else args.lines
    runs = [one_fill(n) for _ in range(args.repeat)]
    res: dict = {"waiting_lines": n, "repeat": args.repeat, "quick": args.quick}
    for key in ("step_s", "step_cpu_s", "commit_s", "shipments_s", "shipments_cpu_s", "shipments_commit_s"):
        values = [r[key] for r in runs]
        res[key] = round(statistics.median(values), 3)
        res[f"{key}_range"] = [round(min(values), 3), round(max(values), 3)]
    res["journal_rows"] = runs[0]["rows"]
    res["journal_bytes"] = runs[0]["bytes"]
    res["shipment_rows"] = runs[0]["shipment_rows"]
    res["shipment_bytes"] = runs[0]["shipment_bytes"]
    save(result_name("fill_step", args.quick), res)


if __name__ == "__main__":
    main()
