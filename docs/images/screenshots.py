"""Re-create the README's console screenshots from a demo site (SVG, exported by Textual).

    .venv/bin/python docs/images/screenshots.py

Runs the demo site (a real daemon and the simulated warehouse) for a few seconds behind
the console, then saves the dashboard and the SKU screen of the SKU with most lines waiting.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import tempfile
from pathlib import Path

from backorder.demo import DemoSite
from backorder.tui.app import BackorderApp

HERE = Path(__file__).parent
SIZE = (140, 40)


async def shoot(site: DemoSite) -> None:
    app = BackorderApp(str(site.socket))
    app.title = "backorder demo"
    async with app.run_test(size=SIZE) as pilot:
        while not app.loaded:
            await pilot.pause(0.1)
        await pilot.pause(12)  # let backorders form, reorders go out, receipts come in
        (HERE / "dashboard.svg").write_text(app.export_screenshot(title="backorder — dashboard"))
        rows = app.live.rows
        sku = max(rows, key=lambda s: (rows[s]["waiting_lines"], rows[s]["backordered"], s))
        await app.open_sku(sku)
        for _ in range(50):
            await pilot.pause(0.1)
            if app.screen.query_one("#waiting").row_count:
                break
        await pilot.pause(0.5)
        (HERE / "sku.svg").write_text(app.export_screenshot(title=f"backorder — SKU {sku}"))


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bo-shots-"))
    sockdir = Path(tempfile.mkdtemp(prefix="bo", dir="/tmp"))
    site = DemoSite(tmp, sockdir, skus=200, speed=3600.0, rng=random.Random(42))
    try:
        site.start()
        asyncio.run(shoot(site))
    finally:
        site.stop()
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(sockdir, ignore_errors=True)


if __name__ == "__main__":
    main()
