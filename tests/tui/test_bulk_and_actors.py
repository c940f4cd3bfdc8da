"""Pilot tests: a bulk action shows its count and waits for a yes before it changes
anything, and applies only the set that was counted; the timelines show who did it."""

from __future__ import annotations

import asyncio
import os
import pwd

import pytest
from test_live import until
from textual.widgets import DataTable, Input

from backorder.tui.app import BackorderApp
from backorder.tui.screens.bulk import BulkScreen
from backorder.tui.widgets import ConfirmScreen, PromptScreen

pytestmark = pytest.mark.asyncio
ME = pwd.getpwuid(os.getuid()).pw_name


async def open_bulk(pilot, sku: str, **values: str) -> None:
    app = pilot.app
    if getattr(app.screen, "sku", None) != sku:
        await app.open_sku(sku)
        await until(pilot, lambda: getattr(app.screen, "sku", None) == sku, what="SKU screen")
    await until(pilot, lambda: app.screen.query_one("#waiting", DataTable).row_count > 0, what="waiting lines")
    await pilot.press("b")
    await until(pilot, lambda: isinstance(app.screen, BulkScreen), what="bulk form")
    for key, value in values.items():
        app.screen.query_one(f"#bulk-{key}", Input).value = value
    app.screen.query_one("#bulk-reason", Input).focus()
    await pilot.press("enter")


def order_of(c, channel: str, external_id: str) -> dict:
    return c.call(
        "order.get",
        channel=channel,
        account="acme-store" if channel == "marketplace" else "default",
        external_id=external_id,
    )


async def test_a_bulk_cancel_is_counted_confirmed_then_applied(site):
    app = BackorderApp(str(site.socket))
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: app.loaded, what="first load")
        await open_bulk(pilot, "GADGET-BLUE", action="cancel", channel="marketplace", reason="supplier gone")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the count to confirm")
        with site.client() as c:
            target = order_of(c, "marketplace", "M-77")
            assert app.screen.question.startswith("Cancel 1 orders (of GADGET-BLUE, channel marketplace)?")
            assert target["order_id"] in app.screen.question
            assert target["status"] != "cancelled"  # counted, not changed
            await pilot.press("y")
            await until(pilot, lambda: order_of(c, "marketplace", "M-77")["status"] == "cancelled", what="cancelled")
            assert order_of(c, "marketplace", "M-77")["cancel_reason"] == "supplier gone"
            assert order_of(c, "phone", "P-5")["status"] != "cancelled"  # another channel: untouched


async def test_no_is_nothing_and_a_set_changed_meanwhile_is_refused(site):
    app = BackorderApp(str(site.socket))
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: app.loaded, what="first load")
        with site.client() as c:
            last = c.call("health")["journal"]["last_seq"]
            await open_bulk(pilot, "GADGET-BLUE", action="expedite", reason="")  # no reason: the form says so
            assert isinstance(app.screen, BulkScreen)
            assert "needs a reason" in str(app.screen.query_one("#bulk-msg").render())
            app.screen.query_one("#bulk-reason", Input).value = "strike"
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the count to confirm")
            await pilot.press("n")
            await until(pilot, lambda: not isinstance(app.screen, ConfirmScreen), what="dialog closed")
            assert c.call("health")["journal"]["last_seq"] == last  # no: nothing journaled

            await open_bulk(pilot, "GADGET-BLUE", action="expedite", reason="strike")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the count to confirm")
            counted = app.screen.question
            # another order starts waiting before the person says yes
            await asyncio.to_thread(
                c.call, "order.submit", channel="web", external_id="W-late", lines=[{"sku": "GADGET-BLUE", "qty": 1}]
            )
            await pilot.press("y")
            await until(
                pilot, lambda: any("bulk_changed" in line for _k, line in app.live.feed), what="bulk_changed shown"
            )
            assert counted.startswith("Expedite 2 orders")
            waiting = c.call("sku.get", sku="GADGET-BLUE")["waiting"]
            assert waiting and not any(w["expedited"] for w in waiting)  # the changed set was not touched


async def test_expedite_from_the_order_screen_and_the_timelines_show_the_actor(site):
    app = BackorderApp(str(site.socket))
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: app.loaded, what="first load")
        with site.client() as c:
            oid = order_of(c, "phone", "P-5")["order_id"]
        await app.open_order(oid)
        await until(pilot, lambda: getattr(app.screen, "order_id", None) == oid, what="order screen")
        audit = app.screen.query_one("#audit", DataTable)
        await until(pilot, lambda: audit.row_count > 0, what="audit trail")
        assert {str(audit.get_row_at(i)[-1]) for i in range(audit.row_count)} == {ME}
        app.screen.query_one("#lines", DataTable).focus()  # not the search field: keys are commands
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, PromptScreen), what="reason")
        await pilot.press(*"vip", "enter")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirmation")
        await pilot.press("y")
        with site.client() as c:
            await until(pilot, lambda: order_of(c, "phone", "P-5")["expedited"] == "vip", what="expedited")
        await until(
            pilot,
            lambda: any(str(audit.get_row_at(i)[2]) == "order_expedited" for i in range(audit.row_count)),
            what="the expedite in the trail",
        )
        await app.open_sku("GADGET-BLUE")
        await until(pilot, lambda: getattr(app.screen, "sku", None) == "GADGET-BLUE", what="SKU screen")
        history = app.screen.query_one("#history", DataTable)
        await until(pilot, lambda: history.row_count > 0, what="SKU history")
        actors = {str(history.get_row_at(i)[-1]) for i in range(history.row_count)}
        assert ME in actors and actors <= {ME, "config", "system", "intake:csv/default"}
