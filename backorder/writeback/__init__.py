"""Write-back to the sales channels: one adapter per channel API, plugged into the
notifier as the delivery channel ``CHANNEL/ACCOUNT`` of notices of audience ``channel``
(kinds ``fulfillment``, ``fulfillment_cancel``, ``stock_level``; queued by
``actors.writeback_rules``). See docs/notifications.md "Writing back to the channels"."""

from __future__ import annotations

from typing import TYPE_CHECKING

from backorder.config.settings import Settings, writeback_targets
from backorder.notify.channels import Channel

if TYPE_CHECKING:
    from backorder.actors.engine import Engine


def adapters(settings: Settings, engine: Engine | None = None) -> dict[str, Channel]:
    """One adapter per account with write-back on, keyed ``CHANNEL/ACCOUNT``; with the
    daemon's ``engine``, the feeds they submit are kept in its journal."""
    from backorder.writeback.amazon_sp import AmazonSpChannel
    from backorder.writeback.base import JournalFeeds
    from backorder.writeback.bigcommerce import BigCommerceChannel
    from backorder.writeback.shopify import ShopifyChannel
    from backorder.writeback.woocommerce import WooCommerceChannel
    from backorder.writeback.x12_856 import X12AsnChannel

    kinds = {
        "shopify": ShopifyChannel,
        "woocommerce": WooCommerceChannel,
        "bigcommerce": BigCommerceChannel,
        "amazon_sp": AmazonSpChannel,
        "x12_850": X12AsnChannel,
    }
    out: dict[str, Channel] = {}
    for target, wb in writeback_targets(settings).items():
        cls = kinds.get(target.partition("/")[0])
        if cls is not None:  # csv has no API; the config check says so
            out[target] = cls(target, wb, settings, JournalFeeds(engine) if engine is not None else None)
    return out
