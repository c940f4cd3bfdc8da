"""Cost of no-harm lending in a settle (``sku_rules.lending`` + ``allocation_plan.lend``),
the work a SKU actor added to every settle that leaves lines waiting, by queue length and
number of ship-complete orders holding units of the SKU (lenders).

    .venv/bin/python bench/lending.py [--quick]

In-process, on the pure rules (no daemon): SKU A has ``waiting`` split-order lines that
wait and ``holders`` ship-complete orders (1 A held + 1 B waiting). Cases:

  no_holders    no ship-complete order holds A units (the common case): the lenders are
                looked for among the SKU's holders and none is found; the queue is not walked
  cannot_lend   every holder waits for B, but B comes before A's next supply: each loan
                fails the date check at the first borrower
  lends         B comes after A's next supply: the first ``holders`` waiting lines borrow
                (the decision only: nothing is journaled, so each repeat decides the same)
  lends_part    as lends, but the first waiting line (a split order's) needs more than
                all holders hold: it borrows a part from every lender asked
  cannot_fill   as lends, but every waiting line is a ship-complete order's that needs
                more than all holders hold: none can borrow; each is passed over, up to
                ``allocation_plan.MAX_PASSED``, before the settle stops looking

Prints and saves (bench/results/lending.json) microseconds per decision, with the cost of
``allocate_now`` (what settle did before lending) beside it.
"""

from __future__ import annotations

import argparse
import time
from decimal import Decimal

import msgspec
from common import result_name, save

from backorder.actors import allocation_plan, sku_rules
from backorder.actors import events as ev
from backorder.actors.model import World
from backorder.config.settings import Settings

T0 = 1.7e9


def site(waiting: int, holders: int, b_date: str, first_qty: int = 1, whole: bool = False) -> World:
    w = World(msgspec.convert({}, Settings))
    emit = w.evolve
    for sku, qty, date in (("A", 2 * waiting + 2 * holders, "2026-01-05"), ("B", holders, b_date)):
        emit(
            ev.RequestRaised(
                ts=T0,
                request_id=f"PO-00000{1 + (sku == 'B')}",
                sku=sku,
                kind="po",
                source="s",
                qty=qty,
                expected_date=date,
                position=0,
            )
        )
    emit(ev.Received(ts=T0, sku="A", qty=holders, reference=None))
    n = 0
    for i in range(holders + waiting):
        n += 1
        oid = f"O{n:07d}"
        held = i < holders
        qty = first_qty if i == holders else 1  # the first waiting line
        if whole and not held:  # a ship-complete order needing more than all holders hold
            qty = holders + 1
        lines = [ev.LineRecord(sku="A", qty=qty, unit_price=Decimal(1))]
        if held:
            lines.append(ev.LineRecord(sku="B", qty=1, unit_price=Decimal(1)))
        emit(
            ev.OrderReceived(
                ts=T0 + n,
                order_id=oid,
                order=ev.OrderRecord(channel="b", external_id=oid, lines=lines, ship_complete=held or whole),
            )
        )
        if held:
            emit(ev.Allocated(ts=T0 + n, sku="A", order_id=oid, line_no=1, qty=1, rule="fifo", rank=0.0))
    return w


def timed(w: World, repeats: int) -> tuple[float, float, int]:
    """(us per lending decision, us per allocate_now, loans) for SKU A, best of 3."""
    s = w.skus["A"]
    best_lend = best_alloc = float("inf")
    loans = 0
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(repeats):
            given = allocation_plan.allocate_now(s.queue.lines(), s.available)
        best_alloc = min(best_alloc, (time.perf_counter() - t0) / repeats * 1e6)
        t0 = time.perf_counter()
        for _ in range(repeats):
            got = allocation_plan.lend(s.queue.lines, given, s.available, s.supply(), sku_rules.lending(w, s, T0))[0]
        best_lend = min(best_lend, (time.perf_counter() - t0) / repeats * 1e6)
        loans = len(got)
    return best_lend, best_alloc, loans


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    sizes = [(1_000, 0), (1_000, 100), (10_000, 100)] if args.quick else [(1_000, 0), (1_000, 100), (100_000, 0)]
    if not args.quick:
        sizes += [(100_000, 100), (100_000, 1_000)]
    cases = {
        "no_holders": None,
        "cannot_lend": "2026-01-02",
        "lends": "2026-01-11",
        "lends_part": "2026-01-11",
        "cannot_fill": "2026-01-11",
    }
    rows = []
    for waiting, holders in sizes:
        for case, b_date in cases.items():
            if (case == "no_holders") != (holders == 0):
                continue
            # lends_part: the first waiting line (a split order's) needs more than all holders hold
            # cannot_fill: every waiting line is a ship-complete order's that needs more
            w = site(
                waiting,
                holders,
                b_date or "2026-01-11",
                holders + 1 if case == "lends_part" else 1,
                whole=case == "cannot_fill",
            )
            repeats = max(10, 200_000 // (waiting + 10 * holders))
            lend_us, alloc_us, loans = timed(w, repeats)
            row = {
                "case": case,
                "waiting": waiting,
                "holders": holders,
                "loans": loans,
                "lend_us": round(lend_us, 2),
                "allocate_now_us": round(alloc_us, 2),
            }
            rows.append(row)
            print(
                f"{case:12s} waiting {waiting:>7,} holders {holders:>5,}: lending {lend_us:9.1f} us"
                f"  ({loans} loans)   allocate_now {alloc_us:6.2f} us",
                flush=True,
            )
    worst = {case: max((r["lend_us"] for r in rows if r["case"] == case), default=None) for case in cases}
    save(result_name("lending", args.quick), {"rows": rows, "worst_us": worst})


if __name__ == "__main__":
    main()
