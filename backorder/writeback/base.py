"""What every channel adapter shares: the notice's kind picks the method."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from backorder.actors.events import NoticeFeed, NoticeQueued
from backorder.config.settings import Settings, WritebackSettings
from backorder.notify.channels import Rejected
from backorder.notify.render import Rendered
from backorder.writeback.http import Api

if TYPE_CHECKING:
    from backorder.actors.engine import Engine


class Feeds(Protocol):
    """Where an adapter keeps the feed a channel took a notice as (Amazon's feeds carry no
    idempotency key: the feed id, kept durably, is what makes a retry read the same feed)."""

    def feed_of(self, notice_id: str) -> str | None: ...

    async def record(self, notice_id: str, feed_id: str, state: str) -> None: ...


class JournalFeeds:
    """The daemon's: ``notice_feed`` in the journal, durable before ``record`` returns."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def feed_of(self, notice_id: str) -> str | None:
        return self.engine.world.notice_feeds.get(notice_id)

    async def record(self, notice_id: str, feed_id: str, state: str) -> None:
        engine = self.engine
        notice = engine.world.notices.get(notice_id)
        engine.context("notifier", notice_id)
        engine.emit(
            NoticeFeed(
                ts=engine.now(),
                notice_id=notice_id,
                order_id=notice.order_id if notice is not None else None,
                feed_id=feed_id[:200],
                state=state,
            )
        )
        await engine.journal.wait_durable(engine.journal.last_seq)


class MemoryFeeds:
    """An adapter's own, for one used outside the daemon (the adapter tests)."""

    def __init__(self) -> None:
        self.feeds: dict[str, str] = {}

    def feed_of(self, notice_id: str) -> str | None:
        return self.feeds.get(notice_id)

    async def record(self, notice_id: str, feed_id: str, state: str) -> None:
        if state == "submitted":
            self.feeds[notice_id] = feed_id
        else:
            self.feeds.pop(notice_id, None)


class Adapter:
    """A channel account as a delivery channel. Subclasses implement ``fulfillment``,
    ``fulfillment_cancel`` and ``stock_level`` (each returns the receipt kept in the
    journal); a kind the channel has no API for is a ``Rejected`` (dead, with the reason)."""

    def __init__(self, target: str, wb: WritebackSettings, settings: Settings, feeds: Feeds | None = None) -> None:
        self.name = target
        self.wb = wb
        self.settings = settings
        self.api = Api(target, wb)
        self.feeds: Feeds = feeds if feeds is not None else MemoryFeeds()

    async def send(self, notice: NoticeQueued, rendered: Rendered) -> str:
        method = getattr(self, notice.kind, None)
        if method is None:
            raise Rejected(f"{self.name}: no write-back of {notice.kind!r} notices to this channel")
        receipt: str = await method(notice.notice_id, notice.data)
        return receipt

    async def fulfillment(self, notice_id: str, data: dict[str, Any]) -> str:
        raise Rejected(f"{self.name}: this channel takes no fulfillment")

    async def fulfillment_cancel(self, notice_id: str, data: dict[str, Any]) -> str:
        raise Rejected(f"{self.name}: this channel takes no cancellation")

    async def stock_level(self, notice_id: str, data: dict[str, Any]) -> str:
        """Each level of the notice by ``set_level`` (one request per item). A level the
        channel refuses does not stop the others: they are all sent, then the refusals are
        one ``Rejected`` (the notice is dead with every message; a retry sends every level
        again, which is safe: levels are absolute). Any other failure stops at once and the
        notice is retried whole."""
        refused = []
        for level in data["levels"]:
            try:
                await self.set_level(level)
            except Rejected as exc:
                refused.append(f"{level['sku']}: {exc}")
        sent = len(data["levels"]) - len(refused)
        if refused:
            raise Rejected(f"{len(refused)} of {len(data['levels'])} levels refused: " + "; ".join(refused))
        return f"{sent} level(s) set"

    async def set_level(self, level: dict[str, Any]) -> None:
        raise Rejected(f"{self.name}: this channel takes no stock levels")


def line_refs(data: dict[str, Any]) -> dict[str, int] | None:
    """The shipped quantity per channel line reference, or None when any shipped line has
    no reference (then the adapter fulfils the channel's whole open order)."""
    refs: dict[str, int] = {}
    for item in data["items"]:
        ref = item.get("channel_line_id")
        if not ref:
            return None
        refs[str(ref)] = refs.get(str(ref), 0) + int(item["qty"])
    return refs
