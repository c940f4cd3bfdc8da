"""The demo's stories: each named on the command line, told in one line, and acting at its
known moment (the flash sale moves demand onto the hottest SKUs and back)."""

from __future__ import annotations

import datetime as dt
import random
import subprocess
import sys
from types import SimpleNamespace

from backorder import demo, demo_scenarios


def test_every_story_is_a_choice_of_the_command_and_told_in_one_line():
    help_text = subprocess.run(
        [sys.executable, "-m", "backorder", "demo", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for name in demo_scenarios.SCENARIOS:
        assert name in help_text
        line = demo_scenarios.make(name).line
        assert line and "\n" not in line and len(line) < 120
    bad = subprocess.run(
        [sys.executable, "-m", "backorder", "demo", "--scenario", "nope"], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


def test_the_flash_sale_runs_from_08_to_16_on_the_hottest_skus_then_demand_goes_back():
    items = demo.make_catalog(20, 3600.0, random.Random(3))
    weights = [it.weight for it in items]
    driver = SimpleNamespace(items=items, feeds=SimpleNamespace(weights=list(weights)))
    sale = demo_scenarios.make("flash-sale")
    t0 = dt.datetime(2026, 1, 5, 20, tzinfo=dt.UTC)
    sale.step(driver, t0)  # type: ignore[arg-type]
    assert sale.orders_factor() == 1
    sale.step(driver, t0 + dt.timedelta(hours=13))  # type: ignore[arg-type]
    assert sale.orders_factor() == demo_scenarios.SALE_FACTOR
    hot = sorted(range(len(weights)), key=lambda i: -weights[i])[: demo_scenarios.SALE_SKUS]
    share = sum(driver.feeds.weights[i] for i in hot) / sum(driver.feeds.weights)
    assert share > 0.6
    # the demo's 3PL stocks exactly the sale SKUs; the site's pickers are capped in this story only
    assert demo_scenarios.sale_skus(items) == [items[i].sku for i in hot]
    assert sale.pick_capacity() == demo_scenarios.SALE_PICKS
    assert demo_scenarios.make("normal-week").pick_capacity() is None
    sale.step(driver, t0 + dt.timedelta(hours=21))  # type: ignore[arg-type]
    assert sale.orders_factor() == 1 and driver.feeds.weights == weights
