"""The console attached to a policy lab's daemon while the lab plays its site: the lab's
daemon is an ordinary stepped-clock daemon, so the console loads and follows it."""

from __future__ import annotations

import threading

import pytest
from test_live import until

from backorder.lab import policies
from backorder.lab.driver import Driver, RunInfo, stop
from backorder.lab.generator import ScenarioSpec, Site
from backorder.tui.app import BackorderApp

pytestmark = pytest.mark.asyncio


async def test_the_console_follows_a_lab_run(tmp_path):
    site = Site.generate(ScenarioSpec(skus=40, days=30, warmup_days=7, seed=4))
    started: list[RunInfo] = []
    finished = threading.Event()
    failure: list[BaseException] = []
    ready = threading.Event()
    seen = threading.Event()  # the console saw the orders: the daemon may stop

    def on_start(info: RunInfo) -> None:
        started.append(info)
        ready.wait(60)  # the console attaches before the site is played

    def play() -> None:
        try:
            info = Driver(site, policies.parse(["static-7"])[0], tmp_path, on_start=on_start).run()
            # on a busy machine the site can be played before the console's next refresh:
            # stopping then would close its connection before it saw the orders
            seen.wait(180)
            stop(info)
        except BaseException as exc:  # reported by the test, not lost in the thread
            failure.append(exc)
        finally:
            finished.set()

    thread = threading.Thread(target=play, daemon=True)
    thread.start()
    try:
        while not started and not finished.is_set():  # the daemon serving, or the run failed
            finished.wait(0.05)
        assert started, failure
        app = BackorderApp(started[0].socket)
        async with app.run_test(size=(160, 48)) as pilot:
            await until(pilot, lambda: app.loaded, timeout=30, what="first load")
            ready.set()
            await until(
                pilot,
                lambda: app.live.stats is not None and app.live.stats["counts"]["orders"] > 100,
                timeout=120,
                what="the lab's orders in the console",
            )
    finally:
        ready.set()
        seen.set()
        thread.join(300)
    assert not failure, failure
