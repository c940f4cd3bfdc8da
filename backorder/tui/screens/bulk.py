"""The form of a bulk action (``orders.bulk``) on one SKU's orders: which action, which
orders. Nothing is sent from here: the screen that opened it asks the daemon for the
count (a dry run), shows it in a ``ConfirmScreen`` and applies only that set."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

ACTIONS = ("cancel", "expedite", "release", "retry")
VERBS = {"cancel": "Cancel", "expedite": "Expedite", "release": "Release the hold of", "retry": "Retry"}


def bulk_request(sku: str, values: dict[str, str]) -> tuple[dict | None, str]:
    """The ``orders.bulk`` fields for the form's values, or (None, what is wrong)."""
    action = values.get("action", "").strip().lower()
    if action not in ACTIONS:
        return None, f"action: one of {', '.join(ACTIONS)}"
    flt: dict = {"sku": sku}
    for key in ("channel", "account"):
        if values.get(key, "").strip():
            flt[key] = values[key].strip()
    hours = values.get("min_waiting_hours", "").strip()
    if hours:
        try:
            flt["min_waiting_hours"] = float(hours)
        except ValueError:
            return None, "waiting at least: a number of hours"
        if not 0 <= flt["min_waiting_hours"] <= 1_000_000:
            return None, "waiting at least: 0 to 1,000,000 hours"
    reason = values.get("reason", "").strip()
    if action == "expedite" and not reason:
        return None, "an expedite needs a reason (it is shown in the queue)"
    return {"action": action, "filter": flt, "reason": reason}, ""


def question(sku: str, req: dict, dry: dict) -> str:
    """What the person confirms: the action, how many, which ones (the first few)."""
    flt = req["filter"]
    what = "dead letters" if req["action"] == "retry" else "orders"
    where = [f"of {sku}"]
    if "channel" in flt:
        where.append(f"channel {flt['channel']}")
    if "account" in flt:
        where.append(f"account {flt['account']}")
    if "min_waiting_hours" in flt:
        where.append(f"waiting ≥ {flt['min_waiting_hours']:g} h")
    ids = ", ".join(str(i) for i in dry["ids"][:5]) + (" …" if dry["count"] > 5 else "")
    reason = f" Reason: {req['reason']}." if req["reason"] else ""
    return f"{VERBS[req['action']]} {dry['count']} {what} ({', '.join(where)})? {ids}.{reason}"


class BulkScreen(ModalScreen[dict | None]):
    """Enter in any field submits; Esc cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    BulkScreen { align: center middle; }
    BulkScreen > Vertical { width: 72; max-width: 95%; height: auto; border: thick $warning; padding: 1 2;
                            background: $panel; }
    BulkScreen .bulk-label { width: 22; }
    BulkScreen Horizontal { height: auto; }
    BulkScreen Input { width: 1fr; }
    """
    FIELDS = (
        ("action", "Action", "cancel | expedite | release | retry"),
        ("channel", "Channel", "any"),
        ("account", "Account", "any"),
        ("min_waiting_hours", "Waiting at least (h)", "any age"),
        ("reason", "Reason", "journaled with each order"),
    )

    def __init__(self, sku: str) -> None:
        super().__init__()
        self.sku = sku

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Bulk action on the orders of {self.sku}", markup=False)
            for key, label, hint in self.FIELDS:
                with Horizontal():
                    yield Label(label, classes="bulk-label")
                    yield Input(placeholder=hint, id=f"bulk-{key}")
            yield Static("", id="bulk-msg")
            yield Label("Enter: count the orders first    Esc: cancel", classes="hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        values = {key: self.query_one(f"#bulk-{key}", Input).value for key, _l, _h in self.FIELDS}
        req, problem = bulk_request(self.sku, values)
        if req is None:
            self.query_one("#bulk-msg", Static).update(problem)
            return
        self.dismiss(req)

    def action_cancel(self) -> None:
        self.dismiss(None)
