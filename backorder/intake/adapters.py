"""The channel adapters by name."""

from __future__ import annotations

from backorder.intake import amazon_sp, bigcommerce, csv_orders, shopify, woocommerce, x12_850, x12_855, x12_856

CHANNELS = {m.NAME: m for m in (shopify, woocommerce, amazon_sp, bigcommerce, x12_850, csv_orders, x12_855, x12_856)}


def account_hint(channel: str, headers: dict[str, str]) -> str | None:
    """The account a source names in its headers (Shopify's shop domain, WooCommerce's
    site); the other channels name it in the payload, or not at all."""
    hint = getattr(CHANNELS[channel], "account_hint", None)
    return hint(headers) if hint else None
