"""Pilot tests: the console against a real daemon process over its real socket."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest
from textual.widgets import DataTable, Input, Static, TextArea
from tui_support import read_only_site

from backorder.tui.app import BackorderApp
from backorder.tui.screens.help import HelpScreen
from backorder.tui.widgets import ConfirmScreen, ConnBanner, KpiBar, PromptScreen

pytestmark = pytest.mark.asyncio


async def until(pilot, cond, timeout: float = 10.0, what: str = "condition") -> None:
    """Let the app run until ``cond()`` holds (the daemon answers asynchronously)."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


async def open_picking(pilot) -> None:
    app = pilot.app
    await until(pilot, lambda: app.loaded, what="first load")
    await pilot.press("k")
    await until(
        pilot,
        lambda: getattr(app.screen, "NAME", "") == "picking" and "S0000001" in app.screen.shipments,
        what="picking screen",
    )


def cell(app, sku: str, column: str) -> str:
    table = app.screen.query_one("#skus", DataTable)
    return str(table.get_cell(sku, column))


async def test_dashboard_shows_what_the_daemon_reports(site):
    with site.client() as c:
        stats = c.call("stats")
        board = {r["sku"]: r for r in c.call("skus.board")["skus"]}
    app = BackorderApp(str(site.socket))
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: app.loaded, what="first load")
        await pilot.pause()
        table = app.screen.query_one("#skus", DataTable)
        assert {k.value for k in table.rows} == set(board) == {"WIDGET-RED", "GADGET-BLUE", "SPROCKET"}
        for sku, r in board.items():
            assert cell(app, sku, "on_hand") == str(r["on_hand"])
            assert cell(app, sku, "bo_units") == str(r["backordered"])
            assert cell(app, sku, "bo_lines") == str(r["waiting_lines"])
            assert cell(app, sku, "rop") == str(r["reorder_point"])
        assert cell(app, "GADGET-BLUE", "next") == "10 01-07"
        assert cell(app, "SPROCKET", "state") == "OUT"
        kpis = str(app.screen.query_one(KpiBar).render())
        k = stats["counts"]
        assert f"BO lines {k['open_backorder_lines']}" in kpis
        assert f"units waiting {k['units_waiting']}" in kpis
        assert "Accuracy 7d —" in kpis  # nothing shipped yet: no accuracy to show
        # sort from the keyboard: "s" moves to the next column, "S" reverses
        order = lambda: [r.key.value for r in table.ordered_rows]  # noqa: E731
        while app.screen.sort_key != "bo_units":
            await pilot.press("s")
        await pilot.pause()
        assert order() == ["GADGET-BLUE", "WIDGET-RED", "SPROCKET"]  # 11, 5, 5 units (ties by name)
        await pilot.press("S")
        await pilot.pause()
        assert order() == ["SPROCKET", "WIDGET-RED", "GADGET-BLUE"]
        # filter by typing
        await pilot.press("slash", "g", "a", "d")
        await pilot.pause()
        assert [r.key.value for r in table.ordered_rows] == ["GADGET-BLUE"]
        await pilot.press("escape")
        await pilot.pause()
        assert table.row_count == 3


async def test_receiving_stock_in_the_daemon_updates_the_sku_row(site):
    app = BackorderApp(str(site.socket))
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.loaded, what="first load")
        assert cell(app, "GADGET-BLUE", "on_hand") == "0"
        assert cell(app, "GADGET-BLUE", "bo_units") == "11"
        with site.client() as c:
            await asyncio.to_thread(c.call, "stock.receive", sku="GADGET-BLUE", qty=10, reference="TR-000002")
            expected = (await asyncio.to_thread(c.call, "skus.board", skus=["GADGET-BLUE"]))["skus"][0]
        # 9 units fill the marketplace order, 1 the phone order's line, which still waits for 1
        assert (expected["on_hand"], expected["backordered"], expected["waiting_lines"]) == (10, 1, 1)
        await until(pilot, lambda: cell(app, "GADGET-BLUE", "on_hand") == "10", what="row update")
        assert cell(app, "GADGET-BLUE", "bo_units") == "1"
        assert cell(app, "GADGET-BLUE", "bo_lines") == "1"
        # the receipt shows in the feed
        feed = app.screen.query_one("#feed")
        await until(
            pilot, lambda: any("received   10 x GADGET-BLUE" in str(line.text) for line in feed.lines), what="feed line"
        )
        # a SKU whose last waiting line is filled leaves the table
        with site.client() as c:
            await asyncio.to_thread(c.call, "stock.receive", sku="GADGET-BLUE", qty=1)
        table = app.screen.query_one("#skus", DataTable)
        await until(pilot, lambda: "GADGET-BLUE" not in {k.value for k in table.rows}, what="row removal")


async def test_editing_the_reorder_point_in_the_form_changes_it_in_the_daemon(site):
    app = BackorderApp(str(site.socket))
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.loaded, what="first load")
        table = app.screen.query_one("#skus", DataTable)
        table.move_cursor(row=table.get_row_index("WIDGET-RED"))
        await pilot.press("enter")
        await until(pilot, lambda: getattr(app.screen, "sku", None) == "WIDGET-RED", what="SKU screen")
        rop = app.screen.query_one("#f-reorder_point", Input)
        await until(pilot, lambda: rop.value == "5", what="policy form")
        # an order-up-to below the reorder point is refused by the form; nothing is sent
        rop.focus()
        rop.value = ""
        await pilot.press("2", "5")
        await pilot.press("ctrl+s")
        msg = app.screen.query_one("#form-msg", Static)
        assert "Order up to must be ≥ reorder point (25)" in str(msg.render())
        assert not isinstance(app.screen, ConfirmScreen)
        rop.value = ""
        await pilot.press("8", "ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirmation")
        await pilot.press("y")
        with site.client() as c:
            await until(
                pilot,
                lambda: c.call("sku.get", sku="WIDGET-RED")["policy"]["reorder_point"] == 8,
                what="policy in the daemon",
            )
            assert c.call("sku.get", sku="WIDGET-RED")["policy"]["order_up_to"] == 20  # unchanged
        await until(pilot, lambda: "saved" in str(app.screen.query_one("#form-msg", Static).render()), what="saved")
        # and the dashboard row shows the new reorder point (sku_configured event -> refresh)
        await pilot.press("escape")
        await until(pilot, lambda: cell(app, "WIDGET-RED", "rop") == "8", what="row ROP")


async def test_confirming_a_pick_marks_the_order_shipped(site):
    app = BackorderApp(str(site.socket))
    async with app.run_test(size=(80, 24)) as pilot:
        await open_picking(pilot)
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirmation")
        await pilot.press("y")
        await until(pilot, lambda: not isinstance(app.screen, ConfirmScreen), what="the dialog closed")
        label = app.screen.query_one("#label", TextArea)
        await until(pilot, lambda: "^XA" in label.text, what="label text")
        with site.client() as c:
            order = c.call("order.get", order_id="O0000001")
        assert order["status"] == "shipped"
        assert order["shipments"][0]["tracking_number"] in label.text
        await until(pilot, lambda: "S0000001" not in app.screen.shipments, what="pick list update")


async def test_daemon_restart_shows_the_banner_then_live_data_again(site):
    app = BackorderApp(str(site.socket), backoff=(0.1, 0.5))
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.loaded, what="first load")
        banner = app.screen.query_one(ConnBanner)
        assert not banner.has_class("down")
        site.kill9()
        await until(pilot, lambda: banner.has_class("down"), what="banner")
        assert "disconnected — retrying" in str(banner.render())
        assert app.sub_title == "disconnected"
        loads = app.loads
        await asyncio.to_thread(site.start)
        await until(pilot, lambda: app.loads > loads and not banner.has_class("down"), what="reconnect")
        # live again: a receipt after the restart reaches the row
        with site.client() as c:
            await asyncio.to_thread(c.call, "stock.receive", sku="SPROCKET", qty=2)
        await until(pilot, lambda: cell(app, "SPROCKET", "on_hand") == "2", what="row update after restart")


async def test_a_silent_daemon_never_freezes_the_console(site):
    """SIGSTOP the real daemon: requests time out, the banner says so, keys still work;
    SIGCONT: the replies come and the banner goes."""
    app = BackorderApp(str(site.socket), timeout=5.0)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.loaded, what="first load")
        site.proc.send_signal(signal.SIGSTOP)
        try:
            await pilot.press("p")  # opening procurement asks the daemon: no answer comes
            # a console that waited on the daemon would take the keys only after the request
            # timed out (and said so): the help screen opens while nothing has timed out yet
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            assert app.conn.state.connected and not app.conn.state.stalled
            await pilot.press("escape")
            banner = app.screen.query_one(ConnBanner)
            await until(pilot, lambda: banner.has_class("down"), what="banner")
            assert "not answering" in str(banner.render())
        finally:
            site.proc.send_signal(signal.SIGCONT)
        await until(pilot, lambda: not banner.has_class("down"), what="banner gone")
        await until(
            pilot,
            lambda: app.screen.query_one("#requests", DataTable).row_count == 5,
            what="procurement after the daemon came back",
        )


async def test_a_read_only_connection_hides_the_keys_that_change_something(make_daemon):
    """The daemon's read-only socket ([access] read_socket): health says "role": "read";
    the console hides and refuses the write keys, and shows the daemon's `forbidden`."""
    d, ro = read_only_site(make_daemon)
    app = BackorderApp(str(ro))
    async with app.run_test(size=(80, 24)) as pilot:
        await open_picking(pilot)
        assert app.read_only
        assert "confirm_pick" not in {ab.binding.action for ab in app.active_bindings.values()}
        await pilot.press("c")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        # were a write sent anyway, the daemon refuses it and the console says so
        assert await app.write("pick.confirm", shipment_id="S0000001") is None
        assert any("forbidden" in text for _style, text in app.live.feed)
        with d.client() as c:
            assert c.call("order.get", order_id="O0000001")["status"] == "picking"
        # the policy form of a SKU is read-only too
        await app.open_sku("WIDGET-RED")
        await until(pilot, lambda: getattr(app.screen, "sku", None) == "WIDGET-RED", what="SKU screen")
        assert app.screen.query_one("#f-reorder_point", Input).disabled
        assert "save" not in {ab.binding.action for ab in app.active_bindings.values()}


async def test_moving_a_date_switching_the_policy_and_finding_an_order(site):
    app = BackorderApp(str(site.socket))
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.loaded, what="first load")
        # procurement: move TR-000003 by a week
        await pilot.press("p")
        await until(
            pilot,
            lambda: getattr(app.screen, "NAME", "") == "procurement" and "TR-000003" in app.screen.requests,
            what="procurement",
        )
        table = app.screen.query_one("#requests", DataTable)
        table.move_cursor(row=table.get_row_index("TR-000003"))
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, PromptScreen), what="date prompt")
        app.screen.query_one(Input).value = "2026-01-14"
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirmation")
        await pilot.press("y")
        with site.client() as c:

            def expected(rid: str) -> str:
                reqs = c.call("procurement.list")["requests"]
                return next(r["expected_date"] for r in reqs if r["request_id"] == rid)

            await until(pilot, lambda: expected("TR-000003") == "2026-01-14", what="date moved in the daemon")
            # policy: switch to priority with a new rush weight
            await pilot.press("y")
            await until(pilot, lambda: getattr(app.screen, "policy", None) is not None, what="policy screen")
            app.screen.query_one("#w-rush", Input).value = "30"
            await pilot.press("r", "ctrl+s")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirmation")
            await pilot.press("y")
            await until(pilot, lambda: c.call("policy.get")["mode"] == "priority", what="policy in the daemon")
            assert c.call("policy.get")["weights"]["rush"] == 30.0
            # orders: find by external id, see its lines and shipments
            await pilot.press("o")
            await until(pilot, lambda: getattr(app.screen, "NAME", "") == "order", what="order screen")
            await pilot.press(*"W-1001", "enter")
            await until(pilot, lambda: app.screen.order_id == "O0000001", what="order found")
            await until(pilot, lambda: app.screen.query_one("#shipments", DataTable).row_count == 1, what="shipment")
            head = str(app.screen.query_one("#order-head", Static).render())
            assert "O0000001" in head and "picking" in head and "Ada Lovelace" in head
            # Enter on a line opens its SKU
            await pilot.press("enter")
            await until(pilot, lambda: getattr(app.screen, "sku", None) == "WIDGET-RED", what="SKU of the line")
