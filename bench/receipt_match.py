"""Cost of deciding a receipt (``sku_rules.match_receipt``, which matches a receipt
without a request reference to the SKU's open requests, oldest expected date first) and
of journaling its event (``events.encode_checked``), by the number of open requests.

    .venv/bin/python bench/receipt_match.py

Prints ns per receipt: with a reference naming the request (the path before matching
existed, plus one dict lookup), and without one for 0, 1 and 3 open requests.
"""

from __future__ import annotations

import time

import msgspec

from backorder.actors import events as ev
from backorder.actors import sku_rules
from backorder.actors.model import World
from backorder.config.settings import Settings

N = 100_000


def world_with(open_requests: int) -> World:
    w = World(msgspec.convert({}, Settings))
    s = w.sku("SKU-1")
    for i in range(open_requests):
        w.evolve(
            ev.RequestRaised(
                ts=1.7e9,
                request_id=f"PO-{i + 1:06d}",
                sku="SKU-1",
                kind="po",
                source="acme",
                qty=50,
                expected_date=f"2026-01-{10 + i:02d}",
                position=0,
            )
        )
    assert len(s.inbound) == open_requests
    return w


def per_receipt(w: World, reference: str | None) -> tuple[float, float]:
    s = w.skus["SKU-1"]
    match = sku_rules.match_receipt
    t0 = time.perf_counter()
    for _ in range(N):
        match(w, s, 40, reference, 1.7e9)
    decide = (time.perf_counter() - t0) / N * 1e9
    e = match(w, s, 40, reference, 1.7e9)
    t0 = time.perf_counter()
    for _ in range(N):
        ev.encode_checked(e)
    return decide, (time.perf_counter() - t0) / N * 1e9


def main() -> None:
    cases = [
        ("reference, 1 open request", world_with(1), "PO-000001"),
        ("no reference, 0 open", world_with(0), None),
        ("no reference, 1 open", world_with(1), None),
        ("no reference, 3 open", world_with(3), None),
    ]
    for name, w, ref in cases:
        decide, journal = min(per_receipt(w, ref) for _ in range(3))
        print(f"{name:28s} decide {decide:6.0f} ns   encode+check {journal:6.0f} ns")


if __name__ == "__main__":
    main()
