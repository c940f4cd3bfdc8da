"""A screen's table refilled by a refresh: the same rows change nothing (the cursor stays,
the columns keep the widths of their cells), new rows keep the cursor on its row."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from rich.text import Text
from textual.app import App, ComposeResult

from backorder.tui.widgets import PlainTable

pytestmark = pytest.mark.asyncio

ROWS = [
    (("TR-000002", "transfer", Text("OVERDUE", style="bold red")), "TR-000002"),
    (("TR-000003", "transfer", ""), "TR-000003"),
]


class OneTable(App):
    def compose(self) -> ComposeResult:
        yield PlainTable(id="t", cursor_type="row")

    def on_mount(self) -> None:
        t = self.query_one(PlainTable)
        for label in ("Request", "Kind", ""):
            t.add_column(label, key=label)
        t.show_rows(ROWS)


@asynccontextmanager
async def rows_shown() -> AsyncIterator[tuple]:
    """The app running, its table showing ROWS and measured."""
    app = OneTable()
    async with app.run_test() as pilot:
        await pilot.pause()
        yield pilot, app.query_one(PlainTable)


def widths(t: PlainTable) -> list[int]:
    return [c.get_render_width(t) for c in t.ordered_columns]


async def test_the_same_rows_again_leave_the_table_as_it_is():
    async with rows_shown() as (pilot, t):
        t.move_cursor(row=1)
        sized = widths(t)
        assert sized[0] > len("Request") + 2  # sized to "TR-000002", not to the header
        t.show_rows(list(ROWS))
        # nothing was cleared: no pending re-measure, the cursor did not move
        assert not t._new_rows and not t._require_update_dimensions
        assert widths(t) == sized and t.cursor_row == 1


async def test_a_style_change_alone_is_a_change():
    async with rows_shown() as (pilot, t):
        calm = [(("TR-000002", "transfer", Text("OVERDUE")), "TR-000002"), ROWS[1]]
        t.show_rows(calm)
        assert t.row_count == 2
        assert str(t.get_cell("TR-000002", "").style) == ""


async def test_new_rows_keep_the_cursor_on_its_row():
    async with rows_shown() as (pilot, t):
        t.move_cursor(row=1)
        t.show_rows([(("TR-000001", "po", ""), "TR-000001"), *ROWS])
        await pilot.pause()
        assert t.row_count == 3
        assert t.coordinate_to_cell_key(t.cursor_coordinate).row_key.value == "TR-000003"


async def test_rows_added_by_hand_are_not_mistaken_for_the_shown_ones():
    async with rows_shown() as (pilot, t):
        t.add_row("TR-000009", "po", "", key="TR-000009")
        t.show_rows(ROWS)
        await pilot.pause()
        assert t.row_count == 2
