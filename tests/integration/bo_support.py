"""Request helpers shared by the integration tests (imported as ``bo_support``)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from backorder.daemon import snapfiles

# Simulated time starts at a fixed instant and runs at wall speed: a test lasts well under
# a minute, so every date the engine computes is deterministic (lead time 7 d -> 03-08).
SIM_CONFIG = '[daemon]\nclock = "simulated"\nclock_start = "2024-03-01T00:00:00Z"\n'


def line(sku: str, qty: int, price: str = "1.00", **more) -> dict:
    return {"sku": sku, "qty": qty, "unit_price": price, **more}


def submit(c, external_id: str, *lines: dict, channel: str = "web", **fields) -> dict:
    """order.submit with the fields an integrator must send; returns the result."""
    return c.call("order.submit", channel=channel, external_id=external_id, lines=list(lines), **fields)


def stock(c, sku: str, qty: int, **fields) -> dict:
    """Make a SKU known (if needed) and receive units of it."""
    c.call("sku.configure", sku=sku)
    return c.call("stock.receive", sku=sku, qty=qty, **fields)


def read_db(path, sql: str, args: tuple = ()) -> list[tuple]:
    """Query the journal database read-only (the daemon may be running)."""
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        return db.execute(sql, args).fetchall()


def snapshot_seqs(path) -> list[int]:
    """The events the journal's snapshots are of, newest first: its snapshot files
    (daemon/snapfiles.py) and any rows of the older ``snapshots`` table."""
    rows = [r[0] for r in read_db(path, "SELECT seq FROM snapshots")]
    return sorted([seq for seq, _, _ in snapfiles.found(Path(path))] + rows, reverse=True)


def drop_snapshots(path) -> None:
    """Remove every snapshot of the journal (files and rows): the next start replays it all."""
    for _, _, p in snapfiles.found(Path(path)):
        p.unlink()
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("DELETE FROM snapshots")
        conn.commit()


def fingerprint(c, *skus: str) -> dict:
    """Everything a bad request must leave unchanged: the journal head, the KPI counts,
    the SKUs, the open requests and the shipments."""
    health = c.call("health")
    out = {
        "last_seq": health["journal"]["last_seq"],
        "counts": c.call("stats")["counts"],
        "requests": c.call("procurement.list", status="all")["requests"],
        "shipments": c.call("shipments.list", status="all")["shipments"],
    }
    for sku in skus:
        view = c.call("sku.get", sku=sku)
        for timing in ("oldest_wait_hours", "waiting", "inbound_requests"):
            view.pop(timing)
        out[sku] = view
    out["counts"].pop("oldest_wait_hours")
    return out
