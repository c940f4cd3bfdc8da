"""The dashboard lists the SKUs projected to stock out within their lead time (the
daemon's ``skus.stockout``): a count and the first SKU beside the trend on every
terminal, the list in the side panel on wide ones; a SKU that comes to be projected
appears at the next read."""

from __future__ import annotations

import pytest
from test_live import until
from textual.widgets import Label, Static

from backorder.tui.app import BackorderApp
from backorder.tui.screens import dashboard

pytestmark = pytest.mark.asyncio


def text(app, selector: str, kind) -> str:
    return str(app.screen.query_one(selector, kind).render())


async def test_the_dashboard_lists_the_skus_projected_to_stock_out(site):
    with site.client() as c:
        projected = c.call("skus.stockout")
    assert projected["total"] >= 2  # the seed leaves SKUs with more waiting than stock
    names = [s["sku"] for s in projected["skus"]]
    app = BackorderApp(str(site.socket))
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: app.screen.stockout is not None, what="skus.stockout read")
        await pilot.pause()
        panel = text(app, "#stockout", Static)
        for name in names:
            assert name in panel
        lines = [ln for ln in panel.splitlines() if ln.strip()]
        assert [ln.split()[0] for ln in lines] == names  # soonest first, as the daemon ordered them
        head = text(app, "#stockout-now", Label)
        assert f"stock-out ≤ lead time: {projected['total']}" in head and names[0] in head

        # a new SKU starts to drain below its waiting demand: listed at the next read
        with site.client() as c:
            c.call("sku.configure", sku="NEW-ONE")
            c.call("order.submit", channel="edi", external_id="S-1", lines=[{"sku": "NEW-ONE", "qty": 2}])
        app.screen.spawn(app.screen.reload, group="stockout")  # what the 30 s timer does
        await until(pilot, lambda: "NEW-ONE" in text(app, "#stockout", Static), what="the new SKU listed")
        assert f"stock-out ≤ lead time: {projected['total'] + 1}" in text(app, "#stockout-now", Label)


async def test_a_narrow_terminal_shows_the_count_without_the_side_panel(site):
    app = BackorderApp(str(site.socket))
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.screen.stockout is not None, what="skus.stockout read")
        await pilot.pause()
        assert not app.screen.query_one("#side").display
        assert "stock-out ≤ lead time:" in text(app, "#stockout-now", Label)
    assert dashboard.STOCKOUT_S >= 10  # a read that walks every SKU is never per refresh
