"""What one read of the windowed KPIs costs (``stats``, the metrics refresh, the console):
the per-day aggregates of a year of a busy site, read at its end. In process, no daemon:
the figure is the pure read ``Kpi.report``, the part that grows with history.

    python bench/kpi_report.py [--quick]

A year: 200,000 lines served (one in ten backordered, half of those filled within the
target, the rest still waiting past it), 50,000 requests closed over 20 sources, 300
open requests past their expected date.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from common import result_name, save

from backorder.actors.kpi import DAY_S, Kpi


class Req:
    """The fields the lead time reads of a request (``model.Request``)."""

    def __init__(self, i: int, ts: float) -> None:
        self.request_id = f"PO-{i:06d}"
        self.source = f"supplier:s{i % 20}"
        self.created_ts = ts
        self.expected_date = "2000-01-01"  # long past: every open one is late
        self.closed_ts = None


def build(scale: int) -> tuple[Kpi, float]:
    rnd = random.Random(7)
    k = Kpi(48)
    t0 = 1.7e9
    year = 365 * DAY_S
    for i in range(50_000 // scale):
        ts = t0 + i * year / (50_000 // scale)
        r = Req(i, ts)
        k.request_raised(r)
        k.request_received(r, ts + rnd.uniform(1, 20) * DAY_S, True)
    for i in range(300):
        k.request_raised(Req(10**6 + i, t0 + year - 30 * DAY_S))
    lines = 200_000 // scale
    for i in range(lines):
        ts = t0 + i * year / lines
        k.line_served(ts, 2, 2 if i % 10 else 1)
        if i % 10 == 0:
            k.line_backordered((f"O{i}", 1), ts, 1)
            if i % 20 == 0:
                k.line_progress((f"O{i}", 1), ts + 3600, 0)
    return k, t0 + year


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    k, now = build(10 if args.quick else 1)
    times = []
    for _ in range(5 if args.quick else 21):
        t = time.perf_counter()
        k.report(now, "2026-12-31")
        times.append((time.perf_counter() - t) * 1e3)
    save(
        result_name("kpi_report", args.quick),
        {
            "days": len(k.days),
            "lines_past_target": len(k.pending),
            "open_requests": len(k.open_requests),
            "requests_closed": len(k.leads_sorted.get("", [])),
            "median_ms": round(statistics.median(times), 2),
            "max_ms": round(max(times), 2),
        },
    )


if __name__ == "__main__":
    main()
