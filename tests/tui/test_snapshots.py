"""Snapshots (SVG) of every screen at 80x24 and 160x48: a layout regression fails here.

The data is fixed: a seeded daemon whose simulated clock stands (almost) still, so ids,
dates and waiting times are the same on every run. Animations are off. To accept an
intended change: ``pytest tests/tui/test_snapshots.py --snapshot-update`` and review the
SVGs (``__snapshots__/``) in the diff.
"""

from __future__ import annotations

import os
import pwd

import pytest
from test_live import until
from textual.widgets import DataTable

from backorder.tui import widgets
from backorder.tui.app import BackorderApp
from backorder.tui.screens import intake as intake_screen
from backorder.tui.widgets import KpiBar, KpiExplain

ME = pwd.getpwuid(os.getuid()).pw_name
SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 48), id="160x48")]


def make_app(site) -> BackorderApp:
    app = BackorderApp(str(site.socket))
    app.animation_level = "none"
    return app


async def loaded(pilot) -> None:
    await until(pilot, lambda: pilot.app.loaded, what="first load")
    feed = pilot.app.screen.query_one("#feed")
    # the feed scrolls to its end after a refresh: wait for it, or the scrollbar differs
    await until(pilot, lambda: feed.max_scroll_y > 0 and feed.scroll_y == feed.max_scroll_y, what="feed scrolled")
    await pilot.pause()


def tables_settled(pilot) -> bool:
    """Every table on the screen has sized its columns to the rows it holds and the screen
    has laid them out. A DataTable measures new rows at its next idle and then asks for a
    layout, which a loaded machine can delay past ``pilot.pause()``: the screenshot then
    shows columns as wide as their headers. (Textual keeps this pending work in private
    attributes; nothing public says it is done.)"""
    screen = pilot.app.screen
    return not (
        screen._layout_required
        or screen._repaint_required
        or screen._dirty_widgets
        or any(
            t._require_update_dimensions or t._new_rows or t._updated_cells or t._layout_required or t._repaint_required
            for t in screen.query(DataTable)
        )
    )


async def rows_in(pilot, selector: str, n: int = 1) -> None:
    await until(pilot, lambda: pilot.app.screen.query_one(selector, DataTable).row_count >= n, what=selector)
    await pilot.pause()


async def dashboard(pilot):
    await rows_in(pilot, "#skus", 3)


async def stockout_read(pilot) -> None:
    """The dashboard's skus.stockout list has come (it is read beside the rows)."""
    await until(pilot, lambda: getattr(pilot.app.screen, "stockout", None) is not None, what="skus.stockout")
    await pilot.pause()


async def sku(pilot):
    await pilot.app.open_sku("GADGET-BLUE")
    await rows_in(pilot, "#waiting", 3)
    await rows_in(pilot, "#inbound", 2)
    await rows_in(pilot, "#history", 1)


async def order(pilot):
    await pilot.press("o", *"P-5", "enter")
    await rows_in(pilot, "#lines", 2)
    await rows_in(pilot, "#audit", 3)


async def procurement(pilot):
    await pilot.press("p")
    await rows_in(pilot, "#requests", 5)


async def picking(pilot):
    await pilot.press("k")
    await rows_in(pilot, "#picks", 2)


async def policy(pilot):
    await pilot.press("y")
    await until(pilot, lambda: getattr(pilot.app.screen, "policy", None) is not None, what="policy")


async def intake(pilot):
    await pilot.press("i")
    await rows_in(pilot, "#letters", 3)
    await rows_in(pilot, "#rejections", 3)


async def notifications(pilot):
    await pilot.press("n")
    await rows_in(pilot, "#notices", 3)
    await until(pilot, lambda: pilot.app.screen.breakers, what="breakers")
    detail = pilot.app.screen.query_one("#notice-detail")  # shown (and read) on tall terminals only
    await until(pilot, lambda: not detail.has_class("tall") or "queued " in str(detail.render()), what="history")


async def help_keys(pilot):
    await pilot.press("question_mark")


async def dashboard_light(pilot):
    await pilot.press("t")
    await dashboard(pilot)


async def kpi_explain(pilot):
    await dashboard(pilot)
    pilot.app.screen.query_one(KpiBar).focus()
    await pilot.press("enter")  # the first tile: the backorder fill rate by lines
    await until(pilot, lambda: isinstance(pilot.app.screen, KpiExplain), what="explanation panel")


SCREENS = [
    dashboard,
    sku,
    order,
    procurement,
    picking,
    policy,
    intake,
    notifications,
    help_keys,
    dashboard_light,
    kpi_explain,
]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("screen", SCREENS, ids=lambda f: f.__name__)
def test_screen(snap_compare, shared_site, screen, size, monkeypatch):
    # a source's last delivery is on the daemon's wall clock: its age differs on every run
    monkeypatch.setattr(intake_screen, "since_text", lambda at: "12s" if at else "—")
    # the seed's changes are journaled as the user running the tests: a name per machine
    monkeypatch.setattr(widgets, "actor_text", lambda actor: "operator" if actor == ME else actor or "—")

    async def run_before(pilot):
        await loaded(pilot)
        await stockout_read(pilot)  # the dashboard's last read: none is in flight behind another screen
        await screen(pilot)
        await until(pilot, lambda: tables_settled(pilot), what="tables sized to their rows")
        # Paint once more now that the tables are measured: on a loaded machine the
        # screenshot otherwise showed strips painted before the columns were widened.
        pilot.app.screen.refresh(layout=True)
        for t in pilot.app.screen.query(DataTable):
            t.refresh(layout=True)
        await pilot.pause(0.2)
        await until(pilot, lambda: tables_settled(pilot), what="tables painted")

    assert snap_compare(make_app(shared_site), terminal_size=size, run_before=run_before)
