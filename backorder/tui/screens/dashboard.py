"""The first screen: KPIs, the SKUs with demand waiting, the backlog trend, the event feed.

The SKU table is a Textual ``DataTable`` (it renders only the rows in view). A refresh
touches only the rows that changed: ``update_cell`` for a row whose numbers moved,
``add_row`` / ``remove_row`` when a SKU starts or stops waiting, and one ``sort`` when the
order may have changed. The whole table is rebuilt only on a reconnect or a new filter.
"""

from __future__ import annotations

import time

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Footer, Header, Input, Label, RichLog, Sparkline, Static

from backorder.tui.live import Changes, wait_hours
from backorder.tui.screens.base import BoScreen
from backorder.tui.widgets import (
    ConnBanner,
    KpiBar,
    PlainTable,
    bar,
    cover_text,
    hours,
    next_text,
    short_date,
    state_text,
)

# (key, label, sort value of a row); the label gets ▲/▼ on the sorted column.
COLUMNS: list[tuple[str, str, object]] = [
    ("sku", "SKU", lambda r: r["sku"]),
    ("on_hand", "OnHd", lambda r: r["on_hand"]),
    ("bo_units", "BO", lambda r: r["backordered"]),
    ("bo_lines", "Lns", lambda r: r["waiting_lines"]),
    # the longest wait is the earliest ``since``: an order that holds as the clock moves
    ("wait", "Wait", lambda r: -(r.get("since_ts") or 0.0) if r.get("since_ts") else (r["oldest_wait_hours"] or 0.0)),
    ("next", "Next in", lambda r: (r["next_inbound"] or {}).get("expected_date") or "9999"),
    (
        "cover",
        "Cover",
        lambda r: (r["covered_lines"] / r["waiting_lines"] if r["waiting_lines"] else 1.0, r["covered_by"] or "9999"),
    ),
    ("rop", "ROP", lambda r: r["reorder_point"]),
    ("state", "State", lambda r: {"stock_out": 0, "below_reorder_point": 1}.get(r["state"], 2)),
]
SORT_KEYS = {key: fn for key, _label, fn in COLUMNS}
WIDTHS = {
    "sku": 11,
    "on_hand": 5,
    "bo_units": 5,
    "bo_lines": 4,
    "wait": 6,
    "next": 9,
    "cover": 10,
    "rop": 5,
    "state": 5,
}
REORDER_S = 1.0  # at most one re-sort per second under a stream of changes
# skus.stockout walks every SKU in the daemon (bench/depletion.py): read on open, on a
# reconnect and every this many seconds, never per refresh
STOCKOUT_S = 30.0
STOCKOUT_SHOWN = 10
FEED_TAIL = 20  # feed lines written per refresh


def wait_cell(r: dict, now: float | None) -> Text:
    return Text(hours(wait_hours(r, now)), justify="right")


def cells(r: dict, now: float | None) -> list:
    return [
        r["sku"],
        Text(f"{r['on_hand']:,}", justify="right"),
        Text(f"{r['backordered']:,}", style="bold", justify="right"),
        Text(f"{r['waiting_lines']:,}", justify="right"),
        wait_cell(r, now),
        next_text(r),
        cover_text(r),
        Text(f"{r['reorder_point']:,}", justify="right"),
        state_text(r["state"]),
    ]


class DashboardScreen(BoScreen):
    NAME = "dashboard"
    AUTO_FOCUS = "#skus"
    BINDINGS = [
        Binding("enter", "open_sku", "SKU", priority=True),
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("s", "sort", "Sort"),
        Binding("S", "reverse", "Rev", show=False),
        Binding("escape", "clear_filter", "Clear", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.sort_key = "wait"
        self.sort_reverse = True  # longest wait first: what a supervisor chases
        self.filter = ""
        self.shown: set[str] = set()
        self._reorder_timer = None
        self._last_reorder = 0.0
        self._waits_at: float | None = None  # the engine time the shown waits were computed at
        self._sortvals: dict[str, object] = {}  # sku -> its value in the sorted column, as shown

    def compose(self) -> ComposeResult:
        yield Header()
        yield ConnBanner()
        yield KpiBar(id="kpis")
        with Horizontal(id="trend"):
            yield Label("BO lines 6h", id="trend-label")
            yield Sparkline([], id="spark")
            yield Label("", id="trend-now")
            yield Label("", id="stockout-now")
        yield Input(placeholder="/ filter SKUs…", id="filter")
        with Horizontal(id="middle"):
            table = PlainTable(id="skus", cursor_type="row", zebra_stripes=True)
            yield table
            with Vertical(id="side"):
                yield Label("Waiting lines covered by inbound", classes="title")
                yield Static(id="progress")
                yield Label("Stock-out within lead time", classes="title")
                yield Static(id="stockout")
        yield RichLog(id="feed", max_lines=500, wrap=False)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one("#skus", DataTable)
        for key, label, _fn in COLUMNS:
            # fixed widths: cells change in place (update_cell) and must not be cut off
            table.add_column(label, key=key, width=WIDTHS.get(key))
        self._label_columns()
        self.stockout: dict | None = None  # the last skus.stockout reply
        self.set_interval(STOCKOUT_S, lambda: self.spawn(self.reload, group="stockout"))
        super().on_mount()
        if self.bo.loaded:
            self.apply(Changes(stats=True, reload=True, feed=list(self.bo.live.feed)))

    async def reload(self) -> None:
        """The SKUs projected to stock out within their lead time (the rest is the app's)."""
        got = await self.bo.read("skus.stockout", limit=STOCKOUT_SHOWN)
        if got is not None:
            self.stockout = got
            self._show_stockout()

    def _show_stockout(self) -> None:
        """On every terminal, a count and the first SKU beside the trend; on wide ones the
        list in the side panel: SKU, date, days and the demand rate behind it."""
        got = self.stockout
        if got is None:
            return
        skus, total = got["skus"], got["total"]
        head = Text()
        if total:
            first = skus[0]
            head.append(f"stock-out ≤ lead time: {total:,}", style="bold red")
            head.append(f" ({first['sku']} {short_date(first['date'])})")
        self.query_one("#stockout-now", Label).update(head)
        out = Text()
        for s in skus:
            when = "now" if s["days"] <= 0 else f"{s['days']:.0f}d"
            out.append(f"{s['sku']:<11.11} ")
            out.append(f"{short_date(s['date']):>5} {when:>4}", style="red" if s["days"] <= 0 else "yellow")
            out.append(f"  {s['rate']:g}/day {s['basis']}\n", style="dim")
        if total > len(skus):
            out.append(f"… {total - len(skus):,} more\n", style="dim")
        if not total:
            out.append("none projected", style="dim")
        self.query_one("#stockout", Static).update(out)

    # --- drawing ------------------------------------------------------------------

    def apply(self, changes: Changes) -> None:
        live = self.bo.live
        now = live.now
        table = self.query_one("#skus", DataTable)
        if changes.stats:
            self.query_one(KpiBar).show(live.stats)
            spark = live.sparkline()
            self.query_one("#spark", Sparkline).data = spark or [0.0]
            self.query_one("#trend-now", Label).update(f"{int(spark[-1]):,}" if spark else "")
        if changes.reload:
            self._rebuild(table)
        elif changes.rows:
            moved = False  # a row was added or its sort value changed: the order may be wrong
            fn = SORT_KEYS[self.sort_key]
            for sku, row in changes.rows.items():
                if row is None:
                    if sku in self.shown:
                        table.remove_row(sku)
                        self.shown.discard(sku)
                        self._sortvals.pop(sku, None)
                    continue
                value = fn(row)
                if sku in self.shown:
                    for (key, _l, _f), cell in zip(COLUMNS, cells(row, now), strict=True):
                        table.update_cell(sku, key, cell)
                    moved = moved or self._sortvals.get(sku) != value
                elif self._matches(sku):
                    table.add_row(*cells(row, now), key=sku)
                    self.shown.add(sku)
                    moved = True
                else:
                    continue
                self._sortvals[sku] = value
            if moved:
                self._reorder_soon()
        if changes.reload:
            self._progress()
        elif changes.stats and now != self._waits_at:
            self._refresh_waits(table, now)
        self._waits_at = now
        feed = self.query_one("#feed", RichLog)
        if changes.reload:
            feed.clear()
        # only the tail can be seen: writing every line of a busy second costs ~0.3 ms each
        for style, text in changes.feed[-FEED_TAIL:]:
            feed.write(Text(text, style=_FEED_STYLES.get(style, "")))

    def _refresh_waits(self, table: DataTable, now: float | None) -> None:
        """The engine clock moved: redraw the waits of the rows in view (only those)."""
        if not table.row_count:
            return
        top = int(table.scroll_y)
        rows = self.bo.live.rows
        for row in table.ordered_rows[top : top + table.size.height]:
            r = rows.get(row.key.value or "")
            if r is not None:
                table.update_cell(row.key, "wait", wait_cell(r, now))

    def _reorder_soon(self) -> None:
        """Re-sort (and redraw the progress panel) at most once per ``REORDER_S``: a sort
        of 10,000 rows costs ~50 ms, and rows that jump around every 0.3 s cannot be read."""
        if self._reorder_timer is not None:
            return
        wait = max(0.05, self._last_reorder + REORDER_S - time.monotonic())  # (a 0 s timer breaks Textual)
        self._reorder_timer = self.set_timer(wait, self._reorder)

    def _reorder(self) -> None:
        self._reorder_timer = None
        self._last_reorder = time.monotonic()
        self._sort(self.query_one("#skus", DataTable))
        self._progress()

    def _matches(self, sku: str) -> bool:
        return not self.filter or self.filter in sku.lower()

    def _rebuild(self, table: DataTable) -> None:
        now = self.bo.live.now
        cursor = table.cursor_row
        key = self.current_sku()
        table.clear()
        rows = [r for sku, r in self.bo.live.rows.items() if self._matches(sku)]
        fn = SORT_KEYS[self.sort_key]
        rows.sort(key=lambda r: (fn(r), r["sku"]), reverse=self.sort_reverse)
        for r in rows:
            table.add_row(*cells(r, now), key=r["sku"])
        self.shown = {r["sku"] for r in rows}
        self._sortvals = {r["sku"]: fn(r) for r in rows}
        if key in self.shown:
            table.move_cursor(row=table.get_row_index(key))
        elif rows:
            table.move_cursor(row=min(cursor, len(rows) - 1))

    def _sort(self, table: DataTable) -> None:
        rows = self.bo.live.rows
        fn = SORT_KEYS[self.sort_key]
        key = self.current_sku()

        def order(cell) -> tuple:
            sku = str(cell)  # the cell is plain Text (PlainTable): its str is the SKU
            return (fn(rows[sku]), sku) if sku in rows else ((), sku)

        table.sort("sku", key=order, reverse=self.sort_reverse)
        self._sortvals = {sku: fn(rows[sku]) for sku in self.shown if sku in rows}
        if key in self.shown:
            table.move_cursor(row=table.get_row_index(key), animate=False)

    def _progress(self) -> None:
        """Side panel: per SKU (in table order), a bar of its waiting lines covered."""
        if not self.query_one("#side").display:
            return
        table = self.query_one("#skus", DataTable)
        rows = self.bo.live.rows
        out = Text()
        for row in table.ordered_rows[:60]:
            r = rows.get(row.key.value or "")
            if r is None:
                continue
            style = "green" if r["covered_lines"] == r["waiting_lines"] else ("yellow" if r["covered_lines"] else "red")
            out.append(f"{r['sku']:<11.11} ")
            out.append(bar(r["covered_lines"], r["waiting_lines"], 12), style=style)
            out.append(f" {r['covered_lines']}/{r['waiting_lines']} by {short_date(r['covered_by'])}\n")
        self.query_one("#progress", Static).update(out)

    def _label_columns(self) -> None:
        table = self.query_one("#skus", DataTable)
        for key, label, _fn in COLUMNS:
            arrow = ("▼" if self.sort_reverse else "▲") if key == self.sort_key else ""
            table.columns[key].label = Text(label + arrow)  # type: ignore[index]
        table.refresh()

    def on_resize(self) -> None:
        # large terminals: the coverage panel beside the table, a longer event feed
        self.query_one("#side").display = self.size.width >= 140
        self.query_one("#feed").set_class(self.size.height >= 40, "tall")
        self._progress()

    def current_sku(self) -> str | None:
        table = self.query_one("#skus", DataTable)
        if not table.row_count:
            return None
        try:
            return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        except Exception:
            return None

    # --- actions ------------------------------------------------------------------

    async def action_open_sku(self) -> None:
        if isinstance(self.focused, KpiBar):  # Enter on a KPI tile: its explanation
            self.focused.explain()
            return
        if self.focused is self.query_one("#filter", Input):
            self.query_one("#skus", DataTable).focus()
            return
        sku = self.current_sku()
        if sku:
            await self.bo.open_sku(sku)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value:
            self.spawn(self.bo.open_sku, event.row_key.value)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        key = event.column_key.value or "sku"
        self.sort_reverse = not self.sort_reverse if key == self.sort_key else key != "sku"
        self.sort_key = key
        self._resort()

    def action_sort(self) -> None:
        keys = [k for k, _l, _f in COLUMNS]
        self.sort_key = keys[(keys.index(self.sort_key) + 1) % len(keys)]
        self.sort_reverse = self.sort_key not in ("sku", "next", "cover", "state")
        self._resort()

    def action_reverse(self) -> None:
        self.sort_reverse = not self.sort_reverse
        self._resort()

    def _resort(self) -> None:
        self._label_columns()
        self._sort(self.query_one("#skus", DataTable))
        self._progress()

    def action_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = ""
        self.query_one("#skus", DataTable).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self.filter = event.value.strip().lower()
            self._rebuild(self.query_one("#skus", DataTable))
            self._progress()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            self.query_one("#skus", DataTable).focus()


_FEED_STYLES = {"warning": "yellow", "accent": "cyan", "success": "green", "error": "bold red"}
