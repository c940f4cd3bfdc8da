"""``?``: every key of the console, by screen."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

# (section, [(keys, what)]): one line per key, so it reads at 80x24 too.
HELP = [
    (
        "Anywhere",
        [
            ("?", "this help (Esc closes)"),
            ("Esc / d", "back to the previous screen / the dashboard"),
            ("o", "orders: search by order id, external id or order number"),
            ("p", "procurement: purchase orders and transfers"),
            ("k", "picking: shipments waiting for pick"),
            ("y", "allocation policy (FIFO / priority, weights)"),
            ("i", "intake: sources, rejection rates, dead letters"),
            ("n", "notifications: the outbox, breakers"),
            ("t", "dark / light theme"),
            ("q", "quit"),
        ],
    ),
    (
        "Dashboard",
        [
            ("↑ ↓ PgUp PgDn", "move in the SKU table (the mouse works too)"),
            ("Enter", "open the SKU under the cursor"),
            ("/", "filter SKUs by typing (Enter: to the table, Esc: clear)"),
            ("s / S", "sort by the next column / reverse (or click a header)"),
            ("Tab ← → Enter", "a KPI tile (7 days): what it counts, by window (or click it)"),
        ],
    ),
    (
        "SKU",
        [
            ("Tab", "move between the tables and the policy form"),
            ("Enter", "on a waiting line: open its order"),
            ("Ctrl+S", "save the reorder policy (asks first)"),
            ("b", "bulk action on its orders: shows the count, asks, then applies"),
        ],
    ),
    (
        "Orders",
        [
            ("/", "search"),
            ("Enter", "on a line: open its SKU"),
            ("x", "cancel the order (asks first)"),
            ("e", "expedite the order, with a reason (asks first)"),
        ],
    ),
    (
        "Procurement",
        [
            ("m", "move the expected date (shows who it delays, asks first)"),
            ("r", "receive units against it (shows who gets them, asks first)"),
            ("a", "open / all requests"),
            ("Enter", "open the request's SKU"),
        ],
    ),
    ("Picking", [("c", "confirm the pick: label, tracking, shipped (asks first)")]),
    (
        "Intake",
        [
            ("r", "retry the selected dead letter (asks first)"),
            ("g", "retry every letter of its cause and channel (asks first)"),
            ("x", "discard the selected letter, with a reason (asks first)"),
        ],
    ),
    (
        "Notifications",
        [
            ("f", "filter: all / pending / sent / dead / unrouted"),
            ("r / R", "send the selected / every dead notice again (asks first)"),
        ],
    ),
    ("Policy", [("f / r", "choose FIFO / priority"), ("Ctrl+S", "save mode and weights (asks first)")]),
]
NOTE = (
    "Every change asks for confirmation. On a read-only connection the keys that change "
    "something are hidden, and the daemon refuses them (forbidden)."
)


def help_text() -> Text:
    out = Text()
    for section, keys in HELP:
        out.append(f"{section}\n", style="bold underline")
        for key, what in keys:
            out.append(f"  {key:<14}", style="bold cyan")
            out.append(f"{what}\n")
    out.append(NOTE, style="dim")
    return out


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 90%; max-width: 90; height: 90%; border: thick $accent;
                                  background: $panel; padding: 0 1; }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll() as box:
            box.border_title = "backorder console — keys"
            yield Static(help_text())

    async def action_dismiss(self, result=None) -> None:
        self.dismiss(result)
