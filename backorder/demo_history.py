"""The demo site's past: some simulated days of history played before the demo opens.

The planner needs demand history before it can set levels (``[planner] min_history_days``),
and the KPI tiles count since the journal began, so a site that opens on an empty journal
starts red. ``backorder demo`` therefore first starts the daemon on the **stepped** clock at
``HISTORY_DAYS`` before the demo's start, plays the same site (orders, dock, pickers) in
``STEP_HOURS`` steps with ``clock.advance`` (the planner's daily run falls inside the
advances, in ``auto`` mode from its first run with enough history), then stops the daemon
and starts it again on the same journal with the **simulated** clock at the history's end:
the console opens on a site with a past and tuned levels.

History orders come in with ``order.submit`` (channel ``history``: no route, so no notice
is sent for the past, and no intake source counts them); the live site's orders come
through the intake feeds (``demo_feeds``).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from backorder.timeutil import parse_datetime

if TYPE_CHECKING:
    from backorder.demo import Driver

HISTORY_DAYS = 10
STEP_HOURS = 2
HISTORY_CHANNEL = "history"


def planner_toml() -> list[str]:
    """The planner on, daily, learning from the first week."""
    return [
        "",
        "[planner]",
        "enabled = true",
        "interval_hours = 24.0",
        "min_history_days = 7",
        "history_days = 28",
        "max_change = 1.0",
    ]


@dataclass
class HistoryResult:
    days: int
    orders: int
    planner_runs: int
    real_s: float
    end: dt.datetime


def play(
    driver: Driver, days: int = HISTORY_DAYS, step_hours: int = STEP_HOURS, ticks_per_hour: int = 5
) -> HistoryResult:
    """Play ``days`` of the site on the stepped clock through ``driver``'s connection."""
    t0 = time.monotonic()
    c = driver.c
    orders0 = driver.counts.orders
    steps = days * 24 // step_hours
    now = parse_datetime(c.call("stats")["now"])
    for _ in range(steps):
        n = sum(driver.rng.choice(driver.orders_per_tick) for _ in range(ticks_per_hour * step_hours))
        driver.submit_orders(n, channel=HISTORY_CHANNEL)
        now = parse_datetime(c.call("clock.advance", seconds=step_hours * 3600)["now"])
        driver.receive_due(now)
        driver.pick()
        if driver.rng.random() < 0.05 * step_hours:
            driver.cancel_one(now)
    runs = c.call("planner.status")["runs"]
    return HistoryResult(days, driver.counts.orders - orders0, runs, time.monotonic() - t0, now)
