"""Memory bounded by open work: closed orders leave memory after ``[retention] hot_days``.

An order shipped in full or cancelled (``Order.closed_ts``) more than ``hot_days`` engine
days before the current engine day's start leaves memory at an engine-day boundary. The
sweep (``due``) only *decides*: the daemon (``backorder.daemon.retention``) writes each
order's record to the journal database's ``archived_orders`` table in the same commit as
the ``orders_archived`` event naming them, and ``World.evolve`` drops them from memory on
that event, live and on replay alike, so replay gives the same model.

Reads of an archived order (``order.get``, ``orders.find``; the audit reads the journal)
come from that table through ``World.archive`` (an ``ArchiveLookup``), in the shape of a hot
order's with ``archived: true``. Duplicates over the whole history: ``KeyFilter`` (a Bloom
filter over the intake keys of archived orders, rebuilt at start) says "certainly not
archived" for almost every new key without touching SQLite; a hit is checked there.

The same holds for what else would grow with history (``records_due``): a purchase order
or transfer whose lines all closed before that cutoff, and a notice delivered (or
unrouted: never to be sent) before it, leave memory on a ``records_archived`` event, their
records in ``archived_records`` (the ``procurement.list`` / ``notifications.list`` views,
``archived: true``). Not swept: a PO still taking lines (``[procurement]
consolidate_hours``), a request the lead-time KPI still reads (closed short after
receipts) or whose document notice is not delivered yet, a pending or dead notice. Resolved dead letters leave memory when resolved.

Pure and synchronous: no trio, no I/O (the lookups go through the protocol).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable
from hashlib import blake2b
from typing import TYPE_CHECKING, Protocol, TypeVar

from backorder.timeutil import iso_ts

if TYPE_CHECKING:
    from backorder.actors.model import Notice, Order, Request, World

DAY_S = 86400.0
PER_EVENT = 200  # order ids per orders_archived event (a day's sweep may need several)
Key = tuple[str, str, str]  # (channel, account, external_id): the intake key
T = TypeVar("T")


class ArchiveLookup(Protocol):
    """Reads of the ``archived_orders`` table (``backorder.daemon.retention.ArchiveStore``)."""

    def detail(self, order_id: str) -> dict | None: ...
    def by_key(self, key: Key) -> tuple[dict, dict] | None: ...  # (detail, duplicate submit result)
    def find(self, query: str, limit: int) -> list[dict]: ...  # summaries, newest first
    # archived_records ("request" / "notice"): views whose ``ref`` (a request's SKU, a
    # notice's order id) and status match (None: any), oldest first; and how many match
    def page(
        self, kind: str, ref: str | None, statuses: tuple[str, ...] | None, offset: int, limit: int
    ) -> tuple[list[dict], int]: ...
    def record(self, kind: str, record_id: str) -> dict | None: ...  # one archived record's view


class KeyFilter:
    """A Bloom filter over intake keys: ``key in f`` is False only for keys never added.

    Fixed size (2**25 bits, 4 MiB): about 0.2 % false hits at a million archived orders,
    more beyond (each costs one indexed SQLite read, never a wrong answer). Built by
    ``orders_archived`` events (so a replay rebuilds it) and kept in snapshots, hence a
    hash that is the same in every process (blake2b, not Python's salted ``hash``)."""

    BITS = 1 << 25
    K = 4

    def __init__(self) -> None:
        self.bits = bytearray(self.BITS // 8)
        self.count = 0

    def _slots(self, key: Key) -> list[int]:
        h = int.from_bytes(blake2b("\x1f".join(key).encode(), digest_size=8).digest(), "little")
        h1, h2 = h & 0xFFFFFFFF, (h >> 32) | 1
        mask = self.BITS - 1
        return [(h1 + i * h2) & mask for i in range(self.K)]

    def add(self, key: Key) -> None:
        bits = self.bits
        for s in self._slots(key):
            bits[s >> 3] |= 1 << (s & 7)
        self.count += 1

    def __contains__(self, key: Key) -> bool:
        if not self.count:  # nothing archived yet: no hash per new order
            return False
        bits = self.bits
        return all(bits[s >> 3] & (1 << (s & 7)) for s in self._slots(key))


def day_start(ts: float) -> float:
    return math.floor(ts / DAY_S) * DAY_S


def due(world: World, now: float, hot_days: int) -> list[str]:
    """The closed orders to archive at ``now``: closed before the start of the engine day
    ``hot_days`` days back, with nothing of them still moving (no shipment being picked or
    waiting for its label, not open at the 3PL). In the order they were received."""
    cutoff = day_start(now) - hot_days * DAY_S
    out = []
    shipments, routed = world.shipments, world.routed_open
    for o in world.orders.values():
        closed = o.closed_ts
        if closed is None or closed >= cutoff or o.order_id in routed:
            continue
        if any(shipments[s].status in ("picking", "label_pending") for s in o.shipments):
            continue
        out.append(o.order_id)
    return out


def forget_removed_lines(world: World) -> None:
    """Let go of the lines that left every SKU's queue (``QueueIndex.forget_removed``):
    else the queue's oldest-heap keeps an archived order's lines alive (about 0.4 MiB a
    day at 2,740 orders a day over 1,000 SKUs, bench/history.py). Changes nothing visible:
    the heap skips such entries anyway."""
    for s in world.skus.values():
        s.queue.forget_removed()


def record(world: World, order: Order, now: float) -> tuple[dict, dict, dict]:
    """What the table keeps of an order: its ``order.get`` detail, its ``orders.find``
    summary (both with ``archived: true``) and the reply a duplicate submit of it gets."""
    from backorder.actors.views import order_detail, order_result, order_summary  # views imports the model

    detail = order_detail(world, order, now)
    detail["archived"] = True
    detail["archived_at"] = iso_ts(now)
    summary = order_summary(world, order)
    summary["archived"] = True
    return detail, summary, order_result(world, order, duplicate=True)


def duplicate_of(world: World, key: Key) -> dict | None:
    """The duplicate-submit reply for an intake key that belongs to an archived order."""
    if world.archive is None or key in world.by_key or key not in world.archived_keys:
        return None
    found = world.archive.by_key(key)
    return found[1] if found is not None else None


def archived_detail(world: World, order_id: str | None, key: Key | None) -> dict | None:
    """``order.get`` of an order no longer in memory (None: not archived either)."""
    if world.archive is None:
        return None
    if order_id is not None:
        return world.archive.detail(order_id)
    if key is None or key not in world.archived_keys:
        return None
    found = world.archive.by_key(key)
    return found[0] if found is not None else None


# --- purchase orders, transfers and notices (``records_archived``) ---------------------

TERMINAL_NOTICE = ("sent", "unrouted")  # a notice in these never changes again


def records_due(world: World, now: float, hot_days: int) -> tuple[list[str], list[str]]:
    """(request ids, notice ids) to archive at ``now``: every line of a purchase order
    (or transfer) closed before the cutoff of ``due`` and none the lead-time KPI still
    reads, the PO no longer taking lines; notices delivered or unrouted before it."""
    cutoff = day_start(now) - hot_days * DAY_S
    window = world.settings.procurement.consolidate_hours * 3600.0
    taking = {po for po, opened in world.open_po.values() if now - opened < window}
    kpi_reads = world.kpi.last_receipt  # closed short after receipts: its lead time is read
    # a document still to deliver (pending, or dead and retried later) is built from the PO
    undelivered = {n.request_id for n in world.notices.values() if n.request_id and n.status not in TERMINAL_NOTICE}
    requests = [
        r.request_id
        for po, lines in world.purchase_orders.items()
        if po not in taking
        and all(
            r.closed_ts is not None
            and r.closed_ts < cutoff
            and r.request_id not in kpi_reads
            and r.request_id not in undelivered
            for r in lines
        )
        for r in lines
    ]
    notices = [n.notice_id for n in world.notices.values() if n.status in TERMINAL_NOTICE and n.last_ts < cutoff]
    return requests, notices


def request_row(r: Request, now: float) -> tuple:
    """The ``archived_records`` row of a closed request: its ``procurement.list`` view."""
    from backorder.actors.views import request_view  # views imports the model

    view = request_view(r, now)
    view["archived"] = True
    return ("request", r.request_id, _number(r.request_id), r.sku, "closed", view)


def notice_row(n: Notice) -> tuple:
    """The ``archived_records`` row of a delivered or unrouted notice: its list view."""
    from backorder.actors.views import notice_view  # views imports the model

    view = notice_view(n)
    view["archived"] = True
    return ("notice", n.notice_id, _number(n.notice_id), n.order_id, n.status, view)


def _number(record_id: str) -> int:
    """The counter in an id (PO-000012, TR-000013, N0000014): lists keep that order."""
    return int(record_id.rpartition("-")[2].lstrip("N"))


def paged(
    world: World,
    kind: str,
    ref: str | None,
    statuses: tuple[str, ...] | None,
    hot: Iterable[T],
    view: Callable[[T], dict],
    offset: int,
    limit: int,
) -> list[dict]:
    """A page of a list over the archived records of ``kind`` (the oldest) then ``hot``
    (the matching records still in memory, oldest first): ``offset`` / ``limit`` run across
    both, so paging through a list sees every record once."""
    out, archived = ([], 0) if world.archive is None else world.archive.page(kind, ref, statuses, offset, limit)
    rest = max(offset - archived, 0)
    out += [view(x) for x in itertools.islice(hot, rest, rest + limit - len(out))]
    return out


def archived_request(world: World, request_id: str) -> dict | None:
    """The archived view of a request no longer in memory (None: not archived either)."""
    return None if world.archive is None else world.archive.record("request", request_id)
