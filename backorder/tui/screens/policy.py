"""The allocation policy: FIFO or priority, and the priority weights (with confirmation)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Header, Input, Label, Static

from backorder.tui.live import Changes
from backorder.tui.screens.base import BoScreen
from backorder.tui.widgets import ConfirmScreen, ConnBanner

WEIGHTS = [("rush", "Rush weight (h)"), ("value", "Value weight (h per 1.00)"), ("age", "Age weight (per h)")]
EXPLAIN = (
    "FIFO serves waiting lines by order time. Priority serves the highest rank first: "
    "rank = rush × [rush or priority order] + value × line value + age × hours waited. "
    "Every line gains `age` per hour, so nothing starves. Switching re-orders every queue; "
    "units already allocated stay where they are."
)


class PolicyScreen(BoScreen):
    NAME = "policy"
    AUTO_FOCUS = ""  # no field focused: f / r / Ctrl+S work at once; Tab reaches the weights
    BINDINGS = [
        Binding("f", "mode('fifo')", "FIFO"),
        Binding("r", "mode('priority')", "Priority"),
        Binding("ctrl+s", "save", "Save"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.policy: dict | None = None
        self.mode = "fifo"

    def compose(self) -> ComposeResult:
        yield Header()
        yield ConnBanner()
        with Vertical(id="policy-box"):
            yield Static("", id="policy-now")
            yield Static("", id="policy-mode")
            for key, label in WEIGHTS:
                with Horizontal(classes="field"):
                    yield Label(label, classes="field-label wide")
                    yield Input(id=f"w-{key}", classes="field-input", select_on_focus=False)
            yield Static("", id="policy-msg")
            yield Static(Text(EXPLAIN, style="dim"), id="policy-explain")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = "allocation policy"
        for inp in self.query(".field-input").results(Input):
            inp.disabled = self.bo.read_only
        super().on_mount()

    async def reload(self) -> None:
        got = await self.bo.read("policy.get")
        if got is not None:
            self.policy = got
            self.mode = got["mode"]
            for key, _label in WEIGHTS:
                self.query_one(f"#w-{key}", Input).value = f"{got['weights'][key]:g}"
            self._show()

    def _show(self) -> None:
        p = self.policy or {"mode": "?", "weights": {}}
        w = p["weights"]
        self.query_one("#policy-now", Static).update(
            Text.assemble(
                ("In force: ", "bold"),
                (p["mode"].upper(), "bold cyan"),
                "  weights " + ", ".join(f"{k} {w.get(k, 0):g}" for k, _ in WEIGHTS),
            )
        )
        self.query_one("#policy-mode", Static).update(
            Text.assemble(
                ("Mode to save: ", "bold"),
                ("[FIFO]" if self.mode == "fifo" else " FIFO ", "bold reverse" if self.mode == "fifo" else ""),
                "  ",
                (
                    "[PRIORITY]" if self.mode == "priority" else " PRIORITY ",
                    "bold reverse" if self.mode == "priority" else "",
                ),
                ("   f / r to choose", "dim"),
            )
        )

    def apply(self, changes: Changes) -> None:
        if changes.policy or changes.reload:
            self.spawn(self.reload, group="reload")

    def action_mode(self, mode: str) -> None:
        self.mode = mode
        self._show()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "mode" and self.bo.read_only:
            return False
        return super().check_action(action, parameters)

    def action_save(self) -> None:
        msg = self.query_one("#policy-msg", Static)
        weights = {}
        for key, label in WEIGHTS:
            text = self.query_one(f"#w-{key}", Input).value.strip()
            try:
                v = float(text)
            except ValueError:
                msg.update(Text(f"{label}: a number ≥ 0 is needed", style="bold red"))
                return
            if v < 0:
                msg.update(Text(f"{label}: must be ≥ 0", style="bold red"))
                return
            weights[key] = v
        desc = f"{self.mode.upper()} with weights " + ", ".join(f"{k} {v:g}" for k, v in weights.items())

        def confirmed(yes: bool) -> None:
            if yes:
                self.spawn(self._send, weights)
            else:
                msg.update("not saved")

        self.app.push_screen(ConfirmScreen(f"Switch allocation to {desc}? Every queue is re-ordered."), confirmed)

    async def _send(self, weights: dict) -> None:
        got = await self.bo.write("policy.set", mode=self.mode, weights=weights)
        if got is not None:
            self.query_one("#policy-msg", Static).update(Text("saved", style="bold green"))
            await self.reload()
