"""The third-party logistics provider (``[threepl]``): its adapter as the outbox's delivery
channel ``threepl/PROVIDER`` (kind ``threepl_order``, queued by ``actors.threepl_rules``),
its inventory poll, and its signed shipment webhooks (``POST /threepl/PROVIDER`` on the
intake listener). See docs/operations.md "A 3PL for spikes"."""

from __future__ import annotations

from backorder.config.settings import Settings
from backorder.notify.channels import Channel


def adapters(settings: Settings) -> dict[str, Channel]:
    """The 3PL's delivery channel when it is enabled."""
    cfg = settings.threepl
    if not cfg.enabled:
        return {}
    from backorder.actors.threepl_rules import target
    from backorder.threepl.providers import PROVIDERS

    return {target(cfg): PROVIDERS[cfg.provider](cfg)}
