"""One SKU: its waiting lines in service order, its inbound supply, its reorder policy,
its history (the journal, with who did each change), and bulk actions on its orders.

The policy form is validated here (whole numbers, order-up-to not below the reorder point
or safety stock) before anything is sent, and ``sku.configure`` is sent only after the
supervisor confirms; the daemon validates again and its refusal is shown as it words it.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Footer, Header, Input, Label, Static

from backorder.tui.live import Changes
from backorder.tui.screens.base import BoScreen
from backorder.tui.screens.bulk import BulkScreen, question
from backorder.tui.widgets import (
    ConfirmScreen,
    ConnBanner,
    PlainTable,
    audit_rows,
    hours,
    short_date,
    spark,
    state_text,
)

# (policy key, label, parse): every field an int >= 0 but lead time (a number) and MOQ /
# pack size (>= 1).
FIELDS = [
    ("reorder_point", "Reorder point", int, 0),
    ("order_up_to", "Order up to", int, 0),
    ("safety_stock", "Safety stock", int, 0),
    ("lead_time_days", "Lead time (d)", float, 0),
    ("moq", "MOQ", int, 1),
    ("pack_size", "Pack size", int, 1),
]


def validate(values: dict[str, str]) -> tuple[dict, list[str]]:
    """Parse the form; return (policy fields, problems)."""
    out: dict = {}
    problems: list[str] = []
    for key, label, kind, low in FIELDS:
        text = values.get(key, "").strip()
        try:
            v = kind(text)
        except ValueError:
            problems.append(f"{label}: {'a number' if kind is float else 'a whole number'} is needed")
            continue
        if v < low or (kind is float and v > 3650):
            problems.append(f"{label}: must be ≥ {low}" + (" and ≤ 3650" if kind is float else ""))
            continue
        out[key] = v
    if "order_up_to" in out:
        for other in ("reorder_point", "safety_stock"):
            if other in out and out["order_up_to"] < out[other]:
                problems.append(f"Order up to must be ≥ {other.replace('_', ' ')} ({out[other]})")
    return out, problems


def planner_text(p: dict | None) -> Text | None:
    """The demand planner's part of the SKU: mode, class and model, the last 30 days of
    demand next to the next 30 forecast (one scale), the levels it set and why. None for a
    manual SKU the planner has nothing on (the screen then looks as without a planner)."""
    if p is None:
        return None
    last, latest = p.get("last_tuned"), p.get("latest")
    if p["mode"] == "manual" and last is None and latest is None:
        return None
    target = f" · fill target {100 * p['service_level']:.1f}%"
    if p.get("service_target") == "site":  # the site's target, split across the SKUs
        chosen = (latest or {}).get("service_level")
        target = (
            f" · fill target {100 * chosen:.1f}% of the site's {100 * p['service_level']:.1f}%" if chosen else target
        )
    out = Text.assemble(("Planner ", "bold"), (p["mode"], "bold cyan"), target)
    info = latest or last
    if info is not None:
        out.append(f" · {info['demand_class']} · {info['model']}")
    if last is not None:
        old, new = last["old"], last["new"]
        verb = "set" if last["applied"] else "suggests"
        out.append(
            f" · {last['at'][:10]} {verb} ROP {old['reorder_point']}→{new['reorder_point']}"
            f", up to {old['order_up_to']}→{new['order_up_to']}, safety {old['safety_stock']}→{new['safety_stock']}"
        )
    if latest is not None and latest["forecast"]:
        history, forecast = latest.get("history") or [], latest["forecast"]
        top = max([*history, *forecast, 0.0])
        out.append("\n")
        out.append_text(
            Text.assemble(
                ("30d demand ", "dim"),
                (spark(history, top), "green"),
                (" │ ", "dim"),
                (spark(forecast, top), "cyan"),
                (f" next 30d {sum(forecast):,.0f}", "dim"),
            )
        )
    reasons = (latest or last or {}).get("reasons") or []
    for reason in reasons[:5]:
        out.append(f"\n  · {reason}", style="dim")
    return out


class SkuScreen(BoScreen):
    NAME = "sku"
    AUTO_FOCUS = "#waiting"
    BINDINGS = [
        Binding("ctrl+s", "save", "Save policy"),
        Binding("b", "bulk", "Bulk action"),
        Binding("r", "reload_now", "Reload", show=False),
    ]
    HISTORY = 200  # journal records shown, oldest first

    def __init__(self, sku: str) -> None:
        super().__init__()
        self.sku = sku
        self.view: dict | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield ConnBanner()
        yield Static("", id="sku-head")
        yield Static("", id="sku-plan")  # the planner's view; hidden for a manual SKU it never saw
        with Horizontal(id="sku-body"):
            with Vertical(id="sku-tables"):
                yield Label("Waiting lines (service order)", classes="title")
                yield PlainTable(id="waiting", cursor_type="row")
                yield Label("Inbound purchase orders / transfers", classes="title")
                yield PlainTable(id="inbound", cursor_type="row")
                yield Label("History (journal)", classes="title")
                yield PlainTable(id="history", cursor_type="row")
            with Vertical(id="policy-form"):
                yield Label("Reorder policy", classes="title")
                for key, label, _k, _low in FIELDS:
                    with Horizontal(classes="field"):
                        yield Label(label, classes="field-label")
                        yield Input(id=f"f-{key}", classes="field-input", select_on_focus=False)
                yield Static("", id="form-msg")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = self.sku
        w = self.query_one("#waiting", DataTable)
        for label in ("#", "Order", "Qty", "BO", "Pri", "Wait", "Expected", "Why"):
            w.add_column(label, key=label)
        i = self.query_one("#inbound", DataTable)
        for label in ("Request", "Kind", "Source", "Qty", "Rcvd", "Expected", ""):
            i.add_column(label, key=label)
        h = self.query_one("#history", DataTable)
        for label in ("Seq", "At", "Event", "Order", "Cause", "Actor"):
            h.add_column(label, key=label)
        for inp in self.query(".field-input").results(Input):
            inp.disabled = self.bo.read_only
        super().on_mount()

    async def reload(self) -> None:
        view = await self.bo.read("sku.get", sku=self.sku, lines=200)
        if view is not None:
            self.show(view, form=True)
        await self.show_history()

    def apply(self, changes: Changes) -> None:
        if self.sku in changes.skus or changes.reload:
            self.spawn(self._refresh, group="refresh")

    async def _refresh(self) -> None:
        view = await self.bo.read("sku.get", sku=self.sku, lines=200)
        if view is not None:
            self.show(view, form=False)
        await self.show_history()

    async def show_history(self) -> None:
        audit = await self.bo.read("audit.query", sku=self.sku, limit=self.HISTORY)
        self.query_one("#history", PlainTable).show_rows(audit_rows(audit, "order_id"))

    def show(self, v: dict, form: bool) -> None:
        self.view = v
        self.query_one("#sku-head", Static).update(
            Text.assemble(
                (f"{v['sku']} ", "bold"),
                state_text(v["state"]),
                f"  on hand {v['on_hand']:,} · allocated {v['allocated']:,} · available {v['available']:,}"
                f" · backordered {v['backordered']:,} in {v['waiting_lines']:,} lines"
                f" · inbound {v['inbound']:,} · position {v['position']:,} · ROP {v['reorder_point']:,}"
                f" · oldest {hours(v['oldest_wait_hours'])}",
            )
        )
        plan = self.query_one("#sku-plan", Static)
        text = planner_text(v.get("planner"))
        plan.display = text is not None
        if text is not None:
            plan.update(text)
        self.query_one("#waiting", PlainTable).show_rows(
            (
                (
                    str(ln["position"]),
                    f"{ln['order_id']}/{ln['line_no']}",
                    str(ln["qty"]),
                    str(ln["backordered"]),
                    Text("rush", style="bold magenta") if ln["rush"] else f"{ln['rank']:.1f}",
                    hours(ln["waiting_hours"]),
                    short_date(ln["expected_date"]),
                    ln["why"],
                ),
                f"{ln['order_id']}/{ln['line_no']}",
            )
            for ln in v["waiting"]
        )
        self.query_one("#inbound", PlainTable).show_rows(
            (
                (
                    r["request_id"],
                    r["kind"],
                    r["source"],
                    str(r["qty"]),
                    str(r["received"]),
                    r["expected_date"],
                    Text("OVERDUE", style="bold red") if r["overdue"] else "",
                ),
                r["request_id"],
            )
            for r in v["inbound_requests"]
        )
        if form:
            for key, _label, kind, _low in FIELDS:
                value = v["policy"][key]
                self.query_one(f"#f-{key}", Input).value = f"{value:g}" if kind is float else str(value)

    def form_values(self) -> dict[str, str]:
        return {key: self.query_one(f"#f-{key}", Input).value for key, *_ in FIELDS}

    async def action_save(self) -> None:
        msg = self.query_one("#form-msg", Static)
        fields, problems = validate(self.form_values())
        if problems:
            msg.update(Text("\n".join(problems), style="bold red"))
            return
        current = self.view["policy"] if self.view else {}
        changed = {k: v for k, v in fields.items() if current.get(k) != v}
        if not changed:
            msg.update(Text("nothing changed", style="dim"))
            return
        what = ", ".join(f"{k.replace('_', ' ')} {current.get(k)} → {v}" for k, v in changed.items())
        self.app.push_screen(
            ConfirmScreen(f"Change the policy of {self.sku}: {what}?"),
            lambda yes: self._send(changed) if yes else msg.update("not saved"),
        )

    def _send(self, changed: dict) -> None:
        async def send() -> None:
            msg = self.query_one("#form-msg", Static)
            result = await self.bo.write("sku.configure", sku=self.sku, **changed)
            if result is not None:
                msg.update(Text("saved", style="bold green"))
                await self.reload()
            else:
                msg.update(Text("refused by the daemon (see the notice)", style="bold red"))

        self.spawn(send)

    def action_bulk(self) -> None:
        """Ask which orders, count them (a dry run), confirm the count, then apply that set."""

        def chosen(req: dict | None) -> None:
            if req is not None:
                self.spawn(self._bulk_count, req)

        self.app.push_screen(BulkScreen(self.sku), chosen)

    async def _bulk_count(self, req: dict) -> None:
        dry = await self.bo.write("orders.bulk", dry_run=True, **req)
        if dry is None:
            return
        if not dry["count"]:
            self.notify(f"no {'dead letters' if req['action'] == 'retry' else 'orders'} match", timeout=4)
            return

        def confirmed(yes: bool) -> None:
            if yes:
                self.spawn(self._bulk_apply, req, dry)

        self.app.push_screen(ConfirmScreen(question(self.sku, req, dry)), confirmed)

    async def _bulk_apply(self, req: dict, dry: dict) -> None:
        # only the set that was confirmed: a changed one is refused (bulk_changed, shown)
        done = await self.bo.write("orders.bulk", expect_count=dry["count"], expect_digest=dry["digest"], **req)
        if done is not None:
            self.notify(f"{req['action']}: {done['count']} done", timeout=4)
            await self.reload()

    def action_reload_now(self) -> None:
        self.spawn(self.reload, group="reload")

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "waiting" and event.row_key.value:
            self.spawn(self.bo.open_order, event.row_key.value.split("/")[0])
