"""Order intake: sources and their health, rejection rates, the dead-letter queue by impact.

Three reads (``sources.health``, ``deadletters.list``, ``stats``' intake rejections), made
again only when an event of the ``intake`` topic arrived (the app coalesces them like the
dashboard's). Retrying a letter, a whole cause group, or discarding one with a reason
each ask first.
"""

from __future__ import annotations

import base64
import json
import time

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable, Footer, Header, Static

from backorder.tui.live import Changes, hhmm, parse_ts
from backorder.tui.screens.base import BoScreen
from backorder.tui.widgets import ConfirmScreen, ConnBanner, PlainTable, PromptScreen, pct


def since_text(at: str | None) -> str:
    """How long ago a source last delivered ('—' never). Source health is kept on the
    daemon's wall clock, so the age is measured against this machine's."""
    ts = parse_ts(at)
    if ts is None:
        return "—"
    s = max(0.0, time.time() - ts)
    if s < 60:
        return f"{s:.0f}s"
    if s < 3600:
        return f"{s / 60:.0f}m"
    return f"{s / 3600:.1f}h" if s < 172800 else f"{s / 86400:.1f}d"


def codes_text(codes: dict[str, int]) -> str:
    return ", ".join(f"{c} {n}" for c, n in sorted(codes.items(), key=lambda kv: (-kv[1], kv[0]))) or "—"


class IntakeScreen(BoScreen):
    NAME = "intake"
    AUTO_FOCUS = "#letters"
    BINDINGS = [
        Binding("r", "retry_letter", "Retry"),
        Binding("g", "retry_group", "Retry cause"),
        Binding("x", "discard_letter", "Discard"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.sources: list[dict] = []
        self.letters: dict[str, dict] = {}  # str(letter_id) -> the letter
        self.groups: list[dict] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield ConnBanner()
        yield Static("", id="intake-head")
        with Horizontal(id="intake-top"):
            yield PlainTable(id="sources", cursor_type="row", zebra_stripes=True)
            yield PlainTable(id="rejections", cursor_type="none", zebra_stripes=True)
        yield Static("", id="groups")
        yield PlainTable(id="letters", cursor_type="row", zebra_stripes=True)
        yield Static("", id="letter-detail")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = "intake"
        src = self.query_one("#sources", DataTable)
        # what needs an eye first (silent? rejecting?) on the left; the codes may run off the edge
        for c in ("Source", "State", "Deliv", "Acc%", "Rej%", "Last", "BadSig", "Rejections"):
            src.add_column(c, key=c)
        rej = self.query_one("#rejections", DataTable)
        for c in ("Rejected from", "Code", "N", "Rate"):
            rej.add_column(c, key=c)
        rej.border_title = "rejection rates"
        t = self.query_one("#letters", DataTable)
        for c in ("Impact", "#", "Cause", "Source", "Order", "Tries", "At", "Error"):
            t.add_column(c, key=c)
        super().on_mount()

    def on_resize(self) -> None:
        # narrow terminals: the rates are in the sources table already; the letters get the room
        self.query_one("#intake-top").set_class(self.size.width < 120, "narrow")
        # tall terminals: the selected letter as it was delivered, under the queue
        self.query_one("#letter-detail").set_class(self.size.height >= 36, "tall")

    async def reload(self) -> None:
        health = await self.bo.read("sources.health")
        dead = await self.bo.read("deadletters.list")
        if health is None or dead is None:
            return
        self.sources = health["sources"]
        self.groups = dead["groups"]
        self._show_sources(health)
        self._show_rejections()
        self._show_letters(dead["dead_letters"])

    def _show_sources(self, health: dict) -> None:
        silent = 0
        rows = []
        for s in self.sources:
            silent += s["silent"]
            style = "bold red" if s["silent"] else ""
            rej_style = "red" if s["rejected_rate"] >= 0.5 else ("yellow" if s["rejected_rate"] else "")
            codes = codes_text(s["rejections"])
            cells = (
                Text(f"{s['channel']}/{s['account']}", style=style),
                Text("SILENT", style="bold red") if s["silent"] else Text("ok", style="green"),
                str(s["deliveries"]),
                pct(s["accepted_rate"]),
                Text(pct(s["rejected_rate"]), style=rej_style),
                since_text(s["last_delivery_at"]),
                Text(str(s["bad_signatures"]), style="red" if s["bad_signatures"] else ""),
                codes if len(codes) <= 34 else codes[:33] + "…",
            )
            rows.append((cells, f"{s['channel']}/{s['account']}"))
        self.query_one("#sources", PlainTable).show_rows(rows)
        q = health["queue"]
        n = sum(g["count"] for g in self.groups)
        self.query_one("#intake-head", Static).update(
            Text.assemble(
                (f"{len(self.sources)} sources", "bold"),
                ("  ·  ", "dim"),
                (f"{silent} silent", "bold red" if silent else "green"),
                ("  ·  ", "dim"),
                (f"{n} dead letters", "bold red" if n else "green"),
                ("  ·  ", "dim"),
                f"queue {q['pending']}/{q['capacity']}",
                ("  ·  busy refused ", "dim"),
                str(q["busy_refusals"]),
            )
        )

    def _show_rejections(self) -> None:
        """Rejections per source and code (``stats`` → ``intake.rejections``), as a share of
        that source's deliveries."""
        stats = self.bo.live.stats or {}
        counts = (stats.get("intake") or {}).get("rejections") or {}
        deliveries = {f"{s['channel']}/{s['account']}": s["deliveries"] for s in self.sources}
        rows = []
        for key, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            source, _, code = key.rpartition("/")
            total = deliveries.get(source) or 0
            rows.append(((source, code, str(n), pct(n / total) if total else "—"), key))
        self.query_one("#rejections", PlainTable).show_rows(rows)

    def _show_letters(self, letters: list[dict]) -> None:
        self.letters = {}
        rows = []
        for d in letters:
            lid = str(d["letter_id"])
            self.letters[lid] = d
            impact = d.get("impact_now") or 0.0
            style = "bold red" if impact >= 500 else ("yellow" if impact >= 100 else "")
            source = f"{d['channel']}/{d['account']}" if d.get("channel") else d.get("actor") or ""
            cells = (
                Text(f"{impact:,.1f}", style=style),
                lid,
                Text(d.get("cause") or d.get("kind") or "", style="bold"),
                source,
                d.get("external_id") or d.get("order_id") or d.get("sku") or "",
                str(d.get("attempts") or 1),
                hhmm(d.get("at")),
                (d.get("error") or "")[:90],
            )
            rows.append((cells, lid))
        self.query_one("#letters", PlainTable).show_rows(rows)
        self._show_detail(self.current())
        groups = Text.assemble(("causes ", "bold"))
        for i, g in enumerate(self.groups):
            if i:
                groups.append("  ·  ", style="dim")
            groups.append(f"{g['cause'] or g['kind']}", style="bold red" if i == 0 else "bold")
            groups.append(f" {g['channel'] or ''} ×{g['count']} (impact {g['impact']:,.0f})")
        if not self.groups:
            groups.append("none — the dead-letter queue is empty", style="green")
        self.query_one("#groups", Static).update(groups)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "letters":
            self._show_detail(event.row_key.value)

    def _show_detail(self, lid: str | None) -> None:
        d = self.letters.get(lid or "")
        box = self.query_one("#letter-detail", Static)
        if d is None:
            box.update("")
            return
        out = Text.assemble(
            (f"dead letter {d['letter_id']}", "bold"),
            "  ",
            (d.get("cause") or d.get("kind") or "", "bold red"),
            "  ",
            f"impact {d.get('impact_now') or 0:,.1f} · attempts {d.get('attempts') or 1}\n",
            (d.get("error") or "", "yellow"),
            "\n",
        )
        try:  # an intake letter keeps the delivery byte-exact: show it as it came
            msg = json.loads(d.get("message") or "{}")
            body = base64.b64decode(msg["body_base64"]).decode("utf-8", "replace")
            if msg.get("headers"):
                out.append(" ".join(f"{k}: {v}" for k, v in msg["headers"].items()) + "\n", style="dim")
            out.append(body.rstrip("\n"))
        except (ValueError, KeyError, TypeError):
            out.append(d.get("message") or "", style="dim")
        box.update(out)

    def apply(self, changes: Changes) -> None:
        if changes.intake or changes.reload:
            self.refresh_later()
        elif changes.stats:
            self._show_rejections()

    def current(self) -> str | None:
        return self.cursor_key("#letters")

    def _selected(self) -> dict | None:
        letter = self.letters.get(self.current() or "")
        if letter is None:
            self.notify("no dead letter selected", severity="warning", timeout=4)
        return letter

    # --- actions -------------------------------------------------------------------

    def action_retry_letter(self) -> None:
        d = self._selected()
        if d is None:
            return

        def confirmed(yes: bool) -> None:
            if yes:
                self.spawn(self._retry, {"letter_id": d["letter_id"]}, f"dead letter {d['letter_id']}")

        self.app.push_screen(
            ConfirmScreen(
                f"Retry dead letter {d['letter_id']} ({d.get('cause')}, {d.get('external_id') or d.get('actor')}) "
                "with the configuration and aliases of now?"
            ),
            confirmed,
        )

    def action_retry_group(self) -> None:
        d = self._selected()
        if d is None:
            return
        if d.get("kind") != "intake" or not d.get("cause"):
            self.notify("only intake letters retry by cause; use r for this one", severity="warning", timeout=5)
            return
        cause, channel = d["cause"], d.get("channel")
        n = sum(1 for x in self.letters.values() if x.get("cause") == cause and x.get("channel") == channel)

        def confirmed(yes: bool) -> None:
            if yes:
                fields = {"cause": cause, "channel": channel} if channel else {"cause": cause}
                self.spawn(self._retry, fields, f"{n} letter(s) of {cause}")

        self.app.push_screen(
            ConfirmScreen(f"Retry all {n} dead letter(s) of cause {cause} from {channel}, highest impact first?"),
            confirmed,
        )

    def action_discard_letter(self) -> None:
        d = self._selected()
        if d is None:
            return

        def asked(reason: str | None) -> None:
            if not reason:
                if reason is not None:
                    self.notify("a discard needs a reason", severity="error", timeout=5)
                return

            def confirmed(yes: bool) -> None:
                if yes:
                    self.spawn(self._discard, d["letter_id"], reason)

            self.app.push_screen(
                ConfirmScreen(
                    f"Discard dead letter {d['letter_id']} ({d.get('cause')}, {d.get('external_id') or ''}) for good?\n"
                    f"Reason: {reason}"
                ),
                confirmed,
            )

        self.app.push_screen(
            PromptScreen(
                f"Why discard dead letter {d['letter_id']}? (journaled)",
                placeholder="e.g. customer re-ordered by phone",
            ),
            asked,
        )

    async def _retry(self, fields: dict, what: str) -> None:
        result = await self.bo.write("deadletters.retry", **fields)
        if result is None:
            return
        if "results" in result:
            failed = [r for r in result["results"] if r["outcome"] == "rejected"]
            msg = f"{what}: {result['resolved']} of {result['retried']} resolved"
            if failed:
                msg += "; still failing: " + ", ".join(f"{r['letter_id']} {r['code']}" for r in failed)
            self.notify(msg, severity="warning" if failed else "information", timeout=6)
        else:
            self.notify(f"{what} redelivered", timeout=4)
        await self.reload()

    async def _discard(self, letter_id: int, reason: str) -> None:
        if await self.bo.write("deadletters.discard", letter_id=letter_id, reason=reason) is not None:
            self.notify(f"dead letter {letter_id} discarded", timeout=4)
            await self.reload()
