"""Pilot tests of the intake and notifications screens, against a real daemon process:
deliveries through the real ``order.ingest``, dead letters retried and discarded from the
screen, and notices dead-lettered by a real HTTP receiver, then sent again from the screen."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from test_live import until
from textual.widgets import DataTable, Static
from tui_support import SITE, SITE_BASE, csv_order, read_only_site, seed_site

from backorder.tui.app import BackorderApp
from backorder.tui.widgets import ConfirmScreen, PromptScreen

sys.path.insert(0, str(Path(__file__).parent.parent / "integration"))  # the real receivers of the notification tests
from notify_support import HookServer

pytestmark = pytest.mark.asyncio


def cell(app, table: str, row: str, column: str) -> str:
    return str(app.screen.query_one(table, DataTable).get_cell(row, column))


def row_keys(app, table: str) -> list[str]:
    return [r.key.value for r in app.screen.query_one(table, DataTable).ordered_rows]


async def select(pilot, table: str, key: str) -> None:
    t = pilot.app.screen.query_one(table, DataTable)
    t.move_cursor(row=t.get_row_index(key))
    await pilot.pause()


async def confirm(pilot) -> None:
    await until(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen), what="confirmation")
    await pilot.press("y")


async def open_screen(pilot, key: str, name: str) -> None:
    app = pilot.app
    await until(pilot, lambda: app.loaded, what="first load")
    await pilot.press(key)
    await until(pilot, lambda: getattr(app.screen, "NAME", "") == name, what=f"{name} screen")


async def call(site, op: str, **fields):
    with site.client() as c:
        return await asyncio.to_thread(c.call, op, **fields)


async def test_intake_screen_shows_sources_and_retries_and_discards_dead_letters(make_daemon):
    # a csv source that has delivered and then goes quiet for two seconds is "silent"
    site = make_daemon(SITE + "\n[intake]\nsilent_after_s = 2.0\n")
    with site.client() as c:
        seed_site(c)
    app = BackorderApp(str(site.socket))
    async with app.run_test(size=(160, 48)) as pilot:
        await open_screen(pilot, "i", "intake")
        await until(pilot, lambda: len(app.screen.letters) == 3, what="dead letters")
        # the seeded deliveries: 1 accepted (on hold), 3 rejected, per sources.health
        assert cell(app, "#sources", "csv/default", "Deliv") == "4"
        assert cell(app, "#sources", "csv/default", "Acc%") == "25.0%"
        assert cell(app, "#sources", "csv/default", "Rej%") == "75.0%"
        assert cell(app, "#sources", "csv/default", "Rejections") == "unknown_sku 2, invalid_quantity 1"
        assert cell(app, "#sources", "shopify/(unverified)", "BadSig") == "1"  # an unlisted shop: a claim
        # rejection rates from stats -> intake.rejections, as a share of the source's deliveries
        assert cell(app, "#rejections", "csv/default/unknown_sku", "Rate") == "50.0%"
        # the dead letters by impact: the rush order (500 + 24.00) first
        assert row_keys(app, "#letters") == ["2", "1", "3"]
        assert cell(app, "#letters", "2", "Order") == "WEB-3"
        assert cell(app, "#letters", "2", "Impact") == "524.0"
        groups = str(app.screen.query_one("#groups", Static).render())
        assert "unknown_sku csv ×2" in groups and "invalid_quantity csv ×1" in groups

        # the source goes quiet: the daemon says so and the row turns SILENT, unasked
        await until(pilot, lambda: cell(app, "#sources", "csv/default", "State") == "SILENT", what="silent source")
        assert "1 silent" in str(app.screen.query_one("#intake-head", Static).render())

        # a new delivery reaches the screen live (the intake topic), and breaks the silence
        await call(site, "order.ingest", channel="csv", body=csv_order("WEB-6", "gadget blue", "2", "24.00"))
        # (the same refresh shows the count and the state: the silence comes back a while later)
        await until(
            pilot,
            lambda: (
                cell(app, "#sources", "csv/default", "Deliv") == "5"
                and cell(app, "#sources", "csv/default", "State") == "ok"
            ),
            what="live delivery",
        )
        await until(pilot, lambda: "4" in app.screen.letters, what="the new dead letter")

        # fix one cause (an alias), retry that one letter from the screen: accepted
        await call(site, "intake.alias", channel="csv", channel_sku="widget red", sku="WIDGET-RED")
        await select(pilot, "#letters", "1")
        await pilot.press("r")
        await confirm(pilot)
        await until(pilot, lambda: "1" not in app.screen.letters, what="letter 1 resolved")
        order = await call(site, "order.get", channel="csv", external_id="WEB-2")
        assert [(ln["sku"], ln["qty"]) for ln in order["lines"]] == [("WIDGET-RED", 2)]

        # fix the other SKU, retry the whole cause group: both gadget orders accepted once
        await call(site, "intake.alias", channel="csv", channel_sku="gadget blue", sku="GADGET-BLUE")
        await select(pilot, "#letters", "2")
        await pilot.press("g")
        await confirm(pilot)
        await until(pilot, lambda: set(app.screen.letters) == {"3"}, what="the group resolved")
        for ext in ("WEB-3", "WEB-6"):
            assert (await call(site, "order.get", channel="csv", external_id=ext))["lines"][0]["sku"] == "GADGET-BLUE"

        # discard needs a reason: an empty one changes nothing
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, PromptScreen), what="reason prompt")
        await pilot.press("enter")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        assert [d["letter_id"] for d in (await call(site, "deadletters.list"))["dead_letters"]] == [3]
        # with a reason, after confirming: gone, and the reason is journaled
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, PromptScreen), what="reason prompt")
        await pilot.press(*"re-ordered by phone", "enter")
        await confirm(pilot)
        await until(pilot, lambda: not app.screen.letters, what="letter 3 discarded")
        assert (await call(site, "deadletters.list"))["dead_letters"] == []
        records = (await call(site, "audit.query", limit=1000))["records"]
        discarded = [r["event"] for r in records if r["type"] == "dead_letter_discarded"]
        assert [(e["letter_id"], e["reason"]) for e in discarded] == [(3, "re-ordered by phone")]
        assert "none — the dead-letter queue is empty" in str(app.screen.query_one("#groups", Static).render())


NOTIFY = """
[notifications]
backoff_base_s = 0.05
backoff_max_s = 0.2
max_attempts = 2

[notifications.routes]
"web" = "webhook"
"*" = "none"

[notifications.webhook]
url = "{url}"
secret_env = "BO_TEST_HOOK_SECRET"
"""


async def test_notifications_screen_lists_a_dead_notice_and_sends_it_again(make_daemon, monkeypatch):
    secret = b"tui-hook-secret"
    monkeypatch.setenv("BO_TEST_HOOK_SECRET", secret.decode())
    with HookServer(secret) as server:
        hook = server.hook
        hook.down = True  # every delivery fails: the web order's notice dies after 2 attempts
        site = make_daemon(SITE_BASE + NOTIFY.format(url=server.url))
        with site.client() as c:
            seed_site(c)
        app = BackorderApp(str(site.socket))
        async with app.run_test(size=(160, 48)) as pilot:
            await open_screen(pilot, "n", "notifications")
            dead = lambda: [k for k, n in app.screen.notices.items() if n["status"] == "dead"]  # noqa: E731
            await until(pilot, dead, what="a dead notice on the screen")
            (nid,) = dead()
            (expected,) = (await call(site, "notifications.list", status="dead"))["notifications"]
            assert nid == expected["notice_id"]
            assert cell(app, "#notices", nid, "Kind") == "backordered"
            assert cell(app, "#notices", nid, "For") == "O0000004"  # W-1002, the web channel's backorder
            assert cell(app, "#notices", nid, "Channel") == "webhook"
            assert cell(app, "#notices", nid, "Tries") == "2"
            assert cell(app, "#notices", nid, "Last error") == "DeliveryError: HTTP 500"
            head = lambda: str(app.screen.query_one("#notif-head", Static).render())  # noqa: E731
            assert "1 dead" in head() and "webhook closed" in head()
            # the other channels' notices are unrouted: the filter shows only the dead one
            while app.screen.status != "dead":
                await pilot.press("f")
            await until(pilot, lambda: row_keys(app, "#notices") == [nid], what="dead filter")

            # the receiver is back: retry from the screen, confirmed; delivered once, same id
            hook.down = False
            await pilot.press("r")
            await confirm(pilot)
            await until(pilot, lambda: row_keys(app, "#notices") == [], what="no dead notice left")
            await until(pilot, hook.delivered, what="the webhook delivery")
            assert [b["notice_id"] for b in hook.delivered()] == [nid]
            while app.screen.status != "sent":
                await pilot.press("f")
            await until(pilot, lambda: row_keys(app, "#notices") == [nid], what="sent filter")
            assert cell(app, "#notices", nid, "Status") == "sent"
            assert cell(app, "#notices", nid, "Tries") == "1"  # a retry starts with fresh attempts

            # another one dies while the screen is open (live), and R sends every dead one
            hook.down = True
            await call(site, "order.submit", channel="web", external_id="W-1003", lines=[{"sku": "SPROCKET", "qty": 1}])
            while app.screen.status != "dead":
                await pilot.press("f")
            await until(pilot, lambda: len(app.screen.notices) == 1, what="the second dead notice")
            (second,) = app.screen.notices
            hook.down = False
            await pilot.press("R")
            await confirm(pilot)
            await until(pilot, lambda: len(hook.delivered()) == 2, what="the second delivery")
            assert [b["notice_id"] for b in hook.delivered()] == [nid, second]
            await until(pilot, lambda: not app.screen.notices, what="no dead notice left")


async def test_read_only_console_hides_the_intake_and_notification_writes(make_daemon):
    d, ro = read_only_site(make_daemon)
    app = BackorderApp(str(ro))
    async with app.run_test(size=(80, 24)) as pilot:
        await open_screen(pilot, "i", "intake")
        await until(pilot, lambda: len(app.screen.letters) == 3, what="dead letters")
        shown = {ab.binding.action for ab in app.active_bindings.values()}
        assert not shown & {"retry_letter", "retry_group", "discard_letter"}
        await pilot.press("r", "g", "x")
        await pilot.pause()
        assert not isinstance(app.screen, (ConfirmScreen, PromptScreen))
        await pilot.press("n")
        await until(
            pilot,
            lambda: getattr(app.screen, "NAME", "") == "notifications" and app.screen.notices,
            what="notifications screen",
        )
        shown = {ab.binding.action for ab in app.active_bindings.values()}
        assert "next_filter" in shown and not shown & {"retry_notice", "retry_all_dead"}
        with d.client() as c:
            assert len(c.call("deadletters.list")["dead_letters"]) == 3


async def test_a_long_outbox_shows_its_newest_notices(site, monkeypatch):
    from backorder.tui.screens import notifications as screen_module

    monkeypatch.setattr(screen_module, "LIMIT", 2)
    everything = [n["notice_id"] for n in (await call(site, "notifications.list", limit=1000))["notifications"]]
    assert len(everything) == 5  # the seeded backorder notices
    app = BackorderApp(str(site.socket))
    async with app.run_test(size=(80, 24)) as pilot:
        await open_screen(pilot, "n", "notifications")
        await until(pilot, lambda: row_keys(app, "#notices") == everything[-2:], what="the newest two")
        assert "(the newest; 3 older)" in str(app.screen.query_one("#notif-head", Static).render())
