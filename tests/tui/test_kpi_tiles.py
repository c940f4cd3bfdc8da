"""The dashboard's KPI tiles: each shows its window, and a click or Enter opens the
explanation panel with the formula, numerator and denominator the daemon reported."""

from __future__ import annotations

import pytest
from test_live import until
from textual.widgets import DataTable

from backorder.tui.app import BackorderApp
from backorder.tui.widgets import TILES, KpiBar, KpiExplain

pytestmark = pytest.mark.asyncio


def rows(screen: KpiExplain) -> list[list[str]]:
    table = screen.query_one("#kpi-windows", DataTable)
    return [[str(c) for c in table.get_row(key)] for key in table.rows]


async def test_tiles_show_the_window_and_explain_themselves_on_click_and_enter(site):
    with site.client() as c:
        submit = c.call("order.submit", channel="web", external_id="K-1", lines=[{"sku": "SPROCKET", "qty": 1}])
        assert submit["status"] == "backordered"
        stats = c.call("stats")
    app = BackorderApp(str(site.socket))
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: app.loaded, what="first load")
        await pilot.pause()
        bar = app.screen.query_one(KpiBar)
        text = str(bar.render())
        for _name, label in TILES:
            assert f"{label} 7d " in text
        # a click on the "Lead" tile (content offset + the bar's left padding of 1)
        start, _end = bar._spans[2]
        await pilot.click(KpiBar, offset=(start + 2, 0))
        await until(pilot, lambda: isinstance(app.screen, KpiExplain), what="explanation panel")
        panel = app.screen
        assert panel.kpi_name == "reorder_lead_time_hours"
        lead = stats["kpis"]["reorder_lead_time_hours"]
        assert lead["formula"] in str(panel.query_one("#kpi-formula").render())
        shown = rows(panel)
        windows = [r for r in shown if not r[0].startswith(" ")]
        assert [r[0] for r in windows] == ["7d", "30d", "all"]
        for row, w in zip(windows, lead["windows"], strict=True):
            assert row[2:4] == [f"{w['numerator']:,}", f"{w['denominator']:,}"]
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, KpiExplain), what="panel closed")

        # from the keyboard: focus the bar, move to "At order", Enter
        bar.focus()
        await pilot.press("right")
        await pilot.pause()
        assert bar.selected == 3  # from Lead, the last click
        await pilot.press("left", "left", "enter")
        await until(pilot, lambda: isinstance(app.screen, KpiExplain), what="explanation panel")
        panel = app.screen
        assert panel.kpi_name == "unit_fill_rate_at_order"
        at_order = stats["kpis"]["unit_fill_rate_at_order"]
        assert "first served" in str(panel.query_one("#kpi-help").render())
        all_window = next(r for r in rows(panel) if r[0] == "all")
        w = at_order["windows"][2]
        assert all_window[2:4] == [f"{w['numerator']:,}", f"{w['denominator']:,}"]
        assert w["denominator"] > w["numerator"] > 0  # the seeded site ordered more than it had
        await pilot.press("enter")
        await until(pilot, lambda: not isinstance(app.screen, KpiExplain), what="panel closed")
