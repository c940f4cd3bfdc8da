"""What every screen has: the header, the connection banner, the footer, and hooks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable

from backorder.tui.connection import ConnState
from backorder.tui.live import Changes
from backorder.tui.widgets import ConnBanner

if TYPE_CHECKING:
    from backorder.tui.app import BackorderApp

# Actions that send a state-changing request: hidden when the connection is read-only.
WRITE_ACTIONS = frozenset(
    {
        "save",
        "confirm_pick",
        "move_date",
        "receive",
        "cancel_order",
        "retry_letter",
        "retry_group",
        "discard_letter",
        "retry_notice",
        "retry_all_dead",
        "expedite_order",
        "bulk",
    }
)


class BoScreen(Screen):
    NAME = ""
    BINDINGS = [Binding("escape", "back", "Back")]
    _reading = False  # refresh_later: a read is in flight
    _again = False  # refresh_later: events came during it

    @property
    def bo(self) -> BackorderApp:
        return self.app  # type: ignore[return-value]

    def on_mount(self) -> None:
        self.show_conn(self.bo.conn.state)

    def show_conn(self, state: ConnState) -> None:
        for banner in self.query(ConnBanner):
            banner.show_state(state, self.bo.socket)
        if state.connected and not state.stalled:
            self.spawn(self.reload, group="reload")

    def spawn(self, fn, *args, group: str | None = None) -> None:
        """Run ``await fn(*args)`` as a worker; with a group, a newer one replaces an older one.
        (The coroutine is created only when the worker starts: one replaced before it
        started is never created, so none is left un-awaited.)"""

        async def job() -> None:
            await fn(*args)

        self.run_worker(job, group=group or "default", exclusive=group is not None, exit_on_error=False)

    def refresh_later(self) -> None:
        """Re-read after events: at most one read in flight, and one more after it if events
        came meanwhile (a steady stream must not cancel every read before it answers)."""
        if self._reading:
            self._again = True
            return
        self._reading = True

        async def loop() -> None:
            try:
                while True:
                    self._again = False
                    await self.reload()
                    if not self._again:
                        return
            finally:
                self._reading = False

        self.run_worker(loop, group="refresh", exit_on_error=False)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in WRITE_ACTIONS and self.bo.read_only:
            return False  # hidden from the footer, and refused
        return True

    def cursor_key(self, selector: str) -> str | None:
        """The row key under the cursor of a table (None when it is empty)."""
        t = self.query_one(selector, DataTable)
        if not t.row_count:
            return None
        return t.coordinate_to_cell_key(t.cursor_coordinate).row_key.value

    async def reload(self) -> None:
        """Fetch what this screen shows (on open and after a reconnect)."""

    def apply(self, changes: Changes) -> None:
        """Redraw what ``changes`` touched."""

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 2:
            self.app.pop_screen()
