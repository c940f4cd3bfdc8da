"""The third-party logistics provider (``[threepl]``): its adapter as the outbox's delivery
channel ``threepl/PROVIDER`` (kinds ``threepl_order``, queued by ``actors.threepl_rules``,
and ``threepl_change``, by ``actors.threepl_changes``), its inventory poll, and its signed
shipment webhooks (``POST /threepl/PROVIDER`` on the intake listener). See
docs/operations.md "A 3PL for spikes"."""

from __future__ import annotations

from typing import TYPE_CHECKING

from backorder.config.settings import Settings
from backorder.notify.channels import Channel

if TYPE_CHECKING:
    from backorder.actors.engine import Engine


def adapters(settings: Settings, engine: Engine | None = None) -> dict[str, Channel]:
    """The 3PL's delivery channel when it is enabled (``engine``: where it journals the
    3PL's answers to changes)."""
    cfg = settings.threepl
    if not cfg.enabled:
        return {}
    from backorder.actors.threepl_rules import target
    from backorder.threepl.providers import PROVIDERS

    return {target(cfg): PROVIDERS[cfg.provider](cfg, engine)}
