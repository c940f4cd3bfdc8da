"""Order data is shown as it is, never read as markup: SKUs, account names and order
numbers such as ``x[/]``, ``[bold]`` or ``[link=...]`` appear literally on the dashboard,
the order, intake and notifications screens and in notifications, and crash nothing."""

from __future__ import annotations

import pytest
from test_live import until
from textual.widgets import DataTable, Static
from tui_support import SITE, csv_order

from backorder.tui.app import BackorderApp

pytestmark = pytest.mark.asyncio

SKU = "x[/]"
SKU2 = "[bold]BIG[/bold]"
ACCOUNT = "[link=https://evil.example]acme[/link]"
NUMBER = "[red]#1[/]"


def cell(app, table: str, row: str, column: str) -> str:
    return str(app.screen.query_one(table, DataTable).get_cell(row, column))


def screen_text(app) -> str:
    """What the terminal shows, rendered (a markup error would raise here)."""
    return app.export_screenshot().replace("&#160;", " ")


@pytest.fixture
def hostile_site(make_daemon):
    d = make_daemon(SITE)
    with d.client() as c:
        for sku in (SKU, SKU2):
            c.call("sku.configure", sku=sku)
        d.order_id = c.call(
            "order.submit",
            channel="web",
            account=ACCOUNT,
            external_id="H-1",
            order_number=NUMBER,
            customer={"name": "[i]Eve[/i]"},
            lines=[{"sku": SKU, "qty": 2}, {"sku": SKU2, "qty": 1}],
        )["order_id"]
        # a delivery from a source whose account name is markup, naming an unknown SKU:
        # a dead letter quoting both
        c.call("order.ingest", channel="csv", account="x[/]", body=csv_order("H-2", "[/]oops", "1", "1.00"))
    return d


async def test_markup_in_order_data_is_shown_literally_everywhere(hostile_site):
    app = BackorderApp(str(hostile_site.socket))
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: app.loaded, what="first load")
        await until(pilot, lambda: SKU in app.screen.shown and SKU2 in app.screen.shown, what="the SKU rows")
        assert cell(app, "#skus", SKU, "sku") == SKU
        assert cell(app, "#skus", SKU2, "sku") == SKU2
        await pilot.press("s")  # a re-sort reads the SKU cells back
        await pilot.pause()
        shown = screen_text(app)
        assert SKU in shown and "[bold]BIG[/bold]" in shown

        await pilot.press("o")
        await until(pilot, lambda: getattr(app.screen, "NAME", "") == "order", what="order screen")
        await app.screen.show(hostile_site.order_id)
        await pilot.pause()
        lines = app.screen.query_one("#lines", DataTable)
        assert [str(lines.get_row_at(i)[1]) for i in range(lines.row_count)] == [SKU, SKU2]
        head = str(app.screen.query_one("#order-head", Static).render())
        assert NUMBER in head and ACCOUNT in head
        shown = screen_text(app)
        assert SKU in shown and NUMBER in shown

        lines.focus()  # out of the search field, so the next key is a screen key
        await pilot.press("i")
        await until(pilot, lambda: getattr(app.screen, "NAME", "") == "intake", what="intake screen")
        await until(pilot, lambda: len(app.screen.letters) == 1, what="the dead letter")
        assert cell(app, "#sources", "csv/x[/]", "Source") == "csv/x[/]"
        (lid,) = app.screen.letters
        assert "[/]oops" in str(app.screen.query_one("#letter-detail", Static).render())
        shown = screen_text(app)
        assert "csv/x[/]" in shown and "[/]oops" in shown

        # notifications quote the daemon's messages, which quote order data: from any
        # screen they are plain text
        app.screen.notify(f"unknown_sku: no SKU {SKU} [link=x]", severity="error")
        await pilot.pause()
        (note,) = list(app._notifications)
        assert (note.message, note.markup) == (f"unknown_sku: no SKU {SKU} [link=x]", False)
        screen_text(app)
