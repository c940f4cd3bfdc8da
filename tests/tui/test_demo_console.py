"""The demo site seen through the console: within seconds, backorders form, reorders are
raised, stock arrives and orders ship — all visible on the dashboard."""

from __future__ import annotations

import random
import re
import shutil
import tempfile
from pathlib import Path

import pytest
from test_live import until
from textual.widgets import DataTable

from backorder.demo import DemoSite
from backorder.tui.app import BackorderApp

pytestmark = pytest.mark.asyncio


@pytest.fixture
def demo_site(tmp_path):
    sockdir = Path(tempfile.mkdtemp(prefix="bo", dir="/tmp"))
    # 4 simulated hours per real second: a one-day transfer arrives within ~10 s
    site = DemoSite(tmp_path, sockdir, skus=40, speed=14400.0, rng=random.Random(7))
    site.start()
    try:
        yield site
    finally:
        site.stop()
        shutil.rmtree(sockdir, ignore_errors=True)


async def test_the_demo_story_shows_on_the_dashboard(demo_site):
    app = BackorderApp(str(demo_site.socket))
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: app.loaded, what="first load")
        feed = app.screen.query_one("#feed")
        await pilot.pause()
        seeded = len(feed.lines)  # the journal's recent past: look only at what happens live

        def seen(pattern: str) -> bool:
            return any(re.search(pattern, str(line.text)) for line in feed.lines[seeded:])

        for pattern in (r"backordered O\d+", r"reorder +(PO|TR)-", r"shipped +O\d+", r"received .* \((PO|TR)-"):
            await until(pilot, lambda p=pattern: seen(p), timeout=40, what=f"a feed line like {pattern!r}")
        table = app.screen.query_one("#skus", DataTable)
        await until(pilot, lambda: table.row_count > 0, what="SKUs waiting")
        # the rows are the daemon's: every SKU shown has waiting lines there
        shown = [k.value for k in table.rows]
        assert set(shown) <= set(app.live.rows)
        assert all(app.live.rows[s]["waiting_lines"] > 0 for s in shown)
        assert app.live.stats is not None and app.live.stats["counts"]["orders"] > 0
