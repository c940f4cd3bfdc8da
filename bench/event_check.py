"""Cost of checking every journal event as it is encoded (``events.encode_checked``:
encode, then decode once with the replay's decoder) against the bare encode it replaces.

    .venv/bin/python bench/event_check.py

Prints ns per event for the events of the hot path: an allocation, a receipt, and an
order of 1 and of 10 lines (the order_received event carries the whole order).
"""

from __future__ import annotations

import time
from decimal import Decimal

from backorder.actors import events as ev
from backorder.actors.order_rules import order_record
from backorder.protocol import OrderLineIn, OrderSubmit

N = 200_000


def order(lines: int) -> ev.OrderReceived:
    spec = OrderSubmit(
        channel="web",
        external_id="X-1",
        email="a@example.com",
        lines=[OrderLineIn(sku=f"SKU-{i}", qty=2, unit_price=Decimal("9.99")) for i in range(lines)],
    )
    return ev.OrderReceived(ts=1.7e9, order_id="O0000001", order=order_record(spec))


CASES = {
    "allocated": ev.Allocated(ts=1.7e9, sku="SKU-1", order_id="O0000001", line_no=1, qty=3, rule="fifo", rank=12.5),
    "lines_allocated (1 line)": ev.LinesAllocated(
        ts=1.7e9, sku="SKU-1", rule="fifo", lines=[ev.AllocatedLine(order_id="O0000001", line_no=1, qty=3, rank=12.5)]
    ),
    "shipments_created (1 shipment)": ev.ShipmentsCreated(
        ts=1.7e9,
        shipments=[ev.CreatedShipment(shipment_id="S0000001", order_id="O0000001", items=[(1, "SKU-1", 3)])],
    ),
    "received": ev.Received(ts=1.7e9, sku="SKU-1", qty=40, reference="PO-000001", request_id="PO-000001"),
    "order_received (1 line)": order(1),
    "order_received (10 lines)": order(10),
}


def per_event(fn, e, n: int = N) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn(e)
    return (time.perf_counter() - t0) / n * 1e9


def main() -> None:
    encode = ev.EVENT_ENCODER.encode
    for name, e in CASES.items():
        n = N if "10 lines" not in name else N // 5
        bare = min(per_event(encode, e, n) for _ in range(3))
        checked = min(per_event(ev.encode_checked, e, n) for _ in range(3))
        print(f"{name:28s} encode {bare:7.0f} ns   encode+check {checked:7.0f} ns   (+{checked - bare:.0f} ns)")


if __name__ == "__main__":
    main()
