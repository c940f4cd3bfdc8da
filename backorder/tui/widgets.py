"""Small widgets shared by the screens, and the text formats of numbers.

Everything shown here may come from outside: SKUs, account names, order numbers and error
messages are written by customers and sales channels. Textual reads a ``str`` given to a
DataTable cell, a Label, a Static or a notification as markup, so ``x[/]`` would crash the
console and ``[link=...]`` would plant a link. Untrusted text is therefore always passed
as ``rich.text.Text`` (or with ``markup=False``), never as a markup string."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import DataTable, Input, Label, Static

from backorder.documents.cells import one_line
from backorder.tui.connection import ConnState

STATE_TEXT = {"stock_out": ("OUT", "bold red"), "below_reorder_point": ("LOW", "yellow"), "ok": ("ok", "green")}


def pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def hours(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x:.1f}h" if x < 48 else f"{x / 24:.1f}d"


def short_date(d: str | None) -> str:
    """'2026-01-07' -> '01-07'; 'now' and None stay readable."""
    if d is None:
        return "—"
    return d[5:] if len(d) == 10 else d


def state_text(state: str) -> Text:
    label, style = STATE_TEXT.get(state, (state, ""))
    return Text(label, style=style)


def bar(done: int, total: int, width: int = 4) -> str:
    if total <= 0:
        return " " * width
    eighths = round(8 * width * min(done, total) / total)
    full, part = divmod(eighths, 8)
    return ("█" * full + (" ▏▎▍▌▋▊▉"[part] if part else "")).ljust(width, "░")[:width]


def cover_text(row: dict) -> Text:
    lines = row["waiting_lines"]
    covered = row["covered_lines"]
    style = "green" if covered == lines else ("yellow" if covered else "red")
    return Text(f"{bar(covered, lines)} {short_date(row['covered_by'])}", style=style)


def next_text(row: dict) -> str:
    n = row.get("next_inbound")
    return "—" if not n else f"{n['qty']} {short_date(n['expected_date'])}"


def plain(value: str) -> Text:
    """A one-line table cell showing ``value`` exactly: no markup, control characters as
    escapes (a newline or an escape sequence would break the row or the terminal)."""
    return Text(one_line(value), no_wrap=True, end="")


def _comparable(cell: object) -> object:
    # rich's Text compares its characters and spans but not its base style
    return (cell.plain, str(cell.style), tuple(cell.spans)) if isinstance(cell, Text) else cell


class PlainTable(DataTable):
    """A DataTable whose ``str`` cells are plain text (DataTable parses a str as markup).
    Cells keep their text as ``Text``: a sort key reads them with ``str(cell)``."""

    _shown: list | None = None  # what show_rows put there, until anything else changes the rows

    def show_rows(self, rows: Iterable[tuple[Sequence[object], str | None]]) -> None:
        """Show exactly ``rows`` (``(cells, key)`` each), the cursor staying on its row.

        A refresh that brings the rows already shown changes nothing: no flicker, the
        cursor does not move, and the columns keep their widths (a refilled DataTable
        sizes its columns only at its next idle, showing them as wide as their headers
        until then)."""
        wanted = [(tuple(plain(c) if isinstance(c, str) else c for c in cells), key) for cells, key in rows]
        seen = [(tuple(map(_comparable, cells)), key) for cells, key in wanted]
        if seen == self._shown:
            return
        cursor = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value if self.row_count else None
        self.clear()
        for cells, key in wanted:
            super().add_row(*cells, key=key)
        self._shown = seen
        if cursor is not None and cursor in self.rows:
            self.move_cursor(row=self.get_row_index(cursor))

    def clear(self, columns: bool = False):
        self._shown = None
        return super().clear(columns)

    def add_row(self, *cells, **kwargs):
        self._shown = None
        return super().add_row(*(plain(c) if isinstance(c, str) else c for c in cells), **kwargs)

    def remove_row(self, row_key):
        self._shown = None
        return super().remove_row(row_key)

    def sort(self, *columns, **kwargs):
        self._shown = None
        return super().sort(*columns, **kwargs)

    def update_cell(self, row_key, column_key, value, **kwargs) -> None:
        self._shown = None
        super().update_cell(row_key, column_key, plain(value) if isinstance(value, str) else value, **kwargs)

    def update_cell_at(self, coordinate, value, **kwargs) -> None:
        self._shown = None
        super().update_cell_at(coordinate, plain(value) if isinstance(value, str) else value, **kwargs)


class ConnBanner(Static):
    """Shown only while the daemon is unreachable."""

    DEFAULT_CSS = """
    ConnBanner { display: none; height: 1; background: $error; color: $text; text-style: bold; padding: 0 1; }
    ConnBanner.down { display: block; }
    """

    def show_state(self, state: ConnState, socket: str) -> None:
        self.set_class(not state.connected or state.stalled, "down")
        if not state.connected:
            why = f" ({state.error})" if state.error else ""
            self.update(
                Text(
                    f"⚠ disconnected — retrying (attempt {state.attempt}, next in {state.retry_in:.1f} s)"
                    f" · {socket}{why}"
                )
            )
        elif state.stalled:
            self.update(Text(f"⚠ the daemon is not answering — waiting (the screen may be stale) · {socket}"))


# The KPI tiles of the dashboard: (name in stats.kpis, label). Each shows the 7-day
# window against the KPI's target (``target`` in stats): hours must stay under it, a
# ratio reach it.
TILE_WINDOW = "7d"
TILES: list[tuple[str, str]] = [
    ("backorder_fill_rate_lines", "Fill"),
    ("unit_fill_rate_at_order", "At order"),
    ("reorder_lead_time_hours", "Lead"),
    ("order_accuracy_post_backorder", "Accuracy"),
]


def in_hours(name: str) -> bool:
    return name.endswith("_hours")


def meets(name: str, value: float, target: float) -> bool:
    return value < target if in_hours(name) else value >= target


def target_text(name: str, target: float) -> str:
    return f"<{target:.0f}h" if in_hours(name) else f"≥{100 * target:.0f}%"


SEP = "  │  "  # between the tiles and the counts when both fit on one line


def window_of(kpi: dict, window: str) -> dict:
    return next((w for w in kpi["windows"] if w["window"] == window), {})


class KpiBar(Widget, can_focus=True):
    """The KPIs against their targets, each over the last 7 engine days, then the counts
    behind the backlog. A tile opens its explanation (``KpiExplain``) on a click, or on
    Enter once the bar is focused (Tab; ← → pick the tile)."""

    DEFAULT_CSS = "KpiBar { height: auto; padding: 0 1; } KpiBar:focus { background: $boost; }"
    BINDINGS = [
        Binding("left", "select(-1)", "Prev KPI", show=False),
        Binding("right", "select(1)", "Next KPI", show=False),
    ]

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.stats: dict | None = None
        self.selected = 0
        self._spans: list[tuple[int, int]] = []  # (start, end) column of each tile on the first line

    def show(self, stats: dict | None) -> None:
        self.stats = stats
        self.refresh(layout=True)

    def get_content_height(self, container, viewport, width: int) -> int:
        head, counts = self._parts(width)
        return 1 if self._one_line(head, counts, width) else 2

    @staticmethod
    def _one_line(head: Text, counts: Text, width: int) -> bool:
        return head.cell_len + len(SEP) + counts.cell_len <= width

    def _parts(self, width: int) -> tuple[Text, Text]:
        """(the tiles, the counts); the targets beside the tiles when there is room."""
        st = self.stats
        if st is None:
            return Text("waiting for the daemon…", style="dim"), Text()
        k = st["counts"]
        targets = width >= 100
        head = Text()
        self._spans = []
        for n, (name, label) in enumerate(TILES):
            if n:
                head.append("  ")
            kpi = st.get("kpis", {}).get(name)
            value = window_of(kpi, TILE_WINDOW).get("value") if kpi else None
            if value is None or kpi is None:
                mark, style = "·", "dim"
            else:
                mark, style = ("✓", "bold green") if meets(name, value, kpi["target"]) else ("✗", "bold red")
            shown = hours(value) if in_hours(name) else pct(value)
            start = head.cell_len
            tile = Text.assemble((f"{label} ", "bold"), (TILE_WINDOW, "dim"), " ", (f"{shown} {mark}", style))
            if targets and kpi is not None:
                tile.append(f" {target_text(name, kpi['target'])}", style="dim")
            if self.has_focus and n == self.selected:
                tile.stylize("reverse")
            head.append_text(tile)
            self._spans.append((start, head.cell_len))
        counts = Text.assemble(
            ("BO lines ", "bold"),
            f"{k['open_backorder_lines']:,}",
            "  ",
            ("units waiting ", "bold"),
            f"{k['units_waiting']:,}",
            "  ",
            ("oldest ", "bold"),
            hours(k["oldest_wait_hours"]),
            "  ",
            ("shipped today ", "bold"),
            f"{k['shipments_today']:,}",
        )
        modes = st.get("policy_modes") or {}
        if modes.get("auto") or modes.get("suggest"):  # the planner is in use: who sets the levels
            counts.append_text(
                Text.assemble(
                    "  ",
                    ("planner ", "bold"),
                    f"auto {modes.get('auto', 0):,} · suggest {modes.get('suggest', 0):,} · manual {modes.get('manual', 0):,}",
                )
            )
        worker = st.get("planner") or {}
        if worker.get("state") in ("starting", "restarting") and worker.get("restarts"):
            # the planner's worker is down: levels are kept meanwhile, but someone should know
            counts.append_text(
                Text(f"  planner worker {worker['state']} ({worker['restarts']} restarts)", style="bold red")
            )
        return head, counts

    def render(self) -> Text:
        width = self.content_region.width or self.size.width
        head, counts = self._parts(width)
        if self.stats is None:
            return head
        if self._one_line(head, counts, width):
            return Text.assemble(head, Text(SEP, style="dim"), counts)
        return Text.assemble(head, "\n", counts)

    def action_select(self, step: int) -> None:
        self.selected = (self.selected + step) % len(TILES)
        self.refresh()

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    def tile_at(self, x: int, y: int) -> int | None:
        """The tile under a content column and row (None: the counts, or between tiles)."""
        if y != 0:
            return None
        return next((n for n, (a, b) in enumerate(self._spans) if a <= x < b), None)

    def on_click(self, event) -> None:
        offset = event.get_content_offset(self)
        tile = None if offset is None else self.tile_at(offset.x, offset.y)
        if tile is not None:
            self.selected = tile
            self.explain()

    def explain(self) -> None:
        """Open the selected tile's explanation panel (nothing before the first stats)."""
        if self.stats and TILES[self.selected][0] in self.stats.get("kpis", {}):
            name = TILES[self.selected][0]
            self.app.push_screen(KpiExplain(name, self.stats["kpis"][name]))


def _figure(value, unit: str) -> str:
    if value is None:
        return "—"
    return hours(value) if unit == "hours" else pct(value)


class KpiExplain(ModalScreen[None]):
    """What a KPI counts: its definition, formula and target, and its numerator,
    denominator and value in every window (the lead time: also p50 / p90, the late open
    requests, and per source). Esc or Enter closes it."""

    BINDINGS = [Binding("escape,enter,q", "close", "Close", priority=True)]
    DEFAULT_CSS = """
    KpiExplain { align: center middle; }
    KpiExplain > Vertical { width: 96; max-width: 98%; height: auto; max-height: 95%; border: thick $accent;
                            padding: 0 1; background: $panel; }
    KpiExplain #kpi-windows { height: auto; max-height: 12; }
    """

    def __init__(self, name: str, kpi: dict) -> None:
        super().__init__()
        self.kpi_name = name
        self.kpi = kpi

    def compose(self) -> ComposeResult:
        kpi = self.kpi
        lead = self.kpi_name == "reorder_lead_time_hours"
        unit = "hours" if lead else "ratio"
        with Vertical():
            yield Label(Text(self.kpi_name, style="bold"))
            yield Static(Text(kpi["help"]), id="kpi-help")
            yield Static(
                Text.assemble(
                    ("formula ", "bold"), kpi["formula"], "\n", ("target  ", "bold"), _figure(kpi["target"], unit)
                ),
                id="kpi-formula",
            )
            table = PlainTable(id="kpi-windows", cursor_type="none", show_cursor=False)
            columns = ["window", "since", "numerator", "denominator", "value"]
            if lead:
                columns += ["p50", "p90", "late open"]
            for c in columns:
                table.add_column(c, key=c)
            for w in kpi["windows"]:
                rows = [(w["window"], w)]
                if lead:
                    rows += [(f"  {source}", fig) for source, fig in w.get("by_source", {}).items()]
                for label, fig in rows:
                    cells = [
                        label,
                        w.get("since") or "—",
                        f"{fig['numerator']:,}",
                        f"{fig['denominator']:,}",
                        _figure(fig["value"], unit),
                    ]
                    if lead:
                        cells += [_figure(fig["p50"], unit), _figure(fig["p90"], unit), str(fig["open_overdue"])]
                    table.add_row(*cells)
            yield table
            yield Label("[b]Esc[/b]/Enter: close", classes="hint")

    def action_close(self) -> None:
        self.dismiss(None)


BLOCKS = "▁▂▃▄▅▆▇█"


def spark(values: list[float], top: float) -> str:
    """A one-line bar chart of ``values`` scaled to ``top`` (shared by two series so they
    compare), a space for 0."""
    if top <= 0:
        return " " * len(values)
    return "".join(
        " " if v <= 0 else BLOCKS[min(len(BLOCKS) - 1, int(v / top * (len(BLOCKS) - 1) + 0.5))] for v in values
    )


class ConfirmScreen(ModalScreen[bool]):
    """Yes / no before anything changes in the daemon."""

    BINDINGS = [Binding("y,enter", "answer(True)", "Yes"), Binding("n,escape", "answer(False)", "No")]
    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen > Vertical { width: 64; max-width: 95%; height: auto; border: thick $warning; padding: 1 2;
                               background: $panel; }
    """

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.question, markup=False)
            yield Label("[b]y[/b]/Enter: yes    [b]n[/b]/Esc: no", classes="hint")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class PromptScreen(ModalScreen[str | None]):
    """Ask for one value (Enter submits, Esc cancels)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    PromptScreen { align: center middle; }
    PromptScreen > Vertical { width: 64; max-width: 95%; height: auto; border: thick $accent; padding: 1 2;
                              background: $panel; }
    """

    def __init__(self, question: str, value: str = "", placeholder: str = "") -> None:
        super().__init__()
        self.question, self.value, self.placeholder = question, value, placeholder

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.question, markup=False)
            yield Input(self.value, placeholder=self.placeholder, id="prompt")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)


def actor_text(actor: str | None) -> str:
    """Who ordered a journaled change (an audit row's ``actor``); ``—`` for rows journaled
    before actors were recorded."""
    return actor or "—"


def audit_rows(audit: dict | None, other: str) -> list[tuple[tuple[str, ...], None]]:
    """An ``audit.query`` answer as ``PlainTable.show_rows`` rows: seq, time, event,
    ``other`` (the record's ``sku`` on an order's screen, its ``order_id`` on a SKU's),
    cause, actor."""
    return [
        (
            (
                str(rec["seq"]),
                rec["at"].replace("T", " ").rstrip("Z"),
                rec["type"],
                rec[other] or "",
                rec["cause"],
                actor_text(rec.get("actor")),
            ),
            None,
        )
        for rec in (audit or {}).get("records", [])
    ]
