"""``?``: every key of the console, by screen."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP = """\
# backorder console — keys

| Anywhere | |
|---|---|
| `?` | this help (Esc closes) |
| `d` / `Esc` | back to the dashboard / previous screen |
| `o` | orders: search by order id, external id or order number |
| `p` | procurement: purchase orders and transfers |
| `k` | picking: shipments waiting for pick |
| `y` | allocation policy (FIFO / priority, weights) |
| `t` | dark / light theme |
| `q` | quit |

| Dashboard | |
|---|---|
| `↑` `↓` `PgUp` `PgDn` | move in the SKU table |
| `Enter` | open the SKU under the cursor |
| `/` | filter SKUs by typing (Enter: back to the table, Esc: clear) |
| `s` / `S` | sort by the next column / reverse (or click a header) |

| SKU | |
|---|---|
| `Tab` | move between the tables and the policy form |
| `Enter` | on a waiting line: open its order |
| `Ctrl+S` | save the reorder policy (asks for confirmation) |

| Orders | Procurement | Picking | Policy |
|---|---|---|---|
| `/` search · `Enter` open | `m` move expected date | `c` confirm pick | `f` / `r` FIFO / priority |
| `x` cancel order | `a` all / open only | `Enter` show label | `Ctrl+S` save weights |

Every change asks for confirmation first. On a read-only connection the keys that change
something are hidden and the daemon refuses them (`forbidden`).
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 90%; max-width: 110; height: 90%; border: thick $accent;
                                  background: $panel; }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Markdown(HELP)

    async def action_dismiss(self, result=None) -> None:
        self.dismiss(result)
