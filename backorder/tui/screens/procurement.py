"""Purchase orders and transfers: open ones (or all), overdue ones highlighted; move a date
or book a receipt, each shown first as a what-if (who it affects, by how much)."""

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
    BINDINGS = [
        Binding("m", "move_date", "Move date"),
        Binding("r", "receive", "Receive"),
        Binding("a", "toggle_all", "All/open"),
    ]

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
        self.requests = {}
        overdue = 0
        rows = []
        for r in got["requests"]:
            self.requests[r["request_id"]] = r
            late = r["overdue"]
            overdue += late
            style = "bold red" if late else ""
            status = "OVERDUE" if late else r["status"]
            rows.append(
                (
                    (
                        Text(r["request_id"], style=style),
                        r["kind"],
                        r["sku"],
                        r["source"],
                        str(r["qty"]),
                        str(r["received"]),
                        r["created_at"][:10],
                        Text(r["expected_date"], style=style),
                        Text(status, style=style or ("dim" if r["status"] == "closed" else "")),
                    ),
                    r["request_id"],
                )
            )
        self.query_one("#requests", PlainTable).show_rows(rows)
        self.query_one("#proc-head", Static).update(
            Text.assemble(
                (f"{len(self.requests):,} {self.status if self.status == 'open' else ''} requests", "bold"),
                ("  ·  ", "dim"),
                (f"{overdue:,} overdue", "bold red" if overdue else "green"),
                ("  ·  m: move the expected date · r: receive · a: open / all", "dim"),
            )
        )

    def apply(self, changes: Changes) -> None:
        if changes.procurement or changes.reload:
            self.spawn(self.reload, group="reload")

    def action_toggle_all(self) -> None:
        self.status = "all" if self.status == "open" else "open"
        self.spawn(self.reload, group="reload")

    def _selected_open(self, doing: str) -> dict | None:
        t = self.query_one("#requests", DataTable)
        if not t.row_count:
            return None
        rid = t.coordinate_to_cell_key(t.cursor_coordinate).row_key.value
        r = self.requests.get(rid or "")
        if r is None or r["status"] != "open":
            self.notify(f"only an open request can be {doing}", severity="warning", timeout=4)
            return None
        return r

    def action_move_date(self) -> None:
        r = self._selected_open("moved")
        if r is None:
            return

        def asked(value: str | None) -> None:
            if not value:
                return
            try:
                dt.date.fromisoformat(value)
            except ValueError:
                self.notify(f"{value!r} is not a date YYYY-MM-DD", severity="error", timeout=6)
                return
            self.spawn(self._whatif_move, r, value)

        self.app.push_screen(
            PromptScreen(f"New expected date of {r['request_id']} (YYYY-MM-DD)", value=r["expected_date"]), asked
        )

    async def _whatif_move(self, r: dict, date: str) -> None:
        """The what-if first: who would wait longer (or less), then the confirmation."""
        question = f"Move {r['request_id']} ({r['qty']} x {r['sku']}) from {r['expected_date']} to {date}?"
        await self._ask(
            ("whatif.delay", {"request_id": r["request_id"], "date": date}),
            "moves",
            question,
            lambda: self.spawn(self._confirm, r["request_id"], date),
        )

    async def _ask(self, whatif: tuple[str, dict], verb: str, question: str, then) -> None:
        """Ask the daemon the what-if, then the person, with its answer above the question;
        ``then()`` on yes. A refused what-if (a past date, a request closed meanwhile) is
        shown and nothing is asked."""
        op, fields = whatif
        got = await self.bo.read(op, limit=WHATIF_SHOWN, **fields)
        if got is None:
            return

        def confirmed(yes: bool) -> None:
            if yes:
                then()

        self.app.push_screen(ConfirmScreen(whatif_text(got, verb) + "\n\n" + question), confirmed)

    def action_receive(self) -> None:
        r = self._selected_open("received against")
        if r is None:
            return

        def asked(value: str | None) -> None:
            if not value:
                return
            if not value.strip().isdigit() or int(value) <= 0:
                self.notify(f"{value!r} is not a quantity (a whole number > 0)", severity="error", timeout=6)
                return
            self.spawn(self._whatif_receive, r, int(value))

        self.app.push_screen(
            PromptScreen(f"Units of {r['sku']} received against {r['request_id']}", value=str(r["open"])), asked
        )

    async def _whatif_receive(self, r: dict, qty: int) -> None:
        question = f"Book {qty} x {r['sku']} received against {r['request_id']}?"
        await self._ask(
            ("whatif.receipt", {"request_id": r["request_id"], "qty": qty}),
            "serves",
            question,
            lambda: self.spawn(self._receive, r, qty),
        )

    async def _receive(self, r: dict, qty: int) -> None:
        got = await self.bo.write("stock.receive", sku=r["sku"], qty=qty, reference=r["request_id"])
        if got is not None:
            self.notify(
                f"{qty} x {r['sku']} received: {got.get('allocated_units', 0)} units to waiting lines", timeout=4
            )
            await self.reload()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        r = self.requests.get(event.row_key.value or "")
        if r is not None:
            self.spawn(self.bo.open_sku, r["sku"])

    async def _confirm(self, rid: str, date: str) -> None:
        if await self.bo.write("procurement.confirm", request_id=rid, expected_date=date) is not None:
            self.notify(f"{rid} now due {date}", timeout=4)
            await self.reload()


WHATIF_SHOWN = 8  # lines listed in the confirmation (all are counted)


def whatif_text(got: dict, verb: str) -> str:
    """What a what-if answer says, for a person about to confirm: the waiting lines whose
    units or dates change, in service order, with their customers and by how much."""
    n = got["affected"]
    if not n:
        return "No waiting line is affected."
    now = got.get("allocated_now", 0)
    head = f"This {verb} {n} waiting line{'s' if n != 1 else ''}" + (f" ({now} units now):" if now else ":")
    rows = [head]
    for x in got["lines"]:
        who = x.get("email") or (x.get("customer") or {}).get("name") or ""
        if x["now"] and x["now"] >= x["need"]:
            what = f"{x['now']} now (all)"
        elif x["now"]:
            what = f"{x['now']} of {x['need']} now, rest {x['date_after'] or 'no date'}"
        else:
            days = x["moved_days"]
            by = "" if days is None else f" ({days:+d} d)"
            what = f"{x['date_before'] or 'no date'} -> {x['date_after'] or 'no date'}{by}"
        rows.append(f"  #{x['place'] + 1} {x['order_id']}/{x['line_no']} {who}  {what}".rstrip())
    if n > len(got["lines"]):
        rows.append(f"  ... and {n - len(got['lines'])} more")
    return "\n".join(rows)
