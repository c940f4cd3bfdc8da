"""``backorder demo``: time to the first screen, and the fill-rate tile over the first minute.

Runs ``backorder demo --plain`` ``--repeat`` times (default 3; 200 SKUs, 10 days of history,
the default speed) for ``--duration`` real seconds each. Start-up is timed from the spawn
to the line the demo prints where the console would open (the site's history played, the
daemon restarted on it, the feeds started); the fill tile is the dashboard's figure
(``stats.fulfillment_rate``: backordered lines filled within 48 h, since the journal began)
on every summary line (one every 2 s): its value at the first line, its lowest over the
run, and the share of lines at or above the 95 % target.

    python bench/demo_startup.py [--repeat 3] [--duration 60] [--quick]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time

from common import exit_on_sigterm, result_name, save

TARGET = 0.95


def one_run(duration: float, skus: int, history: int) -> dict:
    cmd = [sys.executable, "-m", "backorder", "demo", "--plain", "--duration", str(duration)]
    cmd += ["--skus", str(skus), "--history", str(history)]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    first_screen = None
    fills: list[float] = []
    tail: list[str] = []
    for line in proc.stdout:
        tail = (tail + [line])[-20:]
        if first_screen is None and line.startswith("backorder demo: ") and " SKUs, " in line:
            first_screen = time.monotonic() - t0
        m = re.search(r" fill=([\d.]+) %", line)
        if line.startswith("[") and m:
            fills.append(round(float(m.group(1)) / 100, 4))
    rc = proc.wait(60)
    if rc != 0 or first_screen is None or not fills:
        raise SystemExit(f"demo run failed (rc {rc}):\n{''.join(tail)}")
    return {
        "startup_s": round(first_screen, 2),
        "fill_first": fills[0],
        "fill_min": min(fills),
        "fill_last": fills[-1],
        "lines_at_target": round(sum(f >= TARGET for f in fills) / len(fills), 3),
        "lines": len(fills),
    }


def main() -> None:
    exit_on_sigterm()
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--skus", type=int, default=200)
    ap.add_argument("--history", type=int, default=10)
    ap.add_argument("--quick", action="store_true", help="3 runs of 12 s")
    a = ap.parse_args()
    if a.quick:
        a.duration = 12.0
    runs = [one_run(a.duration, a.skus, a.history) for _ in range(a.repeat)]
    save(
        result_name("demo_startup", a.quick),
        {
            "repeat": a.repeat,
            "duration_s": a.duration,
            "skus": a.skus,
            "history_days": a.history,
            "startup_median_s": statistics.median(r["startup_s"] for r in runs),
            "startup_max_s": max(r["startup_s"] for r in runs),
            "fill_first_min": min(r["fill_first"] for r in runs),
            "fill_min": min(r["fill_min"] for r in runs),
            "runs": runs,
        },
    )


if __name__ == "__main__":
    main()
