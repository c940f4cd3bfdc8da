"""Shipments waiting for pick: confirm a pick from the keyboard and read its label. With a
3PL configured, a line above says whether new orders are routed to it (and why: the pick
backlog against its thresholds) and which orders wait at the 3PL."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.markup import escape
from textual.widgets import DataTable, Footer, Header, Static, TextArea

from backorder.tui.live import Changes
from backorder.tui.screens.base import BoScreen
from backorder.tui.widgets import ConfirmScreen, ConnBanner, PlainTable


class PickingScreen(BoScreen):
    NAME = "picking"
    AUTO_FOCUS = "#picks"
    BINDINGS = [Binding("c", "confirm_pick", "Confirm pick")]

    def __init__(self) -> None:
        super().__init__()
        self.shipments: dict[str, dict] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        yield ConnBanner()
        yield Static("", id="pick-head")
        yield Static("", id="threepl-head")
        with Horizontal(id="pick-body"):
            yield PlainTable(id="picks", cursor_type="row", zebra_stripes=True)
            yield TextArea("", id="label", read_only=True, show_line_numbers=False)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = "picking"
        t = self.query_one("#picks", DataTable)
        for c in ("Shipment", "Order", "Items", "Created"):
            t.add_column(c, key=c)
        self.query_one("#label", TextArea).border_title = "label"
        self.query_one("#threepl-head", Static).display = False
        super().on_mount()

    def on_resize(self) -> None:
        # narrow terminals: the label goes under the pick list instead of beside it
        self.query_one("#pick-body").set_class(self.size.width < 120, "narrow")

    async def reload(self) -> None:
        got = await self.bo.read("shipments.list", status="picking", limit=10000)
        if got is None:
            return
        self.shipments = {s["shipment_id"]: s for s in got["shipments"]}
        self.query_one("#picks", PlainTable).show_rows(
            (
                (
                    s["shipment_id"],
                    s["order_id"],
                    ", ".join(f"{i['qty']}x{i['sku']}" for i in s["items"]),
                    s["created_at"].replace("T", " ")[:16],
                ),
                s["shipment_id"],
            )
            for s in got["shipments"]
        )
        pending = await self.bo.read("shipments.list", status="label_pending", limit=10000)
        waiting = len(pending["shipments"]) if pending is not None else 0
        self.query_one("#pick-head", Static).update(
            Text.assemble(
                (f"{len(self.shipments):,} shipments waiting for pick", "bold"),
                # picked for a remote carrier, label not bought yet (a dead one: notifications screen)
                (f"  ·  {waiting:,} waiting for their label", "bold yellow") if waiting else "",
                ("  ·  c: confirm the selected pick (label, tracking, shipped)", "dim"),
            )
        )

        await self._threepl()

    async def _threepl(self) -> None:
        """The 3PL's line: shown only when one is enabled (nothing changes for a site without)."""
        status = await self.bo.read("threepl.status")
        line = self.query_one("#threepl-head", Static)
        if status is None or not status["enabled"]:
            line.display = False
            return
        routed = await self.bo.read("shipments.list", status="at_threepl", limit=20)
        orders = [s["order_id"] for s in (routed or {}).get("shipments", [])]
        state = status["state"]
        line.display = True
        line.update(
            Text.assemble(
                (f"3PL {status['provider']}: routing {state}", "bold green" if state == "on" else "bold"),
                (
                    f"  ·  pick backlog {status['backlog_hours']:.2f} h (on at {status['backlog_on_hours']:g} h, "
                    f"off at {status['backlog_off_hours']:g} h)  ·  {status['routed_open']:,} at the 3PL"
                    + (f": {', '.join(orders)}" if orders else "")
                    + f"  ·  {status['routed_shipped']:,} shipped by it  ·  breaker {status['breaker']}",
                    "",
                ),
                (
                    f"  ·  inventory {status['inventory']['last_poll'] or 'not polled'}"
                    + (f" ({status['inventory']['error']})" if status["inventory"]["error"] else ""),
                    "dim",
                ),
            )
        )

    def apply(self, changes: Changes) -> None:
        if changes.shipments or changes.reload:
            self.spawn(self.reload, group="reload")

    def current(self) -> str | None:
        return self.cursor_key("#picks")

    def action_confirm_pick(self) -> None:
        sid = self.current()
        if sid is None or sid not in self.shipments:
            return
        s = self.shipments[sid]
        items = ", ".join(f"{i['qty']} x {i['sku']}" for i in s["items"])

        def confirmed(yes: bool) -> None:
            if yes:
                self.spawn(self._pick, sid)

        self.app.push_screen(ConfirmScreen(f"Confirm the pick of {sid} for {s['order_id']} ({items})?"), confirmed)

    async def _pick(self, sid: str) -> None:
        result = await self.bo.write("pick.confirm", shipment_id=sid)
        if result is None:
            return
        if result["status"] == "label_pending":  # a remote carrier: the notifier buys the label
            self.notify(f"{sid} picked; its {result['carrier']} label is being bought", timeout=5)
            await self.reload()
            return
        self.query_one("#label", TextArea).text = result.get("label_zpl", "")
        # a border title is markup: the tracking number comes from a carrier adapter
        self.query_one("#label", TextArea).border_title = escape(f"label {sid} · {result['tracking_number']}")
        self.notify(f"{sid} shipped, tracking {result['tracking_number']} (order {result['order_status']})", timeout=5)
        await self.reload()
