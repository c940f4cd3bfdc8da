"""Which write-back notices the engine queues for the sales channels: a shipment that
shipped (``fulfillment``), an order cancelled here (``fulfillment_cancel``) and a SKU's
available-to-sell (``stock_level``). Pure and synchronous like ``notice_rules``: called
right after the change that causes them, so the notice is journaled in the same commit as
its cause and the outbox (the notifier) sends it exactly once per notice id.

A write-back notice has audience ``channel`` and the delivery channel ``CHANNEL/ACCOUNT``
(the order's source, from intake, when that account has its own ``writeback`` table) or
``CHANNEL/*`` (the channel's table, for its other accounts); ``data`` holds everything the adapter sends, so a
resend after a crash sends the same request. Only accounts with an enabled
``writeback`` table (``settings.writeback_targets``) get any.

Stock levels are coalesced by the notifier's stock sync (one pass per
``[channels.NAME] stock_sync_s``), which calls ``stock_levels`` with the SKUs that changed
since its last pass: a notice is queued only when the quantity differs from the last one
queued for that account and SKU (``World.stock_told``), so the per-order cost on the hot
path is nil here: the journal's commit listener marks a SKU dirty, nothing more.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from backorder.actors import events as ev
from backorder.actors.model import Order, Shipment, Sku, World
from backorder.config.settings import Settings, WritebackSettings, writeback_targets
from backorder.timeutil import iso_ts

Emit = Callable[[ev.Event], None]

# Channels with a cancellation we can write (Amazon's by the order acknowledgement feed, an
# X12 partner's by an 855 rejecting the lines not shipped).
CANCELS = frozenset({"shopify", "woocommerce", "bigcommerce", "amazon_sp", "x12_850"})
# Channels with a stock-level API the adapters speak.
STOCK = frozenset({"shopify", "woocommerce", "bigcommerce", "amazon_sp"})
# ... and those that address the item by their own id (``writeback.item_ids``), not our SKU
BY_ITEM_ID = frozenset({"shopify", "woocommerce"})

_cache: tuple[object, dict[str, WritebackSettings]] = (None, {})


def targets(settings: Settings) -> dict[str, WritebackSettings]:
    """``writeback_targets`` of the current ``[channels]`` table, computed once per table
    (a reload replaces the table object): a shipment costs one dict lookup, not a walk of
    the config. The cache holds the table itself, not its id: a freed table's id can be
    reused by another one."""
    global _cache
    if _cache[0] is not settings.channels:
        _cache = (settings.channels, writeback_targets(settings))
    return _cache[1]


def _target(world: World, order: Order) -> tuple[str, WritebackSettings] | None:
    """The order's write-back channel: its account's own table, else its channel's
    (``CHANNEL/*``); None when neither is on or it takes no fulfillment."""
    spec = order.spec
    found = targets(world.settings)
    name = f"{spec.channel}/{spec.account}"
    wb = found.get(name)
    if wb is None:
        name = f"{spec.channel}/*"
        wb = found.get(name)
    if wb is None or not wb.fulfillment:
        return None
    return name, wb


def _channel_line_id(order: Order, line_no: int) -> str | None:
    """The channel's own reference of an order line (Shopify line item id, BigCommerce
    order product id, Amazon OrderItemId), when intake kept one; None fulfils by the
    channel's whole open order instead."""
    lines = order.spec.lines
    if not 1 <= line_no <= len(lines):
        return None
    return lines[line_no - 1].channel_line_id or None


def _queue(
    world: World, order: Order | None, target: str, kind: str, data: dict[str, Any], now: float
) -> ev.NoticeQueued:
    return ev.NoticeQueued(
        ts=now,
        notice_id=world.next_id("notice"),
        order_id=order.order_id if order is not None else None,
        kind=kind,
        email="",
        subject=f"{kind} to {target}",
        body="",
        channel=target,
        audience="channel",
        data=data,
    )


def shipped(
    world: World, order: Order, sh: Shipment, carrier: str, tracking: str, emit: Emit, now: float
) -> ev.NoticeQueued | None:
    """A shipment of an order from a channel that hears back left the site."""
    found = _target(world, order)
    if found is None:
        return None
    target, _wb = found
    spec = order.spec
    items = [
        {"line_no": n, "sku": sku, "qty": q, "channel_line_id": _channel_line_id(order, n)} for n, sku, q in sh.items
    ]
    e = _queue(
        world,
        order,
        target,
        "fulfillment",
        {
            "external_id": spec.external_id,
            "order_number": spec.order_number or order.order_id,
            "shipment_id": sh.shipment_id,
            "carrier": carrier,
            "tracking": tracking,
            "tracking_url": world.settings.notifications.tracking_url.replace("{tracking}", tracking),
            "complete": order.status(world.shipments) == "shipped",
            "ship_date": iso_ts(now),
            "items": items,
        },
        now,
    )
    emit(e)
    return e


def cancelled(world: World, order: Order, reason: str, emit: Emit, now: float) -> ev.NoticeQueued | None:
    """An order from a channel that hears back was cancelled here before it shipped."""
    found = _target(world, order)
    if found is None or order.spec.channel not in CANCELS:
        return None
    target, _wb = found
    data: dict[str, Any] = {"external_id": order.spec.external_id, "order_number": order.spec.order_number}
    data["reason"] = reason
    if order.spec.channel == "x12_850":  # the 855 names each line it rejects, and its date
        data["date"] = iso_ts(now)
        data["items"] = [
            {
                "line_no": ln.line_no,
                "sku": ln.sku,
                "qty": ln.qty - ln.shipped,
                "channel_line_id": _channel_line_id(order, ln.line_no),
            }
            for ln in order.shipping_lines
            if ln.qty > ln.shipped
        ]
    e = _queue(world, order, target, "fulfillment_cancel", data, now)
    emit(e)
    return e


def available_to_sell(s: Sku, wb: WritebackSettings) -> int:
    """What one account may offer of SKU ``s``: (on hand - allocated - safety buffer) times
    the account's share, rounded down, never below 0. A backordered SKU has nothing
    unallocated, so every channel sees 0 and stops overselling it."""
    free = s.on_hand - s.allocated - wb.safety_buffer
    if free <= 0:
        return 0
    return int(free * wb.share)


def stock_targets(settings: Settings) -> dict[str, WritebackSettings]:
    """The accounts that receive stock levels (their channel has a stock API)."""
    return {t: wb for t, wb in targets(settings).items() if wb.stock and t.partition("/")[0] in STOCK}


# Levels per stock_level notice: one notice per account and pass keeps the outbox (which
# keeps every notice) to a row per period instead of a row per SKU; the cap keeps a first
# pass over a large catalogue to journal events of a few tens of kB each.
BATCH = 250


def stock_levels(
    world: World, target: str, wb: WritebackSettings, skus: Iterable[str], emit: Emit, now: float
) -> list[ev.NoticeQueued]:
    """One pass of the stock sync for one account over the SKUs that changed: the SKUs
    whose available-to-sell differs from the last level queued for the account (the first
    pass: every SKU it is given), ``BATCH`` to a ``stock_level`` notice (``data.levels``:
    ``[{sku, item_id, quantity}]``). Only the SKUs in ``item_ids`` where the channel
    addresses items by its own id (Shopify, WooCommerce), or when ``item_ids`` is given at
    all: the site's other SKUs are not listed there."""
    by_id = bool(wb.item_ids) or target.partition("/")[0] in BY_ITEM_ID
    levels: list[dict[str, Any]] = []
    for sku in sorted(skus):
        s = world.skus.get(sku)
        if s is None:
            continue
        item_id = wb.item_ids.get(sku)
        if by_id and item_id is None:
            continue
        qty = available_to_sell(s, wb)
        last = world.stock_told.get((target, sku))
        if last is None or last[1] != qty:
            levels.append({"sku": sku, "item_id": item_id, "quantity": qty})
    out = []
    for start in range(0, len(levels), BATCH):
        e = _queue(world, None, target, "stock_level", {"levels": levels[start : start + BATCH]}, now)
        emit(e)
        out.append(e)
    return out


def live_levels(world: World, notice: ev.NoticeQueued) -> list[dict[str, Any]]:
    """The levels of a ``stock_level`` notice that no newer notice superseded: a level
    still pending when a newer one for the same account and SKU is queued must not be sent
    after it (it would overwrite the newer number)."""
    told = world.stock_told
    return [
        lv
        for lv in notice.data.get("levels", ())
        if (found := told.get((notice.channel, lv["sku"]))) is not None and found[0] == notice.notice_id
    ]
