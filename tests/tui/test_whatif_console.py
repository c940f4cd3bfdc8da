"""Pilot tests of the what-if on the procurement screen, against a real daemon: moving a
date or entering a receipt quantity first shows who it affects and by how much; saying
no sends nothing, saying yes makes the change the what-if described."""

from __future__ import annotations

import pytest
from test_live import until
from textual.widgets import DataTable, Input, Label

from backorder.tui.app import BackorderApp
from backorder.tui.widgets import ConfirmScreen, PromptScreen

pytestmark = pytest.mark.asyncio


async def open_request(pilot, rid: str) -> None:
    app = pilot.app
    await until(pilot, lambda: app.loaded, what="first load")
    await pilot.press("p")
    await until(
        pilot,
        lambda: getattr(app.screen, "NAME", "") == "procurement" and rid in app.screen.requests,
        what="procurement",
    )
    table = app.screen.query_one("#requests", DataTable)
    table.move_cursor(row=table.get_row_index(rid))
    await pilot.pause()


async def answer_prompt(pilot, value: str) -> str:
    """Fill the prompt, then return the confirmation's text (the what-if and the question)."""
    app = pilot.app
    await until(pilot, lambda: isinstance(app.screen, PromptScreen), what="prompt")
    app.screen.query_one(Input).value = value
    await pilot.press("enter")
    await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirmation")
    return str(app.screen.query_one(Label).render())


async def test_moving_a_date_shows_who_it_delays_before_asking(site):
    with site.client() as c:
        before = c.call("procurement.list")["requests"]
        rid = [r["request_id"] for r in before if r["sku"] == "GADGET-BLUE"][0]
        predicted = c.call("whatif.delay", request_id=rid, date="2026-01-20")
    assert predicted["affected"] >= 1
    app = BackorderApp(str(site.socket))
    async with app.run_test(size=(100, 30)) as pilot:
        await open_request(pilot, rid)
        await pilot.press("m")
        text = await answer_prompt(pilot, "2026-01-20")
        first = predicted["lines"][0]
        assert f"This moves {predicted['affected']} waiting line" in text
        assert f"{first['order_id']}/{first['line_no']}" in text
        assert f"({first['moved_days']:+d} d)" in text
        assert f"Move {rid}" in text and "to 2026-01-20?" in text
        await pilot.press("n")  # no: nothing is sent
        await until(pilot, lambda: not isinstance(app.screen, ConfirmScreen), what="dialog closed")
        with site.client() as c:
            assert c.call("procurement.list")["requests"] == before
        # yes: the date moves, and the lines move as the what-if said
        await pilot.press("m")
        await answer_prompt(pilot, "2026-01-20")
        await pilot.press("y")
        with site.client() as c:
            await until(
                pilot,
                lambda: (
                    c.call("order.get", order_id=first["order_id"])["lines"][first["line_no"] - 1]["expected_date"]
                    == first["date_after"]
                ),
                what="the line's new date",
            )


async def test_a_receipt_quantity_shows_who_gets_the_units_before_asking(site):
    with site.client() as c:
        rid = [r["request_id"] for r in c.call("procurement.list")["requests"] if r["sku"] == "GADGET-BLUE"][0]
        predicted = c.call("whatif.receipt", request_id=rid, qty=3)
        seq = c.call("health")["journal"]["last_seq"]
    assert predicted["allocated_now"] == 3
    app = BackorderApp(str(site.socket))
    async with app.run_test(size=(100, 30)) as pilot:
        await open_request(pilot, rid)
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, PromptScreen), what="prompt")
        app.screen.query_one(Input).value = "-2"  # not a quantity: refused, no what-if, nothing asked
        await pilot.press("enter")
        await until(pilot, lambda: not isinstance(app.screen, PromptScreen), what="prompt closed")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        await pilot.press("r")
        text = await answer_prompt(pilot, "3")
        assert "(3 units now)" in text
        for x in predicted["lines"]:
            assert f"{x['order_id']}/{x['line_no']}" in text
        assert f"Book 3 x GADGET-BLUE received against {rid}?" in text
        with site.client() as c:
            assert c.call("health")["journal"]["last_seq"] == seq  # the what-if changed nothing
        await pilot.press("y")
        with site.client() as c:

            def allocated(x) -> int:
                return c.call("order.get", order_id=x["order_id"])["lines"][x["line_no"] - 1]["allocated"]

            await until(pilot, lambda: c.call("health")["journal"]["last_seq"] > seq, what="the receipt")
            got = {(x["order_id"], x["line_no"]): x["now"] for x in predicted["lines"] if x["now"]}
            await until(pilot, lambda: all(allocated(x) >= x["now"] for x in predicted["lines"]), what="allocations")
            assert sum(got.values()) == 3
