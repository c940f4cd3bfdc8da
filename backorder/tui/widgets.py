"""Small widgets shared by the screens, and the text formats of numbers.

Everything shown here may come from outside: SKUs, account names, order numbers and error
messages are written by customers and sales channels. Textual reads a ``str`` given to a
DataTable cell, a Label, a Static or a notification as markup, so ``x[/]`` would crash the
console and ``[link=...]`` would plant a link. Untrusted text is therefore always passed
as ``rich.text.Text`` (or with ``markup=False``), never as a markup string."""

from __future__ import annotations

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


class PlainTable(DataTable):
    """A DataTable whose ``str`` cells are plain text (DataTable parses a str as markup).
    Cells keep their text as ``Text``: a sort key reads them with ``str(cell)``."""

    def add_row(self, *cells, **kwargs):
        return super().add_row(*(plain(c) if isinstance(c, str) else c for c in cells), **kwargs)

    def update_cell(self, row_key, column_key, value, **kwargs) -> None:
        super().update_cell(row_key, column_key, plain(value) if isinstance(value, str) else value, **kwargs)

    def update_cell_at(self, coordinate, value, **kwargs) -> None:
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


class KpiBar(Widget):
    """The headline KPIs against their targets, then the counts behind the backlog."""

    DEFAULT_CSS = "KpiBar { height: auto; padding: 0 1; }"

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.stats: dict | None = None

    def show(self, stats: dict | None) -> None:
        self.stats = stats
        self.refresh(layout=True)

    def get_content_height(self, container, viewport, width: int) -> int:
        return 2 if width < 120 else 1

    def render(self) -> Text:
        st = self.stats
        if st is None:
            return Text("waiting for the daemon…", style="dim")
        t, k = st["targets"], st["counts"]
        fr, lt, acc = st["fulfillment_rate"], st["avg_reorder_lead_time_hours"], st["order_accuracy"]

        def tile(name: str, value: str, target: str, met: bool | None) -> Text:
            mark, style = ("·", "dim") if met is None else (("✓", "bold green") if met else ("✗", "bold red"))
            return Text.assemble((f"{name} ", "bold"), (f"{value} {mark}", style), (f" {target}", "dim"))

        kpis = [
            tile(
                "Fill",
                pct(fr),
                f">{100 * t['fulfillment_rate']:.0f}%",
                None if fr is None else fr > t["fulfillment_rate"],
            ),
            tile(
                "Lead",
                hours(lt),
                f"<{t['avg_reorder_lead_time_hours']:.0f}h",
                None if lt is None else lt < t["avg_reorder_lead_time_hours"],
            ),
            tile(
                "Accuracy",
                pct(acc),
                f"={100 * t['order_accuracy']:.0f}%",
                None if acc is None else acc >= t["order_accuracy"],
            ),
        ]
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
        sep = Text("  │  ", style="dim")
        head = Text("  ").join(kpis)
        if self.size.width < 120:
            return Text.assemble(head, "\n", counts)
        return Text.assemble(head, sep, counts)


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
