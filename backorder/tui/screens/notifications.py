"""The notification outbox: notices and their delivery, the notifier's breakers; retry dead ones.

Read again only when a ``notifications`` event arrived (queued, attempted, delivered,
failed, retried), coalesced by the app like every other screen's refresh.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Header, Static

from backorder.tui.live import Changes, hhmm
from backorder.tui.screens.base import BoScreen
from backorder.tui.widgets import ConfirmScreen, ConnBanner, PlainTable, hours

FILTERS = ["all", "pending", "sent", "dead", "unrouted"]
STATUS_STYLE = {"dead": "bold red", "pending": "yellow", "sent": "green", "unrouted": "dim"}
BREAKER_STYLE = {"closed": "green", "half_open": "yellow", "open": "bold red"}
LIMIT = 5000  # notices shown: the newest of the filter, oldest first (the outbox keeps every one)


class NotificationsScreen(BoScreen):
    NAME = "notifications"
    AUTO_FOCUS = "#notices"
    BINDINGS = [
        Binding("f", "next_filter", "Filter"),
        Binding("r", "retry_notice", "Retry"),
        Binding("R", "retry_all_dead", "Retry all dead"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.status = "all"
        self.notices: dict[str, dict] = {}
        self.count = self.dead = self.skipped = 0
        self.breakers: dict[str, str] = {}
        self.credential_errors: dict[str, str] = {}  # write-back accounts whose credential was refused

    def compose(self) -> ComposeResult:
        yield Header()
        yield ConnBanner()
        yield Static("", id="notif-head")
        yield PlainTable(id="notices", cursor_type="row", zebra_stripes=True)
        yield Static("", id="notice-detail")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = "notifications"
        t = self.query_one("#notices", DataTable)
        for c in ("Notice", "Kind", "For", "Channel", "Status", "Tries", "Last", "Last error"):
            t.add_column(c, key=c)
        super().on_mount()

    def on_resize(self) -> None:
        # tall terminals: the selected notice's delivery history under the list
        self.query_one("#notice-detail").set_class(self.size.height >= 36, "tall")

    async def reload(self) -> None:
        # the newest LIMIT of the filter: the outbox figures of stats say how many there are
        total = self._total()
        offset = max(0, total - LIMIT) if total is not None else 0
        got = await self.bo.read("notifications.list", status=self.status, limit=LIMIT, offset=offset)
        health = await self.bo.read("health")
        if got is None:
            return
        if health is not None:
            self.breakers = (health.get("notifier") or {}).get("breakers") or {}
            self.credential_errors = (health.get("notifier") or {}).get("credential_errors") or {}
        self.notices = {}
        dead = 0
        rows = []
        for n in got["notifications"]:
            nid = n["notice_id"]
            self.notices[nid] = n
            dead += n["status"] == "dead"
            style = STATUS_STYLE.get(n["status"], "")
            cells = (
                Text(nid, style="bold red" if n["status"] == "dead" else ""),
                n["kind"],
                n.get("order_id") or n.get("request_id") or "",
                n["channel"],
                Text(n["status"], style=style),
                str(n["attempts"]),
                hhmm(n.get("last_at")),
                (n.get("last_error") or "")[:80],
            )
            rows.append((cells, nid))
        self.query_one("#notices", PlainTable).show_rows(rows)
        self.count, self.dead, self.skipped = len(self.notices), dead, offset
        self._show_head()
        self._detail(self.current())

    def _total(self) -> int | None:
        figures = ((self.bo.live.stats or {}).get("notifications")) or {}
        key = "queued" if self.status == "all" else self.status
        return figures.get(key)

    def _show_head(self) -> None:
        """Line 1: the filter and the outbox as a whole (``stats``); line 2: the breakers."""
        head = Text.assemble(
            ("filter ", "dim"), (self.status, "bold reverse"), ("  ", ""), (f"{self.count:,} shown", "bold")
        )
        if self.skipped:
            head.append(f" (the newest; {self.skipped:,} older)", style="dim")
        if self.status in ("all", "dead"):
            head.append(" · ", style="dim")
            head.append(f"{self.dead} dead", style="bold red" if self.dead else "green")
        figures = ((self.bo.live.stats or {}).get("notifications")) or {}
        if figures:
            head.append("  │ outbox ", style="dim")
            head.append(
                f"sent {figures['sent']:,} · pending {figures['pending']:,} · unrouted {figures['unrouted']:,}"
                f" · failed tries {figures['failed_attempts']:,}"
                f" · oldest pending {hours(figures.get('oldest_pending_hours'))}"
            )
        head.append("\nbreakers", style="dim")
        for channel, state in sorted(self.breakers.items()):
            head.append(f"  {channel} ")
            head.append(state, style=BREAKER_STYLE.get(state, ""))
            if channel in self.credential_errors:  # reported once here, not once per notice
                head.append(" (credential refused)", style="bold red")
        if not self.breakers:
            head.append(" —", style="dim")
        self.query_one("#notif-head", Static).update(head)

    def apply(self, changes: Changes) -> None:
        if changes.notifications or changes.reload:
            self.refresh_later()
        elif changes.stats:
            self._show_head()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._detail(event.row_key.value)

    def _detail(self, nid: str | None) -> None:
        if self.query_one("#notice-detail").has_class("tall"):
            self.spawn(self._show_detail, nid, group="detail")

    async def _show_detail(self, nid: str | None) -> None:
        """The notice and every attempt at it, from the journal (``audit.query`` of its order)."""
        box = self.query_one("#notice-detail", Static)
        n = self.notices.get(nid or "")
        if n is None:
            box.update("")
            return
        out = Text.assemble(
            (f"{n['notice_id']}", "bold"),
            f"  {n['kind']} to the {n['audience']} of ",
            (n.get("order_id") or n.get("request_id") or "", "bold"),
            f"  via {n['channel']}  ·  queued {hhmm(n['queued_at'])}  ·  ",
            (n["status"], STATUS_STYLE.get(n["status"], "")),
            "\n",
        )
        got = await self.bo.read("audit.query", order_id=n["order_id"], limit=1000) if n.get("order_id") else None
        for rec in (got or {}).get("records", []):
            e = rec["event"]
            if e.get("notice_id") != nid:
                continue
            match e["type"]:
                case "notice_queued":
                    out.append(f"{hhmm(rec['at'])} queued     {e.get('subject', '')}\n")
                case "notice_attempted":
                    out.append(f"{hhmm(rec['at'])} attempt {e['attempt']} over {e.get('channel')}\n", style="dim")
                case "notice_failed":
                    out.append(
                        f"{hhmm(rec['at'])} failed     {e.get('error')}{' — dead' if e.get('dead') else ''}\n",
                        style="red",
                    )
                case "notice_delivered":
                    out.append(f"{hhmm(rec['at'])} delivered  {e.get('response') or ''}\n", style="green")
                case "notice_retried":
                    out.append(f"{hhmm(rec['at'])} retried by hand\n", style="yellow")
                case "notice_feed":  # the channel took it as a feed (Amazon), or its report refused it
                    out.append(f"{hhmm(rec['at'])} feed {e.get('feed_id')} {e.get('state')}\n", style="dim")
        box.update(out)

    def current(self) -> str | None:
        return self.cursor_key("#notices")

    # --- actions -------------------------------------------------------------------

    def action_next_filter(self) -> None:
        self.status = FILTERS[(FILTERS.index(self.status) + 1) % len(FILTERS)]
        self.spawn(self.reload, group="reload")

    def action_retry_notice(self) -> None:
        n = self.notices.get(self.current() or "")
        if n is None:
            return
        if n["status"] != "dead":
            self.notify(
                f"{n['notice_id']} is {n['status']}; only dead notices are retried", severity="warning", timeout=5
            )
            return

        def confirmed(yes: bool) -> None:
            if yes:
                self.spawn(self._retry, {"notice_id": n["notice_id"]})

        self.app.push_screen(
            ConfirmScreen(
                f"Send {n['kind']} notice {n['notice_id']} ({n.get('order_id') or n.get('request_id')}) again "
                f"over {n['channel']}? Last error: {n.get('last_error') or '—'}"
            ),
            confirmed,
        )

    def action_retry_all_dead(self) -> None:
        def confirmed(yes: bool) -> None:
            if yes:
                self.spawn(self._retry, {"all_dead": True})

        self.app.push_screen(ConfirmScreen("Send every dead notice again (each keeps its id)?"), confirmed)

    async def _retry(self, fields: dict) -> None:
        result = await self.bo.write("notifications.retry", **fields)
        if result is None:
            return
        retried = result["retried"]
        self.notify(f"{len(retried)} notice(s) back to pending: {', '.join(retried) or 'none was dead'}", timeout=5)
        await self.reload()
