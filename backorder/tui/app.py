"""BackorderApp: the supervisor console (Textual, asyncio), a client of the control socket.

The app owns one ``Connection`` and one ``LiveState``. Event lines only mark what they
touched; a timer applies the marks at most every ``refresh_s`` seconds — one
``skus.board`` for the touched SKUs, one ``stats`` — and hands the screens a ``Changes``
so they redraw only what changed. Nothing is fetched while nothing happens.
"""

from __future__ import annotations

import logging
from typing import Any

from textual.app import App
from textual.binding import Binding
from textual.css.query import NoMatches

from backorder.tui.connection import CallError, Connection, ConnState
from backorder.tui.live import Changes, LiveState
from backorder.tui.screens.base import BoScreen
from backorder.tui.screens.dashboard import DashboardScreen
from backorder.tui.screens.help import HelpScreen

log = logging.getLogger("backorder.tui")

BOARD_BATCH = 2000  # touched SKUs re-fetched by name; beyond that, reload the whole board
FEED_SEED = 40  # events shown from the journal when the console (re)connects


class BackorderApp(App[None]):
    TITLE = "backorder"
    ENABLE_COMMAND_PALETTE = False  # every action has its own key; ctrl+p would hide one
    CSS_PATH = "app.tcss"
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("d", "screen('dashboard')", "Dash", show=False),
        Binding("o", "screen('order')", "Orders"),
        Binding("p", "screen('procurement')", "Procure"),
        Binding("k", "screen('picking')", "Pick"),
        Binding("y", "screen('policy')", "Policy"),
        Binding("i", "screen('intake')", "Intake"),
        Binding("n", "screen('notifications')", "Notices"),
        Binding("t", "toggle_theme", "Theme"),
    ]

    def __init__(
        self, socket: str, *, refresh_s: float = 0.3, timeout: float = 5.0, backoff: tuple[float, float] = (0.2, 3.0)
    ) -> None:
        super().__init__()
        self.socket = socket
        self.refresh_s = refresh_s
        self.live = LiveState()
        self.conn = Connection(
            socket, on_event=self._on_event, on_state=self._on_state, timeout=timeout, backoff=backoff
        )
        self.loaded = False  # the first full load after a (re)connect is done
        self.loads = 0  # full loads so far (tests wait on it)
        self._flushing = False

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity="information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """Notifications are plain text, whoever raises them (a widget's ``notify`` passes
        ``markup=True``): they quote the daemon's messages, which quote order data, and a
        SKU ``x[/]`` in an error must not be read as markup."""
        del markup  # never: this console writes no markup in notifications
        if timeout is None:
            super().notify(message, title=title, severity=severity, markup=False)
        else:
            super().notify(message, title=title, severity=severity, timeout=timeout, markup=False)

    @property
    def read_only(self) -> bool:
        return self.conn.state.role == "read"

    def on_mount(self) -> None:
        self.theme = "textual-dark"
        self.push_screen(DashboardScreen())
        self.run_worker(self.conn.run(on_connected=self._full_load), name="connection", exit_on_error=False)
        self.set_interval(self.refresh_s, self._tick)

    # --- connection callbacks -------------------------------------------------

    def _on_event(self, msg: dict) -> None:
        self.live.note(msg)

    def _on_state(self, state: ConnState) -> None:
        if not state.connected:
            self.loaded = False
        for screen in self.screen_stack:
            if isinstance(screen, BoScreen):
                screen.show_conn(state)
        self.sub_title = ("not answering" if state.stalled else "live") if state.connected else "disconnected"
        self.refresh_bindings()

    async def _full_load(self) -> None:
        """After every (re)connect: everything the screens show, then the recent journal."""
        try:
            stats = await self.conn.call("stats")
            board = await self.conn.call("skus.board", waiting=True, limit=100000, timeout=30)
            seed = max(0, self.conn.subscribed_seq - FEED_SEED)
            audit = await self.conn.call("audit.query", after_seq=seed, limit=FEED_SEED)
        except CallError as exc:
            log.warning("full load failed: %s", exc)
            return
        self.live.set_stats(stats)
        self.live.load_rows(board["skus"])
        self.live.feed.clear()
        for rec in audit["records"]:
            if rec["seq"] > self.conn.subscribed_seq:
                break
            self.live.note({"seq": rec["seq"], "at": rec["at"], "event": rec["event"]})
        # What the seed marked is already loaded; events streamed since stay marked.
        self.live.pending.skus.clear()
        self.loaded = True
        self.loads += 1
        self._dispatch(Changes(stats=True, reload=True, feed=list(self.live.feed)))

    # --- the coalescing refresh ---------------------------------------------------

    async def _tick(self) -> None:
        if self._flushing or not self.loaded:
            return
        self._flushing = True
        try:
            await self.flush()
        finally:
            self._flushing = False

    async def flush(self) -> None:
        live = self.live
        changes = live.take()
        if changes.reload:
            await self._full_load()
            return
        try:
            if changes.skus:
                if len(changes.skus) > BOARD_BATCH:
                    board = await self.conn.call("skus.board", waiting=True, limit=100000, timeout=30)
                    asked = set(live.rows) | {r["sku"] for r in board["skus"]}
                else:
                    board = await self.conn.call("skus.board", skus=sorted(changes.skus))
                    asked = changes.skus
                live.apply_rows(asked, board["skus"], changes)
            if live.dirty_stats:
                live.dirty_stats = False
                live.set_stats(await self.conn.call("stats"))
                changes.stats = True
        except CallError as exc:
            log.warning("refresh failed: %s", exc)
            live.pending.skus |= changes.skus  # try again next tick
            live.dirty_stats = True
        if (
            changes.rows
            or changes.stats
            or changes.feed
            or changes.orders
            or changes.skus
            or changes.intake
            or changes.notifications
        ):
            self._dispatch(changes)

    def _dispatch(self, changes: Changes) -> None:
        for screen in self.screen_stack:
            if isinstance(screen, BoScreen):
                try:
                    screen.apply(changes)
                except NoMatches:
                    # the screen's widgets went away while the refresh awaited the daemon (the
                    # app is closing, or the screen is not composed yet): nothing to update
                    log.debug("refresh skipped for %s: its widgets are gone", type(screen).__name__)

    # --- actions ------------------------------------------------------------------

    async def write(self, op: str, **fields: Any) -> Any | None:
        """A state-changing request from a screen. Errors are shown, not raised."""
        try:
            return await self.conn.call(op, **fields)
        except CallError as exc:
            if exc.code == "forbidden":
                self.notify(
                    f"forbidden: this console is read-only ({exc.message})", title=op, severity="error", timeout=8
                )
            else:
                self.notify(f"{exc.code}: {exc.message}", title=op, severity="error", timeout=8)
            line = ("error", f"ERROR {op}: {exc.code}: {exc.message}")
            self.live.feed.append(line)
            self._dispatch(Changes(feed=[line]))
            log.warning("%s refused: %s", op, exc)
            return None

    async def read(self, op: str, **fields: Any) -> Any | None:
        try:
            return await self.conn.call(op, **fields)
        except CallError as exc:
            self.notify(f"{exc.code}: {exc.message}", title=op, severity="warning", timeout=6)
            return None

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.theme == "textual-dark" else "textual-dark"

    async def action_screen(self, name: str) -> None:
        from backorder.tui.screens import SCREENS

        if name == "dashboard":
            while len(self.screen_stack) > 2:
                self.pop_screen()
            return
        current = self.screen
        if getattr(current, "NAME", None) == name:
            return
        if not isinstance(current, DashboardScreen):
            self.pop_screen()
        await self.push_screen(SCREENS[name]())

    async def open_sku(self, sku: str) -> None:
        from backorder.tui.screens.sku import SkuScreen

        await self.push_screen(SkuScreen(sku))

    async def open_order(self, order_id: str) -> None:
        from backorder.tui.screens.order import OrderScreen

        await self.push_screen(OrderScreen(order_id))

    async def action_quit(self) -> None:
        self.conn.close()
        self.exit()


def run(socket: str, log_file: str | None) -> None:
    """``backorder tui``: log to a file (never stdout: the terminal is the app's)."""
    if log_file:
        logging.basicConfig(
            filename=log_file, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s"
        )
    else:  # no file: nothing (not even logging's last-resort stderr handler) may hit the screen
        logging.basicConfig(handlers=[logging.NullHandler()])
    BackorderApp(socket).run()
