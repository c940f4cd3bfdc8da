"""Orders: search by order id, external id or order number; lines, shipments, audit trail
(with who did each change); cancel or expedite the order shown."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Footer, Header, Input, Label, Static

from backorder.tui.live import Changes
from backorder.tui.screens.base import BoScreen
from backorder.tui.widgets import ConfirmScreen, ConnBanner, PlainTable, PromptScreen, audit_rows, short_date

STATUS_STYLE = {
    "backordered": "bold red",
    "partially_allocated": "yellow",
    "picking": "cyan",
    "shipped": "green",
    "partially_shipped": "green",
    "cancelled": "dim",
}


class OrderScreen(BoScreen):
    NAME = "order"
    AUTO_FOCUS = "#search"
    BINDINGS = [
        Binding("slash", "search", "Search", key_display="/"),
        Binding("x", "cancel_order", "Cancel order"),
        Binding("e", "expedite_order", "Expedite"),
    ]

    def __init__(self, order_id: str | None = None) -> None:
        super().__init__()
        self.order_id = order_id
        self.matches: list[dict] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield ConnBanner()
        yield Input(placeholder="order id, external id or order number — Enter", id="search")
        yield Static("", id="order-head")
        with Vertical(id="order-body"):
            yield Label("Lines", classes="title")
            yield PlainTable(id="lines", cursor_type="row")
            yield Label("Shipments", classes="title")
            yield PlainTable(id="shipments", cursor_type="row")
            yield Label("Audit trail", classes="title")
            yield PlainTable(id="audit", cursor_type="row")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = "orders"
        t = self.query_one("#lines", DataTable)
        # Promised: the ship-by date the line was promised at order time; Ship by: the one expected now
        for c in ("#", "SKU", "Qty", "Alloc", "BO", "Shipped", "Queue", "Expected", "Promised", "Ship by", "Why"):
            t.add_column(c, key=c)
        t = self.query_one("#shipments", DataTable)
        for c in ("Shipment", "Status", "Items", "Tracking", "Shipped at"):
            t.add_column(c, key=c)
        t = self.query_one("#audit", DataTable)
        for c in ("Seq", "At", "Event", "SKU", "Cause", "Actor"):
            t.add_column(c, key=c)
        super().on_mount()
        if self.order_id is None:
            self.query_one("#search", Input).focus()

    async def reload(self) -> None:
        if self.order_id:
            await self.show(self.order_id)

    def apply(self, changes: Changes) -> None:
        if self.order_id and (self.order_id in changes.orders or changes.reload):
            self.spawn(self.show, self.order_id, group="refresh")

    def action_search(self) -> None:
        self.query_one("#search", Input).focus()

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        query = event.value.strip()
        if not query:
            return
        found = await self.bo.read("orders.find", query=query)
        if found is None:
            return
        orders = found["orders"]
        head = self.query_one("#order-head", Static)
        if not orders:
            head.update(Text(f"no order with id, external id or number {query!r}", style="bold red"))
            return
        if len(orders) > 1:
            self.notify(f"{len(orders)} orders match; showing the newest", timeout=4)
        await self.show(orders[0]["order_id"])
        self.query_one("#lines", DataTable).focus()

    async def show(self, order_id: str) -> None:
        o = await self.bo.read("order.get", order_id=order_id)
        if o is None:
            return
        self.order_id = order_id
        self.order = o
        flags = " ".join(
            f
            for f in (
                "rush" if o["rush"] else "",
                "priority" if o["priority"] else "",
                "ship-complete" if o["ship_complete"] else "",
            )
            if f
        )
        self.query_one("#order-head", Static).update(
            Text.assemble(
                (f"{o['order_id']} ", "bold"),
                (o["status"], STATUS_STYLE.get(o["status"], "")),
                f"  {o['channel']}/{o['account']} {o['external_id']} {o['order_number']}"
                f"  · {o['customer'].get('name') or '—'} · received {o['received_at']} · total {o['total']} {o['currency']}"
                + (f" · {flags}" if flags else "")
                + (f" · cancelled: {o['cancel_reason']}" if o["cancelled"] else "")
                + (f" · expedited: {o['expedited']}" if o.get("expedited") else "")
                + _threepl(o),
            )
        )
        self.query_one("#lines", PlainTable).show_rows(
            (
                (
                    str(ln["line_no"]),
                    ln["sku"],
                    str(ln["qty"]),
                    str(ln["allocated"]),
                    str(ln["backordered"]),
                    str(ln["shipped"]),
                    str(ln.get("queue_position") or ""),
                    short_date(ln.get("expected_date")) if ln["backordered"] else "",
                    short_date(promise["date"]) if (promise := ln.get("promise")) else "",
                    short_date(promise.get("expected") or promise["told"]) if promise else "",
                    ln.get("why", ""),
                ),
                f"{ln['line_no']}:{ln['sku']}",
            )
            for ln in o["lines"]
        )
        self.query_one("#shipments", PlainTable).show_rows(
            (
                (
                    sh["shipment_id"],
                    sh["status"],
                    ", ".join(f"{i['qty']}x{i['sku']}" for i in sh["items"]),
                    sh["tracking_number"] or "—",
                    sh["shipped_at"] or "—",
                ),
                None,
            )
            for sh in o["shipments"]
        )
        audit = await self.bo.read("audit.query", order_id=order_id, limit=200)
        self.query_one("#audit", PlainTable).show_rows(audit_rows(audit, "sku"))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "lines" and event.row_key.value:
            self.spawn(self.bo.open_sku, event.row_key.value.split(":", 1)[1])

    async def action_cancel_order(self) -> None:
        if not self.order_id:
            return
        oid = self.order_id

        def asked(reason: str | None) -> None:
            if reason is None:
                return

            def confirmed(yes: bool) -> None:
                if yes:
                    self.spawn(self._cancel, oid, reason)

            self.app.push_screen(
                ConfirmScreen(f"Cancel order {oid}? Its units go to the next waiting lines."), confirmed
            )

        self.app.push_screen(PromptScreen(f"Why is {oid} cancelled?", placeholder="reason (optional)"), asked)

    async def action_expedite_order(self) -> None:
        if not self.order_id:
            return
        oid = self.order_id

        def asked(reason: str | None) -> None:
            if not reason:  # a reason is required: it is what the queue shows
                return

            def confirmed(yes: bool) -> None:
                if yes:
                    self.spawn(self._expedite, oid, reason)

            self.app.push_screen(
                ConfirmScreen(f"Expedite {oid}? Its waiting lines go ahead of every order not expedited."), confirmed
            )

        self.app.push_screen(PromptScreen(f"Why is {oid} expedited?", placeholder="reason (shown in the queue)"), asked)

    async def _expedite(self, oid: str, reason: str) -> None:
        if await self.bo.write("order.expedite", order_id=oid, reason=reason) is not None:
            self.notify(f"{oid} expedited", timeout=4)
            await self.show(oid)

    async def _cancel(self, oid: str, reason: str) -> None:
        if await self.bo.write("order.cancel", order_id=oid, reason=reason) is not None:
            self.notify(f"{oid} cancelled", timeout=4)
            await self.show(oid)


def _threepl(o: dict) -> str:
    """The 3PL that fulfils the order and its last change there (its state and code)."""
    if not o.get("routed_to"):
        return ""
    ch = o.get("threepl_change")
    if not ch:
        return f" · at 3PL {o['routed_to']}"
    code = f" {ch['code']}: {ch['message']}" if ch.get("code") else ""
    return f" · at 3PL {o['routed_to']}, {ch['change']} {ch['state']}{code}"
