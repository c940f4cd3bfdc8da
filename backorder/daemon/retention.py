"""Retention: closed orders leave memory for the journal database's ``archived_orders``.

``Retention.sweep`` runs at each engine-day boundary (an item of the stepped clock's
agenda, or a timer on the wall / simulated clock) and once at start: it asks
``actors.retention.due`` which closed orders have been closed longer than ``[retention]
hot_days``, queues their records with the journal and emits ``orders_archived`` events
naming them, so the rows and the events are durable in one commit and replay drops the
same orders at the same point. Each step of the sweep (up to ``PER_EVENT`` orders:
their records, the rows queued, the event) is synchronous on the trio thread, like an
actor's step; between steps the loop serves others (an order due stays due: nothing
reopens a closed order).

``ArchiveStore`` answers the reads of archived orders (``actors.retention.ArchiveLookup``)
with indexed point reads on its own connection, on the trio thread (tens of microseconds;
a new intake key reaches it only on a hit of the model's Bloom filter of archived keys). Rows queued but not yet committed
are answered from memory until the commit lands.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec
import structlog
import trio

from backorder.actors import events as ev
from backorder.actors import retention
from backorder.clock import Clock, SimClock, SteppedClock

if TYPE_CHECKING:
    from backorder.actors.engine import Engine
    from backorder.daemon.journal import Journal

log = structlog.get_logger()
_encode = msgspec.json.encode
_decode = msgspec.json.decode


class ArchiveStore:
    """Reads of ``archived_orders`` (see the module docstring). Resource handling: owns a
    read connection, closed by ``close``."""

    def __init__(self, path: str | Path) -> None:
        self.conn = sqlite3.connect(f"file:{Path(path)}?mode=ro", uri=True)
        self.unsynced: dict[str, tuple] = {}  # order id -> row queued, not committed yet
        self.unsynced_keys: dict[retention.Key, str] = {}
        self.unsynced_records: dict[tuple[str, str], tuple] = {}  # (kind, id) -> archived_records row

    def close(self) -> None:
        self.conn.close()

    def queued_records(self, rows: list[tuple]) -> None:
        for row in rows:
            self.unsynced_records[(row[0], row[1])] = row

    def queued(self, rows: list[tuple]) -> None:
        for row in rows:
            self.unsynced[row[0]] = row
            self.unsynced_keys[(row[1], row[2], row[3])] = row[0]

    def committed(self, rows: list[tuple], records: list[tuple]) -> None:
        for row in rows:
            self.unsynced.pop(row[0], None)
            self.unsynced_keys.pop((row[1], row[2], row[3]), None)
        for row in records:
            self.unsynced_records.pop((row[0], row[1]), None)

    def record(self, kind: str, record_id: str) -> dict | None:
        row = self.unsynced_records.get((kind, record_id))
        if row is not None:
            return _decode(row[5])
        found = self.conn.execute(
            "SELECT view FROM archived_records WHERE kind = ? AND id = ?", (kind, record_id)
        ).fetchone()
        return _decode(found[0]) if found else None

    def page(
        self, kind: str, ref: str | None, statuses: tuple[str, ...] | None, offset: int, limit: int
    ) -> tuple[list[dict], int]:
        """Views of archived records (``retention.ArchiveLookup.page``). Rows of a sweep not
        committed yet come after the committed ones (for the milliseconds until the commit)."""
        where, args = ["kind = ?"], [kind]
        if ref is not None:
            where.append("ref = ?")
            args.append(ref)
        if statuses is not None:
            where.append(f"status IN ({','.join('?' * len(statuses))})")
            args.extend(statuses)
        cond = " AND ".join(where)
        total = self.conn.execute(f"SELECT COUNT(*) FROM archived_records WHERE {cond}", args).fetchone()[0]
        bodies = [
            r[0]
            for r in self.conn.execute(
                f"SELECT view FROM archived_records WHERE {cond} ORDER BY n LIMIT ? OFFSET ?", [*args, limit, offset]
            )
        ]
        unsynced = [
            r[5]
            for r in self.unsynced_records.values()
            if r[0] == kind and ref in (None, r[3]) and (statuses is None or r[4] in statuses)
        ]
        start = max(offset - total, 0)
        bodies += unsynced[start : start + limit - len(bodies)]
        return [_decode(b) for b in bodies], total + len(unsynced)

    def detail(self, order_id: str) -> dict | None:
        row = self.unsynced.get(order_id)
        if row is not None:
            return _decode(row[7])
        found = self.conn.execute("SELECT detail FROM archived_orders WHERE order_id = ?", (order_id,)).fetchone()
        return _decode(found[0]) if found else None

    def by_key(self, key: retention.Key) -> tuple[dict, dict] | None:
        oid = self.unsynced_keys.get(key)
        if oid is not None:
            row = self.unsynced[oid]
            return _decode(row[7]), _decode(row[9])
        channel, account, external_id = key
        found = self.conn.execute(
            "SELECT detail, result FROM archived_orders WHERE external_id = ? AND channel = ? AND account = ?",
            (external_id, channel, account),
        ).fetchone()
        return (_decode(found[0]), _decode(found[1])) if found else None

    def find(self, query: str, limit: int) -> list[dict]:
        """Summaries of archived orders whose id, external id or order number is ``query``."""
        rows = [r[8] for r in self.unsynced.values() if query in (r[0], r[3], r[4])]
        rows += [
            r[0]
            for r in self.conn.execute(
                "SELECT summary FROM archived_orders WHERE order_id = ?1 OR external_id = ?1 OR order_number = ?1 "
                "ORDER BY received_ts DESC LIMIT ?2",
                (query, limit),
            )
        ]
        out, seen = [], set()
        for body in rows:
            s = _decode(body)
            if s["order_id"] not in seen:
                seen.add(s["order_id"])
                out.append(s)
        return out[:limit]


async def at_midnight(
    clock: Clock, work: Callable[[], Awaitable[None]], *, task_status=trio.TASK_STATUS_IGNORED
) -> None:
    """Run ``work`` at each midnight of engine time: on the stepped clock's agenda (then
    this returns at once, started), else in sleeps of at most a minute (a clock moved by
    an operator or a simulated one is followed)."""
    if isinstance(clock, SteppedClock):

        async def due() -> None:
            await work()
            clock.at(retention.day_start(clock.now()) + retention.DAY_S, due)

        clock.at(retention.day_start(clock.now()) + retention.DAY_S, due)
        task_status.started()
        return
    task_status.started()
    speed = clock.speed if isinstance(clock, SimClock) else 1.0
    while True:
        now = clock.now()
        due_ts = retention.day_start(now) + retention.DAY_S
        await trio.sleep(min(max((due_ts - now) / speed, 0.01), 60.0))
        if clock.now() >= due_ts:
            await work()


class Retention:
    """Sweeps closed orders out of memory at engine-day boundaries (module docstring)."""

    def __init__(self, engine: Engine, journal: Journal, store: ArchiveStore, hot_days: int) -> None:
        self.engine = engine
        self.journal = journal
        self.store = store
        self.hot_days = hot_days
        self.sweeps = 0
        self.last_sweep_s = 0.0  # loop time the last sweep took

    async def sweep(self) -> int:
        """Archive every order due now; returns how many left memory. One step per
        ``PER_EVENT`` orders (record, queue, emit: synchronous, like an actor's step), with
        a checkpoint between steps so a large day does not stall the loop."""
        engine, world = self.engine, self.engine.world
        now = engine.now()
        t0 = time.perf_counter()
        ids = retention.due(world, now, self.hot_days)
        records = await self._sweep_records(now)
        retention.forget_removed_lines(world)
        if not ids:
            if records:
                self._swept(t0, orders=0, records=records)
            return 0
        for start in range(0, len(ids), retention.PER_EVENT):
            if start:
                await trio.lowlevel.checkpoint()
            engine.context("retention.sweep", f"retention-{int(now // retention.DAY_S)}")
            chunk = ids[start : start + retention.PER_EVENT]
            rows = []
            for oid in chunk:
                order = world.orders[oid]
                spec = order.spec
                detail, summary, result = retention.record(world, order, now)
                rows.append(
                    (
                        oid,
                        spec.channel,
                        spec.account,
                        spec.external_id,
                        spec.order_number,
                        order.closed_ts,
                        order.received_ts,
                        _encode(detail),
                        _encode(summary),
                        _encode(result),
                    )
                )
            self.store.queued(rows)
            self.journal.archived.extend(rows)  # committed with the event below
            engine.emit(ev.OrdersArchived(ts=now, order_ids=chunk))
        self._swept(t0, orders=len(ids), records=records)
        return len(ids)

    def _swept(self, t0: float, orders: int, records: int) -> None:
        world = self.engine.world
        self.sweeps += 1
        self.last_sweep_s = time.perf_counter() - t0
        log.info(
            "orders_archived",
            orders=orders,
            hot_orders=len(world.orders),
            records=records,
            took_s=round(self.last_sweep_s, 4),
        )

    async def _sweep_records(self, now: float) -> int:
        """Closed requests and delivered notices due now (``retention.records_due``): rows
        queued with the journal, one ``records_archived`` event per ``PER_EVENT`` of them,
        a checkpoint between steps. Returns how many left memory."""
        engine, world = self.engine, self.engine.world
        request_ids, notice_ids = retention.records_due(world, now, self.hot_days)
        steps = [
            (request_ids[i : i + retention.PER_EVENT], []) for i in range(0, len(request_ids), retention.PER_EVENT)
        ]
        steps += [([], notice_ids[i : i + retention.PER_EVENT]) for i in range(0, len(notice_ids), retention.PER_EVENT)]
        for n, (rids, nids) in enumerate(steps):
            if n:
                await trio.lowlevel.checkpoint()
            engine.context("retention.sweep", f"retention-{int(now // retention.DAY_S)}")
            rows = [retention.request_row(world.requests[rid], now) for rid in rids]
            rows += [retention.notice_row(world.notices[nid]) for nid in nids]
            rows = [(*row[:5], _encode(row[5])) for row in rows]
            self.store.queued_records(rows)
            self.journal.archived_records.extend(rows)  # committed with the event below
            engine.emit(ev.RecordsArchived(ts=now, request_ids=rids, notice_ids=nids))
        return len(request_ids) + len(notice_ids)

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        await self.sweep()  # what became due while the daemon was down
        await at_midnight(self.engine.clock, self.sweep, task_status=task_status)

    def statistics(self) -> dict:
        world = self.engine.world
        return {
            "hot_orders": len(world.orders),
            "archived_orders": world.n_archived,
            "archived_requests": world.n_requests_archived,
            "archived_notices": sum(world.notices_archived.values()),
            "hot_days": self.hot_days,
            "sweeps": self.sweeps,
        }
