"""Cost of dispatching one decoded request (``handlers.handle``: the table lookup, the
handler, the router's route) up to the actor's mailbox, which is left out: the router here
only counts the calls.

    .venv/bin/python bench/dispatch.py

Prints ns per request for the ops of the hot path (order.submit, stock.receive) and one
routed through the model (procurement.confirm, whose SKU is looked up).
"""

from __future__ import annotations

import time
from types import SimpleNamespace

from backorder import protocol as p
from backorder.daemon import handlers

N = 1_000_000


class CountingRouter:
    def __init__(self) -> None:
        self.calls = 0
        world = SimpleNamespace(requests={"PO-1": SimpleNamespace(sku="A")})
        self.engine = SimpleNamespace(world=world)

    def call_order(self, req, reply, corr: str, actor: str) -> None:
        self.calls += 1

    def call_sku(self, sku: str, req, reply, corr: str, actor: str) -> None:
        self.calls += 1


CASES = {
    "order.submit": b'{"op":"order.submit","channel":"web","external_id":"X-1","lines":[{"sku":"A","qty":1}]}',
    "stock.receive": b'{"op":"stock.receive","sku":"A","qty":1}',
    "procurement.confirm": b'{"op":"procurement.confirm","request_id":"PO-1","expected_date":"2026-01-09"}',
}


def main() -> None:
    router = CountingRouter()
    ctx = handlers.Context(
        engine=None,
        router=router,
        hub=None,
        audit=None,
        intake=None,  # type: ignore[arg-type]
        notifier=None,
        settings=None,
        health=dict,
    )  # type: ignore[arg-type]
    handle = handlers.handle
    conn = SimpleNamespace(actor="ada")  # the connection's actor goes with every change
    for name, line in CASES.items():
        req = p.decode_request(line)
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(N):
                handle(ctx, conn, req, None, "c1.1")
            best = min(best, time.perf_counter() - t0)
        print(f"{name:22} {best / N * 1e9:6.0f} ns per dispatch (best of 5 x {N})")
    assert router.calls == 5 * N * len(CASES)


if __name__ == "__main__":
    main()
