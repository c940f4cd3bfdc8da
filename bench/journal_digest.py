"""A digest of the journal and the replies of bench/throughput.py's load, run in process
and deterministically: a fixed clock, the journal kept in memory, trio's scheduling
choices seeded. Not a timing: a change meant to cost less without changing behaviour
must leave both digests as they were (run it before and after).

    python bench/journal_digest.py [--orders 20000] [--serial] [--mixed]

``--serial``: every SKU's actor in one task (the router's mode under the stepped clock).
``--mixed``: every third order ship-complete and every seventh rush, with a switch to
priority allocation a third of the way through and back to FIFO at two thirds, so that
lending, ranks and re-keyed queues are exercised too.
"""

from __future__ import annotations

import argparse
import hashlib
from collections import Counter

import msgspec
import trio
import trio._core._run as trio_run  # its scheduler's random choices, seeded below
from submit_step import FixedClock, requests

from backorder import protocol as p
from backorder.actors.engine import Engine
from backorder.actors.router import Router, route
from backorder.config.settings import Settings

WINDOW = 2048  # requests in flight, as bench/submit_step.py


class MemoryJournal:
    """What the engine needs of a journal, keeping each row in a list."""

    def __init__(self) -> None:
        self.last_seq = 0
        self.cause = self.corr = self.actor = ""
        self.rows: list[tuple] = []
        self.listeners: list = []  # the router's: never called, as no commit is waited for

    @property
    def committed_seq(self) -> int:
        """Every row is durable once kept: the router sends a big fill's news at once."""
        return self.last_seq

    def append_body(self, e, body: bytes, sku: str | None, order_id: str | None) -> int:
        self.last_seq += 1
        self.rows.append((self.last_seq, self.cause, self.corr, self.actor, sku, order_id, body))
        return self.last_seq


class Answer:
    """Keeps the reply of request ``i`` (encoded) and frees a window slot."""

    def __init__(self, replies: dict[int, bytes], i: int, slots: trio.Semaphore) -> None:
        self.replies, self.i, self.slots = replies, i, slots

    def ok(self, result) -> None:
        self.replies[self.i] = msgspec.json.encode(result)
        self.slots.release()

    def error(self, code: str, message: str) -> None:
        self.replies[self.i] = f"error {code}: {message}".encode()
        self.slots.release()


def mixed(reqs: list) -> list:
    out = []
    k = 0
    for i, req in enumerate(reqs):
        if isinstance(req, p.OrderSubmit):
            k += 1
            req = msgspec.structs.replace(req, ship_complete=k % 3 == 0, rush=k % 7 == 0)
        out.append(req)
        if i == len(reqs) // 3:
            out.append(
                p.decode_request(
                    b'{"op":"policy.set","id":"m1","mode":"priority","weights":{"rush":5,"value":0.5,"age":1}}'
                )
            )
        if i == 2 * len(reqs) // 3:
            out.append(p.decode_request(b'{"op":"policy.set","id":"m2","mode":"fifo"}'))
    return out


async def run(reqs: list, serial: bool) -> tuple[list[tuple], dict[int, bytes]]:
    journal = MemoryJournal()
    replies: dict[int, bytes] = {}
    async with trio.open_nursery() as nursery:
        engine = Engine(msgspec.convert({}, Settings), journal, FixedClock())  # type: ignore[arg-type]
        router = Router(engine, nursery, idle_s=30.0, serial=serial)
        await router.start()
        slots = trio.Semaphore(WINDOW)
        for i, req in enumerate(reqs):
            await slots.acquire()
            route(router, req, Answer(replies, i, slots), f"c{i}", "bench")
        for _ in range(WINDOW):  # every request answered
            await slots.acquire()
        nursery.cancel_scope.cancel()
    return journal.rows, replies


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=20_000)
    ap.add_argument("--skus", type=int, default=1000)
    ap.add_argument("--serial", action="store_true")
    ap.add_argument("--mixed", action="store_true")
    args = ap.parse_args()
    configure, reqs, _lines = requests(args.orders, args.skus)
    if args.mixed:
        reqs = mixed(reqs)
    trio_run._r.seed(12345)
    rows, replies = trio.run(run, configure + reqs, args.serial)
    events = hashlib.sha256()
    for row in rows:  # seq, cause, corr, actor, sku, order id, then the body
        events.update(repr(row[:6]).encode())
        events.update(row[6])
    answers = hashlib.sha256()
    for i in sorted(replies):
        answers.update(str(i).encode())
        answers.update(replies[i])
    kinds = Counter(msgspec.json.decode(row[6])["type"] for row in rows)
    print(
        f"events {len(rows)} sha256 {events.hexdigest()[:16]}; replies {len(replies)} sha256 {answers.hexdigest()[:16]}"
    )
    print(dict(kinds))


if __name__ == "__main__":
    main()
