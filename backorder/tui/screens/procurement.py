"""Purchase orders and transfers: open ones (or all), overdue ones highlighted; move a date."""

from __future__ import annotations

import datetime as dt

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Header, Static

from backorder.tui.live import Changes
from backorder.tui.screens.base import BoScreen
from backorder.tui.widgets import ConfirmScreen, ConnBanner, PlainTable, PromptScreen


class ProcurementScreen(BoScreen):
    NAME = "procurement"
    AUTO_FOCUS = "#requests"
    BINDINGS = [Binding("m", "move_date", "Move date"), Binding("a", "toggle_all", "All/open")]

    def __init__(self) -> None:
        super().__init__()
        self.status = "open"
        self.requests: dict[str, dict] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        yield ConnBanner()
        yield Static("", id="proc-head")
        yield PlainTable(id="requests", cursor_type="row", zebra_stripes=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = "procurement"
        t = self.query_one("#requests", DataTable)
        for c in ("Request", "Kind", "SKU", "Source", "Qty", "Rcvd", "Raised", "Expected", "Status"):
            t.add_column(c, key=c)
        super().on_mount()

    async def reload(self) -> None:
        got = await self.bo.read("procurement.list", status=self.status, limit=10000)
        if got is None:
            return
        t = self.query_one("#requests", DataTable)
        key = None
        if t.row_count:
            key = t.coordinate_to_cell_key(t.cursor_coordinate).row_key.value
        t.clear()
        self.requests = {}
        overdue = 0
        for r in got["requests"]:
            self.requests[r["request_id"]] = r
            late = r["overdue"]
            overdue += late
            style = "bold red" if late else ""
            status = "OVERDUE" if late else r["status"]
            t.add_row(
                Text(r["request_id"], style=style),
                r["kind"],
                r["sku"],
                r["source"],
                str(r["qty"]),
                str(r["received"]),
                r["created_at"][:10],
                Text(r["expected_date"], style=style),
                Text(status, style=style or ("dim" if r["status"] == "closed" else "")),
                key=r["request_id"],
            )
        if key in self.requests:
            t.move_cursor(row=t.get_row_index(key))
        self.query_one("#proc-head", Static).update(
            Text.assemble(
                (f"{len(self.requests):,} {self.status if self.status == 'open' else ''} requests", "bold"),
                ("  ·  ", "dim"),
                (f"{overdue:,} overdue", "bold red" if overdue else "green"),
                ("  ·  m: move the expected date of the selected one · a: open / all", "dim"),
            )
        )

    def apply(self, changes: Changes) -> None:
        if changes.procurement or changes.reload:
            self.spawn(self.reload, group="reload")

    def action_toggle_all(self) -> None:
        self.status = "all" if self.status == "open" else "open"
        self.spawn(self.reload, group="reload")

    def action_move_date(self) -> None:
        t = self.query_one("#requests", DataTable)
        if not t.row_count:
            return
        rid = t.coordinate_to_cell_key(t.cursor_coordinate).row_key.value
        r = self.requests.get(rid or "")
        if r is None or r["status"] != "open":
            self.notify("only an open request's date can move", severity="warning", timeout=4)
            return

        def asked(value: str | None) -> None:
            if not value:
                return
            try:
                dt.date.fromisoformat(value)
            except ValueError:
                self.notify(f"{value!r} is not a date YYYY-MM-DD", severity="error", timeout=6)
                return

            def confirmed(yes: bool) -> None:
                if yes:
                    self.spawn(self._confirm, r["request_id"], value)

            self.app.push_screen(
                ConfirmScreen(
                    f"Move {r['request_id']} ({r['qty']} x {r['sku']}) from {r['expected_date']} to {value}?"
                ),
                confirmed,
            )

        self.app.push_screen(
            PromptScreen(f"New expected date of {r['request_id']} (YYYY-MM-DD)", value=r["expected_date"]), asked
        )

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        r = self.requests.get(event.row_key.value or "")
        if r is not None:
            self.spawn(self.bo.open_sku, r["sku"])

    async def _confirm(self, rid: str, date: str) -> None:
        if await self.bo.write("procurement.confirm", request_id=rid, expected_date=date) is not None:
            self.notify(f"{rid} now due {date}", timeout=4)
            await self.reload()
